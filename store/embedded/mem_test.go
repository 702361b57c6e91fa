package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// TestRunsMatchModel merges write sets into a memtable, as the syncer does, and checks its
// runs answer every key, in order, as a single ordered map with the same rules would: a
// newer entry hides an older one, a key put fresh stays fresh when put again, and a tombstone
// over a fresh key removes it.
func TestRunsMatchModel(t *testing.T) {
	for _, pattern := range []string{"rising", "scattered", "mixed"} {
		t.Run(pattern, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(pattern))))
			ws, m := newWriteSet(), newMemtable()
			model := map[string]kv{}
			used := map[string]bool{}  // keys ever put: a fresh put needs a key never seen
			fresh := map[string]bool{} // keys ever put fresh
			next := 0
			for batch := range 400 {
				wb := ws.bucket("q", bQueues, nil, true)
				for range 1 + rng.IntN(40) {
					var k string
					switch {
					case pattern == "rising" || pattern == "mixed" && rng.IntN(2) == 0:
						next++
						k = fmt.Sprintf("k%06d", next)
					default:
						k = fmt.Sprintf("k%06d", rng.IntN(next+50))
					}
					var e kv
					switch r := rng.IntN(10); {
					case r < 3:
						e = kv{k: []byte(k), del: true}
					case r < 7 && !used[k]:
						e = kv{k: []byte(k), v: []byte(fmt.Sprint(batch)), fresh: true}
					default:
						e = kv{k: []byte(k), v: []byte(fmt.Sprint(batch))}
					}
					if !e.del {
						used[k] = true
					}
					if e.fresh {
						fresh[k] = true
					}
					wb.set(e)
				}
				// The model takes the batch as the write set holds it, each key once, as a
				// tree did when a batch was merged into it key by key.
				for _, e := range wb.w {
					k := string(e.k)
					if old, ok := model[k]; ok {
						if e, ok = over(old, e); !ok {
							delete(model, k)
							continue
						}
					}
					model[k] = e
				}
				m.merge(ws, uint64(batch+1), time.Now())
				ws.reset()
				if batch%10 != 9 {
					continue
				}
				checkModel(t, m.b["q"], model, fresh)
				if t.Failed() {
					t.Fatalf("after batch %d", batch)
				}
			}
			if runs := len(m.b["q"].runs); runs > 12 {
				t.Errorf("%d runs after 400 batches", runs)
			}
		})
	}
}

