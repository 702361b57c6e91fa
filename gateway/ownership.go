package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/store"
)

// Several instances on one store (issue 12). Each bind slot of an upstream (upstream, i) is held by
// one instance at a time, under a lease in the store (store.Leases) keyed "bind:<upstream>:<i>":
//
//   - a Client's supervisor takes its slot's lease before it dials (or waits for an outbind) and keeps
//     renewing it every LeaseTTL/3 for as long as it connects and stays bound; it gives the lease up
//     when the bind fails or ends (so another instance may try) and when it stops;
//   - an instance that cannot take the lease waits in ClientStandby, trying again every LeaseTTL/3: an
//     instance that dies without releasing is replaced within LeaseTTL plus that, plus its dial and bind;
//   - an instance that finds its lease gone (taken after it expired), or cannot renew it before it
//     would expire, unbinds at once, and never renews a lease it lost: the holder it lost it to may
//     already be binding.
//
// The lease's owner token is the instance name and a random suffix per run, so two runs (or two
// instances misconfigured with one name) never take each other's lease for their own.
//
// Each instance also publishes its state (InstanceState: counters, ESME sessions, upstream binds)
// every PublishEvery to the store's board (store.Board), which the admin API reads for its cluster
// view, and which routing and failover read to learn which upstreams another instance has bound.
//
// With no store.Cluster (the embedded store: one process owns the file) this instance is the only one:
// every lease is held, and the cluster is this instance.

// OwnershipConfig tunes the instances' coordination through a shared store.
type OwnershipConfig struct {
	// LeaseTTL is how long a bind's lease outlives a holder that stopped renewing it (died, or lost
	// the store): another instance takes the bind over within LeaseTTL*4/3 of the last renewal, then
	// dials and binds. The holder renews every LeaseTTL/3 and unbinds once it could not renew for
	// LeaseTTL*5/6. 0 means 10s.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// PublishEvery is how often this instance publishes its state for the others' admin views (and
	// their routing: which upstreams are bound somewhere). An entry not republished for three times
	// this is shown stale; it expires after 30 times this. 0 means 2s.
	PublishEvery time.Duration `yaml:"publish_every"`
}

func (c OwnershipConfig) withDefaults() OwnershipConfig {
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.PublishEvery == 0 {
		c.PublishEvery = 2 * time.Second
	}
	return c
}

// Validate refuses negative or too short durations, naming the field.
func (c OwnershipConfig) Validate() error {
	if c.LeaseTTL < 0 || c.LeaseTTL > 0 && c.LeaseTTL < 300*time.Millisecond {
		return fmt.Errorf("lease_ttl %v: want 0 (10s) or at least 300ms", c.LeaseTTL)
	}
	if c.PublishEvery < 0 || c.PublishEvery > 0 && c.PublishEvery < 100*time.Millisecond {
		return fmt.Errorf("publish_every %v: want 0 (2s) or at least 100ms", c.PublishEvery)
	}
	return nil
}

// InstanceState is one instance as the cluster sees it (Gateway.Instances): what it last published.
type InstanceState struct {
	Instance string    `json:"instance"`
	Token    string    `json:"token"` // the instance name and its run's random suffix: the lease owner
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"` // when it published this
	// Self marks the instance that answers; Stale one that has not published for three PublishEvery
	// (stopped, or cut off from the store).
	Self  bool `json:"self"`
	Stale bool `json:"stale"`

	Stats     InstanceStats      `json:"stats"`
	Sessions  []InstanceSession  `json:"sessions"`
	Upstreams []InstanceUpstream `json:"upstreams"`
}

// InstanceStats are an instance's own counters since it started.
type InstanceStats struct {
	Accepted    uint64  `json:"accepted"`    // messages accepted
	Rejected    uint64  `json:"rejected"`    // submissions refused
	Submitted   uint64  `json:"submitted"`   // parts upstreams accepted on its binds
	ReceiptsIn  uint64  `json:"receipts_in"` // receipts from upstreams on its binds
	MOIn        uint64  `json:"mo_in"`       // MO from upstreams on its binds
	Pending     int64   `json:"pending"`     // messages it accepted not yet final
	Sessions    int     `json:"sessions"`    // bound ESME sessions
	AcceptRate  float64 `json:"accept_rate"` // per second over the last minute
	SubmitRate  float64 `json:"submit_rate"`
	ReceiptRate float64 `json:"receipt_rate"`
}

