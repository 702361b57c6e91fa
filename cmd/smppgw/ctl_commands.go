package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/internal/ctl"
)

// The commands of `smppgw ctl`: flags in, one client call, output. What a call means is the
// API's (proto/smppgw/v1/admin_service.proto); how it is shown is internal/ctl's.

var sessionsGroup = &ctlGroup{
	usage: `Usage: smppgw ctl sessions [list] [--account A]
       smppgw ctl sessions show ID
       smppgw ctl sessions unbind ID [--force]

The SMPP sessions bound to the gateway instance that answers (behind a load balancer, each
instance has its own).
  list     one line per session: id, system_id, bind type, peer, window in use, counters
  show     every field and counter of one session
  unbind   send unbind and wait (bounded) for unbind_resp; --force closes the connection at once.
           Requests in the session's window are requeued.
`,
	actions: []string{"list", "show", "unbind"},
	run: func(c *ctlCmd, action string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		switch action {
		case "list":
			account := fs.String("account", "", "only the sessions of this system_id")
			if _, code, ok := c.parse(fs, args, 0, ""); !ok {
				return code
			}
			r, err := c.client.ListSessions(c.ctx, *account)
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteSessions(w, r.Sessions) })
		case "show":
			pos, code, ok := c.parse(fs, args, 1, "the session ID (see 'smppgw ctl sessions list')")
			if !ok {
				return code
			}
			s, err := c.client.GetSession(c.ctx, pos[0])
			if err != nil {
				return c.fail(err)
			}
			return c.output(s, func(w io.Writer) error { return ctl.WriteSession(w, s) })
		default: // unbind
			force := fs.Bool("force", false, "close the connection at once instead of a graceful unbind")
			pos, code, ok := c.parse(fs, args, 1, "the session ID (see 'smppgw ctl sessions list')")
			if !ok {
				return code
			}
			if err := c.client.UnbindSession(c.ctx, pos[0], *force); err != nil {
				return c.fail(err)
			}
			verb := "unbound"
			if *force {
				verb = "closed"
			}
			return c.done(fmt.Sprintf("session %s %s", pos[0], verb))
		}
	},
}

// done prints what a call without an answer did: a line, or with --json an empty object.
func (c *ctlCmd) done(msg string) int {
	if c.g.json {
		fmt.Fprintln(c.stdout, "{}")
	} else {
		fmt.Fprintln(c.stdout, msg)
	}
	return 0
}

var upstreamsGroup = &ctlGroup{
	usage: `Usage: smppgw ctl upstreams [list]
       smppgw ctl upstreams show NAME
       smppgw ctl upstreams pause NAME
       smppgw ctl upstreams resume NAME
       smppgw ctl upstreams reconnect NAME
       smppgw ctl upstreams update NAME [--binds N] [--max-tps N]

The upstream SMSCs the gateway binds to as an ESME, with their state (connecting, bound,
degraded, backoff, paused) and queue.
  pause      stop sending to it: its bind stays up (receipts and MO still arrive), routes fail over
             to their next upstream
  resume     let a paused upstream send again
  reconnect  drop its bind and bind again now, skipping any back-off
  update     change an upstream added through the API (one from the configuration file is changed
             there): --binds N concurrent binds (1 to the API's maximum), --max-tps N submit_sm a
             second over its binds (0: no cap); only the flags given change
`,
	actions: []string{"list", "show", "pause", "resume", "reconnect", "update"},
	run: func(c *ctlCmd, action string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		if action == "update" {
			return c.updateUpstream(fs, args)
		}
		if action == "list" {
			if _, code, ok := c.parse(fs, args, 0, ""); !ok {
				return code
			}
			r, err := c.client.ListUpstreams(c.ctx)
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteUpstreams(w, r.Upstreams) })
		}
		pos, code, ok := c.parse(fs, args, 1, "the upstream NAME (see 'smppgw ctl upstreams list')")
		if !ok {
			return code
		}
		var u *smppgwv1.Upstream
		var err error
		if action == "show" {
			u, err = c.client.GetUpstream(c.ctx, pos[0])
		} else {
			u, err = c.client.ActOnUpstream(c.ctx, pos[0], ctl.UpstreamAction(action))
		}
		if err != nil {
			return c.fail(err)
		}
		if action == "show" {
			return c.output(u, func(w io.Writer) error { return ctl.WriteUpstream(w, u) })
		}
		return c.output(u, func(w io.Writer) error { return ctl.WriteUpstreams(w, []*smppgwv1.Upstream{u}) })
	},
}

