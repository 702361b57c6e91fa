package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/smppgw/smppgw/gateway"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/load"
)

// Row 7 is issue 13's first target as a measurement: one `smppgw serve` with the embedded store and
// its own default settings (no window or inbound limit written in its configuration unless
// Config.SustainUpstreamWindow or SustainInboundLimit ask), one smppload bind at Config.SustainWindow
// for Config.Sustain, and every Config.SustainSample a reading of what smppgw accepted, what the
// simulator received and the depth of smppgw's queue towards it, as smppgw reports them on /metrics.
// The queue is "flat" when it ends no deeper than the larger of 1,000 entries and one second of
// intake and the trend of its second half adds no more than that either (see depthVerdict).

// upstreamName is the simulator's name in the generated configuration (upstreams[0].name).
const upstreamName = "sim"

// Verdicts of a sustained row's queue depth.
const (
	VerdictFlat    = "flat"
	VerdictGrowing = "growing"
)

// minDepthLimit is the smallest depth limit of depthVerdict, in entries.
const minDepthLimit = 1000

// Sample is one reading of a sustained row.
type Sample struct {
	// T is when the reading was taken, seconds after the sending started.
	T float64 `json:"t_seconds"`
	// Received is what the upstream simulator had received, read just before the scrape.
	Received int64 `json:"received"`
	// Accepted is smppgw's smppgw_messages_accepted_total, from the same scrape as Depth.
	Accepted int64 `json:"accepted"`
	// Depth is smppgw's smppgw_queue_depth{kind="submit",name="sim"}: entries of the upstream's
	// queue, taken by its bind or not; Claimed is smppgw_queue_claimed, those taken.
	Depth   int64 `json:"queue_depth"`
	Claimed int64 `json:"queue_claimed"`
	// Commits is smppgw_store_group_commits_total: the store's group commits (fdatasyncs of the
	// embedded store's log) so far.
	Commits int64 `json:"group_commits"`
}

// Sustained is a sustained row's queue depth over time and its verdict.
type Sustained struct {
	Seconds       float64 `json:"sending_seconds_asked"`
	SampleSeconds float64 `json:"sample_every_seconds"`
	// UpstreamWindow is smppgw's window towards the simulator as smppgw reports it
	// (smppgw_window_size of its upstream bind); InboundLimit and Workers are what its
	// configuration leaves them at (smpp.session.inbound_limit, and the store writes the message
	// path runs at once: twice that). Defaults says which of these were smppgw's defaults.
	UpstreamWindow int    `json:"upstream_window"`
	InboundLimit   int    `json:"inbound_limit"`
	Workers        int    `json:"workers"`
	Defaults       string `json:"defaults"`
	// Depth at the first reading under load, the one nearest the middle of the sending, the last
	// one before the sending ended, and the largest.
	DepthStart int64 `json:"queue_depth_start"`
	DepthMid   int64 `json:"queue_depth_mid"`
	DepthEnd   int64 `json:"queue_depth_end"`
	DepthMax   int64 `json:"queue_depth_max"`
	// Slope is the least-squares trend of the depth over the second half of the sending, entries
	// per second, and Rise what it adds over that half; Limit is the depth limit of the verdict (the
	// larger of 1,000 and one second of intake).
	Slope   float64 `json:"queue_depth_slope_per_second"`
	Rise    float64 `json:"queue_depth_rise_second_half"`
	Limit   float64 `json:"queue_depth_limit"`
	Verdict string  `json:"verdict"` // VerdictFlat, VerdictGrowing, or empty when too few readings
	// ScrapeErrors counts readings lost to a failed scrape (not in Samples).
	ScrapeErrors int      `json:"scrape_errors,omitempty"`
	Samples      []Sample `json:"samples"`
	// Drained is a reading after the sending, once the simulator had everything acknowledged and
	// the queue was empty (or 10s passed).
	Drained *Sample `json:"drained,omitempty"`
}

