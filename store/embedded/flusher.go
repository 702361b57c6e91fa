package embedded

import (
	"bytes"
	"sync/atomic"

	"github.com/smppgw/smppgw/store"
)

// flusherState is what the group commit keeps between and within its batches. Only the stager
// goroutine touches it (ops run there; their after functions, on the syncer, do not touch it),
// so it needs no lock.
type flusherState struct {
	// parked counts the receipts parked per id map key (upstream NUL upstream id), so a
	// settle looks for early receipts only when there can be some: most never see one, and the
	// look is a cursor seek. Rebuilt at Open; pending holds the current batch's changes,
	// applied when it commits and dropped when it is rolled back.
	parked  map[string]int
	pending map[string]int
	// [gapLo, gapHi) holds no message id in bbolt as of its transaction gapTx (gapEnd: no
	// upper bound); see msg.
	gapTx        int
	gapValid     bool
	gapEnd       bool
	gapLo, gapHi []byte
	// queues holds each queue's bucket name, made once.
	queues map[store.Queue][]byte
	// id is scratch for a message id looked up; gen is the name of the id map generation last
	// written to, ending at genEnd.
	id     []byte
	gen    []byte
	genEnd int64
	rec    []byte // scratch for a record, copied into the allocation its op writes
	ukey   []byte // scratch for an id map key
	slab   []byte // what alloc hands out next
	// kept holds accepted messages' decoded forms for their settles (kept.go); keptAdded the
	// ids the current batch added, forgotten if it is rolled back.
	kept      map[string]*keptMsg
	keptAdded []string
	keptBytes int
	full      atomic.Bool // kept is near keptMax; the one field read elsewhere
}

// queueBucket returns the name of queue q's bucket, which must not be changed.
func (f *flusherState) queueBucket(q store.Queue) []byte {
	b, ok := f.queues[q]
	if !ok {
		if f.queues == nil {
			f.queues = map[store.Queue][]byte{}
		}
		b = queueBucket(q)
		f.queues[q] = b
	}
	return b
}

// slabChunk is the size of the chunks alloc hands bytes out of.
const slabChunk = 32 << 10

// alloc returns room for n bytes (length 0, capacity n) that a write keeps in the memtable,
// out of a chunk shared by the writes before and after it: one allocation for a hundred
// settles, where each made its own. Only what the memtables keep may go there (a chunk lives
// while anything in it does, and the memtables let go of theirs within a checkpoint or two),
// nothing a caller gets back.
func (f *flusherState) alloc(n int) []byte {
	if n > slabChunk/16 {
		return make([]byte, 0, n)
	}
	if cap(f.slab)-len(f.slab) < n {
		f.slab = make([]byte, 0, slabChunk)
	}
	l := len(f.slab)
	f.slab = f.slab[:l+n]
	return f.slab[l : l : l+n]
}

// begin starts a batch's state.
func (f *flusherState) begin() { clear(f.pending) }

// end closes a batch's state, committed or not.
func (f *flusherState) end(committed bool) {
	if committed {
		for k, d := range f.pending {
			if n := f.parked[k] + d; n > 0 {
				f.parked[k] = n
			} else {
				delete(f.parked, k)
			}
		}
	}
	clear(f.pending)
	f.endKept(committed)
}

// mayBeParked reports whether receipts may be parked under ukey.
func (f *flusherState) mayBeParked(ukey []byte) bool {
	return f.parked[string(ukey)]+f.pending[string(ukey)] > 0
}

// parkedAdded counts a receipt parked (d 1) or removed (d -1) under the park bucket key k.
func (f *flusherState) parkedAdded(k []byte, d int) {
	if len(k) > 9 {
		f.pending[string(k[:len(k)-9])] += d
	}
}

// msg returns the value of message id, nil if there is none. Every accept asks for an id
// bbolt does not have, and a run's ids rise (the gateway counts them from a random start),
// so the run of ids bbolt has none of, found by the last seek that missed, answers the next
// ones without a seek until a checkpoint commits (bbolt's transaction id moves).
func (f *flusherState) msg(tx *txn, id []byte) []byte {
	b := tx.Bucket(bMsg)
	if v, ok := b.memGet(id); ok {
		return v
	}
	txid := tx.rtx.ID()
	if f.gapTx == txid && f.gapValid && bytes.Compare(id, f.gapLo) >= 0 && (f.gapEnd || bytes.Compare(id, f.gapHi) < 0) {
		return nil
	}
	k, v := b.diskSeek(id)
	if bytes.Equal(k, id) {
		return v
	}
	f.gapTx, f.gapValid, f.gapEnd = txid, true, k == nil
	f.gapLo = append(f.gapLo[:0], id...)
	f.gapHi = append(f.gapHi[:0], k...)
	return nil
}

// countParked builds the parked index from the park bucket (keys ukey NUL seq(8)).
func countParked(tx *txn) map[string]int {
	m := map[string]int{}
	c := tx.Bucket(bPark).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) > 9 {
			m[string(k[:len(k)-9])]++
		}
	}
	return m
}
