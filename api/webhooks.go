package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/store"
	"google.golang.org/protobuf/encoding/protojson"
)

// Webhook event names as kept in store.Webhook.Events.
const (
	eventReceipt = "receipt"
	eventMO      = "mo"
)

// SignatureHeader carries a webhook POST's signature: "t=<unix seconds>,v1=<hex>", where v1 is
// HMAC-SHA256 under the webhook's signing secret of "<t>.<body>".
const SignatureHeader = "Smppgw-Signature"

// Sign returns the SignatureHeader value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Queues of the deliveries. They are account deliver_sm queues of the store (store.Queues) under
// names no account can have (a system_id is 1 to 15 octets; these are 16 and more), so the
// store's durability, leases, back-off and sharing among instances serve webhooks as they serve
// ESMEs. An entry is a store.Delivery whose ShortMessage holds the WebhookDelivery as posted (its
// protojson, attempt left 0: each POST sets its own); a per-message callback's entry carries the
// URL in Destination.Addr and the message's account in Source.Addr.
const (
	hookQueuePrefix = "webhook-queue:"
	callbackQueue   = "callback-queue:all-accounts"
)

// hookQueue is the queue of webhook id.
func hookQueue(id string) string { return hookQueuePrefix + id }

// maxCallbackURL bounds SubmitRequest.callback_url.
const maxCallbackURL = 2048

// dispatcher POSTs receipts and MO to the webhooks of their account and receipts to their message's
// callback URL. Record (the gateway's EventSink) writes each POST owed to the store before the
// upstream is answered; one loop per queue claims them (consumer "webhooks@<instance>", so every
// instance takes a share), POSTs at most Workers at once per queue, acknowledges a 2xx, and gives
// anything else back with exponential back-off and jitter until the retry window ends.
type dispatcher struct {
	cfg      WebhookConfig
	st       hookStore
	log      zerolog.Logger
	client   *http.Client
	counts   hookCounts // outcomes, for /metrics
	consumer string
	secret   string // for callbacks of accounts without a webhook
	wake     chan struct{}

	// The registrations as last read. Record (on the receipt path) only reads this snapshot: the
	// store is read by the queue manager every RefreshInterval and at each change made here, so a
	// slow or unreachable store never holds receipts behind a lock.
	snap   atomic.Pointer[hookSet]
	loadMu sync.Mutex // one read of the registrations at a time
}

// hookSet is one reading of the webhook registrations.
type hookSet struct {
	byAcc map[string][]*store.Webhook
	byID  map[string]*store.Webhook
}

// hookStore is what the dispatcher uses: the registrations, the queues, and messages for the client
// reference a receipt echoes.
type hookStore interface {
	store.Webhooks
	store.Queues
	GetMessage(ctx context.Context, id string) (*store.Message, error)
}

func newDispatcher(cfg WebhookConfig, instance string, st hookStore, log zerolog.Logger) *dispatcher {
	return &dispatcher{
		cfg:      cfg,
		st:       st,
		log:      log.With().Str("part", "webhooks").Logger(),
		client:   &http.Client{Timeout: cfg.Timeout},
		consumer: "webhooks@" + instance,
		secret:   cfg.CallbackSecret,
		wake:     make(chan struct{}, 1),
		counts:   newHookCounts(),
	}
}

