package metrics

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded"
	"github.com/smppgw/smppgw/store/storetest"
)

var _ store.Store = (*Store)(nil)

type timedStore struct {
	*Store
	path string
	opts store.Options
}

func openTimed(t testing.TB, path string, opts store.Options) *timedStore {
	st, err := embedded.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &timedStore{Store: NewStore(st), path: path, opts: opts}
}

// TestStoreConformance: the timing decorator changes nothing the store conformance suite sees.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB, opts store.Options) store.Store {
			return openTimed(t, filepath.Join(t.TempDir(), "smppgw.db"), opts)
		},
		Restart: func(t testing.TB, s store.Store) store.Store {
			ts := s.(*timedStore)
			if err := ts.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return openTimed(t, ts.path, ts.opts)
		},
	})
}

// TestStoreCounts: operations are timed by op, failures other than not found are counted, and
// receipts are counted by state.
func TestStoreCounts(t *testing.T) {
	s := openTimed(t, filepath.Join(t.TempDir(), "smppgw.db"), storetest.Options())
	ctx := t.Context()
	if _, err := s.GetMessage(ctx, "nope"); err == nil {
		t.Fatal("GetMessage of an unknown id succeeded")
	}
	if err := s.AcceptMessage(ctx, &store.Message{}); err == nil {
		t.Fatal("AcceptMessage of an empty message succeeded")
	}
	if _, _, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: "x1", State: 2}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(s.hist, "smppgw_store_operation_duration_seconds"); n != numOps {
		t.Errorf("%d op series, want %d", n, numOps)
	}
	for op, want := range map[string]float64{"get_message": 0, "accept_message": 1, "add_receipt": 0} {
		if got := testutil.ToFloat64(s.errs.WithLabelValues(op)); got != want {
			t.Errorf("errors of %s = %v, want %v", op, got, want)
		}
	}
	if got := testutil.ToFloat64(s.receipts.WithLabelValues("DELIVERED")); got != 1 {
		t.Errorf("DELIVERED receipts = %v, want 1", got)
	}
}

type acceptDone chan error

func (c acceptDone) AcceptDone(err error) { c <- err }

type settleDone chan error

func (c settleDone) SettleDone(_ *store.Message, _ []store.Receipt, err error) { c <- err }

// TestStoreCountsAsync: the asynchronous writes are counted as their synchronous namesakes, each
// once, when their completion comes: two accepts and a settle observed, one accept failed; over a
// store without them, they run synchronously and are counted the same.
func TestStoreCountsAsync(t *testing.T) {
	s := openTimed(t, filepath.Join(t.TempDir(), "smppgw.db"), storetest.Options())
	run := func(t *testing.T, w *Store) {
		ctx := t.Context()
		done := make(acceptDone, 1)
		w.AcceptMessageAsync(ctx, storetest.NewMessage("a1", "acct", "up", 1), done)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		w.AcceptMessageAsync(ctx, &store.Message{}, done)
		if err := <-done; err == nil {
			t.Fatal("AcceptMessageAsync of an empty message succeeded")
		}
		tasks, err := w.ClaimParts(ctx, "up", "c", 1, 0)
		if err != nil || len(tasks) != 1 {
			t.Fatalf("claimed %d, %v", len(tasks), err)
		}
		sd := make(settleDone, 1)
		w.SettleAsync(ctx, tasks[0].Lease, store.PartUpdate{MessageID: "a1", Upstream: "up", UpstreamID: "U1", Status: 1}, sd)
		if err := <-sd; err != nil {
			t.Fatal(err)
		}
		for op, want := range map[int]uint64{opAcceptMessage: 2, opSettle: 1} {
			var m dto.Metric
			if err := w.obs[op].(prometheus.Metric).Write(&m); err != nil {
				t.Fatal(err)
			}
			if got := m.GetHistogram().GetSampleCount(); got != want {
				t.Errorf("%s observed %d times, want %d", opNames[op], got, want)
			}
		}
		if got := testutil.ToFloat64(w.errs.WithLabelValues("accept_message")); got != 1 {
			t.Errorf("errors of accept_message = %v, want 1", got)
		}
	}
	t.Run("async", func(t *testing.T) {
		if s.async == nil {
			t.Fatal("the embedded store's asynchronous writes not found")
		}
		run(t, s.Store)
	})
	t.Run("sync", func(t *testing.T) {
		s := openTimed(t, filepath.Join(t.TempDir(), "smppgw.db"), storetest.Options())
		w := NewStore(syncOnly{s.Store.Store})
		if w.async != nil {
			t.Fatal("asynchronous writes found in a store without them")
		}
		run(t, w)
	})
}

// syncOnly hides a store's asynchronous writes.
type syncOnly struct{ store.Store }

// TestStoreGroupCommits: smppgw_store_group_commits_total is the wrapped store's count of group
// commits. Five accepts one after the other take five of the embedded store's (each finds no sync
// under way, so none waits for company); one that changes nothing takes none.
func TestStoreGroupCommits(t *testing.T) {
	s := openTimed(t, filepath.Join(t.TempDir(), "smppgw.db"), storetest.Options())
	if s.commits == nil {
		t.Fatal("the embedded store's group commits are not counted")
	}
	ctx := t.Context()
	before := testutil.ToFloat64(s.commits)
	for i := range 5 {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprint("g", i), "acct", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AcceptMessage(ctx, storetest.NewMessage("g0", "acct", "up", 1)); err == nil {
		t.Fatal("an accept of a taken id succeeded")
	}
	if got := testutil.ToFloat64(s.commits) - before; got != 5 {
		t.Errorf("group commits over 5 accepts and a refused one: %v, want 5", got)
	}
	if n := testutil.CollectAndCount(s.Store, "smppgw_store_group_commits_total"); n != 1 {
		t.Errorf("%d smppgw_store_group_commits_total series collected, want 1", n)
	}
	if w := NewStore(syncOnly{s.Store.Store}); w.commits != nil {
		t.Error("a store without GroupCommits has the counter")
	}
}
