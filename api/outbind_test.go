package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/load"
)

// TestOutbindAnswers: the admin API's outbind (the operator's "connect now") on the real gateway.
// To an address nobody listens on it is a 404 saying so; to an ESME that takes the connection and
// never binds back, a 504 once bind_timeout has passed; to one that hangs up on the outbind, a 400;
// to smppload's fleet waiting for outbinds
// (internal/load), a 200 with the session, and the fleet member that bound back sends its messages
// through the gateway to the upstream.
func TestOutbindAnswers(t *testing.T) {
	sim := startSim(t)
	st := openEmbedded(t)
	g := startGateway(t, st, sim.Addr())
	e := startEnv(t, g, st, nil)
	op := basicAuth()
	e.createAccount("acme", "pw1")

	outbind := func(want int, addr, bindTimeout string) string {
		t.Helper()
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		raw := e.mustREST(want, "POST", "/v1/admin/outbind", op,
			map[string]any{"host": host, "port": p, "systemId": "acme", "password": "ob", "bindTimeout": bindTimeout}, nil)
		var body struct{ Message string }
		_ = json.Unmarshal(raw, &body)
		return body.Message
	}

	// Nobody listens: the connection is refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	if msg := outbind(404, closed, "2s"); msg != "no ESME listening at "+closed+" (connection refused)" {
		t.Errorf("404 message %q", msg)
	}

	// Something takes the connection and the outbind, and never binds back.
	mute := fakeESME(t, func(c net.Conn) { <-t.Context().Done() })
	if msg := outbind(504, mute, "0.3s"); !strings.Contains(msg, "did not bind back within bind_timeout (300ms)") || !strings.Contains(msg, mute) {
		t.Errorf("504 message %q", msg)
	}

	// An ESME that reads the outbind and hangs up (it did not like the credentials, say).
	picky := fakeESME(t, func(c net.Conn) { _, _ = io.ReadAtLeast(c, make([]byte, 16), 16) }) // the outbind's header
	if msg := outbind(400, picky, "5s"); !strings.Contains(msg, "closed the connection without binding back") {
		t.Errorf("400 message %q", msg)
	}

	// smppload waiting for outbinds: it binds back as acme and sends 20 messages.
	ready := make(chan string, 1)
	type result struct {
		r   load.Report
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		r, err := load.Run(ctx, load.Config{OutbindListen: "127.0.0.1:0", SystemID: "acme", Password: "pw1", Messages: 20,
			OutbindReady: func(addr string) { ready <- addr }})
		done <- result{r, err}
	}()
	fleet := <-ready
	host, port, _ := net.SplitHostPort(fleet)
	p, _ := strconv.Atoi(port)
	var ob struct {
		Session struct {
			SystemID      string `json:"systemId"`
			RemoteAddress string `json:"remoteAddress"`
		} `json:"session"`
	}
	resp, raw := e.rest("POST", "/v1/admin/outbind", op, map[string]any{"host": host, "port": p, "systemId": "acme", "bindTimeout": "10s"}, &ob)
	if resp.StatusCode != 200 || ob.Session.SystemID != "acme" || ob.Session.RemoteAddress != fleet {
		t.Errorf("outbind answered %s %s, want acme's session from %s", resp.Status, raw, fleet)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	r := res.r
	if r.Outbinds == nil || *r.Outbinds != (load.OutbindReport{Received: 1, Bound: 1}) || r.Sent != 20 || r.Acked != 20 {
		t.Fatalf("fleet: outbinds %+v sent %d acked %d\n%s", r.Outbinds, r.Sent, r.Acked, r)
	}
	eventually(t, "the 20 messages at the upstream", func() bool { return sim.Count() == 20 })
}

// fakeESME listens on loopback until the test ends and runs serve on each connection, which it
// closes after; it returns the address.
func fakeESME(t *testing.T, serve func(net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().String()
}
