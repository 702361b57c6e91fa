package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
)

// Source is what the Collector reads of the running gateway (*gateway.Gateway implements it).
type Source interface {
	Sessions() []session.Info
	Upstreams() []gateway.UpstreamInfo
	Stats(ctx context.Context) (gateway.Stats, error)
}

// Set holds the session meters of one gateway: one for the SMPP server's sessions (summed by
// account) and one per upstream.
type Set struct {
	server *session.Meter

	mu        sync.Mutex
	upstreams map[string]*session.Meter
	store     *Store
}

// New returns an empty Set.
func New() *Set {
	return &Set{server: session.NewMeter(""), upstreams: map[string]*session.Meter{}}
}

// Instrument gives the server's sessions and those of every upstream in cfg a meter of the set.
// Upstreams added later (the admin API, the store) have none: their binds, queues and counters are
// collected, their PDU counts are not.
func (s *Set) Instrument(cfg *gateway.Config) {
	cfg.Server.Session.Meter = s.server
	ups := make([]gateway.ClientConfig, len(cfg.Upstreams))
	copy(ups, cfg.Upstreams)
	for i := range ups {
		ups[i].Session.Meter = s.upstream(ups[i].Name)
	}
	cfg.Upstreams = ups
}

func (s *Set) upstream(name string) *session.Meter {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.upstreams[name]
	if m == nil {
		m = session.NewMeter(name)
		s.upstreams[name] = m
	}
	return m
}

func (s *Set) meters() []*session.Meter {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []*session.Meter{s.server}
	for _, m := range s.upstreams {
		out = append(out, m)
	}
	return out
}

// Collectors returns what to register for this set: the gateway Collector over src and, once
// WrapStore was called, the store's metrics.
func (s *Set) Collectors(src Source) []prometheus.Collector {
	out := []prometheus.Collector{NewCollector(src, s.meters)}
	s.mu.Lock()
	if s.store != nil {
		out = append(out, s.store)
	}
	s.mu.Unlock()
	return out
}

