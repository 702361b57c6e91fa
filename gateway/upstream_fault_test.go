package gateway

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
)

// Issue 9's upstream faults, counted at both ends: an ESME keeps a window full of submissions, the
// upstream (internal/smscsim) misbehaves on a fixed schedule, and the counts say whether every
// message the ESME was answered ESME_ROK for reached the upstream, how many reached it twice and why,
// and whether each message's receipt came back to the ESME exactly once.

const (
	faultMessages = 1000 // per run
	faultSenders  = 16   // ESME goroutines sending at once (the ESME's window is 32)
	faultWindow   = 10   // the gateway's window towards the upstream
	faultEvents   = 4    // closes or stalls per run
	faultBetween  = 150  // submissions the upstream answers before each fault
	faultDrain    = time.Minute
)

// faultCounts are one run's counts.
type faultCounts struct {
	sent, acked        int // submit_sm the ESME sent; answered ESME_ROK
	received, distinct int // submit_sm at the upstream: all, and distinct messages (by text)
	duplicates         int // received - distinct: messages the upstream got more than once
	lost               int // acked but never accepted by the upstream (answered ESME_ROK, whether or not the answer got through)
	receipts           int // receipts at the ESME
	receiptDups        int // receipts beyond the first for a message
	noReceipt          int // acked messages with no receipt at the ESME
	requeued           int // the gateway's count of lost PDUs and timed-out submissions it sent again
	drops              int // links the upstream dropped
	binds              int // binds the upstream accepted
	receiptsResent     int // receipts the upstream sent again, their first send unanswered
	notDelivered       int // receipts at the ESME saying anything but DELIVERED
}

func (c faultCounts) String() string {
	return fmt.Sprintf("sent=%d acked=%d upstream_received=%d upstream_distinct=%d duplicates=%d lost=%d receipts=%d receipt_dups=%d no_receipt=%d gateway_requeued=%d links_dropped=%d binds=%d upstream_receipts_resent=%d not_delivered=%d",
		c.sent, c.acked, c.received, c.distinct, c.duplicates, c.lost, c.receipts, c.receiptDups, c.noReceipt, c.requeued, c.drops, c.binds, c.receiptsResent, c.notDelivered)
}

// runFaultLoad binds an ESME to addr, sends n submissions asking for receipts from faultSenders
// goroutines, waits (bounded) until every acked message has its receipt and the gateway's queue is
// empty, and counts both ends.
func runFaultLoad(t *testing.T, g *Gateway, addr string, sim *smscsim.Sim, n int) faultCounts {
	t.Helper()
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addr, rx, session.Config{Window: 32}, session.BindTransceiver, "acme", "secret")

	var (
		mu    sync.Mutex
		acked = map[string]string{} // our message id -> text
		wg    sync.WaitGroup
		errs  = make(chan error, faultSenders)
	)
	ctx, cancel := context.WithTimeout(context.Background(), faultDrain)
	defer cancel()
	for w := range faultSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += faultSenders {
				text := fmt.Sprintf("fault %05d", i)
				resp, err := e.Send(ctx, &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: fmt.Sprintf("44770%06d", i),
					RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte(text)})
				if err != nil {
					errs <- fmt.Errorf("submit %d: %w", i, err)
					return
				}
				mu.Lock()
				acked[resp.Body.(*pdu.SubmitSMResp).MessageID] = text
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err) // counted below as sent but not acked
	}

	// Drain, bounded in time: every acked message has a receipt at the ESME, nothing is left queued
	// or in flight towards the upstream, and the upstream has no receipt in flight or kept to send again.
	for {
		up := g.Upstreams()[0]
		st := sim.Stats(0)
		have := map[string]bool{}
		for _, req := range rx.Requests() {
			if d, ok := req.Body.(*pdu.DeliverSM); ok {
				if info, err := dlr.FromDeliverSM(d); err == nil {
					have[info.MessageID] = true
				}
			}
		}
		missing := 0
		for id := range acked {
			if !have[id] {
				missing++
			}
		}
		if missing == 0 && up.QueueDepth == 0 && up.Status.Session != nil && up.Status.Session.WindowUsed == 0 &&
			st.ReceiptsAnswered+st.ReceiptsFailed == st.ReceiptsSent && sim.ReceiptsPending() == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Errorf("not drained within %v: %d of %d acked messages without a receipt, queue %d", faultDrain, missing, len(acked), up.QueueDepth)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	c := faultCounts{sent: n, acked: len(acked)}
	times := map[string]int{}
	for _, sm := range sim.Submits() {
		times[string(sm.ShortMessage)]++
		c.received++
	}
	c.distinct = len(times)
	c.duplicates = c.received - c.distinct
	perID := map[string]int{}
	for _, req := range rx.Requests() {
		d, ok := req.Body.(*pdu.DeliverSM)
		if !ok {
			t.Errorf("the ESME got a %T", req.Body)
			continue
		}
		info, err := dlr.FromDeliverSM(d)
		if err != nil {
			t.Errorf("receipt: %v", err)
			continue
		}
		if info.State != pdu.DELIVERED {
			c.notDelivered++
		}
		if _, ok := acked[info.MessageID]; !ok {
			t.Errorf("receipt for %s, which the ESME was never given", info.MessageID)
		}
		c.receipts++
		perID[info.MessageID]++
	}
	accepted := acceptedTexts(sim)
	for id, text := range acked {
		if accepted[text] == 0 {
			c.lost++
		}
		switch k := perID[id]; {
		case k == 0:
			c.noReceipt++
		case k > 1:
			c.receiptDups += k - 1
		}
	}
	up := g.Upstreams()[0].Status
	c.requeued = int(up.Requeued)
	st := sim.Stats(0)
	c.drops = st.LinksDropped
	c.binds, _ = sim.Binds()
	c.receiptsResent = sim.ReceiptsResent()
	return c
}

