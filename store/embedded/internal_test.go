package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

func openT(t *testing.T, opts store.Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestDirtyOpFailsAlone: an op that fails after it began writing rolls its batch back; the
// other ops of the batch are retried one by one and succeed, the failed one is unavailable.
func TestDirtyOpFailsAlone(t *testing.T) {
	s := openT(t, storetest.Options())
	ctx := context.Background()
	bucket := []byte("msg")
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte{'k', byte(i)}
			errs[i] = s.write(ctx, func(tx *txn) error {
				if err := tx.Bucket(bucket).Put(key, []byte("v")); err != nil {
					return dirty(err)
				}
				if i == 7 {
					return dirty(errors.New("disk on fire"))
				}
				return nil
			}, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i == 7 {
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("failing op: %v, want ErrUnavailable", err)
			}
		} else if err != nil {
			t.Errorf("op %d: %v", i, err)
		}
	}
	_ = s.view(func(tx *txn) error {
		for i := range 20 {
			got := tx.Bucket(bucket).Get([]byte{'k', byte(i)}) != nil
			if got != (i != 7) {
				t.Errorf("key %d present %v", i, got)
			}
		}
		return nil
	})
}

// TestSweepRemovesExpired checks the sweeper really deletes expired id map and park entries
// (the conformance suite only sees that they are invisible).
func TestSweepRemovesExpired(t *testing.T) {
	opts := storetest.Options()
	opts.IDMapTTL, opts.ParkTTL = 50*time.Millisecond, 50*time.Millisecond
	s := openT(t, opts)
	ctx := context.Background()
	if err := s.AcceptMessage(ctx, storetest.NewMessage("m", "a", "up", 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UpdatePart(ctx, store.PartUpdate{MessageID: "m", Upstream: "up", UpstreamID: "X", Status: pdu.ENROUTE}); err != nil {
		t.Fatal(err)
	}
	if _, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: "Y", State: pdu.DELIVERED}); err != nil || !parked {
		t.Fatal(parked, err)
	}
	count := func() (n int) {
		_ = s.view(func(tx *txn) error {
			for _, b := range [][]byte{bMap, bPark, bExp} {
				_ = tx.Bucket(b).ForEach(func(_, _ []byte) error { n++; return nil })
			}
			gens := tx.Bucket(bMapGen)
			return gens.ForEachBucket(func(k []byte) error {
				return gens.Bucket(k).ForEach(func(_, _ []byte) error { n++; return nil })
			})
		})
		return n
	}
	// The mapping, the parked receipt and its expiry entry: a mapping's generation expires it.
	if n := count(); n != 3 {
		t.Fatalf("%d map/park/exp entries before expiry, want 3", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d entries left after expiry", count())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReopenKeepsQueueOrder: entries come back oldest first after a restart.
func TestReopenKeepsQueueOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(id, "x", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if s, err = Open(path, storetest.Options()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ClaimParts(ctx, "up", "c", 3, 0)
	if err != nil || len(got) != 3 || got[0].MessageID != "a" || got[1].MessageID != "b" || got[2].MessageID != "c" {
		t.Fatalf("after reopen: %v %v", got, err)
	}
}

// TestClaimReadsNoDisk: parts accepted since Open are claimed from memory, with no read
// transaction (bbolt counts them); a replaced part's new text is read from the store, and
// after a reopen the payloads come from disk.
func TestClaimReadsNoDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20 {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprint("m", i), "x", "up", 2)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.ReplaceMessage(ctx, "m19", "x", store.Replacement{ShortMessage: []byte("new text")}); err == nil {
		t.Fatal("replacing a message of two parts succeeded") // only one-part messages can be
	}
	if err := s.AcceptMessage(ctx, storetest.NewMessage("r", "x", "up", 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ReplaceMessage(ctx, "r", "x", store.Replacement{ShortMessage: []byte("new text")}); err != nil {
		t.Fatal(err)
	}
	before := s.db.Stats().TxN
	got, err := s.ClaimParts(ctx, "up", "c", 40, 0)
	if err != nil || len(got) != 40 {
		t.Fatalf("claimed %d parts, %v; want 40", len(got), err)
	}
	if n := s.db.Stats().TxN - before; n != 0 {
		t.Fatalf("claiming 40 parts accepted since Open opened %d read transactions, want 0", n)
	}
	for i, p := range got {
		if want := fmt.Sprint("m", i/2); p.MessageID != want || p.Part != i%2 {
			t.Fatalf("claim %d: %s part %d, want %s part %d", i, p.MessageID, p.Part, want, i%2)
		}
	}
	r, err := s.ClaimParts(ctx, "up", "c", 10, 0)
	if err != nil || len(r) != 1 || r[0].MessageID != "r" || string(r[0].ShortMessage) != "new text" {
		t.Fatalf("the replaced part: %v, %v", r, err)
	}
	if s.db.Stats().TxN == before {
		t.Fatal("the replaced part was not read from the store")
	}
	kept := func() int { s.qmu.Lock(); defer s.qmu.Unlock(); return s.kept }
	if k := kept(); k <= 0 || k > keepMax {
		t.Fatalf("%d payload bytes kept for 40 claimed parts", k)
	}
	var leases []store.Lease
	for _, p := range got[:20] {
		leases = append(leases, p.Lease)
	}
	if err := s.Ack(ctx, leases...); err != nil {
		t.Fatal(err)
	}
	half := kept()
	for _, p := range got[20:] {
		leases = append(leases, p.Lease)
	}
	if err := s.Ack(ctx, leases[20:]...); err != nil {
		t.Fatal(err)
	}
	if k := kept(); k != 0 || half <= 0 {
		t.Fatalf("payload bytes kept: %d after half the parts were acknowledged, %d after all, want >0 and 0", half, k)
	}
	if err := s.Ack(ctx, r[0].Lease); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path, storetest.Options()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if again, err := s.ClaimParts(ctx, "up", "c", 50, 0); err != nil || len(again) != 0 {
		t.Fatalf("after reopen: %d parts claimable, %v; all were acknowledged", len(again), err)
	}
}

// TestFailedAckKeepsEntry: an Ack whose write does not happen (here its context is cancelled,
// which Do notices before or after queueing the write at random) must leave the entry queued:
// counted by QueueLen and claimable again after the visibility time-out. Entries whose delete
// was written after all must not come back.
func TestFailedAckKeepsEntry(t *testing.T) {
	opts := storetest.Options()
	opts.VisibilityTimeout = 100 * time.Millisecond
	s := openT(t, opts)
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	q := store.Queue{Kind: store.SubmitQueue, Name: "up"}
	const n = 40
	for i := range n {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("m%d", i), "acc", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ClaimParts(ctx, "up", "A", n, 0)
	if err != nil || len(got) != n {
		t.Fatalf("claimed %d, %v", len(got), err)
	}
	failed := 0
	for _, task := range got {
		if err := s.Ack(cctx, task.Lease); err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Ack with a cancelled context: %v", err)
			}
			failed++
		}
	}
	// One flusher writes in order: once this write is done, every Ack queued before it is too.
	if err := s.write(ctx, func(*txn) error { return nil }, nil); err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	_ = s.view(func(tx *txn) error {
		return tx.Bucket(bQueues).Bucket(queueBucket(q)).ForEach(func(_, v []byte) error {
			task, err := store.DecodePartTask(v)
			if err != nil {
				t.Fatal(err)
			}
			onDisk[task.MessageID] = true
			return nil
		})
	})
	if len(onDisk) == 0 || failed < len(onDisk) {
		// Each Ack skips the queue with probability 1/2; none doing so in 40 tries is a
		// one in 10^12 event, and more entries on disk than failed Acks is a bug.
		t.Fatalf("%d Acks failed, %d entries left on disk", failed, len(onDisk))
	}
	if l, err := s.QueueLen(ctx, q); err != nil || l != len(onDisk) {
		t.Errorf("QueueLen %d (%v) after failed Acks, want the %d entries on disk", l, err, len(onDisk))
	}
	if early, err := s.ClaimParts(ctx, "up", "B", n, 0); err != nil || len(early) != 0 {
		t.Errorf("claimed %d (%v) before the visibility time-out ran out", len(early), err)
	}
	again := map[string]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for len(again) < len(onDisk) && time.Now().Before(deadline) {
		more, err := s.ClaimParts(ctx, "up", "B", n, opts.VisibilityTimeout)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range more {
			if !task.Reclaimed {
				t.Errorf("%s not marked Reclaimed", task.MessageID)
			}
			again[task.MessageID] = true
		}
	}
	for id := range onDisk {
		if !again[id] {
			t.Errorf("%s, not acknowledged on disk, was not claimable again", id)
		}
	}
	for id := range again {
		if !onDisk[id] {
			t.Errorf("%s, acknowledged on disk, was handed out again", id)
		}
	}
}

// TestAckInFlightNotClaimable: while an Ack's write waits for the disk, its entry is not
// handed out even when its visibility time-out runs out, and still counts in QueueLen.
func TestAckInFlightNotClaimable(t *testing.T) {
	opts := storetest.Options()
	opts.VisibilityTimeout = 50 * time.Millisecond
	s := openT(t, opts)
	ctx := context.Background()
	if err := s.AcceptMessage(ctx, storetest.NewMessage("m", "acc", "up", 1)); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimParts(ctx, "up", "A", 1, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("claimed %d, %v", len(got), err)
	}
	// Hold the single flusher so the Ack's write waits behind it.
	hold, held := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.write(ctx, func(*txn) error {
			close(held)
			<-hold
			return nil
		}, nil)
	}()
	<-held
	acked := make(chan error, 1)
	go func() { acked <- s.Ack(ctx, got[0].Lease) }()
	seq, _, err := parseLease(got[0].Lease)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the Ack has marked its entry.
	for {
		s.qmu.Lock()
		removing := s.q(got[0].Lease.Queue).entries[seq].removing
		s.qmu.Unlock()
		if removing > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if early, err := s.ClaimParts(ctx, "up", "B", 1, 3*opts.VisibilityTimeout); err != nil || len(early) != 0 {
		t.Errorf("claimed %d (%v) while its Ack was being written", len(early), err)
	}
	if l, err := s.QueueLen(ctx, got[0].Lease.Queue); err != nil || l != 1 {
		t.Errorf("QueueLen %d (%v) while the Ack is written, want 1", l, err)
	}
	close(hold)
	if err := <-acked; err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if again, err := s.ClaimParts(ctx, "up", "B", 1, 3*opts.VisibilityTimeout); err != nil || len(again) != 0 {
		t.Errorf("claimed %d (%v) after its Ack was written", len(again), err)
	}
	if l, err := s.QueueLen(ctx, got[0].Lease.Queue); err != nil || l != 0 {
		t.Errorf("QueueLen %d (%v), want 0", l, err)
	}
}

func TestHeaps(t *testing.T) {
	var h seqHeap
	in := []uint64{5, 3, 9, 1, 1, 7, 2, 8, 6, 4, 0}
	for _, n := range in {
		h.push(n)
	}
	var got []uint64
	for len(h) > 0 {
		got = append(got, h.pop())
	}
	if !slices.IsSorted(got) || len(got) != len(in) {
		t.Errorf("seqHeap pops %v", got)
	}
	var d delayHeap
	t0 := time.Now()
	for _, n := range in {
		d.push(delayed{seq: n, at: t0.Add(time.Duration(n) * time.Second)})
	}
	got = got[:0]
	for len(d) > 0 {
		got = append(got, d.pop().seq)
	}
	if !slices.IsSorted(got) || len(got) != len(in) {
		t.Errorf("delayHeap pops %v", got)
	}
}

// TestParkedIndex: a settle looks for early receipts only where the parked index says there
// may be some; the index survives a reopen (rebuilt from disk), follows attaches and sweeps,
// and a rolled-back park does not count.
func TestParkedIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	opts := storetest.Options()
	// Parks outlive the steps up to the attach however slow the box is, and only the test's own
	// sweep removes them (a background sweep raced the attach: 50 ms parks, 50 ms sweeps); that
	// sweep runs with a clock past the parks' life instead of waiting for it.
	opts.ParkTTL = time.Minute
	opts.SweepInterval = time.Hour
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"E1", "E2"} {
		if _, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: id, State: pdu.DELIVERED}); err != nil || !parked {
			t.Fatalf("AddReceipt %s: parked %v, %v", id, parked, err)
		}
	}
	// A park whose transaction rolls back leaves the index alone.
	if err := s.write(ctx, func(tx *txn) error {
		if err := s.park(tx, upKey("up", "E3"), &store.Receipt{Upstream: "up", UpstreamID: "E3", Received: time.Now()}); err != nil {
			return dirty(err)
		}
		return dirty(errors.New("disk on fire"))
	}, nil); err == nil {
		t.Fatal("failing write succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The index is the flusher's: read it there.
	onFlusher := func(f func()) {
		if err := s.write(ctx, func(*txn) error { f(); return nil }, nil); err != nil {
			t.Fatal(err)
		}
	}
	var got int
	onFlusher(func() { got = len(s.f.parked) })
	if got != 2 {
		t.Fatalf("reopened: %d keys in the parked index, want 2", got)
	}
	m := storetest.NewMessage("m1", "acme", "up", 1)
	if err := s.AcceptMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	_, early, err := s.UpdatePart(ctx, store.PartUpdate{MessageID: "m1", Part: 0, Upstream: "up", UpstreamID: "E1", Status: pdu.ENROUTE})
	if err != nil || len(early) != 1 {
		t.Fatalf("UpdatePart after reopen: %d early receipts, %v; want 1", len(early), err)
	}
	var e1, e2, e3 bool
	onFlusher(func() {
		e1, e2, e3 = s.f.mayBeParked(upKey("up", "E1")), s.f.mayBeParked(upKey("up", "E2")), s.f.mayBeParked(upKey("up", "E3"))
	})
	if e1 || !e2 || e3 {
		t.Errorf("parked index after attach: E1 %v E2 %v E3 %v, want false true false", e1, e2, e3)
	}
	if err := s.write(ctx, func(tx *txn) error { return dirty(s.sweepExpired(tx, nowUTC().Add(2*opts.ParkTTL), sweepMax)) }, nil); err != nil {
		t.Fatal(err)
	}
	onFlusher(func() { got = len(s.f.parked) })
	if got != 0 {
		t.Errorf("parked index after the sweep: %d keys, want none", got)
	}
}

// TestMappingBeforeGenerations: a mapping written before the id map had generations (in bMap,
// with its bExp entry) still resolves a receipt, and the sweeper still expires it.
func TestMappingBeforeGenerations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	opts := storetest.Options()
	opts.IDMapTTL = 200 * time.Millisecond
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.AcceptMessage(ctx, storetest.NewMessage("m", "a", "up", 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(opts.IDMapTTL)
	ukey := upKey("up", "OLD")
	if err := db.Update(func(tx *bbolt.Tx) error {
		val := append(binary.BigEndian.AppendUint64(nil, uint64(exp.UnixNano())), 1)
		if err := tx.Bucket(bMap).Put(ukey, append(val, "m"...)); err != nil {
			return err
		}
		return tx.Bucket(bExp).Put(expKey(exp, 'm', ukey), nil)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err = Open(path, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: "OLD", State: pdu.DELIVERED})
	if err != nil || parked || m.Parts[1].Status != pdu.DELIVERED {
		t.Fatalf("receipt for the old mapping: parked %v, %v, message %+v", parked, err, m)
	}
	waitFor(t, "the old mapping swept", func() bool {
		n := 0
		_ = s.view(func(tx *txn) error {
			for _, b := range [][]byte{bMap, bExp} {
				_ = tx.Bucket(b).ForEach(func(_, _ []byte) error { n++; return nil })
			}
			return nil
		})
		return n == 0
	})
}

// TestOldIndexDropped: the global time index an older release wrote (bIdx) is emptied at Open,
// and listings, of all accounts and of one, find every message through the accounts' index.
func TestOldIndexDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	s, err := Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, acc := range []string{"b", "a", "b", "c"} {
		m := storetest.NewMessage(fmt.Sprint("m", i), acc, "up", 1)
		m.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if err := s.AcceptMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bIdx).Put(store.IndexKey(base, "m0"), []byte("b"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err = Open(path, storetest.Options()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bIdx).Stats().KeyN; n != 0 {
			t.Errorf("%d keys left in the old index", n)
		}
		return nil
	})
	for _, tc := range []struct {
		f    store.MessageFilter
		want string
	}{
		{store.MessageFilter{}, "[m0 m1 m2 m3]"},
		{store.MessageFilter{Limit: 1}, "[m0 m1 m2 m3]"},
		{store.MessageFilter{Account: "b"}, "[m0 m2]"},
		{store.MessageFilter{From: base.Add(time.Second), To: base.Add(3 * time.Second)}, "[m1 m2]"},
	} {
		var ids []string
		f := tc.f
		for range 10 {
			ms, next, err := s.ListMessages(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			if next == "" {
				break
			}
			f.Cursor = next
		}
		if got := fmt.Sprint(ids); got != tc.want {
			t.Errorf("ListMessages(%+v): %s, want %s", tc.f, got, tc.want)
		}
	}
}

// TestDeadlineWhileQueuedIsInDoubt: an accept whose context ends after its write was queued
// returns ErrInDoubt, because the group commit may still write it; an accept that returns any
// other error was never written. Deadlines of 0-2 ms end some accepts before they are queued,
// some while queued and let others through.
func TestDeadlineWhileQueuedIsInDoubt(t *testing.T) {
	s := openT(t, storetest.Options())
	const n = 2000
	type result struct {
		id  string
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				id := fmt.Sprintf("d%05d", i)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%50)*40*time.Microsecond)
				err := s.AcceptMessage(ctx, storetest.NewMessage(id, "a", "up", 1))
				cancel()
				results[i] = result{id, err}
			}
		})
	}
	wg.Wait()
	var ok, doubt, refused, doubtWritten int
	for _, r := range results {
		_, err := s.GetMessage(context.Background(), r.id)
		written := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetMessage %s: %v", r.id, err)
		}
		switch {
		case r.err == nil:
			ok++
			if !written {
				t.Errorf("%s: accepted, not found", r.id)
			}
		case errors.Is(r.err, store.ErrInDoubt):
			doubt++
			if !errors.Is(r.err, context.DeadlineExceeded) {
				t.Errorf("%s: in doubt without the context's error: %v", r.id, r.err)
			}
			if written {
				doubtWritten++
			}
		default:
			refused++
			if written {
				t.Errorf("%s: refused (%v) and written anyway", r.id, r.err)
			}
		}
	}
	t.Logf("%d accepted, %d in doubt (%d of them written), %d refused", ok, doubt, doubtWritten, refused)
	if ok+doubt+refused != n {
		t.Fatalf("counted %d results, want %d", ok+doubt+refused, n)
	}
}
