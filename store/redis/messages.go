package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// AcceptMessage writes m and queues its parts with one script in the slot of the message's
// shard: its record, index entries and the entries of its shard's stream of the upstream's
// queue all live there, so the accept is atomic on a single node and on Cluster alike.
func (s *Store) AcceptMessage(ctx context.Context, m *store.Message) error {
	if err := store.ValidateMessage(m); err != nil {
		return err
	}
	store.PrepareAccept(m, nowUTC())
	sh := s.shardOf(m.ID)
	q := store.Queue{Kind: store.SubmitQueue, Name: m.Upstream}
	o := &acceptOp{ctx: ctx, id: m.ID}
	var expireAt int64
	if s.opts.MessageTTL > 0 {
		expireAt = m.CreatedAt.Add(s.opts.MessageTTL).UnixMilli()
	}
	// The record, the index member and the parts' payloads share one buffer: each is
	// appended after the previous one, in its spare capacity when it has room.
	rec := store.AppendMessage(nil, m)
	member := append(binary.BigEndian.AppendUint64(rec[len(rec):], uint64(m.CreatedAt.UnixNano())), m.ID...)
	args := o.argBuf[:0]
	args = append(args, rec, len(m.Parts), int(m.Status), nil, member, expireAt)
	last := member
	partStates := m.Status != pdu.ACCEPTED
	for i := range m.Parts {
		last = store.AppendPartTask(last[len(last):], store.NewPartTask(m, i))
		args = append(args, last)
		partStates = partStates || m.Parts[i].Status != pdu.ACCEPTED
	}
	hist := strconv.AppendInt(last[len(last):], int64(m.Status), 10)
	hist = append(strconv.AppendInt(append(hist, ':'), m.CreatedAt.UnixNano(), 10), ';')
	args[3] = hist
	now := time.Now()
	seenKey := accountShard{m.Account, sh}
	addAccount := !s.accountSeen(seenKey, now)
	account := ""
	if addAccount {
		account = m.Account
	}
	b := bucketOf(member)
	var bucketExpiry int64
	if s.opts.MessageTTL > 0 {
		bucketExpiry = bucketEnd(b).Add(s.opts.MessageTTL).UnixMilli()
	}
	o.args = append(args, account, b, bucketExpiry, partStates)
	o.keys = [...]string{s.kMsg(m.ID), s.kStream(q, sh), s.kIdxBucket(sh, b), s.kIdxAcc(sh, m.Account), s.kAccounts(sh), s.kIdxDir(sh)}
	err := s.do(ctx, o.step)
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		if o.sent.CompareAndSwap(notSent, abandoned) {
			return fmt.Errorf("accept %s: not sent: %w", m.ID, err)
		}
		return fmt.Errorf("%w: accept %s: sent, no reply before the caller gave up: %w", store.ErrInDoubt, m.ID, err)
	}
	if err == nil {
		err = o.result
	}
	if err == nil && addAccount {
		s.sawAccount(seenKey, now)
	}
	return err
}

// acceptOp is one accept's script through the group commit, in one allocation with room for
// the arguments of a message of up to two parts.
type acceptOp struct {
	ctx    context.Context
	id     string
	keys   [6]string
	args   []any
	argBuf [12]any
	cmd    *goredis.Cmd
	result error
	// sent is notSent until the flusher queues the script, abandoned when the caller gave up
	// first (the flusher then skips it): an accept whose context ended is in doubt only when
	// its script may have gone out.
	sent atomic.Int32
}

func (o *acceptOp) step(p goredis.Pipeliner) bool {
	if o.cmd == nil {
		if !o.sent.CompareAndSwap(notSent, wasSent) {
			o.result = fmt.Errorf("accept %s: abandoned before it was sent: %w", o.id, context.Canceled)
			return false
		}
		o.cmd = acceptAll.EvalSha(o.ctx, p, o.keys[:], o.args...)
		return true
	}
	o.result = acceptResult(o.id, o.cmd)
	return false
}

// accountSeen reports whether this instance added account to a shard's set of accounts (which
// the index sweep walks; key is account and shard) within the last SweepInterval: then an accept need not add it again. The
// set is written again once per interval, so one that went missing (a flushed database, a
// failover to a replica that had not got the write) is whole again after an interval.
func (s *Store) accountSeen(account accountShard, now time.Time) bool {
	s.accMu.RLock()
	at, ok := s.accounts[account]
	s.accMu.RUnlock()
	return ok && now.Sub(at) < s.opts.SweepInterval
}