// updateUpstream is `upstreams update NAME [--binds N] [--max-tps N]`: a PATCH of the fields given.
func (c *ctlCmd) updateUpstream(fs *flag.FlagSet, args []string) int {
	binds := fs.Uint("binds", 0, "concurrent binds (at least 1)")
	maxTPS := fs.Uint("max-tps", 0, "submit_sm a second over its binds (0: no cap)")
	pos, code, ok := c.parse(fs, args, 1, "the upstream NAME (see 'smppgw ctl upstreams list')")
	if !ok {
		return code
	}
	set := setFlags(fs)
	change := map[string]any{}
	if set["binds"] {
		if *binds < 1 || *binds > 1<<32-1 {
			return c.usage(fmt.Sprintf("--binds: %d is not a number of binds (at least 1)", *binds))
		}
		change["binds"] = *binds
	}
	if set["max-tps"] {
		if *maxTPS > 1<<32-1 {
			return c.usage(fmt.Sprintf("--max-tps: %d is too large", *maxTPS))
		}
		change["maxSubmitsPerSecond"] = *maxTPS
	}
	if len(change) == 0 {
		return c.usage("nothing to change: give at least one of --binds, --max-tps")
	}
	u, err := c.client.UpdateUpstream(c.ctx, pos[0], change)
	if err != nil {
		return c.fail(err)
	}
	return c.output(u, func(w io.Writer) error { return ctl.WriteUpstream(w, u) })
}

var numberRulesGroup = &ctlGroup{
	usage: `Usage: smppgw ctl number-rules [list]
       smppgw ctl number-rules set SCOPE NAME [--dest-strip-plus] [--dest-strip-00] [--dest-country-code CC]
                                  [--dest-ton T] [--dest-npi N] [--src-strip-plus] [--src-strip-00]
                                  [--src-country-code CC] [--src-ton T] [--src-npi N]
       smppgw ctl number-rules delete SCOPE NAME

Number normalisation rules of an account (SCOPE account, NAME its system_id: applied to what it
submits, before routing) or an upstream (SCOPE upstream, NAME the upstream: applied to each message
just before it is sent there). Each address rule runs in this order: strip a leading '+', strip a
leading "00", put a country code in front of a national number, then set the TON and NPI.
  list     the rules in force, from the configuration file or set here
  set      replace the rules of SCOPE NAME with those the flags give (an address without flags is
           left as it comes)
  delete   remove the rules set here (the configuration file's, if any, apply again)

Flags of set (--dest-* for destination_addr, --src-* for source_addr):
  --dest-strip-plus      a leading '+' is removed, the number marked international
  --dest-strip-00        a leading "00" is removed, the number marked international
  --dest-country-code CC digits put in front of a national number (its trunk '0' removed)
  --dest-ton T           the TON after the steps above (international, national, ... or 0-255)
  --dest-npi N           the NPI after the steps above (isdn, national, ... or 0-255)
`,
	actions: []string{"list", "set", "delete"},
	run: func(c *ctlCmd, action string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		switch action {
		case "list":
			if _, code, ok := c.parse(fs, args, 0, ""); !ok {
				return code
			}
			r, err := c.client.ListNumberRules(c.ctx)
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteNumberRules(w, r.Rules) })
		case "delete":
			pos, code, ok := c.parse(fs, args, 2, "the SCOPE (account or upstream) and NAME")
			if !ok {
				return code
			}
			if code, ok := checkRulesScope(c, pos[0]); !ok {
				return code
			}
			if err := c.client.DeleteNumberRules(c.ctx, pos[0], pos[1]); err != nil {
				return c.fail(err)
			}
			return c.done(fmt.Sprintf("number rules of %s %s deleted", pos[0], pos[1]))
		default: // set
			dest, src := addressRuleFlags(fs, "dest"), addressRuleFlags(fs, "src")
			pos, code, ok := c.parse(fs, args, 2, "the SCOPE (account or upstream) and NAME")
			if !ok {
				return code
			}
			if code, ok := checkRulesScope(c, pos[0]); !ok {
				return code
			}
			r, err := c.client.SetNumberRules(c.ctx, &smppgwv1.NumberRules{Scope: pos[0], Name: pos[1], Destination: dest(), Source: src()})
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteNumberRules(w, []*smppgwv1.NumberRules{r}) })
		}
	},
}

