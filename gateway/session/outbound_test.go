package session

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// Two rounds of writing in a row (a PDU queued while the writer writes the one before) and then
// nothing: the writer leaves holding no buffer, and the octets arrive in order.
func TestWriterLeavesNoBuffer(t *testing.T) {
	ours, peer := net.Pipe()
	defer ours.Close()
	defer peer.Close()
	var o outbound
	o.init(ours, time.Now(), time.Minute, func(err error) { t.Errorf("write failed: %v", err) })
	if err := o.append(1, pdu.ESME_ROK, &pdu.EnquireLink{}); err != nil {
		t.Fatal(err)
	}
	// The writer is inside its first Write once the peer has read an octet of it (a pipe's write
	// waits for the reader): the next PDU goes into another buffer, for a second round.
	got := make([]byte, 2*pdu.HeaderLen)
	if _, err := io.ReadFull(peer, got[:1]); err != nil {
		t.Fatal(err)
	}
	if err := o.append(2, pdu.ESME_ROK, &pdu.EnquireLink{}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, got[1:]); err != nil {
		t.Fatal(err)
	}
	for i, seq := range []uint32{1, 2} {
		if h := pdu.ParseHeader(got[i*pdu.HeaderLen:]); h.ID != pdu.EnquireLinkID || h.Sequence != seq {
			t.Errorf("PDU %d: %v, want enquire_link %d", i, h, seq)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		o.mu.Lock()
		running, held := o.running, o.buf != nil
		o.mu.Unlock()
		if !running {
			if held {
				t.Error("the writer left with a buffer queued and nothing in it")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer did not leave")
		}
		time.Sleep(time.Millisecond)
	}
}
