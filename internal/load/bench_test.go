package load

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/smppgw/smppgw/pdu"
)

// bareResponder is the ceiling the fleet is measured against: no session, one goroutine per
// connection that reads a frame, appends its answer and flushes only when nothing more is
// buffered. It answers binds, enquire_link and unbind, and every submit_sm with ESME_ROK.
func bareResponder(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go bareServe(conn)
		}
	}()
	return ln.Addr().String()
}

func bareServe(conn net.Conn) {
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
			// message_id as a C-Octet String: hex digits and the NUL.
			out = pdu.AppendHeader(out, pdu.Header{ID: pdu.SubmitSMRespID, Sequence: h.Sequence})
			out = strconv.AppendUint(out, id, 16)
			out = append(out, 0)
		case pdu.BindTransceiverID, pdu.BindTransmitterID, pdu.BindReceiverID:
			out = pdu.AppendHeader(out, pdu.Header{ID: h.ID.Response(), Sequence: h.Sequence})
			out = append(out, "bare\x00"...)
		case pdu.EnquireLinkID, pdu.UnbindID:
			out = pdu.AppendHeader(out, pdu.Header{ID: h.ID.Response(), Sequence: h.Sequence})
		default:
			out = pdu.AppendHeader(out, pdu.Header{ID: pdu.GenericNackID, Status: pdu.ESME_RINVCMDID, Sequence: h.Sequence})
		}
		// command_length, now that the body is known.
		n := len(out)
		out[0], out[1], out[2], out[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		w.Write(out)
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
		if h.ID == pdu.UnbindID {
			w.Flush()
			return
		}
	}
}

func TestBareResponder(t *testing.T) {
	r := run(t, Config{Addr: bareResponder(t), Binds: 2, Messages: 500, Window: 50})
	if r.Sent != 500 || r.Acked != 500 {
		t.Errorf("sent %d acked %d", r.Sent, r.Acked)
	}
}

// BenchmarkRun is the fleet against the bare responder over loopback, one op a submit_sm: it
// reports submit_sm acknowledged per second over the sending time (the figure smppload prints).
//
//	go test -run '^$' -bench BenchmarkRun -benchtime 2000000x ./internal/load/
func BenchmarkRun(b *testing.B) {
	for _, tc := range []struct {
		name          string
		binds, window int
	}{{"binds=1/window=100", 1, 100}, {"binds=4/window=100", 4, 100}} {
		b.Run(tc.name, func(b *testing.B) {
			addr := bareResponder(b)
			b.ReportAllocs()
			b.ResetTimer()
			r, err := Run(context.Background(), Config{Addr: addr, Binds: tc.binds, Window: tc.window, Messages: b.N})
			b.StopTimer()
			if err != nil || r.Acked != int64(b.N) {
				b.Fatalf("acked %d of %d: %v", r.Acked, b.N, err)
			}
			b.ReportMetric(r.Throughput, "acked/s")
			b.ReportMetric(r.Latency.P99, "p99-ms")
		})
	}
}
