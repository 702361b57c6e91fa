package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/smppgw/smppgw/store"
)

// CancelMessage removes the message's unclaimed entries and marks their parts DELETED.
func (s *Store) CancelMessage(ctx context.Context, id, account string) (*store.Message, []int, error) {
	return s.editQueued(ctx, id, account, nil)
}

// ReplaceMessage rewrites the payload of the message's unclaimed entry in place.
func (s *Store) ReplaceMessage(ctx context.Context, id, account string, r store.Replacement) (*store.Message, []int, error) {
	return s.editQueued(ctx, id, account, &r)
}

// editQueued finds the message's entries on disk, takes those no claim holds out of reach of
// claims (startRemoval, as Ack does), and then, in one write, deletes them (cancel, r nil) or
// rewrites their payload (replace) together with the message record. A replaced entry is
// released afterwards, claimable again in its place in line.
func (s *Store) editQueued(ctx context.Context, id, account string, r *store.Replacement) (*store.Message, []int, error) {
	var m *store.Message
	found := map[uint64]int{} // entry -> part
	var name store.Queue
	err := s.view(func(tx *txn) error {
		var err error
		if m, err = getMsg(tx, id); err != nil {
			return err
		}
		if err := store.CheckEdit(m, account, r); err != nil {
			return err
		}
		parts := store.EditableParts(m)
		name = store.Queue{Kind: store.SubmitQueue, Name: m.Upstream}
		qb := tx.Bucket(bQueues).Bucket(queueBucket(name))
		if len(parts) == 0 || qb == nil {
			return nil
		}
		keys := make([][]byte, len(parts))
		for j, i := range parts {
			keys[j] = store.PartTaskKey(id, i)
		}
		c := qb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			for j, key := range keys {
				if len(k) == 8 && store.IsPartTask(v, key) {
					found[binary.BigEndian.Uint64(k)] = parts[j]
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(found) == 0 {
		return m, nil, nil
	}
	var (
		rs    []*removal
		parts []int
	)
	s.qmu.Lock()
	q := s.q(name)
	for seq, part := range found {
		e := q.entries[seq]
		if e == nil || e.state == stClaimed || e.removing > 0 {
			continue // settled meanwhile, in flight, or being moved by someone else
		}
		rs = append(rs, s.startRemoval(name, seq))
		parts = append(parts, part)
	}
	s.qmu.Unlock()
	if len(rs) == 0 {
		return m, nil, nil
	}
	slices.Sort(parts)
	err = s.write(ctx, func(tx *txn) error {
		var err error
		s.f.forget([]byte(id))
		if m, err = decodeMsg(id, s.f.msg(tx, []byte(id))); err != nil {
			return err
		}
		now := nowUTC()
		if r == nil {
			store.ApplyCancel(m, parts, now)
		} else {
			store.ApplyReplace(m, r, now)
		}
		qb := tx.Bucket(bQueues).Bucket(queueBucket(name))
		if qb == nil {
			return fmt.Errorf("%w: queue %v", store.ErrNotFound, name)
		}
		for _, rm := range rs {
			if r == nil {
				err = qb.Delete(be64(rm.seq))
			} else {
				err = qb.Put(be64(rm.seq), store.AppendPartTask(nil, store.NewPartTask(m, found[rm.seq])))
			}
			if err != nil {
				return dirty(err)
			}
		}
		return dirty(tx.Bucket(bMsg).Put([]byte(id), store.AppendMessage(nil, m)))
	}, func() {
		if r == nil {
			s.removed(rs...)
		} else {
			s.abandoned(rs...) // the entry stays: let claims see it again
		}
	})
	if err != nil {
		s.abandoned(rs...)
		return nil, nil, err
	}
	return m, parts, nil
}
