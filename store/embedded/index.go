package embedded

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/smppgw/smppgw/store"
)

// The time index is one entry per message, account NUL IndexKey(created, id), in bIdxAcc: a
// listing of one account walks its range, a listing of all merges every account's range in
// key order (a listing is rare, an accept is not). Before, a message also had a key in bIdx
// (IndexKey -> account), for listings of all; a bIdx left by an older release is dropped at
// Open, as bIdxAcc holds the same.
//
// The memtables (and so the WAL) keep one key a message in bIdxAcc; bbolt keeps the entries
// in blocks instead, in bIdxBlk: account NUL block(8) -> the entries' index keys, where block
// is the creation time with the low bits of blockSpan cleared. A checkpoint writes each block
// its memtable touches once, merged with what bbolt holds of it: one bbolt Put for a block's
// thousands of messages at a high rate, where each message cost a Put (a cursor and a copy of
// the key). Readers see the blocks through bucket bIdxAcc as bbolt's layer (blockCursor), so
// the txn's cursors and tombstones work on the index as on any bucket. Replay writes the WAL's
// index entries into blocks as well, and Open moves what an older release left in bIdxAcc,
// one key a message, into blocks (convertOldIndex), so bbolt's bIdxAcc is empty once open.
var bIdxBlk = []byte("idxblk")

// blockSpan is the time a block covers, in nanoseconds (2^26, 67 ms): at 50,000 messages a
// second for one account a block holds about 3,400 entries, 100 KB; a checkpoint (every
// second) writes about 15 of them, and a listing's seek reads one.
const blockSpan = 1 << 26

// appendBlockKey appends the block key of index key k (account NUL IndexKey) to b; false when
// k is not one.
func appendBlockKey(b, k []byte) ([]byte, bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k)-i-1 < 8 {
		return b, false
	}
	b = append(b, k[:i+1]...)
	return binary.BigEndian.AppendUint64(b, binary.BigEndian.Uint64(k[i+1:])&^(blockSpan-1)), true
}

// A block's value is its entries' index keys (IndexKey, without the account) in order, each
// uvarint(length) key.

// nextEntry returns the first entry of block value v and the rest; false at the end or when
// v is not a block's value.
func nextEntry(v []byte) (ikey, rest []byte, ok bool) {
	n, w := binary.Uvarint(v)
	if w <= 0 || n > uint64(len(v)-w) {
		return nil, nil, false
	}
	return v[w : w+int(n)], v[w+int(n):], true
}

func appendEntryKey(b, ikey []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(ikey))), ikey...)
}

// mergeBlock returns the block value have with changes (index entries of bIdxAcc, in key
// order, their account prefix plen bytes long) applied: a put adds its entry, a tombstone
// removes it.
func mergeBlock(have []byte, changes []kv, plen int) ([]byte, error) {
	n := len(have)
	for _, e := range changes {
		if !e.del {
			n += binary.MaxVarintLen16 + len(e.k) - plen
		}
	}
	out := make([]byte, 0, n)
	a, rest, ok := nextEntry(have)
	if !ok && len(have) > 0 {
		return nil, fmt.Errorf("%w: time index block", store.ErrCorrupt)
	}
	for _, e := range changes {
		ik := e.k[plen:]
		for ok && bytes.Compare(a, ik) < 0 {
			out = appendEntryKey(out, a)
			a, rest, ok = nextEntry(rest)
		}
		if ok && bytes.Equal(a, ik) {
			a, rest, ok = nextEntry(rest) // replaced, or removed
		}
		if !e.del {
			out = appendEntryKey(out, ik)
		}
	}
	for ok {
		out = appendEntryKey(out, a)
		a, rest, ok = nextEntry(rest)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: time index block", store.ErrCorrupt)
	}
	return out, nil
}