// invalidate re-reads the registrations after a change made through this instance, so it takes
// effect here at once, and wakes the queue manager.
func (d *dispatcher) invalidate(ctx context.Context) {
	if err := d.reload(ctx); err != nil {
		d.log.Warn().Err(err).Msg("cannot read webhooks after a change; it takes effect at the next refresh")
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// reload reads the registrations from the store; on error the last reading stays.
func (d *dispatcher) reload(ctx context.Context) error {
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	all, err := d.st.ListWebhooks(ctx)
	if err != nil {
		return err
	}
	hs := &hookSet{byAcc: map[string][]*store.Webhook{}, byID: map[string]*store.Webhook{}}
	for _, w := range all {
		hs.byAcc[w.Account] = append(hs.byAcc[w.Account], w)
		hs.byID[w.ID] = w
	}
	d.snap.Store(hs)
	return nil
}

// set returns the registrations, reading them first if they never were (an error then: without
// them a receipt's webhooks are unknown).
func (d *dispatcher) set(ctx context.Context) (*hookSet, error) {
	if hs := d.snap.Load(); hs != nil {
		return hs, nil
	}
	if err := d.reload(ctx); err != nil {
		return nil, fmt.Errorf("webhooks unreadable: %w", err)
	}
	return d.snap.Load(), nil
}

// hooks returns the webhooks of account.
func (d *dispatcher) hooks(ctx context.Context, account string) ([]*store.Webhook, error) {
	hs, err := d.set(ctx)
	if err != nil {
		return nil, err
	}
	return hs.byAcc[account], nil
}

// callbackSecret is what a callback of account is signed with: the signing secret of the account's
// oldest enabled webhook, else the gateway's callback_secret ("" when neither exists).
func (d *dispatcher) callbackSecret(ctx context.Context, account string) (string, error) {
	hooks, err := d.hooks(ctx, account)
	if err != nil {
		return "", err
	}
	var oldest *store.Webhook
	for _, w := range hooks {
		if w.Disabled {
			continue
		}
		if oldest == nil || w.CreatedAt.Before(oldest.CreatedAt) || (w.CreatedAt.Equal(oldest.CreatedAt) && w.ID < oldest.ID) {
			oldest = w
		}
	}
	if oldest != nil {
		return oldest.Secret, nil
	}
	return d.secret, nil
}

// Record implements gateway.EventSink: it queues, durably, one delivery per webhook of the event's
// account that wants it and, for a receipt of a message with a callback URL, one for that URL.
func (d *dispatcher) Record(ctx context.Context, ev gateway.Event, m *store.Message) error {
	err := d.record(ctx, ev, m)
	if err != nil && ev.Kind == gateway.EventMO {
		d.log.Error().Err(err).Str("account", ev.Account).Msg("MO not queued for its webhooks")
	}
	return err
}

func (d *dispatcher) record(ctx context.Context, ev gateway.Event, m *store.Message) error {
	if ev.Remote {
		return nil // relayed from the instance it reached, which queues its webhooks
	}
	var name string
	switch ev.Kind {
	case gateway.EventReceipt:
		if ev.Receipt == nil {
			return nil
		}
		name = eventReceipt
	case gateway.EventMO:
		if ev.MO == nil {
			return nil
		}
		name = eventMO
	default:
		return nil
	}
	hooks, err := d.hooks(ctx, ev.Account)
	if err != nil {
		return err
	}
	wanted := slices.ContainsFunc(hooks, func(w *store.Webhook) bool { return wants(w, name) })
	if ev.Kind == gateway.EventReceipt && m == nil {
		m = d.message(ctx, ev) // for its callback URL and client reference
	}
	if !wanted && (m == nil || m.CallbackURL == "") {
		return nil // nothing to queue: the common case, built nothing
	}
	at := ev.At
	if at.IsZero() {
		at = time.Now()
	}
	now := time.Now()
	del := &smppgwv1.WebhookDelivery{CreateTime: ts(at)}
	kind := store.DeliveryMO
	switch ev.Kind {
	case gateway.EventReceipt:
		kind = store.DeliveryReceipt
		ref := ""
		if m != nil {
			ref = m.ClientRef
		}
		r := *ev.Receipt
		if r.MessageID == "" {
			r.MessageID = ev.MessageID
		}
		del.Event = smppgwv1.WebhookEvent_WEBHOOK_EVENT_RECEIPT
		del.Payload = &smppgwv1.WebhookDelivery_Receipt{Receipt: receiptToProto(&r, ref)}
	case gateway.EventMO:
		del.Event = smppgwv1.WebhookEvent_WEBHOOK_EVENT_MO
		del.Payload = &smppgwv1.WebhookDelivery_Mo{Mo: moToProto(newID(), ev.Upstream, ev.MO)}
	}
	queue := func(q string, dest store.Address) error {
		del.EventId = newID()
		body, err := protojson.Marshal(del)
		if err != nil {
			return err
		}
		return d.st.EnqueueDelivery(ctx, &store.Delivery{
			Account: q, Kind: kind, MessageID: ev.MessageID, Source: store.Address{Addr: ev.Account},
			Destination: dest, ShortMessage: body, CreatedAt: now,
		})
	}
	for _, w := range hooks {
		if !wants(w, name) {
			continue
		}
		del.WebhookId = w.ID
		if err := queue(hookQueue(w.ID), store.Address{}); err != nil {
			return fmt.Errorf("webhook %s: %w", w.ID, err)
		}
	}
	if m != nil && m.CallbackURL != "" {
		del.WebhookId = ""
		if err := queue(callbackQueue, store.Address{Addr: m.CallbackURL}); err != nil {
			return fmt.Errorf("callback of %s: %w", m.ID, err)
		}
	}
	return nil
}

// message is the message a receipt is about, nil when unreadable: its webhooks then go out without
// the client reference rather than not at all.
func (d *dispatcher) message(ctx context.Context, ev gateway.Event) *store.Message {
	id := ev.Receipt.MessageID
	if id == "" {
		id = ev.MessageID
	}
	msg, err := d.st.GetMessage(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			d.log.Warn().Err(err).Str("message", id).Msg("receipt posted without its client reference: message unreadable")
		}
		return nil
	}
	return msg
}

// wants reports whether webhook w posts events named event.
func wants(w *store.Webhook, event string) bool {
	return !w.Disabled && (len(w.Events) == 0 || contains(w.Events, event))
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// eventSource is a gateway that records events through a sink before answering its upstreams
// (*gateway.Gateway); a Gateway that is not one feeds the dispatcher through Subscribe.
type eventSource interface {
	SetEventSink(gateway.EventSink)
}

// attach makes gw record its events through d, when it can.
func (d *dispatcher) attach(gw Gateway) bool {
	if es, ok := gw.(eventSource); ok {
		es.SetEventSink(d)
		return true
	}
	return false
}

// run keeps one loop per queue (each enabled webhook's, and the callbacks') until ctx ends. Events
// of a gateway that has no sink (attached false) are read from its hub and recorded here: a restart
// may lose those not recorded yet.
func (d *dispatcher) run(ctx context.Context, gw Gateway, attached bool) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if !attached {
		events, cancel := gw.Subscribe("")
		defer cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-events:
					if !ok {
						return
					}
					rctx, c := context.WithTimeout(ctx, d.cfg.Timeout)
					if err := d.record(rctx, ev, nil); err != nil && ctx.Err() == nil {
						d.log.Error().Err(err).Str("account", ev.Account).Msg("event not queued for its webhooks")
					}
					c()
				}
			}
		}()
	}
	loops := map[string]context.CancelFunc{}
	defer func() {
		for _, stop := range loops {
			stop()
		}
	}()
	start := func(q string) {
		lctx, stop := context.WithCancel(ctx)
		loops[q] = stop
		wg.Add(1)
		go func() { defer wg.Done(); d.loop(lctx, q) }()
	}
	tick := time.NewTicker(d.cfg.RefreshInterval)
	defer tick.Stop()
	for {
		if err := d.reload(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn().Err(err).Msg("cannot read webhooks; using the last known ones")
		}
		// No loop runs before the registrations were read once: a claimed entry could not be
		// told from one of a removed webhook, nor a callback's secret known.
		hs := d.snap.Load()
		if hs == nil {
			hs = &hookSet{}
		}
		want, disabled := map[string]bool{}, map[string]bool{}
		if d.snap.Load() != nil {
			want[callbackQueue] = true
		}
		for id, w := range hs.byID {
			want[hookQueue(id)] = !w.Disabled
			disabled[hookQueue(id)] = w.Disabled
		}
		for q, on := range want {
			if on && loops[q] == nil {
				start(q)
			}
		}
		for q, stop := range loops {
			// A disabled webhook's entries wait for it to be enabled again; a removed webhook's loop
			// goes on until it has dropped them all (loop).
			if disabled[q] {
				stop()
				delete(loops, q)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.wake:
		}
	}
}

