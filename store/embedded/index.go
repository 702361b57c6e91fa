package embedded

import (
	"bytes"
	"container/heap"

	"go.etcd.io/bbolt"
)

// The time index is one key per message, account NUL IndexKey(created, id), in bIdxAcc: a
// listing of one account walks its range, a listing of all merges every account's range in
// key order (a listing is rare, an accept is not). Before, a message also had a key in bIdx
// (IndexKey -> account), for listings of all; a bIdx left by an older release is dropped at
// Open, as bIdxAcc holds the same.

// indexAccounts returns the accounts the time index holds, in order: one seek each.
func indexAccounts(tx *txn) []string {
	var out []string
	c := tx.Bucket(bIdxAcc).Cursor()
	for k, _ := c.First(); k != nil; {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			k, _ = c.Next() // not an index key; nothing writes one
			continue
		}
		out = append(out, string(k[:i]))
		// Every key of this account is below account 0x01; the next account's is not.
		k, _ = c.Seek(append(bytes.Clone(k[:i]), 1))
	}
	return out
}

// indexMerge walks the index ranges of several accounts in index key order.
type indexMerge struct {
	heads indexHeads
	end   []byte
}

// indexHead is one account's range: its cursor, and the index key it is at.
type indexHead struct {
	c      *cursor
	prefix []byte // account NUL
	ikey   []byte
}

type indexHeads []*indexHead

func (h indexHeads) Len() int           { return len(h) }
func (h indexHeads) Less(i, j int) bool { return bytes.Compare(h[i].ikey, h[j].ikey) < 0 }
func (h indexHeads) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *indexHeads) Push(x any)        { *h = append(*h, x.(*indexHead)) }
func (h *indexHeads) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// newIndexMerge starts at index key start (nil: the first) and stops before end (nil: none).
func newIndexMerge(tx *txn, accounts []string, start, end []byte) *indexMerge {
	ix := &indexMerge{end: end}
	for _, a := range accounts {
		h := &indexHead{c: tx.Bucket(bIdxAcc).Cursor(), prefix: append([]byte(a), 0)}
		k, _ := h.c.Seek(append(bytes.Clone(h.prefix), start...))
		if h.at(k, end) {
			ix.heads = append(ix.heads, h)
		}
	}
	heap.Init(&ix.heads)
	return ix
}

// at takes k as the head's key, false when it is past the account's range or end.
func (h *indexHead) at(k, end []byte) bool {
	if k == nil || !bytes.HasPrefix(k, h.prefix) {
		return false
	}
	h.ikey = k[len(h.prefix):]
	return end == nil || bytes.Compare(h.ikey, end) < 0
}

// next returns the next index key (without its account), nil at the end. It stays valid for
// the read transaction.
func (ix *indexMerge) next() []byte {
	if len(ix.heads) == 0 {
		return nil
	}
	h := ix.heads[0]
	ikey := h.ikey
	if k, _ := h.c.Next(); h.at(k, ix.end) {
		heap.Fix(&ix.heads, 0)
	} else {
		heap.Pop(&ix.heads)
	}
	return ikey
}

// peek returns the head next returns the key of, nil at the end.
func (ix *indexMerge) peek() *indexHead {
	if len(ix.heads) == 0 {
		return nil
	}
	return ix.heads[0]
}

// dropOldIndex empties bIdx, written by older releases (at Open, after replay).
func (s *Store) dropOldIndex() error {
	var empty bool
	if err := s.db.View(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bIdx).Cursor().First()
		empty = k == nil
		return nil
	}); err != nil || empty {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bIdx); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bIdx)
		return err
	})
}
