package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// deliverer sends what is queued for accounts (receipts, MO) to their receiver and transceiver binds
// on this instance: one loop per account while it has such a bind here, claiming its store queue
// (store.ClaimDeliveries) and spreading the deliver_sm over its binds' windows. It learns of binds
// as the Server's BindObserver and keeps the receiving sessions of each account itself, so it needs
// no way back into the Server. Delivery is at least once: a crash between a send and its
// acknowledgement sends again.
type deliverer struct {
	st       store.Store
	log      zerolog.Logger
	retry    time.Duration // RouterConfig.DeliveryRetry
	attempts int           // RouterConfig.MaxDeliveryAttempts
	instance string
	work     *pool

	mu     sync.Mutex
	runCtx context.Context
	rx     map[string]map[*session.Session]struct{} // account -> its receiving sessions here
	loops  map[string]chan struct{}                 // account -> wake-up of its delivery loop
	wg     sync.WaitGroup
}

var _ BindObserver = (*deliverer)(nil)

func newDeliverer(cfg RouterConfig, st store.Store, instance string, work *pool, log zerolog.Logger) *deliverer {
	return &deliverer{
		st: st, log: log.With().Str("component", "delivery").Logger(), retry: cfg.DeliveryRetry,
		attempts: cfg.MaxDeliveryAttempts, instance: instance, work: work,
		rx: make(map[string]map[*session.Session]struct{}), loops: make(map[string]chan struct{}),
	}
}

// HandleBound implements BindObserver: a receiver or transceiver bind starts the account's delivery
// loop (or wakes it).
func (r *deliverer) HandleBound(s *session.Session, a *Account) {
	if !s.BindType().CanReceive() {
		return
	}
	r.mu.Lock()
	set := r.rx[a.SystemID]
	if set == nil {
		set = make(map[*session.Session]struct{})
		r.rx[a.SystemID] = set
	}
	set[s] = struct{}{}
	r.mu.Unlock()
	r.start(a.SystemID)
}

// run records the lifetime of the delivery loops.
func (r *deliverer) run(ctx context.Context) {
	r.mu.Lock()
	r.runCtx = ctx
	r.mu.Unlock()
}

// wait returns once every delivery loop has ended (after the start context ended).
func (r *deliverer) wait() { r.wg.Wait() }

// receivers returns the account's bound sessions that may be sent deliver_sm, and forgets those
// that have ended.
func (r *deliverer) receivers(account string) []*session.Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.receiversLocked(account)
}

func (r *deliverer) receiversLocked(account string) []*session.Session {
	var out []*session.Session
	for s := range r.rx[account] {
		switch s.State() {
		case session.StateBound:
			out = append(out, s)
		case session.StateClosed:
			delete(r.rx[account], s)
		}
	}
	if len(r.rx[account]) == 0 {
		delete(r.rx, account)
	}
	return out
}

// startIfBound starts (or wakes) the account's delivery loop when it has a receiver here.
func (r *deliverer) startIfBound(account string) {
	if len(r.receivers(account)) > 0 {
		r.start(account)
	}
}

func (r *deliverer) start(account string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runCtx == nil || r.runCtx.Err() != nil {
		return
	}
	if wake, ok := r.loops[account]; ok {
		select {
		case wake <- struct{}{}:
		default:
		}
		return
	}
	wake := make(chan struct{}, 1)
	r.loops[account] = wake
	r.wg.Add(1)
	go r.loop(r.runCtx, account, wake)
}

// loop claims the account's queued deliver_sm and sends them to its receiver binds, until the
// account has none left here (or the router stops).
func (r *deliverer) loop(ctx context.Context, account string, wake chan struct{}) {
	defer r.wg.Done()
	consumer := r.instance + "/deliver/" + account
	log := r.log.With().Str("account", account).Logger()
	log.Debug().Msg("delivery loop started")
	for i := 0; ; {
		rx := r.receivers(account)
		if len(rx) == 0 || ctx.Err() != nil {
			r.mu.Lock()
			if len(r.receiversLocked(account)) == 0 || ctx.Err() != nil {
				delete(r.loops, account)
				r.mu.Unlock()
				log.Debug().Msg("delivery loop stopped: no receiver bind")
				return
			}
			r.mu.Unlock()
			continue
		}
		batch := 0
		for _, s := range rx {
			batch += s.Config().Window
		}
		ds, err := r.st.ClaimDeliveries(ctx, account, consumer, batch, r.retry)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			log.Error().Err(err).Msg("claiming deliveries failed")
			sleepCtx(ctx, r.retry)
			continue
		}
		if len(ds) == 0 {
			select {
			case <-wake:
			default:
			}
			continue
		}
		for k, d := range ds {
			s := rx[i%len(rx)]
			i++
			// A window that stays full for a second ends the round; the rest is given back.
			sendCtx, cancel := context.WithTimeout(ctx, time.Second)
			err := s.SendAsync(sendCtx, deliverSMOf(d), func(resp session.Response, err error) {
				r.work.do(func() { r.delivered(d, s, resp, err) })
			})
			cancel()
			if err != nil {
				for _, rest := range ds[k:] {
					giveBack(r.st, r.log, rest.Lease, r.retry)
				}
				break
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func deliverSMOf(d *store.Delivery) *pdu.DeliverSM {
	return &pdu.DeliverSM{
		SourceAddrTON: d.Source.TON, SourceAddrNPI: d.Source.NPI, SourceAddr: d.Source.Addr,
		DestAddrTON: d.Destination.TON, DestAddrNPI: d.Destination.NPI, DestinationAddr: d.Destination.Addr,
		EsmClass: d.ESMClass, ProtocolID: d.ProtocolID, DataCoding: d.DataCoding,
		ShortMessage: d.ShortMessage, Options: pdu.Options(d.TLVs),
	}
}

// delivered settles the ESME's answer to one of our deliver_sm.
func (r *deliverer) delivered(d *store.Delivery, s *session.Session, resp session.Response, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	status := resp.Status
	if err != nil {
		status = pdu.StatusOf(err)
	}
	log := r.log.With().Str("account", d.Account).Uint64("session", s.ID()).Str("message_id", d.MessageID).Logger()
	if err == nil && status == pdu.ESME_ROK {
		if err := r.st.Ack(ctx, d.Lease); err != nil {
			log.Warn().Err(err).Msg("delivery not acknowledged; it may be delivered again")
		}
		log.Debug().Msg("delivered")
		return
	}
	temporary := errors.Is(err, session.ErrLost) || errors.Is(err, session.ErrResponseTimeout) || errors.Is(err, session.ErrClosed) || status.Temporary()
	if !temporary || d.Attempts+1 >= r.attempts {
		log.Warn().Err(err).Stringer("status", status).Int("attempts", d.Attempts+1).Msg("deliver_sm dropped: the ESME refused it")
		if err := r.st.Ack(ctx, d.Lease); err != nil {
			log.Warn().Err(err).Msg("dropped delivery not acknowledged")
		}
		return
	}
	log.Info().Err(err).Stringer("status", status).Int("attempts", d.Attempts+1).Msg("deliver_sm not taken, will retry")
	giveBack(r.st, r.log, d.Lease, r.retry)
}
