package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/redistest"
	redisstore "github.com/smppgw/smppgw/store/redis"
)

// Issue 12: `smppgw serve` on a three-master Redis Cluster, an ESME keeping its window full, one
// master taken away mid-load. The submissions in flight on that node were written or not, and their
// replies were lost: the gateway cannot tell, refuses them, and must then make sure they never go out
// (gateway's in-doubt accepts). Counted at both ends: acked and never upstream must be 0 (nothing
// acked is lost; with a replica promoted, but for the writes asynchronous replication may lose, which
// are counted apart), refused and upstream all the same must be 0 (nothing refused is sent).
const (
	clusterMessages = 4000
	clusterKillAt   = 800                     // acks before the kill
	clusterDown     = 2500 * time.Millisecond // a killed master's time down
	// clusterStall is a stalled master's: longer than the gateway's store time-out (10 s), so the
	// gateway gives up on every accept the node holds unanswered (the client's read time-out, 5 s,
	// gives up sooner), and the node runs them all once it wakes.
	clusterStall = 11 * time.Second
)

// TestClusterMasterDownUnderLoad runs three faults of one master: "kill", SIGKILL and a restart on its
// AOF after clusterDown (submissions in flight when it died may have been written and answered with
// nothing); "stall", SIGSTOP for clusterStall and SIGCONT (a frozen host: the gateway's reads time
// out, then the node runs every command waiting in its sockets, the accepts the gateway refused among
// them); and "failover", with a replica per master: SIGKILL, the replica promoted, the old master
// back as its replica. The nodes run with appendfsync always.
func TestClusterMasterDownUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a Redis Cluster (-short)")
	}
	bin := buildSmppgw(t)
	hash := bcryptHash(t, "s3cret")
	for _, fault := range []string{"kill", "stall", "failover"} {
		t.Run(fault, func(t *testing.T) {
			replicas, fsync := 0, "always" // always: a killed master loses nothing it acknowledged
			if fault == "failover" {
				replicas = 1
			}
			cl := redistest.StartClusterN(t, redistest.ClusterOptions{Masters: 3, Replicas: replicas, Fsync: fsync})
			addrs := make([]string, len(cl.Addrs()))
			for i, a := range cl.Addrs() {
				addrs[i] = fmt.Sprintf("%q", a)
			}
			storeSection := fmt.Sprintf("store: {redis: {addrs: [%s], cluster: true}, visibility_timeout: 2s}", strings.Join(addrs, ", "))
			sim, cfg, e := killSetup(t, hash, storeSection)
			d := startDaemon(t, bin, cfg)
			s := bindKillESME(t, d.addr, e, clusterResponseTimeout)
			done := make(chan struct{})
			go func() { clusterSend(e, s, clusterMessages); close(done) }()
			awaitAcked(t, e, clusterKillAt)
			victim := cl.Masters()[1]
			loss := &storeLoss{st: openRedisStore(t, redisstore.Config{Addrs: cl.Addrs(), Cluster: true})}
			switch fault {
			case "failover":
				// Its replica is promoted after cluster-node-timeout (2 s); the old master comes back
				// as a replica of it. Replication is asynchronous: the master answers a write before
				// its replica has it, so a write acknowledged just before the kill may be missing on
				// the promoted replica (and one the old master takes on its return, before it learns
				// it was replaced, is dropped when it resyncs as a replica). Such messages are gone
				// from the store, and counted so; any other acked message must reach the upstream.
				killed := time.Now()
				victim.Kill()
				time.Sleep(clusterDown + time.Second)
				victim.Restart()
				loss.windows = append(loss.windows, [2]time.Time{killed.Add(-3 * time.Second), time.Now().Add(3 * time.Second)})
			case "kill":
				victim.Kill()
				time.Sleep(clusterDown)
				victim.Restart()
			case "stall":
				if err := victim.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				time.Sleep(clusterStall)
				if err := victim.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			}
			cl.WaitOK()
			awaitSenders(t, done)
			c := drainKill(t, e, sim, loss)
			loss.explain(t, c)
			d.checkRunning(t)
			t.Logf("3-master cluster, one master %s under load (upstream window %d): %v", fault, killWindow, c)
			t.Logf("%s: acked-but-not-received=%d (gone from the store %d) refused-but-received=%d duplicates=%d", fault, c.lost, c.gone, c.refusedUp, c.duplicates)
			checkLost(t, c)
			if c.refusedUp != 0 {
				t.Errorf("%d refused messages reached the upstream all the same", c.refusedUp)
			}
			if c.acked+c.unanswered+c.refused != c.sent {
				t.Errorf("%d acked + %d unanswered + %d refused != %d sent", c.acked, c.unanswered, c.refused, c.sent)
			}
			if c.distinct != c.acked-c.lost+c.unansweredUp+c.refusedUp {
				t.Errorf("the upstream got %d distinct messages, want the %d acked (less the %d lost), the %d unanswered and the %d refused that reached it", c.distinct, c.acked, c.lost, c.unansweredUp, c.refusedUp)
			}
			if c.refused == 0 {
				t.Errorf("no submission was refused: the fault did not land under load")
			}
		})
	}
}

// clusterSend is killESME.send with a response time-out longer than the gateway's store time-out
// and its reading back of an accept in doubt (10 s + 2 s), so the ESME hears how each submission
// ended: answered or refused. A submission left unanswered all the same is counted so and the
// sender goes on.
func clusterSend(e *killESME, s *session.Session, limit int) {
	e.sendEach(s, limit, clusterResponseTimeout, false)
}

// clusterResponseTimeout is the cluster ESME's response time-out (see clusterSend).
const clusterResponseTimeout = 30 * time.Second
