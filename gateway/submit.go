package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
	"github.com/smppgw/smppgw/store"
)

// storeTimeout bounds one store call made on behalf of a PDU.
const storeTimeout = 10 * time.Second

var splitModes = map[string]pdu.SplitMode{
	"udh8": pdu.SplitUDH8, "udh16": pdu.SplitUDH16, "sar": pdu.SplitSAR, "payload": pdu.SplitPayload,
}

// submitter is the way in of the message path (DESIGN.md, "Message life", step 1): a submit_sm or
// data_sm from an ESME (it is the Server's MessageHandler), each destination of a submit_multi
// (submitmulti.go), or a Submission from the API is validated (the rules in validate.go), given a
// gateway message id, routed by the route table, written with store.AcceptMessage (which queues its
// parts for the upstream) and only then answered. It also answers query_sm from the store.
type submitter struct {
	st      store.Store
	log     zerolog.Logger
	routes  *routeTable
	ids     *messageIDs
	split   pdu.SplitMode
	stats   *counters
	work    *pool
	nextRef atomic.Uint32     // concatenation reference of API messages split here
	edits   *editor           // cancel_sm and replace_sm (cancel.go)
	numbers *numberTable      // the accounts' number normalisation (normalize.go); nil: none
	inDoubt *inDoubt          // accepts the store could not tell written or not (indoubt.go); nil: none
	async   store.AsyncWrites // st's, when the store has them (asyncOf); nil: writes are waited for
}

var _ MessageHandler = (*submitter)(nil)

func newSubmitter(st store.Store, routes *routeTable, split pdu.SplitMode, stats *counters, work *pool, log zerolog.Logger) *submitter {
	s := &submitter{st: st, log: log.With().Str("component", "submit").Logger(), routes: routes, ids: newMessageIDs(),
		split: split, stats: stats, work: work, async: asyncOf(st)}
	var seed [4]byte
	_, _ = rand.Read(seed[:]) // crypto/rand does not fail on supported platforms
	s.nextRef.Store(binary.BigEndian.Uint32(seed[:]))
	return s
}

// HandleMessage implements MessageHandler: submit_sm, data_sm and submit_multi are accepted into the
// store and then answered; query_sm is answered from the store; cancel_sm and replace_sm go to the
// editor (cancel.go); the other requests are refused with ESME_RINVCMDID.
func (sub *submitter) HandleMessage(m Inbound) {
	account := m.Session.SystemID()
	if m.Account != nil && m.Account.SystemID != "" {
		account = m.Account.SystemID
	}
	switch b := m.Request.Body.(type) {
	case *pdu.SubmitSM:
		sub.acceptOne(m, account, b, false)
	case *pdu.DataSM:
		// The same path as submit_sm: the message travels in message_payload, which is kept in the
		// part's TLVs and goes upstream in a submit_sm (SMPP 3.4 allows message_payload there).
		sub.acceptOne(m, account, submitOfDataSM(b), true)
	case *pdu.SubmitMulti:
		sub.submitMulti(m, account, b)
	case *pdu.QuerySM:
		q := *b
		q.MessageID = strings.Clone(b.MessageID)
		sub.work.do(func() { sub.query(m, account, &q) })
	case *pdu.CancelSM, *pdu.ReplaceSM:
		sub.edits.handle(m, account)
	default:
		_ = m.Respond(pdu.ESME_RINVCMDID, nil)
	}
}

// borrowsSubmitSM: the submitter holds no submit_sm body once HandleMessage returns (acceptOne
// copies what it keeps and answers through submitSMShape), so the session reuses its body.
func (sub *submitter) borrowsSubmitSM() bool { return true }

// submitSMShape stands in for a submit_sm whose body the session reuses, in the request an answer
// goes to later: Respond reads only its command id. Never written.
var submitSMShape pdu.Body = new(pdu.SubmitSM)

// acceptJob is one submit_sm or data_sm on its way into the store: the request, the message with
// its one part and its first status change, and the answer, in one allocation; it is also the
// pool's task that writes it, and, when the store writes asynchronously, the completion its write
// is answered to. Jobs are reused (acceptJobs): nothing keeps a job, its message or its answer once
// it has answered (the stores encode the message before AcceptMessage, or AcceptMessageAsync,
// returns; the session encodes the answer in Respond), and a job is cleared whole before it goes
// back.
type acceptJob struct {
	sub      *submitter
	ctx      context.Context // bounds its store calls
	in       Inbound
	account  string
	data     bool // a data_sm: answered with data_sm_resp
	msg      store.Message
	parts    [1]store.Part
	history  [1]store.StatusChange
	smResp   pdu.SubmitSMResp
	dataResp pdu.DataSMResp
}

