package session_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/pdu"
)

func TestSequenceWraps(t *testing.T) {
	_, addr := startSMSC(t, session.Config{}, nil)
	s := sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransmitter, "alice", "secret")
	session.SetNextSequence(s, pdu.MaxSequence-1)
	var seqs []uint32
	for range 4 {
		resp, err := s.Send(sessiontest.Ctx(t), submit("1"))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, resp.Sequence)
	}
	want := []uint32{pdu.MaxSequence - 1, pdu.MaxSequence, 1, 2}
	for i := range want {
		if seqs[i] != want[i] {
			t.Fatalf("sequences %v, want %v", seqs, want)
		}
	}
}

func TestWindowFullBlocksAndUnblocks(t *testing.T) {
	s, p := boundToRaw(t, nil, session.Config{Window: 2})
	ctx := sessiontest.Ctx(t)
	var got [2]pdu.Header
	for i := range 2 {
		if err := s.SendAsync(ctx, submit("1"), func(session.Response, error) {}); err != nil {
			t.Fatal(err)
		}
		got[i], _ = p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	}
	if u := s.Info().WindowUsed; u != 2 {
		t.Fatalf("window used %d", u)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := s.Send(short, submit("2"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send into a full window: %v", err)
	}
	third := make(chan error, 1)
	go func() {
		_, err := s.Send(ctx, submit("3"))
		third <- err
	}()
	select {
	case err := <-third:
		t.Fatalf("send went through a full window: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.Send(got[0].Sequence, pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "a"})
	h, b := p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	if b.(*pdu.SubmitSM).DestinationAddr != "3" {
		t.Fatalf("unexpected %+v", b)
	}
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "c"})
	if err := <-third; err != nil {
		t.Fatal(err)
	}
}

func TestResponseTimeoutAndLateResponse(t *testing.T) {
	rec := sessiontest.NewRecorder()
	s, p := boundToRaw(t, rec, session.Config{ResponseTimeout: 100 * time.Millisecond, EnquireLink: -1})
	if err := s.SendAsync(sessiontest.Ctx(t), submit("1"), nil); err != nil {
		t.Fatal(err)
	}
	h, _ := p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	select {
	case req := <-rec.Timeouts:
		if req.Sequence != h.Sequence || req.Body.(*pdu.SubmitSM).DestinationAddr != "1" {
			t.Fatalf("timeout for %+v", req)
		}
	case <-time.After(sessiontest.Wait):
		t.Fatal("no response timeout")
	}
	// A Send that times out returns the error.
	done := make(chan error, 1)
	go func() { _, err := s.Send(sessiontest.Ctx(t), submit("2")); done <- err }()
	h2, _ := p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	if err := <-done; !errors.Is(err, session.ErrResponseTimeout) {
		t.Fatalf("send: %v", err)
	}
	// Late responses are dropped: counted, never handed to the Handler.
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "late"})
	p.Send(h2.Sequence, pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "late"})
	sessiontest.Eventually(t, "late responses counted", func() bool { return s.Info().LateResponses == 2 })
	if in := s.Info(); in.Timeouts != 2 || in.WindowUsed != 0 {
		t.Fatalf("info %+v", in)
	}
	select {
	case r := <-rec.Responses:
		t.Fatalf("late response reached the handler: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestPeerClosesMidWindow(t *testing.T) {
	rec := sessiontest.NewRecorder()
	s, p := boundToRaw(t, rec, session.Config{Window: 10, EnquireLink: -1})
	ctx := sessiontest.Ctx(t)
	var seqs []uint32
	for _, to := range []string{"1", "2", "3", "4"} {
		if err := s.SendAsync(ctx, submit(to), nil); err != nil {
			t.Fatal(err)
		}
		h, _ := p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
		seqs = append(seqs, h.Sequence)
	}
	waited := make(chan error, 1)
	go func() { _, err := s.Send(ctx, submit("5")); waited <- err }()
	p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	p.Send(seqs[1], pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "x"})
	<-rec.Responses
	p.Conn.Close()
	reason, lost := rec.WaitEnded(t)
	if !errors.Is(reason, io.EOF) {
		t.Fatalf("reason %v", reason)
	}
	if len(lost) != 3 || lost[0].Sequence != seqs[0] || lost[1].Sequence != seqs[2] || lost[2].Sequence != seqs[3] {
		t.Fatalf("lost %+v, want sequences %d %d %d", lost, seqs[0], seqs[2], seqs[3])
	}
	if err := <-waited; !errors.Is(err, session.ErrLost) {
		t.Fatalf("waiting Send: %v", err)
	}
	if in := s.Info(); in.Lost != 4 || in.State != session.StateClosed {
		t.Fatalf("info %+v", in)
	}
	if _, err := s.Send(ctx, submit("6")); !errors.Is(err, session.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestEnquireLinkKeepsIdleBindUp(t *testing.T) {
	_, addr := startSMSC(t, session.Config{EnquireLink: 30 * time.Millisecond}, nil)
	s := sessiontest.BindESME(t, addr, nil, session.Config{EnquireLink: 30 * time.Millisecond, ResponseTimeout: time.Second}, session.BindTransceiver, "alice", "secret")
	sessiontest.Eventually(t, "several enquire_link exchanges", func() bool { return s.Info().PDUsIn >= 6 })
	if s.State() != session.StateBound {
		t.Fatalf("state %v", s.State())
	}
	if _, err := s.Send(sessiontest.Ctx(t), submit("1")); err != nil {
		t.Fatal(err)
	}
}

func TestEnquireLinkDetectsDeadPeer(t *testing.T) {
	rec := sessiontest.NewRecorder()
	s, p := boundToRaw(t, rec, session.Config{EnquireLink: 30 * time.Millisecond, ResponseTimeout: 60 * time.Millisecond})
	p.Expect(pdu.EnquireLinkID, pdu.ESME_ROK) // and never answer
	reason, lost := rec.WaitEnded(t)
	if !errors.Is(reason, session.ErrEnquireLinkTimeout) || len(lost) != 0 {
		t.Fatalf("reason %v lost %v", reason, lost)
	}
	if s.State() != session.StateClosed {
		t.Fatal("not closed")
	}
}

// TestEnquireLinkEveryInterval: an idle bind sends enquire_link one interval after the last PDU it
// read, not one to two intervals later (issue 11, defect 10). Counted by a raw peer that answers each
// one: with a 200ms interval, one within the first 1.5 intervals and at least 4 (at most 6) in 1.1s.
func TestEnquireLinkEveryInterval(t *testing.T) {
	const interval = 200 * time.Millisecond
	_, p := boundToRaw(t, nil, session.Config{EnquireLink: interval, ResponseTimeout: time.Second})
	start := time.Now()
	count := func(until time.Time) int {
		n := 0
		for {
			p.Conn.SetReadDeadline(until)
			h, _, err := p.Reader.Read()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return n
				}
				t.Fatalf("raw peer read: %v", err)
			}
			if h.ID != pdu.EnquireLinkID {
				t.Fatalf("got %v, want enquire_link", h.ID)
			}
			n++
			p.Send(h.Sequence, pdu.ESME_ROK, &pdu.EnquireLinkResp{})
		}
	}
	first := count(start.Add(interval * 3 / 2))
	rest := count(start.Add(1100 * time.Millisecond))
	if first != 1 || first+rest < 4 || first+rest > 6 {
		t.Fatalf("enquire_links seen: %d in the first 1.5 intervals, %d in 1.1s; want 1, and 4 to 6", first, first+rest)
	}
}