// sawAccount notes that account is in its shard's set of accounts, as of now.
func (s *Store) sawAccount(account accountShard, now time.Time) {
	s.accMu.Lock()
	s.accounts[account] = now
	s.accMu.Unlock()
}

// States of an accept's script (AcceptMessage).
const (
	notSent int32 = iota
	wasSent
	abandoned
)

func acceptResult(id string, cmd *goredis.Cmd) error {
	v, err := cmd.Int()
	switch {
	case err != nil && !provesNotRun(err):
		// The script went out and no reply came back: it ran whole or not at all.
		return fmt.Errorf("%w: accept %s: %w", store.ErrInDoubt, id, err)
	case err != nil:
		return fmt.Errorf("accept %s: %w", id, mapErr(err))
	case v == 0:
		return fmt.Errorf("%w: message %s", store.ErrExists, id)
	}
	return nil
}

// GetMessage reads one message hash.
func (s *Store) GetMessage(ctx context.Context, id string) (*store.Message, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	h, err := s.c.HGetAll(ctx, s.kMsg(id)).Result()
	if err != nil {
		return nil, mapErr(err)
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("%w: message %s", store.ErrNotFound, id)
	}
	return decodeHash(id, h)
}

// hashReply turns a script's HGETALL reply into a map.
func hashReply(id string, v any) (map[string]string, error) {
	a, ok := v.([]any)
	if !ok || len(a)%2 != 0 {
		return nil, fmt.Errorf("%w: message %s: unexpected reply %T", store.ErrCorrupt, id, v)
	}
	h := make(map[string]string, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		k, ok1 := a[i].(string)
		val, ok2 := a[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: message %s: unexpected reply field", store.ErrCorrupt, id)
		}
		h[k] = val
	}
	return h, nil
}

// decodeHash rebuilds a message from its hash (an HGETALL reply): the accepted record,
// overlaid with the fields later writes changed.
func decodeHash(id string, h map[string]string) (*store.Message, error) {
	return decodeView(id, hashView{m: h})
}

// hashView is a message hash as read back: an HGETALL reply (m), or an HMGET reply (v) of
// hashFields' first fieldsOf(parts) fields, which spares a map and the field names. In v an
// empty string is a missing field: no field decodeView reads is ever written empty.
type hashView struct {
	m map[string]string
	v []string
}

// get is the field called name, at index i of hashFields.
func (h hashView) get(name string, i int) (string, bool) {
	if h.m != nil {
		v, ok := h.m[name]
		return v, ok
	}
	if i < len(h.v) && h.v[i] != "" {
		return h.v[i], true
	}
	return "", false
}

// The message hash's fields in HMGET order (hashFields): the message's, then partFieldCount
// per part.
const (
	fieldRecord = iota
	fieldStatus
	fieldUpdated
	fieldHistory
	messageFieldCount
)

// Part fields, in the order of partFields' struct and of hashFields.
const (
	pfStatus = iota
	pfErr
	pfUpstream
	pfUpstreamID
	pfUpdated
	pfSubmitted
	pfOutcome
	pfFinalOutcome
	partFieldCount
)

// partField is the index in hashFields of part i's field k.
func partField(i, k int) int { return messageFieldCount + partFieldCount*i + k }

// fieldsOf is how many of hashFields a message of parts parts has.
func fieldsOf(parts int) int { return messageFieldCount + partFieldCount*parts }

// hashFields are the names of every field decodeView reads, as HMGET arguments, built once.
var hashFields = func() []any {
	f := make([]any, 0, fieldsOf(store.MaxParts))
	f = append(f, "b", "s", "u", "hist")
	for i := range store.MaxParts {
		p := &partFields[i]
		f = append(f, p.status, p.err, p.upstream, p.upstreamID, p.updated, p.submitted, p.outcome, p.finalOutcome)
	}
	return f
}()

