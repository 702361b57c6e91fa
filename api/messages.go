package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	maxBatch        = 1000
	maxClientRef    = 64
	maxListScan     = 20 // store pages read to fill one filtered ListMessages page
	defaultMsgPage  = 50
	defaultHookPage = 50
)

// messageService implements smppgwv1.MessageServiceServer for the caller's account.
type messageService struct {
	smppgwv1.UnimplementedMessageServiceServer
	s *Server
}

func (m *messageService) Submit(ctx context.Context, req *smppgwv1.SubmitRequest) (*smppgwv1.SubmitResponse, error) {
	return m.submit(ctx, principalFrom(ctx), req)
}

func (m *messageService) submit(ctx context.Context, p *principal, req *smppgwv1.SubmitRequest) (*smppgwv1.SubmitResponse, error) {
	account, err := p.account(req.GetAccount())
	if err != nil {
		return nil, err
	}
	sub, err := submission(account, req, time.Now())
	if err != nil {
		return nil, err
	}
	if sub.CallbackURL != "" {
		secret, err := m.s.hooks.callbackSecret(ctx, account)
		if err != nil {
			return nil, err
		}
		if secret == "" {
			return nil, invalid("callback_url", "no signing secret: the account has no enabled webhook and the gateway no webhooks.callback_secret")
		}
	}
	msg, err := m.s.gw.Submit(ctx, sub)
	if err != nil {
		return nil, err
	}
	return &smppgwv1.SubmitResponse{MessageId: msg.ID, PartCount: uint32(len(msg.Parts)), DataCoding: codingToProto(msg.DataCoding)}, nil
}

// submission builds the gateway's Submission from the request. It checks only what is the API's own
// (its enums, the payload oneof, client_reference, udhi); the gateway validates the message itself
// (addresses, content, priority, times), by the same rules as a submit_sm, and names the field.
func submission(account string, req *smppgwv1.SubmitRequest, now time.Time) (gateway.Submission, error) {
	sub := gateway.Submission{
		Account:     account,
		Source:      store.Address{Addr: req.GetSource()},
		Destination: store.Address{Addr: req.GetDestination()},
		ClientRef:   req.GetClientReference(),
		CallbackURL: req.GetCallbackUrl(),
		Priority:    uint8(min(req.GetPriority(), 255)), // the gateway refuses above 3
	}
	switch {
	case len(req.GetClientReference()) > maxClientRef:
		return sub, invalid("client_reference", "longer than %d characters", maxClientRef)
	}
	if err := checkCallbackURL(sub.CallbackURL); err != nil {
		return sub, err
	}
	dc := req.GetDataCoding()
	if dc != smppgwv1.DataCoding_DATA_CODING_UNSPECIFIED {
		o, ok := codingOctet[dc]
		if !ok {
			return sub, invalid("data_coding", "unknown data coding %d", int32(dc))
		}
		sub.DataCoding = &o
	}
	switch pl := req.GetPayload().(type) {
	case *smppgwv1.SubmitRequest_Text:
		if dc == smppgwv1.DataCoding_DATA_CODING_BINARY {
			return sub, invalid("data_coding", "DATA_CODING_BINARY needs the binary payload, not text")
		}
		sub.Text = pl.Text
	case *smppgwv1.SubmitRequest_Binary:
		switch dc {
		case smppgwv1.DataCoding_DATA_CODING_UNSPECIFIED:
			o := codingOctet[smppgwv1.DataCoding_DATA_CODING_BINARY]
			sub.DataCoding = &o
		case smppgwv1.DataCoding_DATA_CODING_BINARY:
		default:
			return sub, invalid("data_coding", "a binary payload needs DATA_CODING_BINARY")
		}
		sub.Binary = pl.Binary
		if sub.Binary == nil {
			sub.Binary = []byte{} // given but empty: the gateway names "binary"
		}
	}
	switch req.GetRegisteredDelivery() {
	case smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_UNSPECIFIED, smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_NONE:
	case smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_FINAL:
		sub.RegisteredDelivery = pdu.RegisteredDeliveryReceiptFinal
	case smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_FAILURE:
		sub.RegisteredDelivery = pdu.RegisteredDeliveryReceiptFailure
	default:
		return sub, invalid("registered_delivery", "unknown value %d", int32(req.GetRegisteredDelivery()))
	}
	if v := req.GetValidityPeriod(); v != nil {
		if err := v.CheckValid(); err != nil || v.AsDuration() <= 0 {
			return sub, invalid("validity_period", "must be a positive duration")
		}
		sub.Validity = now.Add(v.AsDuration())
	}
	if s := req.GetScheduleTime(); s != nil {
		if err := s.CheckValid(); err != nil {
			return sub, invalid("schedule_time", "out of range (years 1 to 9999)")
		}
		sub.Schedule = s.AsTime()
	}
	return sub, nil
}

