package gateway

import (
	"context"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/store"
)

// boundMax samples sims' bound links every few milliseconds until stop and reports the most seen at
// once on any of them.
func boundMax(sims ...*smscsim.Sim) (stop func() int) {
	var (
		mu   sync.Mutex
		most int
	)
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			for _, s := range sims {
				mu.Lock()
				most = max(most, s.Bound())
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int {
		close(done)
		<-ended
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// TestBindOwnershipTwoInstances: two gateways on one Redis, two upstreams A and B (routes: A, then
// B, failover after 200ms). Each upstream is bound by exactly one instance, never two at once; the
// other instance routes to it all the same (it is up elsewhere) and does not fail its queue over, so
// every message sent through the instance without A's bind goes to A, and its receipts come back to
// the ESME on that instance through the shared deliver queue. The cluster view names both instances
// with their counts. When A's holder stops, the other instance takes A's bind.
//
// Before ownership both instances bound both upstreams (sim A saw two binds at once), and an
// instance without A's bind would have routed to B.
func TestBindOwnershipTwoInstances(t *testing.T) {
	addr := redisServer(t)
	simA := startSim(t, "127.0.0.1:0", smscsim.Options{})
	simB := startSim(t, "127.0.0.1:0", smscsim.Options{})
	most := boundMax(simA, simB)
	cfg := viaAB(t, simA, simB, RouterConfig{FailoverAfter: 200 * time.Millisecond})
	cfg.Ownership = OwnershipConfig{LeaseTTL: 1500 * time.Millisecond, PublishEvery: 100 * time.Millisecond}
	gws := map[string]*Gateway{}
	addrs := map[string]string{}
	stops := map[string]func(){}
	for _, name := range []string{"a", "b"} {
		st := openRedis(t, addr)
		c := cfg
		c.Instance, c.Cluster = name, st.(store.Cluster)
		gws[name], addrs[name], stops[name] = startGateway(t, c, st)
	}
	holder := func(up string) string {
		var h string
		for name, g := range gws {
			if u, err := g.ups.get(up); err == nil && u.client.Bound() {
				if h != "" {
					t.Fatalf("%s bound on both instances", up)
				}
				h = name
			}
		}
		return h
	}
	sessiontest.Eventually(t, "A and B bound once each", func() bool {
		return simA.Bound() == 1 && simB.Bound() == 1 && holder("A") != "" && holder("B") != ""
	})
	time.Sleep(2 * 1500 * time.Millisecond) // a few lease periods: nobody else binds meanwhile
	if a, _ := simA.Binds(); a != 1 {
		t.Errorf("sim A accepted %d binds in two lease periods, want 1", a)
	}
	owner := holder("A")
	other := map[string]string{"a": "b", "b": "a"}[owner]
	// The other instance learns from the board that A is up.
	sessiontest.Eventually(t, "A up on the instance without its bind", func() bool {
		_, up := gws[other].ups.upstreamState("A")
		return up
	})
	if st := gws[other].Upstreams(); len(st) != 2 {
		t.Fatalf("upstreams %+v", st)
	}
	for _, u := range gws[other].Upstreams() {
		if u.Config.Name == "A" && (u.Status.State != ClientStandby || u.Status.LastError != "bind held by instance "+owner) {
			t.Errorf("A on %s: %v (%q), want standby naming %s", other, u.Status.State, u.Status.LastError, owner)
		}
	}

	const n = 20
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addrs[other], rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	ids := submitN(t, e, n)
	time.Sleep(300 * time.Millisecond) // past failover_after
	receiptStates(t, rx, n)
	if a, b := simA.Count(), simB.Count(); a != n || b != 0 {
		t.Errorf("sim A got %d, sim B %d submissions; want %d and 0", a, b, n)
	}
	t.Logf("%d messages through %s (without A's bind), sent on %s's bind: sim A %d, sim B %d, receipts at the ESME %d", len(ids), other, owner, simA.Count(), simB.Count(), len(rx.Requests()))

	// The cluster view, from either instance.
	sessiontest.Eventually(t, "both instances with their counts in the cluster view", func() bool {
		in, err := gws[owner].Instances(sessiontest.Ctx(t))
		if err != nil || len(in) != 2 {
			return false
		}
		byName := map[string]InstanceState{in[0].Instance: in[0], in[1].Instance: in[1]}
		o, x := byName[owner], byName[other]
		return o.Self && !x.Self && !o.Stale && !x.Stale && x.Stats.Accepted == n && o.Stats.Accepted == 0 &&
			o.Stats.Submitted == n && x.Stats.Submitted == 0 && o.Stats.ReceiptsIn == n && x.Stats.Sessions == 1 &&
			len(x.Sessions) == 1 && x.Sessions[0].SystemID == "acme" && x.Sessions[0].DeliverSM == n
	})

	// A's holder stops: the other takes the bind, and what goes through it now is sent there.
	stopped := time.Now()
	stops[owner]()
	sessiontest.Eventually(t, "A bound by the other instance", func() bool { return holder("A") == other && simA.Bound() == 1 })
	t.Logf("A bound by %s %v after %s stopped (lease_ttl 1.5s)", other, time.Since(stopped).Round(time.Millisecond), owner)
	submitN(t, e, n)
	receiptStates(t, rx, 2*n)
	if a, b := simA.Count(), simB.Count(); a != 2*n || b != 0 {
		t.Errorf("sim A got %d, sim B %d submissions; want %d and 0", a, b, 2*n)
	}
	if m := most(); m != 1 {
		t.Errorf("at most %d binds at once on one upstream, want 1", m)
	}
	in, err := gws[other].Instances(sessiontest.Ctx(t))
	if err != nil || len(in) != 1 || in[0].Instance != other {
		t.Errorf("cluster view after %s's clean stop: %+v, %v; want %s alone", owner, in, err, other)
	}
}

// TestOwnershipWithoutCluster: with no store.Cluster (the embedded store) the instance holds every
// bind and the cluster view is this instance alone, live.
func TestOwnershipWithoutCluster(t *testing.T) {
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	g, _, _ := startGateway(t, viaAB(t, sim, nil, RouterConfig{}), newEmbedded(t))
	awaitUp(t, g, "A")
	in, err := g.Instances(context.Background())
	if err != nil || len(in) != 1 || !in[0].Self || in[0].Stale || in[0].Instance != g.Instance() || len(in[0].Upstreams) != 1 || !in[0].Upstreams[0].Bound {
		t.Fatalf("instances %+v, %v", in, err)
	}
}

// TestBindLeaseLost: an instance whose lease is taken from it (here by a thief writing the key, as an
// instance would after the holder's lease expired unseen) unbinds at its next renewal and does not
// renew the lease; nobody binds while the thief holds it; once the thief lets go, one instance
// binds again.
func TestBindLeaseLost(t *testing.T) {
	addr := redisServer(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	cfg := viaAB(t, sim, nil, RouterConfig{})
	cfg.Ownership = OwnershipConfig{LeaseTTL: 1500 * time.Millisecond, PublishEvery: 100 * time.Millisecond}
	var cl store.Cluster
	for _, name := range []string{"a", "b"} {
		st := openRedis(t, addr)
		c := cfg
		cl = st.(store.Cluster)
		c.Instance, c.Cluster = name, cl
		startGateway(t, c, st)
	}
	sessiontest.Eventually(t, "A bound once", func() bool { return sim.Bound() == 1 })
	if b, _ := sim.Binds(); b != 1 {
		t.Fatalf("%d binds at the start, want 1", b)
	}
	ctx := sessiontest.Ctx(t)
	holder, err := cl.LeaseHolder(ctx, "bind:A:0")
	if err != nil || holder == "" {
		t.Fatalf("holder %q, %v", holder, err)
	}
	rc := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rc.Close()
	if err := rc.Set(ctx, "smppgw:lease:bind:A:0", "thief#1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "the holder unbound", func() bool { return sim.Bound() == 0 })
	time.Sleep(2 * 1500 * time.Millisecond)
	if h, _ := cl.LeaseHolder(ctx, "bind:A:0"); h != "thief#1" || sim.Bound() != 0 {
		t.Fatalf("while the thief holds the lease: holder %q, %d bound", h, sim.Bound())
	}
	binds, _ := sim.Binds()
	if binds != 1 {
		t.Errorf("%d binds while the thief held the lease, want the first alone", binds)
	}
	if err := cl.ReleaseLease(ctx, "bind:A:0", "thief#1"); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "A bound again", func() bool { b, _ := sim.Binds(); return sim.Bound() == 1 && b == binds+1 })
	t.Logf("holder %s lost the lease and unbound; after the thief let go, %d binds in all", ownerName(holder), binds+1)
}

// TestFailoverJudgedAcrossInstances: A's holder takes submissions and never answers them (sim A holds
// them), so parts wait in A's queue; the instance without A's bind sees A up on the other instance and
// leaves A's queue alone, well past failover_after: nothing goes to B. Judged by its own bind, as
// before ownership, that instance moved A's waiting parts to B.
func TestFailoverJudgedAcrossInstances(t *testing.T) {
	addr := redisServer(t)
	simA := startSim(t, "127.0.0.1:0", smscsim.Options{})
	simB := startSim(t, "127.0.0.1:0", smscsim.Options{})
	simA.Inject(smscsim.Fault{Hold: true})
	cfg := viaAB(t, simA, simB, RouterConfig{FailoverAfter: 200 * time.Millisecond})
	cfg.Ownership = OwnershipConfig{LeaseTTL: 1500 * time.Millisecond, PublishEvery: 100 * time.Millisecond}
	gws := map[string]*Gateway{}
	addrs := map[string]string{}
	for _, name := range []string{"a", "b"} {
		st := openRedis(t, addr)
		c := cfg
		c.Instance, c.Cluster = name, st.(store.Cluster)
		gws[name], addrs[name], _ = startGateway(t, c, st)
	}
	var other string
	sessiontest.Eventually(t, "A bound on one instance, up on the other", func() bool {
		for name, g := range gws {
			u, _ := g.ups.get("A")
			_, up := g.ups.upstreamState("A")
			if !u.client.Bound() && up && simA.Bound() == 1 {
				other = name
				return true
			}
		}
		return false
	})
	const n = 30
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addrs[other], rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	submitN(t, e, n)
	time.Sleep(5 * 200 * time.Millisecond) // five times failover_after
	if b := simB.Count(); b != 0 {
		t.Errorf("sim B got %d submissions while A was bound on the other instance, want 0", b)
	}
	t.Logf("sim A holds %d, sim B got %d of %d submitted through %s", simA.Count(), simB.Count(), n, other)
}

// TestOutbindOwnership: an upstream that only outbinds (each instance listens for it): the instance
// without the bind's lease closes an outbind instead of binding back; the holder binds back.
func TestOutbindOwnership(t *testing.T) {
	addr := redisServer(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	gws := map[string]*Gateway{}
	for _, name := range []string{"a", "b"} {
		st := openRedis(t, addr)
		cfg := Config{Accounts: []Account{testAccount(t, "acme", "secret")}, Routing: RouterConfig{Routes: []Route{{Upstream: "O"}}},
			Upstreams: []ClientConfig{{Name: "O", OutbindListen: "127.0.0.1:0", SystemID: "gwup", Password: "uppw"}},
			Instance:  name, Cluster: st.(store.Cluster), Ownership: OwnershipConfig{LeaseTTL: 1500 * time.Millisecond, PublishEvery: 100 * time.Millisecond}}
		gws[name], _, _ = startGateway(t, cfg, st)
	}
	var owner, other string
	sessiontest.Eventually(t, "one instance holding O's lease and waiting for an outbind", func() bool {
		for name, g := range gws {
			u, _ := g.ups.get("O")
			if u.client.Status().State == ClientWaiting {
				owner, other = name, map[string]string{"a": "b", "b": "a"}[name]
				return true
			}
		}
		return false
	})
	listener := func(name string) string { u, _ := gws[name].ups.get("O"); return u.client.Status().OutbindAddr }
	ctx := sessiontest.Ctx(t)
	if err := sim.Outbind(ctx, listener(other), "gwup", "uppw"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if b, _ := sim.Binds(); b != 0 || sim.Bound() != 0 {
		t.Fatalf("outbind to %s (without the lease): %d binds, %d bound; want none", other, b, sim.Bound())
	}
	if err := sim.Outbind(ctx, listener(owner), "gwup", "uppw"); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "O bound back by "+owner, func() bool { u, _ := gws[owner].ups.get("O"); return u.client.Bound() && sim.Bound() == 1 })
}

// TestBindLeaseStoreDown: the holder cannot renew its lease while Redis is down, so it unbinds before
// the lease could have expired (another instance may take it then); once Redis is back it takes the
// lease and binds again.
func TestBindLeaseStoreDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	st := openRedis(t, srv.Addr())
	cfg := viaAB(t, sim, nil, RouterConfig{FailoverAfter: -1})
	cfg.Instance, cfg.Cluster = "a", st.(store.Cluster)
	cfg.Ownership = OwnershipConfig{LeaseTTL: 1500 * time.Millisecond, PublishEvery: 100 * time.Millisecond}
	startGateway(t, cfg, st)
	sessiontest.Eventually(t, "A bound", func() bool { return sim.Bound() == 1 })
	srv.Kill()
	down := time.Now()
	sessiontest.Eventually(t, "A unbound with Redis down", func() bool { return sim.Bound() == 0 })
	t.Logf("unbound %v after Redis went down (lease_ttl 1.5s)", time.Since(down).Round(time.Millisecond))
	srv.Restart()
	sessiontest.Eventually(t, "A bound again with Redis back", func() bool { b, _ := sim.Binds(); return sim.Bound() == 1 && b == 2 })
}

// TestClusterEventsAndUpstreamSync: two gateways on one Redis (issue 12, the rest of it).
//   - Receipts relayed: an API subscription on each instance gets the receipt of every message once,
//     local on the instance holding the bind, marked Remote on the other (which the webhooks skip).
//   - Upstreams synced: an upstream added through a's AddUpstream is started on b within the reload
//     interval and bound by one of them; changed to binds: 2 through a, b restarts it with 2; removed
//     through a, b stops it. The upstream never has more than its binds at once.
//
// Before the relay the other instance's subscription got nothing; before the sync b never knew C.
func TestClusterEventsAndUpstreamSync(t *testing.T) {
	addr := redisServer(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	cfg := viaAB(t, sim, nil, RouterConfig{ReloadInterval: 100 * time.Millisecond})
	cfg.Ownership = OwnershipConfig{LeaseTTL: 1500 * time.Millisecond, PublishEvery: 100 * time.Millisecond}
	gws, addrs := map[string]*Gateway{}, map[string]string{}
	events := map[string]<-chan Event{}
	for _, name := range []string{"a", "b"} {
		st := openRedis(t, addr)
		c := cfg
		c.Instance, c.Cluster = name, st.(store.Cluster)
		gws[name], addrs[name], _ = startGateway(t, c, st)
		ch, cancel := gws[name].Subscribe("acme")
		t.Cleanup(cancel)
		events[name] = ch
	}
	holder := ""
	sessiontest.Eventually(t, "A bound by one instance, each seeing the other on the board", func() bool {
		holder = ""
		for name, g := range gws {
			if u, err := g.ups.get("A"); err == nil && u.client.Bound() {
				holder = name
			}
		}
		return sim.Bound() == 1 && holder != "" && gws["a"].own.hasOthers() && gws["b"].own.hasOthers()
	})
	other := map[string]string{"a": "b", "b": "a"}[holder]

	const n = 30
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addrs[other], rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	ids := submitN(t, e, n)
	receiptStates(t, rx, n)
	for name, ch := range events {
		got, remote := map[string]int{}, 0
		timeout := time.After(sessiontest.Wait)
	collect:
		for len(got) < n {
			select {
			case ev := <-ch:
				if ev.Kind == EventReceipt {
					got[ev.MessageID]++
					if ev.Remote {
						remote++
					}
				}
			case <-timeout:
				break collect
			}
		}
		// one too many would show by now
		for extra := time.After(200 * time.Millisecond); ; {
			select {
			case ev := <-ch:
				if ev.Kind == EventReceipt {
					got[ev.MessageID]++
				}
				continue
			case <-extra:
			}
			break
		}
		for _, id := range ids {
			if got[id] != 1 {
				t.Errorf("%s: %d receipt events for %s, want 1", name, got[id], id)
			}
		}
		if want := map[bool]int{true: 0, false: n}[name == holder]; remote != want {
			t.Errorf("%s: %d of the receipt events marked remote, want %d", name, remote, want)
		}
		t.Logf("%s (holder %v): %d receipt events, %d of them relayed from the other instance", name, name == holder, len(got), remote)
	}
	if rl := gws[holder].relay; rl == nil || rl.relayed.Load() != n {
		t.Errorf("%s relayed other than %d events (relay %v)", holder, n, rl != nil)
	}

	// An upstream added, changed and removed through a.
	simC := startSim(t, "127.0.0.1:0", smscsim.Options{})
	most := boundMax(simC)
	up := simUpstream("C", simC.Addr())
	up.ReconnectMin, up.ReconnectMax = 20*time.Millisecond, 100*time.Millisecond
	ctx := sessiontest.Ctx(t)
	if err := gws["a"].AddUpstream(ctx, up); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "C started on b and bound once", func() bool { return gws["b"].ups.has("C") && simC.Bound() == 1 })
	binds := 2
	if err := gws["a"].UpdateUpstream(ctx, "C", UpstreamChange{Binds: &binds}); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "C at binds: 2 on b, 2 bound", func() bool {
		u, err := gws["b"].ups.get("C")
		return err == nil && u.cfg.Binds == 2 && simC.Bound() == 2
	})
	if err := gws["a"].RemoveUpstream(ctx, "C"); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "C stopped on b", func() bool { return !gws["b"].ups.has("C") && simC.Bound() == 0 })
	if m := most(); m > 2 {
		t.Errorf("C had %d binds at once, want 2 at most", m)
	}
}
