package gateway

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// queueBacklog submits n messages for account acme through the API while upstream is paused, so that
// what leaves the queue afterwards is paced by the upstream's binds and cap, not by the accepts.
func queueBacklog(t *testing.T, g *Gateway, upstream string, n int, dest func(i int) string) {
	t.Helper()
	if err := g.SetUpstreamPaused(upstream, true); err != nil {
		t.Fatal(err)
	}
	submitConcurrently(t, g, n, dest)
	if err := g.SetUpstreamPaused(upstream, false); err != nil {
		t.Fatal(err)
	}
}

// submitConcurrently submits n API messages from acme, 16 at a time.
func submitConcurrently(t *testing.T, g *Gateway, n int, dest func(i int) string) {
	t.Helper()
	ctx := sessiontest.Ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				_, err := g.Submit(ctx, Submission{Account: "acme", Source: store.Address{Addr: "INFO"},
					Destination: store.Address{Addr: dest(i)}, Text: fmt.Sprint("m ", i)})
				errs <- err
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// perSecond counts arrival times in 1-second buckets from the first.
// checkRate fails t when arrivals (stamped at the simulator, in order) exceed tps+1 in any second
// counted from the first, or arrive faster overall than tps allows. A token taken on time can
// arrive a little late, after the network and the scheduler, so a second may count up to
// rateJitter's worth of the next one's tokens; a cap not applied, or applied per bind, shows far
// above that slack.
func checkRate(t *testing.T, arrivals []time.Time, tps int) {
	t.Helper()
	const rateJitter = 50 * time.Millisecond
	slack := int(time.Duration(tps) * rateJitter / time.Second)
	for i, c := range perSecond(arrivals) {
		if c > tps+1+slack {
			t.Errorf("second %d carried %d submissions, over max_tps %d + burst 1 + %d of arrival jitter", i, c, tps, slack)
		}
	}
	if len(arrivals) < 3 {
		return
	}
	span := arrivals[len(arrivals)-1].Sub(arrivals[0])
	if least := time.Duration(len(arrivals)-2)*time.Second/time.Duration(tps) - rateJitter; span < least {
		t.Errorf("%d submissions arrived over %v, want at least %v at max_tps %d", len(arrivals), span, least, tps)
	}
}

func perSecond(arrivals []time.Time) []int {
	var out []int
	for _, at := range arrivals {
		b := int(at.Sub(arrivals[0]) / time.Second)
		for len(out) <= b {
			out = append(out, 0)
		}
		out[b]++
	}
	return out
}

// TestUpstreamThreeBinds: an upstream with binds: 3 and max_tps 100 is bound three times at the
// simulator; a backlog of 400 parts is spread over the three binds (each carries at least half its
// fair share, 66 of 400) and reaches the simulator at no more than 100+1 per second in total, counted
// per 1-second bucket: the three binds share one token bucket rather than having one each.
func TestUpstreamThreeBinds(t *testing.T) {
	const (
		binds = 3
		tps   = 100
		n     = 400
	)
	var (
		mu       sync.Mutex
		arrivals []time.Time
	)
	up := startSim(t, "127.0.0.1:0", smscsim.Options{KeepLast: n, OnSubmit: func(_ *smscsim.Sim, _ *pdu.SubmitSM) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	}})
	upCfg := simUpstream("sim", up.Addr())
	upCfg.Binds, upCfg.MaxTPS, upCfg.Session.Window = binds, tps, 20
	g, _, _ := startGateway(t, acmeVia(t, upCfg), newEmbedded(t))
	sessiontest.Eventually(t, "3 binds at the simulator and the gateway", func() bool {
		st := g.Upstreams()[0].Status
		return up.Bound() == binds && st.BindsUp == binds && len(st.Slots) == binds
	})
	// A window per bind: the gateway's windows over its upstream binds add up to three of 20.
	if st, err := g.Stats(sessiontest.Ctx(t)); err != nil || st.WindowSize != binds*20 {
		t.Errorf("window size over the upstream's binds %d (%v), want %d", st.WindowSize, err, binds*20)
	}
	queueBacklog(t, g, "sim", n, func(int) string { return "447700900123" })
	deadline := time.Now().Add(time.Duration(n/tps)*time.Second + 10*time.Second)
	for up.Count() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything beyond n would show
	accepted, _ := up.Binds()
	if accepted != binds {
		t.Errorf("the simulator accepted %d binds, want %d", accepted, binds)
	}
	byBind := map[uint64]int{}
	for _, r := range up.Stats(n).Last {
		byBind[r.Bind]++
	}
	mu.Lock()
	secs := perSecond(arrivals)
	got := len(arrivals)
	mu.Unlock()
	t.Logf("binds %d, max_tps %d: %d submissions; per bind %v; per second %v", binds, tps, got, byBind, secs)
	if got != n {
		t.Fatalf("the simulator saw %d submissions, want %d", got, n)
	}
	if len(byBind) != binds {
		t.Errorf("submissions came on %d binds, want %d", len(byBind), binds)
	}
	for b, c := range byBind {
		if c < n/binds/2 {
			t.Errorf("bind %d carried %d of %d, under half its fair share %d", b, c, n, n/binds)
		}
	}
	// Three token buckets instead of one shared would show as ~300 a second, 400 in ~1.3 s.
	mu.Lock()
	checkRate(t, arrivals, tps)
	mu.Unlock()
}

