package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// Sentinel errors callers branch on. Implementations wrap them with %w, so test with errors.Is.
var (
	// ErrNotFound: the message, mapping, account or other record does not exist (or has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrUnavailable: the backend could not be reached or could not write durably. Nothing the
	// caller asked for may be assumed done; the gateway must not acknowledge the request.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrInDoubt: a write was sent and its outcome is unknown (the connection died or timed out
	// before the reply), so it may have been applied, wholly (every write is atomic), or not at
	// all. It is also an ErrUnavailable: the caller must not acknowledge on it, and must not
	// assume it undone either; reading the record back (GetMessage) once the backend answers
	// tells which. A plain ErrUnavailable means the write was never applied.
	ErrInDoubt = fmt.Errorf("%w: outcome unknown", ErrUnavailable)
	// ErrClosed is returned after Close. It is also an ErrUnavailable.
	ErrClosed = fmt.Errorf("%w: closed", ErrUnavailable)
	// ErrExists: a Create of a record whose key is already taken.
	ErrExists = errors.New("store: already exists")
	// ErrInvalid: the caller passed a record the store refuses (empty key, too many parts, ...).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrCorrupt: bytes read back from disk or Redis do not decode. It concerns that record
	// only; the rest of the store keeps working.
	ErrCorrupt = errors.New("store: corrupt record")
	// ErrLeaseLost: GiveBack or Reroute with a lease that no longer holds its entry, because
	// the entry was claimed again since (the lease's visibility time-out ran out) or the lease
	// was spent. The entry is left untouched for whoever holds it now. It is also an
	// ErrNotFound: for the caller, its claim no longer exists.
	ErrLeaseLost = fmt.Errorf("%w: lease lost", ErrNotFound)
)

// Store is everything smppgw persists. Each embedded interface is the seam one caller uses.
type Store interface {
	Messages
	Edits
	Queues
	Accounts
	Upstreams
	Routes
	MORoutes
	NumberRulesStore
	APIKeys
	Webhooks
	// Ping reports whether the backend is reachable (ErrUnavailable if not).
	Ping(ctx context.Context) error
	// Close flushes pending writes and releases the backend. Later calls fail with ErrClosed.
	Close() error
}

// Messages is the message life: accept, submit results, receipts, and reads for the API.
type Messages interface {
	// AcceptMessage durably writes m and enqueues each of its parts on the queue of
	// m.Upstream, as one step: it returns nil only when both are durable, and on error neither
	// may be assumed. m.ID must be unique (the gateway generates it); m.Status, m.History,
	// m.CreatedAt are set by the store when zero.
	AcceptMessage(ctx context.Context, m *Message) error
	// GetMessage returns the message with the given gateway id, or ErrNotFound.
	GetMessage(ctx context.Context, id string) (*Message, error)
	// ListMessages returns messages matching f, oldest first, and a cursor for the next page
	// ("" when there is none).
	ListMessages(ctx context.Context, f MessageFilter) ([]*Message, string, error)
	// UpdatePart records what happened to one part upstream. When u.UpstreamID is set it also
	// writes the id map (upstream, upstream id) -> (message, part) with the store's IDMapTTL,
	// and attaches any receipt that arrived for that upstream id before the mapping existed:
	// those receipts are applied and returned, so the caller forwards them.
	UpdatePart(ctx context.Context, u PartUpdate) (*Message, []Receipt, error)
	// Settle settles a claimed part for good: it is UpdatePart(u) and Ack(l) as one write, which
	// rides on the next group commit with everything else written meanwhile, so the upstream's
	// answer costs a message no write (and no fsync or round trip) of its own. It returns what
	// UpdatePart returns. On error neither the update nor the acknowledgement may be assumed: the
	// entry stays queued and comes back after its visibility time-out, as after a failed
	// UpdatePart. Like Ack it removes the entry even when l is stale (see Queues).
	Settle(ctx context.Context, l Lease, u PartUpdate) (*Message, []Receipt, error)
	// AddReceipt correlates r by (r.Upstream, r.UpstreamID). When the mapping exists the receipt
	// is recorded on the message, the part and message status are updated, r.MessageID and
	// r.Part are filled in and the updated message is returned. When it does not exist (yet),
	// the receipt is parked for ParkTTL and parked is true; a later UpdatePart with that
	// upstream id picks it up. Either way the receipt is durable when err is nil.
	AddReceipt(ctx context.Context, r *Receipt) (m *Message, parked bool, err error)
	// ListReceipts returns every receipt recorded for a message, in arrival order.
	ListReceipts(ctx context.Context, messageID string) ([]Receipt, error)
}

