package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

// connCounter is the upstream's listener, counting the gateway's connections over time: how many
// were accepted, how many are open now, and the most open at once.
type connCounter struct {
	net.Listener
	mu       sync.Mutex
	accepted int
	open     int
	most     int
	times    []time.Time // when each was accepted
}

func (c *connCounter) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.accepted++
	c.open++
	c.most = max(c.most, c.open)
	c.times = append(c.times, time.Now())
	c.mu.Unlock()
	return &countedConn{Conn: conn, c: c}, nil
}

func (c *connCounter) counts() (accepted, open, most int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted, c.open, c.most
}

type countedConn struct {
	net.Conn
	c    *connCounter
	once sync.Once
}

func (cc *countedConn) Close() error {
	cc.once.Do(func() {
		cc.c.mu.Lock()
		cc.c.open--
		cc.c.mu.Unlock()
	})
	return cc.Conn.Close()
}

// instance is one `smppgw serve` process of the test.
type instance struct {
	name      string
	cmd       *exec.Cmd
	smpp, api string
	exited    chan struct{} // closed once the process has been waited for
}

func startInstance(t *testing.T, bin, name, yaml string) *instance {
	t.Helper()
	cfg := writeConfig(t, yaml)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg)
	cmd.Env = cleanEnv()
	lt := newLogTail(t)
	cmd.Stderr = lt.w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in := &instance{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(in.exited) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-in.exited:
		case <-time.After(wait):
			t.Errorf("instance %s did not exit", name)
		}
	})
	in.api, _ = lt.until(t, "api listening")["http"].(string)
	listen, _ := lt.until(t, "smppgw serving")["listen"].([]any)
	if len(listen) != 1 || in.api == "" {
		t.Fatalf("instance %s: smpp %v, api %q", name, listen, in.api)
	}
	in.smpp = listen[0].(string)
	return in
}

type clusterView struct {
	Instance  string                  `json:"instance"`
	Instances []gateway.InstanceState `json:"instances"`
}

