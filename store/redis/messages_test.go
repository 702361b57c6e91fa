package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// pipelines counts the pipelines (round trips) a client sends.
type pipelines struct{ n atomic.Int64 }

func (h *pipelines) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *pipelines) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return next
}
func (h *pipelines) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestSettlePlain: Settle runs no script (no EVALSHA in INFO commandstats for 20 settles) and
// writes the message with one APPEND; reads see the update applied with the settle's own time in
// the history, before and after a receipt appends its own. A Settle of a part the message does
// not have changes nothing a reader sees, one of a message that does not exist leaves no key
// behind, and neither acknowledges anything.
func TestSettlePlain(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	s := openStore(t, srv, Config{})
	ctx := context.Background()
	const n = 20
	for i := range n {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("p%d", i), "acme", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	var tasks []*store.PartTask
	for deadline := time.Now().Add(5 * time.Second); len(tasks) < n && time.Now().Before(deadline); {
		got, err := s.ClaimParts(ctx, "up", "c", n-len(tasks), 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, got...)
	}
	if len(tasks) != n {
		t.Fatalf("claimed %d of %d", len(tasks), n)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	t0 := tasks[0]
	// Nothing is written for a part the message does not have, nor for a message that does not exist.
	before, err := s.GetMessage(ctx, t0.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Settle(ctx, t0.Lease, store.PartUpdate{MessageID: t0.MessageID, Part: 3, Upstream: "up", UpstreamID: "X", Status: pdu.ENROUTE}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Settle of part 3 of 1: %v, want ErrInvalid", err)
	}
	if after, err := s.GetMessage(ctx, t0.MessageID); err != nil || fmt.Sprint(*after) != fmt.Sprint(*before) {
		t.Errorf("message after a Settle of a missing part (%v):\n%+v\nwas\n%+v", err, after, before)
	}
	if _, _, err := s.Settle(ctx, t0.Lease, store.PartUpdate{MessageID: "ghost", Part: 0, Upstream: "up", UpstreamID: "X", Status: pdu.ENROUTE}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Settle of a missing message: %v, want ErrNotFound", err)
	}
	if got := s.c.Exists(ctx, s.kMsg("ghost")).Val(); got != 0 {
		t.Errorf("a Settle of a missing message left its key behind")
	}
	if l, err := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); err != nil || l != n {
		t.Fatalf("queue length %d (%v) after failed Settles, want %d", l, err, n)
	}

	// A Settle is one round trip; one of a message that does not exist, two (the second takes
	// away the key the first created).
	trips := &pipelines{}
	s.c.AddHook(trips)
	if _, _, err := s.Settle(ctx, t0.Lease, store.PartUpdate{MessageID: "ghost2", Part: 0, Upstream: "up", Status: pdu.ENROUTE}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Settle of a missing message: %v, want ErrNotFound", err)
	}
	if got := trips.n.Swap(0); got != 2 {
		t.Errorf("a Settle of a missing message took %d round trips, want 2", got)
	}
	if got := s.c.Exists(ctx, s.kMsg("ghost2")).Val(); got != 0 {
		t.Errorf("a Settle of a missing message left its key behind")
	}
	calls := commandStatsT(t, s)
	for i, tk := range tasks {
		m, _, err := s.Settle(ctx, tk.Lease, store.PartUpdate{MessageID: tk.MessageID, Part: 0, Upstream: "up", UpstreamID: fmt.Sprintf("U%d", i), Status: pdu.ENROUTE, At: at})
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != pdu.ENROUTE || m.Parts[0].Status != pdu.ENROUTE || len(m.History) != 2 || !m.History[1].At.Equal(at) || !m.UpdatedAt.Equal(at) {
			t.Fatalf("Settle returned status %v part %v history %v updated %v", m.Status, m.Parts[0].Status, m.History, m.UpdatedAt)
		}
	}
	if got := trips.n.Load(); got != n {
		t.Errorf("%d round trips for %d settles, want %d", got, n, n)
	}
	if got := commandStatsT(t, s)["evalsha"] - calls["evalsha"]; got != 0 {
		t.Errorf("%d EVALSHA for %d settles, want 0", got, n)
	}
	after := commandStatsT(t, s)
	if got := after["append"] - calls["append"]; got != n {
		t.Errorf("%d APPEND for %d settles, want %d", got, n, n)
	}
	if got := after["hset"] + after["hsetnx"] - calls["hset"] - calls["hsetnx"]; got != 0 {
		t.Errorf("%d HSET or HSETNX for %d settles, want 0", got, n)
	}
	if l, err := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); err != nil || l != 0 {
		t.Fatalf("queue length %d (%v) after the Settles, want 0", l, err)
	}
	// A receipt appends itself after the update.
	rcvd := at.Add(time.Second)
	m, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: "U0", State: pdu.DELIVERED, Received: rcvd})
	if err != nil || parked {
		t.Fatalf("AddReceipt: parked %v, %v", parked, err)
	}
	want := []store.StatusChange{{State: pdu.ACCEPTED, At: m.CreatedAt}, {State: pdu.ENROUTE, At: at}, {State: pdu.DELIVERED, At: rcvd}}
	if m.Status != pdu.DELIVERED || fmt.Sprint(m.History) != fmt.Sprint(want) {
		t.Errorf("after the receipt: status %v history %v, want DELIVERED %v", m.Status, m.History, want)
	}
	if got, err := s.GetMessage(ctx, t0.MessageID); err != nil || fmt.Sprint(got.History) != fmt.Sprint(want) || got.Parts[0].UpstreamID != "U0" {
		t.Errorf("GetMessage: %v history %v", err, got.History)
	}
	// Each update applies as it came: a second ENROUTE changes no status, the first final state
	// stands.
	t1 := tasks[1]
	later := at.Add(time.Minute)
	updates := []store.PartUpdate{
		{MessageID: t1.MessageID, Part: 0, Upstream: "up2", UpstreamID: "V1", Status: pdu.ENROUTE, At: later},
		{MessageID: t1.MessageID, Part: 0, Status: pdu.REJECTED, Error: 8, At: later.Add(time.Second)},
		{MessageID: t1.MessageID, Part: 0, Status: pdu.EXPIRED, At: later.Add(2 * time.Second)},
	}
	for _, u := range updates {
		if _, _, err := s.UpdatePart(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetMessage(ctx, t1.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	wantHist := []store.StatusChange{{State: pdu.ACCEPTED, At: got.CreatedAt}, {State: pdu.ENROUTE, At: at}, {State: pdu.REJECTED, At: later.Add(time.Second)}}
	if got.Status != pdu.REJECTED || got.Parts[0].Error != 8 || got.Parts[0].UpstreamID != "V1" || got.Parts[0].Upstream != "up2" || fmt.Sprint(got.History) != fmt.Sprint(wantHist) {
		t.Errorf("after ENROUTE twice, REJECTED and EXPIRED: status %v error %d upstream %q %q history %v, want REJECTED 8 up2 V1 %v",
			got.Status, got.Parts[0].Error, got.Parts[0].Upstream, got.Parts[0].UpstreamID, got.History, wantHist)
	}
}

// TestSettleLeasePartCount: a Settle whose lease says another part count than the message has
// (a lease not made by this store) returns the message whole, in one round trip: it reads the
// message whole anyway.
func TestSettleLeasePartCount(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "everysec"})
	s := openStore(t, srv, Config{})
	ctx := context.Background()
	if err := s.AcceptMessage(ctx, storetest.NewMessage("lp", "acme", "up", 2)); err != nil {
		t.Fatal(err)
	}
	var tasks []*store.PartTask
	for deadline := time.Now().Add(5 * time.Second); len(tasks) < 2 && time.Now().Before(deadline); {
		got, err := s.ClaimParts(ctx, "up", "c", 2-len(tasks), 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, got...)
	}
	if len(tasks) != 2 {
		t.Fatalf("claimed %d of 2", len(tasks))
	}
	tk := tasks[0]
	if tk.Part != 1 {
		tk = tasks[1]
	}
	l := tk.Lease
	if !strings.HasSuffix(l.Entry, "/2:lp") {
		t.Fatalf("lease %q does not end with the part count and message", l.Entry)
	}
	l.Entry = strings.TrimSuffix(l.Entry, "/2:lp") + "/3:lp" // part 1 of 3, says the lease
	trips := &pipelines{}
	s.c.AddHook(trips)
	m, _, err := s.Settle(ctx, l, store.PartUpdate{MessageID: "lp", Part: 1, Upstream: "up", UpstreamID: "UL", Status: pdu.ENROUTE})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Parts) != 2 || m.Parts[1].UpstreamID != "UL" || m.Parts[1].Status != pdu.ENROUTE || m.Parts[0].Status != pdu.ACCEPTED {
		t.Errorf("Settle returned %d parts: %+v", len(m.Parts), m.Parts)
	}
	if got := trips.n.Load(); got != 1 {
		t.Errorf("Settle took %d round trips, want 1 (the message is read whole)", got)
	}
	if n, err := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); err != nil || n != 1 {
		t.Errorf("queue length %d (%v) after settling one of two parts, want 1", n, err)
	}
}