// AsyncWrites is implemented by a store that can hand the outcome of its two hot writes to a
// completion instead of keeping the caller waiting for the durable write: the caller's goroutine
// is free once the write is queued, so no goroutine is parked per write in flight. Each method is
// its synchronous namesake in every other respect (what it writes, what it returns, what it keeps
// of its arguments: nothing of m once it returns).
//
// The completion runs exactly once, with what the synchronous call would have returned: after the
// write is durable (nil) or has failed. It runs on a goroutine of the store, which it holds up:
// it must not block, nor wait for the store (a write of its own is waited for by no one but the
// store's own goroutine, which is running the completion). It may also run on the caller's
// goroutine before the method returns, when the write is refused before it is queued. ctx bounds
// the write as it does the synchronous call's: when it ends first, the completion is told so at
// once (within a few tens of milliseconds) with ErrInDoubt if the write was queued and may still
// land, with ctx's error if it was not queued.
type AsyncWrites interface {
	AcceptMessageAsync(ctx context.Context, m *Message, c AcceptCompletion)
	SettleAsync(ctx context.Context, l Lease, u PartUpdate, c SettleCompletion)
}

// GroupCommitter is implemented by a store that counts its group commits: how many durable writes
// (an fdatasync of the embedded store's log, a round trip of Redis's pipeline) carried the
// operations so far. Operations over group commits is how well writes share them.
type GroupCommitter interface{ GroupCommits() uint64 }

// AcceptCompletion is told the outcome of AcceptMessageAsync: AcceptMessage's error.
type AcceptCompletion interface{ AcceptDone(err error) }

// SettleCompletion is told the outcome of SettleAsync: what Settle returns.
type SettleCompletion interface {
	SettleDone(m *Message, attached []Receipt, err error)
}

// Queues are the work queues: per-upstream parts to submit and per-account deliver_sm to
// hand to a bound ESME. A claimed entry that is neither acknowledged nor given back within
// the visibility time-out becomes claimable again (Reclaimed is then true).
//
// Each claim hands out a new Lease, and only the latest claim of an entry may move it:
// once the entry was claimed again, GiveBack, Reroute and RequeueLost with an older lease
// leave it alone (ErrLeaseLost), so an entry is never made claimable while another consumer
// holds it. Ack is the exception: an acknowledgement says the part's fate is settled (the
// upstream took it or refused it for good), so Ack removes the entry its lease names even
// when another consumer holds it now; that consumer's Ack is then a no-op and its GiveBack
// or Reroute fails with ErrNotFound, instead of sending a settled part once more. An entry
// that was given back since may have become a new entry (Redis), which such a late Ack does
// not reach; the part is then sent again, the duplicate a late answer always risks.
type Queues interface {
	// ClaimParts claims up to max parts from the queue of upstream for consumer (a name unique
	// to one bind of one instance, and the same across its restarts). When none is ready it
	// waits up to wait for one. After a restart (a new Store over the same data), what the
	// consumer had claimed and not settled is handed out again at once, not after the
	// visibility time-out: the embedded store has no other consumer, and a Redis store gives
	// back the consumer's own pending entries at its first claim of each queue.
	ClaimParts(ctx context.Context, upstream, consumer string, max int, wait time.Duration) ([]*PartTask, error)
	// EnqueueDelivery durably queues d on the queue of d.Account.
	EnqueueDelivery(ctx context.Context, d *Delivery) error
	// ClaimDeliveries is ClaimParts for the per-account deliver_sm queue.
	ClaimDeliveries(ctx context.Context, account, consumer string, max int, wait time.Duration) ([]*Delivery, error)
	// Ack removes claimed entries for good, even by a stale lease (see Queues).
	// Acknowledging an entry twice is not an error. On error nothing may be assumed removed:
	// the entries stay queued and come back after their visibility time-out.
	Ack(ctx context.Context, leases ...Lease) error
	// GiveBack returns a claimed entry to its queue, claimable again after delay, with its
	// Attempts count increased (use after ESME_RTHROTTLED or a transient error). The lease is
	// spent: the entry's next claim carries a new one. ErrNotFound if it was acknowledged,
	// ErrLeaseLost if it was claimed again since the lease was handed out.
	GiveBack(ctx context.Context, l Lease, delay time.Duration) error
	// Postpone is GiveBack without counting an attempt: for an entry that was never sent, or
	// that the upstream refused only to slow the bind down (ESME_RTHROTTLED).
	Postpone(ctx context.Context, l Lease, delay time.Duration) error
	// Reroute moves a claimed part to the queue of another upstream (failover when its own
	// upstream refuses it or stays down), keeping its attempt count. The lease is spent.
	// ErrNotFound if the entry was acknowledged meanwhile, ErrLeaseLost if it was claimed
	// again since.
	Reroute(ctx context.Context, l Lease, upstream string) error
	// RequeueLost records requests a session sent but never saw answered (lost PDUs) and gives
	// their entries back at once, without waiting for the visibility time-out, counting an
	// attempt each (the request was sent, and may have reached the upstream). Entries
	// acknowledged or claimed again since are left as they are (their PDUs are still
	// recorded): someone else settles them.
	RequeueLost(ctx context.Context, lost []LostPDU) error
	// QueueLen returns the number of entries in q, claimed or not.
	QueueLen(ctx context.Context, q Queue) (int, error)
	// QueueStats returns what an operator watches of q: its length (as QueueLen), how many of
	// its entries are claimed and not yet acknowledged, and the age of its head. An empty or
	// unknown queue has zero stats.
	QueueStats(ctx context.Context, q Queue) (QueueStats, error)
}