// readHash queues an HMGET of the fields of key's message as one of parts parts has, for
// decodeView, with its arguments appended to args.
func readHash(ctx context.Context, p goredis.Pipeliner, args []any, key any, parts int) *goredis.StringSliceCmd {
	args = append(args, "hmget", key)
	args = append(args, hashFields[:fieldsOf(parts)]...)
	cmd := goredis.NewStringSliceCmd(ctx, args...)
	_ = p.Process(ctx, cmd)
	return cmd
}

// decodeView is decodeHash of either kind of reply. From an HMGET the message's part count
// must be the one read for (else errPartsRead): the fields of other parts were not read.
func decodeView(id string, h hashView) (*store.Message, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: message %s: %s", store.ErrCorrupt, id, what)
	}
	b, ok := h.get("b", fieldRecord)
	if !ok {
		return nil, bad("no record")
	}
	m, err := store.DecodeMessage([]byte(b))
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	if h.m == nil && fieldsOf(len(m.Parts)) != len(h.v) {
		return nil, errPartsRead
	}
	state := func(f string, i int, into *pdu.MessageState) error {
		if v, ok := h.get(f, i); ok {
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil {
				return bad(f)
			}
			*into = pdu.MessageState(n)
		}
		return nil
	}
	stamp := func(f string, i int, into *time.Time) error {
		if v, ok := h.get(f, i); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad(f)
			}
			*into = time.Unix(0, n).UTC()
		}
		return nil
	}
	if err := state("s", fieldStatus, &m.Status); err != nil {
		return nil, err
	}
	if err := stamp("u", fieldUpdated, &m.UpdatedAt); err != nil {
		return nil, err
	}
	if hist, ok := h.get("hist", fieldHistory); ok {
		m.History = m.History[:0]
		for hist != "" {
			var e string
			e, hist, _ = strings.Cut(hist, ";")
			if e == "" {
				continue
			}
			st, at, ok := strings.Cut(e, ":")
			sn, err1 := strconv.ParseUint(st, 10, 8)
			an, err2 := strconv.ParseInt(at, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, bad("history")
			}
			m.History = append(m.History, store.StatusChange{State: pdu.MessageState(sn), At: time.Unix(0, an).UTC()})
		}
	}
	for i := range m.Parts {
		p := &m.Parts[i]
		f := &partFields[i]
		if err := state(f.status, partField(i, pfStatus), &p.Status); err != nil {
			return nil, err
		}
		if v, ok := h.get(f.err, partField(i, pfErr)); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, bad(f.err)
			}
			p.Error = uint32(n)
		}
		if v, ok := h.get(f.upstream, partField(i, pfUpstream)); ok {
			p.Upstream = v
		}
		if v, ok := h.get(f.upstreamID, partField(i, pfUpstreamID)); ok {
			p.UpstreamID = v
		}
		if err := stamp(f.updated, partField(i, pfUpdated), &p.UpdatedAt); err != nil {
			return nil, err
		}
		if err := stamp(f.submitted, partField(i, pfSubmitted), &p.SubmittedAt); err != nil {
			return nil, err
		}
	}
	if err := foldOutcomes(m, h); err != nil {
		return nil, err
	}
	return m, nil
}

// errPartsRead: an HMGET read the fields of another number of parts than the message has.
var errPartsRead = errors.New("store: redis: message read for another number of parts")

// outcome is a settle's outcome read from the message hash (so<i>, sf<i>).
type outcome struct {
	part  int
	state pdu.MessageState
	code  uint32
	at    time.Time
}

// foldOutcomes applies the settle outcomes the hash holds to m, oldest first, with the store's
// status rules (store.ApplyPartUpdate), as the scripts' foldOutcomes does in Redis.
func foldOutcomes(m *store.Message, h hashView) error {
	var buf [2]outcome // a one-part message's outcomes need no allocation
	ev := buf[:0]
	for i := range m.Parts {
		for k, name := range [2]string{partFields[i].outcome, partFields[i].finalOutcome} {
			v, ok := h.get(name, partField(i, pfOutcome+k))
			if !ok {
				continue
			}
			st, rest, ok1 := strings.Cut(v, ":")
			code, at, ok2 := strings.Cut(rest, ":")
			sn, err1 := strconv.ParseUint(st, 10, 8)
			cn, err2 := strconv.ParseUint(code, 10, 32)
			an, err3 := strconv.ParseInt(at, 10, 64)
			if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil {
				return fmt.Errorf("%w: message %s: %s", store.ErrCorrupt, m.ID, name)
			}
			ev = append(ev, outcome{i, pdu.MessageState(sn), uint32(cn), time.Unix(0, an).UTC()})
		}
	}
	if len(ev) == 0 {
		return nil
	}
	slices.SortStableFunc(ev, func(a, b outcome) int { return a.at.Compare(b.at) })
	for _, e := range ev {
		store.ApplyPartUpdate(m, &store.PartUpdate{Part: e.part, Status: e.state, Error: e.code, At: e.at})
	}
	return nil
}

