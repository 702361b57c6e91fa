package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded/internal/wal"
	"github.com/smppgw/smppgw/store/storetest"
)

// eager freezes and checkpoints after every batch, with a tiny memtable cap, so frozen
// layers, back-pressure and segment rolls happen all the time.
var eager = tuning{freezeBytes: 1, freezeAge: time.Millisecond, maxBytes: 4096, segment: 4096}

// neverFreeze keeps everything in the WAL and the active memtable: no checkpoint runs unless a
// test closes the store.
var neverFreeze = tuning{freezeBytes: 1 << 30, freezeAge: time.Hour, maxBytes: 1 << 30, segment: 1 << 20}

// openNeverFreeze opens the store at path with neverFreeze; the test closes and reopens it itself.
func openNeverFreeze(t *testing.T, path string) *Store {
	t.Helper()
	s, err := open(path, storetest.Options(), neverFreeze)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func harnessWith(tun tuning) storetest.Harness {
	return storetest.Harness{
		Open: func(t testing.TB, opts store.Options) store.Store {
			path := filepath.Join(t.TempDir(), "smppgw.db")
			s, err := open(path, opts, tun)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return &harnessStore{Store: s, path: path, opts: opts}
		},
		Restart: func(t testing.TB, s store.Store) store.Store {
			h := s.(*harnessStore)
			if err := h.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			n, err := open(h.path, h.opts, tun)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { n.Close() })
			return &harnessStore{Store: n, path: h.path, opts: h.opts}
		},
	}
}

// TestConformanceCheckpointing runs the suite with a checkpoint after every batch: every read
// then crosses write set, active, frozen and bbolt layers.
func TestConformanceCheckpointing(t *testing.T) {
	storetest.Run(t, harnessWith(eager))
}

// layersT is a txn over a bbolt file holding base in bucket msg, with memtables built from
// the change lists (newest first), and an empty write set.
func layersT(t *testing.T, base map[string]string, changes ...map[string]string) *txn {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bMsg)
		for k, v := range base {
			b.Put([]byte(k), []byte(v))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	rtx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rtx.Rollback() })
	tx := &txn{rtx: rtx}
	// Oldest first, each merged into a memtable of its own: a "" value is a tombstone.
	for i := len(changes) - 1; i >= 0; i-- {
		ws := newWriteSet()
		w := &txn{rtx: rtx, ws: ws}
		for k, v := range changes[i] {
			if v == "" {
				w.Bucket(bMsg).Delete([]byte(k))
			} else {
				w.Bucket(bMsg).Put([]byte(k), []byte(v))
			}
		}
		m := newMemtable()
		m.merge(ws, uint64(i+1), time.Now())
		tx.mems = append([]*memtable{m}, tx.mems...)
	}
	if len(tx.mems) > 2 {
		t.Fatal("at most two memtables")
	}
	tx.ws = newWriteSet()
	return tx
}

func scan(c *cursor, k []byte, f func() ([]byte, []byte)) []string {
	var out []string
	for k, v := f(); k != nil; k, v = c.Next() {
		out = append(out, string(k)+"="+string(v))
	}
	return out
}

// TestCursorMergesLayers: tombstones hide keys of every layer below, the newest value wins,
// Seek lands on the next visible key whichever layer holds it.
func TestCursorMergesLayers(t *testing.T) {
	tx := layersT(t,
		map[string]string{"a": "a0", "b": "b0", "c": "c0", "d": "d0", "g": "g0"},
		map[string]string{"c": "", "a": "a2", "h": "h2"},          // active
		map[string]string{"b": "", "e": "e1", "g": "", "c": "c1"}, // frozen
	)
	b := tx.Bucket(bMsg)
	// The write set: a key of the frozen layer deleted, one hidden by frozen put back.
	b.Delete([]byte("e"))
	b.Put([]byte("g"), []byte("g3"))
	b.Put([]byte("f"), []byte("f3"))
	c := b.Cursor()
	want := []string{"a=a2", "d=d0", "f=f3", "g=g3", "h=h2"}
	if got := scan(c, nil, c.First); !slices.Equal(got, want) {
		t.Fatalf("First..Next: %v, want %v", got, want)
	}
	for _, tc := range []struct {
		seek string
		want []string
	}{
		{"", want}, {"a", want}, {"b", want[1:]}, {"c", want[1:]}, {"cz", want[1:]},
		{"e", want[2:]}, {"g", want[3:]}, {"h", want[4:]}, {"i", nil},
	} {
		if got := scan(c, nil, func() ([]byte, []byte) { return c.Seek([]byte(tc.seek)) }); !slices.Equal(got, tc.want) {
			t.Errorf("Seek(%q): %v, want %v", tc.seek, got, tc.want)
		}
	}
	for k, v := range map[string]string{"a": "a2", "b": "", "c": "", "d": "d0", "e": "", "f": "f3", "g": "g3", "h": "h2", "x": ""} {
		if got := string(b.Get([]byte(k))); got != v {
			t.Errorf("Get(%q) = %q, want %q", k, got, v)
		}
	}
	// A reader's view (no write set) sees the memtables and bbolt only.
	r := &txn{rtx: tx.rtx, mems: tx.mems}
	rc := r.Bucket(bMsg).Cursor()
	if got := scan(rc, nil, rc.First); !slices.Equal(got, []string{"a=a2", "d=d0", "e=e1", "h=h2"}) {
		t.Fatalf("reader: %v", got)
	}
	if err := r.Bucket(bMsg).Put([]byte("z"), nil); !errors.Is(err, errReadOnly) {
		t.Fatalf("Put in a reader's view: %v", err)
	}
}