func TestEnquireLinkAnsweredBeforeBind(t *testing.T) {
	_, addr := startSMSC(t, session.Config{}, nil)
	p := smpptest.Dial(t, addr)
	seq := p.Request(&pdu.EnquireLink{})
	h, _ := p.Expect(pdu.EnquireLinkRespID, pdu.ESME_ROK)
	if h.Sequence != seq {
		t.Fatal("sequence")
	}
}

func TestUnbindFromSMSCWaitsForInFlight(t *testing.T) {
	// The ESME side answers deliver_sm only when told, so the server's unbind has to wait for it.
	srv, addr := startSMSC(t, session.Config{}, nil)
	rec := sessiontest.NewRecorder()
	pending := make(chan session.Request, 1)
	rec.OnRequest = func(_ *session.Session, req session.Request) { pending <- req }
	s := sessiontest.BindESME(t, addr, rec, session.Config{}, session.BindReceiver, "alice", "secret")
	ss := next(t, srv.bound)
	delivered := make(chan error, 1)
	if err := ss.SendAsync(sessiontest.Ctx(t), &pdu.DeliverSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("mo")}, func(_ session.Response, err error) { delivered <- err }); err != nil {
		t.Fatal(err)
	}
	req := <-pending
	unbound := make(chan error, 1)
	go func() { unbound <- ss.Unbind(sessiontest.Ctx(t)) }()
	sessiontest.Eventually(t, "unbinding state", func() bool { return ss.State() == session.StateUnbinding })
	if _, err := ss.Send(sessiontest.Ctx(t), &pdu.DeliverSM{}); !errors.Is(err, session.ErrNotBound) {
		t.Fatalf("send while unbinding: %v", err)
	}
	if err := s.Respond(req, pdu.ESME_ROK, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-delivered; err != nil {
		t.Fatalf("deliver_sm: %v", err)
	}
	if err := <-unbound; err != nil {
		t.Fatalf("unbind: %v", err)
	}
	if reason, _ := rec.WaitEnded(t); !errors.Is(reason, session.ErrPeerUnbound) {
		t.Fatalf("client reason %v", reason)
	}
}

