package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
)

// The SMSC these tests load is the simulator, internal/smscsim: what the fleet reports is checked
// against what the simulator says it received and sent.

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func run(t *testing.T, cfg Config) Report {
	t.Helper()
	r, err := Run(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, r)
	}
	return r
}

// startSim starts the simulator on loopback until the test ends.
func startSim(t testing.TB, opts smscsim.Options) *smscsim.Sim {
	t.Helper()
	sim, err := smscsim.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// repeat queues the faults, in this order, n times: a Fault of status ESME_ROK answers its Count
// submissions as usual, so {ROK, 9} then {ESME_RTHROTTLED, 1} throttles every 10th.
func repeat(sim *smscsim.Sim, n int, faults ...smscsim.Fault) {
	for range n {
		for _, f := range faults {
			sim.Inject(f)
		}
	}
}

// settled waits until the simulator has the answer to every receipt it sent and no link is left
// bound (the fleet's unbinds end on its side a moment after they end on ours), and returns its stats.
func settled(t *testing.T, sim *smscsim.Sim) smscsim.Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := sim.Stats(0)
		if st.ReceiptsAnswered+st.ReceiptsFailed == st.ReceiptsSent && st.Bound == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the simulator did not settle: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sameCounts checks the closing report against the simulator's stats, count by count: submissions
// received are what was sent, answers by status are what was acknowledged and refused, receipts
// sent (by state) are receipts counted.
func sameCounts(t *testing.T, r Report, st smscsim.Stats) {
	t.Helper()
	bound := int64(r.Binds.Bound)
	if r.Outbinds != nil {
		bound += r.Outbinds.Bound
	}
	if int64(st.BindsAccepted) != bound || st.BindsRefused != r.Binds.Failed {
		t.Errorf("binds: report %+v outbinds %+v; simulator accepted %d refused %d", r.Binds, r.Outbinds, st.BindsAccepted, st.BindsRefused)
	}
	if int64(st.Submits) != r.Sent {
		t.Errorf("sent %d, simulator received %d", r.Sent, st.Submits)
	}
	if int64(st.Answered[pdu.ESME_ROK.String()]) != r.Acked {
		t.Errorf("acknowledged %d, simulator answered ESME_ROK %d", r.Acked, st.Answered[pdu.ESME_ROK.String()])
	}
	for _, name := range slices.Sorted(maps.Keys(st.Answered)) {
		if name != pdu.ESME_ROK.String() && int64(st.Answered[name]) != r.Errors[name] {
			t.Errorf("errors %s: %d, simulator answered %d", name, r.Errors[name], st.Answered[name])
		}
	}
	for name, n := range r.Errors {
		if int64(st.Answered[name]) != n {
			t.Errorf("errors %s: %d, simulator answered %d", name, n, st.Answered[name])
		}
	}
	if int64(st.ReceiptsSent) != r.Receipts || st.ReceiptsAnswered != st.ReceiptsSent {
		t.Errorf("receipts %d, simulator sent %d (answered %d)", r.Receipts, st.ReceiptsSent, st.ReceiptsAnswered)
	}
	byState := map[string]int64{}
	for word, n := range st.ReceiptStates {
		state, err := smscsim.ParseState(word)
		if err != nil {
			t.Fatal(err)
		}
		byState[state.String()] += int64(n)
	}
	if !maps.Equal(byState, r.ReceiptsByState) && (len(byState) > 0 || len(r.ReceiptsByState) > 0) {
		t.Errorf("receipts by state %v, simulator sent %v", r.ReceiptsByState, byState)
	}
	if r.Timeouts+r.Lost+r.SendFails != 0 {
		t.Errorf("timeouts %d lost %d send errors %d", r.Timeouts, r.Lost, r.SendFails)
	}
}

func TestCountsMatchSim(t *testing.T) {
	sim := startSim(t, smscsim.Options{NoRecord: true})
	r := run(t, Config{Addr: sim.Addr(), Binds: 4, Messages: 1000, Window: 20, Mix: TextMix{{KindGSM, 3}, {KindUCS2, 1}}})
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if r.Binds != (BindReport{Asked: 4, Bound: 4}) || r.Messages != 1000 || r.Sent != 1000 || r.Acked != 1000 || len(r.Errors) != 0 {
		t.Errorf("binds %+v messages %d sent %d acked %d errors %v; want 4 binds and 1000 each", r.Binds, r.Messages, r.Sent, r.Acked, r.Errors)
	}
	sameCounts(t, r, settled(t, sim))
	if r.Latency.Max <= 0 || r.Latency.P50 > r.Latency.Max || r.Throughput <= 0 {
		t.Errorf("latency %+v throughput %g", r.Latency, r.Throughput)
	}
}

// TestFaultsCountsMatchSim: receipts on, in a mix of final states, and every 10th submission
// throttled; the closing report counts what the simulator did, status by status and state by state.
func TestFaultsCountsMatchSim(t *testing.T) {
	mix, err := smscsim.ParseMix("DELIVRD:3,UNDELIV:1")
	if err != nil {
		t.Fatal(err)
	}
	sim := startSim(t, smscsim.Options{ReceiptMix: mix, Seed: 7, NoRecord: true})
	// A long message is three submissions: queue the pattern for more than can come.
	repeat(sim, 300, smscsim.Fault{Status: pdu.ESME_ROK, Count: 9}, smscsim.Fault{Status: pdu.ESME_RTHROTTLED, Count: 1})
	r := run(t, Config{Addr: sim.Addr(), Binds: 4, Messages: 1000, Window: 20,
		Mix:                TextMix{{KindGSM, 6}, {KindUCS2, 3}, {KindLong, 1}},
		RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, WaitReceipts: 10 * time.Second})
	st := settled(t, sim)
	sameCounts(t, r, st)
	if throttled := r.Errors[pdu.ESME_RTHROTTLED.String()]; throttled != r.Sent/10 || len(r.Errors) != 1 || r.Sent <= 1000 {
		t.Errorf("sent %d, errors %v: want every 10th throttled", r.Sent, r.Errors)
	}
	if r.Receipts != r.Acked || r.ReceiptsByState[pdu.DELIVERED.String()] == 0 || r.ReceiptsByState[pdu.UNDELIVERABLE.String()] == 0 {
		t.Errorf("acked %d, receipts %d by state %v", r.Acked, r.Receipts, r.ReceiptsByState)
	}
	t.Logf("report:\n%s\nsimulator:\n%+v", r, st)
}

// TestDroppedLink: the simulator drops one of the four links mid-run (receipts on). The fleet carries
// on with the other three; what it counts still adds up with what the simulator did, except for what
// was on the wire when the link dropped: smppload counts it lost.
func TestDroppedLink(t *testing.T) {
	sim := startSim(t, smscsim.Options{NoRecord: true})
	sim.Inject(smscsim.Fault{Status: pdu.ESME_ROK, Count: 300})
	// Held, so that the fleet cannot finish before the link drops under it (a Close alone drops the
	// link 20 ms later, which on an idle machine is after the whole run).
	sim.Inject(smscsim.Fault{Hold: true, Close: true, Count: 1})
	r, err := Run(testCtx(t), Config{Addr: sim.Addr(), Binds: 4, Messages: 1000, Window: 20,
		RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, WaitReceipts: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := settled(t, sim)
	ok := int64(st.Answered[pdu.ESME_ROK.String()])
	switch {
	case st.LinksDropped != 1 || st.BindsAccepted != 4 || r.Binds.Bound != 4:
		t.Errorf("simulator dropped %d links of %d; fleet bound %d", st.LinksDropped, st.BindsAccepted, r.Binds.Bound)
	case r.Sent != r.Acked+r.Lost || r.Timeouts != 0 || len(r.Errors) != 0:
		t.Errorf("sent %d = acked %d + lost %d? timeouts %d, errors %v", r.Sent, r.Acked, r.Lost, r.Timeouts, r.Errors)
	case ok < r.Acked || ok > r.Acked+r.Lost:
		t.Errorf("simulator answered ESME_ROK %d, fleet acknowledged %d and lost %d", ok, r.Acked, r.Lost)
	case int64(st.Submits) < ok || int64(st.Submits) > r.Sent:
		t.Errorf("simulator received %d, answered %d; fleet sent %d", st.Submits, ok, r.Sent)
	case int64(st.ReceiptsAnswered) > r.Receipts || r.Receipts > int64(st.ReceiptsSent):
		t.Errorf("receipts %d; simulator sent %d, %d answered", r.Receipts, st.ReceiptsSent, st.ReceiptsAnswered)
	case r.Acked < 900:
		t.Errorf("acked %d: the three links left did not carry on", r.Acked)
	}
	t.Logf("report:\n%s\nsimulator:\n%+v", r, st)
}

func TestErrorsByStatus(t *testing.T) {
	sim := startSim(t, smscsim.Options{NoRecord: true})
	ok4 := smscsim.Fault{Status: pdu.ESME_ROK, Count: 4}
	repeat(sim, 20, ok4, smscsim.Fault{Status: pdu.ESME_RINVDSTADR, Count: 1}, ok4, smscsim.Fault{Status: pdu.ESME_RTHROTTLED, Count: 1})
	r := run(t, Config{Addr: sim.Addr(), Binds: 2, Messages: 200, Window: 5})
	want := map[string]int64{pdu.ESME_RTHROTTLED.String(): 20, pdu.ESME_RINVDSTADR.String(): 20}
	if !maps.Equal(r.Errors, want) || r.Sent != 200 || r.Acked != 160 {
		t.Errorf("sent %d acked %d errors by status %v; want 200, 160 and %v", r.Sent, r.Acked, r.Errors, want)
	}
	sameCounts(t, r, settled(t, sim))
}

func TestReceipts(t *testing.T) {
	sim := startSim(t, smscsim.Options{NoRecord: true})
	r := run(t, Config{Addr: sim.Addr(), Binds: 3, Messages: 300, Window: 10, RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, WaitReceipts: 10 * time.Second})
	if r.Acked != 300 || r.Receipts != 300 || r.ReceiptsByState[pdu.DELIVERED.String()] != 300 {
		t.Errorf("acked %d receipts %d by state %v; want 300 DELIVERED", r.Acked, r.Receipts, r.ReceiptsByState)
	}
	sameCounts(t, r, settled(t, sim))
}

func TestLongMessagesCountParts(t *testing.T) {
	sim := startSim(t, smscsim.Options{})
	r := run(t, Config{Addr: sim.Addr(), Binds: 2, Messages: 40, Mix: TextMix{{KindLong, 1}, {KindLongUCS2, 1}}})
	if r.Messages != 40 || r.Sent != 120 || r.Acked != 120 {
		t.Errorf("messages %d sent %d acked %d; want 40 messages in 120 parts", r.Messages, r.Sent, r.Acked)
	}
	sameCounts(t, r, settled(t, sim))
	// The simulator reads the parts' UDH: each message's three parts carry one reference.
	refs := map[[2]byte]int{}
	for _, sm := range sim.Submits() {
		h, _, err := pdu.ParseUDH(sm.ShortMessage)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := h.Concat()
		if !ok {
			t.Fatalf("a part without a concatenation header: %x", sm.ShortMessage)
		}
		refs[[2]byte{byte(c.Ref), c.Total}]++
	}
	for ref, n := range refs {
		if n%3 != 0 {
			t.Errorf("reference %v: %d parts", ref, n)
		}
	}
}

func TestRateLimit(t *testing.T) {
	sim := startSim(t, smscsim.Options{NoRecord: true})
	const rate, d = 200, 500 * time.Millisecond
	r := run(t, Config{Addr: sim.Addr(), Binds: 4, Window: 50, Rate: rate, Duration: d})
	// The limiter lets a burst of rate/50 through at once, then rate per second: at most 104 in
	// half a second. The lower bound only checks that sending happened at all.
	if r.Sent > rate*d.Milliseconds()/1000+rate/50 || r.Sent < 20 {
		t.Errorf("sent %d in %s at %d/s", r.Sent, d, rate)
	}
	sameCounts(t, r, settled(t, sim))
}

func TestJSON(t *testing.T) {
	sim := startSim(t, smscsim.Options{NoRecord: true})
	sim.Inject(smscsim.Fault{Status: pdu.ESME_ROK, Count: 2})
	sim.Inject(smscsim.Fault{Status: pdu.ESME_RTHROTTLED, Count: 1})
	r := run(t, Config{Addr: sim.Addr(), Messages: 10})
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Sent    int64            `json:"sent"`
		Acked   int64            `json:"acknowledged"`
		Errors  map[string]int64 `json:"errors_by_status"`
		Latency map[string]float64
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	if got.Sent != 10 || got.Acked != 9 || got.Errors["ESME_RTHROTTLED"] != 1 || got.Latency["p99_ms"] <= 0 {
		t.Errorf("JSON: %s", buf.Bytes())
	}
}

func TestBindFailed(t *testing.T) {
	sim := startSim(t, smscsim.Options{Accounts: map[string]string{"smppload": "right"}})
	r, err := Run(testCtx(t), Config{Addr: sim.Addr(), Binds: 2, Password: "wrong", Messages: 10})
	if !errors.Is(err, ErrNoBind) || r.Binds.Failed != 2 || !errors.Is(r.Check(), ErrBindFailed) {
		t.Errorf("err %v, report %+v", err, r.Binds)
	}
	if _, refused := sim.Binds(); refused != 2 {
		t.Errorf("simulator refused %d binds, want 2", refused)
	}
}

// TestOutbind plays the SMSC's "connect now": the simulator dials the fleet's outbind listener,
// sends outbind, and serves the bind that comes back on the same connection.
func TestOutbind(t *testing.T) {
	sim := startSim(t, smscsim.Options{Accounts: map[string]string{"esme1": "pw"}})
	ready := make(chan string, 1)
	type result struct {
		r   Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := Run(testCtx(t), Config{OutbindListen: "127.0.0.1:0", Messages: 50, SystemID: "esme1", Password: "pw",
			OutbindReady: func(a string) { ready <- a }})
		done <- result{r, err}
	}()
	if err := sim.Outbind(testCtx(t), <-ready, "esme1", "pw"); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	r := res.r
	if r.Outbinds == nil || *r.Outbinds != (OutbindReport{Received: 1, Bound: 1}) || r.Acked != 50 {
		t.Errorf("outbinds %+v, acked %d", r.Outbinds, r.Acked)
	}
	if err := r.Check(); err != nil {
		t.Error(err)
	}
	st := settled(t, sim)
	sameCounts(t, r, st)
	if last := sim.Submits(); len(last) != 50 {
		t.Errorf("simulator recorded %d submissions", len(last))
	}
	if bt := sim.Stats(1).Last; len(bt) != 1 || bt[0].SystemID != "esme1" {
		t.Errorf("last submission %+v, want one from esme1", bt)
	}
}

func TestParseTextMix(t *testing.T) {
	m, err := ParseTextMix("long=5, gsm=80,ucs2=15")
	if err != nil || m.String() != "gsm=80,ucs2=15,long=5" {
		t.Errorf("%v %v", m, err)
	}
	for _, bad := range []string{"", "gsm", "gsm=-1", "emoji=3", "gsm=0", "gsm=1,gsm=2"} {
		if _, err := ParseTextMix(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	q := h.quantiles(0.5, 0.99)
	for i, want := range []time.Duration{500 * time.Microsecond, 990 * time.Microsecond} {
		if d := q[i] - want; d < -want/30 || d > want/30 {
			t.Errorf("quantile %d: %s, want %s within 3%%", i, q[i], want)
		}
	}
	if h.max.Load() != int64(time.Millisecond) {
		t.Errorf("max %d", h.max.Load())
	}
}
