package gateway

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestCancelReplace: cancel_sm and replace_sm over real sockets, before sending (done in the
// store: the simulator never sees the cancelled part, and sees the replaced one with its new text)
// and after (forwarded to the simulator with its upstream id, its answer passed back), refused for
// another account's message; query_sm reports what the API shows.
func TestCancelReplace(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) { cancelReplace(t, open()) })
}

func cancelReplace(t *testing.T, st store.Store) {
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	cfg := acmeVia(t, simUpstream("sim", sim.Addr()))
	cfg.Accounts = append(cfg.Accounts, testAccount(t, "other", "secret2"))
	g, addr, _ := startGateway(t, cfg, st)
	sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
	rec := sessiontest.NewRecorder()
	acme := sessiontest.BindESME(t, addr, rec, session.Config{}, session.BindTransceiver, "acme", "secret")
	other := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransceiver, "other", "secret2")
	ctx := sessiontest.Ctx(t)
	send := func(s *session.Session, body pdu.Body) (pdu.Body, pdu.CommandStatus) {
		t.Helper()
		resp, err := s.Send(ctx, body)
		var status pdu.CommandStatus
		if err != nil && !errors.As(err, &status) {
			t.Fatalf("%v: %v", body.CommandID(), err)
		}
		return resp.Body, status
	}
	submitText := func(text string, rd uint8) string {
		t.Helper()
		sm := submit("447700900123")
		sm.ShortMessage, sm.RegisteredDelivery = []byte(text), rd
		b, status := send(acme, sm)
		if status != pdu.ESME_ROK {
			t.Fatalf("submit_sm %q: %v", text, status)
		}
		return b.(*pdu.SubmitSMResp).MessageID
	}
	query := func(id string) *pdu.QuerySMResp {
		t.Helper()
		b, status := send(acme, &pdu.QuerySM{MessageID: id, SourceAddr: "12345"})
		if status != pdu.ESME_ROK {
			t.Fatalf("query_sm %s: %v", id, status)
		}
		return b.(*pdu.QuerySMResp)
	}
	stored := func(id string) *store.Message {
		t.Helper()
		m, err := st.GetMessage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	// Before sending: the upstream is paused, so the parts wait in its queue.
	if err := g.SetUpstreamPaused("sim", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(claimWait + 200*time.Millisecond) // a claim already waiting when the pause came returns empty
	idA, idB, idC := submitText("cancel me", 0), submitText("old text", 0), submitText("keep", 0)

	if _, status := send(other, &pdu.CancelSM{MessageID: idA}); status != pdu.ESME_RCANCELFAIL {
		t.Errorf("another account's cancel_sm: %v, want ESME_RCANCELFAIL", status)
	}
	if _, status := send(other, &pdu.ReplaceSM{MessageID: idB, ShortMessage: []byte("hijack")}); status != pdu.ESME_RREPLACEFAIL {
		t.Errorf("another account's replace_sm: %v, want ESME_RREPLACEFAIL", status)
	}
	if _, status := send(acme, &pdu.CancelSM{ServiceType: "", SourceAddr: "12345", DestinationAddr: "447700900123"}); status != pdu.ESME_RCANCELFAIL {
		t.Errorf("cancel_sm without message_id: %v, want ESME_RCANCELFAIL (not supported)", status)
	}
	for _, id := range []string{idA, idB} {
		if m := stored(id); m.Status != pdu.ACCEPTED || string(m.Parts[0].ShortMessage) == "hijack" {
			t.Errorf("%s after another account's requests: %v %q", id, m.Status, m.Parts[0].ShortMessage)
		}
	}
	if _, status := send(acme, &pdu.CancelSM{MessageID: idA, SourceAddr: "12345"}); status != pdu.ESME_ROK {
		t.Fatalf("cancel_sm before sending: %v", status)
	}
	if q := query(idA); q.MessageState != pdu.DELETED || q.FinalDate == "" {
		t.Errorf("query_sm after cancel: %+v, want DELETED with a final date", q)
	}
	if _, status := send(acme, &pdu.CancelSM{MessageID: idA}); status != pdu.ESME_RCANCELFAIL {
		t.Errorf("second cancel_sm: %v, want ESME_RCANCELFAIL", status)
	}
	if _, status := send(acme, &pdu.ReplaceSM{MessageID: idB, SourceAddr: "12345", ShortMessage: []byte("new text")}); status != pdu.ESME_ROK {
		t.Fatalf("replace_sm before sending: %v", status)
	}
	if err := g.SetUpstreamPaused("sim", false); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "two parts at the simulator", func() bool { return sim.Count() == 2 })
	time.Sleep(300 * time.Millisecond)
	if sim.Count() != 2 || sim.Times("cancel me") != 0 || sim.Times("old text") != 0 || sim.Times("new text") != 1 || sim.Times("keep") != 1 {
		t.Errorf("simulator got %d: cancelled %d, old text %d, new text %d, keep %d; want 2: 0, 0, 1, 1",
			sim.Count(), sim.Times("cancel me"), sim.Times("old text"), sim.Times("new text"), sim.Times("keep"))
	}

	// After sending: forwarded with the upstream id, and the simulator's answer passed back.
	sessiontest.Eventually(t, "upstream ids recorded", func() bool {
		return stored(idB).Parts[0].UpstreamID != "" && stored(idC).Parts[0].UpstreamID != ""
	})
	upC, upB := stored(idC).Parts[0].UpstreamID, stored(idB).Parts[0].UpstreamID
	if _, status := send(other, &pdu.CancelSM{MessageID: idC}); status != pdu.ESME_RCANCELFAIL || len(sim.Cancels()) != 0 {
		t.Errorf("another account's cancel_sm after sending: %v, %d forwarded", status, len(sim.Cancels()))
	}
	if _, status := send(acme, &pdu.CancelSM{MessageID: idC}); status != pdu.ESME_ROK {
		t.Errorf("cancel_sm after sending: %v", status)
	}
	if c := sim.Cancels(); len(c) != 1 || c[0].MessageID != upC || c[0].SourceAddr != "12345" || c[0].DestinationAddr != "447700900123" {
		t.Errorf("simulator got cancel_sm %+v, want one for %s", c, upC)
	}
	if q := query(idC); q.MessageState != pdu.DELETED {
		t.Errorf("query_sm after a forwarded cancel: %v, want DELETED", q.MessageState)
	}
	sim.SetEditStatus(pdu.ESME_RREPLACEFAIL)
	if _, status := send(acme, &pdu.ReplaceSM{MessageID: idB, ShortMessage: []byte("too late")}); status != pdu.ESME_RREPLACEFAIL {
		t.Errorf("replace_sm after sending: %v, want the simulator's ESME_RREPLACEFAIL", status)
	}
	if r := sim.Replaces(); len(r) != 1 || r[0].MessageID != upB || string(r[0].ShortMessage) != "too late" {
		t.Errorf("simulator got replace_sm %+v, want one for %s", r, upB)
	}

	// After delivery, query_sm says what the API's GetMessage shows.
	idD := submitText("receipt please", pdu.RegisteredDeliveryReceiptFinal)
	awaitReceipts(t, rec, 1)
	m := stored(idD)
	q := query(idD)
	want := string(pdu.AppendAbsoluteTime(nil, m.Parts[0].UpdatedAt.UTC()))
	if m.Status != pdu.DELIVERED || q.MessageState != m.Status || q.FinalDate != want || q.ErrorCode != 0 {
		t.Errorf("query_sm %+v; stored status %v, final date %s", q, m.Status, want)
	}
}