// TestUpstreamBindsReconnectEach: one of three binds dropped by the simulator is bound again on its
// own while the other two stay up.
func TestUpstreamBindsReconnectEach(t *testing.T) {
	up := startSim(t, "127.0.0.1:0", smscsim.Options{})
	upCfg := simUpstream("sim", up.Addr())
	upCfg.Binds = 3
	g, _, _ := startGateway(t, acmeVia(t, upCfg), newEmbedded(t))
	sessiontest.Eventually(t, "3 binds", func() bool { return up.Bound() == 3 })
	before := g.Upstreams()[0].Status.Binds
	u, err := g.ups.get("sim")
	if err != nil {
		t.Fatal(err)
	}
	ss := u.client.Sessions()
	ss[1].Close()
	sessiontest.Eventually(t, "the dropped bind back", func() bool {
		st := g.Upstreams()[0].Status
		return st.Binds == before+1 && st.BindsUp == 3
	})
	if accepted, _ := up.Binds(); accepted != 4 {
		t.Errorf("the simulator accepted %d binds, want 4 (3, and the one dropped again)", accepted)
	}
}

// TestWeightedRoute: a route of two upstreams weighted 70/30 sends 2,000 messages to them 1,400/600
// (smooth weighted round robin is exact while both are bound; the test allows 2% either way), counted
// at the two simulators; with A paused, everything goes to B.
func TestWeightedRoute(t *testing.T) {
	const n = 2000
	a := startSim(t, "127.0.0.1:0", smscsim.Options{})
	b := startSim(t, "127.0.0.1:0", smscsim.Options{})
	cfg := Config{Accounts: []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("A", a.Addr()), simUpstream("B", b.Addr())},
		Routing:   RouterConfig{Routes: []Route{{Prefix: "44", Upstreams: []string{"A", "B"}, Weights: []int{70, 30}}}}}
	for i := range cfg.Upstreams {
		cfg.Upstreams[i].Session.Window = 50
	}
	g, _, _ := startGateway(t, cfg, newEmbedded(t))
	awaitUp(t, g, "A", "B")
	submitConcurrently(t, g, n, func(i int) string { return fmt.Sprintf("4477%08d", i) })
	sessiontest.Eventually(t, fmt.Sprintf("%d submissions at A and B", n), func() bool { return a.Count()+b.Count() >= n })
	t.Logf("weights 70/30 over %d messages: A %d, B %d", n, a.Count(), b.Count())
	if a.Count()+b.Count() != n {
		t.Errorf("A and B saw %d submissions, want %d", a.Count()+b.Count(), n)
	}
	if d := a.Count() - n*70/100; d < -n/50 || d > n/50 {
		t.Errorf("A carried %d of %d, want %d ± %d", a.Count(), n, n*70/100, n/50)
	}

	if err := g.SetUpstreamPaused("A", true); err != nil {
		t.Fatal(err)
	}
	a0, b0 := a.Count(), b.Count()
	submitConcurrently(t, g, 50, func(i int) string { return fmt.Sprintf("4478%08d", i) })
	sessiontest.Eventually(t, "50 more at B", func() bool { return b.Count() >= b0+50 })
	if a.Count() != a0 {
		t.Errorf("A, paused, took %d more", a.Count()-a0)
	}
}

