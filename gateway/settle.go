package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// settler writes the outcome of a part a client took from its upstream's store queue (storeQueue
// reports to it): sent (submit_sm_resp OK), failed for good, lost (no answer), or to be tried again
// later. Each call is one store write, made off the session goroutines.
type settler interface {
	partSent(t *store.PartTask, upstream, upstreamID string)
	// partSentAsync is partSent with its write answered to c, which ends it with sent, instead of
	// waited for; false when the store has no asynchronous writes: nothing was done.
	partSentAsync(t *store.PartTask, upstream, upstreamID string, c *partJob) bool
	sent(ctx context.Context, t *store.PartTask, upstream, upstreamID string, at time.Time, m *store.Message, early []store.Receipt, err error)
	partFailed(t *store.PartTask, upstream string, cause error)
	partLost(t *store.PartTask, lost store.LostPDU)
	postpone(l store.Lease, delay time.Duration)
	giveBack(l store.Lease, delay time.Duration)
}

// partSettler is the settler of a Gateway: it writes with store.Settle (a part's outcome and the
// ack of its queue entry in one write) and hands the receipts that settling releases (those that
// beat their submit_sm_resp, failure receipts) to receipts.
type partSettler struct {
	st       store.Store
	async    store.AsyncWrites // st's, when the store has them (asyncOf); nil: writes are waited for
	log      zerolog.Logger
	stats    *counters
	receipts *receipts
	// routes and rerouteOn, when set, send a part an upstream refused with one of these statuses to the
	// next upstream of its route instead of failing it (RouterConfig.RerouteOn).
	routes    *routeTable
	rerouteOn map[pdu.CommandStatus]bool
}

var _ settler = (*partSettler)(nil)

func newPartSettler(st store.Store, stats *counters, rc *receipts, log zerolog.Logger) *partSettler {
	return &partSettler{st: st, async: asyncOf(st), stats: stats, receipts: rc, log: log.With().Str("component", "settle").Logger()}
}

// partSent settles a part the upstream accepted: the id map is written and the queue entry
// acknowledged in one write (Settle), and receipts that arrived before the mapping are forwarded.
func (ps *partSettler) partSent(t *store.PartTask, upstream, upstreamID string) {
	at := time.Now()
	ps.stats.submit(at)
	ctx := storeContext()
	m, early, err := ps.st.Settle(ctx, t.Lease, sentUpdate(t, upstream, upstreamID, at))
	ps.sent(ctx, t, upstream, upstreamID, at, m, early, err)
}

// partSentAsync is partSent, its write answered to c (which calls sent) instead of waited for. It
// reports false, having done nothing, when the store has no asynchronous writes.
func (ps *partSettler) partSentAsync(t *store.PartTask, upstream, upstreamID string, c *partJob) bool {
	if ps.async == nil {
		return false
	}
	c.at = time.Now()
	ps.stats.submit(c.at)
	c.q.work.writeStarted()
	ps.async.SettleAsync(storeContext(), t.Lease, sentUpdate(t, upstream, upstreamID, c.at), c)
	return true
}

func sentUpdate(t *store.PartTask, upstream, upstreamID string, at time.Time) store.PartUpdate {
	return store.PartUpdate{
		MessageID: t.MessageID, Part: t.Part, Upstream: upstream, UpstreamID: upstreamID, Status: pdu.ENROUTE, At: at,
	}
}

// sent is what follows the write of a part sent at at, which returned m, early and err: it logs,
// counts, and forwards the receipts that came before the mapping (early), the one store call it
// makes.
func (ps *partSettler) sent(ctx context.Context, t *store.PartTask, upstream, upstreamID string, at time.Time, m *store.Message, early []store.Receipt, err error) {
	if err != nil {
		// Not acknowledged: the entry is claimed again after the visibility time-out and sent again.
		// A duplicate is the price; losing the id map would lose the receipt.
		ps.log.Error().Err(err).Str("message_id", t.MessageID).Int("part", t.Part).Str("upstream_id", upstreamID).
			Msg("submit result not recorded; the part will be sent again")
		return
	}
	// Receipts that came first were applied by the same update, each stamped with its arrival.
	stamps := []time.Time{at}
	for _, rc := range early {
		stamps = append(stamps, rc.Received)
	}
	ps.stats.transition(m, stamps...)
	ps.log.Debug().Str("message_id", t.MessageID).Int("part", t.Part).Str("upstream", upstream).
		Str("upstream_id", upstreamID).Msg("part accepted upstream")
	for _, rc := range early {
		ps.log.Debug().Str("message_id", m.ID).Str("upstream_id", rc.UpstreamID).Msg("receipt that came before submit_sm_resp applied")
		if err := ps.receipts.correlated(ctx, m, rc); err != nil {
			ps.log.Error().Err(err).Str("message_id", m.ID).Msg("early receipt not queued for the account")
		}
	}
}

