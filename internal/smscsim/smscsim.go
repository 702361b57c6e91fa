package smscsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

// ErrNoBind is returned by SendMO when no bound session can take a deliver_sm.
var ErrNoBind = errors.New("smscsim: no session bound to receive")

// Options configure a Sim. The zero value accepts every bind, answers every submission at once with
// ids SIM0001, SIM0002, ... and sends a DELIVRD receipt at once for each that asks for one.
type Options struct {
	// Accounts maps each system_id that may bind to its password. Empty: any system_id and password bind.
	Accounts map[string]string
	// SystemID is ours, sent in bind_resp. Empty means "smscsim".
	SystemID string
	// IDPrefix starts the message ids we hand out, followed by a counter of at least four digits.
	// Empty means "SIM".
	IDPrefix string
	// ReceiptDelay is how long after answering a submission that asks for a receipt the receipt is sent.
	// 0 means at once; negative means no receipts are sent.
	ReceiptDelay time.Duration
	// ReceiptState is the final state receipts report. 0 means pdu.DELIVERED.
	ReceiptState pdu.MessageState
	// ReceiptFirst sends the receipt, and waits for its answer, before the submit_sm_resp: an SMSC
	// whose receipt overtakes its own answer.
	ReceiptFirst bool
	// OnSubmit, if set, sees each submit_sm once it is recorded and before it is answered, on the
	// session's reader: it must not block (a SendMO it starts goes in a goroutine of its own).
	OnSubmit func(sim *Sim, sm *pdu.SubmitSM)
	// SendTimeout bounds the wait for the answer to a deliver_sm we send. 0 means 10s.
	SendTimeout time.Duration
	// Session configures each accepted session; its zero value is session's defaults.
	Session session.Config
	// Logger receives the sessions' logs; the zero value discards them.
	Logger zerolog.Logger
}

func (o Options) withDefaults() Options {
	if o.SystemID == "" {
		o.SystemID = "smscsim"
	}
	if o.IDPrefix == "" {
		o.IDPrefix = "SIM"
	}
	if o.ReceiptState == 0 {
		o.ReceiptState = pdu.DELIVERED
	}
	if o.SendTimeout == 0 {
		o.SendTimeout = 10 * time.Second
	}
	return o
}

// Fault is what the simulator does to submissions (submit_sm and data_sm) instead of answering them
// ESME_ROK with an id.
type Fault struct {
	// Status answers with this error status and no id (ESME_ROK: answer as usual).
	Status pdu.CommandStatus
	// Hold leaves the submission unanswered (it stays in the peer's window until the link drops).
	Hold bool
	// Close drops the link (what is queued for it is written first, no unbind) shortly after the
	// fault's last submission, or after each one when Count is 0, once it is answered or held.
	Close bool
	// Count is how many submissions, from now, the fault applies to; 0 means every one until Clear.
	Count int
}

// closeDelay lets the submissions the peer sent before a Close fault's last one arrive and be held,
// so that the link drops under all of them.
const closeDelay = 20 * time.Millisecond

// Sim is an SMSC simulator. Its methods are safe for concurrent use.
type Sim struct {
	opts    Options
	next    atomic.Uint64
	ctx     context.Context // cancelled by Close and Shutdown: ends the waits of our deliver_sm
	cancel  context.CancelFunc
	wg      sync.WaitGroup // goroutines sending receipts and closing links
	mu      sync.Mutex
	l       net.Listener
	closed  bool
	conns   map[*session.Session]struct{} // every open session
	bound   []*session.Session            // bound sessions in bind order
	refuse  pdu.CommandStatus             // bind refusal status, ESME_ROK: accept
	faults  []Fault
	submits []*pdu.SubmitSM
	count   int
	times   map[string]int
	binds   int
	refused int
	rcpts   int
	answers []pdu.CommandStatus
}

// New returns a Sim that serves nothing until Serve.
func New(opts Options) *Sim {
	ctx, cancel := context.WithCancel(context.Background())
	return &Sim{opts: opts.withDefaults(), ctx: ctx, cancel: cancel,
		conns: map[*session.Session]struct{}{}, times: map[string]int{}}
}

// Start listens on addr ("127.0.0.1:0" for a fresh port) and serves there until Close or Shutdown.
func Start(addr string, opts Options) (*Sim, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smscsim: %w", err)
	}
	s := New(opts)
	s.setListener(l)
	go s.Serve(l)
	return s, nil
}

func (s *Sim) setListener(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.l = l
	return true
}

// Serve accepts connections on l, one session each, until Close or Shutdown; then it returns nil.
func (s *Sim) Serve(l net.Listener) error {
	if !s.setListener(l) {
		l.Close()
		return nil
	}
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("smscsim: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		ss := session.New(c, session.Options{Role: session.RoleSMSC, Handler: &handler{sim: s},
			Config: s.opts.Session, Logger: s.opts.Logger, SystemID: s.opts.SystemID})
		s.conns[ss] = struct{}{}
		s.mu.Unlock()
	}
}

// Addr is the address Serve listens on, or "" before it does.
func (s *Sim) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == nil {
		return ""
	}
	return s.l.Addr().String()
}

