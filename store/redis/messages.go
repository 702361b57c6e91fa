package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/store"
)

// AcceptMessage writes m and queues its parts with a script (acceptAll) in the slot of the
// message's shard: its value, index entries and the entries of its shard's stream of the
// upstream's queue all live there, so the accept is atomic on a single node and on Cluster
// alike. The accepts of a group commit's round share one script (on Cluster one per shard),
// each with its own outcome.
func (s *Store) AcceptMessage(ctx context.Context, m *store.Message) error {
	o, err := s.newAccept(ctx, m)
	if err != nil {
		return err
	}
	return o.outcome(s.doOp(ctx, &o.op))
}

// newAccept validates m and builds its accept, ready for the group commit.
func (s *Store) newAccept(ctx context.Context, m *store.Message) (*acceptOp, error) {
	if err := store.ValidateMessage(m); err != nil {
		return nil, err
	}
	store.PrepareAccept(m, nowUTC())
	sh := s.shardOf(m.ID)
	q := store.Queue{Kind: store.SubmitQueue, Name: m.Upstream}
	o := &acceptOp{s: s, ctx: ctx, id: m.ID, shard: sh}
	var expireAt int64
	if s.opts.MessageTTL > 0 {
		expireAt = m.CreatedAt.Add(s.opts.MessageTTL).UnixMilli()
	}
	// The value, the index member and the parts' payloads share one buffer: each is
	// appended after the previous one, in its spare capacity when it has room.
	val := appendValue(nil, m)
	member := append(binary.BigEndian.AppendUint64(val[len(val):], uint64(m.CreatedAt.UnixNano())), m.ID...)
	// The script's keys and arguments in the op's own arrays.
	b := bucketOf(member)
	sk := &s.shardKeys[sh]
	ba := s.bucketArgsOf(sh, b)
	ak := s.accountKeysOf(m.Account, sh)
	o.keys = [acceptKeys]any{s.kMsg(m.ID), s.streamKeys(q)[sh], ba.key, ak.idx, sk.accountsArg, sk.dirArg}
	args := append(o.argBuf[:0], val, len(m.Parts), expireAt, member)
	last := member
	for i := range m.Parts {
		last = store.AppendPartTask(last[len(last):], store.NewPartTask(m, i))
		args = append(args, last)
	}
	now := time.Now()
	var account any = ""
	if !s.accountSeen(ak, now) {
		o.newAccount, o.seenAt, account = ak, now.UnixNano(), m.Account
	}
	o.args = append(args, account, ba.bArg, ba.expiry)
	o.op.st = o
	return o, nil
}

// outcome is the accept's result, given err, what the group commit answered (doOp's error):
// a context that ended first makes it in doubt only when its script may have gone out.
func (o *acceptOp) outcome(err error) error {
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		if o.sent.CompareAndSwap(notSent, abandoned) {
			return fmt.Errorf("accept %s: not sent: %w", o.id, err)
		}
		return fmt.Errorf("%w: accept %s: sent, no reply before the caller gave up: %w", store.ErrInDoubt, o.id, err)
	}
	if err == nil {
		err = o.result
	}
	if err == nil && o.newAccount != nil {
		o.newAccount.seen.Store(o.seenAt)
	}
	return err
}

// acceptOp is one accept through the group commit, in one allocation with room for the
// arguments of a message of up to two parts.
type acceptOp struct {
	op     op // its place in the group commit, stepping it
	s      *Store
	ctx    context.Context
	id     string
	shard  int
	keys   [acceptKeys]any
	args   []any
	argBuf [10]any
	cmd    *goredis.Cmd // the script it went with
	idx    int          // its place in the script's reply
	result error
	// newAccount: the message's account had no index entry this instance knows of in its
	// shard; it is marked seen at seenAt (Unix ns) once the accept is written.
	newAccount *accountKeys
	seenAt     int64
	done       store.AcceptCompletion // AcceptMessageAsync's
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
		if fp, ok := p.(*flushPipe); ok {
			fp.accepts = append(fp.accepts, o) // see flushPipe.queueAccepts
			return true
		}
		o.cmd = goredis.NewCmd(o.ctx, acceptCommand([]*acceptOp{o})...)
		_ = p.Process(o.ctx, o.cmd)
		return true
	}
	o.result = acceptResult(o.id, o.cmd, o.idx)
	return false
}

// acceptKeys is how many keys acceptAll takes of each message.
const acceptKeys = 6

// acceptCommand is the EVALSHA of acceptAll for ops, whose places in its reply follow their
// order.
func acceptCommand(ops []*acceptOp) []any {
	n := 3
	for _, o := range ops {
		n += acceptKeys + len(o.args)
	}
	args := make([]any, 3, n)
	args[0], args[1], args[2] = "evalsha", acceptSHA, acceptKeys*len(ops)
	for _, o := range ops {
		args = append(args, o.keys[:]...)
	}
	for i, o := range ops {
		args = append(args, o.args...)
		o.idx = i
	}
	return args
}

