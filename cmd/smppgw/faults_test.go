package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
	redisstore "github.com/smppgw/smppgw/store/redis"
)

// Issue 9's crash test: `smppgw serve`, a real process built from this package, is killed with
// SIGKILL while an ESME keeps its window full, restarted on the same data, and at the end left to
// drain. Counted at both ends: every message the ESME was answered ESME_ROK for must reach the
// upstream; the upstream's duplicates are counted and bounded.

const (
	killMessages = 2000 // per store
	killCount    = 3    // SIGKILLs per store, each after killEvery more acks
	killEvery    = 400
	killSenders  = 16 // ESME goroutines sending at once (the ESME's window is 32)
	killWindow   = 10 // the gateway's window towards the upstream
	// killUnsettled is the upstream's max_unsettled: the parts of the bind sent and not yet settled
	// durably (its window plus those answered whose settle waits for the next group commit), what a
	// kill may send twice.
	killUnsettled = 20
	killDrain     = time.Minute
	killKeep      = 4 * clusterMessages // submissions whose answer the upstream keeps (smscsim's KeepLast): all of a run, its duplicates too (a cluster run sends 4,000; with 4,000 kept, its first ones fell out and were counted lost)
)

// killCounts are one store's counts.
type killCounts struct {
	sent          int // submit_sm the ESME sent
	acked         int // answered ESME_ROK
	unanswered    int // sent, but the connection died before the answer (the ESME does not know)
	unansweredUp  int // of those, how many reached the upstream all the same
	refused       int // answered with an error status (the store was down)
	refusedUp     int // of those, how many reached the upstream all the same (in doubt: see checkKillCounts)
	refusedBy     map[pdu.CommandStatus]int
	received      int // submit_sm at the upstream, all
	distinct      int // distinct messages at the upstream (by text)
	duplicates    int // received - distinct
	lost          int // acked and never accepted by the upstream (answered ESME_ROK, whether or not the answer got through)
	lostIDs       []string
	gone          int // of those, how many the store no longer holds: Redis lost the acknowledged write (see lostByStore)
	goneOutside   int // of those, how many were acked outside the windows Redis may lose writes in
	receipts      int // receipts at the ESME
	receiptDups   int // receipts beyond the first for one message
	noReceipt     int // acked messages with no receipt
	maxDupsPerRun int // the most duplicates one process life left behind (upstream sends of the same message by two lives)
}

func (c killCounts) String() string {
	return fmt.Sprintf("sent=%d acked=%d unanswered=%d (of which reached upstream %d) refused=%d%s (reached upstream %d) upstream_received=%d upstream_distinct=%d duplicates=%d lost=%d (gone from the store %d) receipts=%d receipt_dups=%d no_receipt=%d",
		c.sent, c.acked, c.unanswered, c.unansweredUp, c.refused, statuses(c.refusedBy), c.refusedUp, c.received, c.distinct, c.duplicates, c.lost, c.gone, c.receipts, c.receiptDups, c.noReceipt)
}

// statuses writes counts by status as " ESME_RSYSERR:19 ...", in no fixed order; empty for none.
func statuses(by map[pdu.CommandStatus]int) string {
	var b strings.Builder
	for st, n := range by {
		fmt.Fprintf(&b, " %s:%d", st, n)
	}
	return b.String()
}

// killESME is the test's ESME: its binds (one per life of the daemon) share what it was answered and
// the receipts it got.
type killESME struct {
	session.BaseHandler
	mu         sync.Mutex
	acked      map[string]string    // our message id -> text
	ackedAt    map[string]time.Time // our message id -> when the ESME read its ESME_ROK
	unanswered []string             // texts sent with no answer
	refused    []string             // texts answered with an error status
	refusedBy  map[pdu.CommandStatus]int
	receipts   map[string]int
	next       atomic.Int64 // the next message's number
}

func (e *killESME) HandleRequest(s *session.Session, req session.Request) {
	if d, ok := req.Body.(*pdu.DeliverSM); ok {
		if info, err := dlr.FromDeliverSM(d); err == nil {
			e.mu.Lock()
			e.receipts[info.MessageID]++
			e.mu.Unlock()
		}
	}
	_ = s.Respond(req, pdu.ESME_ROK, nil)
}

// ack records an ESME_ROK; e.mu is held.
func (e *killESME) ack(id, text string) {
	e.acked[id] = text
	e.ackedAt[id] = time.Now()
}

func (e *killESME) ackedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.acked)
}

