package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"
)

// The store's reads and writes go through a txn: a layered view of one batch's write set
// (nil for readers), the memtables of committed batches not yet checkpointed (newest first),
// and a bbolt read transaction under them. Its buckets and cursors answer like bbolt's, so the
// ops keep bbolt's shape; what a batch writes stays in its write set until the group commit
// logs it, then moves into the active memtable.

// kv is one key of a memtable bucket: a value, or a tombstone hiding the key below. fresh
// says no layer below the memtable has the key (it was first put here under a key the store
// never had, a new sequence number): a tombstone over it then removes it instead, so a queue
// entry added and removed within one checkpoint interval never reaches bbolt, not even as a
// tombstone to seek.
type kv struct {
	k, v  []byte
	del   bool
	fresh bool
}

// kvOverhead is what a memtable counts per key beyond its bytes: the item and its share of
// the run holding it.
const kvOverhead = 64

// mbucket is one bucket's changes in a memtable. A write set keeps one batch's few hundred
// keys per bucket in one sorted slice, w, mostly appended (keys mostly rise), and reused from
// batch to batch. Active and frozen keep the write sets' slices as they come, as sorted runs:
// merging a batch is handing its slice over, where a tree cost an insertion per key. A run is
// merged into the one before it when that is cheap (it starts near the end of the older one,
// as rising keys do) or when it is at least half as long (so a bucket keeps a handful of
// runs, about log2 of its batches, and a key is copied that many times at most); see addRun.
type mbucket struct {
	top, sub []byte // sub is nil for a top-level bucket
	w        []kv   // a write set's keys, in order
	runs     [][]kv // a memtable's runs, oldest first; a newer run's entry hides an older one's
	ver      uint64 // counts insertions into w, so a cursor over w finds its place
	handed   bool   // w became a memtable's run: the write set's next batch needs another
	spare    []kv   // the array of a run merged away, for the write set's next w
	seq      uint64 // the bucket's sequence, when hasSeq
	hasSeq   bool
}

func newMBucket(top, sub []byte) *mbucket { return &mbucket{top: top, sub: sub} }

// len is how many entries the bucket holds, counting in a memtable those hidden by newer runs.
func (mb *mbucket) len() int {
	n := len(mb.w)
	for _, r := range mb.runs {
		n += len(r)
	}
	return n
}

// search returns where key is or would be in the sorted run r.
func search(r []kv, key []byte) (int, bool) {
	if n := len(r); n > 0 {
		if c := bytes.Compare(r[n-1].k, key); c < 0 {
			return n, false // the common case: a rising key
		} else if c == 0 {
			return n - 1, true
		}
	}
	return slices.BinarySearchFunc(r, key, func(e kv, k []byte) int { return bytes.Compare(e.k, k) })
}

func (mb *mbucket) get(key []byte) (kv, bool) {
	if i, ok := search(mb.w, key); ok {
		return mb.w[i], true
	}
	for j := len(mb.runs) - 1; j >= 0; j-- {
		r := mb.runs[j]
		// A key past a run's ends, as a new message id is past every run's, costs a comparison.
		if len(r) == 0 || bytes.Compare(key, r[0].k) < 0 {
			continue
		}
		if i, ok := search(r, key); ok {
			return r[i], true
		}
	}
	return kv{}, false
}

// over is e set over old, the same key's entry below it in the same memtable: a key put fresh
// stays fresh when put again; a tombstone over a fresh key removes both (false).
func over(old, e kv) (kv, bool) {
	if e.del && old.fresh {
		return kv{}, false
	}
	e.fresh = e.fresh || old.fresh && !e.del
	return e, true
}

// set sets e in a write set and returns how many bytes the bucket's count changes by.
func (mb *mbucket) set(e kv) int {
	i, ok := search(mb.w, e.k)
	if !ok {
		mb.w = slices.Insert(mb.w, i, e)
		mb.ver++
		return kvSize(e)
	}
	old := mb.w[i]
	e, keep := over(old, e)
	if !keep {
		mb.w = slices.Delete(mb.w, i, i+1)
		mb.ver++
		return -kvSize(old)
	}
	mb.w[i] = e
	return kvSize(e) - kvSize(old)
}

