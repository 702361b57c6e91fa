// Command smscsim is an upstream SMSC simulator driven over HTTP: see `smscsim --help`. The simulator
// itself is internal/smscsim; this main parses flags and runs it until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/internal/smscsim"
)

const usage = `smscsim: an upstream SMSC simulator, like Kannel's fakesmsc but driven over HTTP.

ESMEs (smppgw's upstream binds, a load tool, anything speaking SMPP 3.4) bind to it and submit;
it answers submit_sm and data_sm with ids of its own (SIM0001, ...), sends delivery receipts after
a delay in a mix of final states, sends MO on a timer or on demand, and injects faults on demand.
It reports what it received on GET /stats, and prints the counts as a closing table when it stops
(SIGINT or SIGTERM: links are unbound gracefully first).

Usage:
  smscsim [flags]

Flags:
`

const httpHelp = `
HTTP API (JSON):
  GET    /healthz             {"status":"ok","bound":N}
  GET    /stats?last=N        counts (binds, submissions by answer, receipts, MO) and the last N submissions
  GET    /binds               the bound links: id, system_id, bind_type, remote, bound_at, submits
  POST   /binds/{id}/close    drop one link (404 for an id not bound)
  POST   /mo                  {"to","from","text","long","bind"}: send an MO now; long: true (UDH 8-bit),
                              "udh16", "sar" or "payload" (a long text is cut in parts anyway, UDH 8-bit)
  POST   /receipts            {"message_id","state"}: send a receipt now (404 for an unknown message id)
  GET    /faults              the faults in force
  POST   /faults              {"status","hold","close","count"} queues a fault for the next count
                              submissions (0: all until cleared); {"delay","drop_every","throttle_above"}
                              set standing faults; {"refuse_binds":"ESME_RBINDFAIL"} refuses binds
  DELETE /faults              clear every fault and accept binds again
A body with an unknown field or a bad value is a 400 naming the field.

Example:
  smscsim --receipt-delay 2s --receipt-mix DELIVRD:90,UNDELIV:5,EXPIRED:5 --throttle-above 500
  curl -s localhost:8081/stats
  curl -s -XPOST localhost:8081/mo -d '{"from":"447700900555","to":"12345","text":"STOP"}'
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags say.
type config struct {
	listen, http, systemID, password, idPrefix string
	receiptDelay, moEvery, delay               time.Duration
	receiptMix, moText, moFrom, moTo, logLevel string
	seed                                       uint64
	throttleAbove                              float64
	dropEvery                                  int
}

func flags(stderr io.Writer) (*flag.FlagSet, *config) {
	var c config
	fs := flag.NewFlagSet("smscsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:2776", "SMPP `address` to accept binds on")
	fs.StringVar(&c.http, "http", "127.0.0.1:8081", "HTTP API `address`; empty: no API")
	fs.StringVar(&c.systemID, "system-id", "", "the one system_id that may bind; empty: any system_id and password bind")
	fs.StringVar(&c.password, "password", "", "the password --system-id must bind with")
	fs.StringVar(&c.idPrefix, "id-prefix", "SIM", "`prefix` of the message ids handed out, followed by a counter")
	fs.DurationVar(&c.receiptDelay, "receipt-delay", 0, "how long after the answer to a submission that asks for one its receipt is sent; negative: no receipts")
	fs.StringVar(&c.receiptMix, "receipt-mix", "DELIVRD:100", "final states of receipts by weight, `STATE:W,...` (DELIVRD, UNDELIV, EXPIRED, DELETED, REJECTD, ...)")
	fs.Uint64Var(&c.seed, "seed", 0, "seed for the receipt mix's draws, for runs that repeat; 0: random")
	fs.DurationVar(&c.moEvery, "mo-every", 0, "send an MO every so often to the first link that can receive; 0: none")
	fs.StringVar(&c.moText, "mo-text", "smscsim MO", "`text` of the timed MO (a long one goes in parts)")
	fs.StringVar(&c.moFrom, "mo-from", "447700900000", "source `address` of an MO that names none")
	fs.StringVar(&c.moTo, "mo-to", "12345", "destination `address` of an MO that names none")
	fs.Float64Var(&c.throttleAbove, "throttle-above", 0, "answer ESME_RTHROTTLED above this `rate`, in submissions a second over all links; 0: never")
	fs.IntVar(&c.dropEvery, "drop-every", 0, "drop a link after every `N` submissions it sends; 0: never")
	fs.DurationVar(&c.delay, "delay", 0, "hold every answer to a submission back this long; 0: answer at once")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: debug, info, warn, error (JSON on stderr)")
	fs.Usage = func() {} // a mistake gets flag's one line and a hint, --help the whole text on stdout
	return fs, &c
}

func help(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, httpHelp)
}

// run is main with its inputs and outputs explicit; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, c := flags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help(stdout, fs)
			return 0
		}
		fmt.Fprintln(stderr, "run 'smscsim --help' for usage")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smscsim: unexpected argument %q\nrun 'smscsim --help' for usage\n", fs.Arg(0))
		return 2
	}
	opts, log, err := c.options(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "smscsim: %v\nrun 'smscsim --help' for usage\n", err)
		return 2
	}
	if err := serve(ctx, c, opts, log, stdout); err != nil {
		log.Error().Err(err).Msg("smscsim stopped")
		return 1
	}
	return 0
}

// options checks the flags and turns them into the simulator's options.
func (c *config) options(stderr io.Writer) (smscsim.Options, zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(c.logLevel)
	if err != nil || c.logLevel == "" {
		return smscsim.Options{}, zerolog.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	log := zerolog.New(stderr).Level(level).With().Timestamp().Logger()
	mix, err := smscsim.ParseMix(c.receiptMix)
	if err != nil {
		return smscsim.Options{}, log, fmt.Errorf("--receipt-mix: %w", err)
	}
	switch {
	case c.password != "" && c.systemID == "":
		return smscsim.Options{}, log, errors.New("--password without --system-id")
	case c.throttleAbove < 0:
		return smscsim.Options{}, log, errors.New("--throttle-above must not be negative")
	case c.dropEvery < 0:
		return smscsim.Options{}, log, errors.New("--drop-every must not be negative")
	case c.delay < 0:
		return smscsim.Options{}, log, errors.New("--delay must not be negative")
	case c.moEvery < 0:
		return smscsim.Options{}, log, errors.New("--mo-every must not be negative")
	}
	opts := smscsim.Options{
		Accounts: map[string]string{}, IDPrefix: c.idPrefix,
		ReceiptDelay: c.receiptDelay, ReceiptMix: mix, Seed: c.seed,
		MOEvery: c.moEvery, MOText: c.moText, MOFrom: c.moFrom, MOTo: c.moTo,
		LinkFaults: smscsim.LinkFaults{Delay: c.delay, DropEvery: c.dropEvery, ThrottleAbove: c.throttleAbove},
		NoRecord:   true, Logger: log,
	}
	if c.systemID != "" {
		opts.Accounts[c.systemID] = c.password
	}
	return opts, log, nil
}

// serve runs the simulator and its API until ctx ends, then stops them and writes the closing table.
func serve(ctx context.Context, c *config, opts smscsim.Options, log zerolog.Logger, stdout io.Writer) error {
	sim, err := smscsim.Start(c.listen, opts)
	if err != nil {
		return err
	}
	var srv *http.Server
	httpAddr := ""
	errc := make(chan error, 1)
	if c.http != "" {
		l, err := net.Listen("tcp", c.http)
		if err != nil {
			sim.Close()
			return fmt.Errorf("--http: %w", err)
		}
		httpAddr = l.Addr().String()
		srv = &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.Serve(l) }()
	}
	log.Info().Str("smpp", sim.Addr()).Str("http", httpAddr).Str("receipt_mix", opts.ReceiptMix.String()).
		Dur("receipt_delay", opts.ReceiptDelay).Msg("smscsim listening")
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	}
	log.Info().Msg("smscsim stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if srv != nil {
		_ = srv.Shutdown(stopCtx)
	}
	_ = sim.Shutdown(stopCtx)
	fmt.Fprintln(stdout, "smscsim: what it received and sent")
	_ = sim.Stats(0).WriteTable(stdout)
	return err
}