// checkRulesScope refuses a scope the API does not know before anything is sent.
func checkRulesScope(c *ctlCmd, scope string) (int, bool) {
	if scope != "account" && scope != "upstream" {
		return c.usage(fmt.Sprintf("SCOPE %q is neither account nor upstream", scope)), false
	}
	return 0, true
}

// addressRuleFlags defines the --PREFIX-* flags of one address rule; the function returned reads them.
func addressRuleFlags(fs *flag.FlagSet, prefix string) func() *smppgwv1.AddressRule {
	plus := fs.Bool(prefix+"-strip-plus", false, "remove a leading '+'")
	zeros := fs.Bool(prefix+"-strip-00", false, `remove a leading "00"`)
	cc := fs.String(prefix+"-country-code", "", "country code for national numbers")
	ton := fs.String(prefix+"-ton", "", "TON to set")
	npi := fs.String(prefix+"-npi", "", "NPI to set")
	return func() *smppgwv1.AddressRule {
		return &smppgwv1.AddressRule{StripPlus: *plus, Strip_00: *zeros, CountryCode: *cc, Ton: *ton, Npi: *npi}
	}
}

var accountsGroup = &ctlGroup{
	usage: `Usage: smppgw ctl accounts [list]
       smppgw ctl accounts show SYSTEM_ID
       smppgw ctl accounts create SYSTEM_ID [--description D] [--max-binds N] [--max-rate N]
                                  [--networks CIDR,...] [--disabled] [--api-receipts-over-smpp]
       smppgw ctl accounts update SYSTEM_ID [--password] [--description D] [--max-binds N]
                                  [--max-rate N] [--networks CIDR,...] [--disabled=true|false]
                                  [--api-receipts-over-smpp=true|false]
       smppgw ctl accounts delete SYSTEM_ID

Accounts are the system_ids that may bind to the gateway over SMPP, and the owners of API keys.
create always asks for the account's SMPP password (at most 8 characters); update asks for a new one
with --password. On a terminal it is prompted for without echo, otherwise read as one line of stdin
(echo "$PW" | smppgw ctl accounts create acme); it is never taken from the command line. In this
command --password is that switch, not the operator's password (give that before the command, or
in SMPPGW_CTL_PASSWORD). update changes only the fields given. delete also unbinds the account's
sessions and revokes its API keys.

Flags of create and update:
  --description D     a note for people
  --max-binds N       sessions bound at once (0: no limit)
  --max-rate N        messages a second, SMPP and API together (0: no limit)
  --networks CIDR,... networks it may bind from (empty: anywhere)
  --disabled          a disabled account may not bind and its keys are refused
  --api-receipts-over-smpp
                      receipts of its API messages go to its SMPP binds too (by default: to the
                      API only, as an SMPP message's go to its binds)
  --password          (update) set a new password, asked for as above
`,
	actions: []string{"list", "show", "create", "update", "delete"},
	noPass:  true,
	run: func(c *ctlCmd, action string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		switch action {
		case "list":
			if _, code, ok := c.parse(fs, args, 0, ""); !ok {
				return code
			}
			r, err := c.client.ListAccounts(c.ctx)
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteAccounts(w, r.Accounts) })
		case "show", "delete":
			pos, code, ok := c.parse(fs, args, 1, "the account's SYSTEM_ID")
			if !ok {
				return code
			}
			if action == "delete" {
				if err := c.client.DeleteAccount(c.ctx, pos[0]); err != nil {
					return c.fail(err)
				}
				return c.done("account " + pos[0] + " deleted")
			}
			a, err := c.client.GetAccount(c.ctx, pos[0])
			if err != nil {
				return c.fail(err)
			}
			return c.output(a, func(w io.Writer) error { return ctl.WriteAccount(w, a) })
		}
		// create, update
		description := fs.String("description", "", "a note for people")
		maxBinds := fs.Uint("max-binds", 0, "sessions bound at once (0: no limit)")
		maxRate := fs.Uint("max-rate", 0, "messages a second (0: no limit)")
		networks := fs.String("networks", "", "comma-separated CIDRs it may bind from")
		disabled := fs.Bool("disabled", false, "may not bind; its keys are refused")
		apiReceipts := fs.Bool("api-receipts-over-smpp", false, "receipts of its API messages go to its SMPP binds too")
		password := fs.Bool("password", false, "set a new password (update), asked for on a terminal or read from stdin")
		pos, code, ok := c.parse(fs, args, 1, "the account's SYSTEM_ID")
		if !ok {
			return code
		}
		set := setFlags(fs)
		for _, n := range []struct {
			flag string
			v    uint
		}{{"max-binds", *maxBinds}, {"max-rate", *maxRate}} {
			if n.v > 1<<32-1 {
				return c.usage(fmt.Sprintf("--%s: %d is too large", n.flag, n.v))
			}
		}
		if action == "create" {
			pw, err := c.readSecret("password for "+pos[0], true)
			if err != nil {
				return c.usage(err.Error())
			}
			a, err := c.client.CreateAccount(c.ctx, &smppgwv1.Account{SystemId: pos[0], Password: pw, Description: *description,
				Disabled: *disabled, MaxBinds: uint32(*maxBinds), MaxMessagesPerSecond: uint32(*maxRate), AllowedNetworks: csv(*networks),
				ApiReceiptsOverSmpp: *apiReceipts})
			if err != nil {
				return c.fail(err)
			}
			return c.output(a, func(w io.Writer) error { return ctl.WriteAccounts(w, []*smppgwv1.Account{a}) })
		}
		// The body names the fields to change, by their JSON names; the API changes those only.
		change := map[string]any{}
		if set["description"] {
			change["description"] = *description
		}
		if set["max-binds"] {
			change["maxBinds"] = *maxBinds
		}
		if set["max-rate"] {
			change["maxMessagesPerSecond"] = *maxRate
		}
		if set["networks"] {
			change["allowedNetworks"] = append([]string{}, csv(*networks)...)
		}
		if set["disabled"] {
			change["disabled"] = *disabled
		}
		if set["api-receipts-over-smpp"] {
			change["apiReceiptsOverSmpp"] = *apiReceipts
		}
		if *password {
			pw, err := c.readSecret("new password for "+pos[0], true)
			if err != nil {
				return c.usage(err.Error())
			}
			change["password"] = pw
		}
		if len(change) == 0 {
			return c.usage("nothing to change: give at least one of --description, --max-binds, --max-rate, --networks, --disabled, --api-receipts-over-smpp, --password")
		}
		a, err := c.client.UpdateAccount(c.ctx, pos[0], change)
		if err != nil {
			return c.fail(err)
		}
		return c.output(a, func(w io.Writer) error { return ctl.WriteAccounts(w, []*smppgwv1.Account{a}) })
	},
}

