package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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
	id        string
	count     int64 // delivery count: which claim this is
	payload   []byte
	attempts  int
	reclaimed bool
}

func (e entry) lease(q store.Queue) store.Lease {
	return store.Lease{Queue: q, Entry: e.id + "/" + strconv.FormatInt(e.count, 10)}
}

// parseLease splits a lease into its stream id and delivery count.
func parseLease(l store.Lease) (id string, count int64, err error) {
	if err := store.ValidateQueue(l.Queue); err != nil {
		return "", 0, err
	}
	id, c, ok := strings.Cut(l.Entry, "/")
	count, cerr := strconv.ParseInt(c, 10, 64)
	if !ok || cerr != nil || count < 1 || !validID(id) {
		return "", 0, fmt.Errorf("%w: lease %q", store.ErrInvalid, l.Entry)
	}
	return id, count, nil
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
	var kv []any
	switch f := fields.(type) {
	case []any:
		kv = f
	case map[string]any:
		for k, v := range f {
			kv = append(kv, k, v)
		}
	default:
		return e, false
	}
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		v, _ := kv[i+1].(string)
		switch k {
		case "p":
			e.payload = []byte(v)
		case "a":
			e.attempts, _ = strconv.Atoi(v)
		case "r":
			e.reclaimed = e.reclaimed || v == "1"
		}
	}
	return e, e.payload != nil
}

// claimQ claims up to n entries of q, waiting up to wait.
func (s *Store) claimQ(ctx context.Context, q store.Queue, consumer string, n int, wait time.Duration) ([]entry, error) {
	if err := store.ValidateQueue(q); err != nil {
		return nil, err
	}
	if consumer == "" {
		return nil, fmt.Errorf("%w: empty consumer name", store.ErrInvalid)
	}
	n = max(n, 1)
	keys := []string{s.kStream(q), s.kDelayed(q), s.kCursor(q), s.kSweep(q)}
	vt := s.opts.VisibilityTimeout.Milliseconds()
	until := time.Now().Add(wait)
	for {
		if s.closed.Load() {
			return nil, store.ErrClosed
		}
		now := time.Now()
		// The first claim of the queue by this consumer since Open adopts what it held before.
		adoptKey, adopt := keys[0]+"\x00"+consumer, "0"
		if _, done := s.adopted.LoadOrStore(adoptKey, true); !done {
			adopt = "1"
		}
		v, err := claim.Run(ctx, s.c, keys, group, consumer, n, vt, now.UnixMilli(), consumerIdleFactor*vt, vt, adopt).Result()
		if err != nil {
			if adopt == "1" {
				s.adopted.Delete(adoptKey)
			}
			return nil, mapErr(err)
		}
		rows, _ := v.([]any)
		out := make([]entry, 0, len(rows))
		for _, row := range rows {
			t, ok := row.([]any)
			if !ok || len(t) != 4 {
				continue
			}
			id, _ := t[0].(string)
			rc, _ := t[2].(int64)
			if e, ok := parseFields(id, t[1], rc == 1); ok {
				e.count, _ = t[3].(int64)
				out = append(out, e)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
		left := time.Until(until)
		if left <= 0 {
			return nil, nil
		}
		// Block for new entries, but not past PollInterval: time-outs and delays run out
		// without any write to wake a blocked reader.
		block := max(min(left, s.opts.PollInterval), time.Millisecond)
		res, err := s.c.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{keys[0], ">"}, Count: int64(n), Block: block,
		}).Result()
		if err != nil && err != goredis.Nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, mapErr(err)
		}
		for _, st := range res {
			for _, m := range st.Messages {
				if e, ok := parseFields(m.ID, m.Values, false); ok {
					e.count = 1 // a first delivery
					out = append(out, e)
				}
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
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
		t.Lease, t.Attempts, t.Reclaimed = e.lease(q), e.attempts, e.reclaimed
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
	var cmd *goredis.StringCmd
	return s.simple(ctx, func(p goredis.Pipeliner) {
		cmd = p.XAdd(ctx, &goredis.XAddArgs{Stream: s.kStream(q), Values: []any{"p", payload}})
	}, func() error { return mapErr(cmd.Err()) })
}

// Ack acknowledges and deletes the entries, whichever claim holds them now (see
// store.Queues).
func (s *Store) Ack(ctx context.Context, leases ...store.Lease) error {
	ids := make([]string, len(leases))
	for i, l := range leases {
		id, _, err := parseLease(l)
		if err != nil {
			return err
		}
		ids[i] = id
	}
	cmds := make([]goredis.Cmder, 0, 2*len(leases))
	return s.simple(ctx, func(p goredis.Pipeliner) {
		for i, l := range leases {
			k := s.kStream(l.Queue)
			cmds = append(cmds, p.XAck(ctx, k, group, ids[i]), p.XDel(ctx, k, ids[i]))
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
	id, count, err := parseLease(l)
	if err != nil {
		return err
	}
	var cmd *goredis.Cmd
	return s.simple(ctx, func(p goredis.Pipeliner) {
		cmd = s.giveBack(ctx, p, l.Queue, id, count, delay, backAttempted)
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
	id, count, err := parseLease(l)
	if err != nil {
		return err
	}
	var cmd *goredis.Cmd
	return s.simple(ctx, func(p goredis.Pipeliner) {
		cmd = s.giveBack(ctx, p, l.Queue, id, count, delay, backPostponed)
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

func (s *Store) giveBack(ctx context.Context, p goredis.Pipeliner, q store.Queue, id string, count int64, delay time.Duration, why backKind) *goredis.Cmd {
	return giveBack.EvalSha(ctx, p, []string{s.kStream(q), s.kDelayed(q)}, group, id, delay.Milliseconds(), time.Now().UnixMilli(), string(why), count)
}

// Reroute copies the entry to upstream's stream, then acknowledges and deletes it in its
// own: the two streams may live in different slots, so this takes three round trips. The
// first checks the lease and claims the entry afresh for its holder (same delivery count, so
// the lease stays valid), so nobody reclaims it while it is copied; the last removes it only
// if that claim still holds it. The order makes a failure between them leave the part queued
// twice (sent twice at worst) rather than lost.
func (s *Store) Reroute(ctx context.Context, l store.Lease, upstream string) error {
	to := store.Queue{Kind: store.SubmitQueue, Name: upstream}
	id, count, err := parseLease(l)
	if err != nil {
		return err
	}
	if l.Queue.Kind != store.SubmitQueue || store.ValidateQueue(to) != nil {
		return fmt.Errorf("%w: reroute %v to %q", store.ErrInvalid, l.Queue, upstream)
	}
	from := s.kStream(l.Queue)
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
			add = p.XAdd(ctx, &goredis.XAddArgs{Stream: s.kStream(to), Values: []any{"p", f[0], "a", f[1], "r", "0"}})
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
	for i := range lost {
		id, count, err := parseLease(lost[i].Lease)
		if err != nil {
			return err
		}
		ids[i], counts[i] = id, count
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
			cmds = append(cmds, s.giveBack(ctx, p, lost[i].Lease.Queue, ids[i], counts[i], 0, backLost))
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

// QueueLen counts unacknowledged entries, delayed ones included.
func (s *Store) QueueLen(ctx context.Context, q store.Queue) (int, error) {
	if err := store.ValidateQueue(q); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	p := s.c.Pipeline()
	xl := p.XLen(ctx, s.kStream(q))
	zc := p.ZCard(ctx, s.kDelayed(q))
	if _, err := p.Exec(ctx); err != nil {
		return 0, mapErr(err)
	}
	return int(xl.Val() + zc.Val()), nil
}
