package gateway

import (
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/pdu/text"
	"github.com/smppgw/smppgw/store"
)

// TestMessageIDFormats: three accounts, one per id form, each submit_sm over a real socket through a
// real upstream (the simulator): the submit_sm_resp id has the account's form, the receipt the ESME
// gets carries that same id in its text and in receipted_message_id, query_sm by it answers it
// DELIVERED, and the store holds the message under it. Before message_ids every account got the
// 16-digit form, so the hex and uuid cases failed.
func TestMessageIDFormats(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	dec, hx, uu := testAccount(t, "dec", "secret"), testAccount(t, "hx", "secret"), testAccount(t, "uu", "secret")
	hx.MessageIDs, uu.MessageIDs = IDHex, IDUUID
	_, addr, _ := startGateway(t, Config{
		Accounts:  []Account{dec, hx, uu},
		Upstreams: []ClientConfig{simUpstream("sim", sim.Addr())},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	ctx := sessiontest.Ctx(t)
	for _, tc := range []struct {
		account string
		form    *regexp.Regexp
	}{
		{"dec", regexp.MustCompile(`^[1-7][0-9]{15}$`)},
		{"hx", regexp.MustCompile(`^[1-9a-f][0-9a-f]{12,13}$`)},
		{"uu", regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)},
	} {
		t.Run(tc.account, func(t *testing.T) {
			rx := sessiontest.NewRecorder()
			e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, tc.account, "secret")
			resp, err := e.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "447700900123",
				RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("id form")})
			if err != nil || resp.Status != pdu.ESME_ROK {
				t.Fatalf("submit_sm: %v %v", resp.Status, err)
			}
			id := resp.Body.(*pdu.SubmitSMResp).MessageID
			if !tc.form.MatchString(id) || len(id) > 64 {
				t.Fatalf("submit_sm_resp id %q is not of the %s form", id, tc.account)
			}
			info := awaitReceipts(t, rx, 1)[0]
			req := rx.Requests()
			rid, _ := req[0].Body.(*pdu.DeliverSM).Options.ReceiptedMessageID()
			if rid != id || info.Receipt.ID != id || info.State != pdu.DELIVERED {
				t.Errorf("receipt receipted_message_id %q, text id %q, state %v; want %q DELIVERED", rid, info.Receipt.ID, info.State, id)
			}
			q, err := e.Send(ctx, &pdu.QuerySM{MessageID: id, SourceAddr: "1"})
			if err != nil || q.Status != pdu.ESME_ROK {
				t.Fatalf("query_sm %q: %v %v", id, q.Status, err)
			}
			if qr := q.Body.(*pdu.QuerySMResp); qr.MessageID != id || qr.MessageState != pdu.DELIVERED {
				t.Errorf("query_sm_resp %+v, want %q DELIVERED", qr, id)
			}
			if m, err := st.GetMessage(ctx, id); err != nil || m.Account != tc.account {
				t.Errorf("stored under %q: %+v %v", id, m, err)
			}
		})
	}
}

