package gateway

import (
	"errors"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// The types below are what the running gateway (type Gateway) offers the API and the admin
// endpoints: one message path for SMPP and the API, and the operator's view of sessions, upstreams,
// routes and counters.

// Submission is a message handed to the gateway by an application (the API) rather than by an ESME
// over SMPP. It goes through the same path as a submit_sm: validated, split into parts, routed,
// written to the store and queued for its upstream, and only then acknowledged.
type Submission struct {
	Account            string        // the account it is charged to; its receipts and MO go there
	Source             store.Address // sender (TON/NPI default from the address form when zero)
	Destination        store.Address
	Text               string // UTF-8 text, split into parts automatically; or
	Binary             []byte // a binary payload sent as is in DataCoding (exactly one of Text, Binary)
	DataCoding         *uint8 // nil: the smallest coding that carries Text (GSM 03.38 or UCS-2)
	RegisteredDelivery uint8
	Validity           time.Time // zero: the upstream's default
	Schedule           time.Time // zero: deliver now
	Priority           uint8
	ClientRef          string
	CallbackURL        string // where the API POSTs this message's receipts too (store.Message.CallbackURL)
}

// ValidationError names the field of a Submission (or a submit_sm) that cannot be accepted, in the
// submitter's terms; the API answers it with InvalidArgument / HTTP 400, SMPP with Status. Its text
// is what users read ("source: 12 characters, at most 11 in an alphanumeric sender"), so it has no
// package prefix.
type ValidationError struct {
	Field  string            // "destination", "source", "text", "short_message", "validity_period"...
	Reason string            // what is wrong, with the limit when there is one
	Status pdu.CommandStatus // the submit_sm_resp status for it (ESME_RINVDSTADR...); zero means ESME_RINVPARLEN
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Errors the API maps to its own codes (errors.Is): no route -> FailedPrecondition or InvalidArgument,
// throttled -> ResourceExhausted, store.ErrUnavailable -> Unavailable, unknown name -> NotFound.
var (
	ErrNoRoute         = errors.New("gateway: no route for destination")
	ErrThrottled       = errors.New("gateway: account over its throughput")
	ErrUnknownUpstream = errors.New("gateway: no such upstream")
	ErrUnknownSession  = errors.New("gateway: no such session")
)

// UpstreamInfo is the operator's view of one upstream bind.
type UpstreamInfo struct {
	Config     ClientConfig // Password cleared
	Status     ClientStatus
	Paused     bool
	QueueDepth int // parts waiting in the upstream's queue (durable queue when a store is used)
}

// EventKind tells what an Event carries.
type EventKind uint8

const (
	EventReceipt EventKind = 1 // a delivery receipt for a message of Account
	EventMO      EventKind = 2 // a mobile-originated message routed to Account
)

// Event is a receipt or an MO as it reaches the gateway, for the API's receipt stream and webhooks.
type Event struct {
	Kind      EventKind
	Account   string
	MessageID string         // the gateway message id a receipt is about
	ClientRef string         // with Kind EventReceipt: the message's client reference, if it has one
	Receipt   *store.Receipt // with Kind EventReceipt
	MO        *store.Delivery
	Upstream  string           // with Kind EventMO: the upstream the MO came from
	Status    pdu.MessageState // the message's aggregate status after the receipt
	At        time.Time
	// Remote marks an event that reached another instance sharing the store and was relayed here
	// for this instance's API streams (clusterEvents). Webhooks take local events only: each
	// instance posts what reached it, so every event is posted once.
	Remote bool
}

// Stats are the gateway's counters for the admin API. Rates are sliding one-minute means: the
// events of the last 60 seconds over 60.
type Stats struct {
	MessagesByStatus map[pdu.MessageState]int64 // accepted messages by current status (this process's view)
	Pending          int64                      // of those, the ones not in a final state
	Accepted         uint64                     // messages accepted since start
	Rejected         uint64                     // submissions refused since start
	Submitted        uint64                     // parts upstreams accepted (submit_sm_resp OK) since start
	ReceiptsIn       uint64                     // receipts from upstreams, recorded
	// ReceiptsDuplicate counts receipts an upstream sent again (same part, state and error as one
	// before): recorded, counted in ReceiptsIn, and handed to no ESME, stream or webhook.
	ReceiptsDuplicate uint64
	MOIn              uint64 // MO from upstreams, queued for their accounts
	// EventsDropped counts receipts and MO not handed to an API subscriber (receipt stream, webhook
	// dispatcher) that was SubscriberBuffer events behind; StreamsEnded the receipt streams ended
	// for it (Gateway.SubscribeStream). The store holds the events either way.
	EventsDropped  uint64
	StreamsEnded   uint64
	AcceptRate     float64 // messages accepted per second over the last minute
	SubmitRate     float64 // parts accepted by upstreams per second over the last minute
	ReceiptRate    float64 // receipts per second over the last minute
	MORate         float64 // MO per second over the last minute
	Sessions       int     // bound ESME sessions
	WindowUsed     int     // requests in flight over all sessions and upstream binds
	WindowSize     int
	UpstreamQueues []QueueInfo // the submit queue of every upstream, by name
	DeliveryQueues []QueueInfo // the deliver_sm queue (receipts and MO) of every account, by system_id
}

// QueueInfo is one queue's backlog, read from the store.
type QueueInfo struct {
	Name      string        // the upstream, or the account
	Len       int           // entries, claimed or not
	Claimed   int           // entries taken by a bind and not yet acknowledged
	OldestAge time.Duration // since the work at the head of the queue was created; 0 when empty
}
