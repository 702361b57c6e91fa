package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// The release before kept a message as a hash (key m:{shard tag}id, the key a value has
// now), which Open converts (migrateMessages):
//
//	b        the record as accepted (store.AppendMessage); the fields below override it
//	s        message status           hist   "state:unixnano;" per status change
//	n        number of parts          u      updated, unix nanoseconds
//	ps<i>    part status              pe<i>  part error code
//	pu<i>    part upstream            pi<i>  part upstream id
//	pt<i>    part updated (ns)        pq<i>  part submitted (ns)
//	so<i>    a settle's outcome that is not final, "state:error:ns"
//	sf<i>    a settle's final outcome, the same way
//
// The outcomes (so<i>, sf<i>) were applied by readers, oldest first, with the store's rules.

// decodeHash rebuilds a message from its hash (an HGETALL reply): the accepted record,
// overlaid with the fields later writes changed, then the outcomes applied.
func decodeHash(id string, h map[string]string) (*store.Message, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: message %s: %s", store.ErrCorrupt, id, what)
	}
	b, ok := h["b"]
	if !ok {
		return nil, bad("no record")
	}
	m, err := store.DecodeMessage([]byte(b))
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	state := func(f string, into *pdu.MessageState) error {
		if v, ok := h[f]; ok {
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil {
				return bad(f)
			}
			*into = pdu.MessageState(n)
		}
		return nil
	}
	stamp := func(f string, into *time.Time) error {
		if v, ok := h[f]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad(f)
			}
			*into = time.Unix(0, n).UTC()
		}
		return nil
	}
	if err := state("s", &m.Status); err != nil {
		return nil, err
	}
	if err := stamp("u", &m.UpdatedAt); err != nil {
		return nil, err
	}
	if hist, ok := h["hist"]; ok {
		m.History = m.History[:0]
		for hist != "" {
			var e string
			e, hist, _ = strings.Cut(hist, ";")
			if e == "" {
				continue
			}
			st, at, ok := strings.Cut(e, ":")
			sn, err1 := strconv.ParseUint(st, 10, 8)
			an, err2 := strconv.ParseInt(at, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, bad("history")
			}
			m.History = append(m.History, store.StatusChange{State: pdu.MessageState(sn), At: time.Unix(0, an).UTC()})
		}
	}
	var ev []store.PartUpdate
	for i := range m.Parts {
		p := &m.Parts[i]
		is := strconv.Itoa(i)
		if err := state("ps"+is, &p.Status); err != nil {
			return nil, err
		}
		if v, ok := h["pe"+is]; ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, bad("pe" + is)
			}
			p.Error = uint32(n)
		}
		if v, ok := h["pu"+is]; ok {
			p.Upstream = v
		}
		if v, ok := h["pi"+is]; ok {
			p.UpstreamID = v
		}
		if err := stamp("pt"+is, &p.UpdatedAt); err != nil {
			return nil, err
		}
		if err := stamp("pq"+is, &p.SubmittedAt); err != nil {
			return nil, err
		}
		for _, name := range [2]string{"so" + is, "sf" + is} {
			v, ok := h[name]
			if !ok {
				continue
			}
			st, rest, ok1 := strings.Cut(v, ":")
			code, at, ok2 := strings.Cut(rest, ":")
			sn, err1 := strconv.ParseUint(st, 10, 8)
			cn, err2 := strconv.ParseUint(code, 10, 32)
			an, err3 := strconv.ParseInt(at, 10, 64)
			if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil {
				return nil, bad(name)
			}
			ev = append(ev, store.PartUpdate{Part: i, Status: pdu.MessageState(sn), Error: uint32(cn), At: time.Unix(0, an).UTC()})
		}
	}
	slices.SortStableFunc(ev, func(a, b store.PartUpdate) int { return a.At.Compare(b.At) })
	for i := range ev {
		store.ApplyPartUpdate(m, &ev[i])
	}
	return m, nil
}