// TestLongMessageReceiptModes: a 3-part API message with a receipt asked for, each part receipted
// DELIVERED by the upstream: the account in receipts "message" mode gets exactly one receipt
// deliver_sm (after the third part's), the one in "part" mode exactly three, each carrying the message
// id. Before receipts existed the "part" account got one too. Only API messages are split by the
// gateway, and their receipts reach the binds only with api_receipts_over_smpp, which both accounts
// set; an account without it ("api") gets none on its bind, whatever its mode.
func TestLongMessageReceiptModes(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	whole, parts, api := testAccount(t, "whole", "secret"), testAccount(t, "parts", "secret"), testAccount(t, "api", "secret")
	parts.Receipts, api.Receipts = ReceiptPerPart, ReceiptPerPart
	whole.APIReceiptsOverSMPP, parts.APIReceiptsOverSMPP = true, true
	g, addr, _ := startGateway(t, Config{
		Accounts:  []Account{whole, parts, api},
		Upstreams: []ClientConfig{simUpstream("sim", sim.Addr())},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	ctx := sessiontest.Ctx(t)
	for _, tc := range []struct {
		account string
		want    int
	}{{"whole", 1}, {"parts", 3}, {"api", 0}} {
		t.Run(tc.account, func(t *testing.T) {
			rx := sessiontest.NewRecorder()
			sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindReceiver, tc.account, "secret")
			m, err := g.Submit(ctx, Submission{Account: tc.account, Source: store.Address{Addr: "ACME"}, Destination: store.Address{Addr: "447700900123"},
				Text: strings.Repeat("three parts ", 35), RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal})
			if err != nil || len(m.Parts) != 3 {
				t.Fatalf("submit: %v, %+v", err, m)
			}
			sessiontest.Eventually(t, "the message DELIVERED", func() bool {
				got, err := st.GetMessage(ctx, m.ID)
				return err == nil && got.Status == pdu.DELIVERED
			})
			infos := awaitReceipts(t, rx, tc.want)
			time.Sleep(300 * time.Millisecond) // room for a receipt too many
			if n := len(rx.Requests()); n != tc.want {
				t.Errorf("%d receipt deliver_sm, want %d", n, tc.want)
			}
			for i, info := range infos {
				if info.MessageID != m.ID || info.Receipt.ID != m.ID || info.State != pdu.DELIVERED {
					t.Errorf("receipt %d: %+v, want %s DELIVERED", i, info, m.ID)
				}
			}
		})
	}
}

// TestDuplicateReceipts: the upstream sends each receipt twice (a one-part message, and the last part
// of a 3-part one): the ESME gets one receipt deliver_sm per message, the API's subscriber one
// receipt event per receipt the upstream meant, and Stats counts the copies. Before, the copy went
// everywhere the first did. On both stores: the store's receipt list decides what is a copy. The
// 3-part message is an API one (the gateway splits no other), so acme opts in to its receipt on the
// bind (api_receipts_over_smpp).
func TestDuplicateReceipts(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) { testDuplicateReceipts(t, open()) })
}

func testDuplicateReceipts(t *testing.T, st store.Store) {
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{ReceiptDelay: -1})
	cfg := acmeVia(t, simUpstream("sim", sim.Addr()))
	cfg.Accounts[0].APIReceiptsOverSMPP = true
	g, addr, _ := startGateway(t, cfg, st)
	ctx := sessiontest.Ctx(t)
	events, cancel := g.Subscribe("acme")
	defer cancel()
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	upstreamIDs := func(id string, n int) []string {
		t.Helper()
		var ids []string
		sessiontest.Eventually(t, "the parts' upstream ids", func() bool {
			m, err := st.GetMessage(ctx, id)
			if err != nil {
				return false
			}
			ids = ids[:0]
			for _, p := range m.Parts {
				if p.UpstreamID != "" {
					ids = append(ids, p.UpstreamID)
				}
			}
			return len(ids) == n
		})
		return ids
	}
	receiptTwice := func(upID string) {
		t.Helper()
		for i := 0; i < 2; i++ {
			if s, err := sim.SendReceipt(ctx, upID, pdu.DELIVERED); err != nil || s != pdu.ESME_ROK {
				t.Fatalf("receipt %s copy %d: %v %v", upID, i+1, s, err)
			}
		}
	}
	countEvents := func(want int) {
		t.Helper()
		got := 0
		deadline := time.After(500 * time.Millisecond)
		for {
			select {
			case ev := <-events:
				if ev.Kind == EventReceipt {
					got++
				}
				continue
			case <-deadline:
			}
			break
		}
		if got != want {
			t.Errorf("%d receipt events, want %d", got, want)
		}
	}

	resp, err := e.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "447700900123",
		RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("once")})
	if err != nil || resp.Status != pdu.ESME_ROK {
		t.Fatalf("submit_sm: %v %v", resp.Status, err)
	}
	one := resp.Body.(*pdu.SubmitSMResp).MessageID
	receiptTwice(upstreamIDs(one, 1)[0])
	if info := awaitReceipts(t, rx, 1)[0]; info.MessageID != one {
		t.Errorf("receipt for %s, want %s", info.MessageID, one)
	}
	countEvents(1)

	m, err := g.Submit(ctx, Submission{Account: "acme", Source: store.Address{Addr: "ACME"}, Destination: store.Address{Addr: "447700900123"},
		Text: strings.Repeat("three parts ", 35), RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal})
	if err != nil || len(m.Parts) != 3 {
		t.Fatalf("submit: %v, %+v", err, m)
	}
	for _, up := range upstreamIDs(m.ID, 3) {
		receiptTwice(up)
	}
	if info := awaitReceipts(t, rx, 2)[1]; info.MessageID != m.ID || info.State != pdu.DELIVERED {
		t.Errorf("receipt %+v, want %s DELIVERED", info, m.ID)
	}
	countEvents(3)
	if n := len(rx.Requests()); n != 2 {
		t.Errorf("%d receipt deliver_sm at the ESME, want 2", n)
	}
	stats, err := g.Stats(ctx)
	if err != nil || stats.ReceiptsIn != 8 || stats.ReceiptsDuplicate != 4 {
		t.Errorf("ReceiptsIn %d, ReceiptsDuplicate %d (%v); want 8 and 4", stats.ReceiptsIn, stats.ReceiptsDuplicate, err)
	}
}