func kvSize(e kv) int { return len(e.k) + len(e.v) + kvOverhead }

// addRun adds the sorted run r, newer than the bucket's runs, to a memtable bucket, and
// returns how many bytes the bucket's count changes by. The bucket keeps r: it must not
// change afterwards. When r was merged into an older run at once, its array is free again
// and returned as spare (emptied), for a write set's next batch.
func (mb *mbucket) addRun(r []kv) (d int, spare []kv) {
	for _, e := range r {
		d += kvSize(e)
	}
	mb.runs = append(mb.runs, r)
	for n := len(mb.runs); n >= 2; n = len(mb.runs) {
		a, b := mb.runs[n-2], mb.runs[n-1]
		if len(b) > 0 && len(a) > 0 {
			// What merging moves: b, and the entries of a from where b starts.
			from, _ := search(a, b[0].k)
			if len(a)-from > 8*len(b) && 2*len(b) < len(a) {
				break
			}
		}
		merged, dd := mergeRun(a, b)
		d += dd
		mb.runs[n-2], mb.runs[n-1] = merged, nil
		mb.runs = mb.runs[:n-1]
		if sameArray(b, r) && !sameArray(merged, r) {
			spare = r[:cap(r)]
			clear(spare) // do not pin what was copied out of it
			spare = spare[:0]
		}
	}
	return d, spare
}

// sameArray reports whether a and b share their underlying array.
func sameArray(a, b []kv) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:cap(a)][0] == &b[:cap(b)][0]
}

// mergeRun merges the newer run b into a, in place from the back (a grows when it must), and
// returns the merged run and how many bytes the entries it dropped counted. Entries of a
// before b's first key are not touched.
func mergeRun(a, b []kv) ([]kv, int) {
	if len(a) == 0 {
		return b, 0
	}
	if len(b) == 0 {
		return a, 0
	}
	la, lb := len(a), len(b)
	from, _ := search(a, b[0].k)
	if cap(a) < la+lb {
		// Room to spare: the run will take the next merges in place (the runs of a bucket
		// merge like a binary counter, so this one is met by one as long as itself).
		a = append(make([]kv, 0, 2*(la+lb)), a...)
	}
	a = a[:la+lb]
	i, j, w := la-1, lb-1, la+lb-1
	d := 0
	for j >= 0 {
		if i >= from {
			if c := bytes.Compare(a[i].k, b[j].k); c > 0 {
				a[w] = a[i]
				i, w = i-1, w-1
				continue
			} else if c == 0 {
				e, keep := over(a[i], b[j])
				d -= kvSize(a[i])
				if keep {
					a[w] = e
					w--
				} else {
					d -= kvSize(b[j])
				}
				i, j = i-1, j-1
				continue
			}
		}
		a[w] = b[j]
		j, w = j-1, w-1
	}
	// a[:i+1] stayed where it was and the merged tail starts at w+1: close the gap the dropped
	// entries left by moving the tail down (it is the short part).
	if gap := w - i; gap > 0 {
		n := copy(a[i+1:], a[w+1:])
		clear(a[i+1+n:]) // do not pin what moved
		a = a[:i+1+n]
	}
	return a, d
}

// scan calls fn for every entry in key order until it returns false: a write set's, or a
// memtable's runs merged, a newer run's entry over an older one's.
func (mb *mbucket) scan(fn func(e kv) bool) {
	if len(mb.runs) == 0 {
		for _, e := range mb.w {
			if !fn(e) {
				return
			}
		}
		return
	}
	if len(mb.runs) == 1 {
		for _, e := range mb.runs[0] {
			if !fn(e) {
				return
			}
		}
		return
	}
	at := make([]int, len(mb.runs))
	for {
		var min []byte
		for j, r := range mb.runs {
			if at[j] < len(r) && (min == nil || bytes.Compare(r[at[j]].k, min) < 0) {
				min = r[at[j]].k
			}
		}
		if min == nil {
			return
		}
		var cur kv
		have := false
		for j, r := range mb.runs { // oldest first, each set over the ones before
			if at[j] < len(r) && bytes.Equal(r[at[j]].k, min) {
				e := r[at[j]]
				at[j]++
				if have {
					e, have = over(cur, e)
					if !have {
						continue
					}
				}
				cur, have = e, true
			}
		}
		if have && !fn(cur) {
			return
		}
	}
}

