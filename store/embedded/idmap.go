package embedded

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// The id map (upstream NUL upstream id -> expiry(8) part(1) message id) is kept in generations:
// nested buckets of bMapGen, each named by its end (be64 Unix nanoseconds) and holding the
// mappings that expire before it, within mapGenSpan of it. A generation past its end is dropped
// whole, a bbolt DeleteBucket that frees its pages, so a mapping costs one key and nothing to
// expire it. It used to cost two (the mapping and its bExp entry) and two deletes by the
// sweeper, which removes at most sweepMax keys a sweep (10,000 a minute by default): at a
// sustained 40,000 messages a second the map grew without end. bMap still holds the mappings
// written before generations, read after them and swept through bExp as before.
var bMapGen = []byte("mapgen")

// mapGenSpans is how many generations an IDMapTTL spans: a lookup tries at most this many
// (plus one), newest first, and most find their mapping in the first.
const mapGenSpans = 8

// mapGens is the set of generations that may hold mappings, so a lookup tries only those, in
// bbolt or in the memtables (a superset: a generation whose creation failed costs a lookup
// a miss). Ends are sorted, oldest first.
type mapGens struct {
	mu   sync.RWMutex
	ends []int64
}

func (g *mapGens) add(end int64) {
	g.mu.RLock()
	_, ok := slices.BinarySearch(g.ends, end)
	g.mu.RUnlock()
	if ok {
		return
	}
	g.mu.Lock()
	if i, ok := slices.BinarySearch(g.ends, end); !ok {
		g.ends = slices.Insert(g.ends, i, end)
	}
	g.mu.Unlock()
}

// after appends, newest first, the ends of the generations ending after t.
func (g *mapGens) after(b []int64, t int64) []int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	for i := len(g.ends) - 1; i >= 0 && g.ends[i] > t; i-- {
		b = append(b, g.ends[i])
	}
	return b
}

// until returns the ends of the generations ending at or before t.
func (g *mapGens) until(t int64) []int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	i, _ := slices.BinarySearch(g.ends, t+1)
	return slices.Clone(g.ends[:i])
}

func (g *mapGens) remove(ends []int64) {
	g.mu.Lock()
	g.ends = slices.DeleteFunc(g.ends, func(e int64) bool { _, ok := slices.BinarySearch(ends, e); return ok })
	g.mu.Unlock()
}

// genSpan is the time one generation covers.
func (s *Store) genSpan() int64 {
	return max(int64(s.opts.IDMapTTL/mapGenSpans), int64(time.Millisecond))
}

// genEnd is the end of the generation holding mappings expiring at exp.
func (s *Store) genEnd(exp time.Time) int64 {
	span := s.genSpan()
	n := exp.UnixNano()
	return (n/span + 1) * span
}

func genName(end int64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(end)) }

// putMapping maps ukey to val (expiry(8) part(1) message id) in the generation of exp.
func (s *Store) putMapping(tx *txn, ukey, val []byte, exp time.Time) error {
	end := s.genEnd(exp)
	if s.f.gen == nil || s.f.genEnd != end {
		s.f.gen, s.f.genEnd = genName(end), end
	}
	g, err := tx.Bucket(bMapGen).CreateBucketIfNotExists(s.f.gen)
	if err != nil {
		return err
	}
	s.gens.add(end)
	return g.Put(ukey, val)
}

// mapping returns ukey's mapping unexpired at now, nil when there is none: the newest
// generation's first, then the mappings from before generations.
func (s *Store) mapping(tx *txn, ukey []byte, now time.Time) []byte {
	var buf [mapGenSpans + 2]int64
	var name [8]byte
	for _, end := range s.gens.after(buf[:0], now.UnixNano()) {
		binary.BigEndian.PutUint64(name[:], uint64(end))
		if g := tx.Bucket(bMapGen).Bucket(name[:]); g != nil {
			if v := g.Get(ukey); v != nil && !expired(v, now) {
				return v
			}
		}
	}
	if v := tx.Bucket(bMap).Get(ukey); v != nil && !expired(v, now) {
		return v
	}
	return nil
}

// loadMapGens reads the generations bbolt holds (at Open, after replay).
func (s *Store) loadMapGens() error {
	return s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bMapGen).ForEachBucket(func(k []byte) error {
			if len(k) == 8 {
				s.gens.add(int64(binary.BigEndian.Uint64(k)))
			}
			return nil
		})
	})
}

// dropMapGens deletes from bbolt the generations that ended by now, in a transaction of its
// own: all their mappings have expired, so no reader sees them (lookups check the expiry),
// and nothing needs logging. It finds them in bbolt, not in the set, so it also drops one a
// checkpoint made after an earlier sweep (its mappings were still in a memtable when their
// generation ended) or a replay made anew after a crash.
func (s *Store) dropMapGens(now time.Time) error {
	t := now.UnixNano()
	var ended [][]byte
	if err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bMapGen).ForEachBucket(func(k []byte) error {
			if len(k) == 8 && int64(binary.BigEndian.Uint64(k)) <= t {
				ended = append(ended, slices.Clone(k))
			}
			return nil
		})
	}); err != nil {
		return err
	}
	if len(ended) > 0 {
		if err := s.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bMapGen)
			for _, k := range ended {
				if err := b.DeleteBucket(k); err != nil && !errors.Is(err, bbolt.ErrBucketNotFound) {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	s.gens.remove(s.gens.until(t))
	return nil
}
