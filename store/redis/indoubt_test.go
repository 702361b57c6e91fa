package redis

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// TestAcceptInDoubt: an accept is ErrInDoubt only when its script may have run. A stopped server
// (SIGSTOP past the client's read time-out) runs the script once it resumes, after the accept failed:
// ErrInDoubt, and the message is there afterwards. A server that is gone refuses the connection:
// plain ErrUnavailable, and nothing is written.
func TestAcceptInDoubt(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1, ReadTimeout: 300 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	s, err := New(ctx, c, Config{Options: storetest.Options()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	err = s.AcceptMessage(ctx, storetest.NewMessage("stalled", "acme", "up", 2))
	if err := srv.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, store.ErrInDoubt) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("accept on a stopped server: %v, want ErrInDoubt (an ErrUnavailable)", err)
	}
	var m *store.Message
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m, err = s.GetMessage(ctx, "stalled"); err == nil {
			break
		}
	}
	if m == nil || len(m.Parts) != 2 {
		t.Fatalf("message accepted in doubt: %v, %v; want it written whole once the server resumed", m, err)
	}

	srv.Kill()
	err = s.AcceptMessage(ctx, storetest.NewMessage("gone", "acme", "up", 1))
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrInDoubt) {
		t.Fatalf("accept on a dead server: %v, want ErrUnavailable and not ErrInDoubt", err)
	}
}

// cutProxy forwards TCP between its clients and target, one connection to target per client.
// Armed with a marker, it forwards the first client write holding the marker and then closes
// that client's connections, both ways, as soon as the server answers it: the server ran the
// command and the client never hears so, as when a node dies between running a write and
// sending its reply.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	marker []byte // armed: cut after the reply to the write holding this; nil: forward all
	cuts   int
}

func startCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go p.serve()
	return p
}

func (p *cutProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *cutProxy) arm(marker string) {
	p.mu.Lock()
	p.marker = []byte(marker)
	p.mu.Unlock()
}

func (p *cutProxy) cutCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	s, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		return
	}
	defer s.Close()
	var cut atomic.Bool // this connection's write with the marker went to the server
	go func() {
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 && cut.Load() {
				s.Close() // the reply is dropped: the client sees its connection end
				return
			}
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.marker != nil && bytes.Contains(buf[:n], p.marker) {
				p.marker = nil
				p.cuts++
				cut.Store(true)
			}
			p.mu.Unlock()
			if _, err := s.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestClusterAcceptNotResent: on a Cluster, an accept whose script ran on the node but whose reply
// was lost (the connection ended first) is ErrInDoubt, and it is not sent again. go-redis's cluster
// client resends a command after a lost connection whatever MaxRetries says (up to MaxRedirects
// times); the resent accept then found its own first copy and reported ErrExists, and a resend that
// fails to dial (the node is dead) reported "not run" for a write that had run.
func TestClusterAcceptNotResent(t *testing.T) {
	px := startCutProxy(t)
	// The node announces the proxy's port, so the client's slot map sends every command through it.
	srv := redistest.Start(t, redistest.Options{AppendFsync: "always", Args: []string{"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf", "--cluster-announce-ip", "127.0.0.1", "--cluster-announce-port", strconv.Itoa(px.port())}})
	px.mu.Lock()
	px.target = srv.Addr()
	px.mu.Unlock()
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	srv.WaitClusterOK()
	s, err := Open(ctx, Config{Addrs: []string{"127.0.0.1:" + strconv.Itoa(px.port())}, Cluster: true, Options: storetest.Options()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.AcceptMessage(ctx, storetest.NewMessage("before", "acme", "up", 1)); err != nil {
		t.Fatalf("accept through the proxy: %v", err)
	}

	px.arm(acceptAll.Hash())
	err = s.AcceptMessage(ctx, storetest.NewMessage("cut", "acme", "up", 2))
	if px.cutCount() != 1 {
		t.Fatalf("the proxy cut %d connections, want 1", px.cutCount())
	}
	if !errors.Is(err, store.ErrInDoubt) {
		t.Errorf("accept that ran with its reply lost: %v, want ErrInDoubt", err)
	}
	m, gerr := s.GetMessage(ctx, "cut")
	if gerr != nil || len(m.Parts) != 2 {
		t.Fatalf("message whose accept ran: %v, %v; want it written with 2 parts", m, gerr)
	}
	// Both messages' parts, each queued once: 1 + 2.
	if n, err := s.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: "up"}); err != nil || n != 3 {
		t.Errorf("queue holds %d parts (%v), want 3", n, err)
	}
	// And the client goes on: the next accept is answered.
	if err := s.AcceptMessage(ctx, storetest.NewMessage("after", "acme", "up", 1)); err != nil {
		t.Errorf("accept after the cut: %v", err)
	}
}
