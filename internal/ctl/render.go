package ctl

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The human output: one aligned table per listing, "field: value" lines for one record. Enum
// values lose their type prefix and are lower case (UPSTREAM_STATE_PAUSED is "paused"); an empty
// value is "-", so that columns stay countable for awk.

// WriteJSON writes m in the API's JSON (protojson with every field, as the gateway answers),
// indented, with a final newline.
func WriteJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fields writes "name: value" lines, aligned.
func fields(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], v)
	}
	return tw.Flush()
}

// enum is an enum value's name without its type's prefix, in lower case.
func enum(name, prefix string) string {
	s := strings.ToLower(strings.TrimPrefix(name, prefix))
	if s == "unspecified" {
		return ""
	}
	return s
}

func ts(t *timestamppb.Timestamp) string {
	if t == nil || (t.Seconds == 0 && t.Nanos == 0) {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

// since is how long ago t was, to the second.
func since(t *timestamppb.Timestamp) string {
	if t == nil || (t.Seconds == 0 && t.Nanos == 0) {
		return ""
	}
	return max(time.Since(t.AsTime()), 0).Round(time.Second).String()
}

func dur(d *durationpb.Duration) string {
	if d == nil {
		return ""
	}
	return d.AsDuration().Round(time.Millisecond).String()
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }
func u32(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// limit is a limit whose 0 means none.
func limit(n uint32) string {
	if n == 0 {
		return "none"
	}
	return u32(n)
}

// Sessions.

// WriteSessions writes one line per session.
func WriteSessions(w io.Writer, ss []*smppgwv1.Session) error {
	t := newTable(w, "ID", "SYSTEM ID", "BIND", "REMOTE", "TLS", "BOUND FOR", "WINDOW", "SUBMIT_SM", "DELIVER_SM", "INSTANCE")
	for _, s := range ss {
		c := s.GetCounters()
		t.row(s.SessionId, s.SystemId, enum(s.BindType.String(), "BIND_TYPE_"), s.RemoteAddress, yes(s.Tls),
			since(s.BindTime), u32(s.WindowInUse)+"/"+u32(s.WindowSize), u64(c.GetSubmitSm()), u64(c.GetDeliverSm()), s.Instance)
	}
	return t.flush()
}

// WriteSession writes every field of one session.
func WriteSession(w io.Writer, s *smppgwv1.Session) error {
	c := s.GetCounters()
	return fields(w,
		"session id", s.SessionId,
		"system id", s.SystemId,
		"bind type", enum(s.BindType.String(), "BIND_TYPE_"),
		"remote address", s.RemoteAddress,
		"local address", s.LocalAddress,
		"tls", yes(s.Tls),
		"instance", s.Instance,
		"interface version", fmt.Sprintf("0x%02x", s.InterfaceVersion),
		"bound at", ts(s.BindTime),
		"last activity", ts(s.LastActivityTime),
		"window", u32(s.WindowInUse)+"/"+u32(s.WindowSize),
		"inbound pending", u32(s.InboundPending),
		"submit_sm", fmt.Sprintf("%d (%d errors)", c.GetSubmitSm(), c.GetSubmitSmErrors()),
		"deliver_sm", fmt.Sprintf("%d (%d errors)", c.GetDeliverSm(), c.GetDeliverSmErrors()),
		"throttled", u64(c.GetThrottled()),
		"response timeouts", u64(c.GetResponseTimeouts()),
		"enquire_link", u64(c.GetEnquireLinks()),
		"unparsable pdus", u64(c.GetUnparsablePdus()),
	)
}

// Upstreams.

// UpstreamState is an upstream's state as the tables show it: "bound", "paused", ...
func UpstreamState(u *smppgwv1.Upstream) string {
	return enum(u.GetState().String(), "UPSTREAM_STATE_")
}

func hostPort(host string, port uint32) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + u32(port)
}

// WriteUpstreams writes one line per upstream.
func WriteUpstreams(w io.Writer, us []*smppgwv1.Upstream) error {
	t := newTable(w, "NAME", "STATE", "BINDS", "QUEUE", "ADDRESS", "TLS", "SYSTEM ID", "SINCE", "LAST ERROR")
	for _, u := range us {
		t.row(u.Name, UpstreamState(u), upBinds(u), u64(u.QueueDepth), hostPort(u.Host, u.Port), yes(u.Tls),
			u.SystemId, since(u.StateChangeTime), u.LastError)
	}
	return t.flush()
}

// upBinds is "bound" or, with several binds configured, "bound/configured".
func upBinds(u *smppgwv1.Upstream) string {
	if u.Binds > 1 {
		return u32(u.BoundBinds) + "/" + u32(u.Binds)
	}
	return u32(u.BoundBinds)
}

// WriteUpstream writes every field of one upstream.
func WriteUpstream(w io.Writer, u *smppgwv1.Upstream) error {
	return fields(w,
		"name", u.Name,
		"state", UpstreamState(u),
		"state since", ts(u.StateChangeTime),
		"bound binds", u32(u.BoundBinds),
		"binds", u32(max(u.Binds, 1)),
		"max submits per second", u32(u.MaxSubmitsPerSecond),
		"queue depth", u64(u.QueueDepth),
		"last error", u.LastError,
		"address", hostPort(u.Host, u.Port),
		"tls", yes(u.Tls),
		"tls server name", u.TlsServerName,
		"system id", u.SystemId,
		"system type", u.SystemType,
		"bind type", enum(u.BindType.String(), "BIND_TYPE_"),
		"window size", u32(u.WindowSize),
		"enquire_link interval", dur(u.EnquireLinkInterval),
		"response timeout", dur(u.ResponseTimeout),
	)
}

// Accounts.

// WriteAccounts writes one line per account.
func WriteAccounts(w io.Writer, as []*smppgwv1.Account) error {
	t := newTable(w, "SYSTEM ID", "DISABLED", "MAX BINDS", "MAX MSG/S", "NETWORKS", "DESCRIPTION")
	for _, a := range as {
		t.row(a.SystemId, yes(a.Disabled), limit(a.MaxBinds), limit(a.MaxMessagesPerSecond), strings.Join(a.AllowedNetworks, ","), a.Description)
	}
	return t.flush()
}

// WriteAccount writes every field of one account.
func WriteAccount(w io.Writer, a *smppgwv1.Account) error {
	nets := strings.Join(a.AllowedNetworks, ", ")
	if nets == "" {
		nets = "any"
	}
	return fields(w,
		"system id", a.SystemId,
		"description", a.Description,
		"disabled", yes(a.Disabled),
		"max binds", limit(a.MaxBinds),
		"max messages/s", limit(a.MaxMessagesPerSecond),
		"allowed networks", nets,
		"API receipts over SMPP", yes(a.ApiReceiptsOverSmpp),
		"created", ts(a.CreateTime),
		"updated", ts(a.UpdateTime),
	)
}

// API keys.

// Scopes is a key's scopes as the tables show them: "read,send".
func Scopes(ss []smppgwv1.Scope) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = enum(s.String(), "SCOPE_")
	}
	return strings.Join(out, ",")
}

