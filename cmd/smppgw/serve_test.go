package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded"
)

// wait bounds every wait of these tests; all traffic is on loopback.
const wait = 10 * time.Second

// logTail collects the daemon's JSON log lines, and keeps everything it wrote (goroutine dumps too) in
// a file of the test's artifact directory: on failure the file's path and its last lines are logged
// (go test -artifacts keeps the file).
type logTail struct {
	w     *io.PipeWriter
	path  string // the file every byte written to w goes to
	lines chan map[string]any
	seen  []map[string]any // every line read so far, in order
	used  []bool           // used[i]: seen[i] was returned by until
}

// logTailLines is how many of its last lines a failed test logs of each log file.
const logTailLines = 60

func newLogTail(t *testing.T) *logTail {
	r, w := io.Pipe()
	f, err := os.CreateTemp(t.ArtifactDir(), "daemon-*.log")
	if err != nil {
		t.Fatal(err)
	}
	lt := &logTail{w: w, path: f.Name(), lines: make(chan map[string]any, 1000)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tee := io.TeeReader(r, f)
		sc := bufio.NewScanner(tee)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case lt.lines <- m:
				default: // the test reads what it needs; the rest may be dropped
				}
			}
		}
		// Never stop reading while the writer lives: a daemon blocked on a full stderr pipe would
		// stall as if the gateway had.
		_, _ = io.Copy(io.Discard, tee)
	}()
	t.Cleanup(func() {
		w.Close()
		<-done
		f.Close()
		if t.Failed() {
			lt.logLast(t)
		}
	})
	return lt
}

// logLast logs the file's path and its last logTailLines lines.
func (lt *logTail) logLast(t *testing.T) {
	b, err := os.ReadFile(lt.path)
	if err != nil {
		t.Logf("daemon log %s: %v", lt.path, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	from := max(0, len(lines)-logTailLines)
	t.Logf("daemon log %s (%d lines; kept with go test -artifacts), the last %d:\n%s", lt.path, len(lines), len(lines)-from, strings.Join(lines[from:], "\n"))
}

// until returns the first log line not returned before whose message contains msg. Lines read while
// waiting for another message are looked at too: the daemon's goroutines log in no fixed order (an
// upstream may be bound before "smppgw serving" is logged).
func (lt *logTail) until(t *testing.T, msg string) map[string]any {
	t.Helper()
	match := func(m map[string]any) bool {
		s, _ := m["message"].(string)
		return strings.Contains(s, msg)
	}
	for i, m := range lt.seen {
		if !lt.used[i] && match(m) {
			lt.used[i] = true
			return m
		}
	}
	timeout := time.After(wait)
	for {
		select {
		case m := <-lt.lines:
			lt.seen = append(lt.seen, m)
			lt.used = append(lt.used, match(m))
			if lt.used[len(lt.used)-1] {
				return m
			}
		case <-timeout:
			for _, m := range lt.seen {
				t.Logf("seen: %v", m)
			}
			t.Fatalf("no log line %q", msg)
		}
	}
}

// startServe runs serve with cfg (made valid by loadConfig's rules) and returns the address it listens
// on and a stop function that signals shutdown and waits for serve to return.
func startServe(t *testing.T, yaml string) (addr string, lt *logTail, stop func()) {
	t.Helper()
	cfg, err := loadConfig(writeConfig(t, yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Path == "" && len(cfg.Store.Redis.Addrs) == 0 {
		cfg.Store.Path = filepath.Join(t.TempDir(), "state", "smppgw.db") // a directory serve must create
	}
	if cfg.API.GRPCListen == "" {
		cfg.API.GRPCListen, cfg.API.HTTPListen = "127.0.0.1:0", "127.0.0.1:0" // never the fixed default ports
	}
	if cfg.Demo.Listen == defaultDemoListen {
		cfg.Demo.Listen = "127.0.0.1:0"
	}
	lt = newLogTail(t)
	log := zerolog.New(lt.w).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log) }()
	line := lt.until(t, "smppgw serving")
	listen, _ := line["listen"].([]any)
	if len(listen) != 1 {
		t.Fatalf("serving line %v", line)
	}
	addr = listen[0].(string)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(wait):
				t.Error("serve did not return after shutdown")
			}
		})
	}
	t.Cleanup(stop)
	return addr, lt, stop
}

