package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// proc is a child process: a system under test (smppgw, redis-server, node, the bare responder).
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer // its stdout and stderr, for errors and for lines it prints
	exited chan struct{}
	cpu0   float64 // CPU seconds at mark
}

// syncBuffer is a bytes.Buffer safe for the process's writer and our readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc starts name with args, env added to ours, in dir (empty: ours).
func startProc(name string, args, env []string, dir string) (*proc, error) {
	p := &proc{name: filepath.Base(name), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// Its own process group, so that a Ctrl-C of the bench reaches it only through stop.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// alive reports whether the process has not exited.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// tail is the end of its output, for error messages.
func (p *proc) tail() string {
	s := strings.TrimSpace(p.out.String())
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// waitLine waits until its output has a line starting with prefix and returns the line's rest.
func (p *proc) waitLine(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		for line := range strings.SplitSeq(p.out.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return strings.TrimSpace(rest), nil
			}
		}
		if !p.alive() {
			return "", fmt.Errorf("%s exited: %s", p.name, p.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("%s: no %q line within %s: %s", p.name, prefix, timeout, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mark starts the CPU count of the row.
func (p *proc) mark() { p.cpu0, _ = cpuSeconds(p.cmd.Process.Pid) }

// usage is the CPU seconds since mark and the peak RSS so far; call it before stop.
func (p *proc) usage() (cpu float64, rss int64) {
	c, err := cpuSeconds(p.cmd.Process.Pid)
	if err == nil {
		cpu = c - p.cpu0
	}
	rss, _ = peakRSS(p.cmd.Process.Pid)
	return cpu, rss
}

// stop sends SIGTERM, waits up to grace, then kills.
func (p *proc) stop(grace time.Duration) {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// cpuSeconds is utime+stime of pid, from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm (field 2) may hold spaces; the fields after its closing parenthesis start at state (3).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bench: unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("bench: short /proc stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64) // utime, field 14
	st, err2 := strconv.ParseUint(f[12], 10, 64) // stime, field 15
	if err1 != nil || err2 != nil {
		return 0, errors.New("bench: unreadable utime/stime")
	}
	return float64(ut+st) / clockTicks, nil
}

// peakRSS is VmHWM of pid in bytes, from /proc/PID/status.
func peakRSS(pid int) (int64, error) { return statusKB(pid, "VmHWM:") }

// currentRSS is VmRSS of pid in bytes.
func currentRSS(pid int) (int64, error) { return statusKB(pid, "VmRSS:") }

func statusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("bench: no %s in /proc/%d/status", key, pid)
}

// selfCPU is this process's user+system seconds.
func selfCPU() float64 {
	c, _ := cpuSeconds(os.Getpid())
	return c
}

// raiseNoFile lifts the soft limit on open files to the hard one, for row 6; children inherit it.
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// noFileLimit is the soft limit on open files.
func noFileLimit() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	return l.Cur
}

func numCPU() int { return runtime.NumCPU() }

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// freeAddr is a 127.0.0.1 address with a port free at the moment of asking.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitDial waits until addr accepts a TCP connection.
func waitDial(ctx context.Context, addr string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && !p.alive() {
			return fmt.Errorf("%s exited: %s", p.name, p.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not listen on %s within %s", p.name, addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// buildSmppgw builds this module's ./cmd/smppgw into dir.
func buildSmppgw(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "smppgw")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/smppgw/smppgw/cmd/smppgw")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: go build ./cmd/smppgw: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the directory of this module's go.mod, from `go env GOMOD`.
func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return ""
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return ""
	}
	return filepath.Dir(gomod)
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }
