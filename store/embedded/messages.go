package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/smppgw/smppgw/store"
)

// AcceptMessage writes m, its index entries and one queue entry per part in one transaction.
func (s *Store) AcceptMessage(ctx context.Context, m *store.Message) error {
	o, err := s.newAcceptOp(m)
	if err != nil {
		return err
	}
	done, err := s.wq.doW(ctx, s, o)
	if done {
		o.release()
	}
	return err
}

// newAcceptOp validates m and makes AcceptMessage's write of it; nothing of m is kept.
func (s *Store) newAcceptOp(m *store.Message) (*acceptOp, error) {
	if err := store.ValidateMessage(m); err != nil {
		return nil, err
	}
	store.PrepareAccept(m, nowUTC())
	o := acceptPool.Get().(*acceptOp)
	*o = acceptOp{s: s, q: store.Queue{Kind: store.SubmitQueue, Name: m.Upstream}}
	// What the memtable keeps (the record, the payloads, the keys, room for the entries'
	// sequence keys) shares one allocation of its size: encoded into scratch first.
	sc := scratchPool.Get().(*[]byte)
	enc := store.AppendMessage((*sc)[:0], m)
	nrec := len(enc)
	o.payloads = o.one[:0]
	if len(m.Parts) > len(o.one) {
		o.payloads = make([][]byte, 0, len(m.Parts))
	}
	ends := o.oneEnd[:0]
	for i := range m.Parts {
		enc = store.AppendPartTask(enc, store.NewPartTask(m, i))
		ends = append(ends, len(enc))
	}
	ikeyLen := 8 + len(m.ID)
	b := make([]byte, 0, len(enc)+len(m.ID)+ikeyLen+len(m.Account)+1+ikeyLen+8*len(m.Parts))
	b = append(b, enc...)
	*sc = enc
	scratchPool.Put(sc)
	o.rec = b[:nrec:nrec]
	start := nrec
	for _, end := range ends {
		o.payloads = append(o.payloads, b[start:end:end])
		start = end
	}
	n := len(b)
	b = append(b, m.ID...)
	o.id = b[n:len(b):len(b)]
	n = len(b)
	b = binary.BigEndian.AppendUint64(b, uint64(m.CreatedAt.UnixNano()))
	b = append(b, m.ID...)
	o.ikey = b[n:len(b):len(b)]
	n = len(b)
	b = append(append(append(b, m.Account...), 0), o.ikey...)
	o.acckey = b[n:len(b):len(b)]
	o.seqKeys = b[len(b):]
	o.seqs = o.oneSeq[:0]
	if !s.f.keptFull() {
		o.kept = keptCopy(m)
	}
	return o, nil
}

// release gives o back once the group commit is done with it.
func (o *acceptOp) release() {
	*o = acceptOp{} // the memtable keeps the bytes, not the op
	acceptPool.Put(o)
}

// acceptOp is AcceptMessage's write.
type acceptOp struct {
	s                *Store
	q                store.Queue
	rec              []byte
	id, ikey, acckey []byte
	payloads         [][]byte
	seqs             []uint64
	seqKeys          []byte    // room for the entries' keys, 8 bytes each
	one              [1][]byte // payloads of a message of one part
	oneSeq           [1]uint64
	oneEnd           [1]int
	kept             *keptMsg // m's decoded form, for its settles
}

// acceptPool and settlePool hold the hot writes' ops for their next use: an op is free again
// once the group commit is done with it.
var (
	acceptPool = sync.Pool{New: func() any { return new(acceptOp) }}
	settlePool = sync.Pool{New: func() any { return new(settleOp) }}
)

// scratchPool holds buffers to encode into before the one allocation a write keeps.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

func (o *acceptOp) run(tx *txn) error {
	if o.s.f.msg(tx, o.id) != nil {
		return fmt.Errorf("%w: message %s", store.ErrExists, o.id)
	}
	if err := tx.Bucket(bMsg).Put(o.id, o.rec); err != nil {
		return dirty(err)
	}
	if err := tx.Bucket(bIdxAcc).Put(o.acckey, nil); err != nil {
		return dirty(err)
	}
	var err error
	if o.seqs, err = o.s.putQueue(tx, o.q, o.payloads, o.seqs[:0], o.seqKeys); err != nil {
		return dirty(err)
	}
	if o.kept != nil {
		o.s.f.keep(o.kept.m.ID, o.kept)
	}
	return nil
}

func (o *acceptOp) done() { o.s.published(o.q, o.seqs, 0, o.payloads) }

func accKey(account string, ikey []byte) []byte {
	b := make([]byte, 0, len(account)+1+len(ikey))
	b = append(append(b, account...), 0)
	return append(b, ikey...)
}