// clear empties a write set's bucket for its next batch.
func (mb *mbucket) clear() {
	clear(mb.w) // the slices are the memtable's now; do not pin them
	mb.w = mb.w[:0]
	mb.ver++
}

// memtable holds changes by bucket path (top, or top NUL sub).
type memtable struct {
	b    map[string]*mbucket
	ws   bool      // a write set: its buckets are sorted slices
	size int       // bytes counted for the cap
	lsn  uint64    // the last WAL record merged in
	born time.Time // when its first change came
}

func newMemtable() *memtable { return &memtable{b: map[string]*mbucket{}} }

// newWriteSet returns a memtable for one batch's changes.
func newWriteSet() *memtable { return &memtable{b: map[string]*mbucket{}, ws: true} }

// bucket returns the memtable's bucket at path, creating it when create is set.
func (m *memtable) bucket(path string, top, sub []byte, create bool) *mbucket {
	mb := m.b[path]
	if mb == nil && create {
		mb = newMBucket(top, sub)
		m.b[path] = mb
	}
	return mb
}

func (m *memtable) empty() bool { return len(m.b) == 0 }

// reset empties a write set for the next batch, keeping its slices.
func (m *memtable) reset() {
	for p, mb := range m.b {
		if mb.len() == 0 && !mb.hasSeq {
			delete(m.b, p) // a bucket not touched last time is probably not touched again
			continue
		}
		if mb.handed {
			if mb.spare != nil {
				mb.w, mb.spare = mb.spare, nil
			} else {
				mb.w = make([]kv, 0, cap(mb.w))
			}
			mb.handed = false
			mb.ver++
		} else {
			mb.clear()
		}
		mb.hasSeq = false
	}
	m.size = 0
}

// merge moves the write set ws, logged as record lsn, into m: each bucket's slice becomes a
// run of m's (reset gives the write set a new one).
func (m *memtable) merge(ws *memtable, lsn uint64, now time.Time) {
	if m.size == 0 && m.born.IsZero() {
		m.born = now
	}
	for p, wb := range ws.b {
		if len(wb.w) == 0 && !wb.hasSeq {
			continue
		}
		mb := m.bucket(p, wb.top, wb.sub, true)
		if m.ws {
			// A write set into a write set (the ops of a failed batch, one by one): its
			// slice is written again, so the keys are copied.
			for _, e := range wb.w {
				m.size += mb.set(e)
			}
		} else if len(wb.w) > 0 {
			d, spare := mb.addRun(wb.w)
			m.size += d
			wb.handed, wb.spare = true, spare
		}
		if wb.hasSeq {
			mb.seq, mb.hasSeq = wb.seq, true
		}
	}
	m.lsn = lsn
}

// sortedBuckets returns m's buckets in path order, top-level ones first among equals, so a
// checkpoint or a record creates nested buckets in a fixed order.
func (m *memtable) sortedBuckets() []*mbucket {
	out := make([]*mbucket, 0, len(m.b))
	for _, mb := range m.b {
		out = append(out, mb)
	}
	slices.SortFunc(out, func(a, b *mbucket) int {
		if c := bytes.Compare(a.top, b.top); c != 0 {
			return c
		}
		return bytes.Compare(a.sub, b.sub)
	})
	return out
}

// Record body: per bucket, 'B' uvarint(len top) top uvarint(len sub)+1 sub (0: top-level),
// then 'S' seq(8) when the sequence moved, then 'P' uvarint(len k) k uvarint(len v) v for a
// value and 'D' uvarint(len k) k for a tombstone.
const (
	recBucket = 'B'
	recSeq    = 'S'
	recPut    = 'P'
	recDel    = 'D'
)

