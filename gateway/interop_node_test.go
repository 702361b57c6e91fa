package gateway

// Interop with a third-party SMPP implementation: the npm "smpp" package (pinned in
// testdata/node/package-lock.json), driven by the scripts in testdata/node. Node and npm must be on
// PATH (.ci/run installs them and runs npm ci); without them these tests fail, or skip under -short.
// All traffic stays on 127.0.0.1 and every run is bounded in count and time.
//
// This file is the harness: the node scripts as an ESME and as an SMSC; interop_test.go has the tests.

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
	"github.com/smppgw/smppgw/pdu"
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
	if err := c.awaitBound(ctx); err != nil {
		t.Fatalf("our Client did not bind to the node server: %v (%+v)\nnode stderr: %s", err, c.Status(), ns.stderr.String())
	}
	return c
}
