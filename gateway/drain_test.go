package gateway

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestGatewayShutdownDrainsSubmissions: an ESME keeps a window of submit_sm in flight while the
// gateway shuts down (issue 11, defect 5: Kannel drops a message answered ESME_RINVBNDSTS). Every
// request is answered before the connection closes, each ESME_ROK or ESME_RTHROTTLED (the
// session's drain status, which ESMEs retry), never anything else; no ESME_ROK comes behind our unbind (Kannel stops reading there and
// sends again what it saw no answer to); every ESME_ROK'd message is in the store and the store
// holds no other; the submissions that cross our unbind on the wire are answered ESME_RTHROTTLED.
func TestGatewayShutdownDrainsSubmissions(t *testing.T) {
	const (
		window   = 8
		crossing = 3    // sent by the ESME after it read our unbind, before its unbind_resp
		before   = 50   // answered ESME_ROK before the shutdown starts
		maxSent  = 5000 // bounds the run if the shutdown never comes
	)
	st := newEmbedded(t)
	_, addr, stop := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("down", freeAddr(t))}, // accepted messages wait in its queue
		Routing:   RouterConfig{Routes: []Route{{Upstream: "down"}}},
	}, st)
	p := smpptest.Dial(t, addr)
	p.Request(&pdu.BindTransmitter{SystemID: "acme", Password: "secret"})
	p.Expect(pdu.BindTransmitterRespID, pdu.ESME_ROK)

	// The writer keeps the window full; the test goroutine reads every answer and hands the slot back.
	var (
		mu   sync.Mutex
		seq  = p.Seq
		sent = map[uint32]bool{}
	)
	send := func(i int) error {
		mu.Lock()
		seq++
		s := seq
		sent[s] = true
		mu.Unlock()
		b, err := pdu.Append(nil, s, pdu.ESME_ROK, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "447700900000", ShortMessage: []byte(fmt.Sprint(i))})
		if err == nil {
			_, err = p.Conn.Write(b)
		}
		return err
	}
	slots := make(chan struct{}, window+crossing)
	for range window {
		slots <- struct{}{}
	}
	stopSending := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for i := range maxSent {
			select {
			case <-slots:
			case <-stopSending:
				writerDone <- nil
				return
			}
			if err := send(i); err != nil {
				writerDone <- err
				return
			}
		}
		writerDone <- nil
	}()

	answers := map[uint32]pdu.CommandStatus{}
	var okIDs []string
	var crossed []uint32
	stopped := make(chan struct{})
	shutdown, unbindSeen := false, false
	p.Conn.SetReadDeadline(time.Now().Add(2 * sessiontest.Wait))
	for {
		h, body, err := p.Reader.Read()
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the connection is still open after %v, with %d answers", 2*sessiontest.Wait, len(answers))
		}
		if smpptest.IsClosed(err) {
			break
		}
		if err != nil {
			t.Fatalf("raw ESME read: %v", err)
		}
		switch h.ID {
		case pdu.SubmitSMRespID:
			if _, dup := answers[h.Sequence]; dup {
				t.Fatalf("seq %d answered twice", h.Sequence)
			}
			answers[h.Sequence] = h.Status
			if h.Status == pdu.ESME_ROK {
				okIDs = append(okIDs, body.(*pdu.SubmitSMResp).MessageID)
				if unbindSeen {
					t.Errorf("submit_sm seq %d answered ESME_ROK behind our unbind", h.Sequence)
				}
			}
			slots <- struct{}{}
			if !shutdown && len(okIDs) == before {
				shutdown = true
				go func() { stop(); close(stopped) }()
			}
		case pdu.UnbindID:
			unbindSeen = true
			close(stopSending)
			if err := <-writerDone; err != nil {
				t.Fatalf("raw ESME write: %v", err)
			}
			for i := range crossing {
				if err := send(maxSent + i); err != nil {
					t.Fatalf("raw ESME write: %v", err)
				}
				crossed = append(crossed, seq)
			}
			p.Send(h.Sequence, pdu.ESME_ROK, &pdu.UnbindResp{})
		default:
			t.Fatalf("raw ESME got %v %v", h.ID, h.Status)
		}
	}
	if !shutdown {
		t.Fatalf("the connection ended before the shutdown, with %d answers", len(answers))
	}
	<-stopped

	counts := map[pdu.CommandStatus]int{}
	for s := range sent {
		st, ok := answers[s]
		if !ok {
			t.Errorf("submit_sm seq %d never answered", s)
			continue
		}
		counts[st]++
	}
	t.Logf("%d submit_sm sent, answers by status: %v", len(sent), counts)
	for st, n := range counts {
		if st != pdu.ESME_ROK && st != pdu.ESME_RTHROTTLED {
			t.Errorf("%d answered %v, want only ESME_ROK or %v", n, st, pdu.ESME_RTHROTTLED)
		}
	}
	for _, s := range crossed {
		if answers[s] != pdu.ESME_RTHROTTLED {
			t.Errorf("submit_sm seq %d sent after our unbind answered %v, want %v", s, answers[s], pdu.ESME_RTHROTTLED)
		}
	}
	for _, id := range okIDs {
		if _, err := st.GetMessage(sessiontest.Ctx(t), id); err != nil {
			t.Errorf("message %s answered ESME_ROK is not in the store: %v", id, err)
		}
	}
	stored, cursor := 0, ""
	for {
		ms, next, err := st.ListMessages(sessiontest.Ctx(t), store.MessageFilter{Account: "acme", Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		stored += len(ms)
		if cursor = next; cursor == "" {
			break
		}
	}
	if stored != len(okIDs) {
		t.Errorf("the store holds %d messages, %d were answered ESME_ROK", stored, len(okIDs))
	}
}

// asyncDeliver is a DeliverHandler made of a function.
type asyncDeliver func(req session.Request, respond func(pdu.CommandStatus))

func (f asyncDeliver) HandleDeliver(_ string, req session.Request, respond func(pdu.CommandStatus)) {
	f(req, respond)
}

// TestClientUnbindStillTakesReceipts: receipts an upstream sends after our unbind and before its
// unbind_resp reach the deliver handler and are answered ESME_ROK, before the connection closes even
// though the handler answers after the unbind_resp came (issue 11, defect 5: they were refused
// ESME_RINVBNDSTS, which a strict SMSC takes as final and drops the receipt).
func TestClientUnbindStillTakesReceipts(t *testing.T) {
	const receipts = 3
	addr, peers := smpptest.Listen(t)
	got := make(chan session.Request, receipts)
	c := startClient(t, ClientConfig{Address: addr, SystemID: "gw", Password: "pw"}, asyncDeliver(func(req session.Request, respond func(pdu.CommandStatus)) {
		got <- req
		go func() {
			time.Sleep(50 * time.Millisecond) // a durable write, say
			respond(pdu.ESME_ROK)
		}()
	}))
	var p *smpptest.Peer
	select {
	case p = <-peers:
	case <-time.After(sessiontest.Wait):
		t.Fatal("no connection")
	}
	p.AcceptBind()
	if err := c.awaitBound(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	unbound := make(chan error, 1)
	go func() { unbound <- c.Unbind(sessiontest.Ctx(t)) }()
	h, _ := p.Expect(pdu.UnbindID, pdu.ESME_ROK)
	seqs := map[uint32]bool{}
	for i := range receipts {
		seqs[p.Request(&pdu.DeliverSM{EsmClass: 0x04, ShortMessage: []byte(fmt.Sprintf("id:%d stat:DELIVRD", i))})] = true
	}
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.UnbindResp{})
	for range receipts {
		r, _ := p.Expect(pdu.DeliverSMRespID, pdu.ESME_ROK)
		if !seqs[r.Sequence] {
			t.Fatalf("deliver_sm_resp seq %d answers nothing outstanding", r.Sequence)
		}
		delete(seqs, r.Sequence)
	}
	p.ExpectEOF()
	if err := <-unbound; err != nil {
		t.Fatalf("unbind: %v", err)
	}
	if len(got) != receipts {
		t.Fatalf("the handler got %d receipts, want %d", len(got), receipts)
	}
}
