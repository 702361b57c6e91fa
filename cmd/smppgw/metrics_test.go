package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
)

// logLine returns the first log line with message msg, among those read already or to come.
func (lt *logTail) logLine(t *testing.T, msg string) map[string]any {
	t.Helper()
	for _, m := range lt.seen {
		if s, _ := m["message"].(string); s == msg {
			return m
		}
	}
	return lt.until(t, msg)
}

// scrape reads /metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := (&http.Client{Timeout: wait}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample sums the values (counter, gauge) or the sample counts (histogram) of name's series that
// carry all of labels ("k=v" pairs).
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// TestServeMetrics: the daemon with an ESME and an upstream (internal/smscsim); after n submit_sm
// and their receipts, /metrics counts exactly that traffic, and every metric the Grafana dashboard
// and the alert rules query exists.
func TestServeMetrics(t *testing.T) {
	sim, err := smscsim.Start("127.0.0.1:0", smscsim.Options{SystemID: "sim", Accounts: map[string]string{"gwup": "uppw"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	addr, lt, _ := startServe(t, fmt.Sprintf(`
log: {level: debug, format: json}
smpp:
  listen: 127.0.0.1:0
  accounts:
    - {system_id: acme, password_hash: %q}
upstreams:
  - {name: sim, address: %s, system_id: gwup, password: uppw, reconnect_min: 50ms, reconnect_max: 200ms}
routing:
  routes:
    - {prefix: "44", upstream: sim}
shutdown_timeout: 5s
`, bcryptHash(t, "s3cret"), sim.Addr()))
	httpAddr, _ := lt.logLine(t, "api listening")["http"].(string)
	lt.logLine(t, "bound") // the upstream bind

	e, err := bindESME(t, addr, "acme", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	const n = 7
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		_, err := e.s.Send(ctx, &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: fmt.Sprintf("4477009000%d", i),
			RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("hello")})
		cancel()
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}

	ok := "status=ESME_ROK"
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"smppgw_pdus_total", []string{"role=smsc", "name=acme", "direction=in", "command=submit_sm", ok}, n},
		{"smppgw_pdus_total", []string{"role=smsc", "name=acme", "direction=out", "command=submit_sm_resp", ok}, n},
		{"smppgw_pdus_total", []string{"role=smsc", "name=acme", "direction=out", "command=submit_sm_resp"}, n}, // no errors
		{"smppgw_pdus_total", []string{"role=smsc", "name=acme", "direction=out", "command=deliver_sm"}, n},     // the receipts
		{"smppgw_pdus_total", []string{"role=smsc", "name=acme", "direction=in", "command=deliver_sm_resp", ok}, n},
		{"smppgw_pdus_total", []string{"role=smsc", "name=acme", "direction=in", "command=bind_transceiver"}, 1},
		{"smppgw_pdus_total", []string{"role=esme", "name=sim", "direction=out", "command=submit_sm", ok}, n},
		{"smppgw_pdus_total", []string{"role=esme", "name=sim", "direction=in", "command=submit_sm_resp", ok}, n},
		{"smppgw_pdus_total", []string{"role=esme", "name=sim", "direction=in", "command=deliver_sm"}, n},
		{"smppgw_pdus_total", []string{"role=esme", "name=sim", "direction=out", "command=deliver_sm_resp", ok}, n},
		{"smppgw_response_latency_seconds", []string{"role=esme", "name=sim"}, n},  // submit_sm to the upstream
		{"smppgw_response_latency_seconds", []string{"role=smsc", "name=acme"}, n}, // deliver_sm to the ESME
		{"smppgw_sessions", []string{"role=smsc", "state=bound", "bind_type=transceiver"}, 1},
		{"smppgw_sessions", []string{"role=esme", "state=bound"}, 1},
		{"smppgw_upstream_up", []string{"upstream=sim"}, 1},
		{"smppgw_window_used", []string{"role=esme", "name=sim"}, 0},
		{"smppgw_queue_depth", []string{"kind=submit", "name=sim"}, 0},
		{"smppgw_queue_depth", []string{"kind=deliver", "name=acme"}, 0},
		{"smppgw_messages_accepted_total", nil, n},
		{"smppgw_messages_rejected_total", nil, 0},
		{"smppgw_parts_submitted_total", nil, n},
		{"smppgw_receipts_received_total", nil, n},
		{"smppgw_receipts_total", []string{"state=DELIVERED"}, n},
		{"smppgw_receipts_total", nil, n},
		{"smppgw_messages", []string{"status=DELIVERED"}, n},
		{"smppgw_upstream_submits_total", []string{"upstream=sim", "result=accepted"}, n},
		{"smppgw_store_operation_duration_seconds", []string{"op=accept_message"}, n},
		{"smppgw_store_operation_duration_seconds", []string{"op=add_receipt"}, n},
		{"smppgw_scrape_error", nil, 0},
	}
	url := "http://" + httpAddr + "/metrics"
	var fams map[string]*dto.MetricFamily
	var bad []string
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		fams = scrape(t, url)
		bad = bad[:0]
		for _, w := range want {
			if got := sample(fams, w.name, w.labels...); got != w.value {
				bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", w.name, w.labels, got, w.value))
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
	if got := len(e.delivered()); got != n {
		t.Errorf("the ESME got %d receipts, want %d", got, n)
	}
	if got := len(sim.Submits()); got != n {
		t.Errorf("the upstream saw %d submit_sm, want %d", got, n)
	}

	// Every metric the dashboard and the alert rules query is served.
	for _, m := range queriedMetrics(t) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
		if fams[m] == nil && fams[base] == nil {
			t.Errorf("deploy queries %s, which /metrics does not serve", m)
		}
	}
}

var metricName = regexp.MustCompile(`\bsmppgw_[a-z0-9_]+`)

// queriedMetrics returns the smppgw_ metric names in the Grafana dashboard's queries and the
// alert rules' expressions.
func queriedMetrics(t *testing.T) []string {
	t.Helper()
	var exprs []string
	raw, err := os.ReadFile("../../deploy/grafana/smppgw-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct{ Query any } `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if s, ok := v.Query.(string); ok {
			exprs = append(exprs, s)
		}
	}
	raw, err = os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Expr string } `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	set := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			set[m] = true
		}
	}
	if len(set) < 10 {
		t.Fatalf("only %d metrics found in the dashboard and alerts: %v", len(set), set)
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