var scopeNames = map[string]smppgwv1.Scope{"send": smppgwv1.Scope_SCOPE_SEND, "read": smppgwv1.Scope_SCOPE_READ, "admin": smppgwv1.Scope_SCOPE_ADMIN}

var keysGroup = &ctlGroup{
	usage: `Usage: smppgw ctl keys [list] [--account A]
       smppgw ctl keys create --account A --scopes send,read [--name N] [--expires 720h|RFC3339]
       smppgw ctl keys revoke KEY_ID

API keys, sent as 'Authorization: Bearer <secret>' over REST or the authorization metadata over
gRPC. Scopes: send (submit, webhooks), read (messages, receipts), admin (everything, any account).
create prints the secret alone on stdout (its id on stderr): it is shown this once, the gateway
keeps only its hash. A key with only the admin scope may have no account.
`,
	actions: []string{"list", "create", "revoke"},
	run: func(c *ctlCmd, action string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		switch action {
		case "list":
			account := fs.String("account", "", "only the keys of this account")
			if _, code, ok := c.parse(fs, args, 0, ""); !ok {
				return code
			}
			r, err := c.client.ListAPIKeys(c.ctx, *account)
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteAPIKeys(w, r.ApiKeys) })
		case "revoke":
			pos, code, ok := c.parse(fs, args, 1, "the KEY_ID (see 'smppgw ctl keys list')")
			if !ok {
				return code
			}
			if err := c.client.RevokeAPIKey(c.ctx, pos[0]); err != nil {
				return c.fail(err)
			}
			return c.done("key " + pos[0] + " revoked")
		}
		account := fs.String("account", "", "the account the key acts for")
		scopes := fs.String("scopes", "", "comma-separated: send, read, admin")
		name := fs.String("name", "", "a note for people")
		expires := fs.String("expires", "", "when it stops working: a duration from now (720h) or an RFC 3339 time")
		if _, code, ok := c.parse(fs, args, 0, ""); !ok {
			return code
		}
		k := &smppgwv1.ApiKey{Account: *account, Name: *name}
		for _, s := range csv(*scopes) {
			sc, ok := scopeNames[strings.ToLower(strings.TrimPrefix(strings.ToUpper(s), "SCOPE_"))]
			if !ok {
				return c.usage(fmt.Sprintf("--scopes: unknown scope %q (want %s)", s, strings.Join(sortedKeys(scopeNames), ", ")))
			}
			k.Scopes = append(k.Scopes, sc)
		}
		if len(k.Scopes) == 0 {
			return c.usage("--scopes is required: send, read and/or admin")
		}
		if *expires != "" {
			at, err := parseExpiry(*expires, time.Now())
			if err != nil {
				return c.usage("--expires: " + err.Error())
			}
			k.ExpireTime = timestamppb.New(at)
		}
		r, err := c.client.CreateAPIKey(c.ctx, k)
		if err != nil {
			return c.fail(err)
		}
		if c.g.json {
			return c.output(r, nil)
		}
		ak := r.GetApiKey()
		fmt.Fprintf(c.stderr, "created key %s for %s with scopes %s; its secret, shown only now:\n",
			ak.GetKeyId(), valueOr(ak.GetAccount(), "no account"), ctl.Scopes(ak.GetScopes()))
		fmt.Fprintln(c.stdout, r.GetSecret())
		return 0
	},
}

func valueOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// parseExpiry reads a key's expiry: a positive duration from now, or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%s is not in the future", s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (720h) nor an RFC 3339 time", s)
	}
	return t, nil
}

var routesGroup = &ctlGroup{
	usage: `Usage: smppgw ctl routes [list]
       smppgw ctl routes show ROUTE_ID
       smppgw ctl routes test [--account A] NUMBER
       smppgw ctl routes create --upstreams U1,U2 [--weights W1,W2] [--prefix P] [--account A] [--priority N] [--description D]
       smppgw ctl routes delete ROUTE_ID

The routing table: a message whose destination starts with a route's prefix (no prefix: every
destination), from the route's account (none: any account), goes to the first of its upstreams
that is bound and not paused. The longest prefix wins; among equal prefixes, the higher priority.
With --weights (one per upstream), new messages are split between its bound, unpaused upstreams in
proportion (70,30: 7 of every 10 to the first); weight 0 only when no weighted one is up. The
list shows such a route's upstreams as U1:70,U2:30.
  test   where a message to NUMBER (international format) from account A would go now, sending
         nothing: the route, its upstreams with their state, and the one selected
`,
	actions: []string{"list", "show", "test", "create", "delete"},
	run: func(c *ctlCmd, action string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		switch action {
		case "list":
			if _, code, ok := c.parse(fs, args, 0, ""); !ok {
				return code
			}
			r, err := c.client.ListRoutes(c.ctx)
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteRoutes(w, r.Routes) })
		case "show", "delete":
			pos, code, ok := c.parse(fs, args, 1, "the ROUTE_ID (see 'smppgw ctl routes list')")
			if !ok {
				return code
			}
			if action == "delete" {
				if err := c.client.DeleteRoute(c.ctx, pos[0]); err != nil {
					return c.fail(err)
				}
				return c.done("route " + pos[0] + " deleted")
			}
			r, err := c.client.GetRoute(c.ctx, pos[0])
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteRoutes(w, []*smppgwv1.Route{r}) })
		case "test":
			account := fs.String("account", "", "the submitting account (empty: routes for every account only)")
			pos, code, ok := c.parse(fs, args, 1, "the destination NUMBER")
			if !ok {
				return code
			}
			r, err := c.client.TestRoute(c.ctx, pos[0], *account)
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteRouteTest(w, pos[0], r) })
		}
		prefix := fs.String("prefix", "", "destination prefix, digits (empty: every destination)")
		upstreams := fs.String("upstreams", "", "comma-separated upstream names in failover order")
		weights := fs.String("weights", "", "comma-separated weights, one per upstream (empty: no split)")
		account := fs.String("account", "", "the account it applies to (empty: every account)")
		priority := fs.Int("priority", 0, "breaks ties between equal prefixes; higher wins")
		description := fs.String("description", "", "a note for people")
		if _, code, ok := c.parse(fs, args, 0, ""); !ok {
			return code
		}
		if len(csv(*upstreams)) == 0 {
			return c.usage("--upstreams is required: upstream names in failover order")
		}
		if int64(*priority) != int64(int32(*priority)) {
			return c.usage("--priority: out of range")
		}
		var ws []uint32
		for _, w := range csv(*weights) {
			n, err := strconv.ParseUint(w, 10, 32)
			if err != nil {
				return c.usage("--weights: " + strconv.Quote(w) + " is not a whole number >= 0")
			}
			ws = append(ws, uint32(n))
		}
		r, err := c.client.CreateRoute(c.ctx, &smppgwv1.Route{Prefix: *prefix, Upstreams: csv(*upstreams), Weights: ws, Account: *account,
			Priority: int32(*priority), Description: *description})
		if err != nil {
			return c.fail(err)
		}
		return c.output(r, func(w io.Writer) error { return ctl.WriteRoutes(w, []*smppgwv1.Route{r}) })
	},
}