// TestNumberNormalisation: an account's rules rewrite what it submits before routing (the only route
// is for prefix 44, so a national "07..." number is routable only once rewritten), the upstream's
// rules just before sending; the table shows what the upstream received for each input.
func TestNumberNormalisation(t *testing.T) {
	up := startSim(t, "127.0.0.1:0", smscsim.Options{KeepLast: 50})
	upCfg := simUpstream("sim", up.Addr())
	upCfg.Numbers = NumberRules{
		Destination: AddressRule{TON: "international", NPI: "isdn"},
		Source:      AddressRule{CountryCode: "44"},
	}
	cfg := Config{Accounts: []Account{testAccount(t, "acme", "secret")}, Upstreams: []ClientConfig{upCfg},
		Routing: RouterConfig{Routes: []Route{{Prefix: "44", Upstream: "sim"}},
			AccountNumbers: map[string]NumberRules{"acme": {Destination: AddressRule{StripPlus: true, Strip00: true, CountryCode: "44"}}}}}
	g, addr, _ := startGateway(t, cfg, newEmbedded(t))
	awaitUp(t, g, "sim")
	e := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransceiver, "acme", "secret")
	type addrT struct {
		ton, npi uint8
		addr     string
	}
	cases := []struct {
		name          string
		src, dst      addrT
		wantSrc, want addrT
	}{
		{"plus stripped", addrT{5, 0, "INFO"}, addrT{1, 1, "+447700900001"}, addrT{5, 0, "INFO"}, addrT{1, 1, "447700900001"}},
		{"00 stripped", addrT{5, 0, "INFO"}, addrT{0, 0, "00447700900002"}, addrT{5, 0, "INFO"}, addrT{1, 1, "447700900002"}},
		{"national, country code added", addrT{5, 0, "INFO"}, addrT{0, 0, "07700900003"}, addrT{5, 0, "INFO"}, addrT{1, 1, "447700900003"}},
		{"TON national, country code added", addrT{5, 0, "INFO"}, addrT{2, 1, "7700900004"}, addrT{5, 0, "INFO"}, addrT{1, 1, "447700900004"}},
		{"already international: unchanged", addrT{5, 0, "INFO"}, addrT{1, 1, "447700900005"}, addrT{5, 0, "INFO"}, addrT{1, 1, "447700900005"}},
		{"unknown TON: upstream sets 1/1", addrT{5, 0, "INFO"}, addrT{0, 0, "447700900006"}, addrT{5, 0, "INFO"}, addrT{1, 1, "447700900006"}},
		{"national source: upstream adds 44", addrT{2, 1, "7700900100"}, addrT{1, 1, "447700900007"}, addrT{1, 1, "447700900100"}, addrT{1, 1, "447700900007"}},
		{"numeric source, unknown, trunk 0", addrT{0, 1, "07700900101"}, addrT{1, 1, "447700900008"}, addrT{1, 1, "447700900101"}, addrT{1, 1, "447700900008"}},
		{"international source: unchanged", addrT{1, 1, "447700900102"}, addrT{1, 1, "447700900009"}, addrT{1, 1, "447700900102"}, addrT{1, 1, "447700900009"}},
	}
	for i, c := range cases {
		_, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{
			SourceAddrTON: c.src.ton, SourceAddrNPI: c.src.npi, SourceAddr: c.src.addr,
			DestAddrTON: c.dst.ton, DestAddrNPI: c.dst.npi, DestinationAddr: c.dst.addr, ShortMessage: []byte(fmt.Sprint("case ", i))})
		if err != nil {
			t.Fatalf("%s: submit: %v", c.name, err)
		}
	}
	sessiontest.Eventually(t, "every case at the upstream", func() bool { return up.Count() >= len(cases) })
	got := map[string]*pdu.SubmitSM{}
	for _, sm := range up.Submits() {
		got[string(sm.ShortMessage)] = sm
	}
	for i, c := range cases {
		sm := got[fmt.Sprint("case ", i)]
		if sm == nil {
			t.Errorf("%s: not at the upstream", c.name)
			continue
		}
		gs := addrT{sm.SourceAddrTON, sm.SourceAddrNPI, sm.SourceAddr}
		gd := addrT{sm.DestAddrTON, sm.DestAddrNPI, sm.DestinationAddr}
		t.Logf("%-36s src %d/%d %-12s dst %d/%d %-15s -> upstream src %d/%d %-12s dst %d/%d %s", c.name,
			c.src.ton, c.src.npi, c.src.addr, c.dst.ton, c.dst.npi, c.dst.addr, gs.ton, gs.npi, gs.addr, gd.ton, gd.npi, gd.addr)
		if gs != c.wantSrc || gd != c.want {
			t.Errorf("%s: upstream got src %+v dst %+v, want src %+v dst %+v", c.name, gs, gd, c.wantSrc, c.want)
		}
	}
	// A national number the account's rules do not rewrite finds no route: refused, nothing sent.
	if err := g.SetNumberRules(sessiontest.Ctx(t), "account", "acme", NumberRules{}); err != nil {
		t.Fatal(err)
	}
	_, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "INFO", SourceAddrTON: 5, DestinationAddr: "07700900010", ShortMessage: []byte("x")})
	if st := pdu.StatusOf(err); st != pdu.ESME_RINVDSTADR {
		t.Errorf("with the account's rules emptied in the store, 07700900010 was answered %v, want ESME_RINVDSTADR", st)
	}
}