// claimWait is how long one claim waits for an entry.
const claimWait = time.Second

// loop claims the entries of queue q, at most Workers at a time, and POSTs them.
func (d *dispatcher) loop(ctx context.Context, q string) {
	for ctx.Err() == nil {
		ds, err := d.st.ClaimDeliveries(ctx, q, d.consumer, d.cfg.Workers, claimWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Warn().Err(err).Str("queue", q).Msg("cannot claim webhook deliveries; trying again")
			select {
			case <-ctx.Done():
				return
			case <-time.After(claimWait):
			}
			continue
		}
		if len(ds) == 0 && d.removed(ctx, q) {
			return
		}
		var wg sync.WaitGroup
		for _, del := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.attempt(ctx, q, del)
			}()
		}
		wg.Wait()
	}
}

// removed reports whether q is the queue of a webhook that was removed and holds nothing more (its
// entries were dropped as they were claimed), so its loop may end.
func (d *dispatcher) removed(ctx context.Context, q string) bool {
	id, ok := strings.CutPrefix(q, hookQueuePrefix)
	hs := d.snap.Load()
	if !ok || hs == nil || hs.byID[id] != nil {
		return false
	}
	n, err := d.st.QueueLen(ctx, store.Queue{Kind: store.DeliverQueue, Name: q})
	return err == nil && n == 0
}