// TestLongMOPayload: long MO cut with 8-bit UDH, 16-bit UDH and SAR, one out of order, one with a
// part sent twice, to an account set to long_mo payload: its ESME gets one deliver_sm per message,
// short_message empty and the whole text in message_payload, and the API's subscriber one MO naming
// the upstream. Before long_mo, the ESME got the parts.
func TestLongMOPayload(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	acct := testAccount(t, "pay", "secret")
	acct.LongMO = LongMOPayload
	g, addr, _ := startGateway(t, Config{
		Accounts:  []Account{acct},
		Upstreams: []ClientConfig{simUpstream("sim", sim.Addr())},
		Routing:   RouterConfig{MORoutes: []MORoute{{Prefix: "12345", Account: "pay"}}},
	}, st)
	sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
	events, cancel := g.Subscribe("pay")
	defer cancel()
	rx := sessiontest.NewRecorder()
	sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindReceiver, "pay", "secret")
	ctx := sessiontest.Ctx(t)

	gsm := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8)
	ucs := strings.Repeat("Привет, мир! Долгое сообщение по частям. ", 4)
	split := func(t *testing.T, mode pdu.SplitMode, s string, ref uint16) []*pdu.DeliverSM {
		t.Helper()
		parts, err := pdu.SplitText(&pdu.DeliverSM{SourceAddrTON: 1, SourceAddrNPI: 1, SourceAddr: "447700900555",
			DestinationAddr: "12345"}, mode, s, ref)
		if err != nil || len(parts) < 3 {
			t.Fatalf("split: %d parts, %v", len(parts), err)
		}
		return parts
	}
	delivered := 0
	for _, tc := range []struct {
		name  string
		text  string
		order func(p []*pdu.DeliverSM) []*pdu.DeliverSM
		mode  pdu.SplitMode
	}{
		{"UDH8", gsm, nil, pdu.SplitUDH8},
		{"UDH16", ucs, nil, pdu.SplitUDH16},
		{"SAR", gsm, nil, pdu.SplitSAR},
		{"UDH8 out of order", ucs, func(p []*pdu.DeliverSM) []*pdu.DeliverSM { return []*pdu.DeliverSM{p[2], p[0], p[1]} }, pdu.SplitUDH8},
		{"SAR duplicated part", gsm, func(p []*pdu.DeliverSM) []*pdu.DeliverSM { return []*pdu.DeliverSM{p[0], p[1], p[1], p[2]} }, pdu.SplitSAR},
		{"UDH16 duplicated and out of order", gsm, func(p []*pdu.DeliverSM) []*pdu.DeliverSM {
			return []*pdu.DeliverSM{p[1], p[2], p[1], p[0], p[2]}
		}, pdu.SplitUDH16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := split(t, tc.mode, tc.text, uint16(300+delivered))
			if tc.order != nil {
				parts = tc.order(parts)
			}
			for i, d := range parts {
				if s, err := sim.SendMO(ctx, d); err != nil || s != pdu.ESME_ROK {
					t.Fatalf("part %d answered %v %v", i+1, s, err)
				}
			}
			delivered++
			sessiontest.Eventually(t, "the whole MO at the ESME", func() bool { return len(rx.Requests()) >= delivered })
			select {
			case ev := <-events:
				if got := moText(t, ev); got != tc.text || ev.Upstream != "sim" {
					t.Errorf("MO event from %q text %q, want from sim %q", ev.Upstream, got, tc.text)
				}
			case <-time.After(sessiontest.Wait):
				t.Fatal("no MO event")
			}
			time.Sleep(200 * time.Millisecond) // room for a deliver_sm or an event too many
			if n := len(rx.Requests()); n != delivered {
				t.Fatalf("%d deliver_sm at the ESME after %d long MO, want one each", n, delivered)
			}
			select {
			case ev := <-events:
				t.Errorf("a second event %+v for one long MO", ev)
			default:
			}
			d := rx.Requests()[delivered-1].Body.(*pdu.DeliverSM)
			payload, ok := d.Options.MessagePayload()
			if !ok || len(d.ShortMessage) != 0 || d.EsmClass&pdu.EsmClassUDHI != 0 || d.Options.Has(pdu.TagSARMsgRefNum) {
				t.Fatalf("deliver_sm short_message %x, esm_class %#x, TLVs %x: want the whole in message_payload alone", d.ShortMessage, d.EsmClass, []byte(d.Options))
			}
			if got, err := text.Decode(text.Coding(d.DataCoding), payload); err != nil || got != tc.text {
				t.Errorf("message_payload %q (%v), want %q", got, err, tc.text)
			}
			if d.SourceAddr != "447700900555" || d.DestinationAddr != "12345" || dlr.IsReceipt(d.EsmClass) {
				t.Errorf("deliver_sm %s -> %s esm_class %#x", d.SourceAddr, d.DestinationAddr, d.EsmClass)
			}
		})
	}
}