// partFields are the message hash's field names of each part (see scripts.go), built once
// rather than for every message read.
var partFields = func() (f [store.MaxParts]struct{ status, err, upstream, upstreamID, updated, submitted, outcome, finalOutcome string }) {
	for i := range f {
		is := strconv.Itoa(i)
		f[i].status, f[i].err, f[i].upstream = "ps"+is, "pe"+is, "pu"+is
		f[i].upstreamID, f[i].updated, f[i].submitted = "pi"+is, "pt"+is, "pq"+is
		f[i].outcome, f[i].finalOutcome = "so"+is, "sf"+is
	}
	return f
}()

// UpdatePart writes the id map and the part's outcome with plain commands, no script: the
// outcome goes into fields of its own (so<i>, sf<i>, see scripts.go) that readers apply, so the
// write needs no read of the message first. One round trip writes the id map (SET ... GET, in
// its own slot) and the outcome and reads the message back (HGETALL); when the old id map value
// says receipts were parked under the upstream id (parkMark), they are read, applied to the
// message and dropped from the park list in more round trips, taken by that rare case alone.
// Parked receipts are removed only after they were applied, so a failure in between keeps
// them (at worst applied twice on a retry), never loses them.
func (s *Store) UpdatePart(ctx context.Context, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	return s.update(ctx, u, nil)
}

// Settle is UpdatePart and Ack. The acknowledgement (XACK and XDEL of the entry, in the
// message's slot) goes in the same round trip as the update, after it on the same connection,
// when the lease (partLease) says the update is for its entry's message and a part that
// message has: then a settle costs one round trip, which with appendfsync always is one fsync
// wait. Otherwise (a lease without them, or naming another message or part) it goes one round
// trip later, once the message read back shows that the outcome was written to a message that
// has that part; when it has not, nothing is acknowledged. Should the acknowledgement fail, the
// entry comes back and is sent again, the duplicate any failed Settle costs. On one node the
// id map's SET goes first on the same connection, in the update's round trip. On Cluster it may
// live on another node, so it is written one round trip before: should it fail, nothing was
// settled, rather than a part updated and acknowledged with no id map, whose receipts would be
// parked and never correlated. A map written and an update failed leaves a map to a part not
// yet updated: a receipt for it is applied to the part all the same.
func (s *Store) Settle(ctx context.Context, l store.Lease, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	sh, id, _, err := s.parseLease(l)
	if err != nil {
		return nil, nil, err
	}
	msg, parts, ok := leaseMessage(l)
	early := ok && msg == u.MessageID && u.Part >= 0 && u.Part < parts
	return s.update(ctx, u, &ackOf{l.Queue, sh, id, early, parts})
}

// ackOf names the entry a Settle acknowledges.
type ackOf struct {
	q     store.Queue
	shard int
	id    string
	// early: the lease says the update is for its entry's message and a part it has, so the
	// acknowledgement goes with the update, in the same round trip.
	early bool
	parts int // the message's part count, as the lease says
}

// outcomeValue is a settle's outcome as a message hash field holds it, "state:error:ns".
func outcomeValue(st pdu.MessageState, code uint32, at string) string {
	var buf [48]byte
	b := strconv.AppendUint(buf[:0], uint64(st), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(code), 10)
	b = append(b, ':')
	return string(append(b, at...))
}