var acceptJobs = sync.Pool{New: func() any { return new(acceptJob) }}

// release clears j and gives it back for the next submission.
func (j *acceptJob) release() {
	*j = acceptJob{}
	acceptJobs.Put(j)
}

// acceptOne validates b, accepts it and answers with submit_sm_resp, or data_sm_resp for a data_sm.
func (sub *submitter) acceptOne(m Inbound, account string, b *pdu.SubmitSM, data bool) {
	j := acceptJobs.Get().(*acceptJob)
	j.sub, j.in, j.account, j.data = sub, m, account, data
	if !data {
		j.in.Request.Body = submitSMShape // m's body is the session's, reused once this returns
	}
	// The time the PDU was read (to within its burst) is the "now" its relative times count from.
	now := m.Request.Sent
	if now.IsZero() {
		now = time.Now()
	}
	// The id goes in the one allocation of the message's strings when its form is known here;
	// otherwise accept asks the store for the account's form, off this reader.
	var idBuf [36]byte
	id, _ := sub.ids.appendIDKnown(idBuf[:0], account, now)
	if err := sub.fillFromSubmitSM(&j.msg, j.parts[:], account, b, now, id); err != nil {
		j.release()
		sub.stats.rejected.Add(1)
		st := statusForAcceptError(err)
		sub.log.Info().Str("account", account).Stringer("command", m.Request.Body.CommandID()).Str("dest", b.DestinationAddr).Err(err).Stringer("status", st).Msg("message refused")
		_ = m.Respond(st, nil)
		return
	}
	j.msg.History = j.history[:0] // PrepareAccept writes the first change there
	if sub.async != nil && j.msg.ID != "" {
		// The write is only queued, its answer sent from its completion: no worker is needed,
		// and none is woken. A full queue holds up this reader, which pushes back on the peer.
		j.run()
		return
	}
	// The durable write waits for a disk flush (or a Redis round trip); doing it off the reader
	// lets concurrent submissions share one group commit.
	sub.work.run(j)
}

func (j *acceptJob) run() {
	sub, msg := j.sub, &j.msg
	j.ctx = storeContext()
	if sub.async == nil {
		j.answer(sub.accept(j.ctx, msg))
		return
	}
	// The write is answered to AcceptDone once durable: this worker is free at once, and no
	// goroutine waits for the group commit.
	if msg.ID == "" {
		msg.ID = sub.ids.newMessageIDFor(j.ctx, msg.Account)
	}
	sub.inDoubt.hold(msg.ID)
	sub.work.writeStarted()
	sub.async.AcceptMessageAsync(j.ctx, msg, j)
}

// AcceptDone implements store.AcceptCompletion. It runs on the store's goroutine (or on run's, for
// a write refused before it was queued), which must not be held up: an accept that failed goes on
// on a goroutine of its own, since it may read the store back (in doubt) or write again (its id was
// taken). One that succeeded is answered here, its answer queued to the session's writer.
func (j *acceptJob) AcceptDone(err error) {
	work := j.sub.work // j is given back by finish
	if err != nil {
		go func() {
			j.finish(err)
			work.writeDone()
		}()
		return
	}
	j.finish(nil)
	work.writeDone()
}

// finish ends an accept whose write ended with err, as accept does after its write, and answers.
func (j *acceptJob) finish(err error) {
	sub, msg := j.sub, &j.msg
	j.answer(sub.accepted(j.ctx, msg, sub.inDoubt.outcome(j.ctx, msg, err)))
}

