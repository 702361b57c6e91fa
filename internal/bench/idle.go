package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// bindConcurrency bounds the binds being opened at once in row 6.
const bindConcurrency = 64

// idleConn is one idle bind of row 6: it answers enquire_link and counts them.
type idleConn struct {
	conn     net.Conn
	enquires atomic.Int32
	closed   atomic.Bool
}

// idle is row 6: IdleBinds transceiver binds to smppgw, opened bindConcurrency at a time, then left
// idle for one and a half enquire_link intervals; a bind counts as kept when its connection is still
// open and it answered at least one enquire_link. CPU is smppgw's over the idle period; the note has
// the binding's.
func (r *runner) idle(ctx context.Context) (row Row) {
	n := r.cfg.IdleBinds
	// Each bind is a descriptor here and one in smppgw, both under the same inherited limit.
	if limit := noFileLimit(); limit > 0 && uint64(n)+256 > limit {
		addNote(&row, fmt.Sprintf("open files limit %d: %d binds instead of %d", limit, limit-256, n))
		n = int(limit - 256)
	}
	g, err := r.startGateway(ctx, "idle", gwOptions{store: StoreEmbedded, enquireLink: r.cfg.EnquireLink})
	if err != nil {
		return failed(row, err)
	}
	defer g.stop()

	rss0, _ := currentRSS(g.gw.cmd.Process.Pid)
	conns := make([]*idleConn, n)
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, bindConcurrency)
		bound    atomic.Int64
		firstErr atomic.Value
	)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	start := time.Now()
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := bindIdle(ctx, g.smppAddr)
			if err != nil {
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			conns[i] = c
			bound.Add(1)
		})
	}
	wg.Wait()
	bindTime := time.Since(start)
	bindCPU, _ := g.gw.usage()
	g.gw.mark()
	row.Sent, row.Acked = int64(n), bound.Load()
	if bindTime > 0 {
		row.Rate = float64(row.Acked) / bindTime.Seconds()
	}
	wait := r.cfg.EnquireLink*3/2 + time.Second
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
	var kept int64
	for _, c := range conns {
		if c != nil && !c.closed.Load() && c.enquires.Load() > 0 {
			kept++
		}
	}
	row.Received = kept
	row.CPU, row.RSS = g.gw.usage()
	cur, _ := currentRSS(g.gw.cmd.Process.Pid)
	addNote(&row, fmt.Sprintf("msgs/s column: binds/s while opening %d at a time; %d of %d bound, %d kept by enquire_link (%s) after %s; "+
		"binding took %.1f CPU s; CPU is the idle %s; RSS %s before the binds, %s with them: %.1f KB a bind",
		bindConcurrency, row.Acked, n, kept, r.cfg.EnquireLink, wait.Round(100*time.Millisecond), bindCPU, wait.Round(100*time.Millisecond), mb(rss0), mb(cur),
		float64(cur-rss0)/1024/float64(max(row.Acked, 1))))
	if e := firstErr.Load(); e != nil {
		addNote(&row, fmt.Sprintf("first bind error: %v", e))
	}
	return row
}

// bindIdle dials addr, binds as transceiver and starts answering enquire_link.
func bindIdle(ctx context.Context, addr string) (*idleConn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	b, err := pdu.Append(nil, 1, pdu.ESME_ROK, &pdu.BindTransceiver{SystemID: account, Password: accountPass, InterfaceVersion: 0x34})
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(b); err != nil {
		conn.Close()
		return nil, err
	}
	rd := pdu.NewReader(bufio.NewReaderSize(conn, 512), 0)
	h, _, err := rd.ReadFrame()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bind: %w", err)
	}
	if h.ID != pdu.BindTransceiverRespID || h.Status != pdu.ESME_ROK {
		conn.Close()
		return nil, fmt.Errorf("bind: %s %s", h.ID, h.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	c := &idleConn{conn: conn}
	go c.serve(rd)
	return c, nil
}

// serve answers enquire_link (and unbind) until the connection ends.
func (c *idleConn) serve(rd *pdu.Reader) {
	defer c.closed.Store(true)
	var out []byte
	for {
		h, _, err := rd.ReadFrame()
		if err != nil {
			return
		}
		switch h.ID {
		case pdu.EnquireLinkID, pdu.UnbindID:
			out = pdu.AppendHeader(out[:0], pdu.Header{Length: pdu.HeaderLen, ID: h.ID.Response(), Sequence: h.Sequence})
			if _, err := c.conn.Write(out); err != nil || h.ID == pdu.UnbindID {
				c.conn.Close()
				return
			}
			if h.ID == pdu.EnquireLinkID {
				c.enquires.Add(1)
			}
		default:
			if !h.ID.IsResponse() {
				out = pdu.AppendHeader(out[:0], pdu.Header{Length: pdu.HeaderLen, ID: pdu.GenericNackID, Status: pdu.ESME_RINVCMDID, Sequence: h.Sequence})
				_, _ = c.conn.Write(out)
			}
		}
	}
}