// migrateScan is how many keys one SCAN of migrateMessages asks for.
const migrateScan = 1000

// valuesLayout is the layout key's value once the messages are values (see migrateMessages).
const valuesLayout = "values"

// migrateMessages converts every message hash the release before wrote into a value (see
// value.go), keeping its time to live: a SCAN of the message keys that are hashes (on every
// master of a Cluster), then per hash an HGETALL and a script that replaces it unless it
// changed in between (then it is read again, a few times at most). Open runs it, unless the
// layout key says a conversion finished before (every Open would scan the whole keyspace
// otherwise); a store of no data gets the key at its first Open, and the conversion's time (the
// layout-at key). Instances of the release before still running meanwhile (a rolling upgrade)
// write hashes after the conversion: convertLate, at each later start within upgradeWindow of it,
// converts those, so the last instance upgraded converts what the last old one wrote.
func (s *Store) migrateMessages(ctx context.Context) error {
	v, err := s.c.Get(ctx, s.kLayout()).Result()
	if err != nil && err != goredis.Nil {
		return mapErr(err)
	}
	if v == valuesLayout {
		return nil
	}
	if err := s.scanHashes(ctx); err != nil {
		return err
	}
	s.convertedAtOpen = true
	if err := s.c.Set(ctx, s.kLayoutAt(), nowUTC().Unix(), 0).Err(); err != nil {
		return mapErr(err)
	}
	return mapErr(s.c.Set(ctx, s.kLayout(), valuesLayout, 0).Err())
}

// upgradeWindow is how long after the conversion each start looks for message hashes again
// (convertLate): the time a rolling upgrade may take.
const upgradeWindow = 7 * 24 * time.Hour

// convertLate converts the message hashes written since the conversion by instances of the
// release before (see migrateMessages), when the conversion was less than upgradeWindow ago. The
// sweeper runs it once at start, in the background: until then such a message fails to read
// (WRONGTYPE) and is retried like any store error, it is not lost.
func (s *Store) convertLate(ctx context.Context) error {
	at, err := s.c.Get(ctx, s.kLayoutAt()).Int64()
	if err == goredis.Nil {
		return nil
	}
	if err != nil {
		return mapErr(err)
	}
	if nowUTC().Sub(time.Unix(at, 0)) > upgradeWindow {
		return nil
	}
	return s.scanHashes(ctx)
}

// scanHashes converts every message hash, on every master of a Cluster.
func (s *Store) scanHashes(ctx context.Context) error {
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		return mapErr(cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return s.migrateNode(ctx, c)
		}))
	}
	return s.migrateNode(ctx, s.c)
}

func (s *Store) migrateNode(ctx context.Context, c goredis.Cmdable) error {
	match := s.prefix + "m:*"
	var cursor uint64
	for {
		keys, next, err := c.ScanType(ctx, cursor, match, migrateScan, "hash").Result()
		if err != nil {
			return mapErr(err)
		}
		for _, k := range keys {
			if err := s.convertHash(ctx, c, k); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// convertHash converts the message hash at key k.
func (s *Store) convertHash(ctx context.Context, c goredis.Cmdable, k string) error {
	// k is prefix "m:" {tag} id.
	_, id, ok := strings.Cut(strings.TrimPrefix(k, s.prefix+"m:"), "}")
	if !ok {
		return nil // not a key of ours
	}
	for range 5 {
		h, err := c.HGetAll(ctx, k).Result()
		if err != nil {
			return mapErr(err)
		}
		if len(h) == 0 {
			return nil // gone (expired)
		}
		m, err := decodeHash(id, h)
		if err != nil {
			return fmt.Errorf("redis: convert message %s: %w", id, err)
		}
		n, err := convertHash.Run(ctx, c, []string{k}, appendValue(nil, m), len(h)).Int()
		if err != nil {
			return mapErr(err)
		}
		if n != 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: redis: message %s changed while it was converted", store.ErrUnavailable, id)
}