// appendRecord encodes the write set as one WAL record body.
func appendRecord(b []byte, ws *memtable) []byte {
	for _, mb := range ws.b {
		if mb.len() == 0 && !mb.hasSeq {
			continue
		}
		b = append(b, recBucket)
		b = binary.AppendUvarint(b, uint64(len(mb.top)))
		b = append(b, mb.top...)
		if mb.sub == nil {
			b = binary.AppendUvarint(b, 0)
		} else {
			b = binary.AppendUvarint(b, uint64(len(mb.sub))+1)
			b = append(b, mb.sub...)
		}
		if mb.hasSeq {
			b = binary.BigEndian.AppendUint64(append(b, recSeq), mb.seq)
		}
		mb.scan(func(e kv) bool {
			if e.del {
				b = append(b, recDel)
				b = binary.AppendUvarint(b, uint64(len(e.k)))
				b = append(b, e.k...)
				return true
			}
			b = append(b, recPut)
			b = binary.AppendUvarint(b, uint64(len(e.k)))
			b = append(b, e.k...)
			b = binary.AppendUvarint(b, uint64(len(e.v)))
			b = append(b, e.v...)
			return true
		})
	}
	return b
}

var errRecord = errors.New("embedded: bad WAL record")

// applyRecord writes a WAL record body into bbolt.
func applyRecord(tx *bbolt.Tx, body []byte) error {
	var idx []kv
	if err := applyRecordIndex(tx, body, &idx); err != nil {
		return err
	}
	_, err := writeIndex(tx, indexChanges(idx))
	return err
}

// applyRecordIndex writes a WAL record body into bbolt (replay at Open), except for its time
// index entries, which it appends to idx, for writeIndex to write as blocks.
func applyRecordIndex(tx *bbolt.Tx, body []byte, idx *[]kv) error {
	var (
		bb    *bbolt.Bucket
		index bool // bb is bIdxAcc
	)
	bytesOf := func() ([]byte, bool) {
		n, w := binary.Uvarint(body)
		if w <= 0 || n > uint64(len(body)-w) {
			return nil, false
		}
		v := body[w : w+int(n)]
		body = body[w+int(n):]
		return v, true
	}
	for len(body) > 0 {
		tag := body[0]
		body = body[1:]
		switch tag {
		case recBucket:
			top, ok := bytesOf()
			if !ok {
				return errRecord
			}
			n, w := binary.Uvarint(body)
			if w <= 0 || n > uint64(len(body)-w)+1 {
				return errRecord
			}
			body = body[w:]
			index = n == 0 && bytes.Equal(top, bIdxAcc)
			if bb = tx.Bucket(top); bb == nil {
				return fmt.Errorf("%w: no bucket %q", errRecord, top)
			}
			if n > 0 {
				sub := body[:n-1]
				body = body[n-1:]
				var err error
				if bb, err = bb.CreateBucketIfNotExists(bytes.Clone(sub)); err != nil {
					return err
				}
			}
		case recSeq:
			if bb == nil || len(body) < 8 {
				return errRecord
			}
			if err := bb.SetSequence(binary.BigEndian.Uint64(body)); err != nil {
				return err
			}
			body = body[8:]
		case recPut:
			k, ok1 := bytesOf()
			v, ok2 := bytesOf()
			if bb == nil || !ok1 || !ok2 {
				return errRecord
			}
			// body is the replayed file's bytes, alive until the transaction commits.
			if index {
				*idx = append(*idx, kv{k: k, v: v})
				continue
			}
			if err := bb.Put(k, v); err != nil {
				return err
			}
		case recDel:
			k, ok := bytesOf()
			if bb == nil || !ok {
				return errRecord
			}
			if index {
				*idx = append(*idx, kv{k: k, del: true})
				continue
			}
			if err := bb.Delete(k); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: tag %d", errRecord, tag)
		}
	}
	return nil
}

