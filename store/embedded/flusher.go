package embedded

import (
	"bytes"

	"go.etcd.io/bbolt"
)

// flusherState is what the group commit keeps between and within its transactions. Only the
// goroutine running the batch's transaction touches it (ops run there, and so do their after
// functions), so it needs no lock.
type flusherState struct {
	// parked counts the receipts parked on disk per id map key (upstream NUL upstream id), so a
	// settle looks for early receipts only when there can be some: most never see one, and the
	// look is a cursor seek. Rebuilt at Open; pending holds the current transaction's changes,
	// applied when it commits and dropped when it rolls back.
	parked  map[string]int
	pending map[string]int

	// Cursors of the current transaction, reused across its ops: every Bucket.Get or Delete
	// allocates a cursor and its stack, a Seek on one already made does not.
	tx   *bbolt.Tx
	msgs *bbolt.Cursor
}

// begin starts a transaction's state.
func (f *flusherState) begin(tx *bbolt.Tx) {
	f.tx, f.msgs = tx, nil
	clear(f.pending)
}

// end closes a transaction's state, committed or not.
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
	f.tx, f.msgs = nil, nil
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

// msg returns the value of message id, nil if there is none, through the transaction's cursor.
func (f *flusherState) msg(tx *bbolt.Tx, id []byte) []byte {
	if f.tx != tx || f.msgs == nil {
		f.tx, f.msgs = tx, tx.Bucket(bMsg).Cursor()
	}
	if k, v := f.msgs.Seek(id); bytes.Equal(k, id) {
		return v
	}
	return nil
}

// countParked builds the parked index from the park bucket (keys ukey NUL seq(8)).
func countParked(tx *bbolt.Tx) map[string]int {
	m := map[string]int{}
	c := tx.Bucket(bPark).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) > 9 {
			m[string(k[:len(k)-9])]++
		}
	}
	return m
}