// InstanceSession is one ESME session of an instance.
type InstanceSession struct {
	ID           uint64    `json:"id"` // unique within its instance only
	SystemID     string    `json:"system_id"`
	BindType     string    `json:"bind_type"`
	State        string    `json:"state"`
	RemoteAddr   string    `json:"remote_address"`
	BoundAt      time.Time `json:"bound_at"`
	SubmitSM     uint64    `json:"submit_sm"`  // received
	DeliverSM    uint64    `json:"deliver_sm"` // sent
	WindowUsed   int       `json:"window_used"`
	WindowSize   int       `json:"window_size"`
	LastActivity time.Time `json:"last_activity"`
}

// InstanceUpstream is one upstream's bind on an instance.
type InstanceUpstream struct {
	Name  string `json:"name"`
	State string `json:"state"` // the ClientState's name; "standby" while another instance holds the bind
	Bound bool   `json:"bound"`
	// BoundBinds is how many of the upstream's binds (its bind slots, binds: N) this instance has
	// bound: over all instances they add up to N at most.
	BoundBinds int       `json:"bound_binds"`
	Paused     bool      `json:"paused"`
	Since      time.Time `json:"since"`
	LastError  string    `json:"last_error,omitempty"`
	Binds      uint64    `json:"binds"`
	Sent       uint64    `json:"sent"`
	Accepted   uint64    `json:"accepted"`
	Rejected   uint64    `json:"rejected"`
	Requeued   uint64    `json:"requeued"`
}

// ownership is the gateway's side of the coordination: the bind leases and the board.
type ownership struct {
	cl       store.Cluster // nil: the only instance
	instance string
	token    string
	cfg      OwnershipConfig
	log      zerolog.Logger
	started  time.Time

	// boundElsewhere: upstream -> some other, fresh instance has it bound and not paused (the last
	// board read).
	boundElsewhere atomic.Pointer[map[string]bool]
	// others: another fresh instance is on the board (the last board read).
	others atomic.Bool
	// live: the instances fresh on the board at its last reading, this one included (0: not read yet).
	live atomic.Int32

	cancel context.CancelFunc
	done   sync.WaitGroup
}

func newOwnership(cl store.Cluster, instance string, cfg OwnershipConfig, log zerolog.Logger) *ownership {
	var b [6]byte
	_, _ = rand.Read(b[:])
	o := &ownership{
		cl: cl, instance: instance, token: instance + "#" + hex.EncodeToString(b[:]), cfg: cfg.withDefaults(),
		log: log.With().Str("component", "ownership").Logger(), started: time.Now(),
	}
	o.boundElsewhere.Store(&map[string]bool{})
	return o
}

// hasOthers reports whether another instance shares the store (as of the last board read).
func (o *ownership) hasOthers() bool { return o.others.Load() }

// upElsewhere reports whether another instance has upstream bound and not paused.
func (o *ownership) upElsewhere(upstream string) bool { return (*o.boundElsewhere.Load())[upstream] }

// renewEvery is how often a held lease is renewed, and a free one tried for.
func (o *ownership) renewEvery() time.Duration { return o.cfg.LeaseTTL / 3 }

// staleAfter and boardTTL: when a board entry is shown stale, and when it expires.
func (o *ownership) staleAfter() time.Duration { return 3 * o.cfg.PublishEvery }
func (o *ownership) boardTTL() time.Duration   { return 30 * o.cfg.PublishEvery }

