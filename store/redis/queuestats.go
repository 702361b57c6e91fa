package redis

import (
	"context"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/store"
)

// QueueStats reads q's length as QueueLen does, its claims from the consumer group's pending
// entries, and its head: of the shards' first stream entries the one whose work is oldest, or
// when every stream is empty the delayed entry due first.
func (s *Store) QueueStats(ctx context.Context, q store.Queue) (store.QueueStats, error) {
	var st store.QueueStats
	if err := store.ValidateQueue(q); err != nil {
		return st, err
	}
	if s.closed.Load() {
		return st, store.ErrClosed
	}
	n := len(s.tags)
	xl, zc := make([]*goredis.IntCmd, n), make([]*goredis.IntCmd, n)
	heads, delayed := make([]*goredis.XMessageSliceCmd, n), make([]*goredis.ZSliceCmd, n)
	p := s.c.Pipeline()
	for sh := range s.tags {
		xl[sh] = p.XLen(ctx, s.kStream(q, sh))
		zc[sh] = p.ZCard(ctx, s.kDelayed(q, sh))
		heads[sh] = p.XRangeN(ctx, s.kStream(q, sh), "-", "+", 1)
		delayed[sh] = p.ZRangeWithScores(ctx, s.kDelayed(q, sh), 0, 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		return st, mapErr(err)
	}
	for sh := range s.tags {
		st.Len += int(xl[sh].Val() + zc[sh].Val())
	}
	if st.Len == 0 {
		return st, nil
	}
	pend := make([]*goredis.XPendingCmd, n)
	p = s.c.Pipeline()
	for sh := range s.tags {
		if xl[sh].Val() > 0 {
			pend[sh] = p.XPending(ctx, s.kStream(q, sh), group)
		}
	}
	_, _ = p.Exec(ctx) // errors are read per command
	for _, c := range pend {
		if c == nil {
			continue
		}
		switch err := c.Err(); {
		case err == nil:
			st.Claimed += int(c.Val().Count)
		case goredis.HasErrorPrefix(err, "NOGROUP"):
			// Never claimed from: nothing is claimed.
		default:
			return st, mapErr(err)
		}
	}
	for sh := range s.tags {
		h := heads[sh].Val()
		if len(h) == 0 {
			continue
		}
		v, ok := h[0].Values["p"].(string)
		if !ok {
			continue
		}
		if at := s.createdAt(ctx, q.Kind, []byte(v)); !at.IsZero() && (st.Oldest.IsZero() || at.Before(st.Oldest)) {
			st.Oldest = at
		}
	}
	if !st.Oldest.IsZero() {
		return st, nil
	}
	first, firstDue := "", 0.0
	for sh := range s.tags {
		// A delayed member is "attempts|reclaimed|stream id|payload".
		if d := delayed[sh].Val(); len(d) > 0 && (first == "" || d[0].Score < firstDue) {
			first, _ = d[0].Member.(string)
			firstDue = d[0].Score
		}
	}
	if parts := strings.SplitN(first, "|", 4); len(parts) == 4 {
		st.Oldest = s.createdAt(ctx, q.Kind, []byte(parts[3]))
	}
	return st, nil
}

// createdAt is when the work of a queue payload was created; zero when that cannot be told (an
// undecodable payload, a message expired by retention).
func (s *Store) createdAt(ctx context.Context, kind store.QueueKind, payload []byte) time.Time {
	if kind == store.DeliverQueue {
		d, err := store.DecodeDelivery(payload)
		if err != nil {
			return time.Time{}
		}
		return d.CreatedAt
	}
	t, err := store.DecodePartTask(payload)
	if err != nil {
		return time.Time{}
	}
	m, err := s.GetMessage(ctx, t.MessageID)
	if err != nil {
		return time.Time{}
	}
	return m.CreatedAt
}