// TestCursorSurvivesWritesInWriteSet: an op that rewrites (or deletes) each key as its cursor
// reaches it inserts entries into the write set's sorted slice ahead of the cursor's place
// there; the cursor still visits every key once, in order.
func TestCursorSurvivesWritesInWriteSet(t *testing.T) {
	for _, del := range []bool{false, true} {
		tx := layersT(t, map[string]string{"a": "a0", "c": "c0", "e": "e0", "g": "g0", "i": "i0"},
			map[string]string{"b": "b1", "h": "h1"}) // active
		b := tx.Bucket(bMsg)
		for _, k := range []string{"d", "f", "j"} {
			b.Put([]byte(k), []byte(k+"2")) // the write set: between and after the others
		}
		var got []string
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			got = append(got, string(k)+"="+string(v))
			var err error
			if del {
				err = b.Delete(bytes.Clone(k))
			} else {
				err = b.Put(bytes.Clone(k), append(bytes.Clone(v), 'x'))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"a=a0", "b=b1", "c=c0", "d=d2", "e=e0", "f=f2", "g=g0", "h=h1", "i=i0", "j=j2"}
		if !slices.Equal(got, want) {
			t.Fatalf("delete %v: walked %v, want %v", del, got, want)
		}
		var after []string
		if !del {
			for i := range want {
				want[i] += "x"
			}
			after = want
		}
		if got := scan(c, nil, c.First); !slices.Equal(got, after) {
			t.Fatalf("delete %v: then %v, want %v", del, got, after)
		}
		if n := tx.ws.b[string(bMsg)].len(); n != 10 {
			t.Fatalf("delete %v: write set holds %d keys, want 10", del, n)
		}
	}
}

// TestRecordRoundTrip: a write set logged and replayed into bbolt gives what the layered view
// gave, nested buckets and sequences included.
func TestRecordRoundTrip(t *testing.T) {
	tx := layersT(t, map[string]string{"a": "a0", "b": "b0"})
	ws := tx.ws
	tx.Bucket(bMsg).Delete([]byte("a"))
	tx.Bucket(bMsg).Put([]byte("c"), []byte("c1"))
	tx.Bucket(bMsg).Put([]byte("e"), nil)
	if n, _ := tx.Bucket(bMsg).NextSequence(); n != 1 {
		t.Fatalf("sequence %d", n)
	}
	qb, err := (&bucket{t: tx, top: bQueues, path: string(bQueues)}).CreateBucketIfNotExists([]byte("p\x00up"))
	if err != nil {
		t.Fatal(err)
	}
	qb.Put(be64(7), []byte("task"))
	rec := appendRecord(nil, ws)

	db, err := bbolt.Open(filepath.Join(t.TempDir(), "db2"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(btx *bbolt.Tx) error {
		for _, n := range [][]byte{bMsg, bQueues} {
			b, _ := btx.CreateBucketIfNotExists(n)
			if string(n) == "msg" {
				b.Put([]byte("a"), []byte("a0"))
				b.Put([]byte("b"), []byte("b0"))
			}
		}
		return applyRecord(btx, rec)
	}); err != nil {
		t.Fatal(err)
	}
	db.View(func(btx *bbolt.Tx) error {
		var got []string
		btx.Bucket(bMsg).ForEach(func(k, v []byte) error {
			got = append(got, string(k)+"="+string(v))
			return nil
		})
		if want := []string{"b=b0", "c=c1", "e="}; !slices.Equal(got, want) {
			t.Errorf("msg after replay: %v, want %v", got, want)
		}
		if s := btx.Bucket(bMsg).Sequence(); s != 1 {
			t.Errorf("sequence after replay %d", s)
		}
		q := btx.Bucket(bQueues).Bucket([]byte("p\x00up"))
		if q == nil || string(q.Get(be64(7))) != "task" {
			t.Errorf("nested bucket after replay: %v", q)
		}
		return nil
	})
	if err := db.Update(func(btx *bbolt.Tx) error { return applyRecord(btx, rec[:len(rec)-2]) }); !errors.Is(err, errRecord) {
		t.Errorf("a cut record: %v, want errRecord", err)
	}
}

// crash stops s as a killed process would: no final checkpoint, the WAL left as it is.
func (s *Store) crash() {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.closing)
		s.sweeper.Wait()
		s.wq.close()
		close(s.cpStop)
		s.cpWG.Wait()
		s.log.Close(false)
		s.db.Close()
	})
}