// answer answers the submission, accepted unless err, and gives j back.
func (j *acceptJob) answer(err error) {
	defer j.release()
	sub, msg := j.sub, &j.msg
	if err != nil {
		sub.stats.rejected.Add(1)
		_ = j.in.Respond(statusForAcceptError(err), nil)
		return
	}
	var resp pdu.Body
	if j.data {
		j.dataResp.MessageID = msg.ID
		resp = &j.dataResp
	} else {
		j.smResp.MessageID = msg.ID
		resp = &j.smResp
	}
	if err := j.in.Respond(pdu.ESME_ROK, resp); err != nil {
		// Accepted and queued already: the message goes out and its receipt is queued.
		sub.log.Warn().Err(err).Str("account", j.account).Stringer("command", j.in.Request.Body.CommandID()).Str("message_id", msg.ID).Msg("response not sent")
	}
}

// submitOfDataSM is the submit_sm view of a data_sm: the fields the two share, and its TLVs
// (message_payload among them) as they came. It aliases b; fromSubmitSM copies what it keeps.
func submitOfDataSM(b *pdu.DataSM) *pdu.SubmitSM {
	return &pdu.SubmitSM{
		ServiceType:   b.ServiceType,
		SourceAddrTON: b.SourceAddrTON, SourceAddrNPI: b.SourceAddrNPI, SourceAddr: b.SourceAddr,
		DestAddrTON: b.DestAddrTON, DestAddrNPI: b.DestAddrNPI, DestinationAddr: b.DestinationAddr,
		EsmClass: b.EsmClass, RegisteredDelivery: b.RegisteredDelivery, DataCoding: b.DataCoding, Options: b.Options,
	}
}

// statusForAcceptError is what a submit_sm is refused with when the store did not take it.
// ESME_RSYSERR rather than ESME_RMSGQFUL: the gateway is not full, it cannot write, and ESMEs retry
// RSYSERR later just the same.
func statusForAcceptError(err error) pdu.CommandStatus {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve) && ve.Status != pdu.ESME_ROK:
		return ve.Status
	case errors.As(err, &ve):
		return pdu.ESME_RINVPARLEN
	case errors.Is(err, ErrNoRoute):
		// ESME_RINVDSTADR rather than ESME_RSUBMITFAIL: the gateway cannot reach this destination at
		// all, which is permanent for it, and ESMEs treat RINVDSTADR as "do not retry" while many retry
		// the generic RSUBMITFAIL for ever.
		return pdu.ESME_RINVDSTADR
	}
	return pdu.ESME_RSYSERR
}

// accept gives m (validated and routed) an id, unless it has one, and writes it durably.
func (sub *submitter) accept(ctx context.Context, m *store.Message) error {
	if m.ID == "" {
		m.ID = sub.ids.newMessageIDFor(ctx, m.Account)
	}
	// Written with its id held against this instance's claimers until the outcome is known, and
	// resolved when in doubt (indoubt.go).
	return sub.accepted(ctx, m, sub.inDoubt.accept(ctx, sub.st, m))
}

// accepted finishes the accept of m whose write ended with err, its in-doubt hold ended
// (inDoubt.outcome): an id found taken is moved and m written again, a failure logged, a success
// counted. It returns nil when m is accepted. When err is nil it calls no store.
func (sub *submitter) accepted(ctx context.Context, m *store.Message, err error) error {
	for try := 0; errors.Is(err, store.ErrExists) && try < 3; try++ {
		// Another run or instance issued this id (their sequences met): move ours elsewhere.
		sub.log.Warn().Str("message_id", m.ID).Msg("message id already taken; moving this run's ids to a new random start")
		sub.ids.reseedIDs()
		m.ID = sub.ids.newMessageIDFor(ctx, m.Account)
		err = sub.inDoubt.accept(ctx, sub.st, m)
	}
	if err != nil {
		sub.log.Error().Err(err).Str("account", m.Account).Str("upstream", m.Upstream).Msg("message not accepted: store write failed")
		return err
	}
	sub.stats.accept(m)
	sub.log.Debug().Str("account", m.Account).Str("message_id", m.ID).Str("upstream", m.Upstream).
		Str("dest", m.Destination.Addr).Int("parts", len(m.Parts)).Msg("message accepted")
	return nil
}

// query answers query_sm from the store, for the account's own messages.
func (sub *submitter) query(m Inbound, account string, q *pdu.QuerySM) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	msg, err := sub.st.GetMessage(ctx, MessageIDKey(q.MessageID))
	if err != nil || msg.Account != account {
		st := pdu.ESME_RQUERYFAIL
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			st = pdu.ESME_RSYSERR
		}
		_ = m.Respond(st, nil)
		return
	}
	_ = m.Respond(pdu.ESME_ROK, queryResp(msg))
}