// failingEnqueue fails the next EnqueueDelivery calls while fail is above zero.
type failingEnqueue struct {
	store.Store
	fail atomic.Int32
}

func (f *failingEnqueue) EnqueueDelivery(ctx context.Context, d *store.Delivery) error {
	if f.fail.Add(-1) >= 0 {
		return store.ErrUnavailable
	}
	return f.Store.EnqueueDelivery(ctx, d)
}

// TestLongMOPayloadHeldParts: for an account set to long_mo payload, the parts are held, not queued;
// a message whose queueing fails answers its last part ESME_RX_T_APPN and is queued whole when the
// upstream sends that part again (the Reassembler alone would take it for a late copy and drop it);
// a message whose last part never comes is queued as the parts it had after the reassembly
// time-out. Counted in the account's store queue.
func TestLongMOPayloadHeldParts(t *testing.T) {
	base := newEmbedded(t)
	st := &failingEnqueue{Store: base}
	ctx := sessiontest.Ctx(t)
	acct := testAccount(t, "pay", "secret")
	acct.LongMO = LongMOPayload
	if err := seedAccounts(ctx, st, []Account{acct}); err != nil {
		t.Fatal(err)
	}
	work := newPool(4)
	deliv := newDeliverer(RouterConfig{}.withDefaults(), st, "test", work, zerolog.Nop())
	mo := newMORouteTable([]MORoute{{Prefix: "12345", Account: "pay"}}, st, zerolog.Nop())
	if err := mo.seed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mo.load(ctx); err != nil {
		t.Fatal(err)
	}
	r := newFromUpstream(mo, st, nil, deliv, newHub(), newCounters(), work, zerolog.Nop())
	r.accounts = newAccountOptions(st, zerolog.Nop())
	r.initReassembly(pdu.ReassemblerConfig{Timeout: 200 * time.Millisecond})
	queued := func() []*store.Delivery {
		t.Helper()
		ds, err := base.ClaimDeliveries(ctx, "pay", "test", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := base.Ack(ctx, leases(ds)...); err != nil {
			t.Fatal(err)
		}
		return ds
	}
	long := strings.Repeat("x", 400)
	parts, err := pdu.SplitText(&pdu.DeliverSM{SourceAddr: "447700900555", DestinationAddr: "12345"}, pdu.SplitUDH8, long, 9)
	if err != nil || len(parts) != 3 {
		t.Fatalf("split: %d parts, %v", len(parts), err)
	}
	for _, p := range parts[:2] {
		if s := r.mo("sim", "pay", cloneDeliver(p)); s != pdu.ESME_ROK {
			t.Fatalf("held part answered %v", s)
		}
	}
	if ds := queued(); len(ds) != 0 {
		t.Fatalf("%d deliveries queued while the parts are held", len(ds))
	}
	st.fail.Store(1)
	if s := r.mo("sim", "pay", cloneDeliver(parts[2])); s != pdu.ESME_RX_T_APPN {
		t.Fatalf("last part answered %v while the store fails, want ESME_RX_T_APPN", s)
	}
	if s := r.mo("sim", "pay", cloneDeliver(parts[2])); s != pdu.ESME_ROK {
		t.Fatalf("last part sent again answered %v", s)
	}
	ds := queued()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries queued, want the whole message once", len(ds))
	}
	if p, _ := pdu.Options(ds[0].TLVs).MessagePayload(); string(p) != long || len(ds[0].ShortMessage) != 0 {
		t.Errorf("queued %q in message_payload, short_message %q", p, ds[0].ShortMessage)
	}

	// Two parts of three, then nothing: after the time-out they are queued on their own.
	parts, err = pdu.SplitText(&pdu.DeliverSM{SourceAddr: "447700900555", DestinationAddr: "12345"}, pdu.SplitUDH8, long, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*pdu.DeliverSM{parts[2], parts[0]} {
		if s := r.mo("sim", "pay", cloneDeliver(p)); s != pdu.ESME_ROK {
			t.Fatalf("held part answered %v", s)
		}
	}
	var got []*store.Delivery
	sessiontest.Eventually(t, "the held parts queued after the time-out", func() bool {
		got = append(got, queued()...)
		return len(got) >= 2
	})
	if len(got) != 2 || string(got[0].ShortMessage) != strings.Repeat("x", 153) || string(got[1].ShortMessage) != strings.Repeat("x", 400-306) {
		t.Errorf("queued after the time-out: %d deliveries", len(got))
	}
}

func leases(ds []*store.Delivery) []store.Lease {
	out := make([]store.Lease, len(ds))
	for i, d := range ds {
		out[i] = d.Lease
	}
	return out
}

// TestReceiptSentAgainAfterFailedHandOn: a receipt recorded in the store whose deliver_sm to the
// account could not be queued is answered ESME_RX_T_APPN; the copy the upstream sends again is
// recorded after the first, and must be handed on, not taken for a duplicate of the first (which
// reached nobody). Counted at the ESME: exactly one receipt.
func TestReceiptSentAgainAfterFailedHandOn(t *testing.T) {
	st := &failingEnqueue{Store: newEmbedded(t)}
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{ReceiptDelay: 50 * time.Millisecond, RedeliverReceipts: true})
	g, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
	ctx := sessiontest.Ctx(t)
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	st.fail.Store(1) // the receipt's deliver_sm, the first EnqueueDelivery from here on
	resp, err := e.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "447700900123",
		RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("retried")})
	if err != nil || resp.Status != pdu.ESME_ROK {
		t.Fatalf("submit_sm: %v %v", resp.Status, err)
	}
	id := resp.Body.(*pdu.SubmitSMResp).MessageID
	if info := awaitReceipts(t, rx, 1)[0]; info.MessageID != id {
		t.Errorf("receipt for %s, want %s", info.MessageID, id)
	}
	time.Sleep(300 * time.Millisecond) // room for a second receipt, which must not come
	if n := len(rx.Requests()); n != 1 {
		t.Errorf("%d receipts at the ESME, want 1", n)
	}
	if st.fail.Load() >= 0 {
		t.Errorf("the failing EnqueueDelivery was never reached")
	}
	if s, err := g.Stats(ctx); err != nil || s.ReceiptsDuplicate != 0 {
		t.Errorf("%d receipts counted duplicate (%v), want 0", s.ReceiptsDuplicate, err)
	}
}
