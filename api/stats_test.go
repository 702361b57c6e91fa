package api_test

import (
	"context"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// countingESME answers every deliver_sm OK and counts them.
type countingESME struct {
	session.BaseHandler
	delivers atomic.Int64
}

func (c *countingESME) HandleRequest(s *session.Session, req session.Request) {
	if _, ok := req.Body.(*pdu.DeliverSM); ok {
		c.delivers.Add(1)
		_ = s.Respond(req, pdu.ESME_ROK, &pdu.DeliverSMResp{})
		return
	}
	_ = s.Respond(req, pdu.ESME_RINVCMDID, nil)
}

// TestAdminStatsAfterTraffic: N submit_sm over a real socket through the real gateway (embedded
// store) to a simulated SMSC that sends a receipt for each; then M more with the upstream paused.
// The admin REST API's stats, session and upstream read those numbers.
func TestAdminStatsAfterTraffic(t *testing.T) {
	const n, m = 4, 3
	st := openEmbedded(t)
	g := startGateway(t, st, startSim(t).Addr())
	e := startEnv(t, g, st, nil)
	op := basicAuth()
	e.createAccount("acme", "pw1")

	type upstream struct {
		State     string `json:"state"`
		LastError string `json:"lastError"`
	}
	var up struct {
		Upstream upstream `json:"upstream"`
	}
	eventually(t, "up1 bound", func() bool {
		resp, _ := e.rest("GET", "/v1/admin/upstreams/up1", op, nil, &up)
		return resp.StatusCode == 200 && up.Upstream.State == "UPSTREAM_STATE_BOUND"
	})

	conn, err := net.Dial("tcp", g.Server().Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	h := &countingESME{}
	esme := session.New(conn, session.Options{Role: session.RoleESME, Handler: h, Logger: zerolog.Nop()})
	t.Cleanup(esme.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := esme.Bind(ctx, session.BindTransceiver, session.BindParams{SystemID: "acme", Password: "pw1"}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := esme.Send(ctx, &pdu.SubmitSM{SourceAddr: "ACME", DestinationAddr: "4915112345678", RegisteredDelivery: 1, ShortMessage: []byte("hi")}); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	eventually(t, "every receipt at the ESME", func() bool { return h.delivers.Load() == n })

	type queue struct {
		Name      string `json:"name"`
		Depth     string `json:"depth"`
		Pending   string `json:"pending"`
		OldestAge string `json:"oldestAge"`
	}
	type stats struct {
		MessagesByStatus map[string]string `json:"messagesByStatus"`
		Throughput       struct {
			Accepted  float64 `json:"acceptedPerSecond"`
			Submitted float64 `json:"submittedPerSecond"`
			Receipts  float64 `json:"receiptsPerSecond"`
			MO        float64 `json:"moPerSecond"`
		} `json:"throughput"`
		UpstreamQueues []queue `json:"upstreamQueues"`
		DeliveryQueues []queue `json:"deliveryQueues"`
	}
	perMinute := func(rate float64) float64 { return math.Round(rate * 60) }
	var s stats
	e.mustREST(200, "GET", "/v1/admin/stats", op, nil, &s)
	if s.MessagesByStatus["MESSAGE_STATUS_DELIVERED"] != "4" || len(s.MessagesByStatus) != 1 {
		t.Errorf("messages by status %v, want 4 DELIVERED only", s.MessagesByStatus)
	}
	if perMinute(s.Throughput.Accepted) != n || perMinute(s.Throughput.Submitted) != n || perMinute(s.Throughput.Receipts) != n || s.Throughput.MO != 0 {
		t.Errorf("throughput %+v, want %d/60 a second accepted, submitted and receipts, no MO", s.Throughput, n)
	}

	var sessions struct {
		Sessions []struct {
			SessionID        string     `json:"sessionId"`
			InterfaceVersion int        `json:"interfaceVersion"`
			BindTime         *time.Time `json:"bindTime"`
			LastActivityTime *time.Time `json:"lastActivityTime"`
			Counters         struct {
				SubmitSm        string `json:"submitSm"`
				SubmitSmErrors  string `json:"submitSmErrors"`
				DeliverSm       string `json:"deliverSm"`
				DeliverSmErrors string `json:"deliverSmErrors"`
			} `json:"counters"`
		} `json:"sessions"`
	}
	e.mustREST(200, "GET", "/v1/admin/sessions?systemId=acme", op, nil, &sessions)
	if len(sessions.Sessions) != 1 {
		t.Fatalf("sessions %+v", sessions)
	}
	ss := sessions.Sessions[0]
	if c := ss.Counters; c.SubmitSm != "4" || c.DeliverSm != "4" || c.SubmitSmErrors != "0" || c.DeliverSmErrors != "0" {
		t.Errorf("session counters %+v, want 4 submit_sm and 4 deliver_sm, no errors", c)
	}
	if ss.InterfaceVersion != 0x34 || ss.BindTime == nil || ss.LastActivityTime == nil || ss.LastActivityTime.Before(*ss.BindTime) {
		t.Errorf("session interface_version %#x, bind %v, last activity %v", ss.InterfaceVersion, ss.BindTime, ss.LastActivityTime)
	}

	// Paused, up1 takes nothing: the next m messages wait in its queue, listed as its queue.
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:pause", op, map[string]any{}, nil)
	time.Sleep(1200 * time.Millisecond) // a claim already waiting (up to 1s) when the pause came returns empty
	for i := range m {
		if _, err := esme.Send(ctx, &pdu.SubmitSM{SourceAddr: "ACME", DestinationAddr: "4915112345678", ShortMessage: []byte("later")}); err != nil {
			t.Fatalf("submit while paused %d: %v", i, err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	e.mustREST(200, "GET", "/v1/admin/stats", op, nil, &s)
	if len(s.UpstreamQueues) != 1 || s.UpstreamQueues[0].Name != "up1" || s.UpstreamQueues[0].Depth != "3" || s.UpstreamQueues[0].Pending != "0" {
		t.Errorf("upstream queues %+v, want up1 with 3 waiting, none pending", s.UpstreamQueues)
	} else if age, err := time.ParseDuration(s.UpstreamQueues[0].OldestAge); err != nil || age <= 0 || age > time.Minute {
		t.Errorf("up1 oldest age %q, want a positive age under a minute", s.UpstreamQueues[0].OldestAge)
	}
	if len(s.DeliveryQueues) != 1 || s.DeliveryQueues[0].Name != "acme" || s.DeliveryQueues[0].Depth != "0" {
		t.Errorf("delivery queues %+v, want acme, empty", s.DeliveryQueues)
	}
	if perMinute(s.Throughput.Accepted) != n+m || perMinute(s.Throughput.Submitted) != n {
		t.Errorf("throughput after the paused submissions %+v", s.Throughput)
	}

	// A bind that ends and comes back leaves no error behind.
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:resume", op, map[string]any{}, nil)
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:reconnect", op, map[string]any{}, nil)
	eventually(t, "up1 bound again", func() bool {
		resp, _ := e.rest("GET", "/v1/admin/upstreams/up1", op, nil, &up)
		return resp.StatusCode == 200 && up.Upstream.State == "UPSTREAM_STATE_BOUND" && g.Upstreams()[0].Status.Binds == 2
	})
	e.mustREST(200, "GET", "/v1/admin/upstreams/up1", op, nil, &up)
	if up.Upstream.LastError != "" {
		t.Errorf("rebound upstream reports last error %q", up.Upstream.LastError)
	}
}