// QueueStats describe one queue's backlog.
type QueueStats struct {
	Len     int // entries, claimed or not, delayed included
	Claimed int // entries claimed by a consumer and neither acknowledged nor given back
	// Oldest is when the work of the entry first in line was created: its message accepted, for
	// a part; its CreatedAt, for a delivery. Zero when the queue is empty. An entry given back
	// may wait behind the head (on Redis it goes to the tail), so this is the head's age, the
	// one that grows while nothing is taken, not always the oldest work's.
	Oldest time.Time
}

// QueueKind tells the two kinds of queue apart.
type QueueKind uint8

// Queue kinds.
const (
	// SubmitQueue holds the parts to submit to one upstream; Queue.Name is the upstream name.
	SubmitQueue QueueKind = 1
	// DeliverQueue holds the deliver_sm (receipts and MO) for one account; Name is its system_id.
	DeliverQueue QueueKind = 2
)

// Queue names one queue.
type Queue struct {
	Kind QueueKind
	Name string
}

func (q Queue) String() string {
	switch q.Kind {
	case SubmitQueue:
		return "submit:" + q.Name
	case DeliverQueue:
		return "deliver:" + q.Name
	}
	return fmt.Sprintf("queue(%d):%s", q.Kind, q.Name)
}

// Lease identifies one claim of one entry; hand it back to Ack, GiveBack, Reroute or
// RequeueLost.
type Lease struct {
	Queue Queue
	// Entry names the entry and the claim, opaque to callers: "seq/token" on the embedded
	// store, "stream id/delivery count" on Redis.
	Entry string
}

// Address is an SMPP address triple (source_addr_ton, source_addr_npi, source_addr).
type Address struct {
	TON  uint8
	NPI  uint8
	Addr string
}

// StatusChange is one entry in a message's status history.
type StatusChange struct {
	State pdu.MessageState
	At    time.Time
}

// Part is one submit_sm of a (possibly long) message. The short message is kept encoded as
// it goes on the wire (UDH included), TLVs as their encoded bytes, so the store never
// interprets the text.
type Part struct {
	ESMClass     uint8
	ShortMessage []byte
	TLVs         []byte // encoded optional parameters (sar_*, message_payload, ...)

	Upstream    string // the upstream it was submitted to, once it was
	UpstreamID  string // the upstream's message_id from submit_sm_resp
	Status      pdu.MessageState
	Error       uint32 // last command_status or receipt err: code, 0 if none
	SubmittedAt time.Time
	UpdatedAt   time.Time
}

// MaxParts is the most parts one message may have (the UDH total-segments field is one byte).
const MaxParts = 255

