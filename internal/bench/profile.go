package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Profiles (Config.ProfileDir): every smppgw row of groups 2, 4 and 5 runs with `api.pprof: true`,
// and the bench takes, through /debug/pprof/ with the admin user's Basic credentials, a CPU profile
// over the middle of the row's sending (from a quarter of Config.Duration after it starts, for half
// of it) and an allocs profile once the row's figures are read. CPU samples come only while smppgw
// runs, so a row whose sending ends inside the window profiles what it did until then and its drain.

// profileName is the base name of a row's profiles, row<group>-<store>-w<window> and the variant
// when the group runs several rows at the same store and window, or "" when the bench profiles
// nothing.
func (r *runner) profileName(group int, store string, w int, variant string) string {
	if r.cfg.ProfileDir == "" {
		return ""
	}
	name := fmt.Sprintf("row%d-%s-w%d", group, store, w)
	if variant != "" {
		name += "-" + variant
	}
	return name
}

// cpuWindow is when, after the sending starts, the CPU profile starts, and its length in whole
// seconds (the endpoint's unit), at least one.
func (r *runner) cpuWindow() (delay time.Duration, seconds int) {
	return r.cfg.Duration / 4, max(1, int((r.cfg.Duration/2+time.Second/2)/time.Second))
}

// profiler takes one smppgw's profiles for one row.
type profiler struct {
	base    string // the HTTP port's URL
	path    string // ProfileDir/name, without the .cpu.pprof / .allocs.pprof suffixes
	cpuSecs int
	cpuDone chan struct{}
	cpuErr  error // set before cpuDone closes
}

// profileSending starts the CPU profile of the row: call it as the sending starts. Nil when the
// bench profiles nothing.
func (r *runner) profileSending(ctx context.Context, g *gwInstance) *profiler {
	if g.profile == "" {
		return nil
	}
	delay, secs := r.cpuWindow()
	p := &profiler{base: "http://" + g.httpAddr, path: filepath.Join(r.cfg.ProfileDir, g.profile), cpuSecs: secs, cpuDone: make(chan struct{})}
	go func() {
		defer close(p.cpuDone)
		select {
		case <-ctx.Done():
			p.cpuErr = ctx.Err()
			return
		case <-time.After(delay):
		}
		p.cpuErr = p.fetch(ctx, "/debug/pprof/profile?seconds="+strconv.Itoa(secs), p.path+".cpu.pprof", time.Duration(secs)*time.Second+30*time.Second)
	}()
	return p
}

// finish waits for the CPU profile, takes the allocs profile and says so in the row's note: call it
// after the row's CPU seconds are read, so that the allocs profile's cost is not counted.
func (p *profiler) finish(ctx context.Context, row *Row) {
	if p == nil {
		return
	}
	<-p.cpuDone
	err := p.cpuErr
	if aerr := p.fetch(ctx, "/debug/pprof/allocs", p.path+".allocs.pprof", 30*time.Second); err == nil {
		err = aerr
	}
	if err != nil {
		addNote(row, fmt.Sprintf("profile failed: %v", err))
		return
	}
	addNote(row, fmt.Sprintf("profiled (pprof costs smppgw a little CPU): CPU over %ds of the sending, allocs at the end: %s.{cpu,allocs}.pprof",
		p.cpuSecs, p.path))
}

// fetch GETs path with the admin user's credentials into the file out.
func (p *profiler) fetch(ctx context.Context, path, out string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(adminUser, adminPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