// putQueue appends payloads to queue q's bucket and returns their sequence numbers. keys,
// when not nil, has room for the entries' keys (8 bytes each), which the memtable keeps.
func (s *Store) putQueue(tx *txn, q store.Queue, payloads [][]byte, seqs []uint64, keys []byte) ([]uint64, error) {
	qb, err := tx.Bucket(bQueues).CreateBucketIfNotExists(s.f.queueBucket(q))
	if err != nil {
		return nil, err
	}
	for _, p := range payloads {
		seq, err := qb.NextSequence()
		if err != nil {
			return nil, err
		}
		var key []byte
		if cap(keys) >= 8 {
			key, keys = binary.BigEndian.AppendUint64(keys[:0], seq)[:8:8], keys[8:8]
		} else {
			key = be64(seq)
		}
		if err := qb.PutNew(key, p); err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	return seqs, nil
}

func queueBucket(q store.Queue) []byte {
	letter := byte('p')
	if q.Kind == store.DeliverQueue {
		letter = 'd'
	}
	return append([]byte{letter, 0}, q.Name...)
}

// GetMessage reads one message.
func (s *Store) GetMessage(ctx context.Context, id string) (*store.Message, error) {
	var m *store.Message
	err := s.view(func(tx *txn) error {
		var err error
		m, err = getMsg(tx, id)
		return err
	})
	return m, err
}

func getMsg(tx *txn, id string) (*store.Message, error) {
	return decodeMsg(id, tx.Bucket(bMsg).Get([]byte(id)))
}

// decodeMsg decodes the record v of message id; nil is ErrNotFound.
func decodeMsg(id string, v []byte) (*store.Message, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: message %s", store.ErrNotFound, id)
	}
	m, err := store.DecodeMessage(v)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	return m, nil
}

// scanBudget bounds how many index entries one page may look at when a status filter skips
// most of them; the page then ends early with a cursor and the caller asks again.
const scanBudget = 20 * store.MaxListLimit