// acceptSHA is acceptAll's hash, boxed once for the accepts' EVALSHA.
var acceptSHA any = acceptAll.Hash()

// States of an accept's script (AcceptMessage).
const (
	notSent int32 = iota
	wasSent
	abandoned
)

// acceptResult is the outcome of the accept at place idx of an acceptAll's reply.
func acceptResult(id string, cmd *goredis.Cmd, idx int) error {
	v, err := cmd.Slice()
	switch {
	case err != nil && !provesNotRun(err):
		// The script went out and no reply came back: it ran whole or not at all.
		return fmt.Errorf("%w: accept %s: %w", store.ErrInDoubt, id, err)
	case err != nil:
		return fmt.Errorf("accept %s: %w", id, mapErr(err))
	case idx >= len(v):
		return fmt.Errorf("%w: accept %s: reply of %d for %d", store.ErrCorrupt, id, len(v), idx+1)
	}
	switch r := v[idx].(type) {
	case int64:
		if r == 0 {
			return fmt.Errorf("%w: message %s", store.ErrExists, id)
		}
		return nil
	case string:
		// A command of this message failed in the script: an error reply, as a
		// script's own would have been.
		return fmt.Errorf("accept %s: %w", id, mapErr(scriptError(r)))
	}
	return fmt.Errorf("%w: accept %s: unexpected reply %T", store.ErrCorrupt, id, v[idx])
}

// scriptError is the error a command inside a script answered, which the script returns as
// text: a Redis error reply like any other.
type scriptError string

func (e scriptError) Error() string { return string(e) }
func (scriptError) RedisError()     {}

// GetMessage reads one message value.
func (s *Store) GetMessage(ctx context.Context, id string) (*store.Message, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	v, err := s.c.Get(ctx, s.kMsg(id)).Result()
	if err == goredis.Nil {
		return nil, fmt.Errorf("%w: message %s", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, mapErr(err)
	}
	return decodeValue(id, v)
}

// UpdatePart writes the id map and appends the update to the message (see value.go) with plain
// commands, no script, and no read of the message first. One round trip writes the id map (SET
// ... GET, in its own slot), appends the update (APPEND) and reads the message back (GET); when
// the old id map value says receipts were parked under the upstream id (parkMark), they are
// read, applied to the message and dropped from the park list in more round trips, taken by
// that rare case alone. Parked receipts are removed only after they were applied, so a failure
// in between keeps them (at worst applied twice on a retry), never loses them. An update of a
// message that does not exist created a key holding no message: it is deleted again a round
// trip later. One of a part the message does not have stays in the message, which readers
// skip.
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
	o, err := s.newSettle(ctx, l, u)
	if err != nil {
		return nil, nil, err
	}
	return o.outcome(s.doOp(ctx, &o.op))
}

