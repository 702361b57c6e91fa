package redis

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/internal/cputime"
	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// BenchmarkForwardCPU is BenchmarkForward (combined settle) reporting the Redis server's work
// per message: redis-us/msg is the server's CPU (INFO cpu, user + sys), in-cmds-us/msg the
// part of it spent inside commands (INFO commandstats usec: a script's own commands are
// counted in it and again in EVALSHA's) and cmds/msg its command calls (those inside scripts
// included); client-us/msg is this process's CPU (the store's client side and the
// benchmark's own work); sent-cmds/msg counts the commands the client sent (a script once) and trips/msg
// its pipelines and single commands (round trips). With -v it logs the calls and time per
// message of each command.
func BenchmarkForwardCPU(b *testing.B) {
	for _, fsync := range []string{"everysec", "always"} {
		for _, c := range []int{1, 256} {
			b.Run(fmt.Sprintf("fsync=%s/conc=%d", fsync, c), func(b *testing.B) {
				forwardCPU(b, benchStore(b, fsync), c)
			})
		}
	}
}

// BenchmarkForwardCPUCluster is BenchmarkForwardCPU on a one-node Cluster (appendfsync
// always), where a script's keys share a slot.
func BenchmarkForwardCPUCluster(b *testing.B) {
	for _, c := range []int{1, 256} {
		b.Run(fmt.Sprintf("conc=%d", c), func(b *testing.B) {
			forwardCPU(b, openStore(b, redistest.StartCluster(b), Config{Cluster: true}), c)
		})
	}
}

// BenchmarkForwardAsyncCPU is BenchmarkForwardCPU through the asynchronous writes, as the gateway
// drives them (see forwardAsync): the client's CPU a message without a goroutine waiting per write.
func BenchmarkForwardAsyncCPU(b *testing.B) {
	for _, fsync := range []string{"everysec", "always"} {
		for _, c := range []int{1, 256} {
			b.Run(fmt.Sprintf("fsync=%s/conc=%d", fsync, c), func(b *testing.B) {
				s := benchStore(b, fsync)
				measureForward(b, s, func() { forwardAsync(b, s, c) })
			})
		}
	}
}

func forwardCPU(b *testing.B, s *Store, c int) {
	measureForward(b, s, func() {
		storetest.BenchForward(b, s, c, storetest.SettleCombined, storetest.ForwardStats{})
	})
}