var moRoutesGroup = &ctlGroup{
	usage: `Usage: smppgw ctl mo-routes [list]
       smppgw ctl mo-routes create --account A [--prefix P] [--priority N] [--description D]
       smppgw ctl mo-routes delete MO_ROUTE_ID

The MO routing table: an MO (a message from a handset, delivered by an upstream) whose destination
starts with a route's prefix (no prefix: every destination) goes to the route's account. The
longest prefix wins; among equal prefixes, the higher priority. An MO no route matches is refused
(ESME_RINVDSTADR). A route created or deleted here applies from the next MO on. The configuration
file's MO routes are listed as config-N.
`,
	actions: []string{"list", "create", "delete"},
	run: func(c *ctlCmd, action string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		switch action {
		case "list":
			if _, code, ok := c.parse(fs, args, 0, ""); !ok {
				return code
			}
			r, err := c.client.ListMoRoutes(c.ctx)
			if err != nil {
				return c.fail(err)
			}
			return c.output(r, func(w io.Writer) error { return ctl.WriteMoRoutes(w, r.MoRoutes) })
		case "delete":
			pos, code, ok := c.parse(fs, args, 1, "the MO_ROUTE_ID (see 'smppgw ctl mo-routes list')")
			if !ok {
				return code
			}
			if err := c.client.DeleteMoRoute(c.ctx, pos[0]); err != nil {
				return c.fail(err)
			}
			return c.done("MO route " + pos[0] + " deleted")
		}
		prefix := fs.String("prefix", "", "destination prefix, digits (empty: every destination)")
		account := fs.String("account", "", "the account the MO go to")
		priority := fs.Int("priority", 0, "breaks ties between equal prefixes; higher wins")
		description := fs.String("description", "", "a note for people")
		if _, code, ok := c.parse(fs, args, 0, ""); !ok {
			return code
		}
		if *account == "" {
			return c.usage("--account is required")
		}
		if int64(*priority) != int64(int32(*priority)) {
			return c.usage("--priority: out of range")
		}
		r, err := c.client.CreateMoRoute(c.ctx, &smppgwv1.MoRoute{Prefix: *prefix, Account: *account, Priority: int32(*priority), Description: *description})
		if err != nil {
			return c.fail(err)
		}
		return c.output(r, func(w io.Writer) error { return ctl.WriteMoRoutes(w, []*smppgwv1.MoRoute{r}) })
	},
}

var statsGroup = &ctlGroup{
	usage: `Usage: smppgw ctl stats

Gateway statistics: messages by status, throughput over the last minute, each upstream's state,
window and queue, the per-account delivery queues (receipts and MO waiting for a receiver bind) and
the client sessions' windows. --json prints the API's GetStats answer.
`,
	actions: []string{"show"},
	run: func(c *ctlCmd, _ string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		if _, code, ok := c.parse(fs, args, 0, ""); !ok {
			return code
		}
		st, err := c.client.GetStats(c.ctx)
		if err != nil {
			return c.fail(err)
		}
		if c.g.json {
			return c.output(st, nil)
		}
		us, err := c.client.ListUpstreams(c.ctx)
		if err != nil {
			return c.fail(err)
		}
		return c.output(st, func(w io.Writer) error { return ctl.WriteStats(w, st, us.Upstreams) })
	},
}

