package gateway

import (
	"testing"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
)

// TestTemporaryUpstreamErrorRetries: an upstream's passing fault (ESME_RSYSERR, ESME_RX_T_APPN) retries
// the part instead of failing an acknowledged message for good (found in review: it was REJECTED).
func TestTemporaryUpstreamErrorRetries(t *testing.T) {
	for _, status := range []pdu.CommandStatus{pdu.ESME_RSYSERR, pdu.ESME_RX_T_APPN} {
		t.Run(status.String(), func(t *testing.T) {
			st := newEmbedded(t)
			up := startSim(t, "127.0.0.1:0", smscsim.Options{})
			up.Inject(smscsim.Fault{Status: status, Count: 1}) // the first submission, then OK
			_, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", up.Addr())), st)
			e := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransceiver, "acme", "secret")
			resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("hi")})
			if err != nil {
				t.Fatal(err)
			}
			id := resp.Body.(*pdu.SubmitSMResp).MessageID
			sessiontest.Eventually(t, "the part to be retried and accepted upstream", func() bool {
				m, err := st.GetMessage(sessiontest.Ctx(t), id)
				return err == nil && m.Status == pdu.ENROUTE && m.Parts[0].UpstreamID == "SIM0001"
			})
			if n := up.Count(); n != 2 {
				t.Errorf("upstream saw %d submit_sm, want 2 (the refused one and its retry)", n)
			}
		})
	}
}

// TestMessageIDsDoNotRepeatAfterWrap: after 2^32 ids in one process the counter's low half repeats;
// the ids must not (found in review: the store refused the repeats and every submit failed).
func TestMessageIDsDoNotRepeatAfterWrap(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	g, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
	e := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransmitter, "acme", "secret")
	seen := map[string]bool{}
	submit := func() {
		t.Helper()
		resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("x")})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		id := resp.Body.(*pdu.SubmitSMResp).MessageID
		if seen[id] || len(id) != 16 {
			t.Fatalf("id %q repeated or not 16 hex digits", id)
		}
		seen[id] = true
	}
	for range 3 {
		submit()
	}
	for _, wraps := range []uint64{1, 2, 1<<32 - 1} {
		g.submit.ids.nextID.Store(wraps << 32) // as after that many times 2^32 accepted messages
		for range 3 {
			submit()
		}
	}
}
