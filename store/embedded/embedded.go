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
	"github.com/smppgw/smppgw/store/internal/batch"
)

// Bucket names. Keys use NUL as a separator: ids, names and upstream message ids never hold
// one (store.validKey refuses it).
var (
	bMsg    = []byte("msg")    // id -> message record
	bIdx    = []byte("idx")    // IndexKey(created, id) -> account
	bIdxAcc = []byte("idxacc") // account NUL IndexKey -> nil
	bMap    = []byte("map")    // upstream NUL upstream id -> expiry(8) part(1) message id
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
	opts store.Options
	w    *batch.Batcher[op]
	f    flusherState

	qmu    sync.Mutex
	queues map[store.Queue]*queue
	// tokens is the last claim token handed out. It starts from the clock at Open, which
	// runs ahead of any count of claims, so a lease from before a reopen never matches.
	tokens uint64

	closed   atomic.Bool
	closing  chan struct{} // closed by Close: wakes waiting claims and stops the sweeper
	sweeper  sync.WaitGroup
	closeErr error
	once     sync.Once
}

var _ store.Store = (*Store)(nil)

// op is one write of a group commit. fn runs inside the batch's transaction and must either
// fail before changing anything (a clean error, which only its caller sees) or return a
// dirtyError, which rolls the whole batch back so the other ops are retried one by one. after
// runs once the batch is durable, to publish in-memory effects (queue entries).
type op struct {
	fn    func(tx *bbolt.Tx) error
	after func()
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

// Open opens (creating if needed) the store in the bbolt file at path.
func Open(path string, opts store.Options) (*Store, error) {
	opts = opts.WithDefaults()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: 5 * time.Second, // another process holding the file is an error, not a hang
		// The freelist is rebuilt on open instead of written on every commit: commits are the
		// hot path, opens are rare.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: embedded: open %s: %w", store.ErrUnavailable, path, err)
	}
	s := &Store{db: db, opts: opts, queues: map[store.Queue]*queue{}, closing: make(chan struct{}),
		tokens: uint64(time.Now().UnixNano())}
	s.Admin = store.Admin{B: configBackend{s}}
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bMsg, bIdx, bIdxAcc, bMap, bPark, bRcpt, bExp, bLost, bQueues, bConfig} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: embedded: init %s: %w", store.ErrUnavailable, path, err)
	}
	if err := s.loadQueues(); err != nil {
		db.Close()
		return nil, err
	}
	s.f.pending = map[string]int{}
	if err := db.View(func(tx *bbolt.Tx) error {
		s.f.parked = countParked(tx)
		return nil
	}); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	// bbolt allows one writer at a time, so one flusher; batches form while it fsyncs.
	s.w = batch.New(1, opts.MaxBatch, store.ErrClosed, s.flush)
	s.sweeper.Add(1)
	go s.sweep()
	return s, nil
}

// flush writes one batch in one transaction (one fsync).
func (s *Store) flush(ops []*batch.Op[op]) {
	var isDirty bool
	err := s.db.Update(func(tx *bbolt.Tx) error {
		s.f.begin(tx)
		for _, o := range ops {
			o.Err = o.V.fn(tx)
			var d dirtyError
			if errors.As(o.Err, &d) {
				isDirty = true
				return d
			}
		}
		return nil
	})
	s.f.end(err == nil && !isDirty)
	if isDirty {
		// One op failed half-way; the batch was rolled back. Give every op its own transaction
		// so one bad write fails alone.
		for _, o := range ops {
			s.flushOne(o)
		}
		return
	}
	if err != nil {
		for _, o := range ops {
			o.Err = unavailable(err)
		}
		return
	}
	for _, o := range ops {
		if o.Err == nil && o.V.after != nil {
			o.V.after()
		}
	}
}

func (s *Store) flushOne(o *batch.Op[op]) {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		s.f.begin(tx)
		o.Err = o.V.fn(tx)
		var d dirtyError
		if errors.As(o.Err, &d) {
			return d
		}
		return nil
	})
	s.f.end(err == nil)
	switch {
	case err != nil:
		o.Err = unavailable(err)
	case o.Err == nil && o.V.after != nil:
		o.V.after()
	}
}

func unavailable(err error) error {
	var d dirtyError
	if errors.As(err, &d) {
		err = d.err
	}
	return fmt.Errorf("%w: embedded: %w", store.ErrUnavailable, err)
}

// write runs fn (and then after) in the next group commit and waits until it is durable.
func (s *Store) write(ctx context.Context, fn func(tx *bbolt.Tx) error, after func()) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.w.Do(ctx, op{fn: fn, after: after})
}

// view runs a read transaction.
func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	err := s.db.View(fn)
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

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// Close writes what is queued, then closes the file.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		s.sweeper.Wait()
		s.w.Close()
		s.closeErr = s.db.Close()
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
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			// An error here is retried at the next tick; expired entries are already invisible
			// to readers, so a late sweep only costs disk space.
			_ = s.write(context.Background(), func(tx *bbolt.Tx) error {
				now := nowUTC()
				if err := s.sweepExpired(tx, now, sweepMax); err != nil {
					return dirty(err)
				}
				if s.opts.MessageTTL > 0 {
					return dirty(sweepMessages(tx, now.Add(-s.opts.MessageTTL), sweepMax))
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
// and receipts.
func sweepMessages(tx *bbolt.Tx, cutoff time.Time, max int) error {
	end := store.IndexKey(cutoff, "")
	type old struct{ ikey, account []byte }
	var dead []old
	c := tx.Bucket(bIdx).Cursor()
	for k, v := c.First(); k != nil && len(dead) < max && bytes.Compare(k, end) < 0; k, v = c.Next() {
		dead = append(dead, old{bytes.Clone(k), bytes.Clone(v)})
	}
	rc := tx.Bucket(bRcpt)
	for _, d := range dead {
		if len(d.ikey) < 9 {
			continue
		}
		id := d.ikey[8:]
		if err := tx.Bucket(bMsg).Delete(id); err != nil {
			return err
		}
		if err := tx.Bucket(bIdx).Delete(d.ikey); err != nil {
			return err
		}
		if err := tx.Bucket(bIdxAcc).Delete(accKey(string(d.account), d.ikey)); err != nil {
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
func (s *Store) sweepExpired(tx *bbolt.Tx, now time.Time, max int) error {
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
		var b *bbolt.Bucket
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
	return c.s.write(ctx, func(tx *bbolt.Tx) error {
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
	err := c.s.view(func(tx *bbolt.Tx) error {
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
	return c.s.write(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bConfig).Bucket([]byte(kind))
		if b == nil || b.Get([]byte(key)) == nil {
			return fmt.Errorf("%w: %s %s", store.ErrNotFound, kind, key)
		}
		return dirty(b.Delete([]byte(key)))
	}, nil)
}

func (c configBackend) ConfigList(ctx context.Context, kind store.ConfigKind) ([][]byte, error) {
	var out [][]byte
	err := c.s.view(func(tx *bbolt.Tx) error {
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
