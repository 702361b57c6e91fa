package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// Store operations timed by the decorator (the op label).
const (
	opAcceptMessage = iota
	opGetMessage
	opListMessages
	opUpdatePart
	opSettle
	opAddReceipt
	opListReceipts
	opClaimParts
	opEnqueueDelivery
	opClaimDeliveries
	opAck
	opGiveBack
	opPostpone
	opReroute
	opRequeueLost
	opQueueLen
	opQueueStats
	opPing
	numOps
)

var opNames = [numOps]string{
	opAcceptMessage: "accept_message", opGetMessage: "get_message", opListMessages: "list_messages",
	opUpdatePart: "update_part", opSettle: "settle", opAddReceipt: "add_receipt", opListReceipts: "list_receipts",
	opClaimParts: "claim_parts", opEnqueueDelivery: "enqueue_delivery",
	opClaimDeliveries: "claim_deliveries", opAck: "ack", opGiveBack: "give_back", opPostpone: "postpone",
	opReroute: "reroute", opRequeueLost: "requeue_lost", opQueueLen: "queue_len",
	opQueueStats: "queue_stats", opPing: "ping",
}

// StoreBuckets are the store latency histogram's bounds, in seconds: from a cached read to a slow
// group commit.
var StoreBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Store times the message path's store operations (Messages, Queues, Ping) of the store it wraps,
// counts their errors and counts receipts recorded by state; configuration reads (accounts, routes,
// keys, webhooks) pass through untimed. It is a prometheus.Collector of those metrics. Claims wait
// for work up to their wait argument, and their time includes it.
type Store struct {
	store.Store
	async    store.AsyncWrites // the wrapped store's, if it has them
	hist     *prometheus.HistogramVec
	errs     *prometheus.CounterVec
	receipts *prometheus.CounterVec
	commits  prometheus.CounterFunc      // the wrapped store's group commits (store.GroupCommitter); nil: not counted
	obs      [numOps]prometheus.Observer // resolved once: no label lookup per call
	errc     [numOps]prometheus.Counter
	byState  [256]prometheus.Counter // receipts by pdu.MessageState, made on first use
}

// WrapStore returns st timed; the set collects its metrics.
func (s *Set) WrapStore(st store.Store) *Store {
	w := NewStore(st)
	s.mu.Lock()
	s.store = w
	s.mu.Unlock()
	return w
}

// NewStore wraps st.
func NewStore(st store.Store) *Store {
	w := &Store{
		Store: st,
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "smppgw_store_operation_duration_seconds", Help: "Store operations on the message path by operation; claims include their wait for work.",
			Buckets: StoreBuckets,
		}, []string{"op"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smppgw_store_operation_errors_total", Help: "Store operations that failed, by operation (not found is an answer, not counted).",
		}, []string{"op"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smppgw_receipts_total", Help: "Receipts from upstreams recorded by the store (correlated or parked), by the state they report.",
		}, []string{"state"}),
	}
	w.async, _ = st.(store.AsyncWrites)
	if gc, ok := st.(store.GroupCommitter); ok {
		w.commits = prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "smppgw_store_group_commits_total",
			Help: "Durable writes that carried the store's writes: fdatasyncs of the embedded store's log, pipelined round trips to Redis. Store operations over it is how many writes share one.",
		}, func() float64 { return float64(gc.GroupCommits()) })
	}
	for i, n := range opNames {
		w.obs[i] = w.hist.WithLabelValues(n)
		w.errc[i] = w.errs.WithLabelValues(n)
	}
	for _, m := range []pdu.MessageState{pdu.ENROUTE, pdu.DELIVERED, pdu.EXPIRED, pdu.DELETED, pdu.UNDELIVERABLE, pdu.ACCEPTED, pdu.UNKNOWN, pdu.REJECTED} {
		w.byState[m] = w.receipts.WithLabelValues(m.String())
	}
	return w
}

