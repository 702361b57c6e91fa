package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded/internal/wal"
)

// Bucket names. Keys use NUL as a separator: ids, names and upstream message ids never hold
// one (store.validKey refuses it).
var (
	bMsg    = []byte("msg")    // id -> message record
	bIdx    = []byte("idx")    // empty: was IndexKey(created, id) -> account (see index.go)
	bIdxAcc = []byte("idxacc") // account NUL IndexKey -> nil; in bbolt, blocks of them in bIdxBlk (index.go)
	bMap    = []byte("map")    // before generations (idmap.go): upstream NUL upstream id -> expiry(8) part(1) message id
	bPark   = []byte("park")   // upstream NUL upstream id NUL seq(8) -> expiry(8) receipt record
	bRcpt   = []byte("rcpt")   // message id NUL seq(8) -> receipt record
	bExp    = []byte("exp")    // expiry(8) bucket-letter key -> nil: what the sweeper removes
	bLost   = []byte("lost")   // seq(8) -> lost PDU record
	bQueues = []byte("queues") // nested: kind-letter NUL name -> seq(8) -> payload
	bConfig = []byte("config") // nested: kind -> key -> JSON
)

// lostCap bounds the lost PDU log; it is for operators, not for redelivery.
const lostCap = 10000

// Store is the embedded store. Create it with Open.
type Store struct {
	store.Admin
	db   *bbolt.DB
	log  *wal.Log
	opts store.Options
	tun  tuning
	wq   commitQueue

	// The group commit is a pipeline of two goroutines (see commit.go): the stager runs a
	// batch's ops against a write set (over the previous batch's, pending, until that one is
	// merged) and writes its record; the syncer syncs it, merges it into active and answers.
	// So under load one batch's ops run while the previous batch's record syncs (commit.go: gather).
	f      flusherState // the stager's
	enc    []byte       // the stager's record buffer
	wsFree chan *memtable
	// broken is set when a WAL write or sync failed: what reached the disk is not known, so
	// every later write fails until the store is reopened and replay tells.
	broken atomic.Pointer[error]

	// mu guards the memtable layers. Readers hold it shared for their whole view, and so does
	// the stager while a batch's ops run; the syncer holds it exclusively to merge a logged
	// batch into active or to freeze active, the checkpointer to drop frozen once it is in
	// bbolt. So a reader sees a key in a memtable or in bbolt, never in neither.
	mu     sync.RWMutex
	active *memtable
	frozen *memtable // being checkpointed; nil when none is
	// pending is the write set of the batch written to the WAL and not yet merged: the next
	// batch's ops see it, readers do not.
	pending *memtable
	cpDone  *sync.Cond // on mu: a checkpoint ended (back-pressure waits for it)
	cpKick  chan struct{}
	cpStop  chan struct{}
	cpWG    sync.WaitGroup
	cpQuit  bool          // the checkpointer stopped: nobody waits for it any more. Under mu.
	cpFail  atomic.Bool   // the last checkpoint failed; Ping says so
	cps     atomic.Uint64 // checkpoints done, for tests
	cpPuts  atomic.Uint64 // keys the checkpoints put into bbolt, for benchmarks
	// cpHook, when set (by tests), runs at the start of every background checkpoint.
	cpHook func()

	gens mapGens // the id map's generations

	qmu    sync.Mutex
	queues map[store.Queue]*queue
	// tokens is the last claim token handed out. It starts from the clock at Open, which
	// runs ahead of any count of claims, so a lease from before a reopen never matches.
	tokens uint64
	// kept counts the bytes of queue payloads kept in memory (entry.payload), at most keepMax.
	kept int
	// entryBlock is where newEntry takes the next entries from.
	entryBlock []entry

	closed   atomic.Bool
	closing  chan struct{} // closed by Close: wakes waiting claims and stops the sweeper
	sweeper  sync.WaitGroup
	closeErr error
	once     sync.Once
}

// tuning is when active is frozen and checkpointed, and how big the memtables may grow.
type tuning struct {
	freezeBytes int           // active is frozen past this size...
	freezeAge   time.Duration // ...or age
	maxBytes    int           // while a checkpoint runs, writers wait once active is this big
	segment     int64         // WAL segment size
}

var defaultTuning = tuning{freezeBytes: 16 << 20, freezeAge: time.Second, maxBytes: 48 << 20, segment: 64 << 20}

var _ store.Store = (*Store)(nil)

