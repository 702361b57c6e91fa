package smscsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/tokenbucket"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

// Errors callers branch on.
var (
	// ErrNoBind is returned by SendMO, SendText and SendReceipt when no bound session can take a deliver_sm.
	ErrNoBind = errors.New("smscsim: no session bound to receive")
	// ErrUnknownBind is returned for a bind id that is not bound now.
	ErrUnknownBind = errors.New("smscsim: unknown bind")
)

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
	// ReceiptMix, if not empty, replaces ReceiptState: each receipt's state is drawn from it (see Mix.Pick).
	ReceiptMix Mix
	// Seed seeds the draws from ReceiptMix, so that a test can replay them; 0 means a random seed.
	Seed uint64
	// Remember is how many message ids, the latest, SendReceipt can send a receipt for. 0 means
	// 100000; negative means none.
	Remember int
	// MOEvery sends an MO of MOText every so often on the first link that can receive (none is sent
	// while no link can). 0 sends none.
	MOEvery time.Duration
	// MOText is the text of the timed MO. Empty means "smscsim MO".
	MOText string
	// MOFrom and MOTo are the addresses of an MO that names none (timed ones among them). Empty means
	// "447700900000" and "12345".
	MOFrom, MOTo string
	// LinkFaults are the standing faults at start; see SetLinkFaults. The zero value is none.
	LinkFaults LinkFaults
	// NoRecord stops Submits and Times recording every submission, which a long-running simulator
	// cannot afford; the counts, and the latest submissions in Stats, are kept all the same.
	NoRecord bool
	// KeepLast is how many of the latest submissions Stats returns. 0 means 100.
	KeepLast int
	// ReceiptFirst sends the receipt, and waits for its answer, before the submit_sm_resp: an SMSC
	// whose receipt overtakes its own answer.
	ReceiptFirst bool
	// OnSubmit, if set, sees each submit_sm once it is recorded and before it is answered, on the
	// session's reader: it must not block (a SendMO it starts goes in a goroutine of its own).
	OnSubmit func(sim *Sim, sm *pdu.SubmitSM)
	// AsDataSM sends receipts and MO as data_sm instead of deliver_sm, the text in message_payload:
	// an SMSC that speaks data_sm towards its ESMEs.
	AsDataSM bool
	// RedeliverReceipts keeps a receipt whose deliver_sm got no ESME_ROK answer (the link dropped under
	// it, the answer timed out or was an error) and sends it again 100ms later on a link that can
	// receive, or on the next one bound when there is none, as an SMSC holds a receipt until it is
	// acknowledged. false drops it (it counts as failed either way).
	RedeliverReceipts bool
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
	if o.Remember == 0 {
		o.Remember = 100000
	}
	if o.MOText == "" {
		o.MOText = "smscsim MO"
	}
	if o.MOFrom == "" {
		o.MOFrom = "447700900000"
	}
	if o.MOTo == "" {
		o.MOTo = "12345"
	}
	if o.KeepLast <= 0 {
		o.KeepLast = 100
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
	unacked []*pdu.DeliverSM // receipts to send again on the next bind (Options.RedeliverReceipts)
	resent  int              // receipts sent again

	links    map[uint64]*link // bound links by session id
	link     LinkFaults
	bucket   *tokenbucket.Bucket // ESME_RTHROTTLED above LinkFaults.ThrottleAbove; nil: none
	rng      *rand.Rand
	moRef    atomic.Uint32
	msgs     map[string]sent // message ids SendReceipt knows, at most Options.Remember
	order    []string        // the ids of msgs, a ring once full
	orderAt  int             // the oldest in order once full
	stats    counters
	last     []Received // a ring of the latest Options.KeepLast submissions
	lastNext int
	edits    edits // cancel_sm and replace_sm (edits.go)
}

// New returns a Sim that serves nothing until Serve.
func New(opts Options) *Sim {
	ctx, cancel := context.WithCancel(context.Background())
	opts = opts.withDefaults()
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Sim{opts: opts, ctx: ctx, cancel: cancel,
		conns: map[*session.Session]struct{}{}, times: map[string]int{},
		links: map[uint64]*link{}, msgs: map[string]sent{}, rng: rand.New(rand.NewPCG(seed, seed)),
		stats: newCounters()}
	s.setLinkFaults(opts.LinkFaults)
	if opts.MOEvery > 0 {
		s.later(s.moTimer)
	}
	return s
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
		if s.serveConn(c) == nil {
			return nil
		}
	}
}