func TestBindStateChecks(t *testing.T) {
	_, addr := startSMSC(t, session.Config{}, nil)
	p := smpptest.Dial(t, addr)
	p.Request(submit("1"))
	p.Expect(pdu.SubmitSMRespID, pdu.ESME_RINVBNDSTS)
	p.Request(&pdu.Unbind{})
	p.Expect(pdu.UnbindRespID, pdu.ESME_RINVBNDSTS)
	p.Request(&pdu.BindReceiver{SystemID: "alice", Password: "secret"})
	p.Expect(pdu.BindReceiverRespID, pdu.ESME_ROK)
	// A receiver may not submit, nor bind twice; deliver_sm is not for an SMSC to receive.
	p.Request(submit("1"))
	p.Expect(pdu.SubmitSMRespID, pdu.ESME_RINVBNDSTS)
	p.Request(&pdu.BindTransmitter{SystemID: "alice", Password: "secret"})
	p.Expect(pdu.BindTransmitterRespID, pdu.ESME_RALYBND)
	p.Request(&pdu.DeliverSM{})
	p.Expect(pdu.DeliverSMRespID, pdu.ESME_RINVBNDSTS)

	// Our own side checks too.
	s := sessiontest.DialESME(t, addr, nil, session.Config{})
	if _, err := s.Send(sessiontest.Ctx(t), submit("1")); !errors.Is(err, session.ErrNotBound) {
		t.Fatalf("submit before bind: %v", err)
	}
	if _, err := s.Bind(sessiontest.Ctx(t), session.BindReceiver, session.BindParams{SystemID: "alice", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(sessiontest.Ctx(t), submit("1")); !errors.Is(err, session.ErrNotBound) {
		t.Fatalf("submit on a receiver: %v", err)
	}
	if _, err := s.Send(sessiontest.Ctx(t), &pdu.EnquireLink{}); err != nil {
		t.Fatalf("enquire_link: %v", err)
	}
}

func TestUnknownCommandAndBadPDUs(t *testing.T) {
	_, addr := startSMSC(t, session.Config{}, nil)
	p := smpptest.Dial(t, addr)
	p.Request(&pdu.BindTransceiver{SystemID: "alice", Password: "secret"})
	p.Expect(pdu.BindTransceiverRespID, pdu.ESME_ROK)

	// Unknown command id.
	p.Write(pdu.AppendHeader(nil, pdu.Header{Length: 16, ID: 0x0000ABCD, Sequence: 77}))
	h, _ := p.Expect(pdu.GenericNackID, pdu.ESME_RINVCMDID)
	if h.Sequence != 77 {
		t.Fatalf("seq %d", h.Sequence)
	}
	// A submit_sm whose body stops in the middle of its fields.
	body := []byte("\x00\x01\x01123\x00\x01\x01")
	frame := pdu.AppendHeader(nil, pdu.Header{Length: uint32(16 + len(body)), ID: pdu.SubmitSMID, Sequence: 78})
	p.Write(append(frame, body...))
	h, _ = p.Read()
	if h.ID != pdu.SubmitSMRespID || h.Status == pdu.ESME_ROK || h.Sequence != 78 {
		t.Fatalf("undecodable submit_sm answered with %+v", h)
	}
	// Still usable afterwards.
	p.Request(submit("1"))
	p.Expect(pdu.SubmitSMRespID, pdu.ESME_ROK)
}

// TestNoMadeUpResponsesForOutbindAndAlertNotification: outbind and alert_notification have no
// response in SMPP 3.4, so when one comes in the wrong role or state, or does not decode, the session
// answers generic_nack (ESME_RINVBNDSTS, or the decode error) with its sequence number, never a
// response id that does not exist (0x8000000B, 0x80000102) (issue 11, defect 11). Raw bytes, both roles.
func TestNoMadeUpResponsesForOutbindAndAlertNotification(t *testing.T) {
	nack := func(p *smpptest.Peer, seq uint32, status pdu.CommandStatus) {
		t.Helper()
		h, _ := p.Read()
		if h.ID != pdu.GenericNackID || h.Status != status || h.Sequence != seq || h.Length != pdu.HeaderLen {
			t.Fatalf("got %v %v seq %d length %d, want generic_nack %v seq %d", h.ID, h.Status, h.Sequence, h.Length, status, seq)
		}
	}
	// A body that stops inside its first C-octet string.
	undecodable := func(p *smpptest.Peer, id pdu.CommandID, seq uint32) {
		body := []byte("\x01\x01123")
		p.Write(append(pdu.AppendHeader(nil, pdu.Header{Length: uint32(pdu.HeaderLen + len(body)), ID: id, Sequence: seq}), body...))
	}

	// Server side: an ESME sends what only an SMSC may send.
	_, addr := startSMSC(t, session.Config{}, nil)
	p := smpptest.Dial(t, addr)
	p.Request(&pdu.BindTransceiver{SystemID: "alice", Password: "secret"})
	p.Expect(pdu.BindTransceiverRespID, pdu.ESME_ROK)
	nack(p, p.Request(&pdu.AlertNotification{SourceAddr: "1", EsmeAddr: "2"}), pdu.ESME_RINVBNDSTS)
	nack(p, p.Request(&pdu.Outbind{SystemID: "smsc"}), pdu.ESME_RINVBNDSTS)
	undecodable(p, pdu.OutbindID, 50)
	h, _ := p.Read()
	if h.ID != pdu.GenericNackID || h.Status == pdu.ESME_ROK || h.Sequence != 50 {
		t.Fatalf("undecodable outbind answered with %v %v seq %d, want generic_nack", h.ID, h.Status, h.Sequence)
	}
	undecodable(p, pdu.AlertNotificationID, 51)
	if h, _ = p.Read(); h.ID != pdu.GenericNackID || h.Status == pdu.ESME_ROK || h.Sequence != 51 {
		t.Fatalf("undecodable alert_notification answered with %v %v seq %d, want generic_nack", h.ID, h.Status, h.Sequence)
	}
	p.Request(submit("1")) // still bound and answering
	p.Expect(pdu.SubmitSMRespID, pdu.ESME_ROK)

	// Client side: the SMSC sends outbind on a bound session, then alert_notifications.
	rec := sessiontest.NewRecorder()
	_, sp := boundToRaw(t, rec, session.Config{})
	nack(sp, sp.Request(&pdu.Outbind{SystemID: "smsc"}), pdu.ESME_RINVBNDSTS)
	undecodable(sp, pdu.AlertNotificationID, 60)
	if h, _ = sp.Read(); h.ID != pdu.GenericNackID || h.Status == pdu.ESME_ROK || h.Sequence != 60 {
		t.Fatalf("undecodable alert_notification answered with %v %v seq %d, want generic_nack", h.ID, h.Status, h.Sequence)
	}
	sp.Request(&pdu.AlertNotification{SourceAddr: "1", EsmeAddr: "2"}) // valid: handed over, not answered
	seq := sp.Request(&pdu.EnquireLink{})
	if h, _ = sp.Expect(pdu.EnquireLinkRespID, pdu.ESME_ROK); h.Sequence != seq {
		t.Fatalf("enquire_link_resp seq %d, want %d: something answered the alert_notification", h.Sequence, seq)
	}
	if reqs := rec.Requests(); len(reqs) != 1 || reqs[0].Body.CommandID() != pdu.AlertNotificationID {
		t.Fatalf("handler saw %d requests, want the valid alert_notification only", len(reqs))
	}
}

func TestOversizedLengthClosesAfterNack(t *testing.T) {
	_, addr := startSMSC(t, session.Config{MaxPDULength: 1024}, nil)
	p := smpptest.Dial(t, addr)
	p.Write(pdu.AppendHeader(nil, pdu.Header{Length: 1 << 20, ID: pdu.SubmitSMID, Sequence: 9}))
	h, _ := p.Expect(pdu.GenericNackID, pdu.ESME_RINVCMDLEN)
	if h.Sequence != 9 {
		t.Fatalf("seq %d", h.Sequence)
	}
	p.ExpectEOF()

	p = smpptest.Dial(t, addr)
	p.Write(pdu.AppendHeader(nil, pdu.Header{Length: 8, ID: pdu.EnquireLinkID, Sequence: 10}))
	p.Expect(pdu.GenericNackID, pdu.ESME_RINVCMDLEN)
	p.ExpectEOF()
}

func TestTruncatedFrame(t *testing.T) {
	srv, addr := startSMSC(t, session.Config{}, nil)
	p := smpptest.Dial(t, addr)
	ss := next(t, srv.accepted)
	frame := pdu.AppendHeader(nil, pdu.Header{Length: 60, ID: pdu.BindTransmitterID, Sequence: 1})
	p.Write(append(frame, "alice\x00sec"...))
	p.Conn.(interface{ CloseWrite() error }).CloseWrite()
	select {
	case <-ss.Done():
	case <-time.After(sessiontest.Wait):
		t.Fatal("session did not end")
	}
	if !errors.Is(ss.Err(), io.ErrUnexpectedEOF) {
		t.Fatalf("reason %v", ss.Err())
	}
}

func TestInboundLimitThrottles(t *testing.T) {
	hold := make(chan held, 10)
	_, addr := startSMSC(t, session.Config{InboundLimit: 2, ThrottleInbound: true}, holdAll(hold))
	p := smpptest.Dial(t, addr)
	p.Request(&pdu.BindTransmitter{SystemID: "alice", Password: "secret"})
	p.Expect(pdu.BindTransmitterRespID, pdu.ESME_ROK)
	for range 3 {
		p.Request(submit("1"))
	}
	h, _ := p.Expect(pdu.SubmitSMRespID, pdu.ESME_RTHROTTLED)
	if h.Sequence != 4 {
		t.Fatalf("throttled seq %d", h.Sequence)
	}
	m := <-hold
	if err := m.Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "1"}); err != nil {
		t.Fatal(err)
	}
	h, _ = p.Expect(pdu.SubmitSMRespID, pdu.ESME_ROK)
	if h.Sequence != 2 {
		t.Fatalf("seq %d", h.Sequence)
	}
	p.Request(submit("1")) // room again for one
	(<-hold).Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "2"})
	(<-hold).Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "3"})
	p.Expect(pdu.SubmitSMRespID, pdu.ESME_ROK)
	p.Expect(pdu.SubmitSMRespID, pdu.ESME_ROK)
}