// send keeps killSenders submissions in flight on s until limit messages were sent in all or the
// session dies, and returns when every sender has stopped.
func (e *killESME) send(s *session.Session, limit int) { e.sendEach(s, limit, wait, true) }

// sendEach is send with each submission's response time-out; a sender whose submission went
// unanswered stops (stopUnanswered: the daemon was killed, its session is gone) or goes on a moment
// later, like one whose submission was refused.
func (e *killESME) sendEach(s *session.Session, limit int, timeout time.Duration, stopUnanswered bool) {
	var wg sync.WaitGroup
	for range killSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(e.next.Add(1)) - 1
				if i >= limit {
					e.next.Add(-1)
					return
				}
				text := fmt.Sprintf("kill %05d", i)
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				resp, err := s.Send(ctx, &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: fmt.Sprintf("44770%06d", i),
					RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte(text)})
				cancel()
				var status pdu.CommandStatus
				refused := errors.As(err, &status)
				e.mu.Lock()
				switch {
				case err == nil:
					e.ack(resp.Body.(*pdu.SubmitSMResp).MessageID, text)
				case refused:
					e.refused = append(e.refused, text)
					e.refusedBy[status]++
				default:
					e.unanswered = append(e.unanswered, text)
				}
				e.mu.Unlock()
				switch {
				case err != nil && !refused && stopUnanswered:
					return // the daemon was killed: this sender stops until the next life
				case err != nil: // the store is down: the next submission a moment later
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
}

// daemon is one life of `smppgw serve`.
type daemon struct {
	cmd    *exec.Cmd
	addr   string // SMPP
	exited chan error
}

func startDaemon(t *testing.T, bin, cfg string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	lt := newLogTail(t)
	cmd.Stderr = lt.w
	cmd.Stdout = lt.w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, exited: make(chan error, 1)}
	go func() { d.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			d.quit(t)
		}
		d.kill(t)
	})
	line := lt.until(t, "smppgw serving")
	listen, _ := line["listen"].([]any)
	if len(listen) != 1 {
		t.Fatalf("serving line %v", line)
	}
	d.addr = listen[0].(string)
	return d
}

// kill sends SIGKILL and waits for the process to be gone; killing a dead one does nothing.
func (d *daemon) kill(t *testing.T) {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.exited:
	case <-time.After(wait):
		t.Error("smppgw did not exit after SIGKILL")
	}
}

// checkRunning fails the test when the process has exited: a daemon that died under a fault
// explains every count after it (its ESME sessions close, nothing more goes upstream).
func (d *daemon) checkRunning(t *testing.T) {
	t.Helper()
	select {
	case err := <-d.exited:
		d.exited <- err
		t.Errorf("smppgw exited under the fault: %v (its log is printed below)", err)
	default:
	}
}

// quit sends SIGQUIT, on which the Go runtime writes every goroutine's stack to stderr (so into the
// daemon's log file) and exits, and waits for the process to be gone.
func (d *daemon) quit(t *testing.T) {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-d.exited:
	case <-time.After(wait):
		t.Error("smppgw did not exit after SIGQUIT")
	}
}

