package redistest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ClusterOptions tune StartClusterN.
type ClusterOptions struct {
	Masters  int    // default 3, the fewest redis-cli --cluster create takes
	Replicas int    // replicas per master; default 0
	Fsync    string // appendfsync of every node; empty means everysec
}

// Cluster is a Redis Cluster of several redis-server processes this test started.
type Cluster struct {
	t     testing.TB
	Nodes []*Server // masters first as created; replicas after them
}

// StartClusterN starts opts.Masters x (1 + opts.Replicas) cluster-enabled redis-servers on free
// loopback ports, joins them with redis-cli --cluster create (the masters share the 16384 slots in
// equal ranges, in order of Nodes), and waits until every node reports cluster_state:ok. The
// nodes are killed when the test ends.
func StartClusterN(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli not on PATH (Debian's redis-tools, which redis-server depends on)")
	}
	c := &Cluster{t: t}
	n := opts.Masters * (1 + opts.Replicas)
	args := []string{"--cluster", "create"}
	for range n {
		s := Start(t, Options{AppendFsync: opts.Fsync, Args: []string{"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"}})
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK()
	c.waitReplicas(opts.Masters * opts.Replicas)
	return c
}

// waitReplicas waits until n replicas are in sync with their masters and every node sees them as
// replicas. redis-cli returns once the nodes have met; a replica it attached may still be syncing,
// and the others may still take it for an empty master: killed then, its master would not fail over
// (a master votes only for a node it knows as a replica of the failed one).
func (c *Cluster) waitReplicas(n int) {
	c.t.Helper()
	if n == 0 {
		return
	}
	deadline := time.Now().Add(time.Minute)
	for _, s := range c.Nodes {
		cl := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
		for {
			nodes, err := cl.ClusterNodes(context.Background()).Result()
			var repl string
			if err == nil {
				repl, err = cl.Info(context.Background(), "replication").Result()
			}
			synced := err == nil && (strings.Contains(repl, "role:master") || strings.Contains(repl, "master_link_status:up"))
			if synced && strings.Count(nodes, " slave ")+strings.Count(nodes, ",slave ") == n {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				c.t.Fatalf("cluster node %s: replicas not attached: %v\n%s\n%s", s.Addr(), err, nodes, repl)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
}

// Addrs are the nodes' addresses, seeds for a cluster client.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr()
	}
	return out
}

// Masters returns the nodes that are masters now, in order of their first slot.
func (c *Cluster) Masters() []*Server {
	c.t.Helper()
	for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var masters []*Server
		first := map[*Server]int{}
		for _, s := range c.Nodes {
			cl := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
			role, err := cl.Do(context.Background(), "ROLE").Slice()
			var slots []goredis.ClusterSlot
			if err == nil && len(role) > 0 && role[0] == "master" {
				slots, err = cl.ClusterSlots(context.Background()).Result()
			}
			cl.Close()
			if err != nil || len(role) == 0 || role[0] != "master" {
				continue
			}
			for _, sl := range slots {
				if len(sl.Nodes) > 0 && sl.Nodes[0].Addr == s.Addr() {
					if f, ok := first[s]; !ok || sl.Start < f {
						first[s] = sl.Start
					}
				}
			}
			if _, ok := first[s]; ok {
				masters = append(masters, s)
			}
		}
		if len(masters) > 0 {
			for i := 1; i < len(masters); i++ { // by first slot
				for j := i; j > 0 && first[masters[j]] < first[masters[j-1]]; j-- {
					masters[j], masters[j-1] = masters[j-1], masters[j]
				}
			}
			return masters
		}
	}
	c.t.Fatal("no cluster master answers")
	return nil
}

// WaitOK waits until every running node reports cluster_state:ok and knows every other node
// (a killed one too, as failed). Killed nodes are not asked.
func (c *Cluster) WaitOK() {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		cl := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1})
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(c.Nodes))+"\r") {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				c.t.Fatalf("cluster node %s not ok: %v %s", s.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
}

// Restart kills every node and starts it again on its port and data directory (AOF and
// nodes.conf), then waits for the cluster to be ok.
func (c *Cluster) Restart() {
	c.t.Helper()
	for _, s := range c.Nodes {
		s.Kill()
	}
	for _, s := range c.Nodes {
		s.Restart()
	}
	c.WaitOK()
}