// Describe implements prometheus.Collector.
func (w *Store) Describe(ch chan<- *prometheus.Desc) {
	w.hist.Describe(ch)
	w.errs.Describe(ch)
	w.receipts.Describe(ch)
	if w.commits != nil {
		w.commits.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (w *Store) Collect(ch chan<- prometheus.Metric) {
	w.hist.Collect(ch)
	w.errs.Collect(ch)
	w.receipts.Collect(ch)
	if w.commits != nil {
		w.commits.Collect(ch)
	}
}

// epoch is the base of clock.
var epoch = time.Now()

// clock reads the monotonic clock alone (time.Since of a time that has it), half the cost of
// time.Now; two reads per store call on the message path.
func clock() time.Duration { return time.Since(epoch) }

func (w *Store) done(op int, start time.Duration, err error) {
	w.obs[op].Observe((clock() - start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		w.errc[op].Inc()
	}
}

func (w *Store) AcceptMessage(ctx context.Context, m *store.Message) error {
	t := clock()
	err := w.Store.AcceptMessage(ctx, m)
	w.done(opAcceptMessage, t, err)
	return err
}

func (w *Store) GetMessage(ctx context.Context, id string) (*store.Message, error) {
	t := clock()
	r0, err := w.Store.GetMessage(ctx, id)
	w.done(opGetMessage, t, err)
	return r0, err
}

func (w *Store) ListMessages(ctx context.Context, f store.MessageFilter) ([]*store.Message, string, error) {
	t := clock()
	r0, r1, err := w.Store.ListMessages(ctx, f)
	w.done(opListMessages, t, err)
	return r0, r1, err
}

func (w *Store) UpdatePart(ctx context.Context, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	t := clock()
	r0, r1, err := w.Store.UpdatePart(ctx, u)
	w.done(opUpdatePart, t, err)
	return r0, r1, err
}

func (w *Store) Settle(ctx context.Context, l store.Lease, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	t := clock()
	r0, r1, err := w.Store.Settle(ctx, l, u)
	w.done(opSettle, t, err)
	return r0, r1, err
}

func (w *Store) ListReceipts(ctx context.Context, messageID string) ([]store.Receipt, error) {
	t := clock()
	r0, err := w.Store.ListReceipts(ctx, messageID)
	w.done(opListReceipts, t, err)
	return r0, err
}

func (w *Store) ClaimParts(ctx context.Context, upstream, consumer string, max int, wait time.Duration) ([]*store.PartTask, error) {
	t := clock()
	r0, err := w.Store.ClaimParts(ctx, upstream, consumer, max, wait)
	w.done(opClaimParts, t, err)
	return r0, err
}

func (w *Store) EnqueueDelivery(ctx context.Context, d *store.Delivery) error {
	t := clock()
	err := w.Store.EnqueueDelivery(ctx, d)
	w.done(opEnqueueDelivery, t, err)
	return err
}

func (w *Store) ClaimDeliveries(ctx context.Context, account, consumer string, max int, wait time.Duration) ([]*store.Delivery, error) {
	t := clock()
	r0, err := w.Store.ClaimDeliveries(ctx, account, consumer, max, wait)
	w.done(opClaimDeliveries, t, err)
	return r0, err
}

func (w *Store) Ack(ctx context.Context, leases ...store.Lease) error {
	t := clock()
	err := w.Store.Ack(ctx, leases...)
	w.done(opAck, t, err)
	return err
}

func (w *Store) GiveBack(ctx context.Context, l store.Lease, delay time.Duration) error {
	t := clock()
	err := w.Store.GiveBack(ctx, l, delay)
	w.done(opGiveBack, t, err)
	return err
}

func (w *Store) Postpone(ctx context.Context, l store.Lease, delay time.Duration) error {
	t := clock()
	err := w.Store.Postpone(ctx, l, delay)
	w.done(opPostpone, t, err)
	return err
}

func (w *Store) Reroute(ctx context.Context, l store.Lease, upstream string) error {
	t := clock()
	err := w.Store.Reroute(ctx, l, upstream)
	w.done(opReroute, t, err)
	return err
}

func (w *Store) RequeueLost(ctx context.Context, lost []store.LostPDU) error {
	t := clock()
	err := w.Store.RequeueLost(ctx, lost)
	w.done(opRequeueLost, t, err)
	return err
}

func (w *Store) QueueLen(ctx context.Context, q store.Queue) (int, error) {
	t := clock()
	r0, err := w.Store.QueueLen(ctx, q)
	w.done(opQueueLen, t, err)
	return r0, err
}

func (w *Store) QueueStats(ctx context.Context, q store.Queue) (store.QueueStats, error) {
	t := clock()
	r0, err := w.Store.QueueStats(ctx, q)
	w.done(opQueueStats, t, err)
	return r0, err
}

func (w *Store) Ping(ctx context.Context) error {
	t := clock()
	err := w.Store.Ping(ctx)
	w.done(opPing, t, err)
	return err
}

// AddReceipt is timed, and a receipt recorded (correlated or parked) is counted by its state.
func (w *Store) AddReceipt(ctx context.Context, r *store.Receipt) (*store.Message, bool, error) {
	t := clock()
	m, parked, err := w.Store.AddReceipt(ctx, r)
	w.done(opAddReceipt, t, err)
	if err == nil {
		if c := w.byState[r.State]; c != nil {
			c.Inc()
		} else {
			w.receipts.WithLabelValues(r.State.String()).Inc()
		}
	}
	return m, parked, err
}

var _ store.AsyncWrites = (*Store)(nil)

// Unwrap returns the store w times: a caller that uses the asynchronous writes only when the store
// behind the decorators has them asks it.
func (w *Store) Unwrap() store.Store { return w.Store }

// AcceptMessageAsync implements store.AsyncWrites, timed from the call to the completion, as
// AcceptMessage is. A wrapped store without asynchronous writes is called synchronously and c
// told before this returns.
func (w *Store) AcceptMessageAsync(ctx context.Context, m *store.Message, c store.AcceptCompletion) {
	if w.async == nil {
		c.AcceptDone(w.AcceptMessage(ctx, m))
		return
	}
	t := timings.Get().(*timing)
	t.w, t.start, t.acc = w, clock(), c
	w.async.AcceptMessageAsync(ctx, m, t)
}

// SettleAsync implements store.AsyncWrites, timed as Settle is; without asynchronous writes in
// the wrapped store, it is Settle, and c is told before it returns.
func (w *Store) SettleAsync(ctx context.Context, l store.Lease, u store.PartUpdate, c store.SettleCompletion) {
	if w.async == nil {
		m, attached, err := w.Settle(ctx, l, u)
		c.SettleDone(m, attached, err)
		return
	}
	t := timings.Get().(*timing)
	t.w, t.start, t.set = w, clock(), c
	w.async.SettleAsync(ctx, l, u, t)
}

// timing is an asynchronous write being timed: the completion the store tells, which records the
// time and tells the caller's. Reused (timings): one is the caller's no more once it has told it.
type timing struct {
	w     *Store
	start time.Duration
	acc   store.AcceptCompletion
	set   store.SettleCompletion
}

var timings = sync.Pool{New: func() any { return new(timing) }}

func (t *timing) AcceptDone(err error) {
	w, c := t.w, t.acc
	w.done(opAcceptMessage, t.start, err)
	*t = timing{}
	timings.Put(t)
	c.AcceptDone(err)
}

func (t *timing) SettleDone(m *store.Message, attached []store.Receipt, err error) {
	w, c := t.w, t.set
	w.done(opSettle, t.start, err)
	*t = timing{}
	timings.Put(t)
	c.SettleDone(m, attached, err)
}
