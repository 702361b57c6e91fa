// Command smppgw is the SMPP gateway daemon: `smppgw serve` runs it; see `smppgw --help`.
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

	"github.com/smppgw/smppgw/api"
)

const usage = `smppgw: an SMPP 3.4 gateway. ESMEs bind to it (SMSC role) and submit; it routes each message
to an upstream SMSC it is bound to (ESME role) and brings the delivery receipts and MO messages back
to the account they belong to.

Usage:
  smppgw serve [--config FILE]   run the gateway until SIGTERM or SIGINT (see: smppgw serve --help)
  smppgw hash-password           read a password on stdin, print its bcrypt hash for smpp.accounts
  smppgw ctl COMMAND             run the gateway over its REST admin API: sessions, upstreams, accounts,
                                 keys, routes, stats, receipts (see: smppgw ctl --help)
  smppgw healthcheck             exit 0 when the API's /healthz answers (for container HEALTHCHECKs)
  smppgw version                 print the version, VCS revision and Go version (also --version)
  smppgw help                    show this text (also -h, --help)

Configuration is a YAML file (deploy/smppgw.example.yaml documents every field) with environment
overrides SMPPGW_<PATH>; with no file, smppgw listens on 127.0.0.1:2775 with a demo account, a
built-in SMSC simulator as its upstream and an API key, whose password and key are printed once in
the log.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main with its inputs and outputs explicit, for tests; it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "-version", "--version":
		if len(args) > 1 {
			return usageError(stderr, "version", fmt.Sprintf("takes no arguments, got %q", args[1]))
		}
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "serve":
		return serveCommand(args[1:], stdout, stderr)
	case "hash-password":
		return hashPasswordCommand(args[1:], stdin, stdout, stderr)
	case "ctl":
		return ctlCommand(args[1:], stdin, stdout, stderr)
	case "healthcheck":
		return healthcheckCommand(args[1:], stdout, stderr)
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "smppgw: unknown flag %s\nrun 'smppgw --help' for the commands, 'smppgw serve --help' for the daemon's flags and configuration\n", args[0])
	} else {
		fmt.Fprintf(stderr, "smppgw: unknown command %q\nrun 'smppgw --help' for the commands, 'smppgw serve --help' for the daemon's flags and configuration\n", args[0])
	}
	return 2
}

// usageError reports a mistake on a command line in one line and a hint, not the whole help, and
// returns the exit code for it.
func usageError(stderr io.Writer, command, msg string) int {
	fmt.Fprintf(stderr, "smppgw %s: %s\nrun 'smppgw %s --help' for usage\n", command, msg, command)
	return 2
}

func serveUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: smppgw serve [--config FILE]

Runs the gateway: the SMSC server that ESMEs bind to, one supervised bind per configured upstream,
and the router between them. SIGTERM or SIGINT drains gracefully: the server stops accepting and
unbinds every session, the upstream binds are unbound, and the process exits (bounded by
shutdown_timeout); a second signal exits at once.

Every accepted message is written to the store before submit_sm is answered: the embedded store (a
file, store.path, default ./data/smppgw.db or under $XDG_STATE_HOME) unless store.redis.addrs names
a Redis. Queued parts, receipts and deliveries for accounts without a receiver bind survive restarts.

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, `
Configuration file (YAML; deploy/smppgw.example.yaml shows and explains every field):
  log:               level (trace|debug|info|warn|error, default info), format (console|json, default console)
  smpp:              listen (plain TCP host:port, default %s when no listener is set), system_id,
                     listeners (more addresses, TLS), session (window, timeouts, enquire_link, ...),
                     failure_delay*, failure_memory, max_password_checks, credential_cache,
                     accounts (system_id, password_hash from 'smppgw hash-password',
                     bind_types, allowed_ips, max_binds, throughput)
  upstreams:         SMSCs to bind to, each: name, address, system_id, password, system_type,
                     bind_type, address_range, tls (ca_file, server_name, cert_file, key_file, ...),
                     session (window default 256 here), dial_timeout, reconnect_min, reconnect_max,
                     throttle_delay*, max_attempts, max_unsettled (parts sent and not yet settled
                     durably per bind: what a crash sends twice; default 512, at least the window),
                     max_age, queue_size, outbind_listen and outbind_password (the upstream connects),
                     max_tps (the carrier's contracted submits per second over its binds),
                     binds (parallel binds sharing its queue and max_tps, default 1), numbers
                     (normalisation before sending, as account_numbers)
  routing:           routes (prefix, accounts, upstream, upstreams, weights: a split by weight between
                     the bound ones; seeded into the store), mo_routes (prefix, account; seeded into
                     the store, edited through /v1/admin/mo-routes), account_numbers (per system_id,
                     before routing: destination and source rules, applied in this order:
                     strip_plus "+44.." -> "44..", strip_00 "0044.." -> "44.." (both mark TON 1 NPI 1),
                     country_code "44": a national number (TON 2, or TON 0 with one leading '0')
                     "07.." -> "447..", TON 1 NPI 1; then ton, npi set; only numeric addresses, and
                     numbers already in that form are left alone), reload_interval (routes, MO routes,
                     number rules and API-added upstreams read again from the store, for other instances' edits), delivery_retry,
                     max_delivery_attempts, long_messages, failover_after (queued parts of a down
                     upstream move on), reroute_on (statuses)
  store:             path (embedded file), redis (addrs, master_name, cluster, username, password,
                     db, prefix), visibility_timeout, id_map_ttl, park_ttl, message_ttl
  cluster:           several instances on one Redis: lease_ttl (how long an upstream bind's lease
                     outlives a dead holder, default 10s), publish_every (each instance's state for
                     GET /v1/admin/cluster, default 2s)
  api:               gRPC and REST for applications and operators: disabled (SMPP only),
                     grpc_listen (default %s), http_listen (REST, /v1/admin, /healthz, /readyz,
                     /openapi.json; default %s), tls (cert_file, key_file, min_version),
                     admin_users (name, password_hash from 'smppgw hash-password'), instance,
                     ready_interval, webhooks (workers, queue_size, timeout, retry_min, retry_max,
                     max_retry_duration, refresh_interval, callback_secret), metrics (Prometheus /metrics on the
                     http_listen port: enabled, default true; auth, default false: admin credentials
                     asked for), pprof (true: /debug/pprof/ profiles on the http_listen port, to admin
                     credentials; default false)
  demo:              with no upstreams configured and the demo account in use: disabled (true: no
                     demo), listen (the built-in SMSC simulator, default %s), receipt_delay
                     (default %s)
  shutdown_timeout:  bound on the graceful drain (default 30s)
  gc_percent:        the Go garbage collector's GOGC (default 100; 200 spends ~4%% less CPU under
                     load for ~35%% more memory); the GOGC environment variable wins over it
Unknown keys are errors. Accounts are seeded into the store; with none configured and none in the
store, a demo account is made with a random password, printed once in the log at start-up. With no
upstreams configured either, the demo starts: a built-in SMSC simulator becomes the demo account's
upstream ("demo-smsc", every destination routed to it, receipts after receipt_delay), and an API key
for the demo account (send, read and admin scopes) is printed once; each start revokes the last one.

Environment overrides: any setting that is not inside a list can be set with SMPPGW_ followed by
its YAML path in upper case, levels joined by "_"; the environment wins over the file. Durations
are written as in the file ("30s"). SMPPGW_CONFIG names the file when --config is not given.
An unknown SMPPGW_ variable is an error. The overrides are:
`, defaultListen, api.DefaultGRPCListen, api.DefaultHTTPListen, defaultDemoListen, defaultDemoReceiptDelay)
	for _, n := range envNames() {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

func serveCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "YAML configuration `FILE` (default: $SMPPGW_CONFIG, else built-in defaults)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			serveUsage(stdout, fs)
			return 0
		}
		return usageError(stderr, "serve", err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "serve", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	path := *configPath
	if path == "" {
		path = os.Getenv(envPrefix + "CONFIG")
	}
	cfg, err := loadConfig(path, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "smppgw serve: %v\n", err)
		return 2
	}
	log := newLogger(cfg.Log, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		// After the first signal starts the drain, a second one exits at once.
		<-ctx.Done()
		stop()
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGTERM, syscall.SIGINT)
		<-again
		log.Warn().Msg("second signal: exiting without finishing the drain")
		os.Exit(1)
	}()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("smppgw stopped")
		return 1
	}
	return 0
}

func hashPasswordCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
			fmt.Fprint(stdout, "Usage: smppgw hash-password < password\n\nReads one password line on stdin and prints its bcrypt hash,\nfor smpp.accounts[].password_hash. SMPP passwords are at most 8 characters.\n")
			return 0
		}
		return usageError(stderr, "hash-password", "takes no arguments (the password is read on stdin)")
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 1024))
	if err != nil {
		fmt.Fprintf(stderr, "smppgw hash-password: %v\n", err)
		return 1
	}
	pw := strings.TrimRight(string(b), "\r\n")
	h, err := hashPassword(pw)
	if err != nil {
		fmt.Fprintf(stderr, "smppgw hash-password: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, h)
	return 0
}
