package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/store"
)

// Queues are Redis Streams with one consumer group. A claim is XREADGROUP; XAUTOCLAIM hands
// out again entries idle longer than the visibility time-out; Ack is XACK plus XDEL, so the
// stream holds exactly the unacknowledged entries. Give-backs with a delay wait in a sorted
// set beside the stream (score: when due) and are moved back by the next claim. An entry's
// fields: p (payload), a (give-back count), r ("1" when it was a lost PDU).
//
// A lease is "stream id/delivery count". The count is the pending entry's, raised by every
// claim (XREADGROUP, XAUTOCLAIM), so it tells the current claim from a stale one; the
// scripts that move an entry check it with XPENDING in the same atomic step.

// lostCap bounds the lost PDU log.
const lostCap = 10000

// consumerIdleFactor: consumers without pending entries idle for this many visibility
// time-outs are deleted (see the claim script); the sweep runs at most once per visibility
// time-out per queue.
const consumerIdleFactor = 10

type entry struct {
	shard     int
	id        string
	count     int64 // delivery count: which claim this is
	payload   []byte
	attempts  int
	reclaimed bool
}

func (e entry) lease(q store.Queue) store.Lease {
	var buf [64]byte
	return store.Lease{Queue: q, Entry: string(e.appendLease(buf[:0]))}
}

// appendLease appends the lease's entry, "shard:stream id/delivery count".
func (e entry) appendLease(b []byte) []byte {
	b = strconv.AppendInt(b, int64(e.shard), 10)
	b = append(b, ':')
	b = append(b, e.id...)
	b = append(b, '/')
	return strconv.AppendInt(b, e.count, 10)
}

// partLease is the lease of a part's entry: lease's, followed by "/parts:message id" of the
// part's message, so that a Settle can tell, without reading the message, that the update it
// carries is for the entry's own message and a part the message has (see Store.Settle).
func (e entry) partLease(q store.Queue, t *store.PartTask) store.Lease {
	var buf [128]byte
	b := append(e.appendLease(buf[:0]), '/')
	b = strconv.AppendInt(b, int64(t.Parts), 10)
	b = append(b, ':')
	return store.Lease{Queue: q, Entry: string(append(b, t.MessageID...))}
}

// leaseMessage returns the message id and part count a part's lease carries (partLease), ok
// false when it carries none.
func leaseMessage(l store.Lease) (id string, parts int, ok bool) {
	_, rest, _ := strings.Cut(l.Entry, ":")
	_, rest, _ = strings.Cut(rest, "/")
	_, tail, ok := strings.Cut(rest, "/")
	if !ok {
		return "", 0, false
	}
	n, id, ok := strings.Cut(tail, ":")
	parts, err := strconv.Atoi(n)
	if !ok || err != nil || parts < 1 || parts > store.MaxParts || id == "" {
		return "", 0, false
	}
	return id, parts, true
}

// parseLease splits a lease, "shard:stream id/delivery count" and for a part
// "/parts:message id" (partLease), into its parts.
func (s *Store) parseLease(l store.Lease) (shard int, id string, count int64, err error) {
	if err := store.ValidateQueue(l.Queue); err != nil {
		return 0, "", 0, err
	}
	sh, rest, ok1 := strings.Cut(l.Entry, ":")
	id, c, ok2 := strings.Cut(rest, "/")
	c, _, _ = strings.Cut(c, "/")
	shard, serr := strconv.Atoi(sh)
	count, cerr := strconv.ParseInt(c, 10, 64)
	if !ok1 || !ok2 || serr != nil || shard < 0 || shard >= len(s.tags) || cerr != nil || count < 1 || !validID(id) {
		return 0, "", 0, fmt.Errorf("%w: lease %q", store.ErrInvalid, l.Entry)
	}
	return shard, id, count, nil
}

// validID reports whether id is a complete stream id, "ms-seq".
func validID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}