// fromSubmitSM validates a submit_sm from account and turns it into a store.Message of one part (a
// part of a long message, UDH or SAR, stays one part as received), routed. Nothing of b is aliased.
// Errors are *ValidationError (its Status is the answer) or ErrNoRoute.
func (sub *submitter) fromSubmitSM(account string, b *pdu.SubmitSM, now time.Time) (*store.Message, error) {
	m := new(store.Message)
	if err := sub.fillFromSubmitSM(m, make([]store.Part, 1), account, b, now, nil); err != nil {
		return nil, err
	}
	return m, nil
}

// fillFromSubmitSM is fromSubmitSM into m, with parts (of length 1) as its Parts; id, if not empty,
// is m's id. What it keeps of b is copied in two allocations: the strings (and the id) in one, the
// octets in the other.
func (sub *submitter) fillFromSubmitSM(m *store.Message, parts []store.Part, account string, b *pdu.SubmitSM, now time.Time, id []byte) error {
	b = sub.numbers.accountSubmit(account, b) // the account's number normalisation, before routing
	src := store.Address{TON: b.SourceAddrTON, NPI: b.SourceAddrNPI, Addr: b.SourceAddr}
	dst := store.Address{TON: b.DestAddrTON, NPI: b.DestAddrNPI, Addr: b.DestinationAddr}
	if ve := checkDestination(dst); ve != nil {
		return ve
	}
	if ve := checkSource(src); ve != nil {
		return ve
	}
	if ve := checkShortMessage(b); ve != nil {
		return ve
	}
	if ve := checkRegisteredDelivery(b.RegisteredDelivery); ve != nil {
		return ve
	}
	if ve := checkPriority("priority_flag", b.PriorityFlag); ve != nil {
		return ve
	}
	// Message type (bits 5-2): default, or the ESME's delivery / manual acknowledgement.
	if mt := b.EsmClass & pdu.EsmClassTypeMask; mt != 0 && mt != pdu.EsmClassSMEAck && mt != pdu.EsmClassUserAck {
		return refuse("esm_class", pdu.ESME_RINVESMCLASS, "message type "+strconv.Itoa(int(mt>>2))+" is not one an ESME submits")
	}
	schedule, err := pdu.ParseTime(b.ScheduleDeliveryTime, now)
	if err != nil {
		return refuse("schedule_delivery_time", pdu.ESME_RINVSCHED, "not an SMPP time")
	}
	validity, err := pdu.ParseTime(b.ValidityPeriod, now)
	if err != nil {
		return refuse("validity_period", pdu.ESME_RINVEXPIRY, "not an SMPP time")
	}
	schedule, ve := checkTimes(schedule, validity, now)
	if ve != nil {
		return ve
	}
	up, ok := sub.routes.pickUpstream(account, dst.Addr)
	if !ok {
		return ErrNoRoute
	}
	var service, msgID string
	var text, tlvs []byte
	msgID, service, src.Addr, dst.Addr, text, tlvs = cloneFields(id, b.ServiceType, b.SourceAddr, b.DestinationAddr, b.ShortMessage, b.Options)
	parts[0] = store.Part{ESMClass: b.EsmClass, ShortMessage: text, TLVs: tlvs}
	*m = store.Message{
		ID: msgID, Account: account, ServiceType: service, Source: src, Destination: dst,
		ESMClass: b.EsmClass, ProtocolID: b.ProtocolID, PriorityFlag: b.PriorityFlag,
		RegisteredDelivery: b.RegisteredDelivery, DataCoding: b.DataCoding, Validity: validity, Schedule: schedule, Upstream: up,
		Parts: parts[:1], Origin: store.OriginSMPP, // submit_sm, submit_multi and data_sm all come here
	}
	if ve := checkUpstream(m); ve != nil {
		return ve
	}
	return nil
}

// cloneFields copies id, the strings a, b and c, and the octets text and tlvs into one new
// allocation, and returns the strings and octets of it. The octets are each capped at their own
// length, so that appending to one copies rather than writes over what follows; the strings' region
// is never reachable as a []byte, so they are immutable as Go requires. Empty ones are "" and nil.
func cloneFields(id []byte, a, b, c string, text, tlvs []byte) (string, string, string, string, []byte, []byte) {
	ns := len(id) + len(a) + len(b) + len(c)
	n := ns + len(text) + len(tlvs)
	if n == 0 {
		return "", "", "", "", nil, nil
	}
	buf := make([]byte, 0, n)
	buf = append(buf, id...)
	buf = append(buf, a...)
	buf = append(buf, b...)
	buf = append(buf, c...)
	buf = append(buf, text...)
	buf = append(buf, tlvs...)
	str := func(from, to int) string {
		if from == to {
			return ""
		}
		return unsafe.String(&buf[from], to-from)
	}
	oct := func(from, to int) []byte {
		if from == to {
			return nil
		}
		return buf[from:to:to]
	}
	i, j, k := len(id), len(id)+len(a), len(id)+len(a)+len(b)
	return str(0, i), str(i, j), str(j, k), str(k, ns), oct(ns, ns+len(text)), oct(ns+len(text), n)
}

// defaultAddr fills the TON/NPI of an address given as a bare string: "+" and digits is
// international E.164, digits alone unknown/E.164, anything else alphanumeric.
func defaultAddr(a store.Address) store.Address {
	if a.TON != pdu.TONUnknown || a.NPI != pdu.NPIUnknown || a.Addr == "" {
		return a
	}
	switch d, ok := number(a.Addr); {
	case ok && a.Addr[0] == '+':
		return store.Address{TON: pdu.TONInternational, NPI: pdu.NPIISDN, Addr: d}
	case ok:
		return store.Address{TON: pdu.TONUnknown, NPI: pdu.NPIISDN, Addr: a.Addr}
	}
	return store.Address{TON: pdu.TONAlphanumeric, NPI: pdu.NPIUnknown, Addr: a.Addr}
}

// fromSubmission validates an API submission and turns it into a store.Message, split into parts and
// routed. Errors are *ValidationError or ErrNoRoute.
func (sub *submitter) fromSubmission(s Submission, now time.Time) (*store.Message, error) {
	src, dst, schedule, err := s.validate(now)
	if err != nil {
		return nil, err
	}
	src, dst = sub.numbers.accountAddrs(s.Account, src, dst) // before routing
	up, ok := sub.routes.pickUpstream(s.Account, dst.Addr)
	if !ok {
		return nil, ErrNoRoute
	}
	tmpl := &pdu.SubmitSM{
		SourceAddrTON: src.TON, SourceAddrNPI: src.NPI, SourceAddr: src.Addr,
		DestAddrTON: dst.TON, DestAddrNPI: dst.NPI, DestinationAddr: dst.Addr,
		PriorityFlag: s.Priority, RegisteredDelivery: s.RegisteredDelivery,
	}
	if s.DataCoding != nil {
		tmpl.DataCoding = *s.DataCoding
	}
	ref := uint16(sub.nextRef.Add(1))
	var parts []*pdu.SubmitSM
	if s.Text != "" {
		parts, err = pdu.SplitText(tmpl, sub.split, s.Text, ref)
	} else {
		if s.DataCoding == nil {
			tmpl.DataCoding = uint8(text.Binary)
		}
		parts, err = pdu.Split(tmpl, sub.split, s.Binary, ref)
	}
	if err != nil {
		field := "text"
		if s.Text == "" {
			field = "binary"
		}
		// Too many parts (*pdu.FieldError) or text the coding cannot carry (text.ErrUnencodable, ...).
		var fe *pdu.FieldError
		if errors.As(err, &fe) {
			return nil, refuse(field, fe.Status, fe.Reason)
		}
		return nil, refuse(field, pdu.ESME_RINVMSGLEN, reasonOf(err))
	}
	m := &store.Message{
		Account: s.Account, Source: src, Destination: dst, PriorityFlag: s.Priority,
		RegisteredDelivery: s.RegisteredDelivery, DataCoding: parts[0].DataCoding, Validity: s.Validity,
		Schedule: schedule, ClientRef: s.ClientRef, Upstream: up, Parts: make([]store.Part, len(parts)),
		CallbackURL: s.CallbackURL, Origin: store.OriginAPI,
	}
	for i, p := range parts {
		m.Parts[i] = store.Part{ESMClass: p.EsmClass, ShortMessage: bytes.Clone(p.ShortMessage), TLVs: bytes.Clone(p.Options)}
	}
	if ve := checkUpstream(m); ve != nil {
		return nil, ve
	}
	return m, nil
}