// esme is an ESME bound to the daemon, recording the deliver_sm it gets.
type esme struct {
	session.BaseHandler
	s       *session.Session
	mu      sync.Mutex
	got     []*pdu.DeliverSM
	arrived chan struct{}
	closed  chan error
}

func (e *esme) HandleRequest(s *session.Session, req session.Request) {
	if d, ok := req.Body.(*pdu.DeliverSM); ok {
		e.mu.Lock()
		e.got = append(e.got, d)
		e.mu.Unlock()
		select {
		case e.arrived <- struct{}{}:
		default:
		}
	}
	_ = s.Respond(req, pdu.ESME_ROK, nil)
}

func (e *esme) HandleClosed(_ *session.Session, reason error) { e.closed <- reason }

func (e *esme) delivered() []*pdu.DeliverSM {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*pdu.DeliverSM(nil), e.got...)
}

func bindESME(t *testing.T, addr, id, pw string) (*esme, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	e := &esme{arrived: make(chan struct{}, 1), closed: make(chan error, 1)}
	e.s = session.New(c, session.Options{Role: session.RoleESME, Handler: e, Logger: zerolog.Nop()})
	t.Cleanup(func() { e.s.Close(); <-e.s.Done() })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err = e.s.Bind(ctx, session.BindTransceiver, session.BindParams{SystemID: id, Password: pw})
	return e, err
}

// startSim serves the upstream SMSC (internal/smscsim), taking binds from id/pw; after the first
// submission it sends one MO, to moDest.
func startSim(t *testing.T, id, pw, moDest string) *smscsim.Sim {
	t.Helper()
	var mo sync.Once
	sim, err := smscsim.Start("127.0.0.1:0", smscsim.Options{SystemID: "sim", Accounts: map[string]string{id: pw},
		OnSubmit: func(sim *smscsim.Sim, _ *pdu.SubmitSM) {
			mo.Do(func() {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), wait)
					defer cancel()
					_, _ = sim.SendMO(ctx, &pdu.DeliverSM{SourceAddr: "447700900999", DestinationAddr: moDest, ShortMessage: []byte("MO hello")})
				}()
			})
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func bcryptHash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestServeEndToEnd runs the daemon over real loopback TCP: an ESME binds to smppgw and submits;
// smppgw forwards to an upstream SMSC (simulated); the upstream's receipt comes back to the ESME under
// smppgw's message id, its MO reaches the account its destination routes to, an unroutable
// destination is refused, and shutdown unbinds the ESME.
func TestServeEndToEnd(t *testing.T) {
	sim := startSim(t, "gwup", "uppw", "12345")
	simAddr := sim.Addr()
	addr, lt, stop := startServe(t, fmt.Sprintf(`
log: {level: debug, format: json}
smpp:
  listen: 127.0.0.1:0
  accounts:
    - {system_id: acme, password_hash: %q}
upstreams:
  - name: sim
    address: %s
    system_id: gwup
    password: uppw
    reconnect_min: 50ms
    reconnect_max: 200ms
routing:
  routes:
    - {prefix: "44", upstream: sim}
  mo_routes:
    - {prefix: "123", account: acme}
  delivery_retry: 50ms
shutdown_timeout: 5s
`, bcryptHash(t, "s3cret"), simAddr))
	lt.logLine(t, "bound") // the upstream bind is up (maybe logged before "smppgw serving")

	e, err := bindESME(t, addr, "acme", "s3cret")
	if err != nil {
		t.Fatalf("bind to smppgw: %v", err)
	}
	if _, err := bindESME(t, addr, "acme", "wrong"); err == nil {
		t.Error("a wrong password was accepted")
	}

	const n = 5
	ids := map[string]bool{}
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		resp, err := e.s.Send(ctx, &pdu.SubmitSM{
			SourceAddr: "12345", DestinationAddr: fmt.Sprintf("4477009000%d", i), RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal,
			ShortMessage: []byte(fmt.Sprintf("message %d", i)),
		})
		cancel()
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		id := resp.Body.(*pdu.SubmitSMResp).MessageID
		if id == "" || strings.HasPrefix(id, "SIM") {
			t.Fatalf("submit %d answered with id %q, want smppgw's own", i, id)
		}
		ids[id] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	_, err = e.s.Send(ctx, &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: "33612345678", ShortMessage: []byte("x")})
	cancel()
	if !errors.Is(err, pdu.ESME_RINVDSTADR) {
		t.Errorf("unroutable submit: %v, want ESME_RINVDSTADR", err)
	}

	// n receipts and one MO come back.
	deadline := time.After(wait)
	for len(e.delivered()) < n+1 {
		select {
		case <-e.arrived:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the ESME got %d deliver_sm, want %d receipts and 1 MO", len(e.delivered()), n)
		}
	}
	receipts, mos := 0, 0
	for _, d := range e.delivered() {
		if !dlr.IsReceipt(d.EsmClass) {
			mos++
			if string(d.ShortMessage) != "MO hello" || d.DestinationAddr != "12345" {
				t.Errorf("MO %q to %s", d.ShortMessage, d.DestinationAddr)
			}
			continue
		}
		receipts++
		info, err := dlr.FromDeliverSM(d)
		if err != nil {
			t.Fatalf("receipt: %v", err)
		}
		if !ids[info.MessageID] || info.State != pdu.DELIVERED || info.Receipt.ID != info.MessageID {
			t.Errorf("receipt for %q (%v, text id %q): want one of smppgw's ids, DELIVERED", info.MessageID, info.State, info.Receipt.ID)
		}
		delete(ids, info.MessageID)
	}
	if receipts != n || mos != 1 {
		t.Errorf("%d receipts and %d MO, want %d and 1", receipts, mos, n)
	}
	submits, resps := len(sim.Submits()), sim.DeliverAnswers()
	if submits != n {
		t.Errorf("the upstream saw %d submit_sm, want %d", submits, n)
	}
	eventuallyOK := time.Now().Add(wait)
	for len(resps) < n+1 && time.Now().Before(eventuallyOK) {
		time.Sleep(10 * time.Millisecond)
		resps = sim.DeliverAnswers()
	}
	for _, st := range resps {
		if st != pdu.ESME_ROK {
			t.Errorf("smppgw answered the upstream's deliver_sm with %v", st)
		}
	}

	// SIGTERM's path: the daemon unbinds the ESME and stops.
	stop()
	select {
	case reason := <-e.closed:
		if !errors.Is(reason, session.ErrPeerUnbound) {
			t.Errorf("ESME session ended with %v, want the gateway's unbind", reason)
		}
	case <-time.After(wait):
		t.Error("the ESME was not unbound at shutdown")
	}
	lt.until(t, "smppgw stopped")
}