func TestInboundLimitStopsReading(t *testing.T) {
	hold := make(chan held, 10)
	_, addr := startSMSC(t, session.Config{InboundLimit: 2}, holdAll(hold))
	p := smpptest.Dial(t, addr)
	p.Request(&pdu.BindTransmitter{SystemID: "alice", Password: "secret"})
	p.Expect(pdu.BindTransmitterRespID, pdu.ESME_ROK)
	for range 3 {
		p.Request(submit("1"))
	}
	first, second := <-hold, <-hold
	select {
	case m := <-hold:
		t.Fatalf("read beyond the inbound limit: seq %d", m.req.Sequence)
	case <-time.After(50 * time.Millisecond):
	}
	if in := first.s.Info(); in.InboundPending != 2 {
		t.Fatalf("pending %d", in.InboundPending)
	}
	first.Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "1"})
	third := <-hold
	if third.req.Sequence != 4 {
		t.Fatalf("third seq %d", third.req.Sequence)
	}
	second.Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "2"})
	third.Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "3"})
	for range 3 {
		p.Expect(pdu.SubmitSMRespID, pdu.ESME_ROK)
	}
}

func TestRespondChecksBody(t *testing.T) {
	hold := make(chan held, 1)
	_, addr := startSMSC(t, session.Config{}, holdAll(hold))
	s := sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransmitter, "alice", "secret")
	res := make(chan error, 1)
	go func() { _, err := s.Send(sessiontest.Ctx(t), submit("1")); res <- err }()
	m := <-hold
	if err := m.Respond(pdu.ESME_ROK, &pdu.DeliverSMResp{}); !errors.Is(err, session.ErrInvalidResponse) {
		t.Fatalf("wrong body accepted: %v", err)
	}
	if err := m.Respond(pdu.ESME_RINVDSTADR, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, pdu.ESME_RINVDSTADR) {
		t.Fatalf("error status not returned: %v", err)
	}
}