// faultKeep is how many submissions the upstream keeps the answer of (smscsim's KeepLast): all of a run.
const faultKeep = 4 * faultMessages

// acceptedTexts counts, by text, the submissions the upstream decided to answer ESME_ROK (a held one
// is not; an answer lost with its link is). It needs the simulator's KeepLast to cover the run.
func acceptedTexts(sim *smscsim.Sim) map[string]int {
	ok := pdu.ESME_ROK.String()
	accepted := map[string]int{}
	for _, r := range sim.Stats(faultKeep).Last {
		if r.Status == ok {
			accepted[r.Text]++
		}
	}
	return accepted
}

// checkFaultCounts asserts what holds whatever the fault: every submission acked, none lost, one
// receipt each (or two when the upstream sent it twice), and, when upstreamSawAll (every send the
// gateway made reached the upstream), every duplicate one the gateway sent again because its first
// send got no answer.
func checkFaultCounts(t *testing.T, c faultCounts, upstreamSawAll bool) {
	t.Helper()
	if c.acked != c.sent {
		t.Errorf("acked %d of %d", c.acked, c.sent)
	}
	if c.lost != 0 {
		t.Errorf("%d acked messages never accepted by the upstream", c.lost)
	}
	if c.notDelivered != 0 {
		t.Errorf("%d receipts said the message was not delivered", c.notDelivered)
	}
	if c.distinct != c.acked {
		t.Errorf("the upstream got %d distinct messages, want the %d acked", c.distinct, c.acked)
	}
	if c.noReceipt != 0 || c.receipts != c.acked+c.receiptDups {
		t.Errorf("%d receipts for %d acked messages (%d without, %d twice or more)", c.receipts, c.acked, c.noReceipt, c.receiptDups)
	}
	// A receipt reaches the ESME twice only when the upstream sent it twice: the gateway recorded it
	// but the link dropped before its deliver_sm_resp was written, so the upstream sent it again on
	// the next bind, and the gateway does not tell a receipt sent again from a first one.
	if c.receiptDups > c.receiptsResent {
		t.Errorf("%d receipts reached the ESME twice, but the upstream sent only %d again", c.receiptDups, c.receiptsResent)
	}
	if upstreamSawAll && c.duplicates != c.requeued {
		t.Errorf("%d duplicates at the upstream, but the gateway sent %d again", c.duplicates, c.requeued)
	}
}

// faultSchedule queues, faultEvents times, faultBetween submissions answered as usual and then f;
// after the last, submissions are answered as usual.
func faultSchedule(sim *smscsim.Sim, f smscsim.Fault) {
	for range faultEvents {
		sim.Inject(smscsim.Fault{Status: pdu.ESME_ROK, Count: faultBetween})
		sim.Inject(f)
	}
}

// TestFaultUpstreamClosesMidWindow: faultEvents times during a run, the upstream takes a full window
// of submit_sm, answers none and closes the connection. Each close loses exactly the window it held:
// those are the lost PDUs, sent again on the next bind, and the only duplicates the upstream sees.
func TestFaultUpstreamClosesMidWindow(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		sim := startSim(t, "127.0.0.1:0", smscsim.Options{RedeliverReceipts: true, KeepLast: faultKeep})
		faultSchedule(sim, smscsim.Fault{Hold: true, Close: true, Count: faultWindow})
		up := simUpstream("sim", sim.Addr())
		up.Session.Window = faultWindow
		g, addr, _ := startGateway(t, acmeVia(t, up), open())

		c := runFaultLoad(t, g, addr, sim, faultMessages)
		t.Logf("upstream closes mid-window x%d (window %d): %v", faultEvents, faultWindow, c)
		checkFaultCounts(t, c, true)
		if c.drops != faultEvents {
			t.Errorf("the upstream dropped %d links, want %d", c.drops, faultEvents)
		}
		// The upstream held a full window when it closed: exactly those were sent again.
		if want := faultEvents * faultWindow; c.duplicates != want {
			t.Errorf("%d duplicates, want %d (the window held at each of %d closes)", c.duplicates, want, faultEvents)
		}
	})
}