// buildSmppgw builds this package's binary once for the test.
func buildSmppgw(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "smppgw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// killSetup starts the upstream and writes the daemon's config with the given store section.
func killSetup(t *testing.T, hash, storeSection string) (*smscsim.Sim, string, *killESME) {
	t.Helper()
	sim, err := smscsim.Start("127.0.0.1:0", smscsim.Options{Accounts: map[string]string{"gwup": "uppw"}, RedeliverReceipts: true, KeepLast: killKeep, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	cfg := writeConfig(t, fmt.Sprintf(`
log: {level: info, format: json}
api: {grpc_listen: '127.0.0.1:0', http_listen: '127.0.0.1:0'}
%s
smpp:
  listen: 127.0.0.1:0
  accounts:
    - {system_id: acme, password_hash: %q}
upstreams:
  - name: sim
    address: %s
    system_id: gwup
    password: uppw
    reconnect_min: 50ms
    reconnect_max: 200ms
    session: {window: %d}
    max_unsettled: %d
routing:
  routes:
    - {prefix: "44", upstream: sim}
  delivery_retry: 50ms
shutdown_timeout: 5s
`, storeSection, hash, sim.Addr(), killWindow, killUnsettled))
	return sim, cfg, &killESME{acked: map[string]string{}, ackedAt: map[string]time.Time{}, receipts: map[string]int{}, refusedBy: map[pdu.CommandStatus]int{}}
}

// awaitAcked waits until the ESME has been answered ESME_ROK target times in all, or fails the test.
func awaitAcked(t *testing.T, e *killESME, target int) {
	t.Helper()
	deadline := time.Now().Add(killDrain)
	for e.ackedCount() < target && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if e.ackedCount() < target {
		t.Fatalf("%d acked within %v, want %d", e.ackedCount(), killDrain, target)
	}
}

func awaitSenders(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(killDrain):
		t.Fatal("the ESME's senders did not stop")
	}
}

// TestFaultSIGKILLUnderLoad kills `smppgw serve` with SIGKILL killCount times under load, on each
// store, and restarts it on the same data: no acked message is lost, and the upstream's duplicates are
// the parts one life had sent and not yet settled durably, which the next life sends again. Redis runs
// with appendfsync always and everysec: the daemon's death loses nothing under either, since Redis
// itself lives on (everysec's window, up to a second of writes, is for a machine crash).
func TestFaultSIGKILLUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it (-short)")
	}
	bin := buildSmppgw(t)
	hash := bcryptHash(t, "s3cret")
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string // the config's store section
	}{
		{"embedded", func(t *testing.T) string {
			return fmt.Sprintf("store: {path: %q, visibility_timeout: 2s}", filepath.Join(t.TempDir(), "data", "smppgw.db"))
		}},
		{"redis-always", func(t *testing.T) string {
			return fmt.Sprintf("store: {redis: {addrs: [%q]}, visibility_timeout: 2s}", redistest.Start(t, redistest.Options{AppendFsync: "always"}).Addr())
		}},
		{"redis-everysec", func(t *testing.T) string {
			return fmt.Sprintf("store: {redis: {addrs: [%q]}, visibility_timeout: 2s}", redistest.Start(t, redistest.Options{AppendFsync: "everysec"}).Addr())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, cfg, e := killSetup(t, hash, tc.store(t))
			for life := 0; life <= killCount; life++ {
				d := startDaemon(t, bin, cfg)
				s := bindKillESME(t, d.addr, e, 0)
				done := make(chan struct{})
				go func() { e.send(s, killMessages); close(done) }()
				if life < killCount {
					awaitAcked(t, e, (life+1)*killEvery)
					d.kill(t)
				}
				awaitSenders(t, done)
			}
			c := drainKill(t, e, sim, nil)
			t.Logf("smppgw SIGKILL x%d under load, %s (upstream window %d): %v", killCount, tc.name, killWindow, c)
			checkKillCounts(t, c)
		})
	}
}

// TestFaultRedisKilledUnderLoad kills redis-server with SIGKILL killCount times under load and starts
// it again on its data (its AOF), while `smppgw serve` runs on: submissions are refused while Redis is
// down, and none acked is lost by the gateway. With appendfsync always every acked write was fsynced
// before the answer: nothing acked may be lost at all. With everysec Redis writes its AOF buffer to
// the file before it answers, except while the background fsync of the second before is still running
// (a busy disk): then it postpones the write, for up to 2 s, and answers all the same (aof.c,
// flushAppendOnlyFile). A kill in that time loses acknowledged writes, by everysec's design. So with
// everysec an acked message may be missing upstream only if Redis no longer holds it and it was acked
// in the 3 s before a kill (or the second after, the answer being read late); those are counted apart
// (gone) and logged. An acked message that Redis still holds must reach the upstream either way.
func TestFaultRedisKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills redis-server (-short)")
	}
	bin := buildSmppgw(t)
	hash := bcryptHash(t, "s3cret")
	for _, fsync := range []string{"always", "everysec"} {
		t.Run(fsync, func(t *testing.T) {
			rs := redistest.Start(t, redistest.Options{AppendFsync: fsync})
			sim, cfg, e := killSetup(t, hash, fmt.Sprintf("store: {redis: {addrs: [%q]}, visibility_timeout: 2s}", rs.Addr()))
			d := startDaemon(t, bin, cfg)
			s := bindKillESME(t, d.addr, e, 0)
			done := make(chan struct{})
			go func() { e.send(s, killMessages); close(done) }()
			loss := &storeLoss{st: openRedisStore(t, redisstore.Config{Addrs: []string{rs.Addr()}})}
			for k := 1; k <= killCount; k++ {
				awaitAcked(t, e, k*killEvery)
				if fsync == "everysec" {
					now := time.Now()
					loss.windows = append(loss.windows, [2]time.Time{now.Add(-3 * time.Second), now.Add(time.Second)})
				}
				rs.Restart() // SIGKILL, then the same port and data directory
			}
			awaitSenders(t, done)
			c := drainKill(t, e, sim, loss)
			loss.explain(t, c)
			d.checkRunning(t)
			t.Logf("redis-server SIGKILL x%d under load, appendfsync %s (upstream window %d): %v", killCount, fsync, killWindow, c)
			checkKillCounts(t, c)
		})
	}
}

