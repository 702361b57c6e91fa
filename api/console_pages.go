package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
	"github.com/smppgw/smppgw/store"
)

// What the console's pages show, gathered per request from the Gateway and the store.

type consolePage interface{ base() *pageBase }

type pageBase struct {
	Title    string
	Nav      string // the menu entry to mark
	Instance string
	CSRF     string
	Flash    string
	Refresh  bool // the page refreshes its live part every 2 seconds
	Now      time.Time
}

func (b *pageBase) base() *pageBase { return b }

func (c *console) page(title, nav string, refresh bool) pageBase {
	return pageBase{Title: title, Nav: nav, Instance: c.s.cfg.Instance, Refresh: refresh, Now: time.Now()}
}

type errorPage struct {
	pageBase
	Code    int
	Message string
}

type overviewPage struct {
	pageBase
	Stats          gateway.Stats
	StatsError     string
	ByStatus       []statusCount
	Sessions       []session.Info
	Upstreams      []upstreamRow
	DeliveryQueues []gateway.QueueInfo
}

type statusCount struct {
	Status pdu.MessageState
	Count  int64
}

type upstreamRow struct {
	Name, Address, SystemID string
	State                   string
	Bound                   bool
	Since                   time.Time
	Paused                  bool
	Queue                   gateway.QueueInfo // from the stats: depth, claimed, oldest age
	LastError               string
	Sent, Accepted          uint64
	Rejected, Requeued      uint64
}

func (c *console) overview(w http.ResponseWriter, r *http.Request) {
	p := &overviewPage{pageBase: c.page("Overview", "overview", true)}
	if f, ok := flashes[r.URL.Query().Get("done")]; ok {
		p.Flash = fmt.Sprintf(f, truncate(r.URL.Query().Get("name"), 64))
	}
	ctx, cancel := context.WithTimeout(r.Context(), consoleTimeout)
	defer cancel()
	stats, err := c.s.gw.Stats(ctx)
	if err != nil {
		p.StatsError = err.Error()
	}
	p.Stats = stats
	for st, n := range stats.MessagesByStatus {
		p.ByStatus = append(p.ByStatus, statusCount{st, n})
	}
	slices.SortFunc(p.ByStatus, func(a, b statusCount) int { return cmp.Compare(a.Status, b.Status) })
	p.DeliveryQueues = stats.DeliveryQueues

	p.Sessions = c.s.gw.Sessions()
	slices.SortFunc(p.Sessions, func(a, b session.Info) int { return cmp.Compare(a.ID, b.ID) })

	queues := map[string]gateway.QueueInfo{}
	for _, q := range stats.UpstreamQueues {
		queues[q.Name] = q
	}
	for _, u := range c.s.gw.Upstreams() {
		q, ok := queues[u.Config.Name]
		if !ok {
			q = gateway.QueueInfo{Name: u.Config.Name, Len: u.QueueDepth}
		}
		p.Upstreams = append(p.Upstreams, upstreamRow{
			Name: u.Config.Name, Address: u.Config.Address, SystemID: u.Config.SystemID,
			State: u.Status.State.String(), Bound: u.Status.State == gateway.ClientBound, Since: u.Status.Since,
			Paused: u.Paused, Queue: q, LastError: u.Status.LastError,
			Sent: u.Status.Sent, Accepted: u.Status.Accepted, Rejected: u.Status.Rejected, Requeued: u.Status.Requeued,
		})
	}
	slices.SortFunc(p.Upstreams, func(a, b upstreamRow) int { return strings.Compare(a.Name, b.Name) })
	c.render(w, r, http.StatusOK, "overview", p)
}

type messagesPage struct {
	pageBase
	Account  string
	Messages []messageRow
	Error    string
}

type messageRow struct {
	*store.Message
	Receipts []store.Receipt
}

// LastReceipt is the latest receipt of the message, nil when none came.
func (m messageRow) LastReceipt() *store.Receipt {
	if len(m.Receipts) == 0 {
		return nil
	}
	return &m.Receipts[len(m.Receipts)-1]
}

