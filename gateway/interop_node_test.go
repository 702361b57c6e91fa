package gateway

// Interop with a third-party SMPP implementation: the npm "smpp" package (pinned in
// testdata/node/package-lock.json), driven by the scripts in testdata/node. Node and npm must be on
// PATH (.ci/run installs them and runs npm ci); without them these tests fail, or skip under -short.
// All traffic stays on 127.0.0.1 and every run is bounded in count and time.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

const (
	nodeDir = "testdata/node"
	// nodeRunWait bounds one node script run, start-up included.
	nodeRunWait = 30 * time.Second
	// nodeMessages is how many messages each interop run submits.
	nodeMessages = 20
)

var nodeSetup struct {
	once sync.Once
	err  error
}

// needNode returns the path of node once the interop peers are installed, running npm ci in
// testdata/node when node_modules is missing. Missing node or npm fails the test (skips with -short).
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if testing.Short() {
			t.Skip("node not on PATH (-short): skipping the interop test against the npm smpp package")
		}
		t.Fatal("node is not on PATH: the interop tests need Node.js and npm " +
			"(apt-get install -y nodejs npm; .ci/run does this), or run with -short to skip them")
	}
	nodeSetup.once.Do(func() {
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "smpp", "package.json")); err == nil {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			nodeSetup.err = errors.New("node_modules is missing in gateway/testdata/node and npm is not on PATH to install it " +
				"(apt-get install -y npm, then npm ci there)")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = nodeDir
		if out, err := cmd.CombinedOutput(); err != nil {
			nodeSetup.err = fmt.Errorf("npm ci in %s: %v\n%s", nodeDir, err, out)
		}
	})
	if nodeSetup.err != nil {
		if testing.Short() {
			t.Skipf("interop peers unavailable (-short): %v", nodeSetup.err)
		}
		t.Fatal(nodeSetup.err)
	}
	return node
}

// nodeClientSummary is what testdata/node/client.js prints.
type nodeClientSummary struct {
	BindStatus *uint32 `json:"bind_status"`
	Submitted  int     `json:"submitted"`
	Responses  []struct {
		Seq       uint32 `json:"seq"`
		Status    uint32 `json:"status"`
		MessageID string `json:"message_id"`
	} `json:"responses"`
	Receipts []struct {
		ReceiptedMessageID string `json:"receipted_message_id"`
		MessageState       *int   `json:"message_state"`
		Stat               string `json:"stat"`
		SourceAddr         string `json:"source_addr"`
		DestinationAddr    string `json:"destination_addr"`
		Text               string `json:"text"`
	} `json:"receipts"`
	MO []struct {
		SourceAddr      string `json:"source_addr"`
		DestinationAddr string `json:"destination_addr"`
		Text            string `json:"text"`
	} `json:"mo"`
	UnbindStatus *int     `json:"unbind_status"`
	TimedOut     bool     `json:"timed_out"`
	Errors       []string `json:"errors"`
}

