package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/smscsim"
)

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"fleet of simulated ESMEs", "-window", "-text-mix", "-outbind-listen", "Exit status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--text-mix", "emoji=3"},
		{"--bind-type", "sideways"},
		{"--registered-delivery", "300"},
		{"--messages", "-1"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}

// A bind that fails is exit status 1, and --json still prints the report.
func TestBindFailureJSON(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var out, errOut bytes.Buffer
	if code := run([]string{"--addr", addr, "--json", "--messages", "5"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut.String())
	}
	var r struct {
		Binds struct{ Asked, Bound, Failed int }
		Error string `json:"bind_error"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r.Binds.Asked != 1 || r.Binds.Failed != 1 || r.Error == "" {
		t.Errorf("report: %s", out.String())
	}
}

// With only --outbind-listen, smppload says where it waits; when no outbind comes it exits 1 saying so.
func TestOutbindListenNoneCame(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"--addr", "", "--outbind-listen", "127.0.0.1:0", "--duration", "100ms", "--messages", "0"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "waiting for outbinds on 127.0.0.1:") || !strings.Contains(errOut.String(), "no outbind came") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

// TestBinaryAgainstSmscsim runs the built smppload against the built smscsim: 1,000 messages over
// four binds asking for receipts (drawn DELIVRD or UNDELIV), the first 50 submissions throttled
// (a fault set over smscsim's HTTP API); smppload's --json report and smscsim's GET /stats count
// the same things.
func TestBinaryAgainstSmscsim(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	dir := t.TempDir() + string(filepath.Separator)
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if b, err := exec.Command(goTool, "build", "-o", dir, ".", "../smscsim").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	sim := exec.Command(filepath.Join(dir, "smscsim"), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--receipt-mix", "DELIVRD:3,UNDELIV:1", "--seed", "5")
	simErr, err := sim.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var simOut bytes.Buffer
	sim.Stdout = &simOut
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Process.Kill(); _ = sim.Wait() })
	smpp, api := simAddrs(t, simErr)
	base := "http://" + api

	const messages, throttled = 1000, 50
	resp, err := http.Post(base+"/faults", "application/json", strings.NewReader(fmt.Sprintf(`{"status":"ESME_RTHROTTLED","count":%d}`, throttled)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /faults: %s", resp.Status)
	}

	var out, errOut bytes.Buffer
	load := exec.Command(filepath.Join(dir, "smppload"), "--addr", smpp, "--binds", "4", "--messages", strconv.Itoa(messages),
		"--window", "20", "--registered-delivery", "1", "--wait-receipts", "10s", "--json", "--no-progress")
	load.Stdout, load.Stderr = &out, &errOut
	if err := load.Run(); err != nil {
		t.Fatalf("smppload: %v\n%s\n%s", err, errOut.String(), out.String())
	}
	var r struct {
		Binds    struct{ Asked, Bound, Failed int }
		Sent     int            `json:"sent"`
		Acked    int            `json:"acknowledged"`
		Errors   map[string]int `json:"errors_by_status"`
		Timeouts int            `json:"timeouts"`
		Lost     int            `json:"lost"`
		Receipts int            `json:"receipts"`
		ByState  map[string]int `json:"receipts_by_state"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	st := simStats(t, base)
	// Receipt states: smppload names them as SMPP 3.4 does, smscsim by their stat word.
	byState := map[string]int{}
	for word, n := range st.ReceiptStates {
		state, err := smscsim.ParseState(word)
		if err != nil {
			t.Fatal(err)
		}
		byState[state.String()] += n
	}
	switch {
	case r.Binds.Bound != 4 || st.BindsAccepted != 4:
		t.Errorf("binds %+v; smscsim accepted %d", r.Binds, st.BindsAccepted)
	case r.Sent != messages || st.Submits != r.Sent:
		t.Errorf("sent %d; smscsim received %d", r.Sent, st.Submits)
	case r.Acked != messages-throttled || st.Answered["ESME_ROK"] != r.Acked:
		t.Errorf("acknowledged %d; smscsim answered ESME_ROK %d", r.Acked, st.Answered["ESME_ROK"])
	case !maps.Equal(r.Errors, map[string]int{"ESME_RTHROTTLED": throttled}) || st.Answered["ESME_RTHROTTLED"] != throttled || len(st.Answered) != 2:
		t.Errorf("errors %v; smscsim answered %v", r.Errors, st.Answered)
	case r.Receipts != r.Acked || st.ReceiptsSent != r.Receipts || st.ReceiptsAnswered != r.Receipts:
		t.Errorf("receipts %d; smscsim sent %d, answered %d", r.Receipts, st.ReceiptsSent, st.ReceiptsAnswered)
	case !maps.Equal(r.ByState, byState) || len(byState) != 2:
		t.Errorf("receipts by state %v; smscsim sent %v", r.ByState, byState)
	case r.Timeouts+r.Lost != 0:
		t.Errorf("timeouts %d, lost %d", r.Timeouts, r.Lost)
	}
	if t.Failed() {
		t.Logf("smppload:\n%s", out.String())
	}

	// SIGINT: smscsim's closing table says the same.
	if err := sim.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := sim.Wait(); err != nil {
		t.Fatalf("smscsim exit: %v", err)
	}
	if !strings.Contains(simOut.String(), "submissions received") {
		t.Errorf("smscsim's closing table:\n%s", simOut.String())
	}
}

// simAddrs reads smscsim's JSON log until it says where it listens; the rest of the log is drained.
func simAddrs(t *testing.T, stderr io.Reader) (smpp, api string) {
	t.Helper()
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Message, SMPP, HTTP string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "smscsim listening" {
				found <- [2]string{line.SMPP, line.HTTP}
			}
		}
	}()
	select {
	case a := <-found:
		return a[0], a[1]
	case <-time.After(10 * time.Second):
		t.Fatal("smscsim did not say where it listens")
	}
	return "", ""
}

// simStats reads GET /stats once smscsim has the answer to every receipt it sent and no link is
// left bound: smppload's unbinds end on smscsim's side a moment after smppload exits.
func simStats(t *testing.T, base string) smscsim.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		var st smscsim.Stats
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Bound == 0 && st.ReceiptsAnswered+st.ReceiptsFailed == st.ReceiptsSent {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("smscsim did not settle: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