// newSettle is Settle's update, ready for the group commit.
func (s *Store) newSettle(ctx context.Context, l store.Lease, u store.PartUpdate) (*updateOp, error) {
	sh, id, _, err := s.parseLease(l)
	if err != nil {
		return nil, err
	}
	msg, parts, ok := leaseMessage(l)
	early := ok && msg == u.MessageID && u.Part >= 0 && u.Part < parts
	return s.newUpdate(ctx, u, &ackOf{l.Queue, sh, id, early, parts})
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

// update is UpdatePart, and with an entry to acknowledge Settle.
func (s *Store) update(ctx context.Context, u store.PartUpdate, ack *ackOf) (*store.Message, []store.Receipt, error) {
	o, err := s.newUpdate(ctx, u, ack)
	if err != nil {
		return nil, nil, err
	}
	return o.outcome(s.doOp(ctx, &o.op))
}

// outcome is the update's result, given err, what the group commit answered (doOp's error).
func (o *updateOp) outcome(err error) (*store.Message, []store.Receipt, error) {
	if err != nil {
		return nil, nil, err
	}
	if o.result != nil {
		return nil, nil, o.result
	}
	return o.m, o.attached, nil
}

// newUpdate validates u and builds its update, ready for the group commit.
func (s *Store) newUpdate(ctx context.Context, u store.PartUpdate, ack *ackOf) (*updateOp, error) {
	if u.UpstreamID != "" {
		if err := store.ValidateUpstreamID(u.Upstream, u.UpstreamID); err != nil {
			return nil, err
		}
	}
	if u.Part < 0 || u.Part >= store.MaxParts {
		return nil, fmt.Errorf("%w: message %s has no part %d", store.ErrInvalid, u.MessageID, u.Part)
	}
	if u.At.IsZero() {
		u.At = nowUTC()
	}
	o := &updateOp{s: s, ctx: ctx, u: u, key: s.kMsg(u.MessageID)}
	if ack != nil {
		o.ackOf = *ack // a copy, so that the caller's need not escape
		o.ack = &o.ackOf
	}
	o.keyArg = o.key
	o.mapFirst = s.cluster && u.UpstreamID != ""
	o.op.st = o
	return o, nil
}

// updateOp is one update's state through its round trips (see UpdatePart and Settle), in
// one allocation.
type updateOp struct {
	op       op // its place in the group commit, stepping it
	s        *Store
	ctx      context.Context
	u        store.PartUpdate
	ack      *ackOf // &ackOf while the acknowledgement is still to be queued, else nil
	ackOf    ackOf
	key      string
	keyArg   any  // key, boxed once for the commands' arguments
	mapFirst bool // the id map is written a round trip before the update (Cluster)
	round    int
	mapCmd   *goredis.Cmd
	value    *goredis.StringCmd // the message read back
	parked   *goredis.StringSliceCmd
	applied  []*goredis.Cmd
	acked    *ackGroup // the round's acknowledgements this one's went with
	nParked  int
	attached []store.Receipt
	m        *store.Message
	result   error
	done     store.SettleCompletion // SettleAsync's
	// The arguments of the commands of the update's round trip, kept here rather than in
	// slices of their own.
	mapArgs    [6]any
	appendArgs [3]any
	getArgs    [2]any
	event      [96]byte
}

func (o *updateOp) setMap(p goredis.Pipeliner) {
	u := &o.u
	var buf [80]byte
	val := string(append(append(strconv.AppendInt(buf[:0], int64(u.Part), 10), ':'), u.MessageID...))
	o.mapArgs = [...]any{"set", o.s.kMap(u.Upstream, u.UpstreamID), val, "px", o.s.idMapTTL, "get"}
	o.mapCmd = goredis.NewCmd(o.ctx, o.mapArgs[:]...)
	_ = p.Process(o.ctx, o.mapCmd)
}

// queueAck adds the acknowledgement to the round's (see flushPipe), read back by acks.
func (o *updateOp) queueAck(p goredis.Pipeliner) {
	o.acked = p.(*flushPipe).ack(o.s.streamKeys(o.ack.q)[o.ack.shard].(string), o.ack.id)
	o.ack = nil
}

// acks are the commands of the acknowledgement queued, none when there is none.
func (o *updateOp) acks() []goredis.Cmder {
	if o.acked == nil {
		return nil
	}
	return o.acked.cmds[:]
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
		o.appendArgs = [...]any{"append", o.keyArg, appendUpdate(o.event[:0], u)}
		_ = p.Process(ctx, goredis.NewIntCmd(ctx, o.appendArgs[:]...))
		if o.ack != nil && o.ack.early {
			// After the update on the same connection: should the connection fail
			// between them, the update alone may have been applied, never the ack alone.
			o.queueAck(p)
		}
		o.getArgs = [...]any{"get", o.keyArg}
		o.value = goredis.NewStringCmd(ctx, o.getArgs[:]...)
		_ = p.Process(ctx, o.value)
		return true
	case 2:
		v, err := o.value.Result()
		if err != nil {
			o.result = mapErr(err)
			return false
		}
		if o.m, o.result = decodeValue(u.MessageID, v); errors.Is(o.result, errNoMessage) {
			// The APPEND created the key: take it away again. Nothing is acknowledged,
			// unless the lease vouched for the message and part (ack.early) and the message
			// is gone since (expired): then its entry is gone too.
			o.result = fmt.Errorf("%w: message %s", store.ErrNotFound, u.MessageID)
			dropNonMessage.EvalSha(ctx, p, []string{o.key})
			return true
		} else if o.result == nil && u.Part >= len(o.m.Parts) {
			o.result = fmt.Errorf("%w: message %s has no part %d", store.ErrInvalid, u.MessageID, u.Part)
		}
		if o.result != nil {
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
				u.Part, appendState(nil, u.Part, r.State, r.Error, r.Received), store.AppendReceipt(nil, r)))
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
			c2 = applyReceipt.EvalSha(ctx, p, []string{s.kMsg(r.MessageID), s.kRcpt(r.MessageID)}, r.Part,
				appendState(nil, r.Part, r.State, r.Error, r.Received), store.AppendReceipt(nil, r))
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
		c = s.receipt.EvalSha(ctx, p, keys, parkEntry, s.opts.ParkTTL.Milliseconds(), appendStateTail(nil, r.State, r.Error, r.Received),
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

// messageOf reads a script's reply that is a message value or -1 (no message), -2 (no such
// part), as messageReply does.
func messageOf(id string, part int, v any) (*store.Message, error) {
	switch v := v.(type) {
	case int64:
		if v == -1 {
			return nil, fmt.Errorf("%w: message %s", store.ErrNotFound, id)
		}
		return nil, fmt.Errorf("%w: message %s has no part %d", store.ErrInvalid, id, part)
	case string:
		return decodeValue(id, v)
	}
	return nil, fmt.Errorf("%w: message %s: unexpected reply %T", store.ErrCorrupt, id, v)
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