// runNodeClient runs client.js against addr and returns its summary.
func runNodeClient(t *testing.T, node, addr string, args ...string) nodeClientSummary {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok || host != "127.0.0.1" {
		t.Fatalf("interop address %q is not on 127.0.0.1", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeRunWait)
	defer cancel()
	argv := append([]string{"client.js", "--host", host, "--port", port,
		"--timeout-ms", fmt.Sprint((nodeRunWait - 5*time.Second).Milliseconds())}, args...)
	cmd := exec.CommandContext(ctx, node, argv...)
	cmd.Dir = nodeDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var s nodeClientSummary
	line := lastLine(stdout.String())
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		t.Fatalf("node client: %v; no summary (%v)\nstdout: %s\nstderr: %s", runErr, err, stdout.String(), stderr.String())
	}
	if runErr != nil {
		t.Errorf("node client exited with %v\nsummary: %s\nstderr: %s", runErr, line, stderr.String())
	}
	return s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestInteropNodeClientToServer: an ESME made with the npm smpp package binds to our Server as
// transceiver, submits nodeMessages messages asking for receipts, and gets a submit_sm_resp with our
// message id for each and a receipt deliver_sm carrying that id, through the gateway, its embedded
// store and a simulated upstream that saw every message.
func TestInteropNodeClientToServer(t *testing.T) {
	node := needNode(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	simAddr := sim.Addr()
	_, addr, _ := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "nodeesme", "pw123")},
		Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
		Routing:   RouterConfig{Routes: []Route{{Prefix: "4477", Upstream: "sim"}}},
	}, newEmbedded(t))

	s := runNodeClient(t, node, addr, "--system-id", "nodeesme", "--password", "pw123",
		"--count", fmt.Sprint(nodeMessages), "--dest", "4477009000", "--receipts")
	if s.BindStatus == nil || *s.BindStatus != 0 {
		t.Fatalf("node bind status %v, want 0; errors %v", s.BindStatus, s.Errors)
	}
	if s.TimedOut || len(s.Responses) != nodeMessages {
		t.Fatalf("node got %d of %d submit_sm_resp (timed out %v)", len(s.Responses), nodeMessages, s.TimedOut)
	}
	ids := map[string]bool{}
	for _, resp := range s.Responses {
		if resp.Status != 0 || len(resp.MessageID) != 16 {
			t.Errorf("submit_sm_resp seq %d: status %#x id %q, want ESME_ROK and a 16-digit id", resp.Seq, resp.Status, resp.MessageID)
		}
		ids[resp.MessageID] = true
	}
	if len(ids) != nodeMessages {
		t.Errorf("%d distinct message ids for %d messages", len(ids), nodeMessages)
	}
	if len(s.Receipts) != nodeMessages {
		t.Fatalf("node got %d receipts, want %d", len(s.Receipts), nodeMessages)
	}
	for _, rc := range s.Receipts {
		if !ids[rc.ReceiptedMessageID] || rc.Stat != "DELIVRD" || rc.MessageState == nil || *rc.MessageState != int(pdu.DELIVERED) {
			t.Errorf("receipt %+v: want one of our ids, DELIVRD, message_state 2", rc)
		}
		if !strings.Contains(rc.Text, "id:"+rc.ReceiptedMessageID) || rc.DestinationAddr != "12345" {
			t.Errorf("receipt text %q to %q: want our id in the text, addressed to the source 12345", rc.Text, rc.DestinationAddr)
		}
	}
	if s.UnbindStatus == nil || *s.UnbindStatus != 0 {
		t.Errorf("unbind status %v, want 0", s.UnbindStatus)
	}
	seen := sim.Submits()
	if len(seen) != nodeMessages {
		t.Fatalf("upstream saw %d messages, want %d", len(seen), nodeMessages)
	}
	dests := map[string]bool{}
	for _, sm := range seen {
		dests[sm.DestinationAddr] = true
		if !strings.HasPrefix(string(sm.ShortMessage), "node interop message ") || sm.SourceAddr != "12345" || sm.RegisteredDelivery != pdu.RegisteredDeliveryReceiptFinal {
			t.Errorf("upstream got %q from %q registered_delivery %d", sm.ShortMessage, sm.SourceAddr, sm.RegisteredDelivery)
		}
	}
	for i := range nodeMessages {
		if d := fmt.Sprintf("4477009000%d", i); !dests[d] {
			t.Errorf("no message to %s reached the upstream", d)
		}
	}

	// A wrong password is refused with a bind error status, not accepted.
	bad := runNodeClientAllowFail(t, node, addr, "--system-id", "nodeesme", "--password", "wrong", "--count", "1")
	if bad.BindStatus == nil || *bad.BindStatus != uint32(pdu.ESME_RINVPASWD) {
		t.Errorf("bind with a wrong password: status %v, want ESME_RINVPASWD", bad.BindStatus)
	}
}