func parseFields(id string, fields any, reclaimed bool) (entry, bool) {
	e := entry{id: id, reclaimed: reclaimed}
	switch f := fields.(type) {
	case []any:
		for i := 0; i+1 < len(f); i += 2 {
			k, _ := f[i].(string)
			e.setField(k, f[i+1])
		}
	case map[string]any: // XREADGROUP's reply as go-redis parses it
		for k, v := range f {
			e.setField(k, v)
		}
	default:
		return e, false
	}
	return e, e.payload != nil
}

// setField sets the entry field k (see Queues) to v.
func (e *entry) setField(k string, v any) {
	s, _ := v.(string)
	switch k {
	case "p":
		e.payload = []byte(s)
	case "a":
		e.attempts, _ = strconv.Atoi(s)
	case "r":
		e.reclaimed = e.reclaimed || s == "1"
	}
}

// claimState is what this instance knows of one queue's shards for one consumer, so that a
// claim visits few shards: under load the first one it visits has enough.
type claimState struct {
	mu      sync.Mutex
	adopted bool        // the first claim since Open ran adopt on every shard
	parked  []bool      // the shard's parking consumer may hold entries of a previous run
	next    []time.Time // when the work of the shard's first undelivered entry was created; zero: none seen
	last    []string    // the id to wait for new entries after, when next is zero
	unknown []bool      // last is not known: an XREADGROUP found nothing new
	cursor  []string    // where the shard's next XAUTOCLAIM continues
	visited []time.Time // the shard's last claim
	rr      int         // where the rotation over empty shards starts next
	scratch []int       // order's result, reused
}

func (s *Store) claimState(q store.Queue, consumer string) *claimState {
	k := q.String() + "\x00" + consumer
	if v, ok := s.claims.Load(k); ok {
		return v.(*claimState)
	}
	n := len(s.tags)
	st := &claimState{parked: make([]bool, n), next: make([]time.Time, n), last: make([]string, n), unknown: make([]bool, n),
		cursor: make([]string, n), visited: make([]time.Time, n)}
	for i := range st.cursor {
		st.cursor[i], st.last[i] = "0-0", "0-0"
	}
	v, _ := s.claims.LoadOrStore(k, st)
	return v.(*claimState)
}

// order is the sequence a claim visits the shards in: those holding entries parked at a
// restart, then those known to hold undelivered entries, oldest work first, then those not
// visited for stale (their idle and delayed entries may have come due), then the rest in
// rotation. With all false it leaves the rest out: a wait that saw no new entry in them came
// before.
func (st *claimState) order(now time.Time, stale time.Duration, all bool) []int {
	n := len(st.next)
	rank := func(sh int) int {
		switch {
		case st.parked[sh]:
			return 0
		case !st.next[sh].IsZero():
			return 1
		case now.Sub(st.visited[sh]) > stale:
			return 2
		}
		return 3
	}
	out := st.scratch[:0]
	for i := range n {
		if sh := (st.rr + i) % n; all || rank(sh) < 3 {
			out = append(out, sh)
		}
	}
	st.rr = (st.rr + 1) % n
	slices.SortStableFunc(out, func(a, b int) int {
		ra, rb := rank(a), rank(b)
		if ra != rb {
			return ra - rb
		}
		if ra == 1 {
			return st.next[a].Compare(st.next[b])
		}
		return 0
	})
	st.scratch = out
	return out
}

// workTime is when the work of a queue payload was created, for ordering shards: a part's
// message accepted, a delivery's CreatedAt; zero when it does not decode.
func workTime(kind store.QueueKind, payload []byte) time.Time {
	if kind == store.DeliverQueue {
		if d, err := store.DecodeDelivery(payload); err == nil {
			return d.CreatedAt
		}
		return time.Time{}
	}
	if t, err := store.DecodePartTask(payload); err == nil {
		return t.Accepted
	}
	return time.Time{}
}

// noteNext records a shard's first undelivered entry, {id, fields}, or none.
func (st *claimState) noteNext(kind store.QueueKind, sh int, v any) {
	f, _ := v.([]any)
	if len(f) != 2 {
		st.next[sh] = time.Time{}
		return
	}
	id, _ := f[0].(string)
	e, ok := parseFields(id, f[1], false)
	at := time.Time{}
	if ok {
		at = workTime(kind, e.payload)
	}
	if at.IsZero() {
		at = time.Unix(1, 0) // undecodable: claim it (and drop it) soon
	}
	st.next[sh] = at
}

