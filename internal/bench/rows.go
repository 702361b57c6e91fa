package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/smppgw/smppgw/internal/load"
)

// runner runs the rows of one Config.
type runner struct {
	cfg Config
	// fullRate is row 5's full-load msgs/s once it has run: its paced pass runs at half of it.
	fullRate float64
}

// spec is one row to run.
type spec struct {
	name   string
	window int
	run    func(ctx context.Context) Row
}

func (r *runner) needsGateway() bool {
	for _, g := range r.cfg.Rows {
		if g == RowIngress || g == RowClients || g == RowFullPath || g == RowIdle || g == RowSustain {
			return true
		}
	}
	return false
}

func (r *runner) maxWindow() int { return slices.Max(r.cfg.Windows) }

func (r *runner) specs(group int) []spec {
	var out []spec
	switch group {
	case RowCeiling:
		for _, w := range r.cfg.Windows {
			out = append(out, spec{"smppload -> bare stdlib responder", w, func(ctx context.Context) Row { return r.ceiling(ctx, w) }})
		}
	case RowIngress:
		for _, st := range r.cfg.Stores {
			for _, w := range r.cfg.Windows {
				out = append(out, spec{"smppload -> smppgw " + st + " -> sim", w, func(ctx context.Context) Row {
					return r.ingress(ctx, st, w, r.profileName(RowIngress, st, w, ""))
				}})
			}
		}
	case RowNodeSMSC:
		for _, w := range r.cfg.Windows {
			out = append(out, spec{"smppload -> npm smpp server", w, func(ctx context.Context) Row { return r.nodeServer(ctx, w) }})
		}
	case RowClients:
		w := r.maxWindow()
		out = append(out,
			spec{"npm smpp client -> smppgw embedded -> sim", w, func(ctx context.Context) Row {
				return r.nodeClient(ctx, w, r.profileName(RowClients, StoreEmbedded, w, "npm"))
			}},
			spec{"fiorix Transmitter -> smppgw embedded -> sim", w, func(ctx context.Context) Row {
				return r.fiorix(ctx, w, r.profileName(RowClients, StoreEmbedded, w, "fiorix"))
			}},
			spec{"smppload -> smppgw embedded -> sim", w, func(ctx context.Context) Row {
				return r.ingress(ctx, StoreEmbedded, w, r.profileName(RowClients, StoreEmbedded, w, "smppload"))
			}},
		)
	case RowFullPath:
		w := r.maxWindow()
		out = append(out,
			spec{"gRPC Submit -> smppgw embedded -> sim -> receipt -> StreamReceipts", w, func(ctx context.Context) Row {
				row := r.fullPath(ctx, w, 0, r.profileName(RowFullPath, StoreEmbedded, w, ""))
				if row.Err == "" {
					r.fullRate = row.Rate
				}
				return row
			}},
			spec{"the same, paced at half the rate (latency row)", w, r.pacedFullPath(w)})
	case RowIdle:
		out = append(out, spec{fmt.Sprintf("%d idle binds -> smppgw embedded", r.cfg.IdleBinds), 0, r.idle})
	case RowSustain:
		out = append(out, spec{r.sustainName(), r.cfg.SustainWindow, r.sustained})
	}
	return out
}

// pacedFullPath is row 5's second pass: Submit paced at Config.PacedRate, or at half the rate of
// the full-load pass before it, for the latency at a load the gateway keeps up with.
func (r *runner) pacedFullPath(w int) func(ctx context.Context) Row {
	return func(ctx context.Context) (row Row) {
		rate := r.cfg.PacedRate
		if rate <= 0 {
			rate = r.fullRate / 2
		}
		if rate <= 0 {
			row.Skipped, row.Note = true, "no full-load rate to take half of (the full-load pass failed); set --paced-rate"
			return row
		}
		return r.fullPath(ctx, w, rate, r.profileName(RowFullPath, StoreEmbedded, w, "paced"))
	}
}