// batchParallel is how many messages of one SubmitBatch are being accepted at once. Each waits for
// a durable write; waiting together, they share the store's group commits instead of paying one
// each in turn.
const batchParallel = 64

func (m *messageService) SubmitBatch(ctx context.Context, req *smppgwv1.SubmitBatchRequest) (*smppgwv1.SubmitBatchResponse, error) {
	n := len(req.GetMessages())
	if n == 0 || n > maxBatch {
		return nil, invalid("messages", "must hold 1 to %d messages, not %d", maxBatch, n)
	}
	p := principalFrom(ctx)
	results := make([]*smppgwv1.SubmitBatchResult, n)
	var (
		wg   sync.WaitGroup
		slot = make(chan struct{}, batchParallel)
		stop atomic.Pointer[status.Status] // set once the rest would fail the same way
	)
	for i, r := range req.GetMessages() {
		slot <- struct{}{}
		if st := stop.Load(); st != nil {
			// Not tried: said so for each, with the error that stopped the batch.
			results[i] = &smppgwv1.SubmitBatchResult{Index: uint32(i), Result: &smppgwv1.SubmitBatchResult_Error{Error: st.Proto()}}
			<-slot
			continue
		}
		wg.Go(func() {
			defer func() { <-slot }()
			res := &smppgwv1.SubmitBatchResult{Index: uint32(i)}
			ok, err := m.submit(ctx, p, r)
			if err != nil {
				st, internal := toStatus(err)
				if internal {
					m.s.log.Error().Err(err).Int("index", i).Msg("batch submit failed")
				}
				res.Result = &smppgwv1.SubmitBatchResult_Error{Error: st.Proto()}
				if st.Code() == codes.Unavailable || ctx.Err() != nil {
					stop.CompareAndSwap(nil, st)
				}
			} else {
				res.Result = &smppgwv1.SubmitBatchResult_Accepted{Accepted: ok}
			}
			results[i] = res
		})
	}
	wg.Wait()
	return &smppgwv1.SubmitBatchResponse{Results: results}, nil
}

func (m *messageService) GetMessage(ctx context.Context, req *smppgwv1.GetMessageRequest) (*smppgwv1.GetMessageResponse, error) {
	if req.GetMessageId() == "" {
		return nil, invalid("message_id", "required")
	}
	msg, err := m.s.st.GetMessage(ctx, gateway.MessageIDKey(req.GetMessageId()))
	if err != nil {
		return nil, err
	}
	if !principalFrom(ctx).owns(msg.Account) {
		return nil, status.Error(codes.NotFound, "not found") // other accounts' ids do not exist for the caller
	}
	rs, err := m.s.st.ListReceipts(ctx, msg.ID)
	if err != nil {
		return nil, err
	}
	return &smppgwv1.GetMessageResponse{Message: messageToProto(msg, rs)}, nil
}

func (m *messageService) ListMessages(ctx context.Context, req *smppgwv1.ListMessagesRequest) (*smppgwv1.ListMessagesResponse, error) {
	p := principalFrom(ctx)
	f := store.MessageFilter{Cursor: req.GetPageToken()}
	if req.GetAccount() != "" || !p.admin() {
		acc, err := p.account(req.GetAccount())
		if err != nil {
			return nil, err
		}
		f.Account = acc
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, invalid("page_size", "negative")
	case size == 0:
		size = defaultMsgPage
	case size > store.MaxListLimit:
		size = store.MaxListLimit
	}
	f.Limit = size
	if t := req.GetCreateTimeFrom(); t != nil {
		f.From = t.AsTime()
	}
	if t := req.GetCreateTimeTo(); t != nil {
		f.To = t.AsTime()
	}
	if f.Cursor != "" {
		if _, err := store.DecodeCursor(f.Cursor); err != nil {
			return nil, invalid("page_token", "not a token from a previous call")
		}
	}
	var states []pdu.MessageState
	for _, s := range req.GetStatus() {
		if s <= smppgwv1.MessageStatus_MESSAGE_STATUS_UNSPECIFIED || s > smppgwv1.MessageStatus_MESSAGE_STATUS_REJECTED {
			return nil, invalid("status", "unknown status %d", int32(s))
		}
		states = append(states, pdu.MessageState(s))
	}
	if len(states) == 1 {
		f.Status = states[0]
	}
	match := func(msg *store.Message) bool {
		return (len(states) < 2 || slices.Contains(states, msg.Status)) &&
			(req.GetDestination() == "" || sameNumber(msg.Destination.Addr, req.GetDestination())) &&
			(req.GetSource() == "" || sameNumber(msg.Source.Addr, req.GetSource())) &&
			(req.GetClientReference() == "" || msg.ClientRef == req.GetClientReference())
	}
	out := &smppgwv1.ListMessagesResponse{}
	// Filters the store does not index are applied here; a page is filled from up to maxListScan
	// store pages, and the token resumes after the last message looked at.
	for range maxListScan {
		msgs, next, err := m.s.st.ListMessages(ctx, f)
		if err != nil {
			return nil, err
		}
		for i, msg := range msgs {
			if !match(msg) {
				continue
			}
			out.Messages = append(out.Messages, messageToProto(msg, nil))
			if len(out.Messages) == size {
				if i < len(msgs)-1 || next != "" {
					out.NextPageToken = store.EncodeCursor(store.IndexKey(msg.CreatedAt, msg.ID))
				}
				return out, nil
			}
		}
		if next == "" {
			return out, nil
		}
		f.Cursor = next
	}
	out.NextPageToken = f.Cursor
	return out, nil
}