var receiptsGroup = &ctlGroup{
	usage: `Usage: smppgw ctl receipts tail [--account A] [--message ID]... [--count N]

Follows the delivery receipts of an account as they arrive, one line each (time, status, message
id, part, error code, upstream and its id, client reference), until Ctrl-C or, with --count, N
receipts; --json prints each as one line of JSON. The receipts come from the REST message API,
which takes API keys only: give --key (SMPPGW_CTL_KEY) with the read scope for the key's own
account, or the admin scope to name any account with --account.
`,
	actions: []string{"tail"},
	run: func(c *ctlCmd, _ string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		account := fs.String("account", "", "the account whose receipts to follow (default: the key's)")
		var ids multiFlag
		fs.Var(&ids, "message", "only receipts of this message `ID` (repeatable)")
		count := fs.Int("count", 0, "stop after this many receipts (0: until Ctrl-C)")
		if _, code, ok := c.parse(fs, args, 0, ""); !ok {
			return code
		}
		if c.g.cfg.Key == "" {
			return c.usage("needs an API key (--key or SMPPGW_CTL_KEY): the REST message API does not take operator passwords")
		}
		n := 0
		err := c.client.StreamReceipts(c.ctx, ctl.ReceiptsRequest{Account: *account, MessageIDs: ids,
			Opened: func() { fmt.Fprintln(c.stderr, "following receipts; Ctrl-C to stop") },
		}, func(r *smppgwv1.Receipt, raw json.RawMessage) error {
			if c.g.json {
				var b bytes.Buffer
				if err := json.Compact(&b, raw); err != nil {
					return err
				}
				fmt.Fprintln(c.stdout, b.String())
			} else {
				fmt.Fprintln(c.stdout, ctl.ReceiptLine(r))
			}
			if n++; *count > 0 && n >= *count {
				return errEnough
			}
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return c.fail(err)
		}
		return 0
	},
}

var errEnough = errors.New("enough receipts")

var outbindGroup = &ctlGroup{
	usage: `Usage: smppgw ctl outbind --account A [--password] [--tls] [--bind-timeout 30s] HOST:PORT

Asks an ESME to bind to the gateway: the gateway connects to HOST:PORT, sends an SMPP outbind with
the account's system_id (and, with --password, a password the ESME checks, asked for on a terminal
or read from stdin), and waits for the ESME's bind_receiver on that connection. Prints the session.
Nobody listening at HOST:PORT is "not found" (404); an ESME that does not bind back within the
bind timeout is "deadline exceeded" (504). 'smppload --outbind-listen HOST:PORT' waits for one.
`,
	actions: []string{"send"},
	noPass:  true,
	run: func(c *ctlCmd, _ string, args []string) int {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		account := fs.String("account", "", "the account (system_id) the outbind carries and the ESME binds as")
		password := fs.Bool("password", false, "send a password in the outbind, asked for on a terminal or read from stdin")
		useTLS := fs.Bool("tls", false, "connect with TLS")
		bindTimeout := fs.Duration("bind-timeout", 0, "how long the gateway waits for the ESME's bind (0: the gateway's 30s)")
		pos, code, ok := c.parse(fs, args, 1, "the ESME's HOST:PORT")
		if !ok {
			return code
		}
		if *account == "" {
			return c.usage("--account is required")
		}
		host, portStr, err := net.SplitHostPort(pos[0])
		if err != nil {
			return c.usage(fmt.Sprintf("%q: want HOST:PORT", pos[0]))
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || port == 0 {
			return c.usage(fmt.Sprintf("%q: bad port", pos[0]))
		}
		req := &smppgwv1.OutbindRequest{Host: host, Port: uint32(port), Tls: *useTLS, SystemId: *account}
		if *bindTimeout > 0 {
			req.BindTimeout = durationpb.New(*bindTimeout)
		}
		if *password {
			if req.Password, err = c.readSecret("outbind password for "+*account, false); err != nil {
				return c.usage(err.Error())
			}
		}
		s, err := c.client.Outbind(c.ctx, req)
		if err != nil {
			return c.fail(err)
		}
		return c.output(s, func(w io.Writer) error { return ctl.WriteSessions(w, []*smppgwv1.Session{s}) })
	},
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