// TestFaultUpstreamStopsAnswering: faultEvents times during a run, the upstream reads a full window of
// submit_sm and answers none of them, keeping the link (and answering enquire_link); the gateway's
// response timeout gives each back to the queue and it is sent again on the same bind, where the
// upstream has recovered. Each stall costs exactly the window: those are the duplicates.
func TestFaultUpstreamStopsAnswering(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		sim := startSim(t, "127.0.0.1:0", smscsim.Options{RedeliverReceipts: true, KeepLast: faultKeep})
		faultSchedule(sim, smscsim.Fault{Hold: true, Count: faultWindow})
		up := simUpstream("sim", sim.Addr())
		up.Session.Window = faultWindow
		up.Session.ResponseTimeout = time.Second
		g, addr, _ := startGateway(t, acmeVia(t, up), open())

		c := runFaultLoad(t, g, addr, sim, faultMessages)
		t.Logf("upstream stops answering x%d (window %d, response timeout 1s): %v", faultEvents, faultWindow, c)
		checkFaultCounts(t, c, true)
		if c.drops != 0 || c.binds != 1 {
			t.Errorf("%d links dropped and %d binds, want 0 and 1: the stalls cost no bind", c.drops, c.binds)
		}
		if want := faultEvents * faultWindow; c.duplicates < want {
			t.Errorf("%d duplicates, want at least %d (the window held at each of %d stalls)", c.duplicates, want, faultEvents)
		}
	})
}

// freezeProxy forwards TCP connections to an upstream; freeze makes the connections open at that
// moment go silent both ways (what either side sends is read and dropped), as a link through a dead
// NAT or a hung SMSC does, while new connections work. When either side of a connection closes, the
// other is closed too.
type freezeProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	pairs  []*atomic.Bool // each connection's frozen flag
	wg     sync.WaitGroup
}

func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *freezeProxy) Addr() string { return p.l.Addr().String() }

func (p *freezeProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		frozen := new(atomic.Bool)
		p.mu.Lock()
		p.pairs = append(p.pairs, frozen)
		p.mu.Unlock()
		closeBoth := sync.OnceFunc(func() { in.Close(); out.Close() })
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			defer closeBoth()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 && !frozen.Load() {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}
		p.wg.Add(2)
		go pipe(out, in)
		go pipe(in, out)
	}
}

// freeze silences every connection open now; it does not block.
func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.pairs {
		f.Store(true)
	}
}

// TestFaultUpstreamLinkFreezes: faultEvents times during a run, the link to the upstream goes silent
// both ways under a full window (the upstream took the submission that froze it and answered into
// the void): no submit_sm_resp, no enquire_link_resp. The gateway's response timeout gives the
// window back to the queue, its enquire_link goes unanswered, it closes the session and binds again,
// and the new bind sends what was lost. Duplicates are the submissions the upstream had taken before
// the freeze cut off its answers; they are at most what the gateway sent again.
func TestFaultUpstreamLinkFreezes(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		var (
			proxy   *freezeProxy
			count   atomic.Int64
			freezes atomic.Int64
		)
		sim := startSim(t, "127.0.0.1:0", smscsim.Options{RedeliverReceipts: true, KeepLast: faultKeep, OnSubmit: func(*smscsim.Sim, *pdu.SubmitSM) {
			// Every faultBetween-th submission freezes the link under it, faultEvents times.
			if n := count.Add(1); n%faultBetween == 0 && n/faultBetween <= faultEvents {
				freezes.Add(1)
				proxy.freeze()
			}
		}})
		proxy = startFreezeProxy(t, sim.Addr())
		up := simUpstream("sim", proxy.Addr())
		up.Session.Window = faultWindow
		up.Session.ResponseTimeout = time.Second
		up.Session.EnquireLink = 200 * time.Millisecond
		g, addr, _ := startGateway(t, acmeVia(t, up), open())

		c := runFaultLoad(t, g, addr, sim, faultMessages)
		t.Logf("upstream link freezes x%d (window %d, response timeout 1s, enquire_link 200ms): %v", faultEvents, faultWindow, c)
		checkFaultCounts(t, c, false)
		if int(freezes.Load()) != faultEvents || c.binds < faultEvents+1 {
			t.Errorf("%d freezes and %d binds, want %d and at least %d: each freeze costs the bind", freezes.Load(), c.binds, faultEvents, faultEvents+1)
		}
		// The submission that froze the link reached the upstream and went unanswered, each time.
		if c.duplicates < faultEvents || c.duplicates > c.requeued {
			t.Errorf("%d duplicates, want at least %d (one per freeze) and at most the %d sent again", c.duplicates, faultEvents, c.requeued)
		}
	})
}
