package gateway

import (
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestPartExpiresAfterValidity: parts still queued (the upstream paused) when their validity_period
// (relative, 2s) ends are never sent; each fails EXPIRED with a receipt to the ESME and the status
// the API reads. A part without validity queued alongside goes out once the upstream resumes.
func TestPartExpiresAfterValidity(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		st := open()
		up := startSim(t, "127.0.0.1:0", smscsim.Options{})
		g, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", up.Addr())), st)
		sessiontest.Eventually(t, "upstream bound", func() bool { return len(g.Upstreams()) == 1 && g.Upstreams()[0].Status.State == ClientBound })
		if err := g.SetUpstreamPaused("sim", true); err != nil {
			t.Fatal(err)
		}
		rx := sessiontest.NewRecorder()
		e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
		const n = 3
		ids, all := map[string]bool{}, []string{}
		for range n {
			resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: 1,
				ValidityPeriod: "000000000002000R", ShortMessage: []byte("short-lived")})
			if err != nil {
				t.Fatal(err)
			}
			id := resp.Body.(*pdu.SubmitSMResp).MessageID
			ids[id], all = true, append(all, id)
		}
		if _, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("no-validity")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond) // past the validity, the upstream paused
		if err := g.SetUpstreamPaused("sim", false); err != nil {
			t.Fatal(err)
		}
		for i, info := range awaitReceipts(t, rx, n) {
			if !ids[info.MessageID] || info.State != pdu.EXPIRED {
				t.Errorf("receipt %d for %s in state %v, want one of ours EXPIRED", i, info.MessageID, info.State)
			}
			delete(ids, info.MessageID)
		}
		for id := range ids {
			t.Errorf("no receipt for %s", id)
		}
		for _, id := range all {
			if m, err := st.GetMessage(sessiontest.Ctx(t), id); err != nil || m.Status != pdu.EXPIRED {
				t.Errorf("stored message %s: %v, %v; want EXPIRED", id, m.Status, err)
			}
		}
		sessiontest.Eventually(t, "the part without validity sent", func() bool { return up.Times("no-validity") == 1 })
		time.Sleep(100 * time.Millisecond)
		if got := up.Times("short-lived"); got != 0 {
			t.Errorf("the upstream saw %d expired parts, want 0", got)
		}
	})
}
