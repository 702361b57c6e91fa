package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// TestAddReceiptOneScript: on a single node a receipt is looked up and applied by one script
// (EVALSHA calls counted by INFO commandstats: one per receipt, where the look-up and the
// apply took two), for messages in every shard (37 shards, ids of several lengths and bytes
// past ASCII, one of 128 bytes so its length takes two varint bytes in the receipt record), and the receipt is
// stored with its message id and part.
func TestAddReceiptOneScript(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	s := openStore(t, srv, Config{Shards: 37})
	ctx := context.Background()
	const n = 60
	ids := make([]string, n)
	seen := map[int]bool{}
	for i := range ids {
		ids[i] = fmt.Sprintf("r%d-%s-é", i, strings.Repeat("x", i%7))
		if i == n-1 {
			ids[i] = "long-" + strings.Repeat("y", 123) // 128 bytes
		}
		seen[s.shardOf(ids[i])] = true
		if err := s.AcceptMessage(ctx, storetest.NewMessage(ids[i], "acme", "up", 2)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.UpdatePart(ctx, store.PartUpdate{MessageID: ids[i], Part: 1, Upstream: "up", UpstreamID: fmt.Sprintf("U%d", i), Status: pdu.ENROUTE}); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) < 30 {
		t.Fatalf("messages in %d of 37 shards", len(seen))
	}
	before := commandStatsT(t, s)
	for i, id := range ids {
		m, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: fmt.Sprintf("U%d", i), State: pdu.DELIVERED})
		if err != nil || parked {
			t.Fatalf("AddReceipt %s: parked %v, %v", id, parked, err)
		}
		if m.ID != id || m.Parts[1].Status != pdu.DELIVERED || m.Parts[0].Status != pdu.ACCEPTED {
			t.Fatalf("AddReceipt %s: message %s parts %v %v", id, m.ID, m.Parts[0].Status, m.Parts[1].Status)
		}
	}
	// An unknown upstream id is parked, by the same one script.
	if _, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: "nobody", State: pdu.DELIVERED}); err != nil || !parked {
		t.Fatalf("AddReceipt of an unknown id: parked %v, %v", parked, err)
	}
	after := commandStatsT(t, s)
	if got := after["evalsha"] - before["evalsha"]; got != n+1 {
		t.Errorf("%d EVALSHA for %d receipts, want %d", got, n+1, n+1)
	}
	for i, id := range ids {
		rs, err := s.ListReceipts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].MessageID != id || rs[0].Part != 1 || rs[0].UpstreamID != fmt.Sprintf("U%d", i) || rs[0].State != pdu.DELIVERED {
			t.Fatalf("receipts of %s: %+v", id, rs)
		}
	}
}

func commandStatsT(t *testing.T, s *Store) map[string]uint64 {
	t.Helper()
	info, err := s.c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	return parseCommandStats(t, info, "calls=")
}