// update is UpdatePart, and with an entry to acknowledge Settle.
func (s *Store) update(ctx context.Context, u store.PartUpdate, ack *ackOf) (*store.Message, []store.Receipt, error) {
	if u.UpstreamID != "" {
		if err := store.ValidateUpstreamID(u.Upstream, u.UpstreamID); err != nil {
			return nil, nil, err
		}
	}
	if u.Part < 0 || u.Part >= store.MaxParts {
		return nil, nil, fmt.Errorf("%w: message %s has no part %d", store.ErrInvalid, u.MessageID, u.Part)
	}
	if u.At.IsZero() {
		u.At = nowUTC()
	}
	o := &updateOp{s: s, ctx: ctx, u: u, key: s.kMsg(u.MessageID), f: &partFields[u.Part]}
	if ack != nil {
		o.ackOf = *ack // a copy, so that the caller's need not escape
		o.ack = &o.ackOf
	}
	o.keyArg = o.key
	o.mapFirst = s.cluster && u.UpstreamID != ""
	if ack != nil && ack.early {
		o.parts = ack.parts
	}
	if err := s.do(ctx, o.step); err != nil {
		return nil, nil, err
	}
	if o.result != nil {
		return nil, nil, o.result
	}
	return o.m, o.attached, nil
}

// updateOp is one update's state through its round trips (see UpdatePart and Settle), in
// one allocation.
type updateOp struct {
	s        *Store
	ctx      context.Context
	u        store.PartUpdate
	ack      *ackOf // &ackOf while the acknowledgement is still to be queued, else nil
	ackOf    ackOf
	key      string
	keyArg   any // key, boxed once for the commands' arguments
	f        *struct{ status, err, upstream, upstreamID, updated, submitted, outcome, finalOutcome string }
	mapFirst bool // the id map is written a round trip before the update (Cluster)
	parts    int  // the message's part count as the lease tells it (its fields are read with HMGET), 0 unknown
	round    int
	mapCmd   *goredis.Cmd
	fields   *goredis.StringSliceCmd     // the message read back by HMGET, when parts is known
	all      *goredis.MapStringStringCmd // or by HGETALL
	written  [4]string                   // the fields the update wrote, removed again when it went nowhere
	nWritten int
	parked   *goredis.StringSliceCmd
	applied  []*goredis.Cmd
	acked    *ackGroup // the round's acknowledgements this one's went with
	nParked  int
	attached []store.Receipt
	m        *store.Message
	result   error
	// The arguments of the commands of the update's round trip, kept here rather than in
	// slices of their own.
	mapArgs  [6]any
	setArgs  [10]any
	nxArgs   [4]any
	readArgs [2 + messageFieldCount + partFieldCount]any
}

func (o *updateOp) setMap(p goredis.Pipeliner) {
	u := &o.u
	val := strconv.Itoa(u.Part) + ":" + u.MessageID
	o.mapArgs = [...]any{"set", o.s.kMap(u.Upstream, u.UpstreamID), val, "px", o.s.opts.IDMapTTL.Milliseconds(), "get"}
	o.mapCmd = goredis.NewCmd(o.ctx, o.mapArgs[:]...)
	_ = p.Process(o.ctx, o.mapCmd)
}

// queueAck adds the acknowledgement to the round's (see flushPipe), read back by acks.
func (o *updateOp) queueAck(p goredis.Pipeliner) {
	o.acked = p.(*flushPipe).ack(o.s.kStream(o.ack.q, o.ack.shard), o.ack.id)
	o.ack = nil
}

// acks are the commands of the acknowledgement queued, none when there is none.
func (o *updateOp) acks() []goredis.Cmder {
	if o.acked == nil {
		return nil
	}
	return o.acked.cmds[:]
}

// readBack queues the read of the message: HMGET of the fields a message of o.parts parts
// has when the lease told the count, else HGETALL.
func (o *updateOp) readBack(p goredis.Pipeliner) {
	if o.parts > 0 {
		o.fields = readHash(o.ctx, p, o.readArgs[:0], o.keyArg, o.parts)
		return
	}
	o.all = p.HGetAll(o.ctx, o.key)
}

// readReply is the message readBack read, as decodeView sees it.
func (o *updateOp) readReply() (hashView, error) {
	if o.fields != nil {
		v, err := o.fields.Result()
		return hashView{v: v}, err
	}
	h, err := o.all.Result()
	return hashView{m: h}, err
}