// Metric descriptions. Roles are the gateway's side of a session: "smsc" towards the accounts
// that bind to it (name: the account's system_id), "esme" towards upstreams (name: the upstream).
var (
	descSessions = prometheus.NewDesc("smppgw_sessions", "SMPP sessions by the gateway's role (smsc: accounts bound to us, esme: our upstream binds), state and bind type.",
		[]string{"role", "state", "bind_type"}, nil)
	descPDUs = prometheus.NewDesc("smppgw_pdus_total", "PDUs read (in) and written (out) by role, account or upstream name, command and command_status (requests count as ESME_ROK; rare statuses as other).",
		[]string{"role", "name", "direction", "command", "status"}, nil)
	descLatency = prometheus.NewDesc("smppgw_response_latency_seconds", "Time from writing one of our window requests (submit_sm, deliver_sm...) to reading its response, by role and name.",
		[]string{"role", "name"}, nil)
	descWindowUsed = prometheus.NewDesc("smppgw_window_used", "Our requests awaiting a response, summed over the sessions of a role and name.",
		[]string{"role", "name"}, nil)
	descWindowSize = prometheus.NewDesc("smppgw_window_size", "Window size, summed over the sessions of a role and name.",
		[]string{"role", "name"}, nil)
	descUpstreamUp = prometheus.NewDesc("smppgw_upstream_up", "1 when the upstream has a bound session, else 0.",
		[]string{"upstream"}, nil)
	descUpstreamPaused = prometheus.NewDesc("smppgw_upstream_paused", "1 when an operator paused the upstream's queue.",
		[]string{"upstream"}, nil)
	descUpstreamBinds = prometheus.NewDesc("smppgw_upstream_binds_total", "Successful binds to the upstream since its client started.",
		[]string{"upstream"}, nil)
	descUpstreamBindErrors = prometheus.NewDesc("smppgw_upstream_bind_errors_total", "Failed dials or binds to the upstream since its client started.",
		[]string{"upstream"}, nil)
	descUpstreamResults = prometheus.NewDesc("smppgw_upstream_submits_total", "Upstream submissions by result: sent (attempts written, retries included), accepted, rejected (for good), throttled (retried), requeued (lost or timed out).",
		[]string{"upstream", "result"}, nil)
	descQueueDepth = prometheus.NewDesc("smppgw_queue_depth", "Entries in a queue, claimed or not: kind submit (per upstream) or deliver (per account).",
		[]string{"kind", "name"}, nil)
	descQueueClaimed = prometheus.NewDesc("smppgw_queue_claimed", "Entries of a queue taken by a bind and not yet acknowledged.",
		[]string{"kind", "name"}, nil)
	descQueueAge = prometheus.NewDesc("smppgw_queue_oldest_age_seconds", "Age of the work at the head of a queue; 0 when empty.",
		[]string{"kind", "name"}, nil)
	descAccepted   = prometheus.NewDesc("smppgw_messages_accepted_total", "Messages accepted (SMPP and API) since start.", nil, nil)
	descRejected   = prometheus.NewDesc("smppgw_messages_rejected_total", "Submissions refused since start.", nil, nil)
	descSubmitted  = prometheus.NewDesc("smppgw_parts_submitted_total", "Parts upstreams accepted (submit_sm_resp ESME_ROK) since start.", nil, nil)
	descReceiptsIn = prometheus.NewDesc("smppgw_receipts_received_total", "Receipts from upstreams recorded since start.", nil, nil)
	descMOIn       = prometheus.NewDesc("smppgw_mo_received_total", "MO messages from upstreams queued for their accounts since start.", nil, nil)
	descMessages   = prometheus.NewDesc("smppgw_messages", "Messages accepted by this process by current status.",
		[]string{"status"}, nil)
	descScrapeErrors = prometheus.NewDesc("smppgw_scrape_error", "1 when this scrape could not read part of the gateway's state (the store's queue stats), else 0.", nil, nil)
)

// Collector reads the gateway at scrape time.
type Collector struct {
	src    Source
	meters func() []*session.Meter
	// Timeout bounds the store reads of one scrape (queue stats). 0 means 5s.
	Timeout time.Duration
}

// NewCollector collects src's state and the counts of the meters meters returns (may be nil).
func NewCollector(src Source, meters func() []*session.Meter) *Collector {
	return &Collector{src: src, meters: meters}
}

// Describe sends every description the Collector uses.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descPDUs, descLatency, descWindowUsed, descWindowSize,
		descUpstreamUp, descUpstreamPaused, descUpstreamBinds, descUpstreamBindErrors, descUpstreamResults,
		descQueueDepth, descQueueClaimed, descQueueAge, descAccepted, descRejected, descSubmitted,
		descReceiptsIn, descMOIn, descMessages, descScrapeErrors} {
		ch <- d
	}
}

type roleName struct{ role, name string }

type sessionKey struct{ role, state, bindType string }

