package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Row groups, as the issue numbers them.
const (
	RowCeiling  = 1 // smppload -> bare stdlib responder
	RowIngress  = 2 // smppload -> smppgw (embedded, redis everysec, redis always) -> simulator
	RowNodeSMSC = 3 // smppload -> npm smpp server
	RowClients  = 4 // npm smpp client, fiorix Transmitter, smppload -> smppgw -> simulator
	RowFullPath = 5 // gRPC Submit -> smppgw -> simulator -> receipt -> StreamReceipts
	RowIdle     = 6 // idle binds held by enquire_link
	RowSustain  = 7 // smppload -> smppgw embedded with its default settings -> simulator, for minutes, queue depth sampled
)

// MaxSustain bounds Config.Sustain.
const MaxSustain = time.Hour

// Store variants of row 2.
const (
	StoreEmbedded = "embedded"
	StoreEverysec = "redis-everysec"
	StoreAlways   = "redis-always"
)

// Config is one run of the bench. Zero values are documented per field.
type Config struct {
	// Rows are the row groups to run (RowCeiling...RowSustain). Empty means all.
	Rows []int
	// Stores are row 2's store variants. Empty means embedded, redis-everysec and redis-always.
	Stores []string
	// Windows are the windows (submit_sm in flight per bind) rows 1-3 run at. Empty means 1, 10,
	// 100, 256. Rows 4 and 5 run at the largest.
	Windows []int
	// Messages is each row's message count. 0 means 200,000.
	Messages int
	// Duration caps each row's sending; what is in flight is still awaited. 0 means 10s.
	Duration time.Duration
	// IdleBinds is row 6's bind count. 0 means 10,000.
	IdleBinds int
	// EnquireLink is smppgw's enquire_link interval in row 6. 0 means 5s.
	EnquireLink time.Duration
	// UpstreamWindow is smppgw's window towards the simulator. 0 means 256.
	UpstreamWindow int
	// PacedRate is the rate (msgs/s) of row 5's paced pass, the one its latency is read from. 0 means
	// half the rate its full-load pass measured.
	PacedRate float64

	// Sustain is row 7's sending time. 0 means 2m; at most MaxSustain.
	Sustain time.Duration
	// SustainSample is how often row 7 reads its counters and smppgw's queue depth. 0 means 3s, or
	// a tenth of Sustain when that is shorter.
	SustainSample time.Duration
	// SustainWindow is row 7's window (submit_sm in flight on its one bind). 0 means 256.
	SustainWindow int
	// SustainRate caps row 7's submit_sm per second. 0 means no cap: as fast as the window allows.
	SustainRate float64
	// SustainUpstreamWindow and SustainInboundLimit override smppgw's upstream window and
	// smpp.session.inbound_limit in row 7, to compare against its defaults. 0 means smppgw's default
	// (nothing written in its configuration).
	SustainUpstreamWindow int
	SustainInboundLimit   int

	// Smppgw is the smppgw binary. Empty means build ./cmd/smppgw of this module into WorkDir (into
	// ProfileDir when that is set).
	Smppgw string
	// Self is the command that starts this executable again as a Child (the bare responder). Empty
	// means os.Executable() with no arguments.
	Self []string
	// NodeModules is the node_modules directory holding the npm smpp package. Empty means
	// gateway/testdata/node/node_modules under the module root; rows 3 and 4's npm parts are skipped
	// with a note when node or the package is missing.
	NodeModules string
	// RedisServer is the redis-server binary. Empty means redis-server on PATH; row 2's Redis
	// variants are skipped with a note when it is missing.
	RedisServer string
	// ProfileDir, when set, turns on smppgw's pprof endpoint in rows 2, 4 and 5 and saves each such
	// row's CPU profile (over the middle of its sending) and allocs profile (at its end) there, as
	// row<group>-<store>-w<window>[-<variant>].cpu.pprof and .allocs.pprof; the smppgw binary they
	// symbolize against is built there too when Smppgw is empty. The directory is created if need
	// be. Empty means no profiles.
	ProfileDir string
	// WorkDir holds configs, stores and logs. Empty means a fresh temporary directory, removed at
	// the end.
	WorkDir string

	// Log receives one line per row as it starts and ends. Nil means io.Discard.
	Log io.Writer
}