func (o *updateOp) step(p goredis.Pipeliner) bool {
	ctx, u, s := o.ctx, &o.u, o.s
	o.round++
	step := o.round
	if o.mapFirst {
		switch o.round {
		case 1:
			o.setMap(p)
			return true
		case 2:
			if err := o.mapCmd.Err(); err != nil && err != goredis.Nil {
				o.result = fmt.Errorf("message %s part %d not updated: id map not written: %w", u.MessageID, u.Part, mapErr(err))
				return false
			}
		}
		step = o.round - 1 // the update's round is the first of the rest
	}
	switch step {
	case 1:
		if u.UpstreamID != "" && !o.mapFirst {
			o.setMap(p)
		}
		at := ns(u.At)
		// The upstream fields and an outcome that is not final go in one HSET (the last such
		// outcome wins); a final one with HSETNX (the first wins: a final state is never left).
		args := append(o.setArgs[:0], "hset", o.keyArg)
		if u.Upstream != "" {
			args = append(args, hashFields[partField(u.Part, pfUpstream)], u.Upstream)
			o.written[o.nWritten] = o.f.upstream
			o.nWritten++
		}
		if u.UpstreamID != "" {
			args = append(args, hashFields[partField(u.Part, pfUpstreamID)], u.UpstreamID, hashFields[partField(u.Part, pfSubmitted)], at)
			o.written[o.nWritten], o.written[o.nWritten+1] = o.f.upstreamID, o.f.submitted
			o.nWritten += 2
		}
		if u.Status != 0 && !u.Status.Final() {
			args = append(args, hashFields[partField(u.Part, pfOutcome)], outcomeValue(u.Status, u.Error, at))
			o.written[o.nWritten] = o.f.outcome
			o.nWritten++
		}
		if len(args) > 2 {
			_ = p.Process(ctx, goredis.NewIntCmd(ctx, args...))
		}
		if u.Status.Final() {
			o.nxArgs = [...]any{"hsetnx", o.keyArg, hashFields[partField(u.Part, pfFinalOutcome)], outcomeValue(u.Status, u.Error, at)}
			_ = p.Process(ctx, goredis.NewBoolCmd(ctx, o.nxArgs[:]...))
			o.written[o.nWritten] = o.f.finalOutcome
			o.nWritten++
		}
		if o.ack != nil && o.ack.early {
			// After the update on the same connection: should the connection fail
			// between them, the update alone may have been applied, never the ack alone.
			o.queueAck(p)
		}
		o.readBack(p)
		return true
	case 2:
		h, err := o.readReply()
		if err != nil {
			o.result = mapErr(err)
			return false
		}
		if _, ok := h.get("b", fieldRecord); !ok {
			o.result = fmt.Errorf("%w: message %s", store.ErrNotFound, u.MessageID)
		} else if o.m, o.result = decodeView(u.MessageID, h); o.result == errPartsRead {
			// The lease's part count was not the message's: read it whole, this round
			// again.
			o.result, o.fields, o.parts = nil, nil, 0
			o.readBack(p)
			o.round--
			return true
		} else if o.result == nil && u.Part >= len(o.m.Parts) {
			o.result = fmt.Errorf("%w: message %s has no part %d", store.ErrInvalid, u.MessageID, u.Part)
		}
		if o.result != nil {
			// What was written for a message or part that does not exist is taken away again
			// (the fields only: a message that exists keeps its own). Nothing is acknowledged,
			// unless the lease vouched for the message and part (ack.early) and the message
			// is gone since (expired): then its entry is gone too.
			if o.nWritten > 0 {
				p.HDel(ctx, o.key, o.written[:o.nWritten]...)
				return true
			}
			return false
		}
		if err := ackErr(o.acks()); err != nil {
			o.result = err
			return false
		}
		more := false
		if o.mapCmd != nil {
			old, err := o.mapCmd.Text()
			if err != nil && err != goredis.Nil {
				// Not acknowledged (unless the ack went with the update, on one node, which
				// the failed SET before it on the same connection all but rules out): the
				// part is sent again and gets a map then.
				o.result = fmt.Errorf("message %s part %d updated, id map not written: %w", u.MessageID, u.Part, mapErr(err))
				return false
			}
			if old == parkMark {
				o.parked = p.LRange(ctx, s.kPark(u.Upstream, u.UpstreamID), 0, -1)
				more = true
			}
		}
		if o.ack != nil {
			o.queueAck(p)
			more = true
		}
		return more
	case 3:
		if o.result != nil {
			return false // the clean-up's outcome does not change the answer
		}
		if o.result = ackErr(o.acks()); o.result != nil {
			return false
		}
		if o.parked == nil {
			return false
		}
		entries, err := o.parked.Result()
		if err != nil {
			o.result = mapErr(err)
			return false
		}
		o.nParked = len(entries)
		o.attached = parkedReceipts(entries, u.MessageID, u.Part, u.At)
		if len(o.attached) == 0 {
			if o.nParked > 0 {
				o.round++ // only expired ones: drop them
				p.LTrim(ctx, s.kPark(u.Upstream, u.UpstreamID), int64(o.nParked), -1)
				return true
			}
			return false
		}
		for i := range o.attached {
			r := &o.attached[i]
			o.applied = append(o.applied, applyReceipt.EvalSha(ctx, p, []string{s.kMsg(u.MessageID), s.kRcpt(u.MessageID)},
				u.Part, int(r.State), r.Error, ns(r.Received), store.AppendReceipt(nil, r)))
		}
		return true
	case 4:
		for _, c := range o.applied {
			v, err := c.Result()
			if o.m, o.result = messageReply(u.MessageID, u.Part, v, err); o.result != nil {
				return false
			}
		}
		// Only the entries read in round 2: a receipt parked since then stays.
		p.LTrim(ctx, s.kPark(u.Upstream, u.UpstreamID), int64(o.nParked), -1)
		return true
	}
	// The trim's outcome does not matter to the caller: left-over parked receipts expire
	// after ParkTTL.
	return false
}

