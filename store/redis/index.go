package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/store"
)

// The time indexes. A member is store.IndexKey of the message: its creation time (8 bytes,
// big-endian nanoseconds) then its id, so members sort by time. The index of all accounts is
// a list per shard and second of creation, its bucket (kIdxBucket), with a sorted set per
// shard of the bucket numbers that exist (kIdxDir); the index of one account is a sorted set
// per shard of members, all of score 0, read by lexicographic range (kIdxAcc).

// indexBucket is how much creation time one bucket of the index of all accounts spans.
const indexBucket = uint64(time.Second)

// bucketOf is the bucket of an index member (at least 8 bytes).
func bucketOf(member []byte) uint64 { return binary.BigEndian.Uint64(member) / indexBucket }

// bucketEnd is when bucket b's creation times end.
func bucketEnd(b uint64) time.Time { return time.Unix(0, int64((b+1)*indexBucket)) }

// scanBudget bounds the index entries one page looks at (see the embedded store).
const scanBudget = 20 * store.MaxListLimit

// ListMessages walks the time index of all shards (of f.Account when set), merged in order.
func (s *Store) ListMessages(ctx context.Context, f store.MessageFilter) ([]*store.Message, string, error) {
	if s.closed.Load() {
		return nil, "", store.ErrClosed
	}
	limit := f.PageLimit()
	lo, hi := "-", "+"
	var from string
	if !f.From.IsZero() {
		from = string(store.IndexKey(f.From, ""))
		lo = "[" + from
	}
	if f.Cursor != "" {
		after, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		if string(after) >= from {
			lo = "(" + string(after)
		}
	}
	if !f.To.IsZero() {
		hi = "(" + string(store.IndexKey(f.To, ""))
	}
	chunk := min(2*limit, store.MaxListLimit)
	var w indexWalk
	if f.Account != "" {
		w = &accountWalk{s: s, account: f.Account, lo: lo, hi: hi, chunk: int64(chunk)}
	} else {
		w = newBucketWalk(s, lo, hi)
	}
	var out []*store.Message
	scanned := 0
	for {
		members, more, err := w.next(ctx)
		if err != nil {
			return nil, "", err
		}
		for start := 0; start < len(members); start += chunk {
			part := members[start:min(start+chunk, len(members))]
			cmds := make([]*goredis.StringCmd, len(part))
			p := s.c.Pipeline()
			for i, mem := range part {
				cmds[i] = p.Get(ctx, s.kMsg(mem[8:]))
			}
			if _, err := p.Exec(ctx); err != nil && err != goredis.Nil {
				return nil, "", mapErr(err)
			}
			for i, mem := range part {
				v, err := cmds[i].Result()
				scanned++
				if err == nil {
					m, err := decodeValue(mem[8:], v)
					switch {
					case errors.Is(err, errNoMessage): // a write to a message gone left a key
					case err != nil:
						return nil, "", err
					case f.Match(m):
						out = append(out, m)
					}
				}
				after := start+i < len(members)-1 || more
				if (len(out) == limit || scanned >= scanBudget) && after {
					return out, store.EncodeCursor([]byte(mem)), nil
				}
			}
		}
		if !more {
			return out, "", nil
		}
	}
}

// indexWalk reads an index in order: each next returns the following members (sorted, each
// of at least 9 bytes), and whether more may follow.
type indexWalk interface {
	next(ctx context.Context) ([]string, bool, error)
}

// accountWalk reads the sorted sets of one account's index, a chunk of each shard's at a time.
type accountWalk struct {
	s       *Store
	account string
	lo, hi  string // the range left, as ZRANGEBYLEX takes it
	chunk   int64
	ranges  []*goredis.StringSliceCmd
}