// Message is one accepted message and what became of it.
type Message struct {
	ID                 string // gateway message id
	Account            string // system_id (or API account) that submitted it
	ServiceType        string
	Source             Address
	Destination        Address
	ESMClass           uint8 // message-level esm_class; parts carry their own (UDHI)
	ProtocolID         uint8
	PriorityFlag       uint8
	RegisteredDelivery uint8
	DataCoding         uint8
	Validity           time.Time // zero: the upstream's default
	Schedule           time.Time // scheduled delivery, forwarded upstream as schedule_delivery_time; zero: now
	ClientRef          string    // caller's reference (API), opaque
	// CallbackURL, when set, is where the API POSTs this message's receipts besides the account's
	// webhooks (the API's per-message callback); records written before it read as "".
	CallbackURL string
	// Origin is the channel the message came in by: OriginAPI, or OriginSMPP ("", as every record
	// written before the field reads). A receipt goes back by the same channel (gateway/receipts.go).
	Origin    string
	Upstream  string // queue the parts were routed to
	Status    pdu.MessageState
	History   []StatusChange
	Parts     []Part
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Message origins (Message.Origin).
const (
	// OriginSMPP is a submit_sm, submit_multi or data_sm from a bind. It is the zero value so that
	// such a message is written as before the field existed, and a release before it still reads it.
	OriginSMPP = ""
	// OriginAPI is the API's Submit or SubmitBatch (gRPC or REST).
	OriginAPI = "api"
)

// PartUpdate is what the upstream client learned about one part.
type PartUpdate struct {
	MessageID  string
	Part       int
	Upstream   string
	UpstreamID string           // from submit_sm_resp; empty when the submit failed
	Status     pdu.MessageState // ENROUTE after a successful submit; REJECTED, UNDELIVERABLE... on failure
	Error      uint32           // command_status on failure
	At         time.Time        // zero: now
}

// Receipt is one delivery receipt received from an upstream.
type Receipt struct {
	MessageID  string // filled by the store on correlation
	Part       int    // filled by the store on correlation
	Upstream   string
	UpstreamID string
	State      pdu.MessageState
	Error      uint32 // the err: field
	Submitted  time.Time
	Done       time.Time
	Received   time.Time // zero: now
	Text       []byte    // the receipt's short_message as received, for audit
}

// PartTask is a claimed part to submit upstream: everything needed to build the submit_sm.
type PartTask struct {
	Lease Lease
	// Attempts is how many times it was sent before and came back unsettled: given back with
	// GiveBack, or recorded lost with RequeueLost (Postpone does not count). A part in flight
	// when the process died is not counted: that would cost a write per claim.
	Attempts  int
	Reclaimed bool // handed out again after a visibility time-out or a lost PDU

	MessageID          string
	Part               int
	Parts              int
	Account            string
	ServiceType        string
	Source             Address
	Destination        Address
	ESMClass           uint8
	ProtocolID         uint8
	PriorityFlag       uint8
	RegisteredDelivery uint8
	DataCoding         uint8
	Validity           time.Time
	Schedule           time.Time // zero: deliver now
	ShortMessage       []byte
	TLVs               []byte
	// Accepted is when the message was accepted (Message.CreatedAt), from which a part's age is
	// counted; zero for parts queued before it was recorded.
	Accepted time.Time
}

// DeliveryKind says what a queued deliver_sm carries.
type DeliveryKind uint8

// Delivery kinds.
const (
	DeliveryReceipt DeliveryKind = 1
	DeliveryMO      DeliveryKind = 2
)

// Delivery is a deliver_sm waiting for a receiver bind of Account.
type Delivery struct {
	Lease     Lease
	Attempts  int
	Reclaimed bool

	Account      string
	Kind         DeliveryKind
	MessageID    string // the gateway id the receipt is about; empty for MO
	Source       Address
	Destination  Address
	ESMClass     uint8
	ProtocolID   uint8
	DataCoding   uint8
	ShortMessage []byte
	TLVs         []byte
	CreatedAt    time.Time
}

// LostPDU is a request a session sent and never saw answered.
type LostPDU struct {
	Lease          Lease // the queue entry the request came from
	Session        string
	CommandID      uint32
	SequenceNumber uint32
	At             time.Time // zero: now
}

// MessageFilter selects messages for ListMessages. Zero fields do not filter.
type MessageFilter struct {
	Account string
	Status  pdu.MessageState
	From    time.Time // CreatedAt >= From
	To      time.Time // CreatedAt < To
	Limit   int       // default 100, at most 1000
	Cursor  string    // from the previous page
}

// Options tunes an implementation. The zero value of each field selects its default.
type Options struct {
	// VisibilityTimeout is how long a claimed entry stays invisible before it can be claimed
	// again. Default 30s.
	VisibilityTimeout time.Duration
	// IDMapTTL is how long (upstream, upstream id) -> message stays resolvable. Default 72h.
	IDMapTTL time.Duration
	// ParkTTL is how long a receipt without a mapping waits for one. Default 1h.
	ParkTTL time.Duration
	// MaxBatch bounds how many writes one group commit takes. Default 1024.
	MaxBatch int
	// PollInterval bounds how long a waiting claim sleeps before it looks again for entries
	// whose visibility time-out or give-back delay ran out. Default 100ms.
	PollInterval time.Duration
	// MessageTTL is how long a message, its receipts and its index entries are kept after
	// it was accepted; 0 keeps them for ever. Queue entries are not affected, so it should
	// far exceed how long a part can wait in a queue.
	MessageTTL time.Duration
	// SweepInterval is how often expired entries are removed: id map, parked receipts and
	// messages on the embedded store, message index entries on Redis (which expires keys
	// itself). Default 1m.
	SweepInterval time.Duration
}

// WithDefaults returns o with each zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.VisibilityTimeout <= 0 {
		o.VisibilityTimeout = 30 * time.Second
	}
	if o.IDMapTTL <= 0 {
		o.IDMapTTL = 72 * time.Hour
	}
	if o.ParkTTL <= 0 {
		o.ParkTTL = time.Hour
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1024
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	return o
}