func sameNumber(a, b string) bool {
	return strings.TrimPrefix(a, "+") == strings.TrimPrefix(b, "+")
}

func (m *messageService) StreamReceipts(req *smppgwv1.StreamReceiptsRequest, stream grpc.ServerStreamingServer[smppgwv1.StreamReceiptsResponse]) error {
	ctx := stream.Context()
	p := principalFrom(ctx)
	account := ""
	if req.GetAccount() != "" || !p.admin() {
		var err error
		if account, err = p.account(req.GetAccount()); err != nil {
			return err
		}
	}
	ids := map[string]bool{}
	for _, id := range req.GetMessageIds() {
		ids[id] = true
	}
	events, cancel := m.s.gw.SubscribeStream(account)
	defer cancel()
	// Headers go out once subscribed: a client that has them misses nothing from then on.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.s.shuttingDown():
			return status.Error(codes.Unavailable, "server shutting down")
		case ev, ok := <-events:
			if !ok {
				// Closed before our cancel: the gateway ended this subscription because the stream
				// fell gateway.SubscriberBuffer receipts behind (it never waits for a consumer).
				return status.Errorf(codes.ResourceExhausted, "receipt stream ended: it fell %d receipts behind; "+
					"the receipts are kept (GetMessage, ListMessages); open a new stream", gateway.SubscriberBuffer)
			}
			if ev.Kind != gateway.EventReceipt || ev.Receipt == nil || (len(ids) > 0 && !ids[ev.MessageID]) {
				continue
			}
			r := *ev.Receipt
			if r.MessageID == "" {
				r.MessageID = ev.MessageID
			}
			if err := stream.Send(streamedReceipt(&r, ev.ClientRef)); err != nil {
				return err
			}
		}
	}
}

// Webhooks.

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b[:])
}

var hookEvents = map[smppgwv1.WebhookEvent]string{
	smppgwv1.WebhookEvent_WEBHOOK_EVENT_RECEIPT: eventReceipt,
	smppgwv1.WebhookEvent_WEBHOOK_EVENT_MO:      eventMO,
}

func webhookToProto(w *store.Webhook) *smppgwv1.Webhook {
	out := &smppgwv1.Webhook{WebhookId: w.ID, Account: w.Account, Url: w.URL, Description: w.Description, CreateTime: ts(w.CreatedAt)}
	for ev, name := range hookEvents {
		if len(w.Events) == 0 || slices.Contains(w.Events, name) {
			out.Events = append(out.Events, ev)
		}
	}
	slices.Sort(out.Events)
	return out
}