// writeMemtable writes m into bbolt (a checkpoint) and returns how many keys it put.
func writeMemtable(tx *bbolt.Tx, m *memtable) (int, error) {
	puts := 0
	for _, mb := range m.sortedBuckets() {
		if mb.sub == nil && bytes.Equal(mb.top, bIdxAcc) {
			n, err := writeIndex(tx, mb)
			if err != nil {
				return puts, err
			}
			puts += n
			continue
		}
		bb := tx.Bucket(mb.top)
		if bb == nil {
			return puts, fmt.Errorf("%w: no bucket %q", errRecord, mb.top)
		}
		if mb.sub != nil {
			var err error
			if bb, err = bb.CreateBucketIfNotExists(mb.sub); err != nil {
				return puts, err
			}
		}
		// Keys mostly arrive in order (sequences, time index), so full pages are the rule.
		bb.FillPercent = 0.9
		var (
			err error
			c   *bbolt.Cursor // one for the bucket's tombstones: bbolt's Delete makes one each
		)
		mb.scan(func(e kv) bool {
			if e.del {
				// A key added and removed since the last checkpoint is not in bbolt: this is
				// one cursor seek and no page written.
				if c == nil {
					c = bb.Cursor()
				}
				if k, _ := c.Seek(e.k); bytes.Equal(k, e.k) {
					err = c.Delete()
				}
			} else {
				err = bb.Put(e.k, e.v)
				puts++
			}
			return err == nil
		})
		if err != nil {
			return puts, err
		}
		if mb.hasSeq {
			if err := bb.SetSequence(mb.seq); err != nil {
				return puts, err
			}
		}
	}
	return puts, nil
}

var errReadOnly = errors.New("embedded: write in a read-only view")

// txn is a layered view; see the top of this file.
type txn struct {
	rtx  *bbolt.Tx
	mems []*memtable // newest first: a batch's, pending, active, frozen
	ws   *memtable   // this batch's write set; nil for readers
	// cache holds the bucket handles made so far; few, so a slice.
	cache    []*bucket
	cacheBuf [8]*bucket
	// handles is where newBucket takes the first handles from: a batch makes about five.
	handles [6]bucket
	nb      int
	buf     [2]*memtable
}

func (t *txn) newBucket() *bucket {
	if t.nb < len(t.handles) {
		t.nb++
		return &t.handles[t.nb-1]
	}
	return &bucket{}
}

// Bucket returns top-level bucket name (they all exist from Open on).
func (t *txn) Bucket(name []byte) *bucket {
	if b := t.cached(name, nil); b != nil {
		return b
	}
	b := t.newBucket()
	*b = bucket{t: t, top: name, path: topPath(name)}
	b.resolve()
	if t.cache == nil {
		t.cache = t.cacheBuf[:0]
	}
	t.cache = append(t.cache, b)
	return b
}

// topPaths are the top-level buckets' paths, so a handle's costs no allocation.
var topPaths = func() []string {
	var out []string
	for _, b := range [][]byte{bMsg, bIdx, bIdxAcc, bIdxBlk, bMap, bMapGen, bPark, bRcpt, bExp, bLost, bQueues, bConfig, bMeta} {
		out = append(out, string(b))
	}
	return out
}()

func topPath(name []byte) string {
	for _, p := range topPaths {
		if p == string(name) {
			return p
		}
	}
	return string(name)
}

// cached returns the txn's handle of bucket top/sub, nil when it has none yet. A batch asks
// for the same few buckets hundreds of times; bbolt opens a read transaction's bucket anew
// (allocating) on every call.
func (t *txn) cached(top, sub []byte) *bucket {
	for _, b := range t.cache {
		if bytes.Equal(b.top, top) && bytes.Equal(b.sub, sub) && (b.sub == nil) == (sub == nil) {
			return b
		}
	}
	return nil
}