// op is one write of a group commit. fn runs against the batch's write set and must either
// fail before changing anything (a clean error, which only its caller sees) or return a
// dirtyError, which drops the whole write set so the other ops are retried one by one. after
// runs once the batch is durable, to publish in-memory effects (queue entries). A nil fn
// writes nothing (it gives the syncer a turn, to freeze an old memtable).
type op struct {
	fn    func(tx *txn) error
	after func()
	// w, when set, is the op instead of fn and after: the hot writes (accept, settle) keep
	// what they need in one struct, one allocation, where two closures and the variables they
	// share cost one each.
	w writer
}

// writer is an op as a struct: run is fn, done is after.
type writer interface {
	run(tx *txn) error
	done()
}

type dirtyError struct{ err error }

func (d dirtyError) Error() string { return d.err.Error() }
func (d dirtyError) Unwrap() error { return d.err }

// dirty marks a failure after the op began mutating.
func dirty(err error) error {
	if err == nil {
		return nil
	}
	return dirtyError{err}
}

// bMeta holds the store's own bookkeeping: keyWALPos, the last WAL record in bbolt.
var (
	bMeta     = []byte("meta")
	keyWALPos = []byte("walpos")
)

// Open opens (creating if needed) the store in the bbolt file at path, with its write-ahead
// log in the directory path+".wal", and replays that log.
func Open(path string, opts store.Options) (*Store, error) {
	return open(path, opts, defaultTuning)
}

func open(path string, opts store.Options, tun tuning) (*Store, error) {
	opts = opts.WithDefaults()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: 5 * time.Second, // another process holding the file is an error, not a hang
		// The freelist is rebuilt on open instead of written on every commit: commits are
		// checkpoints now, opens are rare.
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: initialMmap,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: embedded: open %s: %w", store.ErrUnavailable, path, err)
	}
	s := &Store{db: db, opts: opts, tun: tun, queues: map[store.Queue]*queue{}, closing: make(chan struct{}),
		tokens: uint64(time.Now().UnixNano()), active: newMemtable(), wsFree: make(chan *memtable, 2),
		cpKick: make(chan struct{}, 1), cpStop: make(chan struct{})}
	for range cap(s.wsFree) {
		s.wsFree <- newWriteSet()
	}
	s.cpDone = sync.NewCond(&s.mu)
	s.Admin = store.Admin{B: configBackend{s}}
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bMsg, bIdx, bIdxAcc, bIdxBlk, bMap, bMapGen, bPark, bRcpt, bExp, bLost, bQueues, bConfig, bMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: embedded: init %s: %w", store.ErrUnavailable, path, err)
	}
	dir := path + ".wal"
	last, err := s.replay(dir)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadQueues(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.dropOldIndex(); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	if err := s.convertOldIndex(); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	if err := s.loadMapGens(); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	s.f.pending = map[string]int{}
	if err := s.read(func(tx *txn) error {
		s.f.parked = countParked(tx)
		return nil
	}); err != nil {
		db.Close()
		return nil, err
	}
	if s.log, err = wal.Open(dir, last+1, tun.segment); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	s.wq.start(s, opts.MaxBatch)
	s.cpWG.Add(1)
	go s.checkpointer()
	s.sweeper.Add(1)
	go s.sweep()
	return s, nil
}

// replay writes the WAL records after bbolt's position into bbolt in one transaction, then
// deletes the log, and returns the last LSN.
func (s *Store) replay(dir string) (uint64, error) {
	var pos uint64
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(keyWALPos); len(v) == 8 {
			pos = binary.BigEndian.Uint64(v)
		}
		return nil
	}); err != nil {
		return 0, unavailable(err)
	}
	segs, err := wal.Segments(dir)
	if err != nil || len(segs) == 0 {
		return pos, unavailableOrNil(err)
	}
	var st wal.ReplayStats
	err = s.db.Update(func(tx *bbolt.Tx) error {
		var idx []kv // the records' time index changes, written in blocks at the end
		var err error
		st, err = wal.Replay(dir, pos, func(_ uint64, body []byte) error { return applyRecordIndex(tx, body, &idx) })
		if err != nil || st.Applied == 0 {
			return err
		}
		if _, err := writeIndex(tx, indexChanges(idx)); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(keyWALPos, be64(st.Last))
	})
	if errors.Is(err, errRecord) {
		return 0, fmt.Errorf("%w: embedded: replay %s: %w", store.ErrCorrupt, dir, err)
	}
	if err != nil {
		return 0, unavailable(err)
	}
	if err := wal.RemoveAll(dir); err != nil {
		return 0, unavailable(err)
	}
	return st.Last, nil
}

func unavailableOrNil(err error) error {
	if err == nil {
		return nil
	}
	return unavailable(err)
}