func TestGenericNackAndMismatchedResponses(t *testing.T) {
	s, p := boundToRaw(t, nil, session.Config{EnquireLink: -1})
	res := make(chan error, 1)
	go func() { _, err := s.Send(sessiontest.Ctx(t), submit("1")); res <- err }()
	h, _ := p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	p.Write(pdu.AppendHeader(nil, pdu.Header{Length: 16, ID: pdu.GenericNackID, Status: pdu.ESME_RINVCMDLEN, Sequence: h.Sequence}))
	if err := <-res; !errors.Is(err, pdu.ESME_RINVCMDLEN) {
		t.Fatalf("generic_nack: %v", err)
	}
	go func() { _, err := s.Send(sessiontest.Ctx(t), submit("2")); res <- err }()
	h, _ = p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.QuerySMResp{MessageID: "x"})
	if err := <-res; !errors.Is(err, session.ErrUnexpectedResponse) {
		t.Fatalf("mismatched response: %v", err)
	}
}

func TestAbandonedSendGoesToHandler(t *testing.T) {
	rec := sessiontest.NewRecorder()
	s, p := boundToRaw(t, rec, session.Config{EnquireLink: -1})
	ctx, cancel := context.WithCancel(sessiontest.Ctx(t))
	res := make(chan error, 1)
	go func() { _, err := s.Send(ctx, submit("1")); res <- err }()
	h, _ := p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("send: %v", err)
	}
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "m"})
	select {
	case r := <-rec.Responses:
		if r.Sequence != h.Sequence || r.Body.(*pdu.SubmitSMResp).MessageID != "m" {
			t.Fatalf("handler got %+v", r)
		}
	case <-time.After(sessiontest.Wait):
		t.Fatal("the response of an abandoned Send was lost")
	}
}