// maxKey bounds ids and names; SMPP's message_id is a C-Octet string of at most 65 octets,
// and config names are short.
const maxKey = 128

// validKey reports whether s can be used as an id or name: non-empty, bounded, and free of
// the NUL byte the implementations use as a separator.
func validKey(s string) bool {
	if s == "" || len(s) > maxKey {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return false
		}
	}
	return true
}

// ValidateMessage checks what AcceptMessage needs of m.
func ValidateMessage(m *Message) error {
	switch {
	case m == nil:
		return fmt.Errorf("%w: nil message", ErrInvalid)
	case !validKey(m.ID):
		return fmt.Errorf("%w: message id %q", ErrInvalid, m.ID)
	case !validKey(m.Upstream):
		return fmt.Errorf("%w: message %s: upstream %q", ErrInvalid, m.ID, m.Upstream)
	case len(m.Parts) == 0 || len(m.Parts) > MaxParts:
		return fmt.Errorf("%w: message %s: %d parts", ErrInvalid, m.ID, len(m.Parts))
	case len(m.Account) > maxKey:
		return fmt.Errorf("%w: message %s: account too long", ErrInvalid, m.ID)
	}
	return nil
}

// ValidateQueue checks a queue name.
func ValidateQueue(q Queue) error {
	if (q.Kind != SubmitQueue && q.Kind != DeliverQueue) || !validKey(q.Name) {
		return fmt.Errorf("%w: queue %v", ErrInvalid, q)
	}
	return nil
}

// ValidateUpstreamID checks an (upstream, upstream id) pair.
func ValidateUpstreamID(upstream, upstreamID string) error {
	if !validKey(upstream) || !validKey(upstreamID) {
		return fmt.Errorf("%w: upstream %q id %q", ErrInvalid, upstream, upstreamID)
	}
	return nil
}

// PrepareAccept fills the fields AcceptMessage sets on a new message, at time now. The first status
// change goes in m.History's spare capacity when it has some.
func PrepareAccept(m *Message, now time.Time) {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	m.UpdatedAt = m.CreatedAt
	if m.Status == 0 {
		m.Status = pdu.ACCEPTED
	}
	if len(m.History) == 0 {
		// Into the room the caller left, if any (the gateway's accept keeps one).
		m.History = append(m.History[:0], StatusChange{State: m.Status, At: m.CreatedAt})
	}
	for i := range m.Parts {
		if m.Parts[i].Status == 0 {
			m.Parts[i].Status = pdu.ACCEPTED
		}
	}
}

// NewPartTask builds the queue payload for part i of m.
func NewPartTask(m *Message, i int) *PartTask {
	p := &m.Parts[i]
	return &PartTask{
		MessageID: m.ID, Part: i, Parts: len(m.Parts), Account: m.Account,
		ServiceType: m.ServiceType, Source: m.Source, Destination: m.Destination,
		ESMClass: p.ESMClass, ProtocolID: m.ProtocolID, PriorityFlag: m.PriorityFlag,
		RegisteredDelivery: m.RegisteredDelivery, DataCoding: m.DataCoding, Validity: m.Validity,
		Schedule: m.Schedule, ShortMessage: p.ShortMessage, TLVs: p.TLVs, Accepted: m.CreatedAt,
	}
}
