package smscsim_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

func start(t *testing.T, opts smscsim.Options) *smscsim.Sim {
	t.Helper()
	if opts.Accounts == nil {
		opts.Accounts = map[string]string{"gw": "pw"}
	}
	sim, err := smscsim.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// bind binds a raw transceiver and checks the answer's status.
func bind(t *testing.T, sim *smscsim.Sim, id, pw string, want pdu.CommandStatus) *smpptest.Peer {
	t.Helper()
	p := smpptest.Dial(t, sim.Addr())
	p.Request(&pdu.BindTransceiver{SystemID: id, Password: pw, InterfaceVersion: 0x34})
	p.Expect(pdu.BindTransceiverRespID, want)
	return p
}

func submit(p *smpptest.Peer, text string, registered uint8) uint32 {
	return p.Request(&pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: "447700900123", RegisteredDelivery: registered, ShortMessage: []byte(text)})
}

// answered reads the answer to a submission and returns its status and message id.
func answered(t *testing.T, p *smpptest.Peer, seq uint32) (pdu.CommandStatus, string) {
	t.Helper()
	h, b := p.Read()
	if h.ID != pdu.SubmitSMRespID || h.Sequence != seq {
		t.Fatalf("got %v seq %d, want submit_sm_resp seq %d", h.ID, h.Sequence, seq)
	}
	if r, ok := b.(*pdu.SubmitSMResp); ok {
		return h.Status, r.MessageID
	}
	return h.Status, ""
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(smpptest.Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBinds(t *testing.T) {
	sim := start(t, smscsim.Options{})
	bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	bind(t, sim, "gw", "wrong", pdu.ESME_RINVPASWD)
	bind(t, sim, "nobody", "pw", pdu.ESME_RINVPASWD)
	sim.RefuseBinds(pdu.ESME_RBINDFAIL)
	bind(t, sim, "gw", "pw", pdu.ESME_RBINDFAIL)
	sim.RefuseBinds(pdu.ESME_ROK)
	bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	if ok, refused := sim.Binds(); ok != 2 || refused != 3 {
		t.Errorf("binds %d accepted, %d refused; want 2 and 3", ok, refused)
	}
	eventually(t, "two links bound", func() bool { return sim.Bound() == 2 })

	any := start(t, smscsim.Options{Accounts: map[string]string{}})
	bind(t, any, "whoever", "whatever", pdu.ESME_ROK)
}

func TestSubmitsAnsweredAndRecorded(t *testing.T) {
	sim := start(t, smscsim.Options{})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	for i, text := range []string{"one", "two", "one"} {
		st, id := answered(t, p, submit(p, text, 0))
		if want := []string{"SIM0001", "SIM0002", "SIM0003"}[i]; st != pdu.ESME_ROK || id != want {
			t.Errorf("submit %d answered %v %q, want ESME_ROK %s", i, st, id, want)
		}
	}
	seq := p.Request(&pdu.DataSM{SourceAddr: "1", DestinationAddr: "2"})
	h, b := p.Expect(pdu.DataSMRespID, pdu.ESME_ROK)
	if h.Sequence != seq || b.(*pdu.DataSMResp).MessageID != "SIM0004" {
		t.Errorf("data_sm answered %+v %+v", h, b)
	}
	subs := sim.Submits()
	if len(subs) != 3 || string(subs[0].ShortMessage) != "one" || string(subs[1].ShortMessage) != "two" {
		t.Errorf("recorded %+v", subs)
	}
	if sim.Count() != 4 || sim.Times("one") != 2 || sim.Times("two") != 1 || sim.Receipts() != 0 {
		t.Errorf("count %d, one %d, two %d, receipts %d", sim.Count(), sim.Times("one"), sim.Times("two"), sim.Receipts())
	}
	p.Request(&pdu.QuerySM{MessageID: "SIM0001"})
	p.Expect(pdu.QuerySMRespID, pdu.ESME_RINVCMDID)
}

func TestReceipts(t *testing.T) {
	sim := start(t, smscsim.Options{ReceiptDelay: 20 * time.Millisecond, ReceiptState: pdu.UNDELIVERABLE})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	answered(t, p, submit(p, "none", 0))
	_, id := answered(t, p, submit(p, "final please", pdu.RegisteredDeliveryReceiptFinal))
	h, b := p.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
	d := b.(*pdu.DeliverSM)
	info, err := dlr.FromDeliverSM(d)
	if err != nil || info.MessageID != id || info.State != pdu.UNDELIVERABLE || info.Receipt.Text != "final please" {
		t.Errorf("receipt %+v %v, want %s UNDELIVERABLE", info, err, id)
	}
	if d.SourceAddr != "447700900123" || d.DestinationAddr != "12345" {
		t.Errorf("receipt from %s to %s, want from the destination to the source", d.SourceAddr, d.DestinationAddr)
	}
	p.Send(h.Sequence, pdu.ESME_RX_T_APPN, &pdu.DeliverSMResp{})
	eventually(t, "the answer recorded", func() bool { return len(sim.DeliverAnswers()) == 1 })
	if a := sim.DeliverAnswers(); a[0] != pdu.ESME_RX_T_APPN || sim.Receipts() != 1 {
		t.Errorf("answers %v, receipts %d", a, sim.Receipts())
	}
}

// TestRedeliverReceipts: with RedeliverReceipts, a receipt whose link dropped before its answer is
// sent again, the same receipt, on the next link bound; one answered with an error is sent again on
// the link, a moment later; one answered ESME_ROK is not. Without it, none is sent again.
func TestRedeliverReceipts(t *testing.T) {
	sim := start(t, smscsim.Options{RedeliverReceipts: true})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	_, id := answered(t, p, submit(p, "again", pdu.RegisteredDeliveryReceiptFinal))
	_, first := p.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
	p.Conn.Close() // the link drops before the receipt is answered
	eventually(t, "the receipt kept", func() bool { return sim.ReceiptsPending() == 1 })

	q := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	h, again := q.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
	if info, _ := dlr.FromDeliverSM(again.(*pdu.DeliverSM)); info.MessageID != id || string(again.(*pdu.DeliverSM).ShortMessage) != string(first.(*pdu.DeliverSM).ShortMessage) {
		t.Errorf("sent again %q, want %q", again.(*pdu.DeliverSM).ShortMessage, first.(*pdu.DeliverSM).ShortMessage)
	}
	q.Send(h.Sequence, pdu.ESME_RX_T_APPN, &pdu.DeliverSMResp{}) // refused: sent again on this link
	h, again = q.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
	if info, _ := dlr.FromDeliverSM(again.(*pdu.DeliverSM)); info.MessageID != id {
		t.Errorf("sent again after an error: %q", again.(*pdu.DeliverSM).ShortMessage)
	}
	q.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
	eventually(t, "the answer recorded", func() bool { return len(sim.DeliverAnswers()) == 3 })
	st := sim.Stats(0)
	if sim.ReceiptsResent() != 2 || sim.ReceiptsPending() != 0 || st.ReceiptsSent != 3 || st.ReceiptsAnswered != 1 || st.ReceiptsFailed != 2 {
		t.Errorf("resent %d, pending %d, sent %d, answered %d, failed %d; want 2, 0, 3, 1, 2",
			sim.ReceiptsResent(), sim.ReceiptsPending(), st.ReceiptsSent, st.ReceiptsAnswered, st.ReceiptsFailed)
	}

	plain := start(t, smscsim.Options{})
	p = bind(t, plain, "gw", "pw", pdu.ESME_ROK)
	answered(t, p, submit(p, "once", pdu.RegisteredDeliveryReceiptFinal))
	p.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
	p.Conn.Close()
	eventually(t, "the receipt failed", func() bool { return plain.Stats(0).ReceiptsFailed == 1 })
	q = bind(t, plain, "gw", "pw", pdu.ESME_ROK)
	answered(t, q, submit(q, "next", 0)) // the first thing on the new link: no receipt came before it
	if plain.ReceiptsResent() != 0 || plain.ReceiptsPending() != 0 {
		t.Errorf("without RedeliverReceipts: resent %d, pending %d", plain.ReceiptsResent(), plain.ReceiptsPending())
	}
}

func TestReceiptFirst(t *testing.T) {
	sim := start(t, smscsim.Options{ReceiptFirst: true})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	seq := submit(p, "early", pdu.RegisteredDeliveryReceiptFinal)
	h, _ := p.Expect(pdu.DeliverSMID, pdu.ESME_ROK) // before the submit_sm_resp
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
	if st, id := answered(t, p, seq); st != pdu.ESME_ROK || id != "SIM0001" {
		t.Errorf("answered %v %q", st, id)
	}
}

func TestNoReceipts(t *testing.T) {
	sim := start(t, smscsim.Options{ReceiptDelay: -1})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	answered(t, p, submit(p, "a", pdu.RegisteredDeliveryReceiptFinal))
	// An enquire_link answered next shows nothing was sent in between.
	seq := p.Request(&pdu.EnquireLink{})
	if h, _ := p.Expect(pdu.EnquireLinkRespID, pdu.ESME_ROK); h.Sequence != seq || sim.Receipts() != 0 {
		t.Errorf("receipts %d", sim.Receipts())
	}
}

func TestSendMO(t *testing.T) {
	sim := start(t, smscsim.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), smpptest.Wait)
	defer cancel()
	if _, err := sim.SendMO(ctx, &pdu.DeliverSM{}); !errors.Is(err, smscsim.ErrNoBind) {
		t.Fatalf("MO with nothing bound: %v", err)
	}
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	eventually(t, "the bind", func() bool { return sim.Bound() == 1 })
	got := make(chan error, 1)
	go func() {
		st, err := sim.SendMO(ctx, &pdu.DeliverSM{SourceAddr: "447700900555", DestinationAddr: "12345", ShortMessage: []byte("STOP")})
		if err == nil && st != pdu.ESME_ROK {
			err = st
		}
		got <- err
	}()
	h, b := p.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
	if d := b.(*pdu.DeliverSM); string(d.ShortMessage) != "STOP" || dlr.IsReceipt(d.EsmClass) {
		t.Errorf("MO %+v", d)
	}
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if a := sim.DeliverAnswers(); len(a) != 1 || a[0] != pdu.ESME_ROK {
		t.Errorf("answers %v", a)
	}
}

func TestFaults(t *testing.T) {
	sim := start(t, smscsim.Options{})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	sim.Inject(smscsim.Fault{Status: pdu.ESME_RTHROTTLED, Count: 2})
	sim.Inject(smscsim.Fault{Status: pdu.ESME_RINVDSTADR, Count: 1})
	for i, want := range []pdu.CommandStatus{pdu.ESME_RTHROTTLED, pdu.ESME_RTHROTTLED, pdu.ESME_RINVDSTADR, pdu.ESME_ROK} {
		if st, _ := answered(t, p, submit(p, "x", 0)); st != want {
			t.Errorf("submit %d answered %v, want %v", i, st, want)
		}
	}

	// Held: the first is never answered, the next is.
	sim.Inject(smscsim.Fault{Hold: true, Count: 1})
	submit(p, "held", 0)
	if st, id := answered(t, p, submit(p, "after", 0)); st != pdu.ESME_ROK || id != "SIM0002" {
		t.Errorf("after the held one: %v %q", st, id)
	}

	// Every submission refused until Clear.
	sim.Inject(smscsim.Fault{Status: pdu.ESME_RSYSERR})
	for range 3 {
		if st, _ := answered(t, p, submit(p, "x", 0)); st != pdu.ESME_RSYSERR {
			t.Errorf("answered %v, want ESME_RSYSERR", st)
		}
	}
	sim.Clear()
	if st, _ := answered(t, p, submit(p, "x", 0)); st != pdu.ESME_ROK {
		t.Errorf("after Clear: %v", st)
	}

	// Two held, then the link drops under them.
	sim.Inject(smscsim.Fault{Hold: true, Close: true, Count: 2})
	submit(p, "lost", 0)
	submit(p, "lost", 0)
	p.ExpectEOF()
	if sim.Times("lost") != 2 || sim.Count() != 12 {
		t.Errorf("lost seen %d times, %d submissions in all", sim.Times("lost"), sim.Count())
	}

	// CloseLinks drops a bound link at once.
	q := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	eventually(t, "the bind", func() bool { return sim.Bound() == 1 })
	sim.CloseLinks()
	q.ExpectEOF()
}

func TestShutdown(t *testing.T) {
	sim := start(t, smscsim.Options{})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	eventually(t, "the bind", func() bool { return sim.Bound() == 1 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), smpptest.Wait)
		defer cancel()
		done <- sim.Shutdown(ctx)
	}()
	h, _ := p.Expect(pdu.UnbindID, pdu.ESME_ROK)
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.UnbindResp{})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.ExpectEOF()
}

