package api

import (
	"context"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/store"
)

// Gateway is what the API needs from the running gateway (*gateway.Gateway implements it). The
// message path is shared with SMPP: Submit validates, splits, routes, stores and queues exactly as a
// submit_sm from an ESME is, and returns only once the message is durable.
type Gateway interface {
	// Submit accepts a message for s.Account. Errors: *gateway.ValidationError (bad field),
	// gateway.ErrNoRoute, gateway.ErrThrottled, store.ErrUnavailable.
	Submit(ctx context.Context, s gateway.Submission) (*store.Message, error)

	// Sessions lists the bound ESME sessions; Session finds one (false when unknown).
	Sessions() []session.Info
	Session(id uint64) (session.Info, bool)
	// UnbindSession unbinds a session gracefully, or closes it at once when force is set.
	UnbindSession(ctx context.Context, id uint64, force bool) error

	// Upstreams lists the upstream binds. AddUpstream starts a new one (and persists it in the
	// store); RemoveUpstream unbinds and removes one; ReconnectUpstream drops and redials its bind;
	// SetUpstreamPaused stops or resumes taking work from its queue. Unknown names give
	// gateway.ErrUnknownUpstream.
	Upstreams() []gateway.UpstreamInfo
	AddUpstream(ctx context.Context, cfg gateway.ClientConfig) error
	RemoveUpstream(ctx context.Context, name string) error
	// UpdateUpstream changes the binds and max_tps of an upstream AddUpstream added
	// (gateway.ErrConfiguredUpstream for one of the configuration file) and binds it again.
	UpdateUpstream(ctx context.Context, name string, ch gateway.UpstreamChange) error
	ReconnectUpstream(name string) error
	SetUpstreamPaused(name string, paused bool) error

	// TestRoute returns the upstreams a message from account to destination would go to, in order
	// of preference (gateway.ErrNoRoute when none). ReloadRoutes makes route and account edits in the
	// store take effect.
	TestRoute(ctx context.Context, account, destination string) ([]string, error)
	ReloadRoutes(ctx context.Context) error
	// Routes returns the stored routes in the order the gateway's route table evaluates them.
	Routes(ctx context.Context) ([]*store.Route, error)

	// MORoutes returns the stored MO routes in evaluation order; AddMORoute stores one and puts it
	// in use, DeleteMORoute removes one (store.ErrNotFound when unknown).
	MORoutes(ctx context.Context) ([]*store.MORoute, error)
	AddMORoute(ctx context.Context, r *store.MORoute) error
	DeleteMORoute(ctx context.Context, name string) error

	// NumberRulesList lists the number normalisation rules in force; SetNumberRules stores an
	// account's or an upstream's, DeleteNumberRules removes the stored ones (gateway.ErrBadScope for
	// a scope other than "account" or "upstream").
	NumberRulesList(ctx context.Context) ([]gateway.NumberRulesInfo, error)
	SetNumberRules(ctx context.Context, scope, name string, r gateway.NumberRules) error
	DeleteNumberRules(ctx context.Context, scope, name string) error

	// Outbind connects to an ESME, asks it to bind (SMPP outbind) and returns the session it bound,
	// once bound. Errors: the dial's, gateway.ErrNotBoundBack, ctx's.
	Outbind(ctx context.Context, cfg gateway.OutbindConfig) (session.Info, error)

	// Stats returns the gateway's counters.
	Stats(ctx context.Context) (gateway.Stats, error)

	// Subscribe delivers receipts and MO for account ("" for every account) until cancel is
	// called; a subscriber that does not keep up loses events rather than slowing the gateway
	// (receipts stay readable through the store).
	Subscribe(account string) (events <-chan gateway.Event, cancel func())
	// SubscribeStream is Subscribe, except that a subscriber that falls behind is ended (its
	// channel closed before cancel) rather than skipped over: the receipt stream's.
	SubscribeStream(account string) (events <-chan gateway.Event, cancel func())

	// Ready reports whether the store is reachable and the listeners are up.
	Ready(ctx context.Context) error
}