// adminGET reads an admin endpoint of in as the operator into out.
func (in *instance) adminGET(path string, out any) error {
	req, _ := http.NewRequest("GET", "http://"+in.api+path, nil)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ops:opspass")))
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// cluster reads GET /v1/admin/cluster from in.
func (in *instance) cluster(t *testing.T) (clusterView, error) {
	var v clusterView
	err := in.adminGET("/v1/admin/cluster", &v)
	return v, err
}

func (v clusterView) byName() map[string]gateway.InstanceState {
	m := map[string]gateway.InstanceState{}
	for _, in := range v.Instances {
		m[in.Instance] = in
	}
	return m
}

// bindAs binds an ESME to addr as acme with bind type bt, recording the deliver_sm it gets.
func bindAs(t *testing.T, addr string, bt session.BindType) *esme {
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
	if _, err := e.s.Bind(ctx, bt, session.BindParams{SystemID: "acme", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// send submits text asking for a receipt; it returns the gateway's message id, or the error.
func send(e *esme, text string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := e.s.Send(ctx, &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: "447700900001", RegisteredDelivery: 1, ShortMessage: []byte(text)})
	if err != nil {
		return "", err
	}
	if resp.Status != pdu.ESME_ROK {
		return "", fmt.Errorf("submit_sm_resp %v", resp.Status)
	}
	return resp.Body.(*pdu.SubmitSMResp).MessageID, nil
}

// moText is the MO the upstream sends in the two-process test.
const moText = "MO across instances"

// receiptIDs are the message ids of the receipts e got (the MO left out).
func receiptIDs(t *testing.T, e *esme) map[string]int {
	ids := map[string]int{}
	for _, d := range e.delivered() {
		if string(d.ShortMessage) == moText {
			continue
		}
		info, err := dlr.FromDeliverSM(d)
		if err != nil {
			t.Errorf("deliver_sm %q is not a receipt: %v", d.ShortMessage, err)
			continue
		}
		ids[info.MessageID]++
	}
	return ids
}

func eventuallyWithin(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInstancesShareRedis runs two `smppgw serve` processes on one redis-server, with one upstream
// (binds: 1) whose listener counts the gateway's connections over time:
//   - exactly one instance binds it, and the other stays on standby;
//   - an ESME on the instance without the bind gets the receipts of messages sent through either
//     instance (the deliver queue is shared; the other instance's ESME binds as transmitter only, so
//     no receipt may go there), and the cluster view (REST, /v1/admin/cluster) names both instances
//     with their counts;
//   - the holder is killed with SIGKILL while an ESME is submitting through it: the other instance
//     takes the bind within the lease's time, never with two connections open at once, and every
//     message either instance acknowledged reaches the upstream (duplicates counted and logged).
//
// Before ownership, both instances bound the upstream (two connections at once).
func TestInstancesShareRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts redis-server (-short)")
	}
	bin := filepath.Join(t.TempDir(), "smppgw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rds := redistest.Start(t, redistest.Options{})
	sim := smscsim.New(smscsim.Options{Accounts: map[string]string{"gwup": "uppw"}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &connCounter{Listener: l}
	go sim.Serve(up)
	t.Cleanup(func() { sim.Close() })

	const leaseTTL = 2 * time.Second
	acct, ops := bcryptHash(t, "s3cret"), bcryptHash(t, "opspass")
	yaml := func(name string) string {
		return fmt.Sprintf(`log: {format: json, level: info}
smpp:
  listen: 127.0.0.1:0
  accounts:
    - {system_id: acme, password_hash: %q}
upstreams:
  - {name: up, address: %q, system_id: gwup, password: uppw, reconnect_min: 50ms, reconnect_max: 200ms}
routing:
  routes: [{upstream: up}]
  mo_routes: [{prefix: "12345", account: acme}]
  delivery_retry: 200ms
store:
  redis: {addrs: [%q]}
  visibility_timeout: 2s
cluster: {lease_ttl: %s, publish_every: 300ms}
api:
  grpc_listen: 127.0.0.1:0
  http_listen: 127.0.0.1:0
  instance: %s
  admin_users: [{name: ops, password_hash: %q}]
demo: {disabled: true}
shutdown_timeout: 5s
`, acct, l.Addr().String(), rds.Addr(), leaseTTL, name, ops)
	}
	insts := map[string]*instance{"a": startInstance(t, bin, "a", yaml("a")), "b": startInstance(t, bin, "b", yaml("b"))}

	// One holder, which both instances' cluster views agree on.
	var owner, other string
	eventuallyWithin(t, "one instance bound to the upstream, in both cluster views", wait, func() bool {
		owner = ""
		for _, in := range insts {
			v, err := in.cluster(t)
			if err != nil || len(v.Instances) != 2 {
				return false
			}
			var bound []string
			for _, s := range v.Instances {
				if len(s.Upstreams) == 1 && s.Upstreams[0].Bound {
					bound = append(bound, s.Instance)
				}
			}
			if len(bound) != 1 || owner != "" && bound[0] != owner {
				return false
			}
			owner = bound[0]
		}
		return true
	})
	other = map[string]string{"a": "b", "b": "a"}[owner]
	time.Sleep(leaseTTL * 3 / 2) // past a lease period: nobody else binds meanwhile
	if acc, open, most := up.counts(); acc != 1 || open != 1 || most != 1 {
		t.Fatalf("upstream connections: %d accepted, %d open, at most %d at once; want 1, 1, 1", acc, open, most)
	}
	v, _ := insts[other].cluster(t)
	if s := v.byName()[other]; len(s.Upstreams) != 1 || s.Upstreams[0].State != "standby" || s.Upstreams[0].LastError != "bind held by instance "+owner {
		t.Errorf("the upstream on %s: %+v, want standby naming %s", other, s.Upstreams, owner)
	}
	// The admin API says the same: STANDBY on the instance without the bind, BOUND on its holder.
	for name, want := range map[string]string{other: "UPSTREAM_STATE_STANDBY", owner: "UPSTREAM_STATE_BOUND"} {
		var ups struct {
			Upstreams []struct {
				Name, State, LastError string
			} `json:"upstreams"`
		}
		if err := insts[name].adminGET("/v1/admin/upstreams", &ups); err != nil || len(ups.Upstreams) != 1 || ups.Upstreams[0].State != want {
			t.Errorf("GET /v1/admin/upstreams on %s: %+v (%v), want one upstream in %s", name, ups.Upstreams, err, want)
		}
	}
	t.Logf("%s holds the bind, %s is on standby", owner, other)

	// Receipts reach the ESME on the instance without the bind, for messages sent through either.
	rx := bindAs(t, insts[other].smpp, session.BindTransceiver)
	tx := bindAs(t, insts[owner].smpp, session.BindTransmitter)
	const viaOther, viaOwner = 20, 30
	acked := map[string]string{} // message id -> text
	for i := range viaOther {
		text := fmt.Sprintf("p1-%s-%d", other, i)
		id, err := send(rx, text)
		if err != nil {
			t.Fatal(err)
		}
		acked[id] = text
	}
	for i := range viaOwner {
		text := fmt.Sprintf("p1-%s-%d", owner, i)
		id, err := send(tx, text)
		if err != nil {
			t.Fatal(err)
		}
		acked[id] = text
	}
	// And an MO, which arrives on the holder's bind, for acme.
	mctx, mcancel := context.WithTimeout(context.Background(), wait)
	st, err := sim.SendMO(mctx, &pdu.DeliverSM{SourceAddr: "447700900999", DestinationAddr: "12345", ShortMessage: []byte(moText)})
	mcancel()
	if err != nil || st != pdu.ESME_ROK {
		t.Fatalf("MO: %v %v", st, err)
	}
	eventuallyWithin(t, "phase 1 receipts and the MO at the ESME on "+other, wait, func() bool { return len(rx.delivered()) >= viaOther+viaOwner+1 })
	time.Sleep(200 * time.Millisecond) // one too many would show by now
	mos := 0
	for _, d := range rx.delivered() {
		if string(d.ShortMessage) == moText {
			mos++
		}
	}
	if mos != 1 {
		t.Errorf("the MO reached the ESME on %s %d times, want once", other, mos)
	}
	got := receiptIDs(t, rx)
	for id := range acked {
		if got[id] != 1 {
			t.Errorf("message %s: %d receipts at the ESME on %s, want 1", id, got[id], other)
		}
	}
	if n := len(tx.delivered()); n != 0 {
		t.Errorf("the transmitter on %s was sent %d deliver_sm", owner, n)
	}
	// The instance without a receiver bind for acme never claimed from its deliver queue: the
	// consumers of acme's deliver streams (one per shard) in Redis are the other instance's only.
	// (The store's claim_deliveries metric counts every deliver queue, the webhooks' included.)
	claims := deliverConsumers(t, rds.Addr(), "acme")
	if claims[owner] != 0 || claims[other] < 1 {
		t.Errorf("consumers of acme's deliver streams: %s %d, %s %d; want none of %s (no receiver bind there)", owner, claims[owner], other, claims[other], owner)
	}
	t.Logf("phase 1: %d through %s, %d through %s; %d receipts and %d MO at the ESME on %s; consumers of acme's deliver streams: %s %d, %s %d",
		viaOther, other, viaOwner, owner, len(rx.delivered())-mos, mos, other, owner, claims[owner], other, claims[other])

	// The cluster view's counts, from the instance without the bind.
	var last clusterView
	eventuallyWithin(t, "both instances' counts in the cluster view", wait, func() bool {
		last, err = insts[other].cluster(t)
		m := last.byName()
		o, x := m[owner], m[other]
		return err == nil && len(last.Instances) == 2 && x.Self && !o.Self && !o.Stale &&
			o.Stats.Accepted == viaOwner && x.Stats.Accepted == viaOther &&
			o.Stats.Submitted == viaOther+viaOwner && x.Stats.Submitted == 0 &&
			o.Stats.ReceiptsIn == viaOther+viaOwner && x.Stats.ReceiptsIn == 0 && o.Stats.MOIn == 1 && x.Stats.MOIn == 0 &&
			o.Stats.Sessions == 1 && x.Stats.Sessions == 1 &&
			len(x.Sessions) == 1 && x.Sessions[0].DeliverSM == viaOther+viaOwner+1 && x.Sessions[0].SubmitSM == viaOther &&
			len(o.Sessions) == 1 && o.Sessions[0].SubmitSM == viaOwner
	})
	// ListSessions on either instance lists both ESMEs, each named by its instance. The other
	// instance's sessions come from the board, published every publish_every: wait for a reading.
	for _, in := range insts {
		type sessions struct {
			Sessions []struct {
				SessionID, SystemID, Instance, BindType string
			} `json:"sessions"`
		}
		var ls sessions
		both := func() bool {
			ls = sessions{}
			if err := in.adminGET("/v1/admin/sessions", &ls); err != nil {
				t.Fatal(err)
			}
			byInst := map[string]string{}
			for _, s := range ls.Sessions {
				byInst[s.Instance] = s.BindType
			}
			return len(ls.Sessions) == 2 && byInst[owner] == "BIND_TYPE_TRANSMITTER" && byInst[other] == "BIND_TYPE_TRANSCEIVER"
		}
		deadline := time.Now().Add(5 * time.Second)
		for !both() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if !both() {
			t.Errorf("sessions listed by %s: %+v", in.name, ls.Sessions)
		}
	}
	for _, s := range last.Instances {
		t.Logf("cluster view: %s self=%v stale=%v accepted=%d submitted=%d receipts_in=%d sessions=%d upstream=%s",
			s.Instance, s.Self, s.Stale, s.Stats.Accepted, s.Stats.Submitted, s.Stats.ReceiptsIn, s.Stats.Sessions, s.Upstreams[0].State)
	}

	// SIGKILL the holder while an ESME submits through it.
	var (
		mu      sync.Mutex
		sent    int
		killAck = map[string]string{}
	)
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for i := range 2000 {
			text := fmt.Sprintf("p2-%s-%d", owner, i)
			mu.Lock()
			sent++
			mu.Unlock()
			id, err := send(tx, text)
			if err != nil {
				return
			}
			mu.Lock()
			killAck[id] = text
			mu.Unlock()
		}
	}()
	eventuallyWithin(t, "traffic through "+owner, wait, func() bool { mu.Lock(); defer mu.Unlock(); return len(killAck) >= 50 })
	if err := insts[owner].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-insts[owner].exited
	<-sending
	eventuallyWithin(t, "the upstream bound again", 3*wait, func() bool { acc, open, _ := up.counts(); return acc == 2 && open == 1 })
	up.mu.Lock()
	took := up.times[1].Sub(killed)
	up.mu.Unlock()
	t.Logf("%s bound the upstream %v after %s was killed (lease_ttl %v: expected within about %v plus a dial)", other, took.Round(time.Millisecond), owner, leaseTTL, leaseTTL*4/3)
	if bound := leaseTTL*4/3 + 5*time.Second; took > bound {
		t.Errorf("takeover took %v, more than %v", took, bound)
	}
	v, _ = insts[other].cluster(t)
	if s := v.byName()[other]; len(s.Upstreams) != 1 || !s.Upstreams[0].Bound {
		t.Errorf("%s after the takeover: %+v", other, s.Upstreams)
	}
	eventuallyWithin(t, owner+" stale in the cluster view", wait, func() bool {
		v, err := insts[other].cluster(t)
		o, ok := v.byName()[owner]
		return err == nil && ok && o.Stale
	})

	// After the takeover, through the survivor.
	const after = 10
	for i := range after {
		text := fmt.Sprintf("p3-%s-%d", other, i)
		id, err := send(rx, text)
		if err != nil {
			t.Fatal(err)
		}
		acked[id] = text
	}
	for id, text := range killAck {
		acked[id] = text
	}
	// Nothing acknowledged is lost: every acknowledged text reaches the upstream (what the killed
	// instance had claimed is handed out again after the visibility time-out).
	eventuallyWithin(t, "every acknowledged message at the upstream", 3*wait, func() bool {
		for _, text := range acked {
			if sim.Times(text) == 0 {
				return false
			}
		}
		return true
	})
	dups, upstream := 0, 0
	for _, text := range acked {
		if n := sim.Times(text); n > 0 {
			upstream++
			dups += n - 1
		}
	}
	// Every message of phases 1 and 3 gets its receipt at the ESME on the survivor; those sent during
	// the kill may have had theirs sent on the killed instance's link (logged, not asserted).
	missing := func() int {
		got, n := receiptIDs(t, rx), 0
		for id, text := range acked {
			if got[id] == 0 && text[:2] != "p2" {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(wait)
	for missing() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := missing(); n > 0 {
		t.Errorf("%d messages of phases 1 and 3 without a receipt at the ESME on %s", n, other)
	}
	_, _, most := up.counts()
	mu.Lock()
	t.Logf("through %s while it was killed: %d sent, %d acknowledged; all phases: %d acknowledged, %d at the upstream (%d submissions, %d duplicates), %d receipts at the ESME on %s; upstream connections at most %d at once",
		owner, sent, len(killAck), len(acked), upstream, sim.Count(), dups, len(rx.delivered())-mos, other, most)
	mu.Unlock()
	if most != 1 {
		t.Errorf("at most %d upstream connections open at once, want 1", most)
	}
}

// TestClusterConfig: the cluster section is read from the file and the environment, and a lease or
// publication period too short (or negative) is refused naming the field.
func TestClusterConfig(t *testing.T) {
	cfg, err := loadConfig(writeConfig(t, "cluster: {lease_ttl: 5s}\n"), []string{"SMPPGW_CLUSTER_PUBLISH_EVERY=750ms"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.LeaseTTL != 5*time.Second || cfg.Cluster.PublishEvery != 750*time.Millisecond {
		t.Errorf("cluster %+v", cfg.Cluster)
	}
	for body, want := range map[string]string{
		"cluster: {lease_ttl: 100ms}\n":    "config: cluster.lease_ttl 100ms",
		"cluster: {lease_ttl: -1s}\n":      "config: cluster.lease_ttl -1s",
		"cluster: {publish_every: 10ms}\n": "config: cluster.publish_every 10ms",
	} {
		if _, err := loadConfig(writeConfig(t, body), nil); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %q...", body, err, want)
		}
	}
}

// adminDo sends an admin REST request with a JSON body to in as the operator, decoding into out.
func (in *instance) adminDo(method, path string, body, out any) error {
	return in.do(method, path, "Basic "+base64.StdEncoding.EncodeToString([]byte("ops:opspass")), body, out)
}

// do sends a REST request with a JSON body to in with the Authorization header auth.
func (in *instance) do(method, path, auth string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+in.api+path, rd)
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// sendTo submits text to dest asking for a receipt; it returns the gateway's message id.
func sendTo(e *esme, dest, text string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := e.s.Send(ctx, &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: dest, RegisteredDelivery: 1, ShortMessage: []byte(text)})
	if err != nil {
		return "", err
	}
	if resp.Status != pdu.ESME_ROK {
		return "", fmt.Errorf("submit_sm_resp %v", resp.Status)
	}
	return resp.Body.(*pdu.SubmitSMResp).MessageID, nil
}

// idCounter counts message ids, safe for concurrent use.
type idCounter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *idCounter) add(id string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[id]++
	c.mu.Unlock()
}

func (c *idCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

// boundBinds is how many binds of upstream each instance holds, as the cluster view of in shows.
func boundBinds(in *instance, upstream string) (map[string]int, error) {
	v, err := in.cluster(nil)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range v.Instances {
		if s.Stale {
			continue
		}
		for _, u := range s.Upstreams {
			if u.Name == upstream {
				out[s.Instance] = u.BoundBinds
			}
		}
	}
	return out, nil
}

// TestInstancesClusterEvents runs two `smppgw serve` processes on one redis-server (issue 12, the
// rest of it), with the configured upstream "up" at binds: 2:
//   - the two binds spread over the instances by their leases: the upstream never has more than 2
//     connections open, and has 2 once settled (the cluster view's bound_binds add up to 2);
//   - an application streaming receipts (REST NDJSON) from the instance holding fewer binds gets the
//     receipt of every message, once, including those that came in on the other instance's binds;
//     a webhook registered once gets each receipt once (webhooks take local events only);
//   - an upstream added through A's admin API is bound by one instance and routable from B within
//     the reload interval (messages through B reach it); changed to binds: 2 through A, both
//     instances restart it and it has 2 binds; removed through A, neither binds it;
//   - the instance with more binds of "up" is killed with SIGKILL: the upstream is back at 2 binds
//     within the lease time, never more than 2.
//
// Before this change B saw no receipts that came in on A, and never knew the upstream added on A.
func TestInstancesClusterEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts redis-server (-short)")
	}
	bin := filepath.Join(t.TempDir(), "smppgw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rds := redistest.Start(t, redistest.Options{})
	newUpstream := func(user, pw string) (*smscsim.Sim, *connCounter) {
		sim := smscsim.New(smscsim.Options{Accounts: map[string]string{user: pw}})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cc := &connCounter{Listener: l}
		go sim.Serve(cc)
		t.Cleanup(func() { sim.Close() })
		return sim, cc
	}
	sim, up := newUpstream("gwup", "uppw")
	sim2, up2 := newUpstream("gwup2", "uppw2")

	// The webhook: receipts by message id.
	var hooked idCounter
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d struct {
			Receipt *struct {
				MessageID string `json:"messageId"`
			} `json:"receipt"`
		}
		if err := json.NewDecoder(r.Body).Decode(&d); err == nil && d.Receipt != nil {
			hooked.add(d.Receipt.MessageID)
		}
	}))
	t.Cleanup(hook.Close)

	const leaseTTL, reload = 2 * time.Second, 500 * time.Millisecond
	acct, ops := bcryptHash(t, "s3cret"), bcryptHash(t, "opspass")
	yaml := func(name string) string {
		return fmt.Sprintf(`log: {format: json, level: info}
smpp:
  listen: 127.0.0.1:0
  accounts:
    - {system_id: acme, password_hash: %q}
upstreams:
  - {name: up, address: %q, system_id: gwup, password: uppw, binds: 2, reconnect_min: 50ms, reconnect_max: 200ms}
routing:
  routes: [{upstream: up}]
  delivery_retry: 200ms
  reload_interval: %s
store:
  redis: {addrs: [%q]}
  visibility_timeout: 2s
cluster: {lease_ttl: %s, publish_every: 300ms}
api:
  grpc_listen: 127.0.0.1:0
  http_listen: 127.0.0.1:0
  instance: %s
  admin_users: [{name: ops, password_hash: %q}]
  webhooks: {refresh_interval: 200ms}
demo: {disabled: true}
shutdown_timeout: 5s
`, acct, up.Addr().String(), reload, rds.Addr(), leaseTTL, name, ops)
	}
	insts := map[string]*instance{"a": startInstance(t, bin, "a", yaml("a")), "b": startInstance(t, bin, "b", yaml("b"))}

	// binds: 2 over two instances.
	var spread map[string]int
	eventuallyWithin(t, "2 binds of up over the instances", wait, func() bool {
		var err error
		spread, err = boundBinds(insts["a"], "up")
		_, open, _ := up.counts()
		return err == nil && open == 2 && spread["a"]+spread["b"] == 2
	})
	time.Sleep(leaseTTL * 3 / 2) // past a lease period: nobody binds a third
	if _, open, most := up.counts(); open != 2 || most != 2 {
		t.Fatalf("upstream up: %d connections open, at most %d at once; want 2 and 2", open, most)
	}
	t.Logf("binds of up: a holds %d, b holds %d", spread["a"], spread["b"])
	// Stream from the instance with fewer binds (b when even): receipts coming in on the other's.
	streamer, holder := "b", "a"
	if spread["a"] < spread["b"] {
		streamer, holder = "a", "b"
	}

	var key struct {
		Secret string `json:"secret"`
	}
	if err := insts["a"].adminDo("POST", "/v1/admin/api-keys", map[string]any{"account": "acme", "scopes": []string{"SCOPE_SEND", "SCOPE_READ"}, "name": "app"}, &key); err != nil {
		t.Fatal(err)
	}
	bearer := "Bearer " + key.Secret
	if err := insts["a"].do("POST", "/v1/webhooks", bearer, map[string]any{"url": hook.URL, "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // both instances' webhook dispatchers know the webhook by now

	var streamed idCounter
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", "http://"+insts[streamer].api+"/v1/messages:streamReceipts", nil)
	req.Header.Set("Authorization", bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: HTTP %d", resp.StatusCode)
	}
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			var line struct {
				Result struct {
					Receipt struct {
						MessageID string `json:"messageId"`
					} `json:"receipt"`
				} `json:"result"`
			}
			if json.Unmarshal(lines.Bytes(), &line) == nil && line.Result.Receipt.MessageID != "" {
				streamed.add(line.Result.Receipt.MessageID)
			}
		}
	}()
	t.Cleanup(func() { scancel(); <-streamDone })

	before := map[string]uint64{}
	v, err := insts["a"].cluster(t)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range v.byName() {
		before[name] = s.Stats.ReceiptsIn
	}
	tx := bindAs(t, insts[holder].smpp, session.BindTransmitter)
	const n = 60
	ids := map[string]bool{}
	for i := range n {
		id, err := send(tx, fmt.Sprintf("ev-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	complete := func(c *idCounter) bool {
		got := c.snapshot()
		for id := range ids {
			if got[id] == 0 {
				return false
			}
		}
		return true
	}
	eventuallyWithin(t, "every receipt on the stream from "+streamer+" and at the webhook", 2*wait, func() bool { return complete(&streamed) && complete(&hooked) })
	time.Sleep(500 * time.Millisecond) // a second copy would show by now
	for what, c := range map[string]*idCounter{"stream from " + streamer: &streamed, "webhook": &hooked} {
		got := c.snapshot()
		for id := range ids {
			if got[id] != 1 {
				t.Errorf("%s: %d receipts for %s, want 1", what, got[id], id)
			}
		}
		if len(got) != n {
			t.Errorf("%s: receipts for %d messages, want %d", what, len(got), n)
		}
	}
	var inHolder, inStreamer uint64
	eventuallyWithin(t, "receipts counted in the cluster view", wait, func() bool {
		v, err := insts["a"].cluster(t)
		if err != nil {
			return false
		}
		m := v.byName()
		inHolder, inStreamer = m[holder].Stats.ReceiptsIn-before[holder], m[streamer].Stats.ReceiptsIn-before[streamer]
		return inHolder+inStreamer == n
	})
	if inHolder == 0 {
		t.Errorf("no receipt came in on %s's binds: the stream from %s shows nothing of the relay", holder, streamer)
	}
	t.Logf("%d messages: receipts in on %s %d, on %s %d; on the stream from %s %d, at the webhook %d (each once)",
		n, holder, inHolder, streamer, inStreamer, streamer, len(streamed.snapshot()), len(hooked.snapshot()))

	// An upstream added through a's admin API, with a route, is bound once and routable from b.
	host, portStr, _ := net.SplitHostPort(up2.Addr().String())
	port, _ := strconv.Atoi(portStr)
	added := time.Now()
	if err := insts["a"].adminDo("POST", "/v1/admin/upstreams", map[string]any{"name": "up2", "host": host, "port": port, "systemId": "gwup2", "password": "uppw2", "binds": 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := insts["a"].adminDo("POST", "/v1/admin/routes", map[string]any{"prefix": "4479", "upstreams": []string{"up2"}}, nil); err != nil {
		t.Fatal(err)
	}
	eventuallyWithin(t, "up2 known to b, bound by one instance, and b routing to it", wait, func() bool {
		v, err := insts["b"].cluster(t)
		if err != nil {
			return false
		}
		known, bound := 0, 0
		for _, s := range v.Instances {
			for _, u := range s.Upstreams {
				if u.Name == "up2" {
					known++
					bound += u.BoundBinds
				}
			}
		}
		if known != 2 || bound != 1 {
			return false
		}
		// The route's upstreams in failover order (selectedUpstream names only one bound on b itself).
		var rt struct {
			Upstreams []struct {
				Name string `json:"name"`
			} `json:"upstreams"`
		}
		return insts["b"].adminGET("/v1/admin/routes:test?destination=447900000001&account=acme", &rt) == nil && len(rt.Upstreams) > 0 && rt.Upstreams[0].Name == "up2"
	})
	seen := time.Since(added)
	time.Sleep(600 * time.Millisecond) // two publish_every: b's routing has read a's bind of up2 off the board
	rxB := bindAs(t, insts["b"].smpp, session.BindTransmitter)
	const m = 20
	for i := range m {
		if _, err := sendTo(rxB, "447900000001", fmt.Sprintf("up2-%d", i)); err != nil {
			t.Fatalf("through b to up2: %v", err)
		}
	}
	deadline := time.Now().Add(wait)
	for sim2.Count() < m && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for i := range m {
		if k := sim2.Times(fmt.Sprintf("up2-%d", i)); k != 1 {
			t.Errorf("up2-%d reached up2 %d times", i, k)
		}
	}
	if acc, open, most := up2.counts(); acc != 1 || open != 1 || most != 1 {
		t.Errorf("up2 connections: %d accepted, %d open, at most %d at once; want 1, 1, 1", acc, open, most)
	}
	t.Logf("up2 added on a: on both instances and bound once after %v (reload_interval %v); %d messages through b reached it, each once",
		seen.Round(time.Millisecond), reload, sim2.Count())

	// Changed through a to binds: 2: both instances restart it, and it has 2 binds.
	if err := insts["a"].adminDo("PATCH", "/v1/admin/upstreams/up2", map[string]any{"binds": 2}, nil); err != nil {
		t.Fatal(err)
	}
	eventuallyWithin(t, "up2 at 2 binds", 2*wait, func() bool {
		bb, err := boundBinds(insts["b"], "up2")
		_, open, _ := up2.counts()
		return err == nil && open == 2 && bb["a"]+bb["b"] == 2
	})
	bb, _ := boundBinds(insts["b"], "up2")
	_, _, most2 := up2.counts()
	t.Logf("up2 changed to binds: 2 on a: a holds %d, b holds %d; at most %d connections at once", bb["a"], bb["b"], most2)
	if most2 > 2 {
		t.Errorf("up2 had %d connections at once, want 2 at most", most2)
	}
	// Removed through a: neither instance binds it.
	if err := insts["a"].adminDo("DELETE", "/v1/admin/upstreams/up2", nil, nil); err != nil {
		t.Fatal(err)
	}
	eventuallyWithin(t, "up2 unbound everywhere and gone from b", wait, func() bool {
		bb, err := boundBinds(insts["a"], "up2")
		_, open, _ := up2.counts()
		return err == nil && open == 0 && len(bb) == 0
	})

	// SIGKILL the instance with more binds of up: back at 2 within the lease time.
	spread, err = boundBinds(insts["a"], "up")
	if err != nil {
		t.Fatal(err)
	}
	victim, survivor := "a", "b"
	if spread["b"] > spread["a"] {
		victim, survivor = "b", "a"
	}
	acc0, _, _ := up.counts()
	if err := insts[victim].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-insts[victim].exited
	lostBinds := spread[victim]
	eventuallyWithin(t, "up back at 2 binds", 3*wait, func() bool {
		acc, open, _ := up.counts()
		return open == 2 && acc == acc0+lostBinds
	})
	took := time.Since(killed)
	if bound := leaseTTL*4/3 + 5*time.Second; took > bound {
		t.Errorf("takeover of %d binds took %v, more than %v", lostBinds, took, bound)
	}
	time.Sleep(leaseTTL)
	acc, open, most := up.counts()
	if open != 2 || most != 2 {
		t.Errorf("up after the kill: %d open, at most %d at once; want 2 and 2", open, most)
	}
	t.Logf("killed %s holding %d of up's binds: %s bound them within %v (lease_ttl %v); up: %d connections accepted in all, at most %d open at once",
		victim, lostBinds, survivor, took.Round(time.Millisecond), leaseTTL, acc, most)
	_ = sim
}

// deliverConsumers counts, per instance, the consumers of account's deliver queue streams (kind 2,
// every shard) that have claimed something, from Redis itself: consumer names are
// "<instance>/deliver/<account>".
func deliverConsumers(t *testing.T, addr, account string) map[string]int {
	t.Helper()
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	keys, err := c.Keys(ctx, "*q:*2:"+account).Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("deliver streams of %s: %v %v", account, keys, err)
	}
	out := map[string]int{}
	for _, k := range keys {
		cs, err := c.XInfoConsumers(ctx, k, "smppgw").Result()
		if err != nil {
			continue // a shard nobody read has no group
		}
		for _, cn := range cs {
			inst, _, _ := strings.Cut(cn.Name, "/")
			out[inst]++
		}
	}
	return out
}
