package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/internal/redistest"
)

// Issue 12: `smppgw serve` on a three-master Redis Cluster without replicas, an ESME keeping its
// window full, one master SIGKILLed mid-load and started again on its data after clusterDown. The
// submissions in flight on the killed node when it died were written or not, and their replies were
// lost: the gateway cannot tell, refuses them, and must then make sure they never go out (gateway's
// in-doubt accepts). Counted at both ends: acked and never upstream must be 0 (nothing acked is lost),
// refused and upstream all the same must be 0 (nothing refused is sent).
const (
	clusterMessages = 4000
	clusterKillAt   = 800                     // acks before the kill
	clusterDown     = 2500 * time.Millisecond // a killed master's time down
	// clusterStall is a stalled master's: longer than the gateway's store time-out (10 s), so the
	// gateway gives up on accepts the node runs once it wakes (the cluster client's read deadline is
	// longer than that).
	clusterStall = 11 * time.Second
)

// TestClusterMasterDownUnderLoad runs two faults of one master: "kill", SIGKILL and a restart on its
// AOF after clusterDown (submissions in flight when it died may have been written and answered with
// nothing); and "stall", SIGSTOP for clusterStall and SIGCONT (a frozen host: the gateway's reads time
// out, then the node runs every command waiting in its sockets, the accepts the gateway refused among
// them).
func TestClusterMasterDownUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a Redis Cluster (-short)")
	}
	bin := buildSmppgw(t)
	hash := bcryptHash(t, "s3cret")
	for _, fault := range []string{"kill", "stall"} {
		t.Run(fault, func(t *testing.T) {
			cl := redistest.StartClusterN(t, redistest.ClusterOptions{Masters: 3})
			addrs := make([]string, len(cl.Addrs()))
			for i, a := range cl.Addrs() {
				addrs[i] = fmt.Sprintf("%q", a)
			}
			storeSection := fmt.Sprintf("store: {redis: {addrs: [%s], cluster: true}, visibility_timeout: 2s}", strings.Join(addrs, ", "))
			sim, cfg, e := killSetup(t, hash, storeSection)
			d := startDaemon(t, bin, cfg)
			s := bindKillESME(t, d.addr, e)
			done := make(chan struct{})
			go func() { e.send(s, clusterMessages); close(done) }()
			awaitAcked(t, e, clusterKillAt)
			victim := cl.Masters()[1]
			switch fault {
			case "kill":
				victim.Kill()
				time.Sleep(clusterDown)
				victim.Restart()
			case "stall":
				pid := redisPID(t, victim.Addr())
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				time.Sleep(clusterStall)
				if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			}
			cl.WaitOK()
			awaitSenders(t, done)
			c := drainKill(t, e, sim)
			t.Logf("3-master cluster, one master %s under load (upstream window %d): %v", fault, killWindow, c)
			t.Logf("%s: acked-but-not-received=%d refused-but-received=%d duplicates=%d", fault, c.lost, c.refusedUp, c.duplicates)
			if c.lost != 0 {
				t.Errorf("%d acked messages never accepted by the upstream", c.lost)
			}
			if c.refusedUp != 0 {
				t.Errorf("%d refused messages reached the upstream all the same", c.refusedUp)
			}
			if c.acked+c.unanswered+c.refused != c.sent {
				t.Errorf("%d acked + %d unanswered + %d refused != %d sent", c.acked, c.unanswered, c.refused, c.sent)
			}
			if c.distinct != c.acked+c.unansweredUp+c.refusedUp {
				t.Errorf("the upstream got %d distinct messages, want the %d acked, the %d unanswered and the %d refused that reached it", c.distinct, c.acked, c.unansweredUp, c.refusedUp)
			}
			if c.refused == 0 {
				t.Errorf("no submission was refused: the fault did not land under load")
			}
		})
	}
}

// redisPID asks the redis-server at addr for its process id.
func redisPID(t *testing.T, addr string) int {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no process_id in INFO server of %s", addr)
	return 0
}