func (w *accountWalk) next(ctx context.Context) ([]string, bool, error) {
	s := w.s
	if w.ranges == nil {
		w.ranges = make([]*goredis.StringSliceCmd, len(s.tags))
	}
	p := s.c.Pipeline()
	for sh := range s.tags {
		w.ranges[sh] = p.ZRangeByLex(ctx, s.kIdxAcc(sh, w.account), &goredis.ZRangeBy{Min: w.lo, Max: w.hi, Count: w.chunk})
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, false, mapErr(err)
	}
	// Members up to the least last member of the shards that filled the chunk are all there
	// are so far; past it, such a shard may hold more.
	var members []string
	cut, full := "", false
	for _, r := range w.ranges {
		v := r.Val()
		members = append(members, v...)
		if int64(len(v)) == w.chunk && (!full || v[len(v)-1] < cut) {
			cut, full = v[len(v)-1], true
		}
	}
	slices.Sort(members)
	if full {
		n, _ := slices.BinarySearch(members, cut)
		members = members[:n+1]
	}
	for _, mem := range members {
		if len(mem) < 9 {
			return nil, false, fmt.Errorf("%w: index member", store.ErrCorrupt)
		}
	}
	if len(members) > 0 {
		w.lo = "(" + members[len(members)-1]
	}
	return members, full, nil
}

// bucketWalk reads the buckets of the index of all accounts one second at a time: the least
// bucket number any shard's directory holds from there on, then that bucket's list in each
// shard that has it, members sorted and kept within the range.
type bucketWalk struct {
	s         *Store
	lo, hi    string // the range, as ZRANGEBYLEX takes it
	cur, last uint64 // the next bucket to read, the last one the range reaches
	done      bool
	dirs      []*goredis.StringSliceCmd
	lists     []*goredis.StringSliceCmd
}

func newBucketWalk(s *Store, lo, hi string) *bucketWalk {
	w := &bucketWalk{s: s, lo: lo, hi: hi, last: math.MaxUint64,
		dirs: make([]*goredis.StringSliceCmd, len(s.tags)), lists: make([]*goredis.StringSliceCmd, len(s.tags))}
	if len(lo) > 8 {
		w.cur = bucketOf([]byte(lo[1:9]))
	}
	if len(hi) > 8 {
		w.last = bucketOf([]byte(hi[1:9]))
	}
	return w
}

// in reports whether mem is within the walk's range.
func (w *bucketWalk) in(mem string) bool {
	if len(w.lo) > 1 && (mem < w.lo[1:] || w.lo[0] == '(' && mem == w.lo[1:]) {
		return false
	}
	return len(w.hi) <= 1 || mem < w.hi[1:] || w.hi[0] == '[' && mem == w.hi[1:]
}

func (w *bucketWalk) next(ctx context.Context) ([]string, bool, error) {
	s := w.s
	max := "+inf"
	if w.last != math.MaxUint64 {
		max = strconv.FormatUint(w.last, 10)
	}
	// Bounded by the buckets that exist: each turn moves past one.
	for !w.done {
		p := s.c.Pipeline()
		for sh := range s.tags {
			w.dirs[sh] = p.ZRangeByScore(ctx, s.kIdxDir(sh), &goredis.ZRangeBy{Min: strconv.FormatUint(w.cur, 10), Max: max, Count: 2})
		}
		if _, err := p.Exec(ctx); err != nil {
			return nil, false, mapErr(err)
		}
		b0, found, later := uint64(0), false, false
		for _, d := range w.dirs {
			for _, v := range d.Val() {
				b, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return nil, false, fmt.Errorf("%w: index bucket %q", store.ErrCorrupt, v)
				}
				if !found || b < b0 {
					later = later || found
					b0, found = b, true
				} else if b > b0 {
					later = true
				}
			}
		}
		if !found {
			w.done = true
			break
		}
		p = s.c.Pipeline()
		for sh, d := range w.dirs {
			w.lists[sh] = nil
			if v := d.Val(); len(v) > 0 && v[0] == strconv.FormatUint(b0, 10) {
				w.lists[sh] = p.LRange(ctx, s.kIdxBucket(sh, b0), 0, -1)
			}
		}
		if _, err := p.Exec(ctx); err != nil && err != goredis.Nil {
			return nil, false, mapErr(err)
		}
		var members []string
		for _, l := range w.lists {
			if l == nil {
				continue
			}
			for _, mem := range l.Val() {
				if len(mem) >= 9 && w.in(mem) {
					members = append(members, mem)
				}
			}
		}
		slices.Sort(members)
		members = slices.Compact(members) // an index migrated twice at once (migrateIndex)
		if b0 == w.last {
			w.done = true
		}
		w.cur = b0 + 1
		if !later {
			w.done = true
		}
		if len(members) > 0 {
			return members, !w.done, nil
		}
	}
	return nil, false, nil
}