// indexChanges returns changes (puts and tombstones of bIdxAcc, in the order they were made)
// as a bucket for writeIndex: in key order, the last change of each key. Sorted once, as
// inserting each into a sorted slice would move half of it when accounts interleave.
func indexChanges(changes []kv) *mbucket {
	slices.SortStableFunc(changes, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	w := changes[:0]
	for i, e := range changes {
		if i+1 < len(changes) && bytes.Equal(changes[i+1].k, e.k) {
			continue // a later change of the key follows
		}
		w = append(w, e)
	}
	return &mbucket{top: bIdxAcc, w: w}
}

// writeIndex writes the index changes of mb (bucket bIdxAcc of a memtable, or replay's) into
// bbolt's blocks: each block touched is read once, merged with its changes and written once,
// or deleted when nothing is left of it. A tombstone also deletes the key from bbolt's
// bIdxAcc, where an older release wrote it (replay runs before convertOldIndex). It returns
// how many blocks it put.
func writeIndex(tx *bbolt.Tx, mb *mbucket) (int, error) {
	if mb.len() == 0 {
		return 0, nil
	}
	blocks, old := tx.Bucket(bIdxBlk), tx.Bucket(bIdxAcc)
	if blocks == nil || old == nil {
		return 0, fmt.Errorf("%w: no time index buckets", errRecord)
	}
	blocks.FillPercent = 0.9 // blocks mostly come in order
	var (
		c, oc   *bbolt.Cursor
		cur, bk []byte
		changes []kv
		err     error
		puts    int
	)
	flush := func() error {
		if len(changes) == 0 {
			return nil
		}
		if c == nil {
			c = blocks.Cursor()
		}
		var have []byte
		if k, v := c.Seek(cur); bytes.Equal(k, cur) {
			have = v
		}
		merged, err := mergeBlock(have, changes, len(cur)-8)
		clear(changes)
		changes = changes[:0]
		switch {
		case err != nil:
			return err
		case len(merged) > 0:
			puts++
			return blocks.Put(cur, merged) // bbolt keeps merged until the commit
		case have != nil:
			return c.Delete()
		}
		return nil
	}
	mb.scan(func(e kv) bool {
		var ok bool
		if bk, ok = appendBlockKey(bk[:0], e.k); !ok {
			return true // not an index key: nothing writes one
		}
		if e.del {
			if oc == nil {
				oc = old.Cursor()
			}
			if k, _ := oc.Seek(e.k); bytes.Equal(k, e.k) {
				if err = oc.Delete(); err != nil {
					return false
				}
			}
		}
		if !bytes.Equal(bk, cur) {
			if err = flush(); err != nil {
				return false
			}
			cur = append(cur[:0], bk...)
		}
		changes = append(changes, e)
		return true
	})
	if err != nil {
		return puts, err
	}
	err = flush()
	return puts, err
}

// convertMax bounds the old index keys convertOldIndex moves in one transaction (a variable
// for tests).
var convertMax = 100000

// convertOldIndex moves the time index an older release wrote in bbolt, one key a message in
// bIdxAcc, into blocks, at Open after replay: convertMax keys a transaction, each moving its
// keys and deleting them, so a conversion cut short goes on at the next Open.
func (s *Store) convertOldIndex() error {
	for {
		done := false
		if err := s.db.Update(func(tx *bbolt.Tx) error {
			old := tx.Bucket(bIdxAcc)
			mb := newMBucket(bIdxAcc, nil)
			c := old.Cursor()
			for k, _ := c.First(); k != nil && len(mb.w) < convertMax; k, _ = c.Next() {
				mb.w = append(mb.w, kv{k: bytes.Clone(k), v: []byte{}})
			}
			if len(mb.w) == 0 {
				done = true
				return nil
			}
			if _, err := writeIndex(tx, mb); err != nil {
				return err
			}
			if len(mb.w) < convertMax {
				done = true
				if err := tx.DeleteBucket(bIdxAcc); err != nil {
					return err
				}
				_, err := tx.CreateBucket(bIdxAcc)
				return err
			}
			for _, e := range mb.w {
				if err := old.Delete(e.k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil || done {
			return err
		}
	}
}

// blockCursor is bbolt's layer of the time index for a txn's cursor: it walks the blocks and
// returns their entries as bIdxAcc keys (account NUL IndexKey), each its own copy. A value
// that is not a block's is skipped from where it stops making sense.
type blockCursor struct {
	c       *bbolt.Cursor
	bk      []byte // the current block's key, nil past the last
	rest    []byte // its entries not returned yet
	scratch []byte
	keys    []byte // the chunk key takes keys from
}

// emptyValue is the value of every index key.
var emptyValue = []byte{}

func (b *blockCursor) First() ([]byte, []byte) {
	b.bk, b.rest = b.c.First()
	return b.Next()
}

func (b *blockCursor) Next() ([]byte, []byte) {
	p, ik, ok := b.step()
	if !ok {
		return nil, nil
	}
	return b.key(p, ik), emptyValue
}

// key returns p followed by ikey in bytes of its own: out of a chunk of the cursor's, which
// it never writes over (callers keep keys past the next move).
func (b *blockCursor) key(p, ikey []byte) []byte {
	n := len(p) + len(ikey)
	if cap(b.keys)-len(b.keys) < n {
		b.keys = make([]byte, 0, max(4096, n))
	}
	l := len(b.keys)
	b.keys = append(append(b.keys, p...), ikey...)
	return b.keys[l:len(b.keys):len(b.keys)]
}

// Seek moves to the first key at or after k: in the block k falls in (found from k's account
// and time), or after it.
func (b *blockCursor) Seek(k []byte) ([]byte, []byte) {
	seek := k
	if i := bytes.IndexByte(k, 0); i >= 0 {
		// Every block before this key holds only keys before k; a key without a NUL is
		// sought as it is, as no block holds a key that starts with it.
		var t [8]byte
		copy(t[:], k[i+1:])
		b.scratch = binary.BigEndian.AppendUint64(append(b.scratch[:0], k[:i+1]...), binary.BigEndian.Uint64(t[:])&^(blockSpan-1))
		seek = b.scratch
	}
	b.bk, b.rest = b.c.Seek(seek)
	for {
		p, ik, ok := b.step()
		if !ok {
			return nil, nil
		}
		if compareJoined(p, ik, k) >= 0 {
			return b.key(p, ik), emptyValue
		}
	}
}

// step moves to the next entry: its account prefix (account NUL) and index key.
func (b *blockCursor) step() (p, ikey []byte, ok bool) {
	for b.bk != nil {
		if len(b.bk) >= 9 {
			if ikey, rest, ok := nextEntry(b.rest); ok {
				b.rest = rest
				return b.bk[:len(b.bk)-8], ikey, true
			}
		}
		b.bk, b.rest = b.c.Next()
	}
	return nil, nil, false
}

// compareJoined compares p followed by q with k, as bytes.Compare would.
func compareJoined(p, q, k []byte) int {
	if len(k) <= len(p) {
		if c := bytes.Compare(p[:len(k)], k); c != 0 {
			return c
		}
		if len(p)+len(q) == len(k) {
			return 0
		}
		return 1
	}
	if c := bytes.Compare(p, k[:len(p)]); c != 0 {
		return c
	}
	return bytes.Compare(q, k[len(p):])
}

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
