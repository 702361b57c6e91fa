package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// Report is what a run did. Its JSON form is what `smppload --json` prints.
type Report struct {
	Addr     string         `json:"addr,omitempty"`
	Binds    BindReport     `json:"binds"`
	Outbinds *OutbindReport `json:"outbinds,omitempty"`

	Messages  int64            `json:"messages"` // messages whose first part went out
	Sent      int64            `json:"sent"`     // submit_sm written, a long message's parts each
	Acked     int64            `json:"acknowledged"`
	Errors    map[string]int64 `json:"errors_by_status,omitempty"` // submit_sm_resp refusals by status name
	Timeouts  int64            `json:"timeouts"`
	Lost      int64            `json:"lost"`        // unanswered when the session ended
	SendFails int64            `json:"send_errors"` // could not be sent: the session had ended

	Receipts         int64            `json:"receipts"`
	ReceiptsByState  map[string]int64 `json:"receipts_by_state,omitempty"`
	ReceiptsBadText  int64            `json:"receipts_unreadable,omitempty"`
	OtherDeliverSM   int64            `json:"deliver_sm_not_receipts,omitempty"`
	SendingSeconds   float64          `json:"sending_seconds"` // first submit_sm to last response
	ElapsedSeconds   float64          `json:"elapsed_seconds"` // the whole run, binds and waits included
	Throughput       float64          `json:"throughput_per_second"`
	Latency          Latency          `json:"latency"`
	Window           int              `json:"window"`
	Rate             float64          `json:"rate,omitempty"`
	Mix              string           `json:"text_mix"`
	BindFailureFirst string           `json:"bind_error,omitempty"`
}

// BindReport counts the dialed binds.
type BindReport struct {
	Asked  int `json:"asked"`
	Bound  int `json:"bound"`
	Failed int `json:"failed"`
}

// OutbindReport counts outbinds received and bound back.
type OutbindReport struct {
	Received int64 `json:"received"`
	Bound    int64 `json:"bound"`
}

// Latency is submit_sm to submit_sm_resp, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Errors Report.Check returns.
var (
	ErrBindFailed  = errors.New("load: a bind failed")
	ErrNothingAckd = errors.New("load: nothing was acknowledged")
)