// TestAsDataSM: with AsDataSM, receipts and MO go out as data_sm, the text in message_payload.
func TestAsDataSM(t *testing.T) {
	sim := start(t, smscsim.Options{AsDataSM: true})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	_, id := answered(t, p, submit(p, "final please", pdu.RegisteredDeliveryReceiptFinal))
	h, b := p.Expect(pdu.DataSMID, pdu.ESME_ROK)
	ds := b.(*pdu.DataSM)
	payload, _ := ds.Options.Get(pdu.TagMessagePayload)
	if rid, _ := ds.Options.ReceiptedMessageID(); rid != id || !dlr.IsReceipt(ds.EsmClass) || !strings.Contains(string(payload), "id:"+id) {
		t.Errorf("receipt data_sm %+v, payload %q; want the receipt of %s", ds, payload, id)
	}
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DataSMResp{})

	type answer struct {
		st  pdu.CommandStatus
		err error
	}
	done := make(chan answer, 1)
	go func() {
		st, err := sim.SendMO(context.Background(), &pdu.DeliverSM{SourceAddr: "447700900555", DestinationAddr: "12345", ShortMessage: []byte("STOP")})
		done <- answer{st, err}
	}()
	h, b = p.Expect(pdu.DataSMID, pdu.ESME_ROK)
	if payload, _ := b.(*pdu.DataSM).Options.Get(pdu.TagMessagePayload); string(payload) != "STOP" {
		t.Errorf("MO payload %q, want STOP", payload)
	}
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DataSMResp{})
	if a := <-done; a.err != nil || a.st != pdu.ESME_ROK {
		t.Errorf("MO answered %v %v", a.st, a.err)
	}
}

func TestCancelReplace(t *testing.T) {
	sim := start(t, smscsim.Options{})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	p.Request(&pdu.CancelSM{MessageID: "SIM0001", SourceAddr: "1", DestinationAddr: "2"})
	p.Expect(pdu.CancelSMRespID, pdu.ESME_ROK)
	sim.SetEditStatus(pdu.ESME_RREPLACEFAIL)
	p.Request(&pdu.ReplaceSM{MessageID: "SIM0002", SourceAddr: "1", ShortMessage: []byte("new")})
	p.Expect(pdu.ReplaceSMRespID, pdu.ESME_RREPLACEFAIL)
	if c := sim.Cancels(); len(c) != 1 || c[0].MessageID != "SIM0001" {
		t.Errorf("cancels %+v", c)
	}
	if r := sim.Replaces(); len(r) != 1 || r[0].MessageID != "SIM0002" || string(r[0].ShortMessage) != "new" {
		t.Errorf("replaces %+v", r)
	}
	if sim.Count() != 0 {
		t.Errorf("count %d: cancel and replace are not submissions", sim.Count())
	}
}
