package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
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

// dispatcher POSTs receipts and MO to the webhooks of their account: a bounded queue, a fixed
// number of workers, and retries with exponential back-off and jitter until the retry window ends.
type dispatcher struct {
	cfg    WebhookConfig
	st     hookStore
	log    zerolog.Logger
	client *http.Client
	jobs   chan *hookJob
	counts hookCounts // outcomes, for /metrics

	mu     sync.Mutex
	byAcc  map[string][]*store.Webhook
	byID   map[string]*store.Webhook
	loaded time.Time
	stale  bool
}

// hookStore is what the dispatcher reads: the registrations, and messages for the client
// reference a receipt echoes.
type hookStore interface {
	store.Webhooks
	GetMessage(ctx context.Context, id string) (*store.Message, error)
}

type hookJob struct {
	hook     *store.Webhook
	delivery *smppgwv1.WebhookDelivery
	deadline time.Time
}

func newDispatcher(cfg WebhookConfig, st hookStore, log zerolog.Logger) *dispatcher {
	return &dispatcher{
		cfg:    cfg,
		st:     st,
		log:    log.With().Str("part", "webhooks").Logger(),
		client: &http.Client{Timeout: cfg.Timeout},
		jobs:   make(chan *hookJob, cfg.QueueSize),
		stale:  true,
		counts: newHookCounts(),
	}
}

// invalidate makes the next event re-read the registrations.
func (d *dispatcher) invalidate() {
	d.mu.Lock()
	d.stale = true
	d.mu.Unlock()
}

// hooks returns the webhooks of account, re-read from the store when stale.
func (d *dispatcher) hooks(ctx context.Context, account string) []*store.Webhook {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refreshLocked(ctx)
	return d.byAcc[account]
}

// current reports whether w is still registered and enabled (re-reading the registrations when
// they are stale), so retries for a removed webhook stop.
func (d *dispatcher) current(ctx context.Context, w *store.Webhook) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refreshLocked(ctx)
	cur, ok := d.byID[w.ID]
	return ok && !cur.Disabled
}

func (d *dispatcher) refreshLocked(ctx context.Context) {
	if !d.stale && time.Since(d.loaded) <= d.cfg.RefreshInterval {
		return
	}
	all, err := d.st.ListWebhooks(ctx)
	if err != nil {
		d.log.Warn().Err(err).Msg("cannot read webhooks; using the last known ones")
		return
	}
	d.byAcc, d.byID = map[string][]*store.Webhook{}, map[string]*store.Webhook{}
	for _, w := range all {
		d.byAcc[w.Account] = append(d.byAcc[w.Account], w)
		d.byID[w.ID] = w
	}
	d.loaded, d.stale = time.Now(), false
}

func (d *dispatcher) run(ctx context.Context, gw Gateway) {
	events, cancel := gw.Subscribe("")
	defer cancel()
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx)
		}()
	}
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			d.fanOut(ctx, ev)
		}
	}
}

func (d *dispatcher) fanOut(ctx context.Context, ev gateway.Event) {
	if ev.Remote {
		return // the instance it reached posts it
	}
	var name string
	switch ev.Kind {
	case gateway.EventReceipt:
		name = eventReceipt
	case gateway.EventMO:
		name = eventMO
	default:
		return
	}
	at := ev.At
	if at.IsZero() {
		at = time.Now()
	}
	var receipt *smppgwv1.Receipt // built once, for the first webhook that wants it
	for _, w := range d.hooks(ctx, ev.Account) {
		if w.Disabled || (len(w.Events) > 0 && !contains(w.Events, name)) {
			continue
		}
		del := &smppgwv1.WebhookDelivery{EventId: newID(), WebhookId: w.ID, CreateTime: ts(at)}
		switch ev.Kind {
		case gateway.EventReceipt:
			if ev.Receipt == nil {
				continue
			}
			if receipt == nil {
				receipt = d.receipt(ctx, ev)
			}
			del.Event = smppgwv1.WebhookEvent_WEBHOOK_EVENT_RECEIPT
			del.Payload = &smppgwv1.WebhookDelivery_Receipt{Receipt: receipt}
		case gateway.EventMO:
			if ev.MO == nil {
				continue
			}
			del.Event = smppgwv1.WebhookEvent_WEBHOOK_EVENT_MO
			del.Payload = &smppgwv1.WebhookDelivery_Mo{Mo: moToProto(del.EventId, ev.Upstream, ev.MO)}
		}
		d.enqueue(&hookJob{hook: w, delivery: del, deadline: time.Now().Add(d.cfg.MaxRetryDuration)})
	}
}

// receipt is ev's receipt as posted, with the client reference of its message. Should the message
// be unreadable, the receipt goes out without it rather than not at all.
func (d *dispatcher) receipt(ctx context.Context, ev gateway.Event) *smppgwv1.Receipt {
	r := *ev.Receipt
	if r.MessageID == "" {
		r.MessageID = ev.MessageID
	}
	ref := ""
	if msg, err := d.st.GetMessage(ctx, r.MessageID); err == nil {
		ref = msg.ClientRef
	} else if !errors.Is(err, store.ErrNotFound) {
		d.log.Warn().Err(err).Str("message", r.MessageID).Msg("receipt posted without its client reference: message unreadable")
	}
	return receiptToProto(&r, ref)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (d *dispatcher) enqueue(j *hookJob) {
	select {
	case d.jobs <- j:
	default:
		d.counts.queueFull.Inc()
		d.log.Error().Str("webhook", j.hook.ID).Str("event", j.delivery.EventId).Msg("webhook queue full; event dropped")
	}
}

func (d *dispatcher) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-d.jobs:
			d.attempt(ctx, j)
		}
	}
}

func (d *dispatcher) attempt(ctx context.Context, j *hookJob) {
	if !d.current(ctx, j.hook) {
		return // removed or disabled meanwhile
	}
	j.delivery.Attempt++
	err := d.post(ctx, j)
	if err == nil {
		d.counts.delivered.Inc()
		return
	}
	if ctx.Err() != nil {
		return
	}
	d.counts.failed.Inc()
	wait := d.backoff(int(j.delivery.Attempt))
	l := d.log.Warn().Err(err).Str("webhook", j.hook.ID).Str("event", j.delivery.EventId).Uint32("attempt", j.delivery.Attempt)
	if time.Now().Add(wait).After(j.deadline) {
		d.counts.expired.Inc()
		l.Msg("webhook delivery failed; retry window over, event dropped")
		return
	}
	l.Dur("retry_in", wait).Msg("webhook delivery failed")
	time.AfterFunc(wait, func() {
		if ctx.Err() == nil {
			d.enqueue(j)
		}
	})
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

func (d *dispatcher) post(ctx context.Context, j *hookJob) error {
	body, err := protojson.Marshal(j.delivery)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.hook.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "smppgw-webhooks/1")
	req.Header.Set(SignatureHeader, Sign(j.hook.Secret, time.Now(), body))
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