// bucket is a bucket seen through a txn.
type bucket struct {
	t        *txn
	top, sub []byte
	path     string
	parent   *bucket       // a nested bucket's, where its bbolt bucket is found
	bb       *bbolt.Bucket // nil when bbolt does not have it (yet); see disk
	bbFound  bool          // bb was looked up
	bc       diskCursor    // for Get: bbolt's own Get allocates a cursor each time
	mems     [4]*mbucket   // the memtables' (nil when untouched there)
	wb       *mbucket      // the write set's, made on first write
}

func (b *bucket) resolve() {
	for i, m := range b.t.mems {
		b.mems[i] = m.b[b.path]
	}
	if b.t.ws != nil {
		b.wb = b.t.ws.b[b.path]
	}
}

// disk returns bbolt's bucket, nil when bbolt does not have it. It is looked up on first use:
// most ops find what they read in the memtables and write only to the write set, and opening
// a bucket of a bbolt read transaction allocates (a cursor's stack, the bucket) each time.
func (b *bucket) disk() *bbolt.Bucket {
	if !b.bbFound {
		b.bbFound = true
		if b.parent == nil {
			b.bb = b.t.rtx.Bucket(b.top)
		} else if p := b.parent.disk(); p != nil {
			b.bb = p.Bucket(b.sub)
		}
	}
	return b.bb
}

func (b *bucket) exists() bool {
	if b.wb != nil {
		return true
	}
	for _, mb := range b.mems {
		if mb != nil {
			return true
		}
	}
	return b.disk() != nil
}

// Bucket returns the nested bucket name, nil if it does not exist.
func (b *bucket) Bucket(name []byte) *bucket {
	n := b.nested(name)
	if !n.exists() {
		return nil
	}
	return n
}

func (b *bucket) nested(name []byte) *bucket {
	if n := b.t.cached(b.top, name); n != nil {
		return n
	}
	// The path and the name share one copy: the caller's slice may change, the handle is kept.
	p := make([]byte, 0, len(b.top)+1+len(name))
	p = append(append(append(p, b.top...), 0), name...)
	n := b.t.newBucket()
	*n = bucket{t: b.t, top: b.top, sub: p[len(b.top)+1:], path: unsafe.String(&p[0], len(p)), parent: b}
	n.resolve()
	if n.exists() {
		b.t.cache = append(b.t.cache, n)
	}
	return n
}

// CreateBucketIfNotExists returns the nested bucket name, creating it in the write set.
func (b *bucket) CreateBucketIfNotExists(name []byte) (*bucket, error) {
	if b.t.ws == nil {
		return nil, errReadOnly
	}
	n := b.nested(name)
	if !n.exists() {
		n.wb = b.t.ws.bucket(n.path, b.top, n.sub, true)
		// An empty bucket must reach bbolt too: it is logged with its sequence.
		n.wb.hasSeq = true
		b.t.cache = append(b.t.cache, n)
	}
	return n, nil
}

func (b *bucket) write() (*mbucket, error) {
	if b.t.ws == nil {
		return nil, errReadOnly
	}
	if b.wb == nil {
		b.wb = b.t.ws.bucket(b.path, b.top, b.sub, true)
	}
	return b.wb, nil
}

// Get returns key's value, nil when there is none.
func (b *bucket) Get(key []byte) []byte {
	if v, ok := b.memGet(key); ok {
		return v
	}
	if k, v := b.diskSeek(key); bytes.Equal(k, key) {
		return v
	}
	return nil
}

// memGet looks key up in the memtables only: its value (nil for a tombstone) and true when
// one of them has it.
func (b *bucket) memGet(key []byte) ([]byte, bool) {
	if b.wb != nil {
		if e, ok := b.wb.get(key); ok {
			return value(e), true
		}
	}
	for _, mb := range b.mems {
		if mb != nil {
			if e, ok := mb.get(key); ok {
				return value(e), true
			}
		}
	}
	return nil, false
}

// diskSeek returns bbolt's first key at or after key, with its value; nil when none.
func (b *bucket) diskSeek(key []byte) ([]byte, []byte) {
	if b.bc == nil {
		if b.bc = b.diskCursor(); b.bc == nil {
			return nil, nil
		}
	}
	return b.bc.Seek(key)
}

