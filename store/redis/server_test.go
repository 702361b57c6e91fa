package redis

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// server is a redis-server this test process started, on a free loopback port and a data
// directory of its own. Tests never talk to a server they did not start.
type server struct {
	t     testing.TB
	dir   string
	fsync string   // appendfsync policy: "always" or "everysec"
	extra []string // further redis-server arguments
	port  int

	mu  sync.Mutex
	cmd *exec.Cmd
	out *bytes.Buffer
}

// startServer starts redis-server with AOF on and RDB snapshots off. Without redis-server
// on PATH the test fails, unless -short is given.
func startServer(t testing.TB, fsync string, extra ...string) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if testing.Short() {
			t.Skip("redis-server not on PATH; skipped under -short")
		}
		t.Fatalf("redis-server not on PATH: install Debian's redis-server package (apt-get install -y redis-server; .ci/run does) or run with -short to skip the Redis store tests")
	}
	s := &server{t: t, dir: t.TempDir(), fsync: fsync, extra: extra}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
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
	t.Cleanup(s.kill)
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs redis-server on s.port and s.dir and waits until it answers PING.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = &bytes.Buffer{}
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", s.fsync, "--save", "",
		"--protected-mode", "yes", "--daemonize", "no", "--logfile", ""}, s.extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := goredis.NewClient(&goredis.Options{Addr: s.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			s.cmd = nil
			return fmt.Errorf("redis-server exited: %v\n%s", err, s.out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			go func() { <-exited }()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("redis-server on %s did not answer PING\n%s", s.addr(), s.out.String())
}

// kill stops the server with SIGKILL, as a crash would.
func (s *server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	// Wait until the port is free again, so a restart can bind it.
	for i := 0; i < 200; i++ {
		if c, err := net.DialTimeout("tcp", s.addr(), 50*time.Millisecond); err != nil {
			break
		} else {
			c.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.cmd = nil
}

// restart kills the server and starts it again on the same port and data directory.
func (s *server) restart() {
	s.t.Helper()
	s.kill()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart redis-server: %v", err)
}

// startCluster starts a one-node Redis Cluster owning every slot. One node is enough to make
// the server refuse any command or script whose keys span hash slots, which is what the
// store's key layout must get right for a real cluster.
func startCluster(t testing.TB) *server {
	t.Helper()
	s := startServer(t, "always", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	c := goredis.NewClient(&goredis.Options{Addr: s.addr()})
	defer c.Close()
	ctx := context.Background()
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	s.waitClusterOK()
	return s
}

// waitClusterOK waits until the node reports cluster_state:ok.
func (s *server) waitClusterOK() {
	s.t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: s.addr()})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		info, err := c.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("one-node cluster on %s not ok", s.addr())
}