// ackErr is the error of an acknowledgement's XACK and XDEL, nil when there are none.
// NOGROUP: the queue was never claimed from, so there is nothing to acknowledge.
func ackErr(cmds []goredis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !goredis.HasErrorPrefix(err, "NOGROUP") {
			return mapErr(err)
		}
	}
	return nil
}

// parkedReceipts decodes park list entries (expiry, then receipt), dropping expired and
// undecodable ones, and correlates them to (id, part).
func parkedReceipts(entries []string, id string, part int, now time.Time) []store.Receipt {
	var out []store.Receipt
	for _, e := range entries {
		if len(e) < 8 || int64(binary.BigEndian.Uint64([]byte(e[:8]))) <= now.UnixNano() {
			continue
		}
		r, err := store.DecodeReceipt([]byte(e[8:]))
		if err != nil {
			continue
		}
		r.MessageID, r.Part = id, part
		out = append(out, *r)
	}
	return out
}

// messageReply reads the reply of settleOne or applyReceipt, as messageOf does, or their error.
func messageReply(id string, part int, v any, err error) (*store.Message, error) {
	if err != nil {
		return nil, mapErr(err)
	}
	return messageOf(id, part, v)
}

// AddReceipt looks the mapping up or parks the receipt, and applies it to the message. Not on
// Cluster this is one script (receiptScript) in one round trip. On Cluster the id map and the
// message live in two slots: the look-up (or park) is one script in the id map's slot, the
// apply a second in the message's, a round trip later.
func (s *Store) AddReceipt(ctx context.Context, r *store.Receipt) (*store.Message, bool, error) {
	if err := store.ValidateUpstreamID(r.Upstream, r.UpstreamID); err != nil {
		return nil, false, err
	}
	if r.Received.IsZero() {
		r.Received = nowUTC()
	}
	exp := r.Received.Add(s.opts.ParkTTL)
	parkEntry := store.AppendReceipt(binary.BigEndian.AppendUint64(nil, uint64(exp.UnixNano())), r)
	keys := []string{s.kMap(r.Upstream, r.UpstreamID), s.kPark(r.Upstream, r.UpstreamID)}
	if s.receipt != nil {
		return s.addReceiptOnce(ctx, r, keys, parkEntry)
	}
	var (
		round  int
		c1, c2 *goredis.Cmd
		m      *store.Message
		parked bool
		result error
	)
	err := s.do(ctx, func(p goredis.Pipeliner) bool {
		round++
		switch round {
		case 1:
			c1 = mapOrPark.EvalSha(ctx, p, keys, parkEntry, s.opts.ParkTTL.Milliseconds())
			return true
		case 2:
			v, err := c1.Text()
			if err == goredis.Nil {
				parked = true
				return false
			}
			if err != nil {
				result = mapErr(err)
				return false
			}
			if result = mappingInto(r, v); result != nil {
				return false
			}
			c2 = applyReceipt.EvalSha(ctx, p, []string{s.kMsg(r.MessageID), s.kRcpt(r.MessageID)}, r.Part, int(r.State), r.Error, ns(r.Received), store.AppendReceipt(nil, r))
			return true
		}
		v, err := c2.Result()
		m, result = messageReply(r.MessageID, r.Part, v, err)
		return false
	})
	if err != nil {
		return nil, false, err
	}
	if result != nil {
		return nil, false, result
	}
	return m, parked, nil
}

