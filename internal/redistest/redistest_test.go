package redistest

import (
	"context"
	"strconv"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// TestKillRestart: what was written with appendfsync always survives a SIGKILL and a restart on the
// same address.
func TestKillRestart(t *testing.T) {
	s := Start(t, Options{AppendFsync: "always"})
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Kill() // a second Kill does nothing
	s.Restart()
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
}

func TestCluster(t *testing.T) {
	s := StartCluster(t)
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr()})
	defer c.Close()
	// Keys in different hash slots are refused in one command, which is what the cluster is for.
	if err := c.MSet(context.Background(), "a", 1, "b", 2).Err(); err == nil {
		t.Fatal("a cross-slot MSET was accepted")
	}
}

// TestClusterN: three masters share the slots, a cluster client reaches every one of them,
// and the cluster comes back whole after all nodes are killed and restarted.
func TestClusterN(t *testing.T) {
	c := StartClusterN(t, ClusterOptions{Fsync: "always"})
	ctx := context.Background()
	masters := c.Masters()
	if len(masters) != 3 {
		t.Fatalf("%d masters, want 3", len(masters))
	}
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs(), MaxRetries: -1})
	defer cc.Close()
	const keys = 300
	for i := range keys {
		if err := cc.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	dbsize := func() (sizes []int64, total int64) {
		for _, m := range c.Masters() {
			cl := goredis.NewClient(&goredis.Options{Addr: m.Addr()})
			n, err := cl.DBSize(ctx).Result()
			cl.Close()
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
			total += n
		}
		return sizes, total
	}
	sizes, total := dbsize()
	if total != keys {
		t.Fatalf("DBSIZE of the masters %v, sum %d, want %d", sizes, total, keys)
	}
	for i, n := range sizes {
		if n < keys/6 { // an equal third is 100; the hash of 300 keys is not that even
			t.Errorf("master %d holds %d of %d keys", i, n, keys)
		}
	}
	c.Restart()
	if _, total := dbsize(); total != keys {
		t.Errorf("after the restart the masters hold %d keys, want %d", total, keys)
	}
}
