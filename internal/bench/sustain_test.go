package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/smppgw/smppgw/gateway"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
)

// series is readings every step seconds from 0 to end, depth(t) at each.
func series(end, step float64, depth func(t float64) float64) []Sample {
	var out []Sample
	for t := 0.0; t <= end+1e-9; t += step {
		out = append(out, Sample{T: t, Depth: int64(math.Round(depth(t)))})
	}
	return out
}

func TestDepthVerdict(t *testing.T) {
	for _, c := range []struct {
		name    string
		samples []Sample
		limit   float64
		want    string
		slope   float64 // the trend over the second half, entries per second
	}{
		{"empty", nil, 1000, "", 0},
		{"constant, shallow", series(120, 3, func(float64) float64 { return 200 }), 1000, VerdictFlat, 0},
		{"constant, deeper than the limit", series(120, 3, func(float64) float64 { return 5000 }), 1000, VerdictGrowing, 0},
		// 10/s over the half's 60s adds 600: under the limit of 1,000, and it ends at 1,300 > 1,000.
		{"slow rise ending above the limit", series(120, 3, func(t float64) float64 { return 100 + 10*t }), 1000, VerdictGrowing, 10},
		{"slow rise under a limit of one second of intake", series(120, 3, func(t float64) float64 { return 100 + 10*t }), 30_000, VerdictFlat, 10},
		// The backlog of the first half drains in the second: falling, ends empty.
		{"builds then drains", series(120, 3, func(t float64) float64 { return max(0, 50_000-math.Abs(t-30)*2000) }), 1000, VerdictFlat, -400},
		{"linear growth", series(120, 3, func(t float64) float64 { return 1000 * t }), 30_000, VerdictGrowing, 1000},
		// Rises by 36,000 over the second half at 600/s, yet ends under the limit of 40,000.
		{"rise over the half above the limit", series(120, 3, func(t float64) float64 { return 600 * math.Max(0, t-60) }), 35_000, VerdictGrowing, 600},
		{"two readings in the second half", []Sample{{T: 0}, {T: 1, Depth: 5}, {T: 2, Depth: 5}}, 1000, "", 0},
		{"three readings in the second half", []Sample{{T: 0}, {T: 2, Depth: 10}, {T: 3, Depth: 20}, {T: 4, Depth: 30}}, 1000, VerdictFlat, 10},
	} {
		got, slope, rise := depthVerdict(c.samples, c.limit)
		if got != c.want {
			t.Errorf("%s: verdict %q, want %q (slope %v, rise %v)", c.name, got, c.want, slope, rise)
		}
		if math.Abs(slope-c.slope) > 1e-6*math.Max(1, math.Abs(c.slope)) && c.name != "builds then drains" {
			t.Errorf("%s: slope %v, want %v", c.name, slope, c.slope)
		}
	}
	// The drain's trend: -2,000/s from t=30, fitted over t=60..120 where it is 0 from t=55 on.
	if _, slope, _ := depthVerdict(series(120, 3, func(t float64) float64 { return max(0, 50_000-math.Abs(t-30)*2000) }), 1000); slope != 0 {
		t.Errorf("drained queue: slope %v, want 0 (empty over the whole second half)", slope)
	}
	// The rise is the slope over the half's span: readings at 60..120, 10/s -> 600.
	if _, _, rise := depthVerdict(series(120, 3, func(t float64) float64 { return 100 + 10*t }), 1000); math.Abs(rise-600) > 1e-6 {
		t.Errorf("rise %v, want 600", rise)
	}
}

func TestSustainedSummarize(t *testing.T) {
	s := &Sustained{Samples: []Sample{
		{T: 0, Depth: 0}, {T: 2, Depth: 40}, {T: 4, Depth: 900}, {T: 6, Depth: 60}, {T: 8, Depth: 70}, {T: 10, Depth: 50}, {T: 12, Depth: 30},
	}}
	s.summarize(400)
	if s.DepthStart != 40 || s.DepthMid != 60 || s.DepthEnd != 30 || s.DepthMax != 900 || s.Limit != 1000 {
		t.Errorf("start %d mid %d end %d max %d limit %v, want 40 60 30 900 1000", s.DepthStart, s.DepthMid, s.DepthEnd, s.DepthMax, s.Limit)
	}
	// Second half: t=6, 8, 10, 12 at 60, 70, 50, 30: slope -110/20 = -5.5/s, -33 over the 6s.
	if s.Verdict != VerdictFlat || s.Slope != -5.5 || s.Rise != -33 {
		t.Errorf("verdict %q slope %v rise %v, want flat -5.5 -33", s.Verdict, s.Slope, s.Rise)
	}
	if got := s.cell(); got != "40 / 60 / 30 / 900" {
		t.Errorf("cell %q", got)
	}
	s.summarize(45_000.5)
	if s.Limit != 45_000.5 {
		t.Errorf("limit %v, want one second of intake", s.Limit)
	}
}

