package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

func openCluster(t testing.TB, c *redistest.Cluster, cfg Config) *Store {
	t.Helper()
	cfg.Addrs, cfg.Cluster = c.Addrs(), true
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformanceCluster3 runs the suite on a Redis Cluster of three masters, where a store's
// keys live on different nodes. The subtests share the cluster, each under its own prefix;
// a restart kills and restarts every node.
func TestConformanceCluster3(t *testing.T) {
	c := redistest.StartClusterN(t, redistest.ClusterOptions{Fsync: "always"})
	n := 0
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB, opts store.Options) store.Store {
			n++
			cfg := Config{Options: opts, Prefix: fmt.Sprintf("t%d:", n)}
			return &harnessStore{Store: openCluster(t, c, cfg), cfg: cfg}
		},
		Restart: func(t testing.TB, s store.Store) store.Store {
			h := s.(*harnessStore)
			c.Restart()
			h.Close()
			return &harnessStore{Store: openCluster(t, c, h.cfg), cfg: h.cfg}
		},
	})
}

// clusterCensus reads what every master holds under prefix: the keys (DBSIZE), the message
// records, and the submit queue entries by message id, with the master each was found on.
type clusterCensus struct {
	dbsize  []int64
	records []map[string]bool           // per master: message ids with a record
	entries []map[string]map[int]string // per master: message id -> part -> stream id
}