// TestAddressRule is the rules' table, one address at a time.
func TestAddressRule(t *testing.T) {
	r := AddressRule{StripPlus: true, Strip00: true, CountryCode: "44"}
	for _, c := range []struct {
		ton, npi uint8
		in       string
		wantTON  uint8
		wantNPI  uint8
		want     string
	}{
		{0, 0, "+447700900001", 1, 1, "447700900001"},
		{0, 0, "00447700900001", 1, 1, "447700900001"},
		{0, 0, "07700900001", 1, 1, "447700900001"},
		{2, 1, "7700900001", 1, 1, "447700900001"},
		{1, 1, "447700900001", 1, 1, "447700900001"},
		{0, 0, "447700900001", 0, 0, "447700900001"},
		{5, 0, "INFO", 5, 0, "INFO"},
		{0, 0, "Shop24", 0, 0, "Shop24"},
		{0, 0, "", 0, 0, ""},
		{0, 0, "00", 0, 0, "00"},
	} {
		ton, npi, a := r.Apply(c.ton, c.npi, c.in)
		if ton != c.wantTON || npi != c.wantNPI || a != c.want {
			t.Errorf("Apply(%d, %d, %q) = %d, %d, %q; want %d, %d, %q", c.ton, c.npi, c.in, ton, npi, a, c.wantTON, c.wantNPI, c.want)
		}
		// Applying twice is applying once.
		if t2, n2, a2 := r.Apply(ton, npi, a); t2 != ton || n2 != npi || a2 != a {
			t.Errorf("Apply twice on %q changed %q to %q", c.in, a, a2)
		}
	}
	for _, bad := range []AddressRule{{CountryCode: "4x"}, {CountryCode: "12345"}, {TON: "planet"}, {NPI: "300"}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v passed Validate", bad)
		}
	}
}