const metricsText = `# HELP smppgw_messages_accepted_total Messages accepted (SMPP and API) since start.
# TYPE smppgw_messages_accepted_total counter
smppgw_messages_accepted_total 1.234567e+06
# HELP smppgw_queue_claimed Entries of a queue taken by a bind and not yet acknowledged.
# TYPE smppgw_queue_claimed gauge
smppgw_queue_claimed{kind="deliver",name="bench"} 7
smppgw_queue_claimed{kind="submit",name="other"} 99
smppgw_queue_claimed{kind="submit",name="sim"} 12
# HELP smppgw_queue_depth Entries in a queue, claimed or not: kind submit (per upstream) or deliver (per account).
# TYPE smppgw_queue_depth gauge
smppgw_queue_depth{kind="deliver",name="sim"} 3
smppgw_queue_depth{kind="submit",name="sim"} 4321
smppgw_queue_depth{kind="submit",name="sim2"} 8
smppgw_window_size{name="sim",role="smsc"} 1
smppgw_window_size{name="sim",role="esme"} 10
smppgw_queue_oldest_age_seconds{kind="submit",name="sim"} 0.25
smppgw_store_group_commits_total 5678
`

func TestParseMetrics(t *testing.T) {
	gm, err := parseMetrics(strings.NewReader(metricsText), "sim")
	if err != nil {
		t.Fatal(err)
	}
	if want := (gwMetrics{accepted: 1_234_567, depth: 4321, claimed: 12, window: 10, commits: 5678}); gm != want {
		t.Errorf("%+v, want %+v", gm, want)
	}
	if _, err := parseMetrics(strings.NewReader(metricsText), "absent"); !errors.Is(err, errNoMetric) || !strings.Contains(err.Error(), `name="absent"`) {
		t.Errorf("no queue for the upstream: %v", err)
	}
	noAccepted := strings.ReplaceAll(metricsText, "smppgw_messages_accepted_total 1.234567e+06", "")
	if _, err := parseMetrics(strings.NewReader(noAccepted), "sim"); !errors.Is(err, errNoMetric) {
		t.Errorf("no accepted count: %v", err)
	}
	bad := strings.ReplaceAll(metricsText, "4321", "many")
	if _, err := parseMetrics(strings.NewReader(bad), "sim"); err == nil {
		t.Error("a value that is not a number parsed")
	}
}

func TestParseLabels(t *testing.T) {
	got := parseLabels(`kind="submit",name="a\"b",role="esme"`)
	if len(got) != 3 || got["kind"] != "submit" || got["name"] != `a\"b` || got["role"] != "esme" {
		t.Errorf("%q", got)
	}
	if got := parseLabels(""); len(got) != 0 {
		t.Errorf("%q", got)
	}
}

