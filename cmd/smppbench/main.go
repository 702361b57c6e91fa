// Command smppbench runs smppgw's benchmark table in one invocation: the ceiling of the wire (a bare
// responder), smppgw's SMSC ingress with each store at several windows, the npm smpp server and
// clients and fiorix/go-smpp beside smppload, the full gRPC path with receipts, 10,000 idle binds,
// and minutes of sustained load on smppgw's defaults with its queue depth sampled; see
// `smppbench --help`. The logic is package internal/bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/smppgw/smppgw/internal/bench"
)

const usage = `smppbench: smppgw's benchmark table, every row in one run, over 127.0.0.1.

Rows (--rows picks them):
  1  smppload -> a bare stdlib responder (the ceiling), at each --windows
  2  smppload -> smppgw serve -> the simulator, with each --stores, at each --windows
  3  smppload -> the npm smpp server, at each --windows
  4  the npm smpp client, fiorix/go-smpp's Transmitter and smppload -> smppgw (embedded), at the largest window
  5  an application: gRPC Submit -> smppgw -> the simulator -> receipt -> StreamReceipts, at full
     load, then paced at half that rate (--paced-rate) for its latency
  6  --idle-binds idle binds to smppgw, kept by enquire_link
  7  sustained: smppload (one bind at --sustain-window) -> smppgw embedded with its default settings
     (upstream window, inbound_limit, workers) -> the simulator, for --sustain (default 2m), reading
     every --sustain-sample what smppgw accepted, what the simulator received and smppgw's queue
     depth towards it (smppgw_queue_depth on its /metrics)

Each row: msgs/s (end to end through smppgw: what the upstream received over first submit to last
arrival), intake (submit_sm_resp/s), p50/p99 latency, CPU seconds and peak RSS of the system under
test (its own process), and the ratio to row 1. smppgw is built from ./cmd/smppgw unless --smppgw
names a binary; Redis rows need redis-server, npm rows need node and gateway/testdata/node's
node_modules (npm ci there); a row that cannot run is shown skipped with the reason.

Row 7's msgs/s is what the simulator received while the load was on, over that time. It adds
smppgw's queue depth at the first reading under load, the middle, the end of the sending and the
largest, and a verdict: "flat" when the end depth and the rise of the depth's least-squares trend
over the second half are both at most 1,000 entries or one second of intake, whichever is larger;
"growing" otherwise. --json adds every reading. --sustain-upstream-window and
--sustain-inbound-limit replace smppgw's defaults, to compare against them.

--profile DIR turns on smppgw's pprof endpoint in rows 2, 4 and 5 and saves, per row, a CPU profile
over the middle of its sending (from a quarter of --duration in, for half of it) and an allocs
profile at its end: DIR/row<N>-<store>-w<W>[-<variant>].cpu.pprof and .allocs.pprof, with the smppgw
binary they came from built into DIR (go tool pprof DIR/smppgw FILE). Profiling costs smppgw a
little CPU; the rows say they were profiled in their note.

Usage:
  smppbench [flags]     (scripts/bench runs it from the module root)

Flags:
`

func main() {
	bench.Child() // this executable is also the bare responder the bench starts
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its outputs explicit, for tests; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smppbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	var (
		cfg                bench.Config
		rows, stores, wins string
		asJSON, quiet      bool
		out                string
	)
	fs.StringVar(&rows, "rows", "1,2,3,4,5,6,7", "rows to run, comma-separated")
	fs.StringVar(&stores, "stores", "embedded,redis-everysec,redis-always", "row 2's stores")
	fs.StringVar(&wins, "windows", "1,10,100,256", "windows (submit_sm in flight per bind) of rows 1-3; rows 4-5 use the largest")
	fs.IntVar(&cfg.Messages, "messages", 200_000, "messages per row")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "cap on each row's sending time")
	fs.IntVar(&cfg.IdleBinds, "idle-binds", 10_000, "row 6's binds")
	fs.DurationVar(&cfg.EnquireLink, "enquire-link", 5*time.Second, "smppgw's enquire_link interval in row 6")
	fs.IntVar(&cfg.UpstreamWindow, "upstream-window", 256, "smppgw's window towards the simulator in rows 2-6")
	fs.Float64Var(&cfg.PacedRate, "paced-rate", 0, "msgs/s of row 5's paced (latency) pass; 0: half the rate of its full-load pass")
	fs.DurationVar(&cfg.Sustain, "sustain", 2*time.Minute, "row 7's sending time (at most 1h)")
	fs.DurationVar(&cfg.SustainSample, "sustain-sample", 0, "how often row 7 reads its figures; 0: 3s, or a tenth of --sustain when shorter")
	fs.IntVar(&cfg.SustainWindow, "sustain-window", 256, "row 7's window (submit_sm in flight on its one bind)")
	fs.Float64Var(&cfg.SustainRate, "sustain-rate", 0, "cap on row 7's submit_sm per second; 0: as fast as the window allows")
	fs.IntVar(&cfg.SustainUpstreamWindow, "sustain-upstream-window", 0, "row 7: smppgw's window towards the simulator; 0: smppgw's default")
	fs.IntVar(&cfg.SustainInboundLimit, "sustain-inbound-limit", 0, "row 7: smppgw's smpp.session.inbound_limit (workers are twice it); 0: smppgw's default")
	fs.StringVar(&cfg.Smppgw, "smppgw", "", "smppgw binary (default: go build ./cmd/smppgw)")
	fs.StringVar(&cfg.ProfileDir, "profile", "", "save CPU and allocs profiles of smppgw in rows 2, 4 and 5 to this directory (pprof on in those rows)")
	fs.StringVar(&cfg.NodeModules, "node-modules", "", "node_modules with the npm smpp package (default gateway/testdata/node/node_modules)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON instead of the table")
	fs.StringVar(&out, "out", "", "also write the table as Markdown to this file")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintln(stderr, "run 'smppbench --help' for usage")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smppbench: unexpected argument %q\nrun 'smppbench --help' for usage\n", fs.Arg(0))
		return 2
	}
	var err error
	if cfg.Rows, err = bench.ParseInts(rows); err != nil {
		return usageError(stderr, "--rows", err)
	}
	if cfg.Windows, err = bench.ParseInts(wins); err != nil {
		return usageError(stderr, "--windows", err)
	}
	for s := range strings.SplitSeq(stores, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Stores = append(cfg.Stores, s)
		}
	}
	if !quiet {
		cfg.Log = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if errors.Is(err, bench.ErrConfig) {
		return usageError(stderr, "", err)
	}
	if err != nil {
		fmt.Fprintln(stderr, "smppbench:", err)
		if len(res.Rows) == 0 {
			return 1
		}
	}
	if asJSON {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "smppbench:", err)
		return 1
	}
	if out != "" {
		f, err := os.Create(out)
		if err == nil {
			err = res.WriteMarkdown(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, "smppbench:", err)
			return 1
		}
	}
	for _, r := range res.Rows {
		if r.Err != "" {
			return 1
		}
	}
	return 0
}

func usageError(stderr io.Writer, flagName string, err error) int {
	if flagName != "" {
		fmt.Fprintf(stderr, "smppbench: %s: %v\n", flagName, err)
	} else {
		fmt.Fprintf(stderr, "smppbench: %v\n", err)
	}
	fmt.Fprintln(stderr, "run 'smppbench --help' for usage")
	return 2
}