func (m *messageService) CreateWebhook(ctx context.Context, req *smppgwv1.CreateWebhookRequest) (*smppgwv1.CreateWebhookResponse, error) {
	in := req.GetWebhook()
	if in == nil {
		return nil, invalid("webhook", "required")
	}
	account, err := principalFrom(ctx).account(in.GetAccount())
	if err != nil {
		return nil, err
	}
	if err := checkHookURL(in.GetUrl()); err != nil {
		return nil, err
	}
	if err := checkDescription("webhook.description", in.GetDescription()); err != nil {
		return nil, err
	}
	if d := in.GetMaxRetryDuration(); d != nil && d.AsDuration() != m.s.cfg.Webhooks.MaxRetryDuration {
		return nil, invalid("webhook.max_retry_duration", "this gateway retries every webhook for %s (webhooks.max_retry_duration); leave it unset", m.s.cfg.Webhooks.MaxRetryDuration)
	}
	if len(in.GetEvents()) == 0 {
		return nil, invalid("webhook.events", "at least one is required")
	}
	w := &store.Webhook{ID: newID(), Account: account, URL: in.GetUrl(), Secret: "whsec_" + newID() + newID(), CreatedAt: time.Now().UTC(), Description: in.GetDescription()}
	for _, ev := range in.GetEvents() {
		name, ok := hookEvents[ev]
		if !ok {
			return nil, invalid("webhook.events", "unknown event %d", int32(ev))
		}
		if !slices.Contains(w.Events, name) {
			w.Events = append(w.Events, name)
		}
	}
	if err := m.s.st.CreateWebhook(ctx, w); err != nil {
		return nil, err
	}
	m.s.hooks.invalidate(ctx)
	out := webhookToProto(w)
	out.MaxRetryDuration = dur(m.s.cfg.Webhooks.MaxRetryDuration)
	return &smppgwv1.CreateWebhookResponse{Webhook: out, SigningSecret: w.Secret}, nil
}

func checkHookURL(u string) error {
	if u == "" {
		return invalid("webhook.url", "required")
	}
	pu, err := url.Parse(u)
	if err != nil {
		return invalid("webhook.url", "not a URL")
	}
	if pu.Scheme != "http" && pu.Scheme != "https" {
		return invalid("webhook.url", "scheme must be http or https")
	}
	if pu.Host == "" {
		return invalid("webhook.url", "no host")
	}
	return nil
}

func (m *messageService) hook(ctx context.Context, id string) (*store.Webhook, error) {
	if id == "" {
		return nil, invalid("webhook_id", "required")
	}
	w, err := m.s.st.GetWebhook(ctx, id)
	if err != nil {
		return nil, err
	}
	if !principalFrom(ctx).owns(w.Account) {
		return nil, status.Error(codes.NotFound, "not found")
	}
	return w, nil
}

func (m *messageService) GetWebhook(ctx context.Context, req *smppgwv1.GetWebhookRequest) (*smppgwv1.GetWebhookResponse, error) {
	w, err := m.hook(ctx, req.GetWebhookId())
	if err != nil {
		return nil, err
	}
	out := webhookToProto(w)
	out.MaxRetryDuration = dur(m.s.cfg.Webhooks.MaxRetryDuration)
	return &smppgwv1.GetWebhookResponse{Webhook: out}, nil
}

func (m *messageService) ListWebhooks(ctx context.Context, req *smppgwv1.ListWebhooksRequest) (*smppgwv1.ListWebhooksResponse, error) {
	p := principalFrom(ctx)
	account := ""
	if req.GetAccount() != "" || !p.admin() {
		var err error
		if account, err = p.account(req.GetAccount()); err != nil {
			return nil, err
		}
	}
	all, err := m.s.st.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	var hooks []*smppgwv1.Webhook
	for _, w := range all {
		if account == "" || w.Account == account {
			h := webhookToProto(w)
			h.MaxRetryDuration = dur(m.s.cfg.Webhooks.MaxRetryDuration)
			hooks = append(hooks, h)
		}
	}
	slices.SortFunc(hooks, func(a, b *smppgwv1.Webhook) int { return strings.Compare(a.WebhookId, b.WebhookId) })
	page, next, err := paginate(hooks, req.GetPageSize(), req.GetPageToken(), defaultHookPage)
	if err != nil {
		return nil, err
	}
	return &smppgwv1.ListWebhooksResponse{Webhooks: page, NextPageToken: next}, nil
}

func (m *messageService) DeleteWebhook(ctx context.Context, req *smppgwv1.DeleteWebhookRequest) (*smppgwv1.DeleteWebhookResponse, error) {
	w, err := m.hook(ctx, req.GetWebhookId())
	if err != nil {
		return nil, err
	}
	if err := m.s.st.DeleteWebhook(ctx, w.ID); err != nil {
		return nil, err
	}
	m.s.hooks.invalidate(ctx)
	return &smppgwv1.DeleteWebhookResponse{}, nil
}

// paginate pages a sorted listing by offset; the token is the offset of the next page.
func paginate[T any](all []T, pageSize int32, token string, def int) ([]T, string, error) {
	size := int(pageSize)
	switch {
	case size < 0:
		return nil, "", invalid("page_size", "negative")
	case size == 0:
		size = def
	case size > store.MaxListLimit:
		size = store.MaxListLimit
	}
	off := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 {
			return nil, "", invalid("page_token", "not a token from a previous call")
		}
		off = min(n, len(all))
	}
	end := min(off+size, len(all))
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return all[off:end], next, nil
}