// openRedisStore opens the daemon's Redis store in the test, to read back what it holds.
func openRedisStore(t *testing.T, cfg redisstore.Config) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st, err := redisstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// bindKillESME binds e to the daemon at addr as acme, window 32, with the given response time-out
// (0: the session default).
func bindKillESME(t *testing.T, addr string, e *killESME, responseTimeout time.Duration) *session.Session {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	s := session.New(c, session.Options{Role: session.RoleESME, Handler: e, Config: session.Config{Window: 32, ResponseTimeout: responseTimeout}, Logger: zerolog.Nop()})
	t.Cleanup(func() { s.Close(); <-s.Done() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := s.Bind(ctx, session.BindTransceiver, session.BindParams{SystemID: "acme", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkLost: an acked message that never reached the upstream must be one the store lost by its own
// durability rules (gone from it, acked within a window where it may lose writes); one the store
// still holds was lost by the gateway.
func checkLost(t *testing.T, c killCounts) {
	t.Helper()
	if kept := c.lost - c.gone; kept != 0 {
		t.Errorf("%d acked messages never accepted by the upstream though the store holds them", kept)
	}
	if c.goneOutside != 0 {
		t.Errorf("%d acked messages gone from the store were acked outside the windows it may lose writes in", c.goneOutside)
	}
	if c.gone > 0 {
		t.Logf("%d acked messages lost by the store's durability rules (gone from it, acked next to a fault)", c.gone)
	}
}

// storeLoss says which acked messages the store may have lost by its own durability rules (Redis
// with appendfsync everysec killed, a replica promoted before it got the last writes): those acked
// within one of the windows. Nil: none (the store keeps every acknowledged write).
type storeLoss struct {
	st      store.Store    // read after the fault: an acked message it does not hold is gone
	windows [][2]time.Time // when such a loss may have been acknowledged
}

// gone returns the acked messages st no longer holds, by id.
func (l *storeLoss) gone(t *testing.T, e *killESME) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if l == nil {
		return out
	}
	e.mu.Lock()
	ids := make([]string, 0, len(e.acked))
	for id := range e.acked {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	for _, id := range ids {
		_, err := l.get(id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			out[id] = true
		case err != nil:
			t.Fatalf("reading back acked message %s: %v", id, err)
		}
	}
	return out
}

// get reads message id, again while the store answers ErrUnavailable (for up to wait): a cluster
// client's first read of slots that moved is refused with MOVED, and reloads its slot map.
func (l *storeLoss) get(id string) (*store.Message, error) {
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		m, err := l.st.GetMessage(ctx, id)
		cancel()
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			return m, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// explain logs what the store holds of a few of the acked messages that never reached the upstream.
func (l *storeLoss) explain(t *testing.T, c killCounts) {
	t.Helper()
	for i, id := range c.lostIDs {
		if i == 5 {
			t.Logf("and %d more", len(c.lostIDs)-i)
			break
		}
		m, err := l.get(id)
		if err != nil {
			t.Logf("acked message %s not upstream: %v", id, err)
			continue
		}
		t.Logf("acked message %s not upstream: status %v, history %+v, parts %+v", id, m.Status, m.History, m.Parts)
	}
}

// within reports whether at lies in one of the windows.
func (l *storeLoss) within(at time.Time) bool {
	for _, w := range l.windows {
		if !at.Before(w[0]) && !at.After(w[1]) {
			return true
		}
	}
	return false
}

// drainKill waits, bounded, until every acked message reached the upstream and has its receipt at the
// ESME (or, everything else drained, no receipt came for quietFor), then counts both ends. An acked
// message that loss (nil for none) finds gone from the store is not waited for: it is counted lost and
// gone, and checkKillCounts judges it.
func drainKill(t *testing.T, e *killESME, sim *smscsim.Sim, loss *storeLoss) killCounts {
	t.Helper()
	const quietFor = 2 * time.Second
	gone := loss.gone(t, e)
	deadline := time.Now().Add(killDrain)
	lastReceipts, quietSince := -1, time.Now()
	for {
		e.mu.Lock()
		notUp, noReceipt, receipts := 0, 0, 0
		for id, text := range e.acked {
			if gone[id] {
				continue
			}
			if sim.Times(text) == 0 {
				notUp++
			}
			if e.receipts[id] == 0 {
				noReceipt++
			}
		}
		for _, k := range e.receipts {
			receipts += k
		}
		e.mu.Unlock()
		if receipts != lastReceipts {
			lastReceipts, quietSince = receipts, time.Now()
		}
		st := sim.Stats(0)
		upstreamIdle := st.ReceiptsAnswered+st.ReceiptsFailed == st.ReceiptsSent && sim.ReceiptsPending() == 0
		if notUp == 0 && upstreamIdle && (noReceipt == 0 || time.Since(quietSince) > quietFor) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("not drained within %v: %d acked messages not upstream, %d without a receipt", killDrain, notUp, noReceipt)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := killCounts{sent: int(e.next.Load()), acked: len(e.acked), unanswered: len(e.unanswered), refused: len(e.refused), refusedBy: e.refusedBy}
	times := map[string]int{}
	for _, sm := range sim.Submits() {
		times[string(sm.ShortMessage)]++
		c.received++
	}
	c.distinct = len(times)
	c.duplicates = c.received - c.distinct
	for _, text := range e.unanswered {
		if times[text] > 0 {
			c.unansweredUp++
		}
	}
	for _, text := range e.refused {
		if times[text] > 0 {
			c.refusedUp++
		}
	}
	ok := pdu.ESME_ROK.String()
	accepted := map[string]int{}
	for _, r := range sim.Stats(killKeep).Last {
		if r.Status == ok {
			accepted[r.Text]++
		}
	}
	for id, text := range e.acked {
		if accepted[text] == 0 {
			c.lost++
			c.lostIDs = append(c.lostIDs, id)
			if gone[id] {
				c.gone++
				if !loss.within(e.ackedAt[id]) {
					c.goneOutside++
				}
			}
		}
		switch k := e.receipts[id]; {
		case k == 0:
			c.noReceipt++
		case k > 1:
			c.receiptDups += k - 1
		}
		c.receipts += e.receipts[id]
	}
	return c
}

func checkKillCounts(t *testing.T, c killCounts) {
	t.Helper()
	checkLost(t, c)
	if c.acked+c.unanswered+c.refused != c.sent {
		t.Errorf("%d acked + %d unanswered + %d refused != %d sent", c.acked, c.unanswered, c.refused, c.sent)
	}
	// A submission whose connection died before its answer, or that was refused because the store's
	// write failed, is in doubt: the write may have been done (Redis ran the command and was killed
	// before its reply reached smppgw), and then the message goes upstream like any other. Such
	// messages are counted apart; they are not acked, so not lost either way.
	if c.distinct != c.acked-c.lost+c.unansweredUp+c.refusedUp {
		t.Errorf("the upstream got %d distinct messages, want the %d acked (less the %d lost), the %d unanswered and the %d refused that reached it", c.distinct, c.acked, c.lost, c.unansweredUp, c.refusedUp)
	}
	// A life sends again what the life before it had sent towards the upstream and not settled
	// durably (in its window, or answered with the settle waiting for the next group commit): at
	// most max_unsettled per kill.
	if limit := killCount * killUnsettled; c.duplicates > limit {
		t.Errorf("%d duplicates at the upstream, want at most %d (max_unsettled at each of %d kills)", c.duplicates, limit, killCount)
	}
	// Likewise towards the ESME: receipts it had been sent whose delivery was not yet acknowledged
	// durably go out again, at most the gateway's window towards the ESME (10) per kill.
	if limit := killCount * 10; c.receiptDups > limit {
		t.Errorf("%d receipts reached the ESME twice, want at most %d (the window at each of %d kills)", c.receiptDups, limit, killCount)
	}
	// A hole that code reading shows and no run of this test has hit yet (gateway/settle.go partSent):
	// a receipt that beat its submit_sm_resp is parked and answered ESME_ROK; the Settle that then
	// applies it and the EnqueueDelivery of its deliver_sm are two writes, and a kill between them
	// leaves the message DELIVERED in the store with no receipt queued for the ESME and nothing to send
	// it again. It is logged, and bounded by max_unsettled per kill, not asserted away.
	if c.noReceipt > 0 {
		t.Logf("%d acked messages got no receipt", c.noReceipt)
	}
	if limit := killCount * killUnsettled; c.noReceipt > limit {
		t.Errorf("%d acked messages got no receipt, want at most %d", c.noReceipt, limit)
	}
}