// Validate checks s by the rules a submit_sm is held to, as Gateway.Submit does before routing and
// splitting it: the error is a *ValidationError naming the field. Gateway.Submit runs it itself;
// it is exported for implementations of the API's Gateway other than *Gateway (tests).
func (s Submission) Validate(now time.Time) error {
	_, _, _, err := s.validate(now)
	return err
}

// validate checks s and returns its addresses (TON/NPI filled by defaultAddr) and the schedule to keep.
func (s Submission) validate(now time.Time) (src, dst store.Address, schedule time.Time, err error) {
	fail := func(ve *ValidationError) (store.Address, store.Address, time.Time, error) {
		return store.Address{}, store.Address{}, time.Time{}, ve
	}
	if s.Account == "" {
		return fail(refuse("account", pdu.ESME_RINVSYSID, "is required"))
	}
	src, dst = defaultAddr(s.Source), defaultAddr(s.Destination)
	if ve := checkDestination(dst); ve != nil {
		return fail(ve)
	}
	if ve := checkSource(src); ve != nil {
		return fail(ve)
	}
	switch {
	case s.Text != "" && s.Binary != nil:
		return fail(refuse("text", pdu.ESME_RINVMSGLEN, "give text or binary, not both"))
	case s.Binary != nil && len(s.Binary) == 0:
		return fail(refuse("binary", pdu.ESME_RINVMSGLEN, "is empty"))
	case s.Text == "" && s.Binary == nil:
		// As checkShortMessage: an empty message is refused.
		return fail(refuse("text", pdu.ESME_RINVMSGLEN, "is empty: text or binary is required"))
	}
	if ve := checkRegisteredDelivery(s.RegisteredDelivery); ve != nil {
		return fail(ve)
	}
	if ve := checkPriority("priority", s.Priority); ve != nil {
		return fail(ve)
	}
	schedule, ve := checkTimes(s.Schedule, s.Validity, now)
	if ve != nil {
		return fail(ve)
	}
	return src, dst, schedule, nil
}

// fillSubmitSMTimes sets every field of the upstream submit_sm of t, its times included.
func fillSubmitSMTimes(sm *pdu.SubmitSM, t *store.PartTask) {
	fillSubmitSM(sm, t)
	// Absolute times in UTC ("...00+"): unambiguous whatever zone the store decoded them in.
	if !t.Validity.IsZero() {
		sm.ValidityPeriod = string(pdu.AppendAbsoluteTime(nil, t.Validity.UTC()))
	}
	if !t.Schedule.IsZero() {
		sm.ScheduleDeliveryTime = string(pdu.AppendAbsoluteTime(nil, t.Schedule.UTC()))
	}
}

// fillSubmitSM sets the fields of the upstream submit_sm of t but its times; checkUpstream checks
// what it builds at accept time.
func fillSubmitSM(sm *pdu.SubmitSM, t *store.PartTask) {
	*sm = pdu.SubmitSM{
		ServiceType:   t.ServiceType,
		SourceAddrTON: t.Source.TON, SourceAddrNPI: t.Source.NPI, SourceAddr: t.Source.Addr,
		DestAddrTON: t.Destination.TON, DestAddrNPI: t.Destination.NPI, DestinationAddr: t.Destination.Addr,
		EsmClass: t.ESMClass, ProtocolID: t.ProtocolID, PriorityFlag: t.PriorityFlag,
		RegisteredDelivery: t.RegisteredDelivery, DataCoding: t.DataCoding,
		ShortMessage: t.ShortMessage, Options: pdu.Options(t.TLVs),
	}
}

// asyncOf returns st's asynchronous writes when the store behind st's decorators (those with an
// Unwrap method, as the metrics wrapper) has them, else nil: the message path then waits for each
// write on a worker of its pool, as it does with the memory store.
func asyncOf(st store.Store) store.AsyncWrites {
	a, ok := st.(store.AsyncWrites)
	if !ok {
		return nil
	}
	for s := st; ; {
		u, ok := s.(interface{ Unwrap() store.Store })
		if !ok {
			return a
		}
		if s = u.Unwrap(); s == nil {
			return nil
		}
		if _, ok := s.(store.AsyncWrites); !ok {
			return nil
		}
	}
}