// claimQ claims up to n entries of q, waiting up to wait. It visits q's shards one script
// at a time, in st.order, until it has n entries or has seen them all; a shard that answers
// with fewer than asked has no more ready. When none had any it waits for a new entry.
func (s *Store) claimQ(ctx context.Context, q store.Queue, consumer string, n int, wait time.Duration) ([]entry, error) {
	if err := store.ValidateQueue(q); err != nil {
		return nil, err
	}
	if consumer == "" {
		return nil, fmt.Errorf("%w: empty consumer name", store.ErrInvalid)
	}
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	n = max(n, 1)
	st := s.claimState(q, consumer)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.adopted {
		if err := s.adoptAll(ctx, q, consumer, st); err != nil {
			return nil, err
		}
	}
	vt := s.opts.VisibilityTimeout.Milliseconds()
	until := time.Now().Add(wait)
	var out []entry
	// After a wait on a single node, only the shards it saw new entries in (and stale ones)
	// are visited again; on Cluster the wait watched one shard, so all are.
	all := true
	for {
		if s.closed.Load() {
			return nil, store.ErrClosed
		}
		now := time.Now()
		stale := s.staleAfter()
		for _, sh := range st.order(now, stale, all) {
			// The script (due delayed entries, time-outs, parked entries, the consumer sweep)
			// runs on a shard once per stale; in between a visit is one XREADGROUP.
			var got []entry
			var err error
			if st.parked[sh] || now.Sub(st.visited[sh]) > stale {
				got, err = s.claimShard(ctx, q, consumer, st, sh, n-len(out), vt, now)
			} else {
				got, err = s.readShard(ctx, q, consumer, st, sh, n-len(out), vt, now)
			}
			if err != nil {
				if len(out) > 0 {
					return out, nil // what was claimed is handed out; the error comes back next time
				}
				return nil, err
			}
			out = append(out, got...)
			if len(out) == n {
				break
			}
		}
		if len(out) > 0 {
			return out, nil
		}
		left := time.Until(until)
		if left <= 0 {
			return nil, nil
		}
		if err := s.learnLast(ctx, q, st); err != nil {
			return nil, err
		}
		// Wait for new entries, but not past PollInterval: time-outs and delays run out
		// without any write to wake a blocked reader.
		if err := s.waitNew(ctx, q, st, max(min(left, s.opts.PollInterval), time.Millisecond)); err != nil {
			return nil, err
		}
		all = s.cluster
	}
}

// staleAfter is how long a shard may go without a claim looking at it: its delayed entries come
// due and its claimed ones run out of time without any write that would wake a waiting claim.
// It bounds how late a delayed give-back or a visibility time-out is acted on while a queue is
// otherwise idle.
func (s *Store) staleAfter() time.Duration {
	if s.staleFor > 0 {
		return s.staleFor
	}
	return min(s.opts.VisibilityTimeout/2, max(s.opts.PollInterval, time.Second))
}

// adoptAll runs adopt on every shard of q, in one round trip.
func (s *Store) adoptAll(ctx context.Context, q store.Queue, consumer string, st *claimState) error {
	p := s.c.Pipeline()
	cmds := make([]*goredis.Cmd, len(s.tags))
	for sh := range s.tags {
		cmds[sh] = adopt.EvalSha(ctx, p, []string{s.kStream(q, sh)}, group, consumer)
	}
	s.exec(p)
	for sh, c := range cmds {
		v, err := c.Result()
		if err != nil {
			return mapErr(err)
		}
		r, _ := v.([]any)
		if len(r) != 2 {
			return fmt.Errorf("store: redis: adopt: unexpected reply %v", v)
		}
		left, _ := r[0].(int64)
		st.parked[sh] = left == 1
		st.noteNext(q.Kind, sh, r[1])
	}
	st.adopted = true
	return nil
}

