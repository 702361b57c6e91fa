package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// TestShardTags: each shard's tag hashes into its own 1/n of the slots (CLUSTER KEYSLOT of a
// running server agrees with crc16), so three masters owning equal ranges hold 5, 5 and 6 of
// 16 shards.
func TestShardTags(t *testing.T) {
	srv := redistest.StartCluster(t) // CLUSTER KEYSLOT answers on a cluster node
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	const n = 16
	tags := shardTags(n)
	perMaster := make([]int, 3)
	for k, tag := range tags {
		slot := int(crc16(strings.Trim(tag, "{}"))) % slots
		if lo, hi := k*slots/n, (k+1)*slots/n; slot < lo || slot >= hi {
			t.Errorf("shard %d tag %s: slot %d not in [%d, %d)", k, tag, slot, lo, hi)
		}
		// A key with the tag, as the store builds them, is in the same slot on the server.
		got, err := c.Do(ctx, "CLUSTER", "KEYSLOT", "smppgw:m:"+tag+"id").Int()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT: %v", err)
		}
		if got != slot {
			t.Errorf("shard %d: server slot %d, crc16 %d", k, got, slot)
		}
		perMaster[slot*3/slots]++
	}
	if perMaster[0] < 5 || perMaster[1] < 5 || perMaster[2] < 5 {
		t.Errorf("shards per third of the slots %v, want 5 or 6 each", perMaster)
	}
}

// TestClaimUnderBacklogOneCommand: with entries in every shard, a claim takes what it asks
// for from the shard whose work is oldest with one XREADGROUP, not a command per shard, and
// no script while the shard's time-outs and delays are not due for a look (staleAfter); and it
// hands out the oldest message first.
func TestClaimUnderBacklogOneCommand(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := openStore(t, srv, Config{Options: storetest.Options()})
	s.staleFor = time.Hour
	ctx := context.Background()
	for i := range 400 {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("b%03d", i), "acme", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	calls := func(cmd string) int {
		info, err := s.c.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
				v, _, _ := strings.Cut(rest, ",")
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		return 0
	}
	first, err := s.ClaimParts(ctx, "up", "c", 1, 0) // adopts: one script per shard, once, and the first look

	if err != nil || len(first) != 1 || first[0].MessageID != "b000" {
		t.Fatalf("first claim: %v %v, want b000", first, err)
	}
	// Every shard has had its first look (the script); the next ones are not due for an hour.
	st := s.claimState(store.Queue{Kind: store.SubmitQueue, Name: "up"}, "c")
	for sh := range st.visited {
		st.visited[sh] = time.Now()
	}
	const claims = 10
	evals, reads := calls("evalsha"), calls("xreadgroup")
	got := 1
	for range claims {
		ts, err := s.ClaimParts(ctx, "up", "c", 8, 0)
		if err != nil {
			t.Fatal(err)
		}
		got += len(ts)
	}
	if e, r := calls("evalsha")-evals, calls("xreadgroup")-reads; e != 0 || r != claims {
		t.Errorf("%d claims of 8 ran %d scripts and %d XREADGROUP, want 0 and %d", claims, e, r, claims)
	}
	if got != 1+8*claims {
		t.Errorf("claimed %d parts, want %d", got, 1+8*claims)
	}
}