// TestServeDemoAccount: with no accounts and no upstreams configured, the demo account's password and
// the demo's API key are printed once and work, and the demo account's submission goes to the built-in
// simulator and comes back as a receipt; with the demo off, nothing is routed and a submission is
// refused ESME_RINVDSTADR.
func TestServeDemoAccount(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		demo       bool
	}{
		{"demo", "log: {format: json}\nsmpp:\n  listen: 127.0.0.1:0\n", true},
		{"demo disabled", "log: {format: json}\nsmpp:\n  listen: 127.0.0.1:0\ndemo: {disabled: true}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, lt, _ := startServe(t, tc.yaml)
			var id, pw, key string
			printed, keys := 0, 0
			for _, m := range lt.seen {
				s, _ := m["message"].(string)
				if strings.Contains(s, "demo account") {
					id, _ = m["system_id"].(string)
					pw, _ = m["password"].(string)
					printed++
				}
				if k, ok := m["api_key"].(string); ok {
					key = k
					keys++
				}
			}
			if printed != 1 || id != "demo" || len(pw) != 8 {
				t.Fatalf("demo account printed %d times, as %q/%q", printed, id, pw)
			}
			if tc.demo && (keys != 1 || !strings.HasPrefix(key, "sgw_")) || !tc.demo && keys != 0 {
				t.Errorf("API key printed %d times (%q)", keys, key)
			}
			e, err := bindESME(t, addr, id, pw)
			if err != nil {
				t.Fatalf("bind with the printed demo credentials: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			resp, err := e.s.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "447700900123", ShortMessage: []byte("x"),
				RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal})
			if !tc.demo {
				if !errors.Is(err, pdu.ESME_RINVDSTADR) {
					t.Errorf("submit with no routes: %v, want ESME_RINVDSTADR", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("submit to the demo: %v", err)
			}
			select {
			case <-e.arrived:
			case <-time.After(wait):
				t.Fatal("no receipt from the demo")
			}
			d := e.delivered()[0]
			info, err := dlr.FromDeliverSM(d)
			if err != nil || info.MessageID != resp.Body.(*pdu.SubmitSMResp).MessageID || info.State != pdu.DELIVERED {
				t.Errorf("receipt %q (%+v, %v) for %+v, want DELIVERED for its id", d.ShortMessage, info, err, resp)
			}
		})
	}
}

