package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

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

func TestCountsMatchResponder(t *testing.T) {
	resp := &responder{}
	addr := resp.start(t)
	r := run(t, Config{Addr: addr, Binds: 4, Messages: 1000, Window: 20, Mix: TextMix{{KindGSM, 3}, {KindUCS2, 1}}})
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if r.Binds != (BindReport{Asked: 4, Bound: 4}) || resp.binds.Load() != 4 {
		t.Errorf("binds: %+v, responder saw %d", r.Binds, resp.binds.Load())
	}
	if r.Messages != 1000 || r.Sent != 1000 || r.Acked != 1000 || resp.received.Load() != 1000 {
		t.Errorf("messages %d sent %d acked %d, responder received %d; want 1000 each", r.Messages, r.Sent, r.Acked, resp.received.Load())
	}
	if r.Timeouts+r.Lost+r.SendFails != 0 || len(r.Errors) != 0 {
		t.Errorf("errors: %+v", r)
	}
	if r.Latency.Max <= 0 || r.Latency.P50 > r.Latency.Max || r.Throughput <= 0 {
		t.Errorf("latency %+v throughput %g", r.Latency, r.Throughput)
	}
}

func TestErrorsByStatus(t *testing.T) {
	resp := &responder{refuse: func(n int64) pdu.CommandStatus {
		switch {
		case n%10 == 0:
			return pdu.ESME_RTHROTTLED
		case n%10 == 5:
			return pdu.ESME_RINVDSTADR
		}
		return pdu.ESME_ROK
	}}
	addr := resp.start(t)
	r := run(t, Config{Addr: addr, Binds: 2, Messages: 200, Window: 5})
	want := map[string]int64{pdu.ESME_RTHROTTLED.String(): 20, pdu.ESME_RINVDSTADR.String(): 20}
	if len(r.Errors) != 2 || r.Errors[pdu.ESME_RTHROTTLED.String()] != 20 || r.Errors[pdu.ESME_RINVDSTADR.String()] != 20 {
		t.Errorf("errors by status %v, want %v", r.Errors, want)
	}
	if r.Sent != 200 || r.Acked != 160 {
		t.Errorf("sent %d acked %d, want 200 and 160", r.Sent, r.Acked)
	}
}

func TestReceipts(t *testing.T) {
	resp := &responder{receipts: true}
	addr := resp.start(t)
	r := run(t, Config{Addr: addr, Binds: 3, Messages: 300, Window: 10, RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, WaitReceipts: 10 * time.Second})
	if r.Acked != 300 || r.Receipts != 300 || r.ReceiptsByState[pdu.DELIVERED.String()] != 300 {
		t.Errorf("acked %d receipts %d by state %v; want 300 DELIVERED", r.Acked, r.Receipts, r.ReceiptsByState)
	}
}

func TestLongMessagesCountParts(t *testing.T) {
	resp := &responder{}
	addr := resp.start(t)
	r := run(t, Config{Addr: addr, Binds: 2, Messages: 40, Mix: TextMix{{KindLong, 1}, {KindLongUCS2, 1}}})
	if r.Messages != 40 || r.Sent != 120 || r.Acked != 120 || resp.received.Load() != 120 {
		t.Errorf("messages %d sent %d acked %d received %d; want 40 messages in 120 parts", r.Messages, r.Sent, r.Acked, resp.received.Load())
	}
}

func TestRateLimit(t *testing.T) {
	resp := &responder{}
	addr := resp.start(t)
	const rate, d = 200, 500 * time.Millisecond
	r := run(t, Config{Addr: addr, Binds: 4, Window: 50, Rate: rate, Duration: d})
	// The limiter lets a burst of rate/50 through at once, then rate per second: at most 104 in
	// half a second. The lower bound only checks that sending happened at all.
	if r.Sent > rate*d.Milliseconds()/1000+rate/50 || r.Sent < 20 {
		t.Errorf("sent %d in %s at %d/s", r.Sent, d, rate)
	}
	if r.Acked != r.Sent || resp.received.Load() != r.Sent {
		t.Errorf("sent %d acked %d received %d", r.Sent, r.Acked, resp.received.Load())
	}
}

func TestJSON(t *testing.T) {
	resp := &responder{refuse: func(n int64) pdu.CommandStatus {
		if n == 3 {
			return pdu.ESME_RTHROTTLED
		}
		return pdu.ESME_ROK
	}}
	addr := resp.start(t)
	r := run(t, Config{Addr: addr, Messages: 10})
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
	resp := &responder{}
	addr := resp.start(t)
	r, err := Run(testCtx(t), Config{Addr: addr, Binds: 2, Password: "wrong", Messages: 10})
	if !errors.Is(err, ErrNoBind) || r.Binds.Failed != 2 || !errors.Is(r.Check(), ErrBindFailed) {
		t.Errorf("err %v, report %+v", err, r.Binds)
	}
}

// TestOutbind plays the gateway's "connect now": it dials the fleet's outbind listener, sends
// outbind, and serves the bind that comes back on the same connection.
func TestOutbind(t *testing.T) {
	resp := &responder{}
	ready := make(chan string, 1)
	type result struct {
		r   Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := Run(testCtx(t), Config{OutbindListen: "127.0.0.1:0", Messages: 50, SystemID: "esme1",
			outbindReady: func(a string) { ready <- a }})
		done <- result{r, err}
	}()
	addr := <-ready
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := resp.serve(conn)
	if err := s.Outbind("esme1", "pw"); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	r := res.r
	if r.Outbinds == nil || *r.Outbinds != (OutbindReport{Received: 1, Bound: 1}) || resp.binds.Load() != 1 {
		t.Errorf("outbinds %+v, responder binds %d", r.Outbinds, resp.binds.Load())
	}
	if s.BindType() != session.BindTransceiver || r.Acked != 50 || resp.received.Load() != 50 {
		t.Errorf("bind %s, acked %d, received %d", s.BindType(), r.Acked, resp.received.Load())
	}
	if err := r.Check(); err != nil {
		t.Error(err)
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