// addReceiptOnce is AddReceipt in one script: the receipt's record goes with an empty message
// id and part 0, which the script fills in from the mapping.
func (s *Store) addReceiptOnce(ctx context.Context, r *store.Receipt, keys []string, parkEntry []byte) (*store.Message, bool, error) {
	bare := *r
	bare.MessageID, bare.Part = "", 0
	var c *goredis.Cmd
	err := s.simple(ctx, func(p goredis.Pipeliner) {
		c = s.receipt.EvalSha(ctx, p, keys, parkEntry, s.opts.ParkTTL.Milliseconds(), int(r.State), r.Error, ns(r.Received),
			store.AppendReceipt(nil, &bare), s.prefix)
	}, func() error { return nil })
	if err != nil {
		return nil, false, err
	}
	v, err := c.Result()
	if err == goredis.Nil {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, mapErr(err)
	}
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return nil, false, fmt.Errorf("%w: receipt: unexpected reply %T", store.ErrCorrupt, v)
	}
	mapping, _ := a[0].(string)
	if err := mappingInto(r, mapping); err != nil {
		return nil, false, err
	}
	m, err := messageOf(r.MessageID, r.Part, a[1])
	if err != nil {
		return nil, false, err
	}
	return m, false, nil
}

// mappingInto sets r's message and part from an id map value, "part:id".
func mappingInto(r *store.Receipt, v string) error {
	ps, id, ok := strings.Cut(v, ":")
	part, perr := strconv.Atoi(ps)
	if !ok || perr != nil || part < 0 || part >= store.MaxParts {
		return fmt.Errorf("%w: id map value %q", store.ErrCorrupt, v)
	}
	r.MessageID, r.Part = id, part
	return nil
}

// messageOf reads a script's reply that is a message hash or -1 (no message), -2 (no such
// part), as messageReply does.
func messageOf(id string, part int, v any) (*store.Message, error) {
	if n, ok := v.(int64); ok {
		if n == -1 {
			return nil, fmt.Errorf("%w: message %s", store.ErrNotFound, id)
		}
		return nil, fmt.Errorf("%w: message %s has no part %d", store.ErrInvalid, id, part)
	}
	h, err := hashReply(id, v)
	if err != nil {
		return nil, err
	}
	return decodeHash(id, h)
}

// ListReceipts returns the receipts list of a message.
func (s *Store) ListReceipts(ctx context.Context, id string) ([]store.Receipt, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	p := s.c.Pipeline()
	ex := p.Exists(ctx, s.kMsg(id))
	lr := p.LRange(ctx, s.kRcpt(id), 0, -1)
	if _, err := p.Exec(ctx); err != nil {
		return nil, mapErr(err)
	}
	if ex.Val() == 0 {
		return nil, fmt.Errorf("%w: message %s", store.ErrNotFound, id)
	}
	out := make([]store.Receipt, 0, len(lr.Val()))
	for _, v := range lr.Val() {
		r, err := store.DecodeReceipt([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("receipt of %s: %w", id, err)
		}
		out = append(out, *r)
	}
	return out, nil
}

// provesNotRun reports whether err, the error of a command, shows the command was not run: the
// server answered with an error (a script error aborts before our scripts write), or the
// command never left (no connection could be made or taken from the pool, the client was
// closed). Any other failure (a reset, EOF, read time-out) may have come after the server ran
// it.
func provesNotRun(err error) bool {
	var re goredis.Error
	if errors.As(err, &re) || errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, goredis.ErrClosed) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
