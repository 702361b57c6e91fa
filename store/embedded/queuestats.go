package embedded

import (
	"context"
	"time"

	"github.com/smppgw/smppgw/store"
)

// QueueStats counts q's entries and claims from memory and reads its head's payload (the lowest
// sequence number: given-back entries keep theirs) for when its work was created.
func (s *Store) QueueStats(ctx context.Context, name store.Queue) (store.QueueStats, error) {
	var st store.QueueStats
	if err := store.ValidateQueue(name); err != nil {
		return st, err
	}
	if s.closed.Load() {
		return st, store.ErrClosed
	}
	var head uint64
	s.qmu.Lock()
	if q := s.queues[name]; q != nil {
		st.Len = len(q.entries)
		for n, e := range q.entries {
			if e.state == stClaimed {
				st.Claimed++
			}
			if head == 0 || n < head {
				head = n
			}
		}
	}
	s.qmu.Unlock()
	if head == 0 {
		return st, nil // sequence numbers start at 1
	}
	err := s.view(func(tx *txn) error {
		qb := tx.Bucket(bQueues).Bucket(queueBucket(name))
		if qb == nil {
			return nil
		}
		v := qb.Get(be64(head))
		if v == nil {
			return nil // acknowledged since
		}
		st.Oldest = createdAt(tx, name.Kind, v)
		return nil
	})
	return st, err
}

// createdAt is when the work of a queue payload was created; zero when that cannot be told (an
// undecodable payload, a message removed by retention).
func createdAt(tx *txn, kind store.QueueKind, payload []byte) time.Time {
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
	m, err := getMsg(tx, t.MessageID)
	if err != nil {
		return time.Time{}
	}
	return m.CreatedAt
}