func (c Config) withDefaults() Config {
	if len(c.Rows) == 0 {
		c.Rows = []int{RowCeiling, RowIngress, RowNodeSMSC, RowClients, RowFullPath, RowIdle, RowSustain}
	}
	if len(c.Stores) == 0 {
		c.Stores = []string{StoreEmbedded, StoreEverysec, StoreAlways}
	}
	if len(c.Windows) == 0 {
		c.Windows = []int{1, 10, 100, 256}
	}
	if c.Messages == 0 {
		c.Messages = 200_000
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.IdleBinds == 0 {
		c.IdleBinds = 10_000
	}
	if c.EnquireLink == 0 {
		c.EnquireLink = 5 * time.Second
	}
	if c.UpstreamWindow == 0 {
		c.UpstreamWindow = 256
	}
	if c.Sustain == 0 {
		c.Sustain = 2 * time.Minute
	}
	if c.SustainSample == 0 {
		c.SustainSample = min(3*time.Second, c.Sustain/10)
	}
	if c.SustainWindow == 0 {
		c.SustainWindow = 256
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// ErrConfig is wrapped by the error Run returns for a configuration that cannot work.
var ErrConfig = errors.New("bench: config")

func (c Config) validate() error {
	for _, r := range c.Rows {
		if r < RowCeiling || r > RowSustain {
			return fmt.Errorf("%w: rows: %d, want 1 to 7", ErrConfig, r)
		}
	}
	for _, s := range c.Stores {
		if s != StoreEmbedded && s != StoreEverysec && s != StoreAlways {
			return fmt.Errorf("%w: stores: %q, want %s, %s or %s", ErrConfig, s, StoreEmbedded, StoreEverysec, StoreAlways)
		}
	}
	for _, w := range c.Windows {
		if w < 1 || w > 10_000 {
			return fmt.Errorf("%w: windows: %d, want 1 to 10000", ErrConfig, w)
		}
	}
	switch {
	case c.Messages < 0:
		return fmt.Errorf("%w: messages: %d, must not be negative", ErrConfig, c.Messages)
	case c.Duration < 0:
		return fmt.Errorf("%w: duration: %s, must not be negative", ErrConfig, c.Duration)
	case c.IdleBinds < 0:
		return fmt.Errorf("%w: idle binds: %d, must not be negative", ErrConfig, c.IdleBinds)
	case c.EnquireLink < 0:
		return fmt.Errorf("%w: enquire_link: %s, must not be negative", ErrConfig, c.EnquireLink)
	case c.PacedRate < 0:
		return fmt.Errorf("%w: paced rate: %g, must not be negative", ErrConfig, c.PacedRate)
	case c.Sustain < 0 || c.Sustain > MaxSustain:
		return fmt.Errorf("%w: sustain: %s, want 0 to %s", ErrConfig, c.Sustain, MaxSustain)
	case c.SustainSample < 0 || c.SustainSample > c.Sustain:
		return fmt.Errorf("%w: sustain sample: %s, want 0 to the sustain time (%s)", ErrConfig, c.SustainSample, c.Sustain)
	case c.SustainWindow < 0 || c.SustainWindow > 10_000:
		return fmt.Errorf("%w: sustain window: %d, want 1 to 10000", ErrConfig, c.SustainWindow)
	case c.SustainRate < 0:
		return fmt.Errorf("%w: sustain rate: %g, must not be negative", ErrConfig, c.SustainRate)
	case c.SustainUpstreamWindow < 0:
		return fmt.Errorf("%w: sustain upstream window: %d, must not be negative", ErrConfig, c.SustainUpstreamWindow)
	case c.SustainInboundLimit < 0:
		return fmt.Errorf("%w: sustain inbound limit: %d, must not be negative", ErrConfig, c.SustainInboundLimit)
	}
	return nil
}

// ParseInts reads "1,10,100".
func ParseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q: not a whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// Row is one line of the table.
type Row struct {
	Group  int    `json:"group"`            // 1 to 7, as the issue numbers them (7: the sustained row)
	Name   string `json:"name"`             // what ran
	Window int    `json:"window,omitempty"` // submit_sm in flight per bind (0: not applicable)

	Sent     int64 `json:"sent"`               // submit_sm (or Submit calls) sent
	Acked    int64 `json:"acknowledged"`       // answered ESME_ROK (or Submit OK)
	Received int64 `json:"received,omitempty"` // arrived at the upstream simulator (or receipts streamed)

	// Rate is the row's figure, msgs/s: end to end (received / first submit to last arrival) for rows
	// through smppgw, acknowledged per second otherwise.
	Rate float64 `json:"msgs_per_second"`
	// Intake is submit_sm_resp (Submit replies) per second, first submit to last answer.
	Intake float64 `json:"intake_per_second"`
	P50    float64 `json:"p50_ms"` // submit -> answer latency (row 5: Submit -> receipt streamed)
	P99    float64 `json:"p99_ms"`
	// CPU is the system under test's user+system seconds over the row (startup excluded).
	CPU float64 `json:"cpu_seconds"`
	// RSS is the system under test's peak resident set (VmHWM), bytes.
	RSS int64 `json:"peak_rss_bytes"`
	// Ratio is Rate over row 1's at the same window (at the largest for rows without one).
	Ratio float64 `json:"ratio_to_row1,omitempty"`

	// Sustained is row 7's queue depth over time and its verdict; nil for the other rows.
	Sustained *Sustained `json:"sustained,omitempty"`

	Note    string `json:"note,omitempty"`
	Skipped bool   `json:"skipped,omitempty"` // not run: Note says why
	Err     string `json:"error,omitempty"`   // the row failed: what happened
}

// Result is a whole run.
type Result struct {
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	CPUs     int       `json:"cpus"`
	Load     string    `json:"load_average,omitempty"`     // /proc/loadavg at the start
	LoadEnd  string    `json:"load_average_end,omitempty"` // and at the end
	Messages int       `json:"messages"`
	Duration string    `json:"duration_cap"`
	Sustain  string    `json:"sustain,omitempty"` // row 7's sending time, when it ran
	Rows     []Row     `json:"rows"`
	// ProfileDir and Smppgw are where the profiles were saved and the smppgw binary that took them
	// (for go tool pprof), when Config.ProfileDir was set.
	ProfileDir string `json:"profile_dir,omitempty"`
	Smppgw     string `json:"smppgw,omitempty"`
}

// Run runs the selected rows one after another and returns them with their ratios filled. A row
// that fails is kept with its Err; Run's error is for a configuration that cannot work or a
// context that ended.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	res := Result{Started: time.Now(), CPUs: numCPU(), Load: loadAvg(), Messages: cfg.Messages, Duration: cfg.Duration.String()}
	raiseNoFile()
	cleanup := func() {}
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "smppbench-")
		if err != nil {
			return res, fmt.Errorf("bench: %w", err)
		}
		cfg.WorkDir, cleanup = dir, func() { os.RemoveAll(dir) }
	}
	defer cleanup()
	r := &runner{cfg: cfg}
	if cfg.ProfileDir != "" {
		dir, err := filepath.Abs(cfg.ProfileDir) // smppgw starts in a directory of its own
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			return res, fmt.Errorf("bench: profile dir: %w", err)
		}
		cfg.ProfileDir = dir
		r.cfg.ProfileDir = dir
	}
	if r.needsGateway() && cfg.Smppgw == "" {
		dir := cfg.WorkDir
		if cfg.ProfileDir != "" {
			dir = cfg.ProfileDir // kept, for go tool pprof
		}
		bin, err := buildSmppgw(ctx, dir)
		if err != nil {
			return res, err
		}
		r.cfg.Smppgw = bin
	}
	if cfg.ProfileDir != "" {
		res.ProfileDir, res.Smppgw = cfg.ProfileDir, r.cfg.Smppgw
		fmt.Fprintf(cfg.Log, "profiles in %s, taken from %s (go tool pprof %s FILE)\n", res.ProfileDir, res.Smppgw, res.Smppgw)
	}
	for _, g := range []int{RowCeiling, RowIngress, RowNodeSMSC, RowClients, RowFullPath, RowIdle, RowSustain} {
		if !slices.Contains(cfg.Rows, g) {
			continue
		}
		for _, spec := range r.specs(g) {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			fmt.Fprintf(cfg.Log, "row %d: %s W=%d ...\n", g, spec.name, spec.window)
			row := spec.run(ctx)
			row.Group, row.Name, row.Window = g, spec.name, spec.window
			fmt.Fprintf(cfg.Log, "row %d: %s W=%d: %s\n", g, spec.name, spec.window, row.summary())
			res.Rows = append(res.Rows, row)
		}
	}
	fillRatios(res.Rows)
	if slices.Contains(cfg.Rows, RowSustain) {
		res.Sustain = cfg.Sustain.String()
	}
	res.LoadEnd = loadAvg()
	res.Seconds = time.Since(res.Started).Seconds()
	return res, nil
}

func (r Row) summary() string {
	switch {
	case r.Err != "":
		return "error: " + r.Err
	case r.Skipped:
		return "skipped: " + r.Note
	}
	out := fmt.Sprintf("%.0f msgs/s, intake %.0f/s, sent %d acked %d received %d", r.Rate, r.Intake, r.Sent, r.Acked, r.Received)
	if s := r.Sustained; s != nil {
		out += fmt.Sprintf(", queue depth %s (start/mid/end/max) %s", s.cell(), orDash(s.Verdict))
	}
	return out
}

// fillRatios sets each row's Ratio against row 1 at its window, or at the largest window for rows
// without one.
func fillRatios(rows []Row) {
	ceiling := map[int]float64{}
	maxW := 0
	for _, r := range rows {
		if r.Group == RowCeiling && r.Err == "" && r.Rate > 0 {
			ceiling[r.Window] = r.Rate
			maxW = max(maxW, r.Window)
		}
	}
	for i := range rows {
		r := &rows[i]
		if r.Rate <= 0 || r.Group == RowIdle {
			continue
		}
		c, ok := ceiling[r.Window]
		if !ok {
			c, ok = ceiling[maxW]
		}
		if ok {
			r.Ratio = r.Rate / c
		}
	}
}