// apply runs ops against ws. An op that fails half-way (a dirtyError) fails alone: the ops then
// run again one by one, each in a scratch write set folded into ws when it succeeds.
// Only the stager calls it.
func (s *Store) apply(ops []*wop, ws *memtable) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rtx, err := s.db.Begin(false)
	if err != nil {
		for _, o := range ops {
			o.Err = unavailable(err)
		}
		return
	}
	defer rtx.Rollback()
	t := txn{rtx: rtx, ws: ws}
	t.mems = s.flusherLayers(t.buf[:0])
	s.f.begin()
	if run(&t, ops) {
		s.f.end(true)
		return
	}
	ws.reset()
	s.f.end(false)
	scratch := newWriteSet()
	for i, o := range ops {
		t := txn{rtx: rtx, ws: scratch}
		t.mems = s.flusherLayers(append(t.buf[:0], ws))
		s.f.begin()
		if run(&t, ops[i:i+1]) {
			ws.merge(scratch, 0, time.Time{})
			s.f.end(true)
		} else {
			o.Err = unavailable(o.Err)
			s.f.end(false)
		}
		scratch.reset()
	}
}

// run runs ops in t, false when one returned a dirtyError.
func run(t *txn, ops []*wop) bool {
	for _, o := range ops {
		o.Err = nil
		switch {
		case o.V.w != nil:
			o.Err = o.V.w.run(t)
		case o.V.fn != nil:
			o.Err = o.V.fn(t)
		default:
			continue
		}
		if o.Err == nil {
			continue // most do; errors.As would allocate its target for each
		}
		var d dirtyError
		if errors.As(o.Err, &d) {
			return false
		}
	}
	return true
}

// layers appends the memtables readers must see, newest first. s.mu must be held.
func (s *Store) layers(b []*memtable) []*memtable {
	b = append(b, s.active)
	if s.frozen != nil {
		b = append(b, s.frozen)
	}
	return b
}

// flusherLayers is layers with the pending write set on top. s.mu must be held.
func (s *Store) flusherLayers(b []*memtable) []*memtable {
	if s.pending != nil {
		b = append(b, s.pending)
	}
	return s.layers(b)
}

// maybeFreeze freezes active for the checkpointer when it is big or old enough,
// and makes the syncer, so every writer, wait while active is full and a checkpoint is still
// running. A batch written to the WAL but not merged yet goes into the next active; the WAL
// segment holding it stays until a checkpoint covers its LSN.
func (s *Store) maybeFreeze() {
	s.mu.Lock()
	for {
		// Read again after each wait.
		a := s.active
		if a.empty() || a.size < s.tun.freezeBytes && time.Since(a.born) < s.tun.freezeAge {
			s.mu.Unlock()
			return
		}
		if s.frozen == nil {
			break
		}
		if a.size < s.tun.maxBytes || s.cpQuit {
			s.mu.Unlock()
			return // frozen after the running checkpoint
		}
		s.cpDone.Wait()
	}
	s.mu.Unlock()
	// A new segment, so the ones before are removed once this checkpoint is done. Rolling
	// syncs the old segment: outside mu, so readers do not wait for the disk. Only the syncer
	// merges and freezes, and only it sets frozen, so nothing checked above has changed.
	if _, err := s.log.Roll(); err != nil {
		return // tried again after the next batch
	}
	s.mu.Lock()
	s.frozen, s.active = s.active, newMemtable()
	s.mu.Unlock()
	select {
	case s.cpKick <- struct{}{}:
	default:
	}
}

// checkpointer writes each frozen memtable into bbolt.
func (s *Store) checkpointer() {
	defer s.cpWG.Done()
	for {
		select {
		case <-s.cpKick:
		case <-s.cpStop:
			return
		}
		for s.checkpoint() != nil {
			// Writers carry on into active until it is full, then wait; retry meanwhile.
			t := time.NewTimer(time.Second)
			select {
			case <-t.C:
			case <-s.cpStop:
				t.Stop()
				s.mu.Lock()
				s.cpQuit = true
				s.cpDone.Broadcast()
				s.mu.Unlock()
				return
			}
		}
	}
}

// checkpoint writes frozen into bbolt with the WAL position it covers, in one transaction,
// then drops it and the WAL segments it covered.
func (s *Store) checkpoint() error {
	if s.cpHook != nil {
		s.cpHook()
	}
	s.mu.RLock()
	fz := s.frozen
	s.mu.RUnlock()
	if fz == nil {
		return nil
	}
	puts := 0
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if puts, err = writeMemtable(tx, fz); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(keyWALPos, be64(fz.lsn))
	}); err != nil {
		s.cpFail.Store(true)
		return err
	}
	s.mu.Lock()
	s.frozen = nil
	s.cpDone.Broadcast()
	s.mu.Unlock()
	s.cpFail.Store(false)
	s.cps.Add(1)
	s.cpPuts.Add(uint64(puts))
	// Segments left behind by a failure here are skipped by replay (their LSNs are covered)
	// and removed at the next checkpoint.
	_ = s.log.RemoveCovered(fz.lsn)
	return nil
}

