package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// all runs every row at small sizes: go test ./internal/bench/ -run TestRunAll -bench.all -v
var all = flag.Bool("bench.all", false, "also run TestRunAll: every row (Redis, node, gRPC, idle binds) at small sizes")

func TestMain(m *testing.M) {
	Child() // the bare responder of row 1 is this test binary started again
	os.Exit(m.Run())
}

// TestRunSmall is the harness on tiny numbers: rows 1 and 2 (embedded store) at W=10 with 2,000
// messages; every message is acknowledged and reaches the simulator, and the table prints.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Rows: []int{RowCeiling, RowIngress}, Stores: []string{StoreEmbedded},
		Windows: []int{10}, Messages: 2000, Duration: 20 * time.Second, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(res.Rows), res.Rows)
	}
	for _, r := range res.Rows {
		if r.Err != "" || r.Skipped {
			t.Fatalf("row %d %s: %s %s", r.Group, r.Name, r.Err, r.Note)
		}
		if r.Sent != 2000 || r.Acked != 2000 {
			t.Errorf("row %d: sent %d acked %d, want 2000 each", r.Group, r.Sent, r.Acked)
		}
		if r.Rate <= 0 || r.Intake <= 0 || r.P50 <= 0 || r.RSS <= 0 {
			t.Errorf("row %d: missing figures: %+v", r.Group, r)
		}
	}
	if gw := res.Rows[1]; gw.Received != 2000 {
		t.Errorf("the simulator received %d, want 2000", gw.Received)
	}
	if res.Rows[0].Ratio != 1 || res.Rows[1].Ratio <= 0 {
		t.Errorf("ratios %v %v", res.Rows[0].Ratio, res.Rows[1].Ratio)
	}
	var tab, md bytes.Buffer
	if err := res.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bare stdlib responder", "smppgw embedded", "2000 / 2000 / 2000"} {
		if !strings.Contains(tab.String(), want) || !strings.Contains(md.String(), want) {
			t.Errorf("table lacks %q:\n%s\n%s", want, tab.String(), md.String())
		}
	}
	t.Logf("\n%s", tab.String())
}

// TestRunFullPathPaced is row 5 on small numbers: the full-load pass, then the paced pass at half
// its rate, each with a receipt streamed for every accepted Submit, in one table; each pass saves
// its profiles under a name of its own.
func TestRunFullPathPaced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // building smppgw is most of it
	defer cancel()
	profiles := t.TempDir()
	cfg := Config{Rows: []int{RowFullPath}, Windows: []int{16}, Messages: 600, Duration: 4 * time.Second, WorkDir: t.TempDir(), ProfileDir: profiles}
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 2 {
		t.Fatalf("%d rows, want 2 (full load, paced): %+v", len(res.Rows), res.Rows)
	}
	full, paced := res.Rows[0], res.Rows[1]
	for _, r := range res.Rows {
		if r.Err != "" || r.Skipped {
			t.Fatalf("%s: %s %s", r.Name, r.Err, r.Note)
		}
		if r.Acked != r.Sent || r.Received != r.Acked || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("%s: sent %d acked %d receipts %d, p50 %v p99 %v", r.Name, r.Sent, r.Acked, r.Received, r.P50, r.P99)
		}
	}
	if full.Sent != 600 {
		t.Errorf("full load sent %d, want 600", full.Sent)
	}
	// Paced at half the full rate over 4s: as many as that schedule holds, at most the 600.
	if want := min(600, int64(full.Rate/2*4)); paced.Sent != want || !strings.Contains(paced.Note, fmt.Sprintf("paced at %.0f msgs/s", full.Rate/2)) {
		t.Errorf("paced pass sent %d, want %d; note %q (full rate %.0f)", paced.Sent, want, paced.Note, full.Rate)
	}
	for i, name := range []string{"row5-embedded-w16", "row5-embedded-w16-paced"} {
		if !strings.Contains(res.Rows[i].Note, filepath.Join(profiles, name)+".{cpu,allocs}.pprof") {
			t.Errorf("%s: note %q does not name its profiles %s", res.Rows[i].Name, res.Rows[i].Note, name)
		}
		checkProfiles(t, &runner{cfg: cfg.withDefaults()}, profiles, name, false)
	}
}

// TestRunAll runs every row at small sizes; behind -bench.all since it needs redis-server, node and
// tens of seconds.
func TestRunAll(t *testing.T) {
	if !*all {
		t.Skip("run with -bench.all")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var log bytes.Buffer
	res, err := Run(ctx, Config{Windows: []int{1, 100}, Messages: 3000, Duration: 5 * time.Second,
		IdleBinds: 500, EnquireLink: time.Second, Sustain: 5 * time.Second, WorkDir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	var tab bytes.Buffer
	_ = res.WriteTable(&tab)
	t.Logf("\n%s\n%s", log.String(), tab.String())
	for _, r := range res.Rows {
		if r.Err != "" {
			t.Errorf("row %d %s W=%d: %s", r.Group, r.Name, r.Window, r.Err)
		}
		if r.Skipped {
			continue
		}
		want := r.Acked
		if r.Group == RowCeiling || r.Group == RowNodeSMSC {
			want = 0
		}
		if r.Acked != r.Sent || r.Received != want {
			t.Errorf("row %d %s W=%d: sent %d acked %d received %d", r.Group, r.Name, r.Window, r.Sent, r.Acked, r.Received)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Rows: []int{8}}, {Rows: []int{0}}, {Stores: []string{"mongo"}}, {Windows: []int{0}}, {Messages: -1}, {Duration: -time.Second}, {PacedRate: -1},
		{Sustain: -time.Second}, {Sustain: MaxSustain + time.Second}, {Sustain: time.Second, SustainSample: 2 * time.Second},
		{SustainSample: -time.Second}, {SustainWindow: 10_001}, {SustainRate: -1}, {SustainUpstreamWindow: -1}, {SustainInboundLimit: -1},
	} {
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
}

func TestParseInts(t *testing.T) {
	got, err := ParseInts(" 1,10, 256,")
	if err != nil || len(got) != 3 || got[2] != 256 {
		t.Errorf("%v %v", got, err)
	}
	if _, err := ParseInts("1,x"); err == nil {
		t.Error("x parsed")
	}
}

func TestCPUAndRSS(t *testing.T) {
	cpu, err := cpuSeconds(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("cpu %v %v", cpu, err)
	}
	rss, err := peakRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("rss %v %v", rss, err)
	}
}

func TestFillRatios(t *testing.T) {
	rows := []Row{
		{Group: RowCeiling, Window: 10, Rate: 100},
		{Group: RowCeiling, Window: 256, Rate: 400},
		{Group: RowIngress, Window: 10, Rate: 50},
		{Group: RowIngress, Window: 100, Rate: 200}, // no ceiling at 100: the largest window's
		{Group: RowIdle, Rate: 3000},
		{Group: RowIngress, Window: 10, Skipped: true},
	}
	fillRatios(rows)
	for i, want := range []float64{1, 1, 0.5, 0.5, 0, 0} {
		if rows[i].Ratio != want {
			t.Errorf("row %d: ratio %v, want %v", i, rows[i].Ratio, want)
		}
	}
}

func TestDestination(t *testing.T) {
	for _, n := range []int64{0, 1, 42, 99_999_999, 100_000_000, 123_456_789_012} {
		if got, want := destination(n), fmt.Sprintf("4670%08d", n%100_000_000); got != want {
			t.Errorf("destination(%d) = %s, want %s", n, got, want)
		}
	}
}
