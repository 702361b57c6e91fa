package load

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

// responder is the SMSC these tests load, until internal/smscsim takes its place: it binds any
// system_id whose password is not "wrong", answers every submit_sm (refuse picks an error status
// for the n-th, 1-based), and with receipts sends a DELIVRD receipt for every one it accepted.
type responder struct {
	session.BaseHandler
	refuse   func(n int64) pdu.CommandStatus
	receipts bool

	binds, received, refused atomic.Int64
	next                     atomic.Uint64
}

// start listens on 127.0.0.1 and serves until the test ends; it returns the address.
func (r *responder) start(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			r.serve(conn)
		}
	}()
	return ln.Addr().String()
}

func (r *responder) serve(conn net.Conn) *session.Session {
	return session.New(conn, session.Options{Role: session.RoleSMSC, Handler: r, Config: session.Config{Window: 100, InboundLimit: 1000}})
}

func (r *responder) HandleBind(_ *session.Session, req session.Request) pdu.CommandStatus {
	if _, b, ok := session.BindOf(req.Body); ok && b.Password != "wrong" {
		r.binds.Add(1)
		return pdu.ESME_ROK
	}
	return pdu.ESME_RINVPASWD
}

func (r *responder) HandleRequest(s *session.Session, req session.Request) {
	sm, ok := req.Body.(*pdu.SubmitSM)
	if !ok {
		r.BaseHandler.HandleRequest(s, req)
		return
	}
	n := r.received.Add(1)
	if r.refuse != nil {
		if st := r.refuse(n); st != pdu.ESME_ROK {
			r.refused.Add(1)
			_ = s.Respond(req, st, nil)
			return
		}
	}
	id := strconv.FormatUint(r.next.Add(1), 16)
	_ = s.Respond(req, pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: id})
	if r.receipts && sm.RegisteredDelivery&pdu.RegisteredDeliveryReceiptMask != 0 {
		d := &pdu.DeliverSM{SourceAddr: sm.DestinationAddr, DestinationAddr: sm.SourceAddr}
		info := dlr.Info{MessageID: id, State: pdu.DELIVERED, Receipt: dlr.Receipt{Sub: 1, Dlvrd: 1, Err: "000"}}
		if err := info.ToDeliverSM(d); err != nil {
			panic(err)
		}
		// Not on the reader: SendAsync waits for a window slot, which the reader frees.
		go s.SendAsync(context.Background(), d, nil) //nolint:errcheck // a closing session drops it
	}
}
