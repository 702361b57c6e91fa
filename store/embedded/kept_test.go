package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// TestKeptSettleIsSlowSettle: a settle that takes the message's kept form writes the record,
// and returns the message, that the slow path (look up, decode, update, encode) gives; and a
// record written meanwhile by anything else (a replace, a receipt, an UpdatePart, a reopen)
// is what the next settle starts from. Whether the kept form was used is checked too, so the
// comparison is not of the slow path with itself.
func TestKeptSettleIsSlowSettle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s := openNeverFreeze(t, path)
	var err error
	defer func() { s.Close() }()

	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		id    string
		parts int
	}{{"p1", 1}, {"m2", 2}, {"c3", 1}, {"r4", 1}, {"x5", 2}, {"u6", 2}, {"z7", 1}} {
		m := storetest.NewMessage(c.id, "a", "up", c.parts)
		// Local time with a monotonic reading: the record keeps neither, nor may the kept form.
		m.Validity = time.Now().Add(time.Hour)
		m.CallbackURL, m.Origin = "http://127.0.0.1:1/cb", store.OriginAPI
		m.Parts[0].TLVs = nil
		if err := s.AcceptMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		// The caller's message is its own: changing it changes nothing kept.
		m.Parts[0].ShortMessage[0] = 'X'
		m.Account = "changed"
	}
	// A replace before the claim: the replaced text must reach the settled record.
	if _, _, err := s.ReplaceMessage(ctx, "r4", "a", store.Replacement{ShortMessage: []byte("new text")}); err != nil {
		t.Fatal(err)
	}
	tasks := claimAll(t, s, 10)

	settle := func(id string, part int, upstreamID string, wantKept bool) {
		t.Helper()
		at = at.Add(time.Second)
		u := store.PartUpdate{MessageID: id, Part: part, Upstream: "up", UpstreamID: upstreamID, Status: pdu.ENROUTE, At: at}
		if kept := s.hasKept(t, id); kept != wantKept {
			t.Fatalf("settle %s/%d: kept form %v, want %v", id, part, kept, wantKept)
		}
		want, err := store.DecodeMessage(s.rawRecord(t, id))
		if err != nil {
			t.Fatal(err)
		}
		store.ApplyPartUpdate(want, &u)
		task := tasks[fmt.Sprint(id, "/", part)]
		if task == nil {
			t.Fatalf("no task for %s/%d", id, part)
		}
		got, attached, err := s.Settle(ctx, task.Lease, u)
		if err != nil {
			t.Fatalf("settle %s/%d: %v", id, part, err)
		}
		if len(attached) != 0 {
			t.Fatalf("settle %s/%d attached %d receipts", id, part, len(attached))
		}
		if rec, wantRec := s.rawRecord(t, id), store.AppendMessage(nil, want); !bytes.Equal(rec, wantRec) {
			t.Fatalf("settle %s/%d wrote\n%x\nwant\n%x", id, part, rec, wantRec)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("settle %s/%d returned\n%+v\nwant\n%+v", id, part, got, want)
		}
	}

	settle("p1", 0, "P1", true)
	if s.hasKept(t, "p1") {
		t.Fatal("p1 still kept after its one part was settled")
	}
	settle("m2", 1, "M21", true)
	settle("m2", 0, "", true) // a refusal: no upstream id
	settle("r4", 0, "R4", false)
	if m, err := s.GetMessage(ctx, "r4"); err != nil || string(m.Parts[0].ShortMessage) != "new text" {
		t.Fatalf("r4 after replace and settle: %v, %v", m, err)
	}
	settle("x5", 0, "X50", true)
	if _, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: "X50", State: pdu.DELIVERED, Received: at}); err != nil || parked {
		t.Fatalf("receipt for x5: parked %v, %v", parked, err)
	}
	settle("x5", 1, "X51", false)
	if _, _, err := s.UpdatePart(ctx, store.PartUpdate{MessageID: "u6", Part: 1, Upstream: "up", Status: pdu.ENROUTE, At: at}); err != nil {
		t.Fatal(err)
	}
	settle("u6", 0, "U60", false)

	// A checkpoint moves the record into bbolt; the kept form still is the record.
	s.mu.Lock()
	s.tun.freezeBytes = 1
	s.mu.Unlock()
	cps := s.cps.Load()
	if err := s.write(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a checkpoint", func() bool { return s.cps.Load() > cps })
	s.mu.Lock()
	s.tun.freezeBytes = 1 << 30
	s.mu.Unlock()
	settle("c3", 0, "C3", true)

	// After a crash the record is replayed from the WAL, and nothing is kept.
	s.crash()
	if s, err = open(path, storetest.Options(), neverFreeze); err != nil {
		t.Fatal(err)
	}
	tasks = claimAll(t, s, 2) // z7, and u6/1, updated but never settled
	settle("z7", 0, "Z7", false)
	settle("u6", 1, "U61", false)
}