func checkModel(t *testing.T, mb *mbucket, model map[string]kv, fresh map[string]bool) {
	t.Helper()
	keys := make([]string, 0, len(model))
	for k := range model {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// A tombstone over a key put fresh in this memtable may be there or not: the runs drop
	// one that meets the fresh put in an older run, where a tree that saw the key removed
	// first kept it. Either way nothing below the memtable has the key. Likewise a key put
	// again after such a removal may be marked fresh or not.
	optional := func(e kv) bool { return e.del && fresh[string(e.k)] }
	show := func(e kv) string {
		return fmt.Sprintf("%s %q %v %v", e.k, e.v, e.del, e.fresh || fresh[string(e.k)])
	}
	var got []string
	mb.scan(func(e kv) bool {
		if !optional(e) {
			got = append(got, show(e))
		}
		return true
	})
	var want []string
	for _, k := range keys {
		e := model[k]
		g, ok := mb.get([]byte(k))
		if optional(e) {
			if ok && !g.del {
				t.Errorf("get %s: %q, want a tombstone or nothing", k, g.v)
			}
			continue
		}
		if !ok || !bytes.Equal(g.v, e.v) || g.del != e.del {
			t.Errorf("get %s: %q %v %v, want %q del %v", k, g.v, g.del, ok, e.v, e.del)
		}
		want = append(want, show(e))
	}
	if !slices.Equal(got, want) {
		t.Errorf("scan: only got %q, only wanted %q", minus(got, want), minus(want, got))
	}
	// A cursor over the runs sees the values (tombstones hide their keys).
	c := &cursor{}
	for j := len(mb.runs) - 1; j >= 0; j-- {
		c.mem = append(c.mem, memIter{w: mb.runs[j]})
	}
	var seen []string
	for k, v := c.First(); k != nil; k, v = c.Next() {
		seen = append(seen, string(k)+"="+string(v))
	}
	var live []string
	for _, k := range keys {
		if e := model[k]; !e.del {
			live = append(live, k+"="+string(e.v))
		}
	}
	if !slices.Equal(seen, live) {
		t.Errorf("cursor:\n got %q\nwant %q", seen, live)
	}
}

// minus returns the strings of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// TestRunsThroughStore writes one group commit at a time (so active holds a run per batch
// until they merge), rewriting and deleting earlier keys and removing fresh ones, and checks
// reads against a model: from the runs, after a crash (replay), after a checkpoint with more
// runs on top, after another crash, and after a clean close.
func TestRunsThroughStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	s := openNeverFreeze(t, path)
	var err error
	model := map[string]string{}
	var live []string // fresh keys not deleted yet
	rng := rand.New(rand.NewPCG(7, 7))
	next := 0
	write := func(n int) {
		t.Helper()
		for range n {
			type change struct {
				k, v  string
				fresh bool
			}
			var cs []change
			for range 1 + rng.IntN(6) {
				switch r := rng.IntN(10); {
				case r < 4 || next < 10:
					next++
					cs = append(cs, change{k: fmt.Sprintf("t%06d", next), v: fmt.Sprint("v", next)})
				case r < 6:
					next++
					cs = append(cs, change{k: fmt.Sprintf("f%06d", next), v: fmt.Sprint("f", next), fresh: true})
				case r < 8 && len(live) > 0:
					i := rng.IntN(len(live))
					cs = append(cs, change{k: live[i]})
					live = slices.Delete(live, i, i+1)
				default: // rewrite or delete an earlier key, put or not
					k := fmt.Sprintf("t%06d", 1+rng.IntN(next))
					if rng.IntN(3) == 0 {
						cs = append(cs, change{k: k})
					} else {
						cs = append(cs, change{k: k, v: fmt.Sprint("w", next)})
					}
				}
			}
			err := s.write(ctx, func(tx *txn) error {
				b := tx.Bucket(bMsg)
				for _, c := range cs {
					var err error
					switch {
					case c.v == "":
						err = b.Delete([]byte(c.k))
					case c.fresh:
						err = b.PutNew([]byte(c.k), []byte(c.v))
					default:
						err = b.Put([]byte(c.k), []byte(c.v))
					}
					if err != nil {
						return dirty(err)
					}
				}
				return nil
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.v == "" {
					delete(model, c.k)
				} else {
					model[c.k] = c.v
					if c.fresh {
						live = append(live, c.k)
					}
				}
			}
		}
	}
	check := func(when string) {
		t.Helper()
		keys := make([]string, 0, len(model))
		for k := range model {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var want, got []string
		for _, k := range keys {
			want = append(want, k+"="+model[k])
		}
		err := s.view(func(tx *txn) error {
			b := tx.Bucket(bMsg)
			for i := 1; i <= next; i++ {
				for _, k := range []string{fmt.Sprintf("t%06d", i), fmt.Sprintf("f%06d", i)} {
					if v, ok := model[k]; string(b.Get([]byte(k))) != v || ok != (b.Get([]byte(k)) != nil) {
						t.Errorf("%s: Get %s = %q, want %q", when, k, b.Get([]byte(k)), v)
					}
				}
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				got = append(got, string(k)+"="+string(v))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: the cursor has %d keys, want %d; only got %q, only wanted %q", when, len(got), len(want), minus(got, want), minus(want, got))
		}
	}
	reopen := func() {
		t.Helper()
		if s, err = open(path, storetest.Options(), neverFreeze); err != nil {
			t.Fatal(err)
		}
	}

	write(300)
	s.mu.RLock()
	runs := len(s.active.b[string(bMsg)].runs)
	s.mu.RUnlock()
	if runs < 2 {
		t.Fatalf("active holds %d runs after 300 batches: the test needs several", runs)
	}
	check("from the runs")
	s.crash()
	reopen()
	check("after replay")
	write(300)
	s.mu.Lock()
	s.tun.freezeBytes = 1
	s.mu.Unlock()
	write(1)
	waitFor(t, "a checkpoint", func() bool { return s.cps.Load() >= 1 })
	s.mu.Lock()
	s.tun.freezeBytes = 1 << 30
	s.mu.Unlock()
	write(100)
	check("after a checkpoint, with runs on top")
	s.crash()
	reopen()
	check("after replay over the checkpoint")
	write(100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	reopen()
	defer s.Close()
	check("after a clean close")
}

// TestSettleKilledBeforeCheckpoint: messages accepted and settled, the process gone before
// any checkpoint (everything only in the WAL and the runs): after replay each is settled,
// its id map answers a receipt, and its queue entry is gone.
func TestSettleKilledBeforeCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	s := openNeverFreeze(t, path)
	var err error
	const n = 200
	for i := range n {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("k%03d", i), "a", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	settled := 0
	for settled < n-10 { // ten stay queued
		tasks, err := s.ClaimParts(ctx, "up", "c", n-10-settled, time.Second)
		if err != nil || len(tasks) == 0 {
			t.Fatalf("claim: %d, %v", len(tasks), err)
		}
		for _, task := range tasks {
			if _, _, err := s.Settle(ctx, task.Lease, store.PartUpdate{MessageID: task.MessageID, Part: task.Part,
				Upstream: "up", UpstreamID: "U" + task.MessageID, Status: pdu.ENROUTE}); err != nil {
				t.Fatal(err)
			}
			settled++
		}
	}
	if s.cps.Load() != 0 {
		t.Fatal("a checkpoint ran: the test wants everything in the WAL only")
	}
	s.crash()

	if s, err = open(path, storetest.Options(), neverFreeze); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); got != 10 {
		t.Fatalf("queue holds %d after replay, want 10", got)
	}
	enroute := 0
	for i := range n {
		id := fmt.Sprintf("k%03d", i)
		m, err := s.GetMessage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != pdu.ENROUTE {
			continue
		}
		enroute++
		if m.Parts[0].UpstreamID != "U"+id {
			t.Fatalf("%s: upstream id %q", id, m.Parts[0].UpstreamID)
		}
		got, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: "U" + id, State: pdu.DELIVERED})
		if err != nil || parked || got.ID != id || got.Status != pdu.DELIVERED {
			t.Fatalf("%s: receipt after replay: parked %v, %v, %v", id, parked, got, err)
		}
	}
	if enroute != n-10 {
		t.Fatalf("%d messages settled after replay, want %d", enroute, n-10)
	}
}

// TestSettleCancelledWhileQueued: a Settle whose context ends while its write is queued
// returns the context's error and leaves its op to the group commit, which still runs it
// (the write may happen after all); the settles after it, reusing ops, are not disturbed.
func TestSettleCancelledWhileQueued(t *testing.T) {
	s := openT(t, storetest.Options())
	ctx := context.Background()
	for _, id := range []string{"c1", "c2", "c3"} {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(id, "a", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := s.ClaimParts(ctx, "up", "c", 3, time.Second)
	if err != nil || len(tasks) != 3 {
		t.Fatalf("claim: %d, %v", len(tasks), err)
	}
	update := func(task *store.PartTask) store.PartUpdate {
		return store.PartUpdate{MessageID: task.MessageID, Part: task.Part, Upstream: "up", UpstreamID: "U" + task.MessageID, Status: pdu.ENROUTE}
	}
	s.mu.Lock() // the stager waits for it, so the write stays queued
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, _, err := s.Settle(cctx, tasks[0].Lease, update(tasks[0]))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	err = <-errc
	s.mu.Unlock()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled settle: %v", err)
	}
	for _, task := range tasks[1:] {
		m, _, err := s.Settle(ctx, task.Lease, update(task))
		if err != nil || m.ID != task.MessageID || m.Parts[0].UpstreamID != "U"+task.MessageID {
			t.Fatalf("settle %s: %v, %v", task.MessageID, m, err)
		}
	}
	waitFor(t, "the cancelled settle's write", func() bool {
		m, err := s.GetMessage(ctx, "c1")
		return err == nil && m.Status == pdu.ENROUTE
	})
	if n, _ := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); n != 0 {
		t.Fatalf("queue holds %d, want 0", n)
	}
}
