package session

import (
	"testing"

	"github.com/smppgw/smppgw/pdu"
)

func TestCommandIndexNamesEveryCommand(t *testing.T) {
	for i, id := range countedCommands {
		if i == 0 {
			continue
		}
		if got := commandIndex(id); got != i {
			t.Errorf("commandIndex(%v) = %d, want %d", id, got, i)
		}
		if id != pdu.GenericNackID && id != pdu.OutbindID && id != pdu.AlertNotificationID {
			if got := commandIndex(id.Response()); got != i {
				t.Errorf("commandIndex(%v) = %d, want %d", id.Response(), got, i)
			}
		}
	}
	if commandIndex(0x00000010) != 0 || commandIndex(0x80000222) != 0 {
		t.Error("an unknown command id is not index 0")
	}
	for j, st := range countedStatuses {
		if statusIndex(st) != j {
			t.Errorf("statusIndex(%v) = %d, want %d", st, statusIndex(st), j)
		}
	}
	if statusIndex(pdu.ESME_RINVPASWD) != NumStatuses-1 {
		t.Error("an uncounted status is not the last index")
	}
}

// TestMeter: a meter counts its sessions' PDUs by command and status, the latency of the responses
// to window requests, and keeps a session's counts once it ended.
func TestMeter(t *testing.T) {
	esmeMeter, smscMeter := NewMeter("up"), NewMeter("")
	h, addr := startSMSC(t, Config{Meter: smscMeter}, nil)
	s := bindESME(t, addr, newRecorder(), Config{Meter: esmeMeter}, BindTransceiver, "alice", "secret")
	peer := next(t, h.bound)
	const n = 5
	for range n {
		if _, err := s.Send(testCtx(t), submit("1")); err != nil {
			t.Fatal(err)
		}
	}
	find := func(m *Meter, role Role, name string) Counts {
		for _, mc := range m.Snapshot() {
			if mc.Role == role && mc.Name == name {
				return mc.Counts
			}
		}
		return Counts{}
	}
	sub, ok := commandIndex(pdu.SubmitSMID), statusIndex(pdu.ESME_ROK)
	check := func(when string) {
		t.Helper()
		e := find(esmeMeter, RoleESME, "up")
		if e.Requests[Out][sub] != n || e.Responses[In][sub][ok] != n {
			t.Errorf("%s: esme submit_sm out %d, submit_sm_resp in %d; want %d", when, e.Requests[Out][sub], e.Responses[In][sub][ok], n)
		}
		var lat uint64
		for _, c := range e.Latency {
			lat += c
		}
		if lat != n || e.LatencySum <= 0 {
			t.Errorf("%s: latency count %d, sum %v; want %d and > 0", when, lat, e.LatencySum, n)
		}
		c := find(smscMeter, RoleSMSC, "alice")
		if c.Requests[In][sub] != n || c.Responses[Out][sub][ok] != n {
			t.Errorf("%s: smsc submit_sm in %d, submit_sm_resp out %d; want %d", when, c.Requests[In][sub], c.Responses[Out][sub][ok], n)
		}
		bind := commandIndex(pdu.BindTransceiverID)
		if c.Requests[In][bind] != 1 || c.Responses[Out][bind][ok] != 1 {
			t.Errorf("%s: smsc bind_transceiver in %d, resp out %d; want 1", when, c.Requests[In][bind], c.Responses[Out][bind][ok])
		}
	}
	eventually(t, "the SMSC's last response counted", func() bool {
		return find(smscMeter, RoleSMSC, "alice").Responses[Out][sub][ok] == n
	})
	check("live")
	if err := s.Unbind(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	<-peer.Done()
	check("ended")
	var seen []string
	e := find(esmeMeter, RoleESME, "up")
	e.Each(func(dir int, command, status string, n uint64) {
		if dir == Out && command == "submit_sm" {
			seen = append(seen, status)
		}
	})
	if len(seen) != 1 || seen[0] != "ESME_ROK" {
		t.Errorf("Each: submit_sm out by status %v, want [ESME_ROK]", seen)
	}
}