// serveConn starts a session on c; nil (and c closed) once the simulator is closed.
func (s *Sim) serveConn(c net.Conn) *session.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil
	}
	ss := session.New(c, session.Options{Role: session.RoleSMSC, Handler: &handler{sim: s, link: &link{}},
		Config: s.opts.Session, Logger: s.opts.Logger, SystemID: s.opts.SystemID})
	s.conns[ss] = struct{}{}
	return ss
}

// Outbind connects to an ESME waiting for outbinds at addr and sends outbind with systemID and
// password (SMPP 3.4 section 2.2.1); the bind the ESME sends back on that connection is served like
// any accepted one. It returns once the outbind is written, not when the ESME binds (see Bound).
func (s *Sim) Outbind(ctx context.Context, addr, systemID, password string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smscsim: outbind: %w", err)
	}
	ss := s.serveConn(c)
	if ss == nil {
		return fmt.Errorf("smscsim: outbind to %s: %w", addr, net.ErrClosed)
	}
	if err := ss.Outbind(systemID, password); err != nil {
		ss.Close()
		return fmt.Errorf("smscsim: outbind to %s: %w", addr, err)
	}
	return nil
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

// SetLinkFaults replaces the standing faults (the zero value clears them); a new ThrottleAbove starts
// with a full bucket.
func (s *Sim) SetLinkFaults(f LinkFaults) {
	s.mu.Lock()
	s.setLinkFaults(f)
	s.mu.Unlock()
	s.opts.Logger.Info().Dur("delay", f.Delay).Int("drop_every", f.DropEvery).
		Float64("throttle_above", f.ThrottleAbove).Msg("link faults set")
}

func (s *Sim) setLinkFaults(f LinkFaults) {
	s.link = f
	s.bucket = tokenbucket.New(f.ThrottleAbove, time.Now())
}

// Faults returns the standing faults, the queued ones and the bind refusal status (ESME_ROK: none).
func (s *Sim) Faults() (LinkFaults, []Fault, pdu.CommandStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link, append([]Fault(nil), s.faults...), s.refuse
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
	to := s.receiver()
	s.mu.Unlock()
	if to == nil {
		return 0, ErrNoBind
	}
	if dlr.IsReceipt(d.EsmClass) {
		info, _ := dlr.FromDeliverSM(d)
		return s.deliver(ctx, to, d, kindReceipt, info.State)
	}
	return s.deliver(ctx, to, d, kindMO, 0)
}

// What a deliver_sm of ours carries, for the counts.
const (
	kindMO = iota
	kindReceipt
)

// deliver sends d on ss, waits for the answer and counts both; state is a receipt's.
func (s *Sim) deliver(ctx context.Context, ss *session.Session, d *pdu.DeliverSM, kind int, state pdu.MessageState) (pdu.CommandStatus, error) {
	s.mu.Lock()
	if kind == kindReceipt {
		s.stats.receiptsSent++
		s.stats.receiptStates[dlr.StatFor(state)]++
	} else {
		s.stats.moSent++
	}
	s.mu.Unlock()
	var body pdu.Body = d
	if s.opts.AsDataSM {
		body = dataOf(d)
	}
	resp, err := ss.Send(ctx, body)
	status := pdu.StatusOf(err) | resp.Status
	s.mu.Lock()
	s.answers = append(s.answers, status)
	switch {
	case kind == kindReceipt && err == nil:
		s.stats.receiptsAnswered++
	case kind == kindReceipt:
		s.stats.receiptsFailed++
	case err == nil:
		s.stats.moAnswered++
	default:
		s.stats.moFailed++
	}
	s.mu.Unlock()
	return status, err
}

// dataOf is d as a data_sm: the fields the two share, its TLVs, and short_message moved to
// message_payload.
func dataOf(d *pdu.DeliverSM) *pdu.DataSM {
	ds := &pdu.DataSM{
		ServiceType:   d.ServiceType,
		SourceAddrTON: d.SourceAddrTON, SourceAddrNPI: d.SourceAddrNPI, SourceAddr: d.SourceAddr,
		DestAddrTON: d.DestAddrTON, DestAddrNPI: d.DestAddrNPI, DestinationAddr: d.DestinationAddr,
		EsmClass: d.EsmClass, RegisteredDelivery: d.RegisteredDelivery, DataCoding: d.DataCoding,
		Options: append(pdu.Options(nil), d.Options...),
	}
	if len(d.ShortMessage) > 0 {
		ds.Options.Set(pdu.TagMessagePayload, d.ShortMessage)
	}
	return ds
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
	sim  *Sim
	link *link
}