// finalCheckpoint writes every memtable into bbolt at Close.
func (s *Store) finalCheckpoint() error {
	var ms []*memtable
	var lsn uint64
	for _, m := range []*memtable{s.frozen, s.active} {
		if m != nil && !m.empty() {
			ms, lsn = append(ms, m), m.lsn
		}
	}
	if len(ms) == 0 {
		return nil
	}
	puts := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, m := range ms {
			n, err := writeMemtable(tx, m)
			if puts += n; err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put(keyWALPos, be64(lsn))
	})
	if err == nil {
		s.cpPuts.Add(uint64(puts))
	}
	return err
}

func unavailable(err error) error {
	var d dirtyError
	if errors.As(err, &d) {
		err = d.err
	}
	return fmt.Errorf("%w: embedded: %w", store.ErrUnavailable, err)
}

// write runs fn (and then after) in the next group commit and waits until it is durable.
func (s *Store) write(ctx context.Context, fn func(tx *txn) error, after func()) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.wq.do(ctx, op{fn: fn, after: after})
}

// view runs fn in a read-only view.
func (s *Store) view(fn func(tx *txn) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.read(fn)
}

// read is view without the closed check, for Open and for claims.
func (s *Store) read(fn func(tx *txn) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	// The bbolt transaction begins after mu is held, so it sees every checkpoint of a
	// memtable that is gone from the layers.
	rtx, err := s.db.Begin(false)
	if err != nil {
		return unavailable(err)
	}
	defer rtx.Rollback()
	t := txn{rtx: rtx}
	t.mems = s.layers(t.buf[:0])
	err = fn(&t)
	if err != nil && !isStoreErr(err) {
		return unavailable(err)
	}
	return err
}

// isStoreErr reports whether err is one of ours rather than bbolt's.
func isStoreErr(err error) bool {
	for _, e := range []error{store.ErrNotFound, store.ErrExists, store.ErrInvalid, store.ErrCorrupt, store.ErrUnavailable} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Ping reports whether the store is open and its checkpoints succeed.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := s.brokenErr(); err != nil {
		return unavailable(err)
	}
	if s.cpFail.Load() {
		return fmt.Errorf("%w: embedded: checkpoint into bbolt failing", store.ErrUnavailable)
	}
	return ctx.Err()
}

// Close writes what is queued, checkpoints everything into bbolt (leaving an empty WAL), and
// closes the files.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		s.sweeper.Wait()
		s.wq.close()
		close(s.cpStop)
		s.cpWG.Wait()
		err := s.finalCheckpoint()
		if err != nil {
			// The WAL stays, to be replayed at the next Open.
			err = unavailable(err)
			s.log.Close(false)
		} else {
			err = s.log.Close(true)
		}
		s.closeErr = errors.Join(err, s.db.Close())
	})
	return s.closeErr
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

func nowUTC() time.Time { return time.Now().UTC() }

// expKey is the sweeper's index entry for key in bucket letter l expiring at t.
func expKey(t time.Time, l byte, key []byte) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(key)), uint64(t.UnixNano()))
	b = append(b, l)
	return append(b, key...)
}

// sweep removes expired id map and parked receipt entries, and messages past MessageTTL,
// every SweepInterval.
func (s *Store) sweep() {
	defer s.sweeper.Done()
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	age := time.NewTicker(s.tun.freezeAge)
	defer age.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-age.C:
			// An idle store's memtable reaches bbolt too: the syncer freezes it after a batch,
			// and this empty write is one.
			s.mu.RLock()
			old := !s.active.empty() && time.Since(s.active.born) >= s.tun.freezeAge
			s.mu.RUnlock()
			if old {
				_ = s.write(context.Background(), nil, nil)
			}
		case <-t.C:
			// An error here is retried at the next tick; expired entries are already invisible
			// to readers, so a late sweep only costs disk space.
			now := nowUTC()
			_ = s.dropMapGens(now)
			_ = s.write(context.Background(), func(tx *txn) error {
				if err := s.sweepExpired(tx, now, sweepMax); err != nil {
					return dirty(err)
				}
				if s.opts.MessageTTL > 0 {
					return dirty(sweepMessages(tx, &s.f, now.Add(-s.opts.MessageTTL), sweepMax))
				}
				return nil
			}, nil)
		}
	}
}

