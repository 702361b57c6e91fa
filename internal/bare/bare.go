// Package bare is a bare SMPP responder: no session actor, no store, one goroutine per connection
// that answers every submit_sm at once. It is the wire's ceiling that smppload's benchmark and
// smppbench's first row measure against; it must never grow into a simulator (internal/smscsim is
// that).
package bare

import (
	"bufio"
	"net"
	"strconv"

	"github.com/smppgw/smppgw/pdu"
)

// Serve is the ceiling benchmarks are measured against: no session, one goroutine per connection
// that reads a frame, appends its answer to a buffered writer and flushes only when nothing more
// is buffered to read. It binds anyone, answers enquire_link and unbind, and every submit_sm with
// ESME_ROK and a hex id. It returns when ln is closed.
func Serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveConn(conn)
	}
}

func serveConn(conn net.Conn) {
	defer conn.Close()
	r := pdu.NewReader(conn, 0)
	w := bufio.NewWriterSize(conn, 64<<10)
	var id uint64
	var out []byte
	for {
		h, _, err := r.ReadFrame()
		if err != nil {
			return
		}
		out = out[:0]
		switch h.ID {
		case pdu.SubmitSMID:
			id++
			out = pdu.AppendHeader(out, pdu.Header{ID: pdu.SubmitSMRespID, Sequence: h.Sequence})
			out = strconv.AppendUint(out, id, 16)
			out = append(out, 0) // message_id is a C-Octet String
		case pdu.BindTransceiverID, pdu.BindTransmitterID, pdu.BindReceiverID:
			out = pdu.AppendHeader(out, pdu.Header{ID: h.ID.Response(), Sequence: h.Sequence})
			out = append(out, "bare\x00"...)
		case pdu.EnquireLinkID, pdu.UnbindID:
			out = pdu.AppendHeader(out, pdu.Header{ID: h.ID.Response(), Sequence: h.Sequence})
		default:
			out = pdu.AppendHeader(out, pdu.Header{ID: pdu.GenericNackID, Status: pdu.ESME_RINVCMDID, Sequence: h.Sequence})
		}
		n := len(out) // command_length, now that the body is known
		out[0], out[1], out[2], out[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		if _, err := w.Write(out); err != nil {
			return
		}
		if r.Buffered() == 0 || h.ID == pdu.UnbindID {
			if w.Flush() != nil || h.ID == pdu.UnbindID {
				return
			}
		}
	}
}