// link is what the simulator keeps of one session.
type link struct {
	ss      *session.Session
	boundAt time.Time
	submits int        // since the bind, under Sim.mu
	dq      delayQueue // answers held back by LinkFaults.Delay
}

func (h *handler) HandleBind(ss *session.Session, req session.Request) pdu.CommandStatus {
	s := h.sim
	bt, b, _ := session.BindOf(req.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	status := s.refuse
	if status == pdu.ESME_ROK && len(s.opts.Accounts) > 0 {
		if pw, ok := s.opts.Accounts[b.SystemID]; !ok || pw != b.Password {
			status = pdu.ESME_RINVPASWD
		}
	}
	if status == pdu.ESME_ROK {
		s.binds++ // here, not in HandleBound, so that a peer that has its bind_resp sees it counted
	} else {
		s.refused++
		s.opts.Logger.Info().Str("system_id", b.SystemID).Stringer("bind_type", bt).Stringer("remote", ss.RemoteAddr()).
			Stringer("status", status).Msg("bind refused")
	}
	return status
}

func (h *handler) HandleBound(ss *session.Session) {
	s := h.sim
	s.mu.Lock()
	s.bound = append(s.bound, ss)
	h.link.ss = ss
	h.link.boundAt = time.Now()
	s.links[ss.ID()] = h.link
	var again []*pdu.DeliverSM
	if ss.BindType().CanReceive() {
		again, s.unacked = s.unacked, nil
		s.resent += len(again)
	}
	s.mu.Unlock()
	for _, rec := range again {
		s.later(func() { s.sendReceipt(ss, rec) })
	}
	s.opts.Logger.Info().Uint64("bind", ss.ID()).Str("system_id", ss.SystemID()).Stringer("bind_type", ss.BindType()).
		Stringer("remote", ss.RemoteAddr()).Msg("bound")
}

func (h *handler) Terminate(ss *session.Session, lost []session.Request) {
	s := h.sim
	h.link.dq.stop()
	s.mu.Lock()
	delete(s.conns, ss)
	delete(s.links, ss.ID())
	for i, b := range s.bound {
		if b == ss {
			s.bound = append(s.bound[:i], s.bound[i+1:]...)
			s.opts.Logger.Info().Uint64("bind", ss.ID()).Str("system_id", ss.SystemID()).AnErr("reason", ss.Err()).Msg("unbound")
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
		if !s.handleEdit(ss, req) {
			h.BaseHandler.HandleRequest(ss, req)
		}
		return
	}
	_, isData := req.Body.(*pdu.DataSM)
	now := time.Now()

	// Decide everything under one lock, in the order submissions arrive, so that the counts, the
	// fault queue and the receipt draws follow that order.
	s.mu.Lock()
	s.count++
	h.link.submits++
	if sm, ok := req.Body.(*pdu.SubmitSM); ok && !s.opts.NoRecord {
		s.submits = append(s.submits, sm)
		s.times[string(sm.ShortMessage)]++
	}
	throttled := s.bucket != nil && !s.bucket.Allow(now)
	var (
		f           Fault
		last, fault bool
	)
	if !throttled {
		f, last, fault = s.fault()
	}
	drop := s.link.DropEvery > 0 && h.link.submits%s.link.DropEvery == 0
	delay := s.link.Delay
	status, id := pdu.ESME_ROK, ""
	var rec *pdu.DeliverSM
	switch {
	case throttled:
		status = pdu.ESME_RTHROTTLED
	case fault && f.Hold:
	case fault && f.Status != pdu.ESME_ROK:
		status = f.Status
	default:
		id = fmt.Sprintf("%s%04d", s.opts.IDPrefix, s.next.Add(1))
		rec = s.receipt(id, sub)
		s.remember(id, sent{sub: sub, bind: ss.ID(), sys: ss.SystemID()})
	}
	held := fault && f.Hold && !throttled
	s.record(now, ss, req.Body, sub, id, status, held)
	s.mu.Unlock()

	if sm, ok := req.Body.(*pdu.SubmitSM); ok && s.opts.OnSubmit != nil {
		s.opts.OnSubmit(s, sm)
	}
	if fault && f.Close && last {
		s.later(func() {
			select {
			case <-time.After(closeDelay):
				s.dropped(ss, "close fault")
			case <-s.ctx.Done():
			}
		})
	}
	if held {
		if drop {
			s.dropped(ss, "drop_every")
		}
		return
	}
	var resp pdu.Body
	switch {
	case status != pdu.ESME_ROK:
	case isData:
		resp = &pdu.DataSMResp{MessageID: id}
	default:
		resp = &pdu.SubmitSMResp{MessageID: id}
	}
	written := false
	answer := func() {
		written = s.respondCounted(ss, req, status, resp) == nil
		if drop {
			s.dropped(ss, "drop_every")
		}
	}
	switch {
	case rec != nil && s.opts.ReceiptFirst:
		// Send waits for the answer, so not on the session's reader.
		s.later(func() {
			s.sendReceipt(ss, rec)
			h.link.after(delay, answer)
		})
		return
	case rec != nil:
		respond := answer
		answer = func() {
			respond()
			if written { // no receipt for an answer the link could no longer take
				s.receiptLater(ss, rec)
			}
		}
	}
	h.link.after(delay, answer)
}

// after runs f after d, on the link's delay queue, or now when d is 0.
func (l *link) after(d time.Duration, f func()) {
	if d <= 0 {
		f()
		return
	}
	l.dq.push(time.Now().Add(d), f)
}

// respondCounted answers req and counts the answer by status: before it is written, so that a peer
// that has it sees it counted.
func (s *Sim) respondCounted(ss *session.Session, req session.Request, status pdu.CommandStatus, body pdu.Body) error {
	s.mu.Lock()
	s.stats.answered[status]++
	s.mu.Unlock()
	err := ss.Respond(req, status, body)
	if err != nil {
		s.mu.Lock()
		s.stats.answered[status]--
		s.mu.Unlock()
	}
	return err
}

// receiptLater sends rec on ss after Options.ReceiptDelay, in a goroutine of its own (Send waits for
// the answer).
func (s *Sim) receiptLater(ss *session.Session, rec *pdu.DeliverSM) {
	s.later(func() {
		if d := s.opts.ReceiptDelay; d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-s.ctx.Done():
				return
			}
		}
		s.sendReceipt(ss, rec)
	})
}