// TestServeSIGTERM runs the built binary: SIGTERM unbinds the bound ESME and the process exits 0.
func TestServeSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary (-short)")
	}
	bin := filepath.Join(t.TempDir(), "smppgw")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := writeConfig(t, "log: {format: json}\napi: {grpc_listen: '127.0.0.1:0', http_listen: '127.0.0.1:0'}\nstore: {path: "+fmt.Sprintf("%q", filepath.Join(t.TempDir(), "smppgw.db"))+"}\nsmpp:\n  listen: 127.0.0.1:0\n  accounts:\n    - {system_id: acme, password_hash: "+
		fmt.Sprintf("%q", bcryptHash(t, "s3cret"))+"}\nshutdown_timeout: 5s\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "SMPPGW_LOG_LEVEL=debug")
	lt := newLogTail(t)
	cmd.Stderr = lt.w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	line := lt.until(t, "smppgw serving")
	if line["level"] != "info" {
		t.Errorf("serving line %v", line)
	}
	listen, _ := line["listen"].([]any)
	if len(listen) != 1 {
		t.Fatalf("serving line %v", line)
	}
	e, err := bindESME(t, listen[0].(string), "acme", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-e.closed:
		if !errors.Is(reason, session.ErrPeerUnbound) {
			t.Errorf("ESME session ended with %v, want the gateway's unbind", reason)
		}
	case <-time.After(wait):
		t.Error("SIGTERM did not unbind the ESME")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("smppgw exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(wait):
		t.Fatal("smppgw did not exit after SIGTERM")
	}
	lt.until(t, "smppgw stopped")
}

// TestServeAPI: serve starts the API next to SMPP, on the gateway and its store: /readyz answers 200
// once the listeners are up and the store answers.
func TestServeAPI(t *testing.T) {
	_, lt, stop := startServe(t, "log: {format: json}\nsmpp:\n  listen: 127.0.0.1:0\n")
	var httpAddr string
	for _, m := range lt.seen {
		if s, _ := m["message"].(string); s == "api listening" {
			httpAddr, _ = m["http"].(string)
		}
	}
	if httpAddr == "" {
		httpAddr, _ = lt.until(t, "api listening")["http"].(string)
	}
	client := &http.Client{Timeout: wait}
	deadline := time.Now().Add(wait)
	for {
		resp, err := client.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz on %s: %v %v", httpAddr, resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
}

// TestServeDemoKeyRevoked: each start with the demo makes a new key and revokes the previous one; a
// start without it leaves none.
func TestServeDemoKeyRevoked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "smppgw.db")
	base := fmt.Sprintf("log: {format: json}\nsmpp: {listen: 127.0.0.1:0}\nstore: {path: %q}\n", path)
	run := func(yaml string) (key string) {
		_, lt, stop := startServe(t, yaml)
		for _, m := range lt.seen {
			if k, ok := m["api_key"].(string); ok {
				key = k
			}
		}
		stop()
		return key
	}
	stored := func() []string {
		st, err := embedded.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		keys, err := st.ListAPIKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		return ids
	}
	first, second := run(base), run(base)
	if first == "" || second == "" || first == second {
		t.Fatalf("keys of two starts: %q, %q", first, second)
	}
	if ids := stored(); len(ids) != 1 || !strings.HasPrefix(second, "sgw_"+ids[0]+"_") {
		t.Errorf("after two starts the store holds keys %v, want only the second's (%s)", ids, second)
	}
	if key := run(base + "demo: {disabled: true}\n"); key != "" {
		t.Errorf("a start without the demo printed key %q", key)
	}
	if ids := stored(); len(ids) != 0 {
		t.Errorf("after a start without the demo the store holds keys %v", ids)
	}
}