// stop stops accepting and returns the sessions open at that moment.
func (s *Sim) stop() []*session.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		if s.l != nil {
			s.l.Close()
		}
	}
	all := make([]*session.Session, 0, len(s.conns))
	for ss := range s.conns {
		all = append(all, ss)
	}
	return all
}

// Close stops accepting and drops every link at once.
func (s *Sim) Close() error {
	all := s.stop()
	s.cancel()
	for _, ss := range all {
		ss.Abort()
	}
	for _, ss := range all {
		<-ss.Done()
	}
	s.wg.Wait()
	return nil
}

// Shutdown stops accepting and unbinds every link (closes those not bound), waiting for them to end
// until ctx is done; then it drops what is left, as Close.
func (s *Sim) Shutdown(ctx context.Context) error {
	all := s.stop()
	for _, ss := range all {
		s.later(func() {
			if err := ss.Unbind(ctx); err != nil {
				ss.Close()
			}
		})
	}
	var err error
wait:
	for _, ss := range all {
		select {
		case <-ss.Done():
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		}
	}
	s.Close()
	return err
}

// RefuseBinds makes binds from now on fail with status (ESME_RBINDFAIL, ESME_RINVPASWD, ...);
// ESME_ROK accepts them again. Links already bound stay bound.
func (s *Sim) RefuseBinds(status pdu.CommandStatus) {
	s.mu.Lock()
	s.refuse = status
	s.mu.Unlock()
}

// Inject queues f: it applies to the next f.Count submissions after those of the faults queued
// before it.
func (s *Sim) Inject(f Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

// Clear removes every queued fault: submissions are answered ESME_ROK again.
func (s *Sim) Clear() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// CloseLinks drops every bound link now (what is queued for it is written first, no unbind).
func (s *Sim) CloseLinks() {
	s.mu.Lock()
	bound := append([]*session.Session(nil), s.bound...)
	s.mu.Unlock()
	for _, ss := range bound {
		ss.Close()
	}
}

// SendMO sends d as a deliver_sm on the first bound link that can receive (receiver or transceiver)
// and returns the peer's answer. The answer's status is also recorded (see DeliverAnswers).
func (s *Sim) SendMO(ctx context.Context, d *pdu.DeliverSM) (pdu.CommandStatus, error) {
	s.mu.Lock()
	var to *session.Session
	for _, ss := range s.bound {
		if ss.BindType().CanReceive() && ss.State() == session.StateBound {
			to = ss
			break
		}
	}
	s.mu.Unlock()
	if to == nil {
		return 0, ErrNoBind
	}
	return s.deliver(ctx, to, d)
}

func (s *Sim) deliver(ctx context.Context, ss *session.Session, d *pdu.DeliverSM) (pdu.CommandStatus, error) {
	resp, err := ss.Send(ctx, d)
	status := pdu.StatusOf(err) | resp.Status
	s.mu.Lock()
	s.answers = append(s.answers, status)
	s.mu.Unlock()
	return status, err
}

// Submits returns the submit_sm received, in order, including those refused or held.
func (s *Sim) Submits() []*pdu.SubmitSM {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pdu.SubmitSM(nil), s.submits...)
}

// Count is how many submissions (submit_sm and data_sm) were received, including those refused or held.
func (s *Sim) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Times is how many times a submit_sm with this short message was received.
func (s *Sim) Times(shortMessage string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.times[shortMessage]
}

// Binds is how many binds were accepted, and refused.
func (s *Sim) Binds() (accepted, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.binds, s.refused
}

// Bound is how many links are bound now.
func (s *Sim) Bound() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bound)
}

// Receipts is how many receipts were sent (answered or not).
func (s *Sim) Receipts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcpts
}

// DeliverAnswers returns the statuses the peers answered our deliver_sm (receipts and MO) with, in the
// order the answers came; a deliver_sm that got no answer counts with the status of its error.
func (s *Sim) DeliverAnswers() []pdu.CommandStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pdu.CommandStatus(nil), s.answers...)
}

// fault takes the fault for the submission received now: ok is false when it is to be answered as
// usual; last is true when it is the fault's last submission.
func (s *Sim) fault() (f Fault, last, ok bool) {
	if len(s.faults) == 0 {
		return Fault{}, false, false
	}
	f = s.faults[0]
	if f.Count == 0 {
		return f, true, true
	}
	s.faults[0].Count--
	if s.faults[0].Count == 0 {
		s.faults = s.faults[1:]
		return f, true, true
	}
	return f, false, true
}

