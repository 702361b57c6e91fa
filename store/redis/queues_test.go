package redis

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

func consumers(t *testing.T, s *Store, q store.Queue) []string {
	t.Helper()
	cs, err := s.c.XInfoConsumers(context.Background(), s.kStream(q, 0), group).Result()
	if err != nil {
		t.Fatalf("XINFO CONSUMERS: %v", err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

// TestIdleConsumersDeleted: consumer names carry the instance, so each restart would add
// names to the group for ever; a claim deletes those idle for consumerIdleFactor visibility
// time-outs, but never one with pending entries (deleting it would drop them from the
// pending list, and they would never be handed out again).
func TestIdleConsumersDeleted(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	opts := storetest.Options()
	opts.VisibilityTimeout = 100 * time.Millisecond
	s := openStore(t, srv, Config{Options: opts, Shards: 1}) // one stream, whose consumers are counted
	ctx := context.Background()
	q := store.Queue{Kind: store.SubmitQueue, Name: "up"}
	for _, id := range []string{"m1", "m2"} {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(id, "acc", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	done, err := s.ClaimParts(ctx, "up", "gone#1", 1, 0)
	if err != nil || len(done) != 1 {
		t.Fatalf("claim: %v %v", done, err)
	}
	if err := s.Ack(ctx, done[0].Lease); err != nil {
		t.Fatal(err)
	}
	held, err := s.ClaimParts(ctx, "up", "gone#2", 1, 0)
	if err != nil || len(held) != 1 {
		t.Fatalf("claim: %v %v", held, err)
	}
	if got := consumers(t, s, q); !slices.Equal(got, []string{"gone#1", "gone#2"}) {
		t.Fatalf("consumers %v", got)
	}
	time.Sleep(time.Duration(consumerIdleFactor+2) * opts.VisibilityTimeout)

	// gone#1 is idle with nothing pending: deleted. gone#2 still held its entry when the
	// sweep ran, so it stays, and its entry is reclaimed, not lost.
	got, err := s.ClaimParts(ctx, "up", "new", 1, 0)
	if err != nil || len(got) != 1 || got[0].MessageID != held[0].MessageID || !got[0].Reclaimed {
		t.Fatalf("claim after the sweep: %v %v, want %s reclaimed", got, err, held[0].MessageID)
	}
	if names := consumers(t, s, q); !slices.Equal(names, []string{"gone#2", "new"}) {
		t.Errorf("consumers after the first sweep %v, want [gone#2 new]", names)
	}
	if err := s.Ack(ctx, got[0].Lease); err != nil {
		t.Fatal(err)
	}
	// The next sweep (at most one per visibility time-out) finds gone#2 without entries.
	time.Sleep(2 * opts.VisibilityTimeout)
	if more, err := s.ClaimParts(ctx, "up", "new", 1, 0); err != nil || len(more) != 0 {
		t.Fatalf("claim: %v %v", more, err)
	}
	if names := consumers(t, s, q); !slices.Equal(names, []string{"new"}) {
		t.Errorf("consumers after the second sweep %v, want [new]", names)
	}
}

// TestAutoclaimCursor: XAUTOCLAIM looks at no more than 10 x COUNT pending entries per call,
// so an idle entry behind many fresh ones is only reached if each claim continues where the
// last one stopped. Starting from 0-0 every time, single claims would keep looking at the
// same fresh entries until they went idle too.
func TestAutoclaimCursor(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	opts := storetest.Options()
	opts.VisibilityTimeout = time.Second
	s := openStore(t, srv, Config{Options: opts, Shards: 1}) // the entries behind each other in one stream
	s.staleFor = time.Nanosecond                             // every claim runs the claim script, with its XAUTOCLAIM
	ctx := context.Background()
	const fresh = 25 // more than 10 x 1, the COUNT of a single claim
	for i := range fresh + 1 {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("m%02d", i), "acc", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.ClaimParts(ctx, "up", "A", fresh+1, 0); err != nil || len(got) != fresh+1 {
		t.Fatalf("claim: %d %v", len(got), err)
	}
	time.Sleep(opts.VisibilityTimeout + 100*time.Millisecond)
	// B reclaims all but the last, which stays idle behind 25 fresh pending entries.
	got, err := s.ClaimParts(ctx, "up", "B", fresh, 0)
	if err != nil || len(got) != fresh {
		t.Fatalf("reclaim: %d %v", len(got), err)
	}
	for _, task := range got {
		if task.MessageID == fmt.Sprintf("m%02d", fresh) {
			t.Fatalf("the last entry was among the first %d reclaimed", fresh)
		}
	}
	// As a fresh instance would find it: no cursor.
	s.claims.Range(func(k, _ any) bool { s.claims.Delete(k); return true })
	start := time.Now()
	var last []string
	for range fresh/10 + 2 {
		one, err := s.ClaimParts(ctx, "up", "C", 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range one {
			last = append(last, task.MessageID)
		}
	}
	if time.Since(start) > opts.VisibilityTimeout/2 {
		t.Skipf("claims took %v, the fresh entries may have gone idle", time.Since(start))
	}
	if want := []string{fmt.Sprintf("m%02d", fresh)}; !slices.Equal(last, want) {
		t.Errorf("single claims got %v, want %v (the idle entry behind the fresh ones, once)", last, want)
	}
}