func value(e kv) []byte {
	if e.del {
		return nil
	}
	return e.v
}

// Put sets key to value. Neither may change afterwards: the memtable keeps them.
func (b *bucket) Put(key, value []byte) error { return b.put(key, value, false) }

// PutNew is Put of a key no layer has: one made from a sequence number NextSequence returned.
// Removed before its memtable is checkpointed, it leaves nothing behind.
func (b *bucket) PutNew(key, value []byte) error { return b.put(key, value, true) }

func (b *bucket) put(key, value []byte, fresh bool) error {
	wb, err := b.write()
	if err != nil {
		return err
	}
	if len(key) == 0 {
		return bbolt.ErrKeyRequired
	}
	if value == nil {
		value = []byte{}
	}
	wb.set(kv{k: key, v: value, fresh: fresh})
	return nil
}

// Delete removes key (a tombstone over the layers below).
func (b *bucket) Delete(key []byte) error {
	wb, err := b.write()
	if err != nil {
		return err
	}
	wb.set(kv{k: key, del: true})
	return nil
}

// Sequence returns the bucket's sequence number.
func (b *bucket) Sequence() uint64 {
	if b.wb != nil && b.wb.hasSeq {
		return b.wb.seq
	}
	for _, mb := range b.mems {
		if mb != nil && mb.hasSeq {
			return mb.seq
		}
	}
	if bb := b.disk(); bb != nil {
		return bb.Sequence()
	}
	return 0
}

// NextSequence increments and returns the bucket's sequence.
func (b *bucket) NextSequence() (uint64, error) {
	n := b.Sequence() + 1
	wb, err := b.write()
	if err != nil {
		return 0, err
	}
	wb.seq, wb.hasSeq = n, true
	return n, nil
}