func walPos(t *testing.T, s *Store) uint64 {
	var pos uint64
	s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(keyWALPos); len(v) == 8 {
			pos = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return pos
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestReplayAfterCheckpoint: a message checkpointed into bbolt, then changes only in the WAL,
// then a crash: reopening replays the WAL past bbolt's position, and removes it.
func TestReplayAfterCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	tun := tuning{freezeBytes: 1, freezeAge: time.Hour, maxBytes: 1 << 30, segment: 1 << 20}
	s, err := open(path, storetest.Options(), tun)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AcceptMessage(ctx, storetest.NewMessage("m1", "a", "up", 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a checkpoint", func() bool { return s.cps.Load() >= 1 })
	pos := walPos(t, s)
	if pos == 0 {
		t.Fatal("no WAL position in bbolt after a checkpoint")
	}
	if segs, _ := wal.Segments(path + ".wal"); len(segs) != 1 || segs[0] <= pos {
		t.Fatalf("segments %v after a checkpoint at %d: the covered ones should be gone", segs, pos)
	}
	s.mu.Lock()
	s.tun.freezeBytes = 1 << 40
	s.mu.Unlock()
	if err := s.AcceptMessage(ctx, storetest.NewMessage("m2", "a", "up", 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UpdatePart(ctx, store.PartUpdate{MessageID: "m1", Part: 1, Upstream: "up", UpstreamID: "U1", Status: pdu.ENROUTE}); err != nil {
		t.Fatal(err)
	}
	s.crash()

	s, err = open(path, storetest.Options(), tun)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p := walPos(t, s); p <= pos {
		t.Fatalf("WAL position %d after replay, was %d", p, pos)
	}
	if segs, _ := wal.Segments(path + ".wal"); len(segs) != 1 {
		t.Fatalf("segments after replay: %v, want only the new one", segs)
	}
	m1, err := s.GetMessage(ctx, "m1")
	if err != nil || m1.Parts[1].UpstreamID != "U1" {
		t.Fatalf("m1 after replay: %+v, %v", m1, err)
	}
	if _, err := s.GetMessage(ctx, "m2"); err != nil {
		t.Fatalf("m2 after replay: %v", err)
	}
	if n, _ := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); n != 3 {
		t.Fatalf("queue holds %d after replay, want 3", n)
	}
}

// TestCloseLeavesEmptyWAL: a clean close checkpoints everything; reopening finds it in bbolt.
func TestCloseLeavesEmptyWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	s, err := Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprint("m", i), "a", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if segs, _ := wal.Segments(path + ".wal"); len(segs) != 0 {
		t.Fatalf("segments after Close: %v", segs)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bMsg).Stats().KeyN; n != 10 {
			t.Errorf("%d messages in bbolt after Close, want 10", n)
		}
		return nil
	})
}

// TestBackPressure: while a checkpoint cannot finish, writers fill active up to its cap and
// then wait; once the checkpoint goes on, every write completes.
func TestBackPressure(t *testing.T) {
	tun := tuning{freezeBytes: 1, freezeAge: time.Hour, maxBytes: 16 << 10, segment: 1 << 20}
	opts := storetest.Options()
	opts.MaxBatch = 4 // active passes its cap by at most one batch
	s, err := open(filepath.Join(t.TempDir(), "db"), opts, tun)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	release := make(chan struct{})
	var once sync.Once
	s.cpHook = func() { <-release }
	defer once.Do(func() { close(release) })
	ctx := context.Background()
	// The first batch is frozen and its checkpoint blocks.
	if err := s.AcceptMessage(ctx, storetest.NewMessage("first", "a", "up", 1)); err != nil {
		t.Fatal(err)
	}
	const n = 200 // ~1 KiB of memtable each: past the cap
	var done sync.WaitGroup
	var acked sync.Map
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprint("m", i), "a", "up", 1)); err != nil {
				t.Error(err)
				return
			}
			acked.Store(i, true)
		}()
	}
	count := func() (k int) {
		acked.Range(func(_, _ any) bool { k++; return true })
		return k
	}
	activeSize := func() int {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.active.size
	}
	waitFor(t, "active to reach its cap", func() bool { return activeSize() >= tun.maxBytes })
	time.Sleep(50 * time.Millisecond) // the last batch's writers are answered
	stalled := count()
	time.Sleep(200 * time.Millisecond)
	size := activeSize()
	if got := count(); got != stalled || stalled == n || size > tun.maxBytes+8<<10 {
		t.Fatalf("%d then %d of %d writes done while the checkpoint is blocked, active %d bytes (cap %d)", stalled, got, n, size, tun.maxBytes)
	}
	once.Do(func() { close(release) })
	done.Wait()
	if got := count(); got != n {
		t.Fatalf("%d of %d writes done after the checkpoint went on", got, n)
	}
	t.Logf("%d of %d writes done while the checkpoint was blocked; active %d bytes", stalled, n, size)
}