// target is where and how an entry of queue q is posted; ok false when it no longer has a target
// (its webhook was removed or disabled).
func (d *dispatcher) target(ctx context.Context, q string, del *store.Delivery) (to, secret string, ok bool) {
	hs := d.snap.Load() // loops start once it is set
	if q == callbackQueue {
		secret, _ := d.callbackSecret(ctx, del.Source.Addr)
		return del.Destination.Addr, secret, del.Destination.Addr != ""
	}
	w := hs.byID[strings.TrimPrefix(q, hookQueuePrefix)]
	if w == nil || w.Disabled {
		return "", "", false
	}
	return w.URL, w.Secret, true
}

// attempt POSTs one claimed entry and settles it: acknowledged when delivered, when past its retry
// window, or when it can never be posted; else given back for a later attempt.
func (d *dispatcher) attempt(ctx context.Context, q string, del *store.Delivery) {
	l := d.log.With().Str("queue", q).Str("message", del.MessageID).Int("attempt", del.Attempts+1).Logger()
	drop := func(c interface{ Inc() }, why string) {
		c.Inc()
		if err := d.st.Ack(ctx, del.Lease); err != nil && ctx.Err() == nil {
			l.Warn().Err(err).Msg("webhook delivery not acknowledged; it comes back after its visibility time-out")
		}
		l.Warn().Msg(why)
	}
	deadline := del.CreatedAt.Add(d.cfg.MaxRetryDuration)
	if time.Now().After(deadline) {
		drop(d.counts.expired, "webhook delivery dropped: retry window over")
		return
	}
	to, secret, ok := d.target(ctx, q, del)
	if !ok {
		drop(d.counts.dropped, "webhook delivery dropped: its webhook was removed or disabled")
		return
	}
	var wd smppgwv1.WebhookDelivery
	if err := protojson.Unmarshal(del.ShortMessage, &wd); err != nil {
		drop(d.counts.dropped, "webhook delivery dropped: unreadable body")
		return
	}
	wd.Attempt = uint32(del.Attempts + 1)
	err := d.post(ctx, to, secret, &wd)
	if err == nil {
		d.counts.delivered.Inc()
		if err := d.st.Ack(ctx, del.Lease); err != nil {
			l.Warn().Err(err).Msg("webhook delivered but not acknowledged; it may be posted again")
		}
		return
	}
	if ctx.Err() != nil {
		// Stopping: hand it back at once for another instance (or this one's restart).
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = d.st.Postpone(pctx, del.Lease, 0)
		cancel()
		return
	}
	d.counts.failed.Inc()
	wait := d.backoff(int(wd.Attempt))
	if time.Now().Add(wait).After(deadline) {
		d.counts.expired.Inc()
		if aerr := d.st.Ack(ctx, del.Lease); aerr != nil {
			l.Warn().Err(aerr).Msg("expired webhook delivery not acknowledged")
		}
		l.Warn().Err(err).Msg("webhook delivery failed; retry window over, event dropped")
		return
	}
	l.Warn().Err(err).Dur("retry_in", wait).Msg("webhook delivery failed")
	if gerr := d.st.GiveBack(ctx, del.Lease, wait); gerr != nil && ctx.Err() == nil {
		l.Warn().Err(gerr).Msg("failed webhook delivery not given back; it comes back after its visibility time-out")
	}
}

// backoff is RetryMin doubled per attempt up to RetryMax, with jitter in its upper half.
func (d *dispatcher) backoff(attempt int) time.Duration {
	w := d.cfg.RetryMin
	for i := 1; i < attempt && w < d.cfg.RetryMax; i++ {
		w *= 2
	}
	w = min(w, d.cfg.RetryMax)
	return w/2 + rand.N(w/2+1)
}

type httpStatusError int

func (e httpStatusError) Error() string { return "webhook answered HTTP " + strconv.Itoa(int(e)) }

func (d *dispatcher) post(ctx context.Context, to, secret string, wd *smppgwv1.WebhookDelivery) error {
	body, err := protojson.Marshal(wd)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "smppgw-webhooks/1")
	req.Header.Set(SignatureHeader, Sign(secret, time.Now(), body))
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return httpStatusError(resp.StatusCode)
	}
	return nil
}

// checkCallbackURL checks SubmitRequest.callback_url ("" is none).
func checkCallbackURL(u string) error {
	if u == "" {
		return nil
	}
	if len(u) > maxCallbackURL {
		return invalid("callback_url", "longer than %d characters", maxCallbackURL)
	}
	pu, err := url.Parse(u)
	switch {
	case err != nil:
		return invalid("callback_url", "not a URL")
	case pu.Scheme != "http" && pu.Scheme != "https":
		return invalid("callback_url", "must be an absolute http or https URL")
	case pu.Host == "":
		return invalid("callback_url", "no host")
	}
	return nil
}