// runNodeClientAllowFail is runNodeClient for runs expected to end with a non-zero exit code.
func runNodeClientAllowFail(t *testing.T, node, addr string, args ...string) nodeClientSummary {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), nodeRunWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"client.js", "--host", host, "--port", port, "--timeout-ms", "10000"}, args...)...)
	cmd.Dir = nodeDir
	out, _ := cmd.Output()
	var s nodeClientSummary
	if err := json.Unmarshal([]byte(lastLine(string(out))), &s); err != nil {
		t.Fatalf("node client: no summary (%v): %s", err, out)
	}
	return s
}

// nodeServer is testdata/node/server.js running on a free 127.0.0.1 port.
type nodeServer struct {
	addr    string
	cmd     *exec.Cmd
	lines   chan string
	stderr  *bytes.Buffer
	waitErr chan error
}

// startNodeServer starts server.js and waits for it to listen.
func startNodeServer(t *testing.T, node string, args ...string) *nodeServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeRunWait)
	argv := append([]string{"server.js", "--host", "127.0.0.1", "--port", "0",
		"--timeout-ms", fmt.Sprint((nodeRunWait - 5*time.Second).Milliseconds())}, args...)
	cmd := exec.CommandContext(ctx, node, argv...)
	cmd.Dir = nodeDir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ns := &nodeServer{cmd: cmd, lines: make(chan string, 16), stderr: &bytes.Buffer{}, waitErr: make(chan error, 1)}
	cmd.Stderr = ns.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			ns.lines <- sc.Text()
		}
		close(ns.lines)
		ns.waitErr <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel() // kills it if still running
		<-ns.waitErr
	})
	var first struct {
		Event string `json:"event"`
		Port  int    `json:"port"`
	}
	select {
	case l, ok := <-ns.lines:
		if !ok || json.Unmarshal([]byte(l), &first) != nil || first.Event != "listening" {
			t.Fatalf("node server did not start: %q\nstderr: %s", l, ns.stderr.String())
		}
	case <-time.After(nodeRunWait):
		t.Fatal("node server did not start in time")
	}
	ns.addr = fmt.Sprintf("127.0.0.1:%d", first.Port)
	return ns
}

// nodeServerSummary is what testdata/node/server.js prints once it has seen what it expects.
type nodeServerSummary struct {
	Event string `json:"event"`
	Binds []struct {
		Command  string `json:"command"`
		SystemID string `json:"system_id"`
		Status   uint32 `json:"status"`
	} `json:"binds"`
	Submits []struct {
		MessageID          string `json:"message_id"`
		SourceAddr         string `json:"source_addr"`
		DestinationAddr    string `json:"destination_addr"`
		RegisteredDelivery int    `json:"registered_delivery"`
		Text               string `json:"text"`
	} `json:"submits"`
	DeliverSent int `json:"deliver_sent"`
	DeliverResp []struct {
		Kind   string `json:"kind"`
		Status uint32 `json:"status"`
	} `json:"deliver_resp"`
	TimedOut bool `json:"timed_out"`
}

func (ns *nodeServer) summary(t *testing.T) nodeServerSummary {
	t.Helper()
	for {
		select {
		case l, ok := <-ns.lines:
			if !ok {
				t.Fatalf("node server ended without a summary\nstderr: %s", ns.stderr.String())
			}
			var s nodeServerSummary
			if json.Unmarshal([]byte(l), &s) == nil && s.Event == "summary" {
				return s
			}
		case <-time.After(nodeRunWait):
			t.Fatal("no summary from the node server in time")
		}
	}
}

// deliverRecorder is a DeliverHandler that records what an upstream delivers and answers ESME_ROK.
type deliverRecorder struct {
	mu  sync.Mutex
	got []*pdu.DeliverSM
}

func (d *deliverRecorder) HandleDeliver(_ string, req session.Request, respond func(pdu.CommandStatus)) {
	if dm, ok := req.Body.(*pdu.DeliverSM); ok {
		d.mu.Lock()
		d.got = append(d.got, cloneDeliver(dm))
		d.mu.Unlock()
		respond(pdu.ESME_ROK)
		return
	}
	respond(pdu.ESME_RINVCMDID)
}