// TestAcceptsOneScript: the accepts of a group commit's round go in one script (on Cluster one
// per shard, and here there is one shard: fewer EVALSHA than accepts), and each gets its own
// outcome: a taken id ErrExists, a message whose queue cannot be written (its stream key holds
// a string) its own error, and so do messages whose account's index cannot be written (and
// they are not queued), the others accepted and queued.
func TestAcceptsOneScript(t *testing.T) {
	t.Run("node", func(t *testing.T) {
		testAcceptsOneScript(t, openStore(t, redistest.Start(t, redistest.Options{AppendFsync: "always"}), Config{Shards: 1}))
	})
	t.Run("cluster", func(t *testing.T) {
		testAcceptsOneScript(t, openStore(t, redistest.StartCluster(t), Config{Cluster: true, Shards: 1}))
	})
}

func testAcceptsOneScript(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.c.Set(ctx, s.kStream(store.Queue{Kind: store.SubmitQueue, Name: "bad"}, 0), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Set(ctx, s.kIdxAcc(0, "badidx"), "not a sorted set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	const badIdx = 3
	before := commandStatsT(t, s)
	const n = 60
	errs := make([]error, n+n/6+1+badIdx)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, up := fmt.Sprintf("b%d", i%n), "up" // the ones past n take ids again
			m := storetest.NewMessage(id, "acme", up, 1)
			switch {
			case i >= n+n/6+1:
				m = storetest.NewMessage(fmt.Sprintf("idx%d", i), "badidx", "up", 1)
			case i == n+n/6:
				m = storetest.NewMessage("to-bad", "acme", "bad", 1)
			}
			errs[i] = s.AcceptMessage(ctx, m)
		}()
	}
	wg.Wait()
	var ok, exists, other int
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrExists):
			exists++
		case i >= n+n/6 && !errors.Is(err, store.ErrInDoubt) && strings.Contains(err.Error(), "WRONGTYPE"):
			other++
		default:
			t.Errorf("accept %d: %v", i, err)
		}
	}
	if ok != n || exists != n/6 || other != 1+badIdx {
		t.Errorf("%d accepted, %d ErrExists, %d failed on the bad queue or index; want %d, %d, %d", ok, exists, other, n, n/6, 1+badIdx)
	}
	if l, err := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); err != nil || l != n {
		t.Errorf("queue length %d (%v), want %d", l, err, n)
	}
	calls := commandStatsT(t, s)["evalsha"] - before["evalsha"]
	if calls == 0 || calls >= uint64(len(errs)) {
		t.Errorf("%d EVALSHA for %d accepts, want fewer (and some)", calls, len(errs))
	}
	t.Logf("%d accepts in %d scripts", len(errs), calls)
}