// claimShard runs the claim script on one shard for up to n entries.
func (s *Store) claimShard(ctx context.Context, q store.Queue, consumer string, st *claimState, sh, n int, vt int64, now time.Time) ([]entry, error) {
	stream := s.kStream(q, sh)
	sweep := "0"
	if last, ok := s.sweeps.Load(stream); !ok || now.Sub(last.(time.Time)) > s.opts.VisibilityTimeout {
		sweep = "1"
	}
	parked := "0"
	if st.parked[sh] {
		parked = "1"
	}
	v, err := claim.Run(ctx, s.c, []string{stream, s.kDelayed(q, sh)}, group, consumer, n, vt, now.UnixMilli(),
		consumerIdleFactor*vt, sweep, parked, st.cursor[sh]).Result()
	if err != nil {
		return nil, mapErr(err)
	}
	r, _ := v.([]any)
	if len(r) != 5 {
		return nil, fmt.Errorf("store: redis: claim: unexpected reply %v", v)
	}
	if sweep == "1" {
		s.sweeps.Store(stream, now)
	}
	st.visited[sh] = now
	st.cursor[sh], _ = r[1].(string)
	if st.cursor[sh] == "" {
		st.cursor[sh] = "0-0"
	}
	left, _ := r[2].(int64)
	st.parked[sh] = left == 1
	if r[3] != nil { // false (nil): the count was filled before reading new entries
		st.noteNext(q.Kind, sh, r[3])
		if last, _ := r[4].(string); last != "" && st.next[sh].IsZero() {
			st.last[sh], st.unknown[sh] = last, false
		}
	}
	rows, _ := r[0].([]any)
	out := make([]entry, 0, len(rows))
	for _, row := range rows {
		t, ok := row.([]any)
		if !ok || len(t) != 4 {
			continue
		}
		id, _ := t[0].(string)
		rc, _ := t[2].(int64)
		if e, ok := parseFields(id, t[1], rc == 1); ok {
			e.shard = sh
			e.count, _ = t[3].(int64)
			out = append(out, e)
		}
	}
	return out, nil
}

// readShard claims up to n new entries of one shard with XREADGROUP alone. A shard whose
// group is gone (a server that lost its data) is handed to the script, which creates it.
func (s *Store) readShard(ctx context.Context, q store.Queue, consumer string, st *claimState, sh, n int, vt int64, now time.Time) ([]entry, error) {
	stream := s.kStream(q, sh)
	res, err := s.c.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: int64(n), Block: -1}).Result()
	if err != nil && goredis.HasErrorPrefix(err, "NOGROUP") {
		return s.claimShard(ctx, q, consumer, st, sh, n, vt, now)
	}
	if err != nil && err != goredis.Nil {
		return nil, mapErr(err)
	}
	var out []entry
	for _, r := range res {
		for _, m := range r.Messages {
			if e, ok := parseFields(m.ID, m.Values, false); ok {
				e.shard, e.count = sh, 1 // a first delivery
				out = append(out, e)
			}
		}
	}
	got := 0
	if len(res) > 0 {
		got = len(res[0].Messages)
	}
	switch {
	case got == n:
		// Probably more: keep the shard in line, at the time of the last entry read (the
		// next one's is not earlier).
		st.next[sh] = idTime(res[0].Messages[got-1].ID)
	case got > 0:
		st.next[sh], st.last[sh], st.unknown[sh] = time.Time{}, res[0].Messages[got-1].ID, false
	default:
		st.next[sh], st.unknown[sh] = time.Time{}, true
	}
	return out, nil
}

// idTime is the time in a stream id ("ms-seq").
func idTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(max(n, 1))
}