func (d *deliverRecorder) all() []*pdu.DeliverSM {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*pdu.DeliverSM(nil), d.got...)
}

// startNodeUpstreamClient starts our Client against the node server and waits for its bind. wire, if
// set, runs between NewClient and Start: the node server sends its MO as soon as the bind is up.
func startNodeUpstreamClient(t *testing.T, ns *nodeServer, deliver DeliverHandler, wire func(*Client)) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{
		Name: "node", Address: ns.addr, SystemID: "gwclient", Password: "pw123",
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
	}, deliver, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if wire != nil {
		wire(c)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), sessiontest.Wait)
		defer cancel()
		c.Unbind(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), nodeRunWait)
	defer cancel()
	if err := c.AwaitBound(ctx); err != nil {
		t.Fatalf("our Client did not bind to the node server: %v (%+v)\nnode stderr: %s", err, c.Status(), ns.stderr.String())
	}
	return c
}

// TestInteropClientToNodeServer: our Client binds to an SMSC made with the npm smpp package, submits
// nodeMessages messages asking for receipts, gets the node server's message id for each, and receives
// its deliver_sm: one MO and a receipt per message, each answered ESME_ROK.
func TestInteropClientToNodeServer(t *testing.T) {
	node := needNode(t)
	ns := startNodeServer(t, node, "--system-id", "gwclient", "--password", "pw123",
		"--expect", fmt.Sprint(nodeMessages), "--mo-dest", "12345")
	rec := &deliverRecorder{}
	c := startNodeUpstreamClient(t, ns, rec, nil)

	type outcome struct {
		id  string
		err error
	}
	outcomes := make(chan outcome, nodeMessages)
	for i := range nodeMessages {
		sm := &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: fmt.Sprintf("4477009000%d", i),
			RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte(fmt.Sprintf("go client message %d", i))}
		done := func(resp session.Response, err error) {
			id := ""
			if r, ok := resp.Body.(*pdu.SubmitSMResp); ok {
				id = r.MessageID
			}
			outcomes <- outcome{id, err}
		}
		if err := c.Submit(sessiontest.Ctx(t), sm, done); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	upIDs := map[string]bool{}
	for range nodeMessages {
		select {
		case o := <-outcomes:
			if o.err != nil || !strings.HasPrefix(o.id, "node-") {
				t.Errorf("submission outcome %q, %v; want a node-N id", o.id, o.err)
			}
			upIDs[o.id] = true
		case <-time.After(nodeRunWait):
			t.Fatalf("only %d of %d submissions answered", len(upIDs), nodeMessages)
		}
	}

	s := ns.summary(t)
	if s.TimedOut || len(s.Binds) != 1 || s.Binds[0].Command != "bind_transceiver" || s.Binds[0].Status != 0 {
		t.Errorf("node server binds %+v (timed out %v), want one transceiver bind accepted", s.Binds, s.TimedOut)
	}
	if len(s.Submits) != nodeMessages {
		t.Fatalf("node server saw %d submit_sm, want %d", len(s.Submits), nodeMessages)
	}
	for i, sub := range s.Submits {
		if !upIDs[sub.MessageID] || sub.SourceAddr != "12345" || sub.RegisteredDelivery != pdu.RegisteredDeliveryReceiptFinal ||
			!strings.HasPrefix(sub.Text, "go client message ") || !strings.HasPrefix(sub.DestinationAddr, "4477009000") {
			t.Errorf("node submit %d = %+v", i, sub)
		}
	}
	if s.DeliverSent != nodeMessages+1 || len(s.DeliverResp) != nodeMessages+1 {
		t.Errorf("node sent %d deliver_sm and got %d answers, want %d", s.DeliverSent, len(s.DeliverResp), nodeMessages+1)
	}
	for _, r := range s.DeliverResp {
		if r.Status != 0 {
			t.Errorf("our Client answered a node %s deliver_sm with %#x", r.Kind, r.Status)
		}
	}

	receipts, mos := 0, 0
	for _, d := range rec.all() {
		if !dlr.IsReceipt(d.EsmClass) {
			mos++
			if d.DestinationAddr != "12345" || string(d.ShortMessage) != "mo from node" {
				t.Errorf("MO to %s: %q", d.DestinationAddr, d.ShortMessage)
			}
			continue
		}
		receipts++
		info, err := dlr.FromDeliverSM(d)
		if err != nil || !upIDs[info.MessageID] || info.State != pdu.DELIVERED || info.Receipt.Stat != "DELIVRD" {
			t.Errorf("receipt %+v, %v: want one of the node ids, DELIVERED", info, err)
		}
	}
	if receipts != nodeMessages || mos != 1 {
		t.Errorf("our Client received %d receipts and %d MO, want %d and 1", receipts, mos, nodeMessages)
	}
}

