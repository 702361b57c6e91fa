package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
