package session_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
)

// FuzzSessionInput feeds arbitrary octets to an SMSC-role session bound to the smsc test handler and checks that
// it neither panics nor hangs: whatever arrives is answered or ends the
func FuzzSessionInput(f *testing.F) {
	seed := func(bodies ...pdu.Body) []byte {
		var b []byte
		for i, body := range bodies {
			b, _ = pdu.Append(b, uint32(i+1), pdu.ESME_ROK, body)
		}
		return b
	}
	f.Add(seed(&pdu.BindTransceiver{SystemID: "alice", Password: "secret"}, submit("1"), &pdu.EnquireLink{}, &pdu.Unbind{}))
	f.Add(seed(submit("1"), &pdu.DeliverSMResp{}, &pdu.GenericNack{}))
	f.Add(seed(&pdu.BindTransmitter{SystemID: "alice", Password: "secret"}, &pdu.DataSM{}, &pdu.QuerySM{}, &pdu.SubmitSMResp{MessageID: "x"}))
	f.Add(pdu.AppendHeader(nil, pdu.Header{Length: 1 << 30, ID: pdu.SubmitSMID, Sequence: 1}))
	f.Add(pdu.AppendHeader(nil, pdu.Header{Length: 16, ID: 0x7777, Sequence: 3}))
	f.Add([]byte("\x00\x00\x00\x14\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff"))

	h := &smsc{}
	cfg := session.Config{BindTimeout: time.Second, MaxPDULength: 4096}
	f.Fuzz(func(t *testing.T, in []byte) {
		ours, theirs := net.Pipe()
		s := session.New(ours, session.Options{Role: session.RoleSMSC, Handler: h, Config: cfg, Logger: zerolog.Nop()})
		go io.Copy(io.Discard, theirs)
		theirs.SetWriteDeadline(time.Now().Add(sessiontest.Wait))
		theirs.Write(in)
		theirs.Close()
		select {
		case <-s.Done():
		case <-time.After(sessiontest.Wait):
			t.Fatal("session did not end after its input")
		}
	})
}