// claimAll claims the n parts queued for "up" and returns them by message id and part.
func claimAll(t *testing.T, s *Store, n int) map[string]*store.PartTask {
	t.Helper()
	got, err := s.ClaimParts(context.Background(), "up", "c", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("claimed %d parts, want %d", len(got), n)
	}
	out := map[string]*store.PartTask{}
	for _, tk := range got {
		out[fmt.Sprint(tk.MessageID, "/", tk.Part)] = tk
	}
	return out
}

// hasKept reports whether message id has a kept form, asked in the stager.
func (s *Store) hasKept(t *testing.T, id string) bool {
	t.Helper()
	var kept bool
	if err := s.write(context.Background(), func(*txn) error {
		kept = s.f.kept[id] != nil
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	return kept
}

// rawRecord returns message id's record as stored.
func (s *Store) rawRecord(t *testing.T, id string) []byte {
	t.Helper()
	var rec []byte
	if err := s.view(func(tx *txn) error {
		rec = bytes.Clone(tx.Bucket(bMsg).Get([]byte(id)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rec == nil {
		t.Fatalf("no record for %s", id)
	}
	return rec
}

// TestKeptRolledBack: a batch rolled back forgets what it kept, and what it took stays taken
// (its ops may have changed it); the settle after it writes what the slow path gives.
func TestKeptRolledBack(t *testing.T) {
	ctx := context.Background()
	s := openT(t, storetest.Options())
	if err := s.AcceptMessage(ctx, storetest.NewMessage("k1", "a", "up", 1)); err != nil {
		t.Fatal(err)
	}
	if !s.hasKept(t, "k1") {
		t.Fatal("k1 not kept after its accept")
	}
	fail := errors.New("disk on fire")
	err := s.write(ctx, func(tx *txn) error {
		s.f.keep("ghost", keptCopy(storetest.NewMessage("ghost", "a", "up", 1)))
		u := store.PartUpdate{MessageID: "k1", Part: 0, Upstream: "up", UpstreamID: "K1", Status: pdu.ENROUTE, At: nowUTC()}
		if _, _, _, err := s.updatePart(tx, &u, nil, 0, true); err != nil {
			t.Error(err)
		}
		return dirty(fail)
	}, nil)
	if !errors.Is(err, fail) {
		t.Fatalf("rolled back write: %v", err)
	}
	if s.hasKept(t, "ghost") || s.hasKept(t, "k1") {
		t.Fatal("a rolled back batch left kept messages")
	}
	m, err := s.GetMessage(ctx, "k1")
	if err != nil || m.Parts[0].UpstreamID != "" || m.Status != pdu.ACCEPTED {
		t.Fatalf("k1 after a rolled back update: %+v, %v", m, err)
	}
	tasks := claimAll(t, s, 1)
	u := store.PartUpdate{MessageID: "k1", Part: 0, Upstream: "up", UpstreamID: "K1", Status: pdu.ENROUTE, At: nowUTC()}
	store.ApplyPartUpdate(m, &u)
	got, _, err := s.Settle(ctx, tasks["k1/0"].Lease, u)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) || !bytes.Equal(s.rawRecord(t, "k1"), store.AppendMessage(nil, m)) {
		t.Fatalf("settle after a rollback: %+v, want %+v", got, m)
	}
}
