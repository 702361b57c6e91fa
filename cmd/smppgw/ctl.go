package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"
	"google.golang.org/protobuf/proto"

	"github.com/smppgw/smppgw/internal/ctl"
)

const ctlUsage = `Usage: smppgw ctl [flags] COMMAND [ACTION] [ARGS] [flags]

Runs the gateway from the command line over its REST admin API (/v1/admin on api.http_listen).

Commands (each has --help, e.g. 'smppgw ctl sessions --help'):
  sessions   [list|show ID|unbind ID [--force]]                   SMPP sessions bound to the instance
  upstreams  [list|show NAME|pause NAME|resume NAME|reconnect NAME] the SMSCs the gateway binds to
             update NAME [--binds N] [--max-tps N]                 (those added through the API)
  accounts   [list|show|create|update|delete]                      system_ids that bind, owners of keys
  keys       [list|create --account A --scopes send,read|revoke ID] API keys (the secret is shown once)
  routes     [list|show ID|test NUMBER|create|delete ID]           the routing table
  mo-routes  [list|create --prefix P --account A|delete ID]          which account each MO goes to
  number-rules [list|set SCOPE NAME --dest-*/--src-*|delete SCOPE NAME] number normalisation rules
  stats                                                            message counts, throughput, queues
  receipts   tail [--account A]                                    follow delivery receipts until Ctrl-C
  outbind    --account A HOST:PORT                                  ask an ESME to bind to the gateway

Credentials: an operator of api.admin_users (--user and --password, HTTP Basic, admin endpoints
only), or an API key (--key; a key with the admin scope for every command; receipts tail takes
keys only). Flags may also follow the command, except --password inside 'accounts' and 'outbind',
where it asks for the account's password instead.
Output is aligned tables; --json prints the API's JSON instead. Exit status: 0 done, 1 the API
refused or could not be reached (its HTTP status and message are printed), 2 a usage error.

Flags (environment variable in brackets):
`

// ctlEnvNames are the environment variables of ctl; serve's configuration leaves them alone.
var ctlEnvNames = []string{envPrefix + "CTL_URL", envPrefix + "CTL_USER", envPrefix + "CTL_PASSWORD", envPrefix + "CTL_KEY"}

// ctlGlobals are the flags of every ctl command.
type ctlGlobals struct {
	cfg     ctl.Config
	json    bool
	noPass  bool // the command has a --password of its own
	timeout time.Duration
}

func (g *ctlGlobals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.cfg.URL, "url", g.cfg.URL, "the API's base `URL` [SMPPGW_CTL_URL]")
	fs.StringVar(&g.cfg.User, "user", g.cfg.User, "operator `name` for HTTP Basic [SMPPGW_CTL_USER]")
	if !g.noPass {
		fs.StringVar(&g.cfg.Password, "password", g.cfg.Password, "operator password [SMPPGW_CTL_PASSWORD]")
	}
	fs.StringVar(&g.cfg.Key, "key", g.cfg.Key, "API key `secret` (sgw_...), instead of --user [SMPPGW_CTL_KEY]")
	fs.BoolVar(&g.json, "json", g.json, "print the API's JSON instead of tables")
	fs.DurationVar(&g.cfg.Timeout, "timeout", g.cfg.Timeout, "bound on each call")
	fs.StringVar(&g.cfg.CAFile, "ca-file", g.cfg.CAFile, "PEM `file` of CA certificates to verify an https URL with")
	fs.BoolVar(&g.cfg.InsecureSkipVerify, "insecure-skip-verify", g.cfg.InsecureSkipVerify, "accept any server certificate (https)")
}

// ctlCmd is one invocation of a ctl command, with what it needs.
type ctlCmd struct {
	name   string // "ctl sessions", for messages
	grp    *ctlGroup
	g      *ctlGlobals
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	ctx    context.Context
	client *ctl.Client
}

// ctlGroup is a command: its help and its actions; the first action is the default.
type ctlGroup struct {
	usage   string
	actions []string
	noPass  bool // its flags have a --password of their own
	run     func(c *ctlCmd, action string, args []string) int
}

var ctlGroups = map[string]*ctlGroup{
	"sessions":     sessionsGroup,
	"upstreams":    upstreamsGroup,
	"accounts":     accountsGroup,
	"keys":         keysGroup,
	"routes":       routesGroup,
	"mo-routes":    moRoutesGroup,
	"number-rules": numberRulesGroup,
	"stats":        statsGroup,
	"receipts":     receiptsGroup,
	"outbind":      outbindGroup,
}