// WriteAPIKeys writes one line per key.
func WriteAPIKeys(w io.Writer, ks []*smppgwv1.ApiKey) error {
	t := newTable(w, "KEY ID", "ACCOUNT", "NAME", "SCOPES", "SECRET PREFIX", "EXPIRES", "CREATED")
	for _, k := range ks {
		exp := ts(k.ExpireTime)
		if exp == "" {
			exp = "never"
		}
		t.row(k.KeyId, k.Account, k.Name, Scopes(k.Scopes), k.SecretPrefix, exp, ts(k.CreateTime))
	}
	return t.flush()
}

// Routes.

// routeUpstreams is "A,B", or with weights "A:70,B:30".
func routeUpstreams(r *smppgwv1.Route) string {
	if len(r.Weights) != len(r.Upstreams) {
		return strings.Join(r.Upstreams, ",")
	}
	parts := make([]string, len(r.Upstreams))
	for i, u := range r.Upstreams {
		parts[i] = u + ":" + u32(r.Weights[i])
	}
	return strings.Join(parts, ",")
}

// WriteMoRoutes writes one line per MO route, in the order given (the API's evaluation order).
func WriteMoRoutes(w io.Writer, rs []*smppgwv1.MoRoute) error {
	t := newTable(w, "MO ROUTE ID", "PREFIX", "ACCOUNT", "PRIORITY", "DESCRIPTION")
	for _, r := range rs {
		t.row(r.MoRouteId, orAny(r.Prefix), r.Account, strconv.Itoa(int(r.Priority)), r.Description)
	}
	return t.flush()
}

// WriteRoutes writes one line per route, in the order given (the API's evaluation order).
func WriteRoutes(w io.Writer, rs []*smppgwv1.Route) error {
	t := newTable(w, "ROUTE ID", "PREFIX", "ACCOUNT", "UPSTREAMS", "PRIORITY", "DESCRIPTION")
	for _, r := range rs {
		t.row(r.RouteId, orAny(r.Prefix), orAny(r.Account), routeUpstreams(r), strconv.Itoa(int(r.Priority)), r.Description)
	}
	return t.flush()
}

// WriteRouteTest writes where a destination would go: the route, then its upstreams.
func WriteRouteTest(w io.Writer, destination string, r *smppgwv1.TestRouteResponse) error {
	if !r.Matched {
		_, err := fmt.Fprintf(w, "%s: no route\n", destination)
		return err
	}
	sel := r.SelectedUpstream
	if sel == "" {
		sel = "none available now"
	}
	if err := fields(w, "destination", destination, "route", r.GetRoute().GetRouteId(), "prefix", orAny(r.GetRoute().GetPrefix()),
		"account", orAny(r.GetRoute().GetAccount()), "selected upstream", sel); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return WriteUpstreams(w, r.Upstreams)
}

// orAny is a route's empty prefix or account, which matches anything.
func orAny(s string) string {
	if s == "" {
		return "(any)"
	}
	return s
}

// Statistics.

// WriteStats writes the statistics, with the upstreams' states when us is not nil.
func WriteStats(w io.Writer, st *smppgwv1.GetStatsResponse, us []*smppgwv1.Upstream) error {
	fmt.Fprintf(w, "at %s\n\n", ts(st.Time))
	t := newTable(w, "MESSAGES", "COUNT")
	for _, k := range slices.Sorted(maps.Keys(st.MessagesByStatus)) {
		t.row(enum(k, "MESSAGE_STATUS_"), u64(st.MessagesByStatus[k]))
	}
	if len(st.MessagesByStatus) == 0 {
		t.row("(none)", "0")
	}
	if err := t.flush(); err != nil {
		return err
	}
	tp := st.GetThroughput()
	fmt.Fprintf(w, "\nthroughput over %s, per second: accepted %.1f, submitted %.1f, receipts %.1f, mo %.1f\n\n",
		dur(tp.GetInterval()), tp.GetAcceptedPerSecond(), tp.GetSubmittedPerSecond(), tp.GetReceiptsPerSecond(), tp.GetMoPerSecond())

	queues := map[string]*smppgwv1.QueueDepth{}
	for _, q := range st.UpstreamQueues {
		queues[q.Name] = q
	}
	windows := map[string]*smppgwv1.WindowUsage{}
	for _, wu := range st.Windows {
		if wu.Upstream {
			windows[wu.Id] = wu
		}
	}
	names := slices.Sorted(maps.Keys(queues))
	state := map[string]string{}
	for _, u := range us {
		state[u.Name] = UpstreamState(u)
		if _, ok := queues[u.Name]; !ok {
			names = append(names, u.Name)
		}
	}
	t = newTable(w, "UPSTREAM", "STATE", "WINDOW", "QUEUED", "PENDING", "OLDEST")
	for _, n := range names {
		q, wu := queues[n], windows[n]
		win := ""
		if wu != nil {
			win = u32(wu.InUse) + "/" + u32(wu.Size)
		}
		t.row(n, state[n], win, u64(q.GetDepth()), u64(q.GetPending()), dur(q.GetOldestAge()))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(st.DeliveryQueues) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "DELIVERY QUEUE", "QUEUED", "PENDING", "OLDEST")
		for _, q := range st.DeliveryQueues {
			t.row(q.Name, u64(q.Depth), u64(q.Pending), dur(q.OldestAge))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	clients := 0
	var inUse, size uint64
	for _, wu := range st.Windows {
		if !wu.Upstream {
			clients++
			inUse += uint64(wu.InUse)
			size += uint64(wu.Size)
		}
	}
	_, err := fmt.Fprintf(w, "\nclient sessions: %d, deliver_sm window in use %d of %d\n", clients, inUse, size)
	return err
}

// ReceiptLine is one receipt on one line, for tails: time, status, then key=value fields.
func ReceiptLine(r *smppgwv1.Receipt) string {
	at := ts(r.ReceiveTime)
	if at == "" {
		at = time.Now().UTC().Format(time.RFC3339)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s message=%s part=%d", at, enum(r.Status.String(), "MESSAGE_STATUS_"), r.MessageId, r.PartIndex)
	kv := func(k, v string) {
		if v == "" {
			return
		}
		if q := strconv.Quote(v); q[1:len(q)-1] != v || strings.ContainsAny(v, " =") {
			v = q
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	kv("err", r.ErrorCode)
	kv("upstream", r.Upstream)
	kv("upstream_id", r.UpstreamMessageId)
	kv("ref", r.ClientReference)
	return b.String()
}

// rule is an address rule in one cell: its steps, "-" when it has none.
func rule(r *smppgwv1.AddressRule) string {
	var steps []string
	if r.GetStripPlus() {
		steps = append(steps, "strip+")
	}
	if r.GetStrip_00() {
		steps = append(steps, "strip00")
	}
	if cc := r.GetCountryCode(); cc != "" {
		steps = append(steps, "cc="+cc)
	}
	if t := r.GetTon(); t != "" {
		steps = append(steps, "ton="+t)
	}
	if n := r.GetNpi(); n != "" {
		steps = append(steps, "npi="+n)
	}
	if len(steps) == 0 {
		return "-"
	}
	return strings.Join(steps, ",")
}

// WriteNumberRules is one line per account's or upstream's number rules.
func WriteNumberRules(w io.Writer, rs []*smppgwv1.NumberRules) error {
	t := newTable(w, "SCOPE", "NAME", "DESTINATION", "SOURCE", "FROM")
	for _, r := range rs {
		from := "api"
		if r.GetFromConfig() {
			from = "config"
		}
		t.row(r.GetScope(), r.GetName(), rule(r.GetDestination()), rule(r.GetSource()), from)
	}
	return t.flush()
}
