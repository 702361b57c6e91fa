package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
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

	pid := serverPID(t, c)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	err = s.AcceptMessage(ctx, storetest.NewMessage("stalled", "acme", "up", 2))
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
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

func serverPID(t *testing.T, c *goredis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatal("no process_id in INFO server")
	return 0
}
