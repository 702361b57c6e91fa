package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// TestClusterSettleIDMapNodeDown: on Cluster the id map of a part lives on another node than its
// message. With that node down, Settle fails, and must leave nothing half done: the part not updated
// and its entry still queued, so that once the node is back the part is claimed and settled again and
// a receipt for its upstream id is correlated, not parked for ever.
func TestClusterSettleIDMapNodeDown(t *testing.T) {
	c := redistest.StartClusterN(t, redistest.ClusterOptions{Fsync: "always"})
	s := openCluster(t, c, Config{Options: storetest.Options()})
	cc := s.c.(*goredis.ClusterClient)
	ctx := context.Background()
	masterOf := func(key string) string {
		t.Helper()
		cl, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return cl.Options().Addr
	}
	if err := s.AcceptMessage(ctx, storetest.NewMessage("sm1", "acme", "up", 1)); err != nil {
		t.Fatal(err)
	}
	tasks, err := s.ClaimParts(ctx, "up", "c1", 1, time.Second)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("claim: %d tasks, %v", len(tasks), err)
	}
	msgNode := masterOf(s.kMsg("sm1"))
	uid, mapNode := "", ""
	for i := 0; mapNode == "" || mapNode == msgNode; i++ {
		uid = fmt.Sprintf("U%d", i)
		mapNode = masterOf(s.kMap("up", uid))
	}
	var victim *redistest.Server
	for _, n := range c.Nodes {
		if n.Addr() == mapNode {
			victim = n
		}
	}
	victim.Kill()
	u := store.PartUpdate{MessageID: "sm1", Part: 0, Upstream: "up", UpstreamID: uid, Status: pdu.ENROUTE}
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	_, _, err = s.Settle(sctx, tasks[0].Lease, u)
	cancel()
	if err == nil {
		t.Fatal("Settle with the id map's node down succeeded")
	}
	// Read at once, before the cluster marks the node failed (cluster-node-timeout 2 s).
	m, err := s.GetMessage(ctx, "sm1")
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Parts[0]; p.UpstreamID != "" || p.Status == pdu.ENROUTE {
		t.Errorf("after a failed Settle the part is %v with upstream id %q, want it not updated", p.Status, p.UpstreamID)
	}
	restartKilled(t, c)
	if n, err := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); err != nil || n != 1 {
		t.Fatalf("after a failed Settle the queue holds %d entries (%v), want the part's entry still there", n, err)
	}
	// The part comes back after its visibility time-out and is settled this time.
	var again []*store.PartTask
	for deadline := time.Now().Add(10 * time.Second); len(again) == 0 && time.Now().Before(deadline); {
		if again, err = s.ClaimParts(ctx, "up", "c1", 1, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if len(again) != 1 {
		t.Fatal("the part's entry did not come back")
	}
	if _, _, err := s.Settle(ctx, again[0].Lease, u); err != nil {
		t.Fatal(err)
	}
	_, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: uid, State: pdu.DELIVERED})
	if err != nil || parked {
		t.Errorf("receipt for the settled part: parked %v, %v; want it correlated", parked, err)
	}
	if m, err = s.GetMessage(ctx, "sm1"); err != nil || m.Parts[0].Status != pdu.DELIVERED {
		t.Errorf("message after its receipt: %v, %v; want DELIVERED", m, err)
	}
}