// TestMORouteAddedAndDeleted: an MO route added while the gateway runs takes the next MO to its
// account; deleted, the next MO is refused ESME_RINVDSTADR; no restart in between.
func TestMORouteAddedAndDeleted(t *testing.T) {
	up := startSim(t, "127.0.0.1:0", smscsim.Options{})
	g, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", up.Addr())), newEmbedded(t))
	awaitUp(t, g, "sim")
	rx := sessiontest.NewRecorder()
	sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindReceiver, "acme", "secret")
	ctx := sessiontest.Ctx(t)
	mo := func() pdu.CommandStatus {
		st, err := up.SendMO(ctx, &pdu.DeliverSM{SourceAddr: "447700900555", DestinationAddr: "55501", ShortMessage: []byte("hello")})
		if err != nil && pdu.StatusOf(err) == pdu.ESME_ROK {
			t.Fatal(err)
		}
		return st
	}
	if st := mo(); st != pdu.ESME_RINVDSTADR {
		t.Fatalf("MO before any MO route answered %v, want ESME_RINVDSTADR", st)
	}
	if err := g.AddMORoute(ctx, &store.MORoute{Name: "short-555", Prefix: "555", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	if st := mo(); st != pdu.ESME_ROK {
		t.Fatalf("MO after the route was added answered %v, want ESME_ROK", st)
	}
	sessiontest.Eventually(t, "the MO at acme", func() bool { return len(rx.Requests()) == 1 })
	if d := rx.Requests()[0].Body.(*pdu.DeliverSM); d.DestinationAddr != "55501" || string(d.ShortMessage) != "hello" {
		t.Errorf("acme got %+v", d)
	}
	if err := g.DeleteMORoute(ctx, "short-555"); err != nil {
		t.Fatal(err)
	}
	if st := mo(); st != pdu.ESME_RINVDSTADR {
		t.Errorf("MO after the route was deleted answered %v, want ESME_RINVDSTADR", st)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(rx.Requests()); n != 1 {
		t.Errorf("acme got %d deliver_sm, want 1", n)
	}
}

// TestAddedUpstreamKeepsMaxTPS: an upstream added at run time (AddUpstream, as the admin API does)
// with max_tps 50 and 2 binds is stored with them (Throughput, Binds), holds 50+1 per second over a
// backlog of 150, and comes back with the same cap from the store after a restart.
func TestAddedUpstreamKeepsMaxTPS(t *testing.T) {
	const (
		tps = 50
		n   = 150
	)
	var (
		mu       sync.Mutex
		arrivals []time.Time
	)
	up := startSim(t, "127.0.0.1:0", smscsim.Options{OnSubmit: func(_ *smscsim.Sim, _ *pdu.SubmitSM) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	}})
	st := newEmbedded(t)
	cfg := Config{Accounts: []Account{testAccount(t, "acme", "secret")}}
	g, _, stop := startGateway(t, cfg, st)
	ctx := sessiontest.Ctx(t)
	uc := simUpstream("added", up.Addr())
	uc.MaxTPS, uc.Binds, uc.ReconnectMin, uc.ReconnectMax = tps, 2, 20*time.Millisecond, 100*time.Millisecond
	if err := g.AddUpstream(ctx, uc); err != nil {
		t.Fatal(err)
	}
	su, err := st.GetUpstream(ctx, "added")
	if err != nil || su.Throughput != tps || su.Binds != 2 {
		t.Fatalf("stored upstream %+v (%v), want throughput %d, binds 2", su, err, tps)
	}
	if err := st.CreateRoute(ctx, &store.Route{Name: "r", Upstreams: []string{"added"}}); err != nil {
		t.Fatal(err)
	}
	if err := g.ReloadRoutes(ctx); err != nil {
		t.Fatal(err)
	}
	awaitUp(t, g, "added")
	queueBacklog(t, g, "added", n, func(int) string { return "447700900123" })
	deadline := time.Now().Add(time.Duration(n/tps)*time.Second + 10*time.Second)
	for up.Count() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	secs, got := perSecond(arrivals), len(arrivals)
	mu.Unlock()
	t.Logf("added upstream, max_tps %d: %d submissions, per second %v", tps, got, secs)
	if got != n {
		t.Fatalf("the simulator saw %d submissions, want %d", got, n)
	}
	mu.Lock()
	checkRate(t, arrivals, tps)
	mu.Unlock()
	stop()
	su, err = st.GetUpstream(ctx, "added")
	if err != nil {
		t.Fatal(err)
	}
	back, err := clientFromStore(su)
	if err != nil || back.MaxTPS != tps || back.Binds != 2 {
		t.Errorf("upstream read back from the store: max_tps %v, binds %d (%v); want %d, 2", back.MaxTPS, back.Binds, err, tps)
	}
}

// TestRoutingTablesReloaded: routes, MO routes and number rules written into the store by someone else
// (another instance's admin API, sharing the store) take effect here within reload_interval.
func TestRoutingTablesReloaded(t *testing.T) {
	a := startSim(t, "127.0.0.1:0", smscsim.Options{})
	b := startSim(t, "127.0.0.1:0", smscsim.Options{})
	st := newEmbedded(t)
	cfg := Config{Accounts: []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("A", a.Addr()), simUpstream("B", b.Addr())},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "A"}}, ReloadInterval: 50 * time.Millisecond}}
	g, addr, _ := startGateway(t, cfg, st)
	awaitUp(t, g, "A", "B")
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	ctx := sessiontest.Ctx(t)
	if err := st.CreateRoute(ctx, &store.Route{Name: "other", Prefix: "49", Upstreams: []string{"B"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateMORoute(ctx, &store.MORoute{Name: "other", Prefix: "555", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutNumberRules(ctx, &store.NumberRules{Scope: "upstream", Name: "B", Destination: store.AddressRule{TON: "national"}}); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "the route reloaded", func() bool {
		r := g.routes.Routes("acme", "4915100000")
		return len(r) > 0 && r[0] == "B"
	})
	sessiontest.Eventually(t, "the MO route reloaded", func() bool { _, ok := g.moRoutes.account("55501"); return ok })
	sessiontest.Eventually(t, "the number rules reloaded", func() bool { return g.numbers.get("upstream", "B") != nil })
	if _, err := e.Send(ctx, &pdu.SubmitSM{SourceAddr: "INFO", SourceAddrTON: 5, DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: "4915100000", ShortMessage: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "the message at B", func() bool { return b.Count() == 1 })
	if sm := b.Submits()[0]; sm.DestAddrTON != 2 || a.Count() != 0 {
		t.Errorf("B got TON %d (want 2, its reloaded rule), A got %d (want 0)", sm.DestAddrTON, a.Count())
	}
	if st, err := b.SendMO(ctx, &pdu.DeliverSM{SourceAddr: "4915100000", DestinationAddr: "55501", ShortMessage: []byte("mo")}); err != nil || st != pdu.ESME_ROK {
		t.Errorf("MO to the reloaded MO route: %v %v", st, err)
	}
}
