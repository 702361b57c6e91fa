package session_test

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
)

// rawBind binds a plain connection to addr as alice (transceiver) and returns it with its reader.
func rawBind(t testing.TB, addr string) (net.Conn, *pdu.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b, err := pdu.Append(nil, 1, pdu.ESME_ROK, &pdu.BindTransceiver{SystemID: "alice", Password: "secret", InterfaceVersion: 0x34})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	r := pdu.NewReader(c, 0)
	c.SetReadDeadline(time.Now().Add(sessiontest.Wait))
	if h, _, err := r.Read(); err != nil || h.ID != pdu.BindTransceiverRespID || h.Status != pdu.ESME_ROK {
		t.Fatalf("bind: %v %v", h, err)
	}
	return c, r
}

// inUse is the heap and goroutine stack memory in use after a collection.
func inUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// An idle bound session holds its reader goroutine and little else: no writer goroutine, no
// outgoing buffer (counted), no big read buffer. Counted over n binds (the client ends are plain connections
// of this process, counted too): goroutines per session and heap plus stacks per session. Before the
// writer ran only while there was something to write, and the reader's buffer and body slab were
// sized by use, each session held 2 goroutines and over 100 KiB of heap (64 KiB read buffer,
// 32 KiB slab, two 4 KiB write buffers).
func TestIdleSessionsHoldLittle(t *testing.T) {
	const n = 200
	// enquire_link is long enough not to come during the test; the session still arms its timer.
	cfg := session.Config{EnquireLink: time.Minute}
	h, addr := startSMSC(t, cfg, nil)
	g0, m0 := runtime.NumGoroutine(), inUse()
	conns := make([]net.Conn, n)
	readers := make([]*pdu.Reader, n)
	sessions := make([]*session.Session, n)
	for i := range n {
		conns[i], readers[i] = rawBind(t, addr)
		next(t, h.accepted)
		sessions[i] = next(t, h.bound)
	}
	// The writers leave once the bind_resp is written; wait for the last of them.
	deadline := time.Now().Add(sessiontest.Wait)
	for runtime.NumGoroutine()-g0 > n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine() - g0; g > n {
		t.Errorf("%d idle sessions run %d goroutines, want one each (the reader)", n, g)
	}
	held := 0
	for _, s := range sessions {
		if session.HoldsOutBuf(s) {
			held++
		}
	}
	if held > 0 {
		t.Errorf("%d of %d idle sessions hold an outgoing buffer", held, n)
	}
	m1 := inUse()
	per := (int64(m1) - int64(m0)) / n
	t.Logf("%d idle sessions: %d octets of heap and stacks each", n, per)
	const limit = 20 << 10
	if per > limit {
		t.Errorf("an idle session holds %d octets of heap and stacks, want at most %d", per, limit)
	}

	// Idle is not dead: every session still answers enquire_link, the writer starting again for it.
	enq, err := pdu.Append(nil, 7, pdu.ESME_ROK, &pdu.EnquireLink{})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		if _, err := c.Write(enq); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(sessiontest.Wait))
		if hd, _, err := readers[i].Read(); err != nil || hd.ID != pdu.EnquireLinkRespID || hd.Sequence != 7 {
			t.Fatalf("session %d: enquire_link answered with %v, %v", i, hd, err)
		}
	}
}