func TestPeerThatDoesNotReadStopsOurReader(t *testing.T) {
	// net.Pipe has no buffers: what we answer stays queued in the session until the peer reads.
	ours, theirs := net.Pipe()
	defer theirs.Close()
	s := session.New(ours, session.Options{Role: session.RoleSMSC, Logger: zerolog.Nop()})
	defer func() { s.Abort(); <-s.Done() }()
	// enquire_link is answered even unbound; send far more than session.MaxQueuedOut of answers, never reading.
	const total = 100000
	frame := pdu.AppendHeader(nil, pdu.Header{Length: 16, ID: pdu.EnquireLinkID, Sequence: 1})
	burst := bytes.Repeat(frame, 1000)
	sent := 0
	theirs.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	for sent < total {
		if _, err := theirs.Write(burst); err != nil {
			break // blocked: the session stopped reading
		}
		sent += 1000
	}
	in := s.Info()
	if sent >= total || in.PDUsIn >= total {
		t.Fatalf("the session kept reading a peer that never reads (%d PDUs read)", in.PDUsIn)
	}
	// What waits for the writer stays within session.MaxQueuedOut and one more PDU.
	if q := session.QueuedOut(s); q > session.MaxQueuedOut+16 {
		t.Fatalf("%d octets queued for a peer that does not read", q)
	}
	// Once the peer reads, everything is answered.
	go io.Copy(io.Discard, theirs)
	theirs.SetWriteDeadline(time.Now().Add(sessiontest.Wait))
	for ; sent < total; sent += 1000 {
		if _, err := theirs.Write(burst); err != nil {
			t.Fatal(err)
		}
	}
	sessiontest.Eventually(t, "all answered", func() bool { return s.Info().PDUsOut == total })
}