// ListMessages walks the accounts' time indexes (only f.Account's when it is set), merged in
// key order.
func (s *Store) ListMessages(ctx context.Context, f store.MessageFilter) ([]*store.Message, string, error) {
	limit := f.PageLimit()
	var start []byte // the first index key (without its account) to look at
	if !f.From.IsZero() {
		start = store.IndexKey(f.From, "")
	}
	if f.Cursor != "" {
		after, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		if bytes.Compare(after, start) >= 0 {
			start = append(after, 0) // the first key after the cursor
		}
	}
	var end []byte
	if !f.To.IsZero() {
		end = store.IndexKey(f.To, "")
	}
	var out []*store.Message
	var next string
	err := s.view(func(tx *txn) error {
		accounts := []string{f.Account}
		if f.Account == "" {
			accounts = indexAccounts(tx)
		}
		ix := newIndexMerge(tx, accounts, start, end)
		msgs := tx.Bucket(bMsg)
		scanned := 0
		var last []byte
		for ikey := ix.next(); ikey != nil; ikey = ix.next() {
			if len(out) == limit || scanned == scanBudget {
				// More may follow: resume after the last key looked at.
				next = store.EncodeCursor(last)
				break
			}
			scanned++
			last = bytes.Clone(ikey)
			if len(ikey) < 9 {
				return fmt.Errorf("%w: index key", store.ErrCorrupt)
			}
			v := msgs.Get(ikey[8:])
			if v == nil {
				continue
			}
			m, err := store.DecodeMessage(v)
			if err != nil {
				return fmt.Errorf("message %s: %w", ikey[8:], err)
			}
			if f.Match(m) {
				out = append(out, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// UpdatePart applies u, writes the id map and attaches parked receipts, in one transaction.
func (s *Store) UpdatePart(ctx context.Context, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	if err := prepareUpdate(&u); err != nil {
		return nil, nil, err
	}
	var m *store.Message
	var attached []store.Receipt
	err := s.write(ctx, func(tx *txn) error {
		var err error
		m, attached, _, err = s.updatePart(tx, &u, attached[:0], 0, false)
		return err
	}, nil)
	if err != nil {
		return nil, nil, err
	}
	return m, attached, nil
}

// Settle is UpdatePart and the removal of the queue entry in one op of the group commit. The
// entry stays in memory, not claimable, until the write is durable, as with Ack.
func (s *Store) Settle(ctx context.Context, l store.Lease, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	o, err := s.newSettleOp(l, u)
	if err != nil {
		return nil, nil, err
	}
	done, err := s.wq.doW(ctx, s, o)
	m, attached := o.result(err)
	if done {
		o.release()
	}
	return m, attached, err
}

// newSettleOp makes Settle's write.
func (s *Store) newSettleOp(l store.Lease, u store.PartUpdate) (*settleOp, error) {
	n, _, err := parseLease(l)
	if err != nil {
		return nil, err
	}
	if err := prepareUpdate(&u); err != nil {
		return nil, err
	}
	o := settlePool.Get().(*settleOp)
	*o = settleOp{s: s, q: l.Queue, seq: n, u: u}
	s.qmu.Lock()
	o.removing = s.startRemovalInto(&o.r, l.Queue, n)
	s.qmu.Unlock()
	return o, nil
}

// result is what Settle returns once its write ended with err (nil: durable); on error the entry
// is claimable again.
func (o *settleOp) result(err error) (*store.Message, []store.Receipt) {
	if err != nil {
		if o.removing {
			o.s.abandoned(&o.r)
		}
		return nil, nil
	}
	return o.m, o.attached
}

// release gives o back once the group commit is done with it.
func (o *settleOp) release() {
	*o = settleOp{} // m and attached are the caller's now
	settlePool.Put(o)
}

// settleOp is Settle's write.
type settleOp struct {
	s        *Store
	q        store.Queue
	seq      uint64
	u        store.PartUpdate
	r        removal
	removing bool // r is the entry, kept in memory until the write is durable
	m        *store.Message
	attached []store.Receipt
}

func (o *settleOp) run(tx *txn) error {
	var (
		err  error
		room []byte
	)
	if o.m, o.attached, room, err = o.s.updatePart(tx, &o.u, o.attached[:0], 8, true); err != nil {
		return err
	}
	if qb := tx.Bucket(bQueues).Bucket(o.s.f.queueBucket(o.q)); qb != nil {
		return dirty(qb.Delete(binary.BigEndian.AppendUint64(room, o.seq)))
	}
	return nil
}

func (o *settleOp) done() {
	if o.removing {
		o.s.removed(&o.r)
	}
}

func prepareUpdate(u *store.PartUpdate) error {
	if u.UpstreamID != "" {
		if err := store.ValidateUpstreamID(u.Upstream, u.UpstreamID); err != nil {
			return err
		}
	}
	if u.At.IsZero() {
		u.At = nowUTC()
	}
	return nil
}

// updatePart is UpdatePart's write: it fails cleanly (nothing changed) when the message or
// part does not exist. extra bytes are added to the one allocation holding what it writes
// (the id map's key and value, the record) and returned, for the caller's own keys. A settle
// takes the message's kept form when there is one (kept.go); any other update forgets it.
func (s *Store) updatePart(tx *txn, u *store.PartUpdate, attached []store.Receipt, extra int, settle bool) (*store.Message, []store.Receipt, []byte, error) {
	f := &s.f
	f.id = append(f.id[:0], u.MessageID...)
	var (
		m   *store.Message
		k   *keptMsg
		err error
	)
	if settle {
		k = f.take(f.id)
	} else {
		f.forget(f.id)
	}
	if k != nil {
		m = k.m
	} else if m, err = decodeMsg(u.MessageID, f.msg(tx, f.id)); err != nil {
		return nil, nil, nil, err
	}
	if u.Part < 0 || u.Part >= len(m.Parts) {
		return nil, nil, nil, fmt.Errorf("%w: message %s has no part %d", store.ErrInvalid, u.MessageID, u.Part)
	}
	store.ApplyPartUpdate(m, u)
	if u.UpstreamID != "" {
		f.ukey = append(append(append(f.ukey[:0], u.Upstream...), 0), u.UpstreamID...)
		if f.mayBeParked(f.ukey) {
			if attached, err = s.attachParked(tx, f.ukey, m, u.Part, u.At, attached); err != nil {
				return nil, nil, nil, dirty(err)
			}
		}
	}
	// The memtable keeps every key and value written: they share room of their size (the
	// record is encoded into scratch first), out of the stager's chunk.
	f.rec = store.AppendMessage(f.rec[:0], m)
	n := extra + len(m.ID) + len(f.rec)
	if u.UpstreamID != "" {
		n += len(f.ukey) + 9 + len(u.MessageID)
	}
	b := f.alloc(n)
	b = append(b, m.ID...)
	id := b[:len(b):len(b)]
	if u.UpstreamID != "" {
		exp := u.At.Add(s.opts.IDMapTTL)
		n := len(b)
		b = append(b, f.ukey...)
		ukey := b[n:len(b):len(b)]
		n = len(b)
		b = binary.BigEndian.AppendUint64(b, uint64(exp.UnixNano()))
		b = append(append(b, byte(u.Part)), u.MessageID...)
		if err := s.putMapping(tx, ukey, b[n:len(b):len(b)], exp); err != nil {
			return nil, nil, nil, dirty(err)
		}
	}
	n = len(b)
	b = append(b, f.rec...)
	if err := tx.Bucket(bMsg).Put(id, b[n:len(b):len(b)]); err != nil {
		return nil, nil, nil, dirty(err)
	}
	if k != nil && k.left > 1 {
		// More parts to settle: m is the caller's now, the next settle takes a copy.
		next := keptCopy(m)
		next.left = k.left - 1
		f.keep(m.ID, next)
	}
	return m, attached, b[len(b):], nil
}

func upKey(upstream, upstreamID string) []byte {
	b := make([]byte, 0, len(upstream)+1+len(upstreamID))
	b = append(append(b, upstream...), 0)
	return append(b, upstreamID...)
}

// attachParked applies and records every unexpired receipt parked under ukey, and removes them.
func (s *Store) attachParked(tx *txn, ukey []byte, m *store.Message, part int, now time.Time, out []store.Receipt) ([]store.Receipt, error) {
	park := tx.Bucket(bPark)
	prefix := append(bytes.Clone(ukey), 0)
	var keys [][]byte
	c := park.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		keys = append(keys, bytes.Clone(k))
		if expired(v, now) {
			continue
		}
		r, err := store.DecodeReceipt(v[8:])
		if err != nil {
			// A corrupt parked receipt cannot be applied; dropping it keeps the mapping usable.
			continue
		}
		r.MessageID, r.Part = m.ID, part
		store.ApplyReceipt(m, r)
		if err := putReceipt(tx, r); err != nil {
			return out, err
		}
		out = append(out, *r)
	}
	for _, k := range keys {
		if err := park.Delete(k); err != nil {
			return out, err
		}
		s.f.parkedAdded(k, -1)
	}
	return out, nil
}

func putReceipt(tx *txn, r *store.Receipt) error {
	b := tx.Bucket(bRcpt)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(append([]byte(r.MessageID), 0), seq)
	return b.PutNew(key, store.AppendReceipt(nil, r))
}

// AddReceipt records r against its message, or parks it until the mapping is written.
func (s *Store) AddReceipt(ctx context.Context, r *store.Receipt) (*store.Message, bool, error) {
	if err := store.ValidateUpstreamID(r.Upstream, r.UpstreamID); err != nil {
		return nil, false, err
	}
	if r.Received.IsZero() {
		r.Received = nowUTC()
	}
	ukey := upKey(r.Upstream, r.UpstreamID)
	var m *store.Message
	var parked bool
	err := s.write(ctx, func(tx *txn) error {
		m, parked = nil, false
		v := s.mapping(tx, ukey, r.Received)
		if len(v) < 10 {
			parked = true
			return dirty(s.park(tx, ukey, r))
		}
		id, part := string(v[9:]), int(v[8])
		s.f.forget(v[9:])
		var err error
		if m, err = decodeMsg(id, s.f.msg(tx, v[9:])); err != nil {
			return err
		}
		if part >= len(m.Parts) {
			return fmt.Errorf("%w: id map points at part %d of %s", store.ErrCorrupt, part, id)
		}
		r.MessageID, r.Part = id, part
		store.ApplyReceipt(m, r)
		if err := putReceipt(tx, r); err != nil {
			return dirty(err)
		}
		return dirty(tx.Bucket(bMsg).Put([]byte(id), store.AppendMessage(nil, m)))
	}, nil)
	if err != nil {
		return nil, false, err
	}
	return m, parked, nil
}

func (s *Store) park(tx *txn, ukey []byte, r *store.Receipt) error {
	b := tx.Bucket(bPark)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(append(bytes.Clone(ukey), 0), seq)
	exp := r.Received.Add(s.opts.ParkTTL)
	val := store.AppendReceipt(binary.BigEndian.AppendUint64(nil, uint64(exp.UnixNano())), r)
	if err := b.PutNew(key, val); err != nil {
		return err
	}
	s.f.parkedAdded(key, 1)
	return tx.Bucket(bExp).Put(expKey(exp, 'p', key), nil)
}

// ListReceipts returns a message's receipts in arrival order.
func (s *Store) ListReceipts(ctx context.Context, id string) ([]store.Receipt, error) {
	var out []store.Receipt
	err := s.view(func(tx *txn) error {
		if tx.Bucket(bMsg).Get([]byte(id)) == nil {
			return fmt.Errorf("%w: message %s", store.ErrNotFound, id)
		}
		prefix := append([]byte(id), 0)
		c := tx.Bucket(bRcpt).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			r, err := store.DecodeReceipt(v)
			if err != nil {
				return fmt.Errorf("receipt of %s: %w", id, err)
			}
			out = append(out, *r)
		}
		return nil
	})
	return out, err
}
