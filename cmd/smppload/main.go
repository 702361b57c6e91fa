// Command smppload is a fleet of simulated ESMEs: it binds to an SMSC (the gateway), submits a
// bounded number of messages with a window per bind and an optional rate, waits for receipts, and
// reports; see `smppload --help`. The fleet itself is package internal/load.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/load"
)

const usage = `smppload: a fleet of simulated ESMEs, to load an SMSC (smppgw) and measure it.

It dials --binds connections to --addr, binds each (--system-id, --password, --bind-type), and
submits --messages in total over all of them, each bind keeping --window submit_sm in flight,
at most --rate per second over the fleet, for at most --duration. Texts are drawn from
--text-mix. Receipts (deliver_sm) are answered and counted; with --registered-delivery 1 and
--wait-receipts D it waits up to D after the last response for one receipt per acknowledged
submit_sm. With --outbind-listen ADDR it also waits for outbinds there (the gateway's "connect
now"), binds back on each such connection and counts it; that bind joins the fleet.

A live progress bar is drawn on stderr when it is a terminal. At the end a table (or, with --json,
one JSON object) gives: binds, messages, submit_sm sent, acknowledged (ESME_ROK), errors by status,
timeouts, receipts by state, throughput (acknowledged per second, first submit_sm to last
response) and submit_sm -> submit_sm_resp latency p50/p90/p99/max.

Exit status: 0 when every bind succeeded and something was acknowledged; 1 when a bind failed or
nothing was acknowledged; 2 for a usage error. SIGINT or SIGTERM stops the sending, awaits what
is in flight and reports.

Usage:
  smppload [flags]

Examples:
  smppload --addr 127.0.0.1:2775 --system-id alice --password secret --binds 4 --messages 100000 --window 100
  smppload --addr gw:3550 --tls --rate 500 --duration 1m --text-mix gsm=80,ucs2=15,long=5 \
           --registered-delivery 1 --wait-receipts 30s --json

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its outputs explicit, for tests; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smppload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // -h prints the whole text on stdout below; a bad flag gets a hint

	var (
		cfg        load.Config
		bindType   = session.BindTransceiver
		mix        = "gsm=100"
		regDlr     uint
		asJSON     bool
		useTLS     bool
		insecure   bool
		respTO     time.Duration
		verbose    bool
		noProgress bool
		cpuProfile string
	)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:2775", "SMSC to bind to, host:port; empty with --outbind-listen to only wait for outbinds")
	fs.StringVar(&cfg.SystemID, "system-id", "smppload", "system_id of every bind")
	fs.StringVar(&cfg.Password, "password", "", "password of every bind")
	fs.StringVar(&cfg.SystemType, "system-type", "", "system_type of every bind")
	fs.TextVar(&bindType, "bind-type", session.BindTransceiver, "transceiver, transmitter or receiver (a receiver only counts receipts)")
	fs.IntVar(&cfg.Binds, "binds", 1, "connections to dial (0 with --outbind-listen: none)")
	fs.IntVar(&cfg.Messages, "messages", 1000, "messages in total over all binds (0: unbounded, until --duration or SIGINT); a long message is one message of several submit_sm")
	fs.IntVar(&cfg.Window, "window", 10, "submit_sm in flight per bind")
	fs.Float64Var(&cfg.Rate, "rate", 0, "at most this many submit_sm per second over all binds (0: as fast as answered)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop sending after this long (0: no bound in time)")
	fs.StringVar(&mix, "text-mix", mix, "weights of the text kinds: gsm (one SMS), ucs2 (one SMS), long (GSM, 3 parts), long-ucs2 (3 parts)")
	fs.StringVar(&cfg.Source, "source", "smppload", "source_addr")
	fs.StringVar(&cfg.Dest, "dest", "4670", "destination_addr prefix; --dest-digits random digits follow")
	fs.IntVar(&cfg.DestDigits, "dest-digits", 8, "random digits after --dest (negative: none)")
	fs.UintVar(&regDlr, "registered-delivery", 0, "registered_delivery of every submit_sm (1: a final receipt)")
	fs.DurationVar(&cfg.WaitReceipts, "wait-receipts", 0, "after the last response, wait up to this long for one receipt per acknowledged submit_sm")
	fs.StringVar(&cfg.OutbindListen, "outbind-listen", "", "host:port to wait for outbinds on; each is bound back and joins the fleet")
	fs.BoolVar(&useTLS, "tls", false, "dial --addr with TLS")
	fs.BoolVar(&insecure, "insecure-skip-verify", false, "with --tls, accept any server certificate (test setups only)")
	fs.DurationVar(&respTO, "response-timeout", 0, "how long a submit_sm may wait for its response (0: 10s)")
	fs.BoolVar(&asJSON, "json", false, "print the report as one JSON object on stdout instead of the table")
	fs.BoolVar(&noProgress, "no-progress", false, "no progress bar, even on a terminal")
	fs.BoolVar(&verbose, "v", false, "log connection events on stderr")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintln(stderr, "see smppload --help")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smppload: unexpected argument %q (see --help)\n", fs.Arg(0))
		return 2
	}
	var err error
	if cfg.Mix, err = load.ParseTextMix(mix); err != nil {
		fmt.Fprintf(stderr, "smppload: --text-mix: %v\n", err)
		return 2
	}
	if regDlr > 0xFF {
		fmt.Fprintf(stderr, "smppload: --registered-delivery: %d does not fit one octet\n", regDlr)
		return 2
	}
	cfg.RegisteredDelivery = uint8(regDlr)
	cfg.BindType = bindType
	if cfg.Binds == 0 {
		cfg.Binds = -1 // the flag's 0 means none, Config's means 1
	}
	cfg.Session.ResponseTimeout = respTO
	if useTLS {
		host, _, _ := net.SplitHostPort(cfg.Addr)
		cfg.TLS = &tls.Config{ServerName: host, InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12}
	}
	if verbose {
		cfg.Logger = zerolog.New(zerolog.ConsoleWriter{Out: stderr}).With().Timestamp().Logger()
	}
	if f, ok := stderr.(*os.File); ok && !noProgress && !verbose && isatty.IsTerminal(f.Fd()) {
		cfg.Progress = load.ProgressBar(stderr, cfg.Messages)
	}
	if cfg.OutbindListen != "" {
		cfg.OutbindReady = func(addr string) { fmt.Fprintf(stderr, "smppload: waiting for outbinds on %s\n", addr) }
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "smppload: --cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "smppload: --cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := load.Run(ctx, cfg)
	if errors.Is(err, load.ErrConfig) {
		fmt.Fprintf(stderr, "smppload: %v\n", err)
		return 2
	}
	if asJSON {
		_ = report.WriteJSON(stdout)
	} else {
		_ = report.WriteTable(stdout)
	}
	if err == nil {
		err = report.Check()
	}
	if err != nil {
		fmt.Fprintf(stderr, "smppload: %v\n", err)
		return 1
	}
	return 0
}