// partFailed settles a part the upstream refused for good (or that could not be encoded): REJECTED;
// or that the client gave up on: EXPIRED when too old (ErrExpired), UNDELIVERABLE when sent too
// often (ErrAttemptsExhausted).
func (ps *partSettler) partFailed(t *store.PartTask, upstream string, cause error) {
	ctx := storeContext()
	if ps.rerouted(ctx, t, upstream, cause) {
		return
	}
	state, status := pdu.REJECTED, pdu.StatusOf(cause)
	switch {
	case errors.Is(cause, ErrExpired):
		state, status = pdu.EXPIRED, 0
	case errors.Is(cause, ErrAttemptsExhausted):
		state = pdu.UNDELIVERABLE
	}
	m, _, err := ps.st.Settle(ctx, t.Lease, store.PartUpdate{
		MessageID: t.MessageID, Part: t.Part, Upstream: upstream, Status: state, Error: uint32(status),
	})
	if err != nil {
		ps.log.Error().Err(err).Str("message_id", t.MessageID).Msg("refusal not recorded; the part will be tried again")
		return
	}
	ps.stats.transition(m)
	ps.log.Warn().Err(cause).Str("message_id", t.MessageID).Int("part", t.Part).Str("upstream", upstream).
		Stringer("state", state).Msg("part failed for good")
	// The ESME was told "accepted"; it learns of the failure the only way left, a failure receipt.
	rc := store.Receipt{MessageID: m.ID, Part: t.Part, Upstream: upstream, State: state, Error: uint32(status), Done: time.Now()}
	if err := ps.receipts.correlated(ctx, m, rc); err != nil {
		ps.log.Error().Err(err).Str("message_id", m.ID).Msg("failure receipt not queued for the account")
	}
}

// rerouted moves a part upstream refused with a status of rerouteOn to the next bound, unpaused
// upstream after it in the part's route, keeping its attempt count, and reports whether the part is
// taken care of. Only later upstreams count (routeTable.nextUp without wrap), so a part moves forward
// through its route at most once per upstream and then fails: it cannot go round between upstreams
// that refuse it, and needs no record of the upstreams it tried.
func (ps *partSettler) rerouted(ctx context.Context, t *store.PartTask, upstream string, cause error) bool {
	var status pdu.CommandStatus
	if ps.routes == nil || errors.Is(cause, ErrExpired) || errors.Is(cause, ErrAttemptsExhausted) ||
		!errors.As(cause, &status) || !ps.rerouteOn[status] {
		return false
	}
	to := ps.routes.nextUp(t.Account, t.Destination.Addr, upstream, false)
	if to == "" {
		return false
	}
	switch err := ps.st.Reroute(ctx, t.Lease, to); {
	case err == nil:
		ps.log.Info().Str("message_id", t.MessageID).Int("part", t.Part).Str("from", upstream).Str("to", to).
			Stringer("status", status).Msg("part refused upstream; rerouted")
	case errors.Is(err, store.ErrNotFound):
		// Settled or claimed again meanwhile: whoever holds it now decides.
	default:
		// Still claimed: it comes back after the visibility time-out, is refused again and rerouted then.
		ps.log.Error().Err(err).Str("message_id", t.MessageID).Str("to", to).Msg("reroute not recorded; the part will be tried again")
	}
	return true
}

// partLost records a part sent and never answered (a lost PDU) and gives it back at once.
func (ps *partSettler) partLost(t *store.PartTask, lost store.LostPDU) {
	ctx := storeContext()
	if err := ps.st.RequeueLost(ctx, []store.LostPDU{lost}); err != nil {
		ps.log.Error().Err(err).Str("message_id", t.MessageID).Msg("lost PDU not recorded; the part returns after the visibility time-out")
		return
	}
	ps.log.Info().Str("message_id", t.MessageID).Int("part", t.Part).Uint32("seq", lost.SequenceNumber).Msg("lost PDU requeued")
}

func (ps *partSettler) postpone(l store.Lease, delay time.Duration) {
	postpone(ps.st, ps.log, l, delay)
}
func (ps *partSettler) giveBack(l store.Lease, delay time.Duration) {
	giveBack(ps.st, ps.log, l, delay)
}

// postpone is giveBack without counting an attempt.
func postpone(st store.Queues, log zerolog.Logger, l store.Lease, delay time.Duration) {
	ctx := storeContext()
	if err := st.Postpone(ctx, l, delay); err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Warn().Err(err).Stringer("queue", l.Queue).Msg("postpone failed; the entry returns after the visibility time-out")
	}
}

// giveBack returns a claimed entry to its queue after delay, counting an attempt.
func giveBack(st store.Queues, log zerolog.Logger, l store.Lease, delay time.Duration) {
	ctx := storeContext()
	if err := st.GiveBack(ctx, l, delay); err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Warn().Err(err).Stringer("queue", l.Queue).Msg("give back failed; the entry returns after the visibility time-out")
	}
}