// TestUnbindAnswersBeforeItGoesOut: what an ESME sent before our unbind is answered before the
// unbind goes out, and what it sends while we wait for those answers is held (the reader stops)
// until the unbind is out, then refused with session.DrainStatus, not served: served, it could be answered
// ESME_ROK behind the unbind, where Kannel no longer reads (issue 11, defect 5).
func TestUnbindAnswersBeforeItGoesOut(t *testing.T) {
	hold := make(chan held, 10)
	_, addr := startSMSC(t, session.Config{UnbindTimeout: sessiontest.Wait}, holdAll(hold))
	p := smpptest.Dial(t, addr)
	p.Request(&pdu.BindTransmitter{SystemID: "alice", Password: "secret"})
	p.Expect(pdu.BindTransmitterRespID, pdu.ESME_ROK)
	first := p.Request(submit("1"))
	var m held
	select {
	case m = <-hold:
	case <-time.After(sessiontest.Wait):
		t.Fatal("submit_sm not handed over")
	}
	ss := m.s
	unbound := make(chan error, 1)
	go func() { unbound <- ss.Unbind(sessiontest.Ctx(t)) }()
	sessiontest.Eventually(t, "the unbind to wait for the answers so far", func() bool { return session.Quiescing(ss) })
	second := p.Request(submit("2"))
	if err := m.Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "1"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := p.Expect(pdu.SubmitSMRespID, pdu.ESME_ROK); h.Sequence != first {
		t.Fatalf("submit_sm_resp seq %d, want %d", h.Sequence, first)
	}
	u, _ := p.Expect(pdu.UnbindID, pdu.ESME_ROK)
	if h, _ := p.Expect(pdu.SubmitSMRespID, session.DrainStatus); h.Sequence != second {
		t.Fatalf("submit_sm_resp seq %d, want %d", h.Sequence, second)
	}
	p.Send(u.Sequence, pdu.ESME_ROK, &pdu.UnbindResp{})
	p.ExpectEOF()
	if err := <-unbound; err != nil {
		t.Fatalf("unbind: %v", err)
	}
	if len(hold) != 0 {
		t.Fatal("the submit_sm sent while the unbind waited was served")
	}
}