// start publishes this instance's state (from state) every PublishEvery until stop.
func (o *ownership) start(ctx context.Context, state func() InstanceState) {
	if o.cl == nil {
		return
	}
	ctx, o.cancel = context.WithCancel(ctx)
	o.done.Go(func() {
		t := time.NewTicker(o.cfg.PublishEvery)
		defer t.Stop()
		for {
			o.publish(ctx, state())
			o.refresh(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// stop ends the publication and takes this instance off the board.
func (o *ownership) stop() {
	if o.cl == nil || o.cancel == nil {
		return
	}
	o.cancel()
	o.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := o.cl.RemoveInstance(ctx, o.instance); err != nil {
		o.log.Warn().Err(err).Msg("instance not taken off the board; it shows stale until it expires")
	}
}

func (o *ownership) publish(ctx context.Context, st InstanceState) {
	b, err := json.Marshal(st)
	if err != nil {
		o.log.Error().Err(err).Msg("instance state not encoded")
		return
	}
	pctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := o.cl.PublishInstance(pctx, o.instance, b, o.boardTTL()); err != nil && ctx.Err() == nil {
		o.log.Warn().Err(err).Msg("instance state not published")
	}
}

// refresh reads the board and notes which upstreams other instances have bound.
func (o *ownership) refresh(ctx context.Context) {
	all, err := o.read(ctx)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Warn().Err(err).Msg("instances not read")
		}
		return
	}
	m, others := map[string]bool{}, false
	live := int32(1)
	for _, in := range all {
		if in.Instance == o.instance && in.Token != o.token && in.Updated.After(o.started) { // not an earlier run of ours
			o.log.Warn().Str("token", in.Token).Msg("another run publishes under this instance name: give each instance its own api.instance (queue consumers and the cluster view go by it)")
		}
		if in.Stale || in.Instance == o.instance {
			continue
		}
		others = true
		live++
		for _, u := range in.Upstreams {
			if u.Bound && !u.Paused {
				m[u.Name] = true
			}
		}
	}
	o.boundElsewhere.Store(&m)
	o.others.Store(others)
	o.live.Store(live)
}

// liveInstances is the number of instances fresh on the board at its last reading, this one included;
// 1 without a cluster, 0 before the board was first read.
func (o *ownership) liveInstances() int {
	if o.cl == nil {
		return 1
	}
	return int(o.live.Load())
}

// read returns the board's instances, decoded, with Stale set.
func (o *ownership) read(ctx context.Context) ([]InstanceState, error) {
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	raw, err := o.cl.Instances(rctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]InstanceState, 0, len(raw))
	for name, b := range raw {
		var in InstanceState
		if err := json.Unmarshal(b, &in); err != nil {
			o.log.Warn().Err(err).Str("instance", name).Msg("instance state on the board not understood; skipped")
			continue
		}
		in.Instance, in.Self = name, false
		in.Stale = now.Sub(in.Updated) > o.staleAfter()
		out = append(out, in)
	}
	return out, nil
}

// instances is the cluster view: this instance's live state (Self) and every other instance's last
// publication.
func (o *ownership) instances(ctx context.Context, self InstanceState) ([]InstanceState, error) {
	self.Self = true
	out := []InstanceState{self}
	if o.cl != nil {
		all, err := o.read(ctx)
		if err != nil {
			return nil, err
		}
		for _, in := range all {
			if in.Instance != o.instance {
				out = append(out, in)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out, nil
}

// bindLease is the lease on one bind slot of one upstream. A nil *bindLease is always held.
type bindLease struct {
	o   *ownership
	key string

	mu     sync.Mutex
	held   bool
	stop   context.CancelFunc // ends the keeper
	keeper sync.WaitGroup
}

// bind returns the lease of slot i of upstream, nil when there is no cluster to share it with.
func (o *ownership) bind(upstream string, i int) *bindLease {
	if o == nil || o.cl == nil {
		return nil
	}
	return &bindLease{o: o, key: "bind:" + upstream + ":" + strconv.Itoa(i)}
}

// own waits until this instance holds the lease of bind slot sl and starts keeping it; false when the
// client is stopping. Meanwhile the slot is in ClientStandby, its LastError naming the holder.
func (c *Client) own(sl *bindSlot) bool {
	l := sl.lease
	if l == nil {
		return true
	}
	announced := ""
	for {
		actx, cancel := context.WithTimeout(c.ctx, storeTimeout)
		sent := time.Now()
		ok, err := l.o.cl.AcquireLease(actx, l.key, l.o.token, l.o.cfg.LeaseTTL)
		var holder string
		if err == nil && !ok {
			holder, err = l.o.cl.LeaseHolder(actx, l.key)
		}
		cancel()
		if c.ctx.Err() != nil {
			if ok {
				l.release()
			}
			return false
		}
		if ok {
			c.log.Info().Str("lease", l.key).Msg("bind lease taken: this instance binds")
			l.keep(c, sl, sent)
			return true
		}
		why := fmt.Errorf("bind held by instance %s", ownerName(holder))
		if err != nil {
			why = fmt.Errorf("bind lease: %w", err)
		}
		if why.Error() != announced {
			announced = why.Error()
			c.log.Info().Str("lease", l.key).Str("why", announced).Msg("upstream on standby")
		}
		c.setState(sl, ClientStandby, why)
		t := time.NewTimer(l.o.renewEvery())
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return false
		}
	}
}

// ownerName is the instance name of a lease owner token.
func ownerName(token string) string {
	for i := len(token) - 1; i >= 0; i-- {
		if token[i] == '#' {
			return token[:i]
		}
	}
	return token
}

// holdsLease reports whether this instance holds the lease of a bind slot that is not bound now
// (always, without a cluster): an outbind is bound back only then.
func (c *Client) holdsLease() bool {
	c.mu.Lock()
	slots := slices.Clone(c.slots)
	c.mu.Unlock()
	for _, sl := range slots {
		l := sl.lease
		if l == nil {
			return true
		}
		l.mu.Lock()
		held := l.held
		l.mu.Unlock()
		if held {
			return true
		}
	}
	return false
}

// setLeases gives each bind slot of c its lease among the instances sharing the store (o.bind).
func (c *Client) setLeases(o *ownership) {
	for _, sl := range c.slots {
		sl.lease = o.bind(c.cfg.Name, sl.i)
	}
}

// disown stops keeping the lease of slot sl and gives it up, so that another instance may bind it.
func (c *Client) disown(sl *bindSlot) {
	if sl.lease != nil {
		sl.lease.release()
	}
}

// keep renews the lease every renewEvery from sent (when it was taken) until release. When the lease
// is lost, or cannot be renewed before LeaseTTL*5/6 have passed since the last renewal was sent, the
// client's bind is unbound (closed at once when the unbind cannot finish before the lease would
// expire) and renewal stops for good: any session bound later is unbound too, until release.
func (l *bindLease) keep(c *Client, sl *bindSlot, sent time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	l.held, l.stop = true, cancel
	l.mu.Unlock()
	ttl := l.o.cfg.LeaseTTL
	l.keeper.Go(func() {
		valid := sent.Add(ttl * 5 / 6) // the lease surely holds until then (Redis started its clock later)
		t := time.NewTicker(l.o.renewEvery())
		defer t.Stop()
		for ctx.Err() == nil {
			wait := time.Until(valid)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-time.After(wait):
			}
			if ctx.Err() != nil {
				return
			}
			if time.Now().Before(valid.Add(-ttl / 12)) {
				rctx, rcancel := context.WithTimeout(ctx, time.Until(valid))
				s := time.Now()
				ok, err := l.o.cl.RenewLease(rctx, l.key, l.o.token, ttl)
				rcancel()
				switch {
				case err == nil && ok:
					valid = s.Add(ttl * 5 / 6)
					continue
				case err == nil:
					c.log.Warn().Str("lease", l.key).Msg("bind lease lost to another instance: unbinding")
				case time.Now().Before(valid):
					if ctx.Err() == nil {
						c.log.Warn().Err(err).Str("lease", l.key).Msg("bind lease not renewed; trying again")
					}
					continue
				default:
					c.log.Warn().Err(err).Str("lease", l.key).Msg("bind lease could not be renewed in time: unbinding")
				}
			} else {
				c.log.Warn().Str("lease", l.key).Msg("bind lease could not be renewed in time: unbinding")
			}
			l.lost(ctx, c, sl, valid.Add(ttl/6))
			return
		}
	})
}

// lost unbinds whatever session slot sl has until release (ctx), closing it by expires.
func (l *bindLease) lost(ctx context.Context, c *Client, sl *bindSlot, expires time.Time) {
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
	c.mu.Lock()
	sl.lastErr = errors.New("bind lease lost")
	c.mu.Unlock()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		c.mu.Lock()
		s := sl.sess
		c.mu.Unlock()
		if s != nil && s.State() != session.StateClosed {
			uctx, cancel := context.WithDeadline(ctx, expires)
			if err := s.Unbind(uctx); err != nil {
				s.Close()
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// release stops the keeper and gives the lease up when it is still held.
func (l *bindLease) release() {
	l.mu.Lock()
	stop, held := l.stop, l.held
	l.stop, l.held = nil, false
	l.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	l.keeper.Wait()
	if !held {
		// Lost, or not confirmed in time: the release below only deletes the key if it is still
		// ours (compare and delete), so another instance need not wait for it to expire.
		l.o.log.Debug().Str("lease", l.key).Msg("releasing a bind lease this instance may no longer hold")
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := l.o.cl.ReleaseLease(ctx, l.key, l.o.token); err != nil {
		l.o.log.Warn().Err(err).Str("lease", l.key).Msg("bind lease not released; another instance takes it when it expires")
	}
}

// instanceState is this instance's state as it publishes it.
func (g *Gateway) instanceState() InstanceState {
	now := time.Now()
	st := InstanceState{
		Instance: g.cfg.Instance, Started: g.own.started, Updated: now,
		Stats: InstanceStats{
			Accepted: g.stats.accepted.Load(), Rejected: g.stats.rejected.Load(), Submitted: g.stats.submitted.Load(),
			ReceiptsIn: g.stats.receiptsIn.Load(), MOIn: g.stats.moIn.Load(), Pending: g.stats.pending(),
			AcceptRate: g.stats.acceptRate.rate(now), SubmitRate: g.stats.submitRate.rate(now), ReceiptRate: g.stats.receiptRate.rate(now),
		},
	}
	if g.own.cl != nil {
		st.Token = g.own.token
	}
	for _, s := range g.srv.Sessions() {
		if s.State == session.StateBound {
			st.Stats.Sessions++
		}
		st.Sessions = append(st.Sessions, InstanceSession{
			ID: s.ID, SystemID: s.SystemID, BindType: s.BindType.String(), State: s.State.String(), RemoteAddr: s.RemoteAddr,
			BoundAt: s.BoundAt, SubmitSM: s.SubmitSMIn, DeliverSM: s.DeliverSMOut, WindowUsed: s.WindowUsed, WindowSize: s.WindowSize,
			LastActivity: s.LastActivity,
		})
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].ID < st.Sessions[j].ID })
	for _, u := range g.ups.all() {
		cs := u.client.Status()
		st.Upstreams = append(st.Upstreams, InstanceUpstream{
			Name: u.cfg.Name, State: cs.State.String(), Bound: cs.State == ClientBound, BoundBinds: boundSessions(u.client), Paused: u.queue.isPaused(),
			Since: cs.Since, LastError: cs.LastError, Binds: cs.Binds, Sent: cs.Sent, Accepted: cs.Accepted,
			Rejected: cs.Rejected, Requeued: cs.Requeued,
		})
	}
	return st
}

// Instances is the cluster view: every instance sharing the store (this one live, marked Self; the
// others as they last published, marked Stale when that is old), by name. With a store of one
// process it is this instance alone.
func (g *Gateway) Instances(ctx context.Context) ([]InstanceState, error) {
	return g.own.instances(ctx, g.instanceState())
}

// Instance is this instance's name.
func (g *Gateway) Instance() string { return g.cfg.Instance }

// boundSessions counts c's bound binds.
func boundSessions(c *Client) int {
	n := 0
	for _, s := range c.Sessions() {
		if s.State() == session.StateBound {
			n++
		}
	}
	return n
}