func (c *console) messages(w http.ResponseWriter, r *http.Request) {
	account := truncate(strings.TrimSpace(r.URL.Query().Get("account")), 64)
	p := &messagesPage{pageBase: c.page("Messages", "messages", true), Account: account}
	ctx, cancel := context.WithTimeout(r.Context(), consoleTimeout)
	defer cancel()
	msgs, err := recentMessages(ctx, c.s.st, account, consoleRecent, time.Now())
	if err != nil {
		p.Error = err.Error()
	}
	for _, m := range msgs {
		row := messageRow{Message: m}
		if submitted(m) {
			if row.Receipts, err = c.s.st.ListReceipts(ctx, m.ID); err != nil {
				p.Error = err.Error()
				break
			}
		}
		p.Messages = append(p.Messages, row)
	}
	c.render(w, r, http.StatusOK, "messages", p)
}

// submitted reports whether any part of m reached an upstream, the only way to a receipt.
func submitted(m *store.Message) bool {
	for i := range m.Parts {
		if m.Parts[i].UpstreamID != "" {
			return true
		}
	}
	return false
}

type messagePage struct {
	pageBase
	Message  *store.Message
	Text     string // the content decoded, or hex for binary codings
	Binary   bool
	Receipts []store.Receipt
}

func (c *console) message(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), consoleTimeout)
	defer cancel()
	id := r.PathValue("id")
	m, err := c.s.st.GetMessage(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, fmt.Sprintf("no message %q", truncate(id, 64)))
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	rs, err := c.s.st.ListReceipts(ctx, id)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	p := &messagePage{pageBase: c.page("Message "+m.ID, "messages", true), Message: m, Receipts: rs}
	data := content(m)
	if isText(m.DataCoding) {
		p.Text = text.DecodeLossy(text.Coding(m.DataCoding), data)
	} else {
		p.Text, p.Binary = fmt.Sprintf("% x", data), true
	}
	c.render(w, r, http.StatusOK, "message", p)
}

// recentMessages returns up to n messages (of account, "" for all) newest first. The store lists
// oldest first from a time, so it looks back from now through windows that grow fourfold (1s,
// 4s, 16s, ... up to a year), keeping each window's newest; a window with more than a store page
// of messages is halved first, so a busy gateway costs a few store pages, never a full scan.
func recentMessages(ctx context.Context, st store.Messages, account string, n int, now time.Time) ([]*store.Message, error) {
	const (
		maxLookBack = 366 * 24 * time.Hour
		maxCalls    = 64
		page        = store.MaxListLimit
	)
	var out []*store.Message
	to := time.Time{} // the first window is open towards the future: clocks differ a little
	end, span := now, time.Second
	for calls := 0; len(out) < n && now.Sub(end) < maxLookBack && calls < maxCalls; calls++ {
		from := end.Add(-span)
		msgs, next, err := st.ListMessages(ctx, store.MessageFilter{Account: account, From: from, To: to, Limit: page})
		if err != nil {
			return out, err
		}
		if next != "" && span > time.Millisecond {
			span /= 2 // more than a page: look at less of it
			continue
		}
		for i := len(msgs) - 1; i >= 0 && len(out) < n; i-- {
			out = append(out, msgs[i])
		}
		to, end = from, from
		span *= 4
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

var consoleFuncs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"age": func(now, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return roundDuration(now.Sub(t))
	},
	"dur":  roundDuration,
	"rate": func(f float64) string { return fmt.Sprintf("%.2f/s", f) },
	"cmdStatus": func(e uint32) string {
		if e == 0 {
			return ""
		}
		return pdu.CommandStatus(e).String()
	},
	"errCode": errorCode,
	"add":     func(a, b int) int { return a + b },
	"final":   func(s pdu.MessageState) bool { return s.Final() },
}

// roundDuration shows a duration to a precision a person reads: 850ms, 12.3s, 4m10s, 3h5m0s.
func roundDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