func (s *Sim) sendReceipt(ss *session.Session, rec *pdu.DeliverSM) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.SendTimeout)
	defer cancel()
	s.mu.Lock()
	s.rcpts++
	s.mu.Unlock()
	info, _ := dlr.FromDeliverSM(rec)
	status, err := s.deliver(ctx, ss, rec, kindReceipt, info.State)
	if (err != nil || status != pdu.ESME_ROK) && s.opts.RedeliverReceipts && s.ctx.Err() == nil {
		s.later(func() { s.redeliver(rec) })
	}
}

// redeliverDelay is how long a receipt that was not acknowledged waits before it is sent again on a
// link that is bound (an ESME that answered with an error, or did not answer, is given a moment).
const redeliverDelay = 100 * time.Millisecond

// redeliver sends rec again after redeliverDelay on the first link that can receive, or keeps it for
// the next bind when there is none.
func (s *Sim) redeliver(rec *pdu.DeliverSM) {
	t := time.NewTimer(redeliverDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
		return
	}
	s.mu.Lock()
	to := s.receiver()
	if to == nil {
		s.unacked = append(s.unacked, rec)
	} else {
		s.resent++
	}
	s.mu.Unlock()
	if to != nil {
		s.sendReceipt(to, rec)
	}
}

// ReceiptsPending is how many receipts wait for a bind to be sent again (Options.RedeliverReceipts).
func (s *Sim) ReceiptsPending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.unacked)
}

// ReceiptsResent is how many receipts were sent again (Options.RedeliverReceipts).
func (s *Sim) ReceiptsResent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resent
}

// dropped closes ss (what is queued is written first, no unbind) and counts the drop once.
func (s *Sim) dropped(ss *session.Session, why string) {
	if closing(ss) {
		return
	}
	s.mu.Lock()
	s.stats.dropped++ // before the close, so that a peer seeing it sees it counted
	s.mu.Unlock()
	ss.Close()
	s.opts.Logger.Info().Uint64("bind", ss.ID()).Str("why", why).Msg("link dropped")
}
