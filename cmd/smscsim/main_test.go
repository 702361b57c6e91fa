package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/pdu"
)

func TestHelp(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errs); code != 0 || errs.Len() != 0 {
		t.Fatalf("--help: exit %d, stderr %q", code, errs.String())
	}
	for _, want := range []string{"-listen", "-http", "-system-id", "-password", "-receipt-delay", "-receipt-mix",
		"-mo-every", "-mo-text", "-throttle-above", "-drop-every", "-delay", "-log-level", "POST   /faults", "GET    /healthz"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--bogus"},
		{"extra"},
		{"--receipt-mix", "DELIVRD"},
		{"--receipt-mix", "GONE:1"},
		{"--log-level", "loud"},
		{"--password", "pw"},
		{"--drop-every", "-1"},
		{"--throttle-above", "-5"},
		{"--delay", "-1s"},
	} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), args, &out, &errs); code != 2 || !strings.Contains(errs.String(), "smscsim --help") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs.String())
		}
	}
}

// TestRun runs the simulator in-process until its context ends and checks the closing table.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	logs := newLogWatch()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "debug"}, &out, logs)
	}()
	smpp, api := logs.addrs(t)
	p := smpptest.Dial(t, smpp)
	p.Request(&pdu.BindTransmitter{SystemID: "any", Password: "thing", InterfaceVersion: 0x34})
	p.Expect(pdu.BindTransmitterRespID, pdu.ESME_ROK)
	if code := get(t, "http://"+api+"/healthz", nil); code != 200 {
		t.Errorf("healthz %d", code)
	}
	for range 3 {
		p.Request(&pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("hi")})
		p.Expect(pdu.SubmitSMRespID, pdu.ESME_ROK)
	}
	p.Conn.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	if table := parseTable(out.String()); table["submissions received"] != 3 || table["binds accepted"] != 1 {
		t.Errorf("closing table %v:\n%s", table, out.String())
	}
}

// TestBinary builds the command, runs it, drives it over HTTP and SMPP and checks that its closing
// table counts what it was sent.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "smscsim")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if b, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	var stdout bytes.Buffer
	logs := newLogWatch()
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--system-id", "gw", "--password", "pw",
		"--receipt-mix", "DELIVRD:3,UNDELIV:1", "--seed", "9")
	cmd.Stdout, cmd.Stderr = &stdout, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	smpp, api := logs.addrs(t)
	base := "http://" + api

	bad := smpptest.Dial(t, smpp)
	bad.Request(&pdu.BindTransceiver{SystemID: "gw", Password: "nope", InterfaceVersion: 0x34})
	bad.Expect(pdu.BindTransceiverRespID, pdu.ESME_RINVPASWD)

	p := smpptest.Dial(t, smpp)
	p.Request(&pdu.BindTransceiver{SystemID: "gw", Password: "pw", InterfaceVersion: 0x34})
	p.Expect(pdu.BindTransceiverRespID, pdu.ESME_ROK)

	const ok, throttled = 20, 4
	if code := post(t, base+"/faults", fmt.Sprintf(`{"status":"ESME_RTHROTTLED","count":%d}`, throttled)); code != 200 {
		t.Fatalf("POST /faults: %d", code)
	}
	for i := range ok + throttled {
		p.Request(&pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("m" + strconv.Itoa(i)),
			RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal})
	}
	answers := map[pdu.CommandStatus]int{}
	receipts := 0
	for answers[pdu.ESME_ROK]+answers[pdu.ESME_RTHROTTLED] < ok+throttled || receipts < ok {
		h, _ := p.Read()
		switch h.ID {
		case pdu.SubmitSMRespID:
			answers[h.Status]++
		case pdu.DeliverSMID:
			receipts++
			p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
		}
	}
	if answers[pdu.ESME_ROK] != ok || answers[pdu.ESME_RTHROTTLED] != throttled {
		t.Errorf("answers %v", answers)
	}

	moDone := make(chan int, 1)
	go func() { moDone <- post(t, base+"/mo", `{"from":"447700900555","to":"12345","text":"STOP"}`) }()
	h, _ := p.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
	if code := <-moDone; code != 200 {
		t.Errorf("POST /mo: %d", code)
	}
	var binds []struct{ ID uint64 }
	get(t, base+"/binds", &binds)
	if len(binds) != 1 {
		t.Fatalf("binds %v", binds)
	}
	if code := post(t, fmt.Sprintf("%s/binds/%d/close", base, binds[0].ID+1000), ""); code != 404 {
		t.Errorf("closing an unknown bind: %d", code)
	}
	var st struct {
		Submits      int            `json:"submits"`
		Answered     map[string]int `json:"answered"`
		ReceiptsSent int            `json:"receipts_sent"`
	}
	get(t, base+"/stats", &st)
	if st.Submits != ok+throttled || st.Answered["ESME_ROK"] != ok || st.ReceiptsSent != ok {
		t.Errorf("stats %+v", st)
	}

	// SIGINT: the link is unbound, then the closing table is printed.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	h, _ = p.Expect(pdu.UnbindID, pdu.ESME_ROK)
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.UnbindResp{})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logs.String())
	}
	table := parseTable(stdout.String())
	for name, want := range map[string]int{"binds accepted": 1, "binds refused": 1, "submissions received": ok + throttled,
		"answered ESME_ROK": ok, "answered ESME_RTHROTTLED": throttled, "receipts sent": ok, "MO sent": 1} {
		if table[name] != want {
			t.Errorf("closing table: %s = %d, want %d\n%s", name, table[name], want, stdout.String())
		}
	}
	if table["stat DELIVRD"]+table["stat UNDELIV"] != ok {
		t.Errorf("closing table: receipt states do not add up\n%s", stdout.String())
	}
}

// parseTable reads the closing table: the first line of each name wins (receipts and MO repeat
// "answered ESME_ROK" under their heading).
func parseTable(s string) map[string]int {
	out := map[string]int{}
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			continue
		}
		name := strings.Join(f[:len(f)-1], " ")
		if _, seen := out[name]; !seen {
			out[name] = n
		}
	}
	return out
}

func get(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func post(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// logWatch is the command's stderr: it keeps the logs and hands over the addresses it listens on.
type logWatch struct {
	w     *io.PipeWriter
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan [2]string
}

func newLogWatch() *logWatch {
	r, w := io.Pipe()
	lw := &logWatch{w: w, ready: make(chan [2]string, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var line struct{ Message, SMPP, HTTP string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "smscsim listening" {
				lw.ready <- [2]string{line.SMPP, line.HTTP}
			}
		}
	}()
	return lw
}

func (lw *logWatch) Write(b []byte) (int, error) {
	lw.mu.Lock()
	lw.buf.Write(b)
	lw.mu.Unlock()
	return lw.w.Write(b)
}

func (lw *logWatch) String() string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.buf.String()
}

func (lw *logWatch) addrs(t *testing.T) (smpp, api string) {
	t.Helper()
	select {
	case a := <-lw.ready:
		return a[0], a[1]
	case <-time.After(smpptest.Wait):
		t.Fatal("smscsim did not say where it listens")
	}
	return "", ""
}