// trimIndex removes index entries of messages created before cutoff: the bucket numbers
// before its bucket from the directories (the buckets themselves expire: see AcceptMessage),
// and the members before it from the accounts' sorted sets.
func (s *Store) trimIndex(ctx context.Context, cutoff time.Time) error {
	if cutoff.UnixNano() <= 0 {
		return nil
	}
	hi := "(" + string(store.IndexKey(cutoff, ""))
	before := "(" + strconv.FormatUint(uint64(cutoff.UnixNano())/indexBucket, 10)
	p := s.c.Pipeline()
	sets := make([]*goredis.StringSliceCmd, len(s.tags))
	for sh := range s.tags {
		sets[sh] = p.SMembers(ctx, s.kAccounts(sh))
	}
	if _, err := p.Exec(ctx); err != nil {
		return mapErr(err)
	}
	p = s.c.Pipeline()
	for sh := range s.tags {
		p.ZRemRangeByScore(ctx, s.kIdxDir(sh), "-inf", before)
		for _, a := range sets[sh].Val() {
			p.ZRemRangeByLex(ctx, s.kIdxAcc(sh, a), "-", hi)
		}
	}
	_, err := p.Exec(ctx)
	return mapErr(err)
}

// migrateChunk is how many members of an index of the release before migrateIndex moves at
// once.
const migrateChunk = 1000

// migrateIndex moves the index of all accounts that the release before wrote, one sorted set
// per shard (kIdxOld), into buckets, a chunk at a time: each chunk is pushed to its buckets,
// then removed from the sorted set. Open runs it, and so does the sweeper every SweepInterval,
// for what an instance of the release before wrote since. Two instances migrating the same
// chunk at once push it twice; readers drop the copies. The per-account indexes are the
// sorted sets they were.
func (s *Store) migrateIndex(ctx context.Context) error {
	p := s.c.Pipeline()
	cards := make([]*goredis.IntCmd, len(s.tags))
	for sh := range s.tags {
		cards[sh] = p.ZCard(ctx, s.kIdxOld(sh))
	}
	if _, err := p.Exec(ctx); err != nil {
		return mapErr(err)
	}
	for sh := range s.tags {
		old := s.kIdxOld(sh)
		for range cards[sh].Val()/migrateChunk + 1 {
			ms, err := s.c.ZRange(ctx, old, 0, migrateChunk-1).Result()
			if err != nil {
				return mapErr(err)
			}
			if len(ms) == 0 {
				break
			}
			buckets := map[uint64][]any{}
			var order []uint64
			gone := make([]any, len(ms))
			for i, m := range ms {
				gone[i] = m
				if len(m) < 9 {
					continue // dropped: no reader could use it
				}
				b := bucketOf([]byte(m[:8]))
				if _, ok := buckets[b]; !ok {
					order = append(order, b)
				}
				buckets[b] = append(buckets[b], m)
			}
			p := s.c.Pipeline()
			for _, b := range order {
				key := s.kIdxBucket(sh, b)
				p.RPush(ctx, key, buckets[b]...)
				p.ZAdd(ctx, s.kIdxDir(sh), goredis.Z{Score: float64(b), Member: strconv.FormatUint(b, 10)})
				if s.opts.MessageTTL > 0 {
					p.PExpireAt(ctx, key, bucketEnd(b).Add(s.opts.MessageTTL))
				}
			}
			p.ZRem(ctx, old, gone...)
			if _, err := p.Exec(ctx); err != nil {
				return mapErr(err)
			}
		}
	}
	return nil
}