// TestIdleCheckpoint: with no writes after it, a batch still reaches bbolt after the freeze
// age, and its WAL segment is removed.
func TestIdleCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	tun := tuning{freezeBytes: 1 << 30, freezeAge: 50 * time.Millisecond, maxBytes: 1 << 30, segment: 1 << 20}
	s, err := open(path, storetest.Options(), tun)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AcceptMessage(context.Background(), storetest.NewMessage("m1", "a", "up", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an idle checkpoint", func() bool { return s.cps.Load() >= 1 })
	s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bMsg).Get([]byte("m1")) == nil {
			t.Error("m1 not in bbolt after the idle checkpoint")
		}
		return nil
	})
	if segs, _ := wal.Segments(path + ".wal"); len(segs) != 1 {
		t.Fatalf("segments after the idle checkpoint: %v, want the current one only", segs)
	}
}

// TestFreshKeyCancels: a tombstone over a key put fresh in the same memtable removes it (in a
// write set and in active), where a tombstone over any other key stays to hide the layers below.
func TestFreshKeyCancels(t *testing.T) {
	ws, active := newWriteSet(), newMemtable()
	wb := ws.bucket("q", bQueues, nil, true)
	wb.set(kv{k: []byte("a"), v: []byte("1"), fresh: true})
	wb.set(kv{k: []byte("b"), v: []byte("2"), fresh: true})
	wb.set(kv{k: []byte("c"), v: []byte("3")})
	wb.set(kv{k: []byte("a"), del: true}) // fresh in this write set: gone
	wb.set(kv{k: []byte("c"), del: true}) // maybe below: a tombstone
	if got := wsKeys(wb); got != "b+ c-" {
		t.Fatalf("write set after the deletes: %q", got)
	}
	active.merge(ws, 1, time.Now())
	size := active.size
	ws.reset()
	wb = ws.bucket("q", bQueues, nil, true)
	wb.set(kv{k: []byte("b"), v: []byte("22")}) // put again: still fresh
	active.merge(ws, 2, time.Now())
	ws.reset()
	wb = ws.bucket("q", bQueues, nil, true)
	wb.set(kv{k: []byte("b"), del: true}) // fresh in active: gone from it
	active.merge(ws, 3, time.Now())
	mb := active.b["q"]
	if got := wsKeys(mb); got != "c-" {
		t.Fatalf("active after the deletes: %q", got)
	}
	if want := size - (1 + 1 + kvOverhead); active.size != want {
		t.Fatalf("active counts %d bytes, want %d", active.size, want)
	}
}

// wsKeys lists a bucket's keys, + for a value and - for a tombstone.
func wsKeys(mb *mbucket) string {
	var out []string
	mb.scan(func(e kv) bool {
		mark := "+"
		if e.del {
			mark = "-"
		}
		out = append(out, string(e.k)+mark)
		return true
	})
	return strings.Join(out, " ")
}