// ForEach calls fn for every key in order.
func (b *bucket) ForEach(fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// ForEachBucket calls fn with the name of every nested bucket, in order.
func (b *bucket) ForEachBucket(fn func(k []byte) error) error {
	var names [][]byte
	if bb := b.disk(); bb != nil {
		if err := bb.ForEachBucket(func(k []byte) error {
			names = append(names, k)
			return nil
		}); err != nil {
			return err
		}
	}
	layers := append([]*memtable{}, b.t.mems...)
	if b.t.ws != nil {
		layers = append(layers, b.t.ws)
	}
	for _, m := range layers {
		for _, mb := range m.b {
			if mb.sub != nil && bytes.Equal(mb.top, b.top) {
				names = append(names, mb.sub)
			}
		}
	}
	slices.SortFunc(names, bytes.Compare)
	names = slices.CompactFunc(names, bytes.Equal)
	for _, n := range names {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

// Cursor returns a cursor over the merged layers.
func (b *bucket) Cursor() *cursor {
	c := &cursor{}
	if b.wb != nil && len(b.wb.w) > 0 {
		c.mem = append(c.mem, memIter{mb: b.wb})
	}
	for _, mb := range b.mems {
		if mb != nil {
			if len(mb.w) > 0 { // pending, a write set nobody writes to any more
				c.mem = append(c.mem, memIter{w: mb.w})
			}
			for j := len(mb.runs) - 1; j >= 0; j-- { // newest first
				if len(mb.runs[j]) > 0 {
					c.mem = append(c.mem, memIter{w: mb.runs[j]})
				}
			}
		}
	}
	c.bc = b.diskCursor()
	return c
}

// diskCursor is a cursor over bbolt's layer: a *bbolt.Cursor, or the time index's blocks.
type diskCursor interface {
	First() ([]byte, []byte)
	Seek(k []byte) ([]byte, []byte)
	Next() ([]byte, []byte)
}

// diskCursor returns a new cursor over what bbolt holds of the bucket, nil when it holds
// nothing: for bIdxAcc, the blocks of bIdxBlk (index.go).
func (b *bucket) diskCursor() diskCursor {
	if b.parent == nil && bytes.Equal(b.top, bIdxAcc) {
		if bb := b.t.rtx.Bucket(bIdxBlk); bb != nil {
			return &blockCursor{c: bb.Cursor()}
		}
		return nil
	}
	if bb := b.disk(); bb != nil {
		return bb.Cursor()
	}
	return nil
}

// memIter walks one sorted slice by index: a memtable's run, which does not change under it,
// or a write set's, which the op using the cursor may change.
type memIter struct {
	mb  *mbucket // the write set's bucket; nil for a run
	w   []kv
	i   int
	cur []byte // the key at i
	ver uint64 // mb.ver when i was found
	ok  bool
}

func (m *memIter) first() bool { return m.at(0) }

func (m *memIter) seek(k []byte) bool {
	if m.mb != nil {
		m.w = m.mb.w
	}
	i, _ := search(m.w, k)
	return m.at(i)
}

// at moves the iterator to index i.
func (m *memIter) at(i int) bool {
	if m.mb != nil {
		m.w, m.ver = m.mb.w, m.mb.ver
	}
	m.i = i
	if i >= len(m.w) {
		m.cur = nil
		return false
	}
	m.cur = m.w[i].k
	return true
}

// refind moves a write set's iterator back to its key when the op using the cursor inserted
// keys since (a delete of a key from a layer below inserts a tombstone), which shifted the
// slice.
func (m *memIter) refind() {
	if m.ok && m.mb != nil && m.ver != m.mb.ver {
		i, _ := search(m.mb.w, m.cur)
		m.ok = m.at(i)
	}
}

func (m *memIter) item() kv { return m.w[m.i] }

func (m *memIter) next() bool { return m.at(m.i + 1) }

// cursor merges memtable iterators (in priority order: write set, active, frozen) with a
// bbolt cursor (lowest). The smallest key wins; on equal keys the higher layer's entry
// counts, a tombstone hiding the key.
type cursor struct {
	mem    []memIter
	bc     diskCursor
	bk, bv []byte
}

// First moves to the first key.
func (c *cursor) First() ([]byte, []byte) {
	for i := range c.mem {
		c.mem[i].ok = c.mem[i].first()
	}
	if c.bc != nil {
		c.bk, c.bv = c.bc.First()
	}
	return c.step()
}

// Seek moves to the first key at or after k.
func (c *cursor) Seek(k []byte) ([]byte, []byte) {
	for i := range c.mem {
		c.mem[i].ok = c.mem[i].seek(k)
	}
	if c.bc != nil {
		c.bk, c.bv = c.bc.Seek(k)
	}
	return c.step()
}

// Next moves to the next key.
func (c *cursor) Next() ([]byte, []byte) { return c.step() }

// step returns the smallest visible key of the layers' current positions and moves every
// layer holding it past it.
func (c *cursor) step() ([]byte, []byte) {
	for i := range c.mem {
		c.mem[i].refind()
	}
	for {
		var min []byte
		for i := range c.mem {
			if m := &c.mem[i]; m.ok {
				if k := m.item().k; min == nil || bytes.Compare(k, min) < 0 {
					min = k
				}
			}
		}
		if c.bk != nil && (min == nil || bytes.Compare(c.bk, min) < 0) {
			min = c.bk
		}
		if min == nil {
			return nil, nil
		}
		var (
			v    []byte
			del  bool
			done bool
		)
		for i := range c.mem {
			m := &c.mem[i]
			if !m.ok {
				continue
			}
			if e := m.item(); bytes.Equal(e.k, min) {
				if !done {
					v, del, done = e.v, e.del, true
				}
				m.ok = m.next()
			}
		}
		if c.bk != nil && bytes.Equal(c.bk, min) {
			if !done {
				v, done = c.bv, true
			}
			c.bk, c.bv = c.bc.Next()
		}
		if !del {
			return min, v
		}
	}
}

// changed reports whether a write set holds anything to log.
func (m *memtable) changed() bool {
	for _, mb := range m.b {
		if mb.len() > 0 || mb.hasSeq {
			return true
		}
	}
	return false
}
