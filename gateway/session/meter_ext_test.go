package session_test

import (
	"testing"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
)

// TestMeter: a meter counts its sessions' PDUs by command and status, the latency of the responses
// to window requests, and keeps a session's counts once it ended.
func TestMeter(t *testing.T) {
	esmeMeter, smscMeter := session.NewMeter("up"), session.NewMeter("")
	h, addr := startSMSC(t, session.Config{Meter: smscMeter}, nil)
	s := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{Meter: esmeMeter}, session.BindTransceiver, "alice", "secret")
	peer := next(t, h.bound)
	const n = 5
	for range n {
		if _, err := s.Send(sessiontest.Ctx(t), submit("1")); err != nil {
			t.Fatal(err)
		}
	}
	find := func(m *session.Meter, role session.Role, name string) session.Counts {
		for _, mc := range m.Snapshot() {
			if mc.Role == role && mc.Name == name {
				return mc.Counts
			}
		}
		return session.Counts{}
	}
	sub, ok := session.CommandIndex(pdu.SubmitSMID), session.StatusIndex(pdu.ESME_ROK)
	check := func(when string) {
		t.Helper()
		e := find(esmeMeter, session.RoleESME, "up")
		if e.Requests[session.Out][sub] != n || e.Responses[session.In][sub][ok] != n {
			t.Errorf("%s: esme submit_sm out %d, submit_sm_resp in %d; want %d", when, e.Requests[session.Out][sub], e.Responses[session.In][sub][ok], n)
		}
		var lat uint64
		for _, c := range e.Latency {
			lat += c
		}
		if lat != n || e.LatencySum <= 0 {
			t.Errorf("%s: latency count %d, sum %v; want %d and > 0", when, lat, e.LatencySum, n)
		}
		c := find(smscMeter, session.RoleSMSC, "alice")
		if c.Requests[session.In][sub] != n || c.Responses[session.Out][sub][ok] != n {
			t.Errorf("%s: smsc submit_sm in %d, submit_sm_resp out %d; want %d", when, c.Requests[session.In][sub], c.Responses[session.Out][sub][ok], n)
		}
		bind := session.CommandIndex(pdu.BindTransceiverID)
		if c.Requests[session.In][bind] != 1 || c.Responses[session.Out][bind][ok] != 1 {
			t.Errorf("%s: smsc bind_transceiver in %d, resp out %d; want 1", when, c.Requests[session.In][bind], c.Responses[session.Out][bind][ok])
		}
	}
	sessiontest.Eventually(t, "the SMSC's last response counted", func() bool {
		return find(smscMeter, session.RoleSMSC, "alice").Responses[session.Out][sub][ok] == n
	})
	check("live")
	if err := s.Unbind(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	<-peer.Done()
	check("ended")
	var seen []string
	e := find(esmeMeter, session.RoleESME, "up")
	e.Each(func(dir int, command, status string, n uint64) {
		if dir == session.Out && command == "submit_sm" {
			seen = append(seen, status)
		}
	})
	if len(seen) != 1 || seen[0] != "ESME_ROK" {
		t.Errorf("Each: submit_sm out by status %v, want [ESME_ROK]", seen)
	}
}
