package bench

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

//go:embed node/smppbench.js
var nodeScript []byte

// nodeSetup writes the script into the work directory and returns its path and the NODE_PATH
// environment, or why the npm rows cannot run.
func (r *runner) nodeSetup() (script string, env []string, why string) {
	if _, err := lookPath("node"); err != nil {
		return "", nil, "node not found"
	}
	mods := r.cfg.NodeModules
	if mods == "" {
		root := moduleRoot()
		if root == "" {
			return "", nil, "module root not found for gateway/testdata/node/node_modules"
		}
		mods = filepath.Join(root, "gateway", "testdata", "node", "node_modules")
	}
	if _, err := os.Stat(filepath.Join(mods, "smpp")); err != nil {
		return "", nil, "npm smpp not installed in " + mods + " (npm ci in gateway/testdata/node)"
	}
	script = filepath.Join(r.cfg.WorkDir, "smppbench.js")
	if err := os.WriteFile(script, nodeScript, 0o600); err != nil {
		return "", nil, err.Error()
	}
	abs, _ := filepath.Abs(mods)
	return script, []string{"NODE_PATH=" + abs}, ""
}

// nodeServer is row 3: smppload against the npm smpp server.
func (r *runner) nodeServer(ctx context.Context, w int) (row Row) {
	script, env, why := r.nodeSetup()
	if why != "" {
		row.Skipped, row.Note = true, why
		return row
	}
	p, err := startProc("node", []string{script, "server"}, env, "")
	if err != nil {
		return failed(row, err)
	}
	defer p.stop(5 * time.Second)
	port, err := p.waitLine(ctx, "listening ", startTimeout)
	if err != nil {
		return failed(row, err)
	}
	p.mark()
	rep, _, err := r.loadRun(ctx, "127.0.0.1:"+port, w, "bench", "bench")
	fromReport(&row, rep)
	row.CPU, row.RSS = p.usage()
	if err != nil {
		return failed(row, err)
	}
	return row
}

// nodeResult is what the script's client prints.
type nodeResult struct {
	Sent, Acked, Errors int64
	FirstMS             int64   `json:"first_ms"`
	Seconds             float64 `json:"seconds"`
	P50                 float64 `json:"p50_ms"`
	P99                 float64 `json:"p99_ms"`
}

// nodeClient is row 4's npm client: it sends to smppgw, which forwards to the simulator. profile
// names the row's profiles ("": none).
func (r *runner) nodeClient(ctx context.Context, w int, profile string) (row Row) {
	script, env, why := r.nodeSetup()
	if why != "" {
		row.Skipped, row.Note = true, why
		return row
	}
	g, err := r.startGateway(ctx, "npmclient", gwOptions{store: StoreEmbedded, profile: profile})
	if err != nil {
		return failed(row, err)
	}
	defer g.stop()
	_, port, _ := net.SplitHostPort(g.smppAddr)
	p, err := startProc("node", []string{script, "client", "--port", port, "--system-id", account, "--password", accountPass,
		"--count", strconv.Itoa(r.cfg.Messages), "--window", strconv.Itoa(w),
		"--duration-ms", strconv.FormatInt(r.cfg.Duration.Milliseconds(), 10)}, env, "")
	if err != nil {
		return failed(row, err)
	}
	defer p.stop(time.Second)
	prof := r.profileSending(ctx, g)
	line, err := p.waitLine(ctx, "result ", r.cfg.Duration+r.drainTimeout())
	if err != nil {
		return failed(row, err)
	}
	var res nodeResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return failed(row, fmt.Errorf("npm client result %q: %w", line, err))
	}
	row.Sent, row.Acked, row.P50, row.P99 = res.Sent, res.Acked, res.P50, res.P99
	if res.Seconds > 0 {
		row.Intake = float64(res.Acked) / res.Seconds
	}
	if res.Errors > 0 {
		addNote(&row, fmt.Sprintf("%d refused", res.Errors))
	}
	r.endToEnd(ctx, g, &row, time.UnixMilli(res.FirstMS))
	g.usage(&row)
	prof.finish(ctx, &row)
	return row
}