// TestSettledEntryNeverReachesBbolt: messages accepted and settled within one checkpoint
// interval leave no queue entry in the memtable, so the checkpoint writes none into bbolt.
func TestSettledEntryNeverReachesBbolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	s, err := open(path, storetest.Options(), neverFreeze)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprint("m", i), "a", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := s.ClaimParts(ctx, "up", "c", n, time.Second)
	if err != nil || len(tasks) != n {
		t.Fatalf("claimed %d, %v; want %d", len(tasks), err, n)
	}
	for _, task := range tasks {
		if _, _, err := s.Settle(ctx, task.Lease, store.PartUpdate{MessageID: task.MessageID, Part: task.Part,
			Upstream: "up", UpstreamID: "U" + task.MessageID, Status: pdu.ENROUTE}); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.RLock()
	qb := s.active.b[bucketPath(bQueues, queueBucket(store.Queue{Kind: store.SubmitQueue, Name: "up"}))]
	left := -1
	if qb != nil {
		left = qb.len()
	}
	s.mu.RUnlock()
	if left != 0 {
		t.Fatalf("active's queue bucket holds %d keys after every entry was settled, want 0", left)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		if k := tx.Bucket(bMsg).Stats().KeyN; k != n {
			t.Errorf("%d messages in bbolt, want %d", k, n)
		}
		q := tx.Bucket(bQueues).Bucket(queueBucket(store.Queue{Kind: store.SubmitQueue, Name: "up"}))
		if q == nil {
			t.Fatal("no queue bucket in bbolt")
		}
		if k := q.Stats().KeyN; k != 0 {
			t.Errorf("%d queue entries in bbolt, want 0", k)
		}
		if seq := q.Sequence(); seq != n {
			t.Errorf("queue sequence %d in bbolt, want %d", seq, n)
		}
		return nil
	})
}

// TestAcceptSeesIdsAcrossGap: the run of ids bbolt has none of, which spares accepts a seek,
// never hides an id bbolt has: one at its end, or one a checkpoint wrote into it since.
func TestAcceptSeesIdsAcrossGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	s := openNeverFreeze(t, path)
	var err error
	accept := func(id string) error { return s.AcceptMessage(ctx, storetest.NewMessage(id, "a", "up", 1)) }
	for _, id := range []string{"m10", "m30"} {
		if err := accept(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = open(path, storetest.Options(), neverFreeze); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, step := range []struct {
		id     string
		exists bool
	}{
		{"m20", false}, // a seek finds m30: the gap is [m20, m30)
		{"m25", false}, // in the gap
		{"m30", true},  // its end
		{"m10", true},  // before it
		{"m25", true},  // in the memtable now
	} {
		if err := accept(step.id); errors.Is(err, store.ErrExists) != step.exists || err != nil && !step.exists {
			t.Fatalf("accept %s: %v, want exists %v", step.id, err, step.exists)
		}
	}
	// A checkpoint writes m20 and m25 into bbolt and empties the memtables: the gap, found
	// before, must not answer for them now.
	cps := s.cps.Load()
	s.mu.Lock()
	s.tun.freezeBytes = 1
	s.mu.Unlock()
	if err := accept("m26"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a checkpoint", func() bool { return s.cps.Load() > cps })
	// That checkpoint may have been of a freeze made before m26 merged (the syncer's freeze
	// check after m25's batch can see freezeBytes 1), and m26's own check may have found that
	// checkpoint running: with no write to come, freeze what is left here (the syncer is idle).
	waitFor(t, "empty memtables", func() bool {
		s.mu.RLock()
		empty, freeze := s.frozen == nil && s.active.empty(), s.frozen == nil && !s.active.empty()
		s.mu.RUnlock()
		if freeze {
			s.maybeFreeze()
		}
		return empty
	})
	s.mu.Lock()
	s.tun.freezeBytes = 1 << 30
	s.mu.Unlock()
	for _, id := range []string{"m20", "m25", "m26"} {
		if err := accept(id); !errors.Is(err, store.ErrExists) {
			t.Fatalf("accept %s after the checkpoint: %v, want ErrExists", id, err)
		}
	}
}

// bucketPath is a memtable's key of bucket top/sub.
func bucketPath(top, sub []byte) string {
	if sub == nil {
		return string(top)
	}
	p := make([]byte, 0, len(top)+1+len(sub))
	return string(append(append(append(p, top...), 0), sub...))
}
