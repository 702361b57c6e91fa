package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	// The instance without a receiver bind for acme never claimed from its deliver queue.
	claims := map[string]float64{}
	for name, in := range insts {
		claims[name] = sample(scrape(t, "http://"+in.api+"/metrics"), "smppgw_store_operation_duration_seconds", "op=claim_deliveries")
	}
	if claims[owner] != 0 || claims[other] < 1 {
		t.Errorf("deliver queue claims: %s %v, %s %v; want none on %s (no receiver bind there)", owner, claims[owner], other, claims[other], owner)
	}
	t.Logf("phase 1: %d through %s, %d through %s; %d receipts and %d MO at the ESME on %s; deliver queue claims: %s %v, %s %v",
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
	// ListSessions on either instance lists both ESMEs, each named by its instance.
	for _, in := range insts {
		var ls struct {
			Sessions []struct {
				SessionID, SystemID, Instance, BindType string
			} `json:"sessions"`
		}
		if err := in.adminGET("/v1/admin/sessions", &ls); err != nil {
			t.Fatal(err)
		}
		byInst := map[string]string{}
		for _, s := range ls.Sessions {
			byInst[s.Instance] = s.BindType
		}
		if len(ls.Sessions) != 2 || byInst[owner] != "BIND_TYPE_TRANSMITTER" || byInst[other] != "BIND_TYPE_TRANSCEIVER" {
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
