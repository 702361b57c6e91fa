package redis

import (
	"context"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/store"
)

// QueueStats reads q's length as QueueLen does, its claims from the consumer group's pending
// entries, and its head: the stream's first entry, or the first delayed entry when the stream is
// empty.
func (s *Store) QueueStats(ctx context.Context, q store.Queue) (store.QueueStats, error) {
	var st store.QueueStats
	if err := store.ValidateQueue(q); err != nil {
		return st, err
	}
	if s.closed.Load() {
		return st, store.ErrClosed
	}
	p := s.c.Pipeline()
	xl := p.XLen(ctx, s.kStream(q))
	zc := p.ZCard(ctx, s.kDelayed(q))
	head := p.XRangeN(ctx, s.kStream(q), "-", "+", 1)
	delayed := p.ZRange(ctx, s.kDelayed(q), 0, 0)
	if _, err := p.Exec(ctx); err != nil {
		return st, mapErr(err)
	}
	st.Len = int(xl.Val() + zc.Val())
	if st.Len == 0 {
		return st, nil
	}
	pend, err := s.c.XPending(ctx, s.kStream(q), group).Result()
	switch {
	case err == nil:
		st.Claimed = int(pend.Count)
	case goredis.HasErrorPrefix(err, "NOGROUP"):
		// Never claimed from: nothing is claimed.
	default:
		return st, mapErr(err)
	}
	var payload []byte
	if h := head.Val(); len(h) > 0 {
		if v, ok := h[0].Values["p"].(string); ok {
			payload = []byte(v)
		}
	} else if d := delayed.Val(); len(d) > 0 {
		// A delayed member is "attempts|reclaimed|stream id|payload".
		if parts := strings.SplitN(d[0], "|", 4); len(parts) == 4 {
			payload = []byte(parts[3])
		}
	}
	if payload != nil {
		st.Oldest = s.createdAt(ctx, q.Kind, payload)
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
