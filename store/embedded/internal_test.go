package embedded

import (
	"context"
	"errors"
	"path/filepath"
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
			errs[i] = s.write(ctx, func(tx *bbolt.Tx) error {
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
	_ = s.db.View(func(tx *bbolt.Tx) error {
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
		_ = s.db.View(func(tx *bbolt.Tx) error {
			for _, b := range [][]byte{bMap, bPark, bExp} {
				n += tx.Bucket(b).Stats().KeyN
			}
			return nil
		})
		return n
	}
	if n := count(); n != 4 {
		t.Fatalf("%d map/park/exp entries before expiry, want 4", n)
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
