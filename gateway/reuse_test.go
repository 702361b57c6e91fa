package gateway

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestReusedJobsLeakNothing: accept jobs and part jobs are reused from message to message, so what
// one message carried that the next does not (TLVs, a validity period, a priority, a service type, a
// longer text) must not reach the upstream with the next. Messages with all of those alternate with
// bare ones, one at a time, and the upstream must get each exactly as it was submitted.
func TestReusedJobsLeakNothing(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{ReceiptDelay: -1})
	g, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
	sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
	esme := sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransmitter, "acme", "secret")
	ctx := sessiontest.Ctx(t)

	const n = 40
	full := func(i int) *pdu.SubmitSM {
		sm := &pdu.SubmitSM{
			ServiceType: "WAP", SourceAddr: "12345", DestinationAddr: fmt.Sprintf("4477009%05d", i),
			PriorityFlag: 2, ProtocolID: 0x40, ValidityPeriod: "000001000000000R",
			ShortMessage: []byte(fmt.Sprintf("a long first message, number %d, with options", i)),
		}
		sm.Options.SetUserMessageReference(uint16(i))
		sm.Options.SetCallbackNum([]byte("\x01\x01447700900999"))
		return sm
	}
	bare := func(i int) *pdu.SubmitSM {
		return &pdu.SubmitSM{SourceAddr: "777", DestinationAddr: fmt.Sprintf("4477009%05d", i), ShortMessage: []byte("hi")}
	}
	ids := make([]string, n)
	for i := range n {
		sm := bare(i)
		if i%2 == 0 {
			sm = full(i)
		}
		resp, err := esme.Send(ctx, sm)
		if err != nil {
			t.Fatalf("submit_sm %d: %v", i, err)
		}
		ids[i] = resp.Body.(*pdu.SubmitSMResp).MessageID
		// One at a time at the upstream too, so that each part job is settled (and reusable)
		// before the next is claimed.
		sessiontest.Eventually(t, fmt.Sprintf("submit_sm %d at the upstream", i), func() bool { return sim.Count() == i+1 })
		sessiontest.Eventually(t, fmt.Sprintf("message %d settled", i), func() bool {
			m, err := st.GetMessage(ctx, ids[i])
			return err == nil && m.Parts[0].UpstreamID != ""
		})
	}
	got := sim.Submits()
	if len(got) != n {
		t.Fatalf("the upstream got %d submit_sm, want %d", len(got), n)
	}
	seen := map[string]bool{}
	for i, sm := range got {
		want := bare(i)
		if i%2 == 0 {
			want = full(i)
		}
		switch {
		case sm.DestinationAddr != want.DestinationAddr || sm.SourceAddr != want.SourceAddr:
			t.Errorf("submit_sm %d: %s -> %s, want %s -> %s", i, sm.SourceAddr, sm.DestinationAddr, want.SourceAddr, want.DestinationAddr)
		case string(sm.ShortMessage) != string(want.ShortMessage):
			t.Errorf("submit_sm %d: text %q, want %q", i, sm.ShortMessage, want.ShortMessage)
		case string(sm.Options) != string(want.Options):
			t.Errorf("submit_sm %d: TLVs %x, want %x", i, []byte(sm.Options), []byte(want.Options))
		case sm.ServiceType != want.ServiceType || sm.PriorityFlag != want.PriorityFlag || sm.ProtocolID != want.ProtocolID:
			t.Errorf("submit_sm %d: service_type %q priority %d protocol_id %#x, want %q %d %#x", i,
				sm.ServiceType, sm.PriorityFlag, sm.ProtocolID, want.ServiceType, want.PriorityFlag, want.ProtocolID)
		case (sm.ValidityPeriod != "") != (want.ValidityPeriod != ""):
			t.Errorf("submit_sm %d: validity_period %q, want one only if submitted with one (%q)", i, sm.ValidityPeriod, want.ValidityPeriod)
		}
	}
	for i, id := range ids {
		if seen[id] {
			t.Errorf("message id %s given twice", id)
		}
		seen[id] = true
		m, err := st.GetMessage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.History) == 0 || m.History[0].State != pdu.ACCEPTED || m.Destination.Addr != fmt.Sprintf("4477009%05d", i) {
			t.Errorf("message %d stored as %+v", i, m)
		}
	}
}

// TestPooledJobsComeBackClear: a job taken from its pool, whether new or reused, holds nothing of
// the message it carried last.
func TestPooledJobsComeBackClear(t *testing.T) {
	for range 100 {
		j := acceptJobs.Get().(*acceptJob)
		if !reflect.ValueOf(j).Elem().IsZero() {
			t.Fatalf("accept job from the pool not clear: %+v", j)
		}
		j.account, j.data, j.msg.ID, j.smResp.MessageID = "acme", true, "m1", "m1"
		j.parts[0].TLVs = []byte{0x02, 0x04, 0, 2, 0, 1}
		j.history[0].State = pdu.ACCEPTED
		j.release()
	}
	q := &storeQueue{}
	withTLVs := &store.PartTask{MessageID: "m1", ServiceType: "WAP", PriorityFlag: 3, ShortMessage: []byte("one"),
		TLVs: []byte{0x02, 0x04, 0, 2, 0, 1}, Validity: time.Now().Add(time.Hour), Attempts: 2}
	bareTask := &store.PartTask{MessageID: "m2", ShortMessage: []byte("two")}
	for i := range 100 {
		j := q.job(withTLVs)
		pj := j.ender.(*partJob)
		if pj.sm.Options == nil || pj.sm.ValidityPeriod == "" || j.Attempts != 2 {
			t.Fatalf("part job of a task with TLVs and validity: %+v", pj.sm)
		}
		if i%2 == 1 {
			pj.pin() // a send in progress: the job is not reused until it ends too
			pj.id = "up1"
			pj.unpin()
			if pj.t != withTLVs || pj.id != "up1" {
				t.Fatalf("part job cleared while still referenced")
			}
		}
		pj.unpin()
		j = q.job(bareTask)
		pj = j.ender.(*partJob)
		if pj.sm.Options != nil || pj.sm.ValidityPeriod != "" || pj.sm.ServiceType != "" || pj.sm.PriorityFlag != 0 ||
			string(pj.sm.ShortMessage) != "two" || j.Attempts != 0 || !j.Validity.IsZero() || pj.id != "" || pj.err != nil {
			t.Fatalf("part job of a bare task carries another's fields: %+v %+v", pj.sm, j)
		}
		pj.unpin()
	}
}