// TestEditsTakeUpperCaseIDs: query_sm, replace_sm and cancel_sm name a hex (or uuid) message id in
// upper case, as some peers print hex: it is the same id (ours are lower case) and is found. Before,
// each was answered as an unknown id (ESME_RQUERYFAIL, ESME_RREPLACEFAIL, ESME_RCANCELFAIL).
func TestEditsTakeUpperCaseIDs(t *testing.T) {
	for _, form := range []IDFormat{IDHex, IDUUID} {
		t.Run(string(form), func(t *testing.T) {
			sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
			cfg := acmeVia(t, simUpstream("sim", sim.Addr()))
			cfg.Accounts[0].MessageIDs = form
			g, addr, _ := startGateway(t, cfg, newEmbedded(t))
			sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
			if err := g.SetUpstreamPaused("sim", true); err != nil { // the parts wait in the queue
				t.Fatal(err)
			}
			time.Sleep(claimWait + 200*time.Millisecond) // a claim already waiting when the pause came returns empty
			acme := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransceiver, "acme", "secret")
			ctx := sessiontest.Ctx(t)
			resp, err := acme.Send(ctx, submit("447700900123"))
			if err != nil {
				t.Fatal(err)
			}
			id := resp.Body.(*pdu.SubmitSMResp).MessageID
			upper := strings.ToUpper(id)
			if upper == id {
				t.Fatalf("id %q has no letters to put in upper case", id)
			}
			q, err := acme.Send(ctx, &pdu.QuerySM{MessageID: upper, SourceAddr: "12345"})
			if err != nil {
				t.Fatalf("query_sm %s: %v", upper, err)
			}
			if got := q.Body.(*pdu.QuerySMResp).MessageID; got != id {
				t.Errorf("query_sm %s answered for %q, want %q", upper, got, id)
			}
			if _, err := acme.Send(ctx, &pdu.ReplaceSM{MessageID: upper, SourceAddr: "12345", ShortMessage: []byte("new")}); err != nil {
				t.Errorf("replace_sm %s: %v", upper, err)
			}
			if _, err := acme.Send(ctx, &pdu.CancelSM{MessageID: upper}); err != nil {
				t.Errorf("cancel_sm %s: %v", upper, err)
			}
			m, err := g.st.GetMessage(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if m.Status != pdu.DELETED || len(m.Parts) != 1 || string(m.Parts[0].ShortMessage) != "new" {
				t.Errorf("message %s after replace and cancel by its upper-case id: status %v, text %q; want DELETED, \"new\"", id, m.Status, m.Parts[0].ShortMessage)
			}
		})
	}
}