// ctlCommand is `smppgw ctl`.
func ctlCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &ctlGlobals{cfg: ctl.Config{
		URL:      envOr(envPrefix+"CTL_URL", ctl.DefaultURL),
		User:     os.Getenv(envPrefix + "CTL_USER"),
		Password: os.Getenv(envPrefix + "CTL_PASSWORD"),
		Key:      os.Getenv(envPrefix + "CTL_KEY"),
		Timeout:  30 * time.Second,
	}}
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, ctlUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		return usageError(stderr, "ctl", err.Error())
	}
	if fs.NArg() == 0 {
		return usageError(stderr, "ctl", "a command is required")
	}
	name := fs.Arg(0)
	if name == "help" {
		fmt.Fprint(stdout, ctlUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0
	}
	grp, ok := ctlGroups[name]
	if !ok {
		return usageError(stderr, "ctl", fmt.Sprintf("unknown command %q", name))
	}
	rest := fs.Args()[1:]
	c := &ctlCmd{name: "ctl " + name, grp: grp, g: g, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(rest) > 0 && isHelp(rest[0]) {
		fmt.Fprint(stdout, grp.usage)
		return 0
	}
	action := grp.actions[0]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		action, rest = rest[0], rest[1:]
		known := false
		for _, a := range grp.actions {
			known = known || a == action
		}
		if !known {
			return c.usage(fmt.Sprintf("unknown action %q (want %s)", action, strings.Join(grp.actions, ", ")))
		}
	}
	g.noPass = grp.noPass
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c.ctx = ctx
	return grp.run(c, action, rest)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "help" }

// usage reports a mistake on the command line: one line and a hint; exit code 2.
func (c *ctlCmd) usage(msg string) int { return usageError(c.stderr, c.name, msg) }

// fail reports an error of the API or of the connection in one line; exit code 1.
func (c *ctlCmd) fail(err error) int {
	fmt.Fprintf(c.stderr, "smppgw %s: %v\n", c.name, err)
	return 1
}

// parse reads the flags of an action, given before or after its arguments (as kubectl does), with
// the global flags too, and connects; it returns the arguments, or the exit code when it is done.
func (c *ctlCmd) parse(fs *flag.FlagSet, args []string, nargs int, argNames string) ([]string, int, bool) {
	fs.SetOutput(io.Discard)
	c.g.register(fs)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(c.stdout, c.grp.usage)
				return nil, 0, false
			}
			return nil, c.usage(err.Error()), false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case nargs >= 0 && len(pos) < nargs:
		return nil, c.usage("missing " + argNames), false
	case nargs >= 0 && len(pos) > nargs:
		return nil, c.usage(fmt.Sprintf("unexpected argument %q", pos[nargs])), false
	}
	cl, err := ctl.New(c.g.cfg)
	if err != nil {
		return nil, c.usage(err.Error()), false
	}
	if c.g.cfg.Key == "" && c.g.cfg.User == "" {
		return nil, c.usage("no credentials: give --user and --password (or SMPPGW_CTL_USER/SMPPGW_CTL_PASSWORD), or --key (SMPPGW_CTL_KEY)"), false
	}
	c.client = cl
	return pos, 0, true
}

// output prints m as JSON with --json, else as human calls it; errors of either are exit 1.
func (c *ctlCmd) output(m proto.Message, human func(io.Writer) error) int {
	var err error
	if c.g.json {
		err = ctl.WriteJSON(c.stdout, m)
	} else {
		err = human(c.stdout)
	}
	if err != nil {
		return c.fail(err)
	}
	return 0
}

// readSecret reads a password: on a terminal it prompts on stderr and reads without echo (twice
// when confirm is set); otherwise it reads one line of stdin. Never from the command line, where
// other users would see it in the process list.
func (c *ctlCmd) readSecret(what string, confirm bool) (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(c.stderr, "%s: ", what)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", err
		}
		if confirm {
			fmt.Fprintf(c.stderr, "%s again: ", what)
			again, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(c.stderr)
			if err != nil {
				return "", err
			}
			if string(again) != string(b) {
				return "", errors.New("the two passwords differ")
			}
		}
		if len(b) == 0 {
			return "", fmt.Errorf("%s: empty", what)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(io.LimitReader(c.stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("%s: nothing on stdin (give it as one line, or run on a terminal to be asked)", what)
	}
	return line, nil
}

// csv splits a comma-separated flag value, dropping empty items.
func csv(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// setFlags is the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// sortedKeys is for messages that list choices.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