// sweepMax bounds the deletions of one sweep, so one transaction stays short; a backlog
// is worked off over several sweeps.
const sweepMax = 10000

// sweepMessages deletes up to max messages created before cutoff, with their index entries
// and receipts; f forgets them.
func sweepMessages(tx *txn, f *flusherState, cutoff time.Time, max int) error {
	end := store.IndexKey(cutoff, "")
	type old struct{ ikey, acckey []byte }
	var dead []old
	ix := newIndexMerge(tx, indexAccounts(tx), nil, end)
	for len(dead) < max {
		h := ix.peek()
		ikey := ix.next()
		if ikey == nil {
			break
		}
		dead = append(dead, old{bytes.Clone(ikey), append(bytes.Clone(h.prefix), ikey...)})
	}
	rc := tx.Bucket(bRcpt)
	for _, d := range dead {
		if len(d.ikey) < 9 {
			continue
		}
		id := d.ikey[8:]
		f.forget(id)
		if err := tx.Bucket(bMsg).Delete(id); err != nil {
			return err
		}
		if err := tx.Bucket(bIdxAcc).Delete(d.acckey); err != nil {
			return err
		}
		prefix := append(bytes.Clone(id), 0)
		var keys [][]byte
		c := rc.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := rc.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// sweepExpired deletes up to max expired entries.
func (s *Store) sweepExpired(tx *txn, now time.Time, max int) error {
	exp := tx.Bucket(bExp)
	c := exp.Cursor()
	var dead [][]byte
	for k, _ := c.First(); k != nil && len(dead) < max; k, _ = c.Next() {
		if len(k) < 9 || int64(binary.BigEndian.Uint64(k)) > now.UnixNano() {
			break
		}
		dead = append(dead, bytes.Clone(k))
	}
	for _, k := range dead {
		var b *bucket
		switch k[8] {
		case 'm':
			b = tx.Bucket(bMap)
		case 'p':
			b = tx.Bucket(bPark)
		}
		if b != nil {
			target := k[9:]
			// The key may have been rewritten with a later expiry since this entry was made.
			if v := b.Get(target); v != nil && len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) <= now.UnixNano() {
				if err := b.Delete(target); err != nil {
					return err
				}
				if k[8] == 'p' {
					s.f.parkedAdded(target, -1)
				}
			}
		}
		if err := exp.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// expired reports whether a value starting with an 8-byte expiry has expired at now.
func expired(v []byte, now time.Time) bool {
	return len(v) < 8 || int64(binary.BigEndian.Uint64(v)) <= now.UnixNano()
}

// configBackend keeps configuration in nested buckets; writes are rare, so they skip the
// group commit and use their own transaction.
type configBackend struct{ s *Store }

func (c configBackend) ConfigPut(ctx context.Context, kind store.ConfigKind, key string, value []byte, create bool) error {
	return c.s.write(ctx, func(tx *txn) error {
		b := tx.Bucket(bConfig).Bucket([]byte(kind))
		if create && b != nil && b.Get([]byte(key)) != nil {
			return fmt.Errorf("%w: %s %s", store.ErrExists, kind, key)
		}
		b, err := tx.Bucket(bConfig).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return dirty(err)
		}
		return dirty(b.Put([]byte(key), value))
	}, nil)
}

func (c configBackend) ConfigGet(ctx context.Context, kind store.ConfigKind, key string) ([]byte, error) {
	var out []byte
	err := c.s.view(func(tx *txn) error {
		if b := tx.Bucket(bConfig).Bucket([]byte(kind)); b != nil {
			out = bytes.Clone(b.Get([]byte(key)))
		}
		if out == nil {
			return fmt.Errorf("%w: %s %s", store.ErrNotFound, kind, key)
		}
		return nil
	})
	return out, err
}

func (c configBackend) ConfigDelete(ctx context.Context, kind store.ConfigKind, key string) error {
	return c.s.write(ctx, func(tx *txn) error {
		b := tx.Bucket(bConfig).Bucket([]byte(kind))
		if b == nil || b.Get([]byte(key)) == nil {
			return fmt.Errorf("%w: %s %s", store.ErrNotFound, kind, key)
		}
		return dirty(b.Delete([]byte(key)))
	}, nil)
}

func (c configBackend) ConfigList(ctx context.Context, kind store.ConfigKind) ([][]byte, error) {
	var out [][]byte
	err := c.s.view(func(tx *txn) error {
		b := tx.Bucket(bConfig).Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			out = append(out, bytes.Clone(v))
			return nil
		})
	})
	return out, err
}