// forwardAsync is storetest.BenchForward through AcceptMessageAsync and SettleAsync: one producer
// keeps up to conc accepts in flight (an ESME's window), one claimer takes up to conc parts at a
// time (a bind's window) and settles each asynchronously, its slot freed by the completion.
func forwardAsync(b *testing.B, s *Store, conc int) {
	ctx := context.Background()
	f := &asyncForward{n: int64(b.N), accepts: make(chan struct{}, conc), slots: make(chan struct{}, conc), done: make(chan struct{})}
	prefix := fmt.Sprintf("fwa-%d-%d-", conc, time.Now().UnixNano())
	part := make([]byte, 140) // a full part, as storetest's benchmarks send
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := range b.N {
			select {
			case f.accepts <- struct{}{}:
			case <-f.done:
				return
			}
			m := storetest.NewMessage(prefix+strconv.Itoa(i), "bench", "up", 1)
			m.Parts[0].ShortMessage, m.Parts[0].TLVs = part, nil
			s.AcceptMessageAsync(ctx, m, f)
		}
	}()
	go func() {
		for got := 0; got < b.N; {
			select {
			case f.slots <- struct{}{}:
			case <-f.done:
				return
			}
			free := 1
			for free < conc && len(f.slots) < cap(f.slots) {
				f.slots <- struct{}{}
				free++
			}
			ts, err := s.ClaimParts(ctx, "up", "bench", free, 100*time.Millisecond)
			if err != nil {
				f.fail(err)
				return
			}
			for range free - len(ts) {
				<-f.slots
			}
			for _, t := range ts {
				s.SettleAsync(ctx, t.Lease, store.PartUpdate{
					MessageID: t.MessageID, Part: t.Part, Upstream: "up", UpstreamID: "U" + t.MessageID, Status: pdu.ENROUTE,
				}, f)
			}
			got += len(ts)
		}
	}()
	<-f.done
	elapsed := time.Since(start)
	b.StopTimer()
	if p := f.err.Load(); p != nil {
		b.Fatal(*p)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// asyncForward is forwardAsync's completion of every accept and settle.
type asyncForward struct {
	n        int64
	settled  atomic.Int64
	accepts  chan struct{} // a slot per accept in flight
	slots    chan struct{} // a slot per part claimed and not settled
	done     chan struct{} // closed once n are settled, or on the first error
	doneOnce sync.Once
	err      atomic.Pointer[error]
}

func (f *asyncForward) AcceptDone(err error) {
	<-f.accepts
	if err != nil {
		f.fail(err)
	}
}

func (f *asyncForward) SettleDone(_ *store.Message, _ []store.Receipt, err error) {
	<-f.slots
	if err != nil {
		f.fail(err)
		return
	}
	if f.settled.Add(1) == f.n {
		f.doneOnce.Do(func() { close(f.done) })
	}
}

func (f *asyncForward) fail(err error) {
	f.err.CompareAndSwap(nil, &err)
	f.doneOnce.Do(func() { close(f.done) })
}

// measureForward runs forward, a whole-way benchmark over s, and reports the client's and the
// server's work a message.
func measureForward(b *testing.B, s *Store, forward func()) {
	sent := &sentCommands{}
	s.c.AddHook(sent)
	cpu0, cmds0, us0 := serverCPU(b, s), commandStats(b, s, "calls="), commandStats(b, s, "usec=")
	sent0, trips0 := sent.cmds.Load(), sent.trips.Load()
	self0 := cputime.Process().Seconds()
	flushes0 := s.w.Flushes()
	forward()
	b.ReportMetric(float64(s.w.Flushes()-flushes0)/float64(b.N), "commits/msg")
	self1 := cputime.Process().Seconds()
	sent1, trips1 := sent.cmds.Load(), sent.trips.Load()
	b.ReportMetric((self1-self0)*1e6/float64(b.N), "client-us/msg")
	cpu1, cmds1, us1 := serverCPU(b, s), commandStats(b, s, "calls="), commandStats(b, s, "usec=")
	b.ReportMetric(float64(sent1-sent0)/float64(b.N), "sent-cmds/msg")
	b.ReportMetric(float64(trips1-trips0)/float64(b.N), "trips/msg")
	b.ReportMetric((cpu1-cpu0)*1e6/float64(b.N), "redis-us/msg")
	var total uint64
	var names []string
	for name, n := range cmds1 {
		total += n - cmds0[name]
		names = append(names, name)
	}
	b.ReportMetric(float64(total)/float64(b.N), "cmds/msg")
	sort.Strings(names)
	var per []string
	var inCmds uint64
	for _, name := range names {
		if d := cmds1[name] - cmds0[name]; d > 0 && name != "info" {
			du := us1[name] - us0[name]
			inCmds += du
			per = append(per, fmt.Sprintf("%s=%.2f(%.1fus)", name, float64(d)/float64(b.N), float64(du)/float64(b.N)))
		}
	}
	b.ReportMetric(float64(inCmds)/float64(b.N), "in-cmds-us/msg")
	b.Logf("N=%d per message: calls(us inside): %s", b.N, strings.Join(per, " "))
}

// sentCommands counts what a client sends: commands, and round trips (a pipeline or a single
// command each).
type sentCommands struct{ cmds, trips atomic.Int64 }

func (h *sentCommands) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *sentCommands) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.cmds.Add(1)
		h.trips.Add(1)
		return next(ctx, cmd)
	}
}

func (h *sentCommands) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.cmds.Add(int64(len(cmds)))
		h.trips.Add(1)
		return next(ctx, cmds)
	}
}

// serverCPU is the Redis server's CPU seconds so far (main thread and children).
func serverCPU(b *testing.B, s *Store) float64 {
	info, err := s.c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu line %q: %v", line, err)
			}
			sum += f
		}
	}
	return sum
}

// commandStats is one figure (field "calls=" or "usec=") of each command in INFO
// commandstats.
func commandStats(b *testing.B, s *Store, field string) map[string]uint64 {
	info, err := s.c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	return parseCommandStats(b, info, field)
}

func parseCommandStats(t testing.TB, info, field string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		_, rest, ok = strings.Cut(rest, field)
		if !ok {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}

// BenchmarkAcceptAccountsCPU accepts messages from many accounts at 256 writers and reports
// redis-server's CPU a message: with accounts=10000 nearly every message is its account's only
// one in its shard and second, the worst case of the per-account buckets (each message a
// bucket of its own and a directory entry), against accounts=1, the best.
func BenchmarkAcceptAccountsCPU(b *testing.B) {
	for _, accounts := range []int{1, 300, 10000} {
		b.Run(fmt.Sprintf("accounts=%d", accounts), func(b *testing.B) {
			s := benchStore(b, "everysec")
			ctx := context.Background()
			prefix := fmt.Sprintf("aa-%d-", accounts)
			cpu0 := serverCPU(b, s)
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 256)
			b.ResetTimer()
			for range 256 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						m := storetest.NewMessage(prefix+strconv.FormatInt(i, 10), "acct"+strconv.FormatInt(i%int64(accounts), 10), "up", 1)
						if err := s.AcceptMessage(ctx, m); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric((serverCPU(b, s)-cpu0)*1e6/float64(b.N), "redis-us/msg")
			mem, err := s.c.Info(ctx, "memory").Result()
			if err != nil {
				b.Fatal(err)
			}
			for _, line := range strings.Split(mem, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
					n, _ := strconv.ParseFloat(v, 64)
					b.ReportMetric(n/float64(b.N), "redis-bytes/msg")
				}
			}
		})
	}
}