// loadRun runs smppload's fleet, one bind, against addr at window w; it returns the report and when
// the fleet's first submit_sm went out (estimated from the end of the run and its sending time).
func (r *runner) loadRun(ctx context.Context, addr string, w int, systemID, password string) (load.Report, time.Time, error) {
	rep, err := load.Run(ctx, load.Config{Addr: addr, SystemID: systemID, Password: password, Binds: 1,
		Messages: r.cfg.Messages, Window: w, Duration: r.cfg.Duration})
	end := time.Now()
	if err == nil {
		err = rep.Check()
	}
	first := end.Add(-time.Duration(rep.SendingSeconds * float64(time.Second)))
	return rep, first, err
}

func fromReport(row *Row, rep load.Report) {
	row.Sent, row.Acked = rep.Sent, rep.Acked
	row.Intake, row.Rate = rep.Throughput, rep.Throughput
	row.P50, row.P99 = rep.Latency.P50, rep.Latency.P99
	if rep.Timeouts+rep.Lost+rep.SendFails > 0 || len(rep.Errors) > 0 {
		addNote(row, fmt.Sprintf("timeouts %d, lost %d, errors %v", rep.Timeouts, rep.Lost, rep.Errors))
	}
}

func failed(row Row, err error) Row {
	row.Err = err.Error()
	return row
}

// self is the command line that starts this executable as a Child.
func (r *runner) self() ([]string, error) {
	if len(r.cfg.Self) > 0 {
		return r.cfg.Self, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return []string{exe}, nil
}

// ceiling is row 1: smppload against the bare responder, a process of its own.
func (r *runner) ceiling(ctx context.Context, w int) (row Row) {
	self, err := r.self()
	if err != nil {
		return failed(row, err)
	}
	p, err := startProc(self[0], self[1:], []string{childEnv + "=bare"}, "")
	if err != nil {
		return failed(row, err)
	}
	defer p.stop(5 * time.Second)
	addr, err := p.waitLine(ctx, "listening ", startTimeout)
	if err != nil {
		return failed(row, err)
	}
	p.mark()
	rep, _, err := r.loadRun(ctx, addr, w, "bench", "bench")
	fromReport(&row, rep)
	row.CPU, row.RSS = p.usage()
	if err != nil {
		return failed(row, err)
	}
	return row
}

// ingress is row 2 (and smppload's part of row 4): smppload -> smppgw -> simulator, end to end.
// profile names the row's profiles ("": none).
func (r *runner) ingress(ctx context.Context, store string, w int, profile string) (row Row) {
	if store != StoreEmbedded && !r.haveRedis() {
		row.Skipped, row.Note = true, "redis-server not found"
		return row
	}
	g, err := r.startGateway(ctx, "ingress", gwOptions{store: store, profile: profile})
	if err != nil {
		return failed(row, err)
	}
	defer g.stop()
	prof := r.profileSending(ctx, g)
	rep, first, err := r.loadRun(ctx, g.smppAddr, w, account, accountPass)
	fromReport(&row, rep)
	r.endToEnd(ctx, g, &row, first)
	g.usage(&row)
	prof.finish(ctx, &row)
	if err != nil {
		return failed(row, err)
	}
	return row
}

// endToEnd waits for the simulator to receive what was acknowledged and sets Received and Rate:
// received over the time from first to the last arrival.
func (r *runner) endToEnd(ctx context.Context, g *gwInstance, row *Row, first time.Time) {
	wctx, cancel := context.WithTimeout(ctx, r.drainTimeout())
	defer cancel()
	n, last := g.arr.waitFor(wctx, row.Acked, 10*time.Second)
	row.Received = n
	row.Rate = 0
	if d := last.Sub(first); n > 0 && d > 0 {
		row.Rate = float64(n) / d.Seconds()
	}
	if n < row.Acked {
		addNote(row, fmt.Sprintf("upstream got %d of %d acknowledged", n, row.Acked))
	}
}

// drainTimeout bounds the wait for the queue to drain after the sending ends.
func (r *runner) drainTimeout() time.Duration { return max(30*time.Second, 3*r.cfg.Duration) }

func (r *runner) haveRedis() bool {
	_, err := lookPath(r.redisBin())
	return err == nil
}