// TestRunSustained runs row 7 for 3s at 500 msgs/s, reading every 250ms, once on smppgw's defaults
// and once with its upstream window set: the readings add up (accepted >= received, the depth is
// accepted - received within what moves in a reading's gap), everything acknowledged reaches the
// simulator and leaves the queue, and smppgw reports the window it was given.
func TestRunSustained(t *testing.T) {
	const rate, secs = 500, 3
	gap := 250 * time.Millisecond
	for _, upWindow := range []int{0, 32} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // building smppgw is most of it
		defer cancel()
		res, err := Run(ctx, Config{Rows: []int{RowSustain}, Sustain: secs * time.Second, SustainSample: gap,
			SustainRate: rate, SustainUpstreamWindow: upWindow, WorkDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 1 {
			t.Fatalf("%d rows, want 1", len(res.Rows))
		}
		r := res.Rows[0]
		if r.Err != "" || r.Skipped || r.Sustained == nil {
			t.Fatalf("row 7: %q %q %+v", r.Err, r.Note, r.Sustained)
		}
		s := r.Sustained
		wantWindow := upstreamWindowOf(Config{SustainUpstreamWindow: upWindow})
		if r.Group != RowSustain || r.Window != 256 || s.UpstreamWindow != wantWindow {
			t.Errorf("group %d W %d upstream window %d, want 7 256 %d", r.Group, r.Window, s.UpstreamWindow, wantWindow)
		}
		def := session.Config{}.WithDefaults()
		if want := fmt.Sprintf("smppgw defaults: upstream window %d, max_unsettled %d, inbound_limit %d, workers %d", gateway.DefaultUpstreamWindow, gateway.DefaultMaxUnsettled, def.InboundLimit, 2*def.InboundLimit); upWindow == 0 && (!strings.Contains(r.Name, "(default settings)") || !strings.Contains(r.Note, want)) {
			t.Errorf("defaults: name %q note %q", r.Name, r.Note)
		}
		if upWindow > 0 && (!strings.Contains(r.Name, "(upstream window 32, else defaults)") || strings.Contains(r.Note, "upstream window")) {
			t.Errorf("window 32: name %q note %q", r.Name, r.Note)
		}
		// The limiter lets rate a second through (and a burst of 20ms of it).
		if r.Sent != r.Acked || r.Sent < rate || r.Sent > rate*secs+rate/50+1 {
			t.Errorf("sent %d acked %d, want equal and at most %d", r.Sent, r.Acked, rate*secs+rate/50+1)
		}
		if r.Received != r.Acked || s.Drained == nil || s.Drained.Depth != 0 || s.Drained.Received != r.Acked || s.Drained.Accepted != r.Acked {
			t.Errorf("after the drain: received %d of %d, reading %+v", r.Received, r.Acked, s.Drained)
		}
		// A reading every 250ms over 3s, one before and one at the end: 14 give or take the ticks a
		// busy box skips.
		if n := len(s.Samples); n < 8 || n > 15 || s.ScrapeErrors != 0 {
			t.Errorf("%d readings, %d scrape errors", n, s.ScrapeErrors)
		}
		tol := int64(rate*gap.Seconds()) + int64(s.UpstreamWindow)
		var prev Sample
		for i, x := range s.Samples {
			if x.Accepted < x.Received || x.Accepted < prev.Accepted || x.Received < prev.Received || x.T <= prev.T && i > 0 {
				t.Errorf("reading %d %+v after %+v: counts must grow and accepted >= received", i, x, prev)
			}
			if d := x.Depth - (x.Accepted - x.Received); d < -tol || d > tol {
				t.Errorf("reading %d %+v: depth off accepted - received by %d, more than %d", i, x, d, tol)
			}
			if x.Claimed > x.Depth || x.Claimed > int64(s.UpstreamWindow) {
				t.Errorf("reading %d %+v: claimed beyond the depth or the upstream window %d", i, x, s.UpstreamWindow)
			}
			prev = x
		}
		first, last := s.Samples[0], s.Samples[len(s.Samples)-1]
		// Each message is an accept and a settle, at 500 a second mostly committed alone or in
		// twos: between a tenth and three group commits a message, and the note says how many.
		if c := last.Commits - first.Commits; c*10 < last.Received || c > 3*last.Received || !strings.Contains(r.Note, fmt.Sprintf("%d group commits", c)) {
			t.Errorf("%d group commits for %d messages forwarded; note %q", c, last.Received, r.Note)
		}
		if first.Accepted != 0 || first.Depth != 0 || last.Accepted != r.Acked {
			t.Errorf("first reading %+v, last %+v: want nothing before the sending, all %d acknowledged accepted at its end", first, last, r.Acked)
		}
		// 500/s with a window of 10 or more keeps the queue near empty: flat, under 1,000 at the end.
		if s.Verdict != VerdictFlat || s.Limit != 1000 || s.DepthEnd != last.Depth || s.DepthMax < s.DepthEnd {
			t.Errorf("verdict %q limit %v end %d max %d", s.Verdict, s.Limit, s.DepthEnd, s.DepthMax)
		}
		if want := float64(last.Received) / last.T; r.Rate != want || r.Intake <= 0 || r.CPU <= 0 || r.RSS <= 0 {
			t.Errorf("rate %v (want %v) intake %v CPU %v RSS %v", r.Rate, want, r.Intake, r.CPU, r.RSS)
		}
		var tab bytes.Buffer
		if err := res.WriteTable(&tab); err != nil {
			t.Fatal(err)
		}
		if want := regexp.MustCompile(regexp.QuoteMeta(s.cell()) + ` +flat `); !want.MatchString(tab.String()) {
			t.Errorf("table lacks %q and the verdict:\n%s", want, tab.String())
		}
		t.Logf("\n%s", tab.String())
	}
}
