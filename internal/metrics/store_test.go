package metrics

import (
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

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
