package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// benchPart is a typical full part: 160 GSM 7-bit characters packed into 140 octets.
var benchPart = make([]byte, 140)

func benchMessage(id string) *store.Message {
	m := NewMessage(id, "bench", "up", 1)
	m.Parts[0].ShortMessage = benchPart
	m.Parts[0].TLVs = nil
	return m
}

// workers runs work(w) on n goroutines and returns how long they took together.
func workers(n int, work func(w int) error) (time.Duration, error) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := work(w); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	return elapsed, <-errs
}

// accept accepts n single-part messages using writers goroutines.
func accept(s store.Store, prefix string, n, writers int) (time.Duration, error) {
	ctx := context.Background()
	var next atomic.Int64
	return workers(writers, func(int) error {
		for {
			i := next.Add(1) - 1
			if i >= int64(n) {
				return nil
			}
			if err := s.AcceptMessage(ctx, benchMessage(fmt.Sprintf("%s%d", prefix, i))); err != nil {
				return err
			}
		}
	})
}

// BenchAccept measures AcceptMessage (durable write of the record and enqueue of its part) of
// single-part messages with writers concurrent callers. One b.N iteration is one message;
// the msgs/s metric is messages accepted per second of wall time.
func BenchAccept(b *testing.B, s store.Store, writers int) {
	prefix := fmt.Sprintf("acc-%d-%d-", writers, time.Now().UnixNano())
	b.ReportAllocs()
	b.ResetTimer()
	elapsed, err := accept(s, prefix, b.N, writers)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchClaimAck measures claiming and acknowledging parts with writers concurrent consumers,
// each claiming up to 16 at a time and acknowledging them in one call. The queue is filled
// before the timer starts. One b.N iteration is one part; msgs/s is parts per second.
func BenchClaimAck(b *testing.B, s store.Store, writers int) {
	ctx := context.Background()
	b.StopTimer()
	if _, err := accept(s, fmt.Sprintf("ca-%d-%d-", writers, time.Now().UnixNano()), b.N, 64); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.StartTimer()
	var done atomic.Int64
	elapsed, err := workers(writers, func(w int) error {
		consumer := fmt.Sprintf("bench-%d", w)
		for done.Load() < int64(b.N) {
			got, err := s.ClaimParts(ctx, "up", consumer, 16, 0)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				// The rest is claimed by other consumers; wait for them to finish.
				time.Sleep(time.Millisecond)
				continue
			}
			leases := make([]store.Lease, len(got))
			for i, g := range got {
				leases[i] = g.Lease
			}
			if err := s.Ack(ctx, leases...); err != nil {
				return err
			}
			done.Add(int64(len(got)))
		}
		return nil
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// Writers are the concurrency levels the issue asks benchmarks for.
var Writers = []int{1, 16, 256}

// Settler settles one claimed part the upstream accepted: what the gateway does on a
// submit_sm_resp. BenchForward takes it so the store's paths can be compared.
type Settler func(ctx context.Context, s store.Store, t *store.PartTask, upstreamID string) error

// SettleSeparately is the path of UpdatePart (upstream id, ENROUTE) then Ack: two writes.
func SettleSeparately(ctx context.Context, s store.Store, t *store.PartTask, upstreamID string) error {
	if _, _, err := s.UpdatePart(ctx, store.PartUpdate{
		MessageID: t.MessageID, Part: t.Part, Upstream: "up", UpstreamID: upstreamID, Status: pdu.ENROUTE,
	}); err != nil {
		return err
	}
	return s.Ack(ctx, t.Lease)
}

// ForwardStats are what BenchForward reports beyond time and allocations.
type ForwardStats struct {
	// Commits returns how many group commits (bbolt transactions, Redis pipelines) the store
	// ran so far; nil when the implementation does not say.
	Commits func() uint64
	// Commands returns how many commands the backend ran so far (Redis: the calls of INFO
	// commandstats, those inside scripts included); nil when it does not say.
	Commands func() uint64
}

// BenchForward measures a message's whole way through the store as the gateway drives it:
// conc producers accept single-part messages (an ESME's window), one claimer takes up to conc
// parts at a time (one upstream bind, its window conc), and conc settlers record each answer
// with settle. One b.N iteration is one message accepted, claimed and settled; msgs/s is
// settled messages per second of wall time, commits/msg the group commits per message.
func BenchForward(b *testing.B, s store.Store, conc int, settle Settler, stats ForwardStats) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := fmt.Sprintf("fw-%d-%d-", conc, time.Now().UnixNano())
	var commits0, commands0 uint64
	if stats.Commits != nil {
		commits0 = stats.Commits()
	}
	if stats.Commands != nil {
		commands0 = stats.Commands()
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	tasks := make(chan *store.PartTask, conc)
	slots := make(chan struct{}, conc) // a part holds a slot until it is settled, as in the gateway
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if _, err := accept(s, prefix, b.N, conc); err != nil {
			errs <- err
		}
	}()
	go func() {
		defer wg.Done()
		defer close(tasks)
		for got := 0; got < b.N; {
			// Claim no more than the free slots, as the gateway's window does.
			slots <- struct{}{}
			free := 1
			for free < conc && len(slots) < cap(slots) {
				slots <- struct{}{}
				free++
			}
			ts, err := s.ClaimParts(ctx, "up", "bench", free, 100*time.Millisecond)
			if err != nil {
				errs <- err
				return
			}
			for range free - len(ts) {
				<-slots
			}
			for _, t := range ts {
				tasks <- t
			}
			got += len(ts)
		}
	}()
	go func() {
		defer wg.Done()
		if _, err := workers(conc, func(w int) error {
			for t := range tasks {
				err := settle(ctx, s, t, "U"+t.MessageID)
				<-slots
				if err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if stats.Commits != nil {
		b.ReportMetric(float64(stats.Commits()-commits0)/float64(b.N), "commits/msg")
	}
	if stats.Commands != nil {
		b.ReportMetric(float64(stats.Commands()-commands0)/float64(b.N), "cmds/msg")
	}
}

// Concurrency are the levels BenchForward runs at: one message at a time, and windows.
var Concurrency = []int{1, 100, 256}

// SettleCombined is the path of Settle: the update and the Ack in one write.
func SettleCombined(ctx context.Context, s store.Store, t *store.PartTask, upstreamID string) error {
	_, _, err := s.Settle(ctx, t.Lease, store.PartUpdate{
		MessageID: t.MessageID, Part: t.Part, Upstream: "up", UpstreamID: upstreamID, Status: pdu.ENROUTE,
	})
	return err
}

// Settlers are the settle paths BenchForward compares.
var Settlers = []struct {
	Name   string
	Settle Settler
}{{"separate", SettleSeparately}, {"combined", SettleCombined}}