func (s *Sim) later(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// handler is one session's Handler.
type handler struct {
	session.BaseHandler
	sim *Sim
}

func (h *handler) HandleBind(_ *session.Session, req session.Request) pdu.CommandStatus {
	s := h.sim
	_, b, _ := session.BindOf(req.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	status := s.refuse
	if status == pdu.ESME_ROK && len(s.opts.Accounts) > 0 {
		if pw, ok := s.opts.Accounts[b.SystemID]; !ok || pw != b.Password {
			status = pdu.ESME_RINVPASWD
		}
	}
	if status != pdu.ESME_ROK {
		s.refused++
	}
	return status
}

func (h *handler) HandleBound(ss *session.Session) {
	s := h.sim
	s.mu.Lock()
	s.binds++
	s.bound = append(s.bound, ss)
	s.mu.Unlock()
}

func (h *handler) Terminate(ss *session.Session, lost []session.Request) {
	s := h.sim
	s.mu.Lock()
	delete(s.conns, ss)
	for i, b := range s.bound {
		if b == ss {
			s.bound = append(s.bound[:i], s.bound[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	h.BaseHandler.Terminate(ss, lost)
}

// submission is what a receipt needs of a submit_sm or data_sm.
type submission struct {
	srcTON, srcNPI, dstTON, dstNPI uint8
	src, dst                       string
	registered                     uint8
	text                           []byte
}

func (h *handler) HandleRequest(ss *session.Session, req session.Request) {
	s := h.sim
	var sub submission
	switch b := req.Body.(type) {
	case *pdu.SubmitSM:
		sub = submission{b.SourceAddrTON, b.SourceAddrNPI, b.DestAddrTON, b.DestAddrNPI, b.SourceAddr, b.DestinationAddr, b.RegisteredDelivery, b.ShortMessage}
	case *pdu.DataSM:
		sub = submission{b.SourceAddrTON, b.SourceAddrNPI, b.DestAddrTON, b.DestAddrNPI, b.SourceAddr, b.DestinationAddr, b.RegisteredDelivery, nil}
	default:
		h.BaseHandler.HandleRequest(ss, req)
		return
	}
	s.mu.Lock()
	s.count++
	if sm, ok := req.Body.(*pdu.SubmitSM); ok {
		s.submits = append(s.submits, sm)
		s.times[string(sm.ShortMessage)]++
	}
	f, last, faulty := s.fault()
	s.mu.Unlock()
	if sm, ok := req.Body.(*pdu.SubmitSM); ok && s.opts.OnSubmit != nil {
		s.opts.OnSubmit(s, sm)
	}
	if faulty && f.Close && last {
		s.later(func() {
			select {
			case <-time.After(closeDelay):
				ss.Close()
			case <-s.ctx.Done():
			}
		})
	}
	switch {
	case faulty && f.Hold:
		return
	case faulty && f.Status != pdu.ESME_ROK:
		_ = ss.Respond(req, f.Status, nil)
		return
	}
	id := fmt.Sprintf("%s%04d", s.opts.IDPrefix, s.next.Add(1))
	var resp pdu.Body = &pdu.SubmitSMResp{MessageID: id}
	if _, ok := req.Body.(*pdu.DataSM); ok {
		resp = &pdu.DataSMResp{MessageID: id}
	}
	answer := func() { _ = ss.Respond(req, pdu.ESME_ROK, resp) }
	rec := s.receipt(id, sub)
	if rec == nil {
		answer()
		return
	}
	if !s.opts.ReceiptFirst {
		answer()
	}
	// Send waits for the answer, so not on the session's reader.
	s.later(func() {
		if d := s.opts.ReceiptDelay; d > 0 && !s.opts.ReceiptFirst {
			select {
			case <-time.After(d):
			case <-s.ctx.Done():
				return
			}
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.SendTimeout)
		defer cancel()
		s.mu.Lock()
		s.rcpts++
		s.mu.Unlock()
		_, _ = s.deliver(ctx, ss, rec)
		if s.opts.ReceiptFirst {
			answer()
		}
	})
}

// receipt returns the receipt for the submission given id, or nil when none is to be sent.
func (s *Sim) receipt(id string, sub submission) *pdu.DeliverSM {
	state := s.opts.ReceiptState
	switch sub.registered & pdu.RegisteredDeliveryReceiptMask {
	case pdu.RegisteredDeliveryReceiptFinal:
	case pdu.RegisteredDeliveryReceiptFailure:
		if state == pdu.DELIVERED {
			return nil
		}
	default:
		return nil
	}
	if s.opts.ReceiptDelay < 0 {
		return nil
	}
	dlvrd := 0
	if state == pdu.DELIVERED {
		dlvrd = 1
	}
	text := sub.text[:min(len(sub.text), 20)] // as SMSCs do: the first 20 characters, if plain ASCII
	for _, c := range text {
		if c < ' ' || c > '~' {
			text = nil
			break
		}
	}
	now := time.Now()
	info := dlr.Info{MessageID: id, State: state, Receipt: dlr.Receipt{
		ID: id, Sub: 1, Dlvrd: dlvrd, SubmitDate: now, DoneDate: now, Stat: dlr.StatFor(state), Err: "000", Text: string(text),
	}}
	d := &pdu.DeliverSM{SourceAddrTON: sub.dstTON, SourceAddrNPI: sub.dstNPI, SourceAddr: sub.dst,
		DestAddrTON: sub.srcTON, DestAddrNPI: sub.srcNPI, DestinationAddr: sub.src}
	if err := info.ToDeliverSM(d); err != nil {
		s.opts.Logger.Error().Err(err).Str("id", id).Msg("receipt not built")
		return nil
	}
	return d
}