// learnLast reads the last id of each shard whose XREADGROUP found nothing, so that a wait
// (XREAD after it) does not wake for entries that were there before.
func (s *Store) learnLast(ctx context.Context, q store.Queue, st *claimState) error {
	p := s.c.Pipeline()
	cmds := map[int]*goredis.XMessageSliceCmd{}
	for sh, u := range st.unknown {
		if u {
			cmds[sh] = p.XRevRangeN(ctx, s.kStream(q, sh), "+", "-", 1)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	if _, err := p.Exec(ctx); err != nil && err != goredis.Nil {
		return mapErr(err)
	}
	for sh, c := range cmds {
		st.last[sh], st.unknown[sh] = "0-0", false
		if v := c.Val(); len(v) > 0 {
			st.last[sh] = v[0].ID
		}
	}
	return nil
}

// waitNew blocks up to d for an entry added to q after the ones this consumer saw (XREAD,
// which claims nothing) and notes which shards got one. On a single node it reads every
// shard's stream at once; on Cluster the streams live on several nodes, so it reads one shard,
// in rotation, and the others are looked at again after d.
func (s *Store) waitNew(ctx context.Context, q store.Queue, st *claimState, d time.Duration) error {
	var shards []int
	if s.cluster {
		shards = []int{st.rr}
	} else {
		shards = make([]int, len(s.tags))
		for i := range shards {
			shards[i] = i
		}
	}
	streams := make([]string, 0, 2*len(shards))
	for _, sh := range shards {
		streams = append(streams, s.kStream(q, sh))
	}
	for _, sh := range shards {
		streams = append(streams, st.last[sh])
	}
	res, err := s.c.XRead(ctx, &goredis.XReadArgs{Streams: streams, Count: 1, Block: d}).Result()
	if err != nil && err != goredis.Nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return mapErr(err)
	}
	for _, r := range res {
		for i, sh := range shards {
			if streams[i] == r.Stream && len(r.Messages) > 0 {
				st.next[sh] = time.Unix(1, 0) // something arrived: visit it first
			}
		}
	}
	return nil
}

// ClaimParts claims parts to submit to upstream.
func (s *Store) ClaimParts(ctx context.Context, upstream, consumer string, n int, wait time.Duration) ([]*store.PartTask, error) {
	q := store.Queue{Kind: store.SubmitQueue, Name: upstream}
	es, err := s.claimQ(ctx, q, consumer, n, wait)
	if err != nil {
		return nil, err
	}
	out := make([]*store.PartTask, 0, len(es))
	for _, e := range es {
		t, err := store.DecodePartTask(e.payload)
		if err != nil {
			s.dropCorrupt(ctx, e.lease(q))
			continue
		}
		t.Lease, t.Attempts, t.Reclaimed = e.partLease(q, t), e.attempts, e.reclaimed
		out = append(out, t)
	}
	return out, nil
}

// ClaimDeliveries claims deliver_sm for account.
func (s *Store) ClaimDeliveries(ctx context.Context, account, consumer string, n int, wait time.Duration) ([]*store.Delivery, error) {
	q := store.Queue{Kind: store.DeliverQueue, Name: account}
	es, err := s.claimQ(ctx, q, consumer, n, wait)
	if err != nil {
		return nil, err
	}
	out := make([]*store.Delivery, 0, len(es))
	for _, e := range es {
		d, err := store.DecodeDelivery(e.payload)
		if err != nil {
			s.dropCorrupt(ctx, e.lease(q))
			continue
		}
		d.Lease, d.Attempts, d.Reclaimed = e.lease(q), e.attempts, e.reclaimed
		out = append(out, d)
	}
	return out, nil
}

// dropCorrupt removes an entry that can never be decoded, so it does not come back forever.
func (s *Store) dropCorrupt(ctx context.Context, l store.Lease) {
	// Best effort: if this fails the entry is dropped again at its next claim.
	_ = s.Ack(ctx, l)
}

// EnqueueDelivery adds d to its account's stream.
func (s *Store) EnqueueDelivery(ctx context.Context, d *store.Delivery) error {
	q := store.Queue{Kind: store.DeliverQueue, Name: d.Account}
	if err := store.ValidateQueue(q); err != nil {
		return err
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = nowUTC()
	}
	payload := store.AppendDelivery(nil, d)
	// A receipt goes to its message's shard; an MO, which has none, to the next in turn.
	var sh int
	if d.MessageID != "" {
		sh = s.shardOf(d.MessageID)
	} else {
		sh = int(s.moTurn.Add(1) % uint32(len(s.tags)))
	}
	var cmd *goredis.StringCmd
	return s.simple(ctx, func(p goredis.Pipeliner) {
		cmd = p.XAdd(ctx, &goredis.XAddArgs{Stream: s.kStream(q, sh), Values: []any{"p", payload}})
	}, func() error { return mapErr(cmd.Err()) })
}

// Ack acknowledges and deletes the entries, whichever claim holds them now (see
// store.Queues): one XACK and one XDEL per stream.
func (s *Store) Ack(ctx context.Context, leases ...store.Lease) error {
	type key struct {
		q  store.Queue
		sh int
	}
	ids := map[key][]string{}
	var order []key
	for _, l := range leases {
		sh, id, _, err := s.parseLease(l)
		if err != nil {
			return err
		}
		k := key{l.Queue, sh}
		if _, ok := ids[k]; !ok {
			order = append(order, k)
		}
		ids[k] = append(ids[k], id)
	}
	cmds := make([]goredis.Cmder, 0, 2*len(order))
	return s.simple(ctx, func(p goredis.Pipeliner) {
		for _, k := range order {
			stream := s.kStream(k.q, k.sh)
			cmds = append(cmds, p.XAck(ctx, stream, group, ids[k]...), p.XDel(ctx, stream, ids[k]...))
		}
	}, func() error {
		for _, c := range cmds {
			// NOGROUP: the queue was never claimed from, so there is nothing to acknowledge.
			if err := c.Err(); err != nil && !goredis.HasErrorPrefix(err, "NOGROUP") {
				return mapErr(err)
			}
		}
		return nil
	})
}

// holdResult turns a script's 0 / -1 (see the holds script) into ErrNotFound / ErrLeaseLost.
func holdResult(l store.Lease, n int64) error {
	switch n {
	case 0:
		return fmt.Errorf("%w: queue %v entry %s", store.ErrNotFound, l.Queue, l.Entry)
	case -1:
		return fmt.Errorf("%w: queue %v entry %s", store.ErrLeaseLost, l.Queue, l.Entry)
	}
	return nil
}

// GiveBack re-adds the entry, at once or after delay, if the lease still holds it.
func (s *Store) GiveBack(ctx context.Context, l store.Lease, delay time.Duration) error {
	sh, id, count, err := s.parseLease(l)
	if err != nil {
		return err
	}
	var cmd *goredis.Cmd
	return s.simple(ctx, func(p goredis.Pipeliner) {
		cmd = s.giveBack(ctx, p, l.Queue, sh, id, count, delay, backAttempted)
	}, func() error {
		n, err := cmd.Int64()
		if err != nil {
			return mapErr(err)
		}
		return holdResult(l, n)
	})
}

// Postpone is GiveBack without counting an attempt.
func (s *Store) Postpone(ctx context.Context, l store.Lease, delay time.Duration) error {
	sh, id, count, err := s.parseLease(l)
	if err != nil {
		return err
	}
	var cmd *goredis.Cmd
	return s.simple(ctx, func(p goredis.Pipeliner) {
		cmd = s.giveBack(ctx, p, l.Queue, sh, id, count, delay, backPostponed)
	}, func() error {
		n, err := cmd.Int64()
		if err != nil {
			return mapErr(err)
		}
		return holdResult(l, n)
	})
}

// backKind is why an entry is given back, the giveBack script's flag: what it counts.
type backKind string

const (
	backAttempted backKind = "0" // GiveBack: one more attempt
	backLost      backKind = "1" // RequeueLost: one more attempt, and reclaimed
	backPostponed backKind = "2" // Postpone: no attempt
)

func (s *Store) giveBack(ctx context.Context, p goredis.Pipeliner, q store.Queue, sh int, id string, count int64, delay time.Duration, why backKind) *goredis.Cmd {
	return giveBack.EvalSha(ctx, p, []string{s.kStream(q, sh), s.kDelayed(q, sh)}, group, id, delay.Milliseconds(), time.Now().UnixMilli(), string(why), count)
}

// Reroute copies the entry to upstream's stream of the same shard, then acknowledges and
// deletes it in its own: three round trips (both streams share the shard's slot, but the
// steps are kept apart as when they did not). The
// first checks the lease and claims the entry afresh for its holder (same delivery count, so
// the lease stays valid), so nobody reclaims it while it is copied; the last removes it only
// if that claim still holds it. The order makes a failure between them leave the part queued
// twice (sent twice at worst) rather than lost.
func (s *Store) Reroute(ctx context.Context, l store.Lease, upstream string) error {
	to := store.Queue{Kind: store.SubmitQueue, Name: upstream}
	sh, id, count, err := s.parseLease(l)
	if err != nil {
		return err
	}
	if l.Queue.Kind != store.SubmitQueue || store.ValidateQueue(to) != nil {
		return fmt.Errorf("%w: reroute %v to %q", store.ErrInvalid, l.Queue, upstream)
	}
	from := s.kStream(l.Queue, sh)
	var (
		round  int
		take   *goredis.Cmd
		add    *goredis.StringCmd
		result error
	)
	err = s.do(ctx, func(p goredis.Pipeliner) bool {
		round++
		switch round {
		case 1:
			take = rerouteTake.EvalSha(ctx, p, []string{from}, group, id, count)
			return true
		case 2:
			v, err := take.Result()
			if err != nil {
				result = mapErr(err)
				return false
			}
			if n, ok := v.(int64); ok {
				if result = holdResult(l, n); result == nil {
					result = fmt.Errorf("store: redis: reroute: unexpected reply %d", n)
				}
				return false
			}
			f, _ := v.([]any)
			if len(f) != 2 {
				result = fmt.Errorf("store: redis: reroute: unexpected reply %v", v)
				return false
			}
			add = p.XAdd(ctx, &goredis.XAddArgs{Stream: s.kStream(to, sh), Values: []any{"p", f[0], "a", f[1], "r", "0"}})
			return true
		case 3:
			if err := add.Err(); err != nil {
				result = mapErr(err)
				return false
			}
			ackHeld.EvalSha(ctx, p, []string{from}, group, id, count)
			return true
		}
		// A failed removal leaves the old entry pending: it is reclaimed and sent again
		// after the visibility time-out, the duplicate this order accepts. So does a
		// removal that found the entry claimed again (only if copying took a whole
		// visibility time-out).
		return false
	})
	if err != nil {
		return err
	}
	return result
}

// RequeueLost logs the lost PDUs and re-adds their entries at once, those the leases still
// hold.
func (s *Store) RequeueLost(ctx context.Context, lost []store.LostPDU) error {
	if len(lost) == 0 {
		return nil
	}
	recs := make([]any, len(lost))
	ids := make([]string, len(lost))
	counts := make([]int64, len(lost))
	shards := make([]int, len(lost))
	for i := range lost {
		sh, id, count, err := s.parseLease(lost[i].Lease)
		if err != nil {
			return err
		}
		ids[i], counts[i], shards[i] = id, count, sh
		if lost[i].At.IsZero() {
			lost[i].At = nowUTC()
		}
		recs[i] = store.AppendLostPDU(nil, &lost[i])
	}
	var cmds []goredis.Cmder
	return s.simple(ctx, func(p goredis.Pipeliner) {
		cmds = append(cmds, p.LPush(ctx, s.kLost(), recs...), p.LTrim(ctx, s.kLost(), 0, lostCap-1))
		for i := range lost {
			// A script answering 0 or -1 (acknowledged, or claimed again) left the entry to
			// whoever settles it.
			cmds = append(cmds, s.giveBack(ctx, p, lost[i].Lease.Queue, shards[i], ids[i], counts[i], 0, backLost))
		}
	}, func() error {
		for _, c := range cmds {
			if err := c.Err(); err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
}

// QueueLen counts unacknowledged entries, delayed ones included, over all shards.
func (s *Store) QueueLen(ctx context.Context, q store.Queue) (int, error) {
	if err := store.ValidateQueue(q); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	p := s.c.Pipeline()
	cmds := make([]*goredis.IntCmd, 0, 2*len(s.tags))
	for sh := range s.tags {
		cmds = append(cmds, p.XLen(ctx, s.kStream(q, sh)), p.ZCard(ctx, s.kDelayed(q, sh)))
	}
	if _, err := p.Exec(ctx); err != nil {
		return 0, mapErr(err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}