// depthVerdict judges the queue over the second half of a run: the readings taken at or after half
// of the last one's time. It is "flat" when the last depth is at most limit and the least-squares
// slope of depth over time across that half, times the half's length, is at most limit too (the
// trend adds at most limit entries over the half); "growing" otherwise. With fewer than three
// readings in the half it returns "" (too short to tell). slope is that trend, entries per second,
// and rise what it adds from the half's first reading to its last.
func depthVerdict(samples []Sample, limit float64) (verdict string, slope, rise float64) {
	if len(samples) == 0 {
		return "", 0, 0
	}
	last := samples[len(samples)-1]
	var half []Sample
	for _, s := range samples {
		if s.T >= last.T/2 {
			half = append(half, s)
		}
	}
	if len(half) < 3 {
		return "", 0, 0
	}
	var mt, md float64
	for _, s := range half {
		mt += s.T
		md += float64(s.Depth)
	}
	n := float64(len(half))
	mt, md = mt/n, md/n
	var cov, vt float64
	for _, s := range half {
		cov += (s.T - mt) * (float64(s.Depth) - md)
		vt += (s.T - mt) * (s.T - mt)
	}
	if vt > 0 {
		slope = cov / vt
	}
	rise = slope * (half[len(half)-1].T - half[0].T)
	if float64(last.Depth) > limit || rise > limit {
		return VerdictGrowing, slope, rise
	}
	return VerdictFlat, slope, rise
}

// summarize fills the depth figures and the verdict from s.Samples, intake being msgs/s.
func (s *Sustained) summarize(intake float64) {
	s.Limit = max(minDepthLimit, intake)
	if len(s.Samples) == 0 {
		return
	}
	under := s.Samples
	if len(under) > 1 {
		under = under[1:] // the first reading is taken before the sending starts
	}
	s.DepthStart, s.DepthEnd = under[0].Depth, under[len(under)-1].Depth
	mid := s.Samples[len(s.Samples)-1].T / 2
	best := math.Inf(1)
	for _, x := range s.Samples {
		s.DepthMax = max(s.DepthMax, x.Depth)
		if d := math.Abs(x.T - mid); d < best {
			best, s.DepthMid = d, x.Depth
		}
	}
	s.Verdict, s.Slope, s.Rise = depthVerdict(s.Samples, s.Limit)
}

// cell is the queue column of the table: start / mid / end / max.
func (s *Sustained) cell() string {
	return fmt.Sprintf("%d / %d / %d / %d", s.DepthStart, s.DepthMid, s.DepthEnd, s.DepthMax)
}

// sustainName is row 7's name: what ran, and any setting that is not smppgw's default.
func (r *runner) sustainName() string {
	var over []string
	if w := r.cfg.SustainUpstreamWindow; w > 0 {
		over = append(over, fmt.Sprintf("upstream window %d", w))
	}
	if n := r.cfg.SustainInboundLimit; n > 0 {
		over = append(over, fmt.Sprintf("inbound_limit %d", n))
	}
	settings := "default settings"
	if len(over) > 0 {
		settings = strings.Join(over, ", ") + ", else defaults"
	}
	return fmt.Sprintf("sustained %s: smppload -> smppgw embedded (%s) -> sim", r.cfg.Sustain, settings)
}

