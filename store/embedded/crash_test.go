package embedded

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

const crashChildEnv = "EMBEDDED_CRASH_CHILD"

// TestCrashKeepsAcknowledged SIGKILLs a process accepting and settling messages under
// concurrency, several times, and checks after each kill that every message whose
// AcceptMessage returned is there, settled or still queued, and every settle that returned
// is there too.
func TestCrashKeepsAcknowledged(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild(os.Getenv(crashChildEnv), os.Getenv("EMBEDDED_CRASH_ROUND"))
		return
	}
	crashRounds(t, "TestCrashKeepsAcknowledged", crashChildEnv, 4)
}

// crashRounds runs test (this test binary's test of that name, as a child with childEnv set to
// the store's path) rounds times, SIGKILLs it after a number of settles that differs per round
// (or after 10 s), and checks after each kill that every message the child reported accepted
// ("A id") is there, settled or still claimable from queue "up", and every settle it reported
// ("S id") is there too.
func crashRounds(t *testing.T, test, childEnv string, rounds int) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	accepted, settled := map[string]bool{}, map[string]bool{}
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+path, fmt.Sprint("EMBEDDED_CRASH_ROUND=", round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a number of settles that differs per round, or after 10 s.
		killAt := 300 + 700*round
		timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Signal(syscall.SIGKILL) })
		sc := bufio.NewScanner(out)
		settles := 0
		for sc.Scan() {
			kind, id, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				continue
			}
			switch kind {
			case "A":
				accepted[id] = true
			case "S":
				settled[id] = true
				if settles++; settles == killAt {
					cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}
		timer.Stop()
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child ended by itself (%v) before the kill", round, err)
		}

		s, err := Open(path, storetest.Options())
		if err != nil {
			t.Fatalf("round %d: reopen after the kill: %v", round, err)
		}
		queued := map[string]bool{}
		for {
			got, err := s.ClaimParts(ctx, "up", "check", 1000, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			for _, p := range got {
				queued[p.MessageID] = true
			}
		}
		var lost, lostSettle, requeued, unacked int
		for id := range accepted {
			m, err := s.GetMessage(ctx, id)
			if err != nil {
				lost++
				continue
			}
			done := m.Parts[0].UpstreamID != ""
			switch {
			case settled[id] && !done:
				lostSettle++
			case !done && !queued[id]:
				lost++ // neither settled nor claimable: nobody would ever send it
			case !done:
				requeued++
			}
		}
		for id := range queued {
			if !accepted[id] {
				unacked++ // accepted durably, killed before AcceptMessage's caller was told
			}
		}
		t.Logf("round %d: %d accepted and %d settled so far; after the kill %d lost, %d settles lost, %d acknowledged still queued, %d queued but never acknowledged",
			round, len(accepted), len(settled), lost, lostSettle, requeued, unacked)
		if lost != 0 || lostSettle != 0 {
			t.Errorf("round %d: %d acknowledged messages lost, %d acknowledged settles lost", round, lost, lostSettle)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(settled) == 0 {
		t.Fatal("no settle acknowledged in any round: the child did no work")
	}
}

// crashChild accepts messages with 16 writers and settles them with 4 claimers, printing
// "A id" when AcceptMessage returned nil and "S id" when Settle did, until it is killed
// (bounded: 60,000 messages or 30 s).
func crashChild(path, round string) {
	s, err := Open(path, storetest.Options())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	say := func(kind, id string) {
		mu.Lock()
		fmt.Fprintln(w, kind, id)
		w.Flush()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60000 / 16 {
				id := fmt.Sprintf("r%s-%d-%d", round, g, i)
				if err := s.AcceptMessage(ctx, storetest.NewMessage(id, "acct", "up", 1)); err != nil {
					return
				}
				say("A", id)
			}
		}()
	}
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				got, err := s.ClaimParts(ctx, "up", fmt.Sprint("c", c), 32, 50*time.Millisecond)
				if err != nil {
					return
				}
				for _, p := range got {
					u := store.PartUpdate{MessageID: p.MessageID, Part: p.Part, Upstream: "up", UpstreamID: "U" + p.MessageID, Status: pdu.ENROUTE}
					if _, _, err := s.Settle(ctx, p.Lease, u); err == nil {
						say("S", p.MessageID)
					}
				}
			}
		}()
	}
	wg.Wait()
	os.Exit(0) // not killed in time: the parent reports it
}