// Check reports a run that went wrong: a bind failed, or messages were sent and none acknowledged.
func (r Report) Check() error {
	if r.Binds.Failed > 0 {
		return fmt.Errorf("%w: %d of %d: %s", ErrBindFailed, r.Binds.Failed, r.Binds.Asked, r.BindFailureFirst)
	}
	if r.Acked == 0 && (r.Sent > 0 || r.Binds.Bound > 0) {
		return ErrNothingAckd
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// report builds the report from the fleet's counters.
func (f *fleet) report() Report {
	c := &f.ctr
	r := Report{
		Addr:     f.cfg.Addr,
		Messages: c.messages.Load(), Sent: c.sent.Load(), Acked: c.acked.Load(),
		Timeouts: c.timeouts.Load(), Lost: c.lost.Load(), SendFails: c.sendErrs.Load(),
		Receipts: c.receipts.Load(), ReceiptsBadText: c.receiptsBad.Load(), OtherDeliverSM: c.otherDeliver.Load(),
		ElapsedSeconds: time.Since(f.start).Seconds(),
		Window:         f.cfg.Window, Rate: f.cfg.Rate, Mix: f.cfg.Mix.String(),
	}
	f.mu.Lock()
	r.Binds = BindReport{Asked: f.cfg.Binds}
	for _, m := range f.members {
		if !m.outbind {
			r.Binds.Bound++
		}
	}
	r.Binds.Failed = r.Binds.Asked - r.Binds.Bound
	if len(f.bindErrs) > 0 {
		r.BindFailureFirst = f.bindErrs[0]
	}
	f.mu.Unlock()
	if f.cfg.OutbindListen != "" {
		r.Outbinds = &OutbindReport{Received: f.outbinds.Load(), Bound: f.outBound.Load()}
	}
	c.mu.Lock()
	if len(c.byStatus) > 0 {
		r.Errors = map[string]int64{}
		for st, n := range c.byStatus {
			r.Errors[st.String()] += n
		}
	}
	c.mu.Unlock()
	for st := range c.byState {
		if n := c.byState[st].Load(); n > 0 {
			if r.ReceiptsByState == nil {
				r.ReceiptsByState = map[string]int64{}
			}
			name := "UNREADABLE"
			if st > 0 {
				name = pdu.MessageState(st).String()
			}
			r.ReceiptsByState[name] += n
		}
	}
	if first, last := f.firstSend.Load(), f.lastResp.Load(); first >= 0 && last > first {
		r.SendingSeconds = time.Duration(last - first).Seconds()
		r.Throughput = float64(r.Acked) / r.SendingSeconds
	}
	q := f.lat.quantiles(0.5, 0.9, 0.99)
	r.Latency = Latency{P50: ms(q[0]), P90: ms(q[1]), P99: ms(q[2]), Max: ms(time.Duration(f.lat.max.Load()))}
	return r
}

// WriteJSON writes the report as one JSON object and a newline.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as the closing table a person reads.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\t\n", append([]any{name}, args...)...)
	}
	binds := fmt.Sprintf("%d of %d", r.Binds.Bound, r.Binds.Asked)
	row("binds", "%s", binds)
	if r.Outbinds != nil {
		row("outbinds received / bound back", "%d / %d", r.Outbinds.Received, r.Outbinds.Bound)
	}
	row("messages", "%d", r.Messages)
	row("sent (submit_sm)", "%d", r.Sent)
	row("acknowledged (ESME_ROK)", "%d", r.Acked)
	for _, name := range slices.Sorted(maps.Keys(r.Errors)) {
		row("  error "+name, "%d", r.Errors[name])
	}
	if r.Timeouts > 0 {
		row("timeouts", "%d", r.Timeouts)
	}
	if r.Lost > 0 {
		row("lost (session ended)", "%d", r.Lost)
	}
	if r.SendFails > 0 {
		row("not sent (session ended)", "%d", r.SendFails)
	}
	row("receipts", "%d", r.Receipts)
	for _, name := range slices.Sorted(maps.Keys(r.ReceiptsByState)) {
		row("  receipt "+name, "%d", r.ReceiptsByState[name])
	}
	if r.OtherDeliverSM > 0 {
		row("deliver_sm, not receipts", "%d", r.OtherDeliverSM)
	}
	row("sending time", "%.3fs", r.SendingSeconds)
	row("throughput (acked/s)", "%.0f", r.Throughput)
	row("latency p50 / p90 / p99", "%.3f / %.3f / %.3f ms", r.Latency.P50, r.Latency.P90, r.Latency.P99)
	row("latency max", "%.3f ms", r.Latency.Max)
	if r.BindFailureFirst != "" {
		row("bind error", "%s", r.BindFailureFirst)
	}
	return tw.Flush()
}

// Progress is a snapshot of a run for a progress display.
type Progress struct {
	Elapsed             time.Duration
	Messages, Target    int64 // Target is Config.Messages (0: unbounded)
	Sent, Acked, Errors int64 // Errors: refused, timed out or lost
	Receipts            int64
	Done                bool // the last call
}

func (f *fleet) progress(done bool) Progress {
	c := &f.ctr
	c.mu.Lock()
	var refused int64
	for _, n := range c.byStatus {
		refused += n
	}
	c.mu.Unlock()
	return Progress{
		Elapsed: time.Since(f.start), Messages: c.messages.Load(), Target: int64(f.cfg.Messages),
		Sent: c.sent.Load(), Acked: c.acked.Load(), Errors: refused + c.timeouts.Load() + c.lost.Load(),
		Receipts: c.receipts.Load(), Done: done,
	}
}

// progressLoop calls Config.Progress every ProgressInterval until the returned stop is called,
// which makes the last call; stop may be called more than once.
func (f *fleet) progressLoop() (stop func()) {
	if f.cfg.Progress == nil {
		return func() {}
	}
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(f.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				f.cfg.Progress(f.progress(true))
				return
			case <-t.C:
				f.cfg.Progress(f.progress(false))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-finished
		})
	}
}

// String is the table, for logs.
func (r Report) String() string {
	var b strings.Builder
	_ = r.WriteTable(&b)
	return b.String()
}