// sustained is row 7.
func (r *runner) sustained(ctx context.Context) (row Row) {
	c := r.cfg
	g, err := r.startGateway(ctx, "sustain", gwOptions{store: StoreEmbedded, defaults: true,
		inbound: c.SustainInboundLimit, upstreamWindow: c.SustainUpstreamWindow})
	if err != nil {
		return failed(row, err)
	}
	defer g.stop()
	inbound := session.Config{InboundLimit: c.SustainInboundLimit}.WithDefaults().InboundLimit
	s := &Sustained{Seconds: c.Sustain.Seconds(), SampleSeconds: c.SustainSample.Seconds(),
		UpstreamWindow: upstreamWindowOf(c), InboundLimit: inbound,
		Workers: 2 * inbound, Defaults: sustainDefaults(c)}
	row.Sustained = s
	m := &metricsReader{url: "http://" + g.httpAddr + "/metrics", upstream: upstreamName}
	if w, err := m.upstreamWindow(ctx); err == nil {
		s.UpstreamWindow = w // what smppgw says it uses, rather than what the session package's defaults say
	} else {
		addNote(&row, fmt.Sprintf("upstream window not read from /metrics: %v", err))
	}

	start := time.Now()
	read := func() {
		x, err := m.sample(ctx, g.arr, start)
		if err != nil {
			s.ScrapeErrors++
			return
		}
		s.Samples = append(s.Samples, x)
		if len(s.Samples)%10 == 0 {
			fmt.Fprintf(c.Log, "row 7: %.0fs: accepted %d, at upstream %d, queue depth %d\n", x.T, x.Accepted, x.Received, x.Depth)
		}
	}
	read() // at 0: nothing sent yet
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.SustainSample)
		defer t.Stop()
		for {
			select {
			case <-quit:
				read() // the end of the sending
				return
			case <-t.C:
				read()
			}
		}
	}()
	rep, err := load.Run(ctx, load.Config{Addr: g.smppAddr, SystemID: account, Password: accountPass, Binds: 1,
		Window: c.SustainWindow, Rate: c.SustainRate, Duration: c.Sustain})
	if err == nil {
		err = rep.Check()
	}
	close(quit)
	<-done
	fromReport(&row, rep)
	if n := len(s.Samples); n > 0 && s.Samples[n-1].T > 0 {
		end := s.Samples[n-1]
		row.Rate = float64(end.Received) / end.T // forwarded while the load was on
	}
	s.summarize(row.Intake)

	// The drain: what was acknowledged should reach the simulator and leave the queue. A queue
	// that grew may take long to drain; the wait is bounded, and the counts say what arrived.
	wctx, cancel := context.WithTimeout(ctx, max(30*time.Second, c.Sustain/2))
	row.Received, _ = g.arr.waitFor(wctx, row.Acked, 10*time.Second)
	cancel()
	if s.Drained = m.drained(ctx, g.arr, start); s.Drained != nil {
		row.Received = max(row.Received, s.Drained.Received)
	}
	if row.Received < row.Acked {
		addNote(&row, fmt.Sprintf("upstream got %d of %d acknowledged by the end of the drain", row.Received, row.Acked))
	}
	g.usage(&row)

	addNote(&row, fmt.Sprintf("%s; queue depth (smppgw_queue_depth on /metrics) read every %s, %d readings; verdict %s: flat when the end depth and the second half's trend (%+.0f/s, %+.0f over the half) are both <= %.0f (1,000 or 1 s of intake)",
		s.Defaults, c.SustainSample, len(s.Samples), orDash(s.Verdict), s.Slope, s.Rise, s.Limit))
	if n := len(s.Samples); n > 1 && s.Samples[n-1].Received > s.Samples[0].Received {
		first, end := s.Samples[0], s.Samples[n-1]
		addNote(&row, fmt.Sprintf("%d group commits (smppgw_store_group_commits_total) while the load was on: %.3f a message forwarded",
			end.Commits-first.Commits, float64(end.Commits-first.Commits)/float64(end.Received-first.Received)))
	}
	if c.SustainRate > 0 {
		addNote(&row, fmt.Sprintf("offered at most %.0f msgs/s", c.SustainRate))
	}
	if s.ScrapeErrors > 0 {
		addNote(&row, fmt.Sprintf("%d readings lost to failed scrapes", s.ScrapeErrors))
	}
	if err != nil {
		return failed(row, err)
	}
	return row
}

// upstreamWindowOf is the upstream window row 7's smppgw runs with: --sustain-upstream-window, or
// smppgw's default for upstream binds.
func upstreamWindowOf(c Config) int {
	if c.SustainUpstreamWindow > 0 {
		return c.SustainUpstreamWindow
	}
	return gateway.DefaultUpstreamWindow
}

