package redistest

import (
	"context"
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