func census(t *testing.T, c *redistest.Cluster, prefix string) clusterCensus {
	t.Helper()
	ctx := context.Background()
	var cs clusterCensus
	for _, m := range c.Masters() {
		cl := goredis.NewClient(&goredis.Options{Addr: m.Addr(), MaxRetries: -1})
		n, err := cl.DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		records, entries := map[string]bool{}, map[string]map[int]string{}
		it := cl.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			k := it.Val()
			switch typ := cl.Type(ctx, k).Val(); typ {
			case "string":
				if !strings.HasPrefix(k, prefix+"m:") {
					continue
				}
				v, err := cl.Get(ctx, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				m, err := decodeValue(k, v)
				if err != nil {
					t.Fatalf("record %s: %v", k, err)
				}
				records[m.ID] = true
			case "stream":
				xs, err := cl.XRange(ctx, k, "-", "+").Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range xs {
					p, _ := x.Values["p"].(string)
					task, err := store.DecodePartTask([]byte(p))
					if err != nil {
						t.Fatalf("entry %s %s: %v", k, x.ID, err)
					}
					if entries[task.MessageID] == nil {
						entries[task.MessageID] = map[int]string{}
					}
					if old, dup := entries[task.MessageID][task.Part]; dup {
						t.Errorf("message %s part %d queued twice: %s and %s", task.MessageID, task.Part, old, x.ID)
					}
					entries[task.MessageID][task.Part] = x.ID
				}
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		cs.dbsize = append(cs.dbsize, n)
		cs.records = append(cs.records, records)
		cs.entries = append(cs.entries, entries)
	}
	return cs
}

// TestClusterSpread: after N accepts of one upstream's messages on three masters, each master
// holds about a third of the message records and of the queue entries (one upstream's queue
// used to live in one slot: one master held every entry).
func TestClusterSpread(t *testing.T) {
	c := redistest.StartClusterN(t, redistest.ClusterOptions{})
	s := openCluster(t, c, Config{Options: storetest.Options()})
	ctx := context.Background()
	const n = 600
	for i := range n {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("sp%04d", i), "acme", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	cs := census(t, c, s.prefix)
	if len(cs.dbsize) != 3 {
		t.Fatalf("%d masters, want 3", len(cs.dbsize))
	}
	var records, entries int
	for i := range cs.dbsize {
		nr, ne := len(cs.records[i]), len(cs.entries[i])
		records, entries = records+nr, entries+ne
		t.Logf("master %d: DBSIZE %d, %d records, %d messages queued", i, cs.dbsize[i], nr, ne)
		// A third is 200; 16 shards over three masters are 5, 5 and 6 of them.
		if nr < n/5 || ne < n/5 || cs.dbsize[i] < n/5 {
			t.Errorf("master %d: DBSIZE %d, %d records, %d queued; want each at least %d", i, cs.dbsize[i], nr, ne, n/5)
		}
		for id := range cs.entries[i] {
			if !cs.records[i][id] {
				t.Errorf("message %s queued on master %d, its record is not there", id, i)
			}
		}
	}
	if records != n || entries != n {
		t.Errorf("%d records and %d queued messages in all, want %d each", records, entries, n)
	}
	if got, err := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); err != nil || got != n {
		t.Errorf("QueueLen %d %v, want %d", got, err, n)
	}
}

// TestClusterAcceptAtomic kills the master holding the most queue entries while writers
// accept 3-part messages, restarts it, and counts: every record has its three parts queued,
// every queued part has its record, and every accept that returned nil is there. With the
// accept in two steps (record, then entries in the queue's slot) the accepts that wrote their
// record before the kill and failed to queue left orphan records.
func TestClusterAcceptAtomic(t *testing.T) {
	c := redistest.StartClusterN(t, redistest.ClusterOptions{Fsync: "always"})
	s := openCluster(t, c, Config{Options: storetest.Options()})
	// The writers pace themselves (1 ms after each accept) and the budget is far beyond what they
	// reach before stop, so they are still writing while the master is down: with 2,000 and no pace a
	// quick run spent the whole budget before the kill and no accept failed.
	const writers, parts, budget = 8, 3, 20000
	var (
		next, failed atomic.Int64
		mu           sync.Mutex
		ok           []string
		wg           sync.WaitGroup
	)
	stop := make(chan struct{})
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := next.Add(1)
				if i > budget {
					return
				}
				id := fmt.Sprintf("at%05d", i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := s.AcceptMessage(ctx, storetest.NewMessage(id, "acme", "up", parts))
				cancel()
				if err != nil {
					if !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("accept %s: %v", id, err)
					}
					failed.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				mu.Lock()
				ok = append(ok, id)
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for next.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	cs := census(t, c, s.prefix)
	victim, most := 0, -1
	for i, e := range cs.entries {
		if len(e) > most {
			victim, most = i, len(e)
		}
	}
	c.Masters()[victim].Kill()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() == 0 {
		t.Fatalf("no accept failed with master %d down", victim)
	}
	restartKilled(t, c)

	cs = census(t, c, s.prefix)
	records, entries := map[string]bool{}, map[string]map[int]string{}
	for i := range cs.records {
		for id := range cs.records[i] {
			records[id] = true
		}
		for id, ps := range cs.entries[i] {
			entries[id] = ps
		}
	}
	for id := range records {
		if len(entries[id]) != parts {
			t.Errorf("record %s with %d parts queued, want %d (an orphan)", id, len(entries[id]), parts)
		}
	}
	for id := range entries {
		if !records[id] {
			t.Errorf("message %s queued without a record", id)
		}
	}
	for _, id := range ok {
		if !records[id] {
			t.Errorf("accepted %s is gone", id)
		}
	}
	t.Logf("%d accepted, %d refused, %d records, master %d killed", len(ok), failed.Load(), len(records), victim)
}

// restartKilled starts again the nodes that were killed and waits for the cluster.
func restartKilled(t *testing.T, c *redistest.Cluster) {
	t.Helper()
	for _, n := range c.Nodes {
		if !n.Running() {
			n.Restart()
		}
	}
	c.WaitOK()
}

// TestClusterMasterLostForGood: a master dies and never comes back; its replica is promoted. Writes
// to the slots it held succeed again soon after the promotion: the client reloads its slot map every
// clusterStateReload. With go-redis's default (a minute) it went on dialing the dead address for up
// to that minute, since only a MOVED reply makes it reload sooner and a dead node sends none.
func TestClusterMasterLostForGood(t *testing.T) {
	c := redistest.StartClusterN(t, redistest.ClusterOptions{Replicas: 1})
	s := openCluster(t, c, Config{Options: storetest.Options()})
	ctx := context.Background()
	victim := c.Masters()[1]
	var survivor *redistest.Server
	for _, n := range c.Nodes {
		if n != victim {
			survivor = n
			break
		}
	}
	view := goredis.NewClient(&goredis.Options{Addr: survivor.Addr(), MaxRetries: -1})
	t.Cleanup(func() { view.Close() })
	slotsOf, err := view.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// owner is who serves slot in slotsOf, a CLUSTER SLOTS reply.
	owner := func(slotsOf []goredis.ClusterSlot, slot int) string {
		for _, r := range slotsOf {
			if slot >= r.Start && slot <= r.End && len(r.Nodes) > 0 {
				return r.Nodes[0].Addr
			}
		}
		return ""
	}
	slotOf := func(id string) int { return int(crc16(strings.Trim(s.tags[s.shardOf(id)], "{}"))) % slots }
	var ids []string
	for i := 0; len(ids) < 200; i++ {
		if id := fmt.Sprintf("lost%05d", i); owner(slotsOf, slotOf(id)) == victim.Addr() {
			ids = append(ids, id)
		}
	}
	if err := s.AcceptMessage(ctx, storetest.NewMessage(ids[0], "acme", "up", 1)); err != nil {
		t.Fatalf("accept on the victim's slots: %v", err)
	}
	victim.Kill()
	// Its replica is promoted after cluster-node-timeout (2 s) and an election.
	deadline := time.Now().Add(30 * time.Second)
	for {
		sl, err := view.ClusterSlots(ctx).Result()
		if o := owner(sl, slotOf(ids[0])); err == nil && o != "" && o != victim.Addr() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the victim's replica was not promoted within 30 s: %v %v", sl, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.WaitOK()
	promoted := time.Now()
	var last error
	for _, id := range ids[1:] {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		last = s.AcceptMessage(actx, storetest.NewMessage(id, "acme", "up", 1))
		cancel()
		if last == nil {
			t.Logf("accepts on the promoted replica's slots resumed %v after the promotion", time.Since(promoted).Round(time.Millisecond))
			return
		}
		if time.Since(promoted) > 10*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no accept on the promoted replica's slots within 10 s of the promotion: %v", last)
}