// sustainDefaults says which of row 7's smppgw settings are its defaults, and their values.
func sustainDefaults(c Config) string {
	var parts []string
	if c.SustainUpstreamWindow == 0 {
		parts = append(parts, fmt.Sprintf("upstream window %d, max_unsettled %d", gateway.DefaultUpstreamWindow, gateway.DefaultMaxUnsettled))
	}
	if c.SustainInboundLimit == 0 {
		n := session.Config{}.WithDefaults().InboundLimit
		parts = append(parts, fmt.Sprintf("inbound_limit %d, workers %d", n, 2*n))
	}
	if len(parts) == 0 {
		return "smppgw defaults: none of window and inbound_limit"
	}
	return "smppgw defaults: " + strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// metricsReader reads the sustained row's figures from smppgw's /metrics.
type metricsReader struct {
	url      string
	upstream string
}

// sample reads the simulator's count first, then smppgw's, so that Accepted >= Received (but for
// messages forwarded in the instant between their commit and smppgw counting them).
func (m *metricsReader) sample(ctx context.Context, arr *arrivals, start time.Time) (Sample, error) {
	recv := arr.n.Load()
	gm, err := m.scrape(ctx)
	if err != nil {
		return Sample{}, err
	}
	return Sample{T: time.Since(start).Seconds(), Received: recv, Accepted: gm.accepted, Depth: gm.depth, Claimed: gm.claimed, Commits: gm.commits}, nil
}

// drained reads until the queue is empty, for at most 10s; nil when no scrape succeeded.
func (m *metricsReader) drained(ctx context.Context, arr *arrivals, start time.Time) *Sample {
	deadline := time.Now().Add(10 * time.Second)
	var last *Sample
	for {
		if x, err := m.sample(ctx, arr, start); err == nil {
			last = &x
			if x.Depth == 0 {
				return last
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// upstreamWindow is smppgw_window_size of the upstream's binds, read again every 100 ms for up to
// 10 s while the upstream is not bound yet (a gateway just started binds in the background).
func (m *metricsReader) upstreamWindow(ctx context.Context) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		gm, err := m.scrape(ctx)
		if err == nil && gm.window > 0 {
			return int(gm.window), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return 0, err
			}
			return 0, fmt.Errorf("no smppgw_window_size for upstream %q after 10s", m.upstream)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gwMetrics are the /metrics values the sustained row reads.
type gwMetrics struct {
	accepted int64 // smppgw_messages_accepted_total
	depth    int64 // smppgw_queue_depth{kind="submit",name=upstream}
	claimed  int64 // smppgw_queue_claimed{kind="submit",name=upstream}
	window   int64 // smppgw_window_size{role="esme",name=upstream}
	commits  int64 // smppgw_store_group_commits_total; 0 when absent
}

func (m *metricsReader) scrape(ctx context.Context) (gwMetrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return gwMetrics{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return gwMetrics{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return gwMetrics{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body, m.upstream)
}

// errNoMetric is returned by parseMetrics when a value it needs is not in the text.
var errNoMetric = errors.New("bench: /metrics lacks")

// parseMetrics reads, from Prometheus's text format, the values gwMetrics holds for upstream. The
// accepted count and the queue depth must be there; the window is 0 when absent (no bind).
func parseMetrics(r io.Reader, upstream string) (gwMetrics, error) {
	var gm gwMetrics
	var haveAccepted, haveDepth bool
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		series, value := line[:sp], line[sp+1:]
		name, labels := series, ""
		if i := strings.IndexByte(series, '{'); i >= 0 && strings.HasSuffix(series, "}") {
			name, labels = series[:i], series[i+1:len(series)-1]
		}
		var dst *int64
		switch name {
		case "smppgw_messages_accepted_total":
			dst, haveAccepted = &gm.accepted, true
		case "smppgw_queue_depth", "smppgw_queue_claimed":
			l := parseLabels(labels)
			if l["kind"] != "submit" || l["name"] != upstream {
				continue
			}
			dst = &gm.claimed
			if name == "smppgw_queue_depth" {
				dst, haveDepth = &gm.depth, true
			}
		case "smppgw_store_group_commits_total":
			dst = &gm.commits
		case "smppgw_window_size":
			if l := parseLabels(labels); l["role"] == session.RoleESME.String() && l["name"] == upstream {
				dst = &gm.window
			}
		}
		if dst == nil {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return gm, fmt.Errorf("bench: /metrics: %s: %q is not a number", name, value)
		}
		*dst = int64(f)
	}
	if err := sc.Err(); err != nil {
		return gm, err
	}
	switch {
	case !haveAccepted:
		return gm, fmt.Errorf("%w smppgw_messages_accepted_total", errNoMetric)
	case !haveDepth:
		return gm, fmt.Errorf("%w smppgw_queue_depth{kind=\"submit\",name=%q}", errNoMetric, upstream)
	}
	return gm, nil
}

// parseLabels reads `a="x",b="y"`; values with escapes are taken as written (ours have none).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return out
		}
		key := strings.TrimSpace(s[:eq])
		rest := s[eq+2:]
		end := strings.IndexByte(rest, '"')
		for end > 0 && rest[end-1] == '\\' {
			next := strings.IndexByte(rest[end+1:], '"')
			if next < 0 {
				return out
			}
			end += 1 + next
		}
		if end < 0 {
			return out
		}
		out[key] = rest[:end]
		s = strings.TrimPrefix(rest[end+1:], ",")
	}
	return out
}