// TestInteropNodeThroughGateway: the whole path with third-party peers at both ends: a node ESME
// submits to our Server, the Router hands the messages to our Client bound to a node SMSC, and the
// node SMSC's receipts and MO come back to the node ESME as deliver_sm carrying smppgw's ids.
func TestInteropNodeThroughGateway(t *testing.T) {
	node := needNode(t)
	ns := startNodeServer(t, node, "--system-id", "gwclient", "--password", "pw123",
		"--expect", fmt.Sprint(nodeMessages), "--mo-dest", "12345")
	g, addr, _ := startGateway(t, Config{
		Accounts: []Account{testAccount(t, "nodeesme", "pw123")},
		Upstreams: []ClientConfig{{Name: "node", Address: ns.addr, SystemID: "gwclient", Password: "pw123",
			ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond}},
		Routing: RouterConfig{
			Routes:   []Route{{Prefix: "44", Upstream: "node"}},
			MORoutes: []MORoute{{Prefix: "12345", Account: "nodeesme"}},
		},
	}, newEmbedded(t))
	sessiontest.Eventually(t, "the bind to the node SMSC", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
	// The MO may reach the gateway before the node ESME binds: the store holds it for the account.

	s := runNodeClient(t, node, addr, "--system-id", "nodeesme", "--password", "pw123",
		"--count", fmt.Sprint(nodeMessages), "--dest", "4477009000", "--receipts", "--expect-mo", "1")
	if s.TimedOut || len(s.Responses) != nodeMessages {
		t.Fatalf("node ESME got %d of %d responses (timed out %v, errors %v)", len(s.Responses), nodeMessages, s.TimedOut, s.Errors)
	}
	ids := map[string]bool{}
	for _, resp := range s.Responses {
		if resp.Status != 0 || strings.HasPrefix(resp.MessageID, "node-") {
			t.Errorf("submit_sm_resp %+v: want ESME_ROK with smppgw's id, not the upstream's", resp)
		}
		ids[resp.MessageID] = true
	}
	if len(s.Receipts) != nodeMessages || len(s.MO) != 1 {
		t.Fatalf("node ESME got %d receipts and %d MO, want %d and 1", len(s.Receipts), len(s.MO), nodeMessages)
	}
	for _, rc := range s.Receipts {
		if !ids[rc.ReceiptedMessageID] || rc.Stat != "DELIVRD" || !strings.Contains(rc.Text, "id:"+rc.ReceiptedMessageID) {
			t.Errorf("receipt %+v: want smppgw's id in the TLV and the text, DELIVRD", rc)
		}
		delete(ids, rc.ReceiptedMessageID)
	}
	if s.MO[0].Text != "mo from node" || s.MO[0].DestinationAddr != "12345" {
		t.Errorf("MO %+v", s.MO[0])
	}
	up := ns.summary(t)
	if len(up.Submits) != nodeMessages {
		t.Errorf("node SMSC saw %d submit_sm, want %d", len(up.Submits), nodeMessages)
	}
	for _, d := range up.DeliverResp {
		if d.Status != 0 {
			t.Errorf("smppgw answered the node SMSC's %s with %#x", d.Kind, d.Status)
		}
	}
}
