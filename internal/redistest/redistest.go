package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a started redis-server may take to answer PING.
const startTimeout = 15 * time.Second

// Options tune the server. The zero value is AOF with appendfsync everysec and no RDB snapshots.
type Options struct {
	// AppendFsync is the appendfsync policy: "always", "everysec" or "no". Empty means everysec.
	AppendFsync string
	// Args are further redis-server arguments, appended after ours ("--cluster-enabled", "yes").
	Args []string
}

// Server is a redis-server this test process started. Its methods other than Addr and Dir are for
// the test's goroutine; Kill may also be called from others.
type Server struct {
	t    testing.TB
	dir  string
	port int
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	out    *bytes.Buffer // redis-server's log, for failure messages
}

// Start starts redis-server with opts on a free 127.0.0.1 port and a temporary directory, and waits
// until it answers PING. The server is killed when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if testing.Short() {
			t.Skip("redis-server not on PATH; skipped under -short")
		}
		t.Fatal("redis-server not on PATH: install Debian's redis-server package (apt-get install -y redis-server; .ci/run does) or run with -short to skip the tests that need it")
	}
	fsync := opts.AppendFsync
	if fsync == "" {
		fsync = "everysec"
	}
	s := &Server{t: t, dir: t.TempDir()}
	s.args = append([]string{"--bind", "127.0.0.1", "--dir", s.dir, "--appendonly", "yes", "--appendfsync", fsync,
		"--save", "", "--protected-mode", "yes", "--daemonize", "no", "--logfile", ""}, opts.Args...)
	var err error
	for attempt := 0; attempt < 5; attempt++ { // another process may take the free port before us
		if s.port, err = freePort(); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

// StartCluster starts a one-node Redis Cluster owning every slot, with appendfsync always. One node is
// enough to make the server refuse any command or script whose keys span hash slots.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	s := Start(t, Options{AppendFsync: "always", Args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}})
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr()})
	defer c.Close()
	if err := c.Do(context.Background(), "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	s.WaitClusterOK()
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Dir is the server's data directory.
func (s *Server) Dir() string { return s.dir }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server on s.port and s.dir and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &bytes.Buffer{}
	cmd := exec.Command("redis-server", append([]string{"--port", strconv.Itoa(s.port)}, s.args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited (port %d taken?)\n%s", s.port, out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			s.cmd, s.exited, s.out = cmd, exited, out
			return nil
		}
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s did not answer PING within %v\n%s", s.Addr(), startTimeout, out.String())
}

// Kill stops the server with SIGKILL, as a crash would, and returns once it has exited and its port
// is free. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
	for i := 0; i < 200; i++ { // the kernel may take a moment to drop the listener
		c, err := net.DialTimeout("tcp", s.Addr(), 50*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Signal sends sig to the server's process: SIGSTOP freezes it with its connections open, as a hung
// node would, until SIGCONT. A killed server has no process: an error.
func (s *Server) Signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return fmt.Errorf("redis-server on %s is not running", s.Addr())
	}
	return s.cmd.Process.Signal(sig)
}

// Running reports whether the server is up (not killed).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Restart kills the server and starts it again on the same port and data directory, so that it
// reloads what its AOF holds.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart redis-server: %v", err)
}

// WaitClusterOK waits until a cluster node reports cluster_state:ok, as it does some time after a
// (re)start.
func (s *Server) WaitClusterOK() {
	s.t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr()})
	defer c.Close()
	for deadline := time.Now().Add(startTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		info, err := c.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return
		}
	}
	s.t.Fatalf("one-node cluster on %s not ok", s.Addr())
}