// Collect reads sessions, upstreams, meters and the gateway's Stats.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	sessions := map[sessionKey]int{}
	type window struct{ used, size int }
	windows := map[roleName]window{}
	addSession := func(in *session.Info, name string) {
		sessions[sessionKey{in.Role.String(), in.State.String(), in.BindType.String()}]++
		if in.State == session.StateClosed {
			return
		}
		k := roleName{in.Role.String(), name}
		w := windows[k]
		w.used += in.WindowUsed
		w.size += in.WindowSize
		windows[k] = w
	}
	for _, in := range c.src.Sessions() {
		addSession(&in, in.SystemID)
	}
	for _, u := range c.src.Upstreams() {
		name := u.Config.Name
		up := 0.0
		if u.Status.Session != nil {
			addSession(u.Status.Session, name)
			if u.Status.Session.State == session.StateBound {
				up = 1
			}
		}
		ch <- prometheus.MustNewConstMetric(descUpstreamUp, prometheus.GaugeValue, up, name)
		ch <- prometheus.MustNewConstMetric(descUpstreamPaused, prometheus.GaugeValue, b2f(u.Paused), name)
		st := u.Status
		ch <- prometheus.MustNewConstMetric(descUpstreamBinds, prometheus.CounterValue, float64(st.Binds), name)
		ch <- prometheus.MustNewConstMetric(descUpstreamBindErrors, prometheus.CounterValue, float64(st.BindErrors), name)
		for _, r := range []struct {
			result string
			n      uint64
		}{{"sent", st.Sent}, {"accepted", st.Accepted}, {"rejected", st.Rejected}, {"throttled", st.Throttled}, {"requeued", st.Requeued}} {
			ch <- prometheus.MustNewConstMetric(descUpstreamResults, prometheus.CounterValue, float64(r.n), name, r.result)
		}
	}
	for k, n := range sessions {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(n), k.role, k.state, k.bindType)
	}
	for k, w := range windows {
		ch <- prometheus.MustNewConstMetric(descWindowUsed, prometheus.GaugeValue, float64(w.used), k.role, k.name)
		ch <- prometheus.MustNewConstMetric(descWindowSize, prometheus.GaugeValue, float64(w.size), k.role, k.name)
	}
	if c.meters != nil {
		for _, m := range c.meters() {
			for _, mc := range m.Snapshot() {
				collectCounts(ch, mc.Role.String(), mc.Name, &mc.Counts)
			}
		}
	}

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := c.src.Stats(ctx)
	ch <- prometheus.MustNewConstMetric(descScrapeErrors, prometheus.GaugeValue, b2f(err != nil))
	ch <- prometheus.MustNewConstMetric(descAccepted, prometheus.CounterValue, float64(st.Accepted))
	ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(st.Rejected))
	ch <- prometheus.MustNewConstMetric(descSubmitted, prometheus.CounterValue, float64(st.Submitted))
	ch <- prometheus.MustNewConstMetric(descReceiptsIn, prometheus.CounterValue, float64(st.ReceiptsIn))
	ch <- prometheus.MustNewConstMetric(descMOIn, prometheus.CounterValue, float64(st.MOIn))
	for status, n := range st.MessagesByStatus {
		ch <- prometheus.MustNewConstMetric(descMessages, prometheus.GaugeValue, float64(n), status.String())
	}
	for _, q := range []struct {
		kind string
		qs   []gateway.QueueInfo
	}{{"submit", st.UpstreamQueues}, {"deliver", st.DeliveryQueues}} {
		for _, qi := range q.qs {
			ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(qi.Len), q.kind, qi.Name)
			ch <- prometheus.MustNewConstMetric(descQueueClaimed, prometheus.GaugeValue, float64(qi.Claimed), q.kind, qi.Name)
			ch <- prometheus.MustNewConstMetric(descQueueAge, prometheus.GaugeValue, qi.OldestAge.Seconds(), q.kind, qi.Name)
		}
	}
}

// collectCounts sends one meter group's PDU counts and latency histogram.
func collectCounts(ch chan<- prometheus.Metric, role, name string, c *session.Counts) {
	c.Each(func(dir int, command, status string, n uint64) {
		d := "in"
		if dir == session.Out {
			d = "out"
		}
		ch <- prometheus.MustNewConstMetric(descPDUs, prometheus.CounterValue, float64(n), role, name, d, command, status)
	})
	buckets := make(map[float64]uint64, len(session.LatencyBounds))
	var cum uint64
	for i, b := range session.LatencyBounds {
		cum += c.Latency[i]
		buckets[b.Seconds()] = cum
	}
	count := cum + c.Latency[len(session.LatencyBounds)]
	ch <- prometheus.MustNewConstHistogram(descLatency, count, c.LatencySum.Seconds(), buckets, role, name)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
