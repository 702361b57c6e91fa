package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/store"
)

// accountOptsTTL is how long the message path keeps an account's options before it reads them
// again: an admin edit of message_ids, receipts, long_mo, api_receipts_over_smpp or (for the API)
// throughput takes effect within it, and a busy
// account costs the store one read per TTL rather than one per message, receipt or MO.
const accountOptsTTL = time.Second

// accountOpts are the per-account settings the message path needs after the bind: the id form at
// accept, the receipt mode and whether an API message's receipt goes to the binds when a receipt
// comes, the long-MO mode when an MO comes. Their zero
// values are the defaults.
type accountOpts struct {
	IDs      IDFormat
	Receipts ReceiptMode
	LongMO   LongMOMode
	// Throughput is the account's cap (Account.Throughput), for the API's submissions (throttle);
	// 0: none.
	Throughput float64
	// APIReceiptsOverSMPP is Account.APIReceiptsOverSMPP: receipts of API messages for the binds too.
	APIReceiptsOverSMPP bool
}

// optsOf reads a's options; fields that do not parse (Validate refuses them) read as defaults.
func optsOf(a Account) accountOpts {
	o := accountOpts{}
	o.IDs, _ = ParseIDFormat(string(a.MessageIDs))
	o.Receipts, _ = ParseReceiptMode(string(a.Receipts))
	o.LongMO, _ = ParseLongMOMode(string(a.LongMO))
	o.Throughput = a.Throughput
	o.APIReceiptsOverSMPP = a.APIReceiptsOverSMPP
	return o
}

// accountOptions reads accounts' options from the store by system_id, through a small cache (one
// entry per account the message path met; accounts are few). An account the store does not hold (an
// API account with no SMPP record, a deleted one) or cannot read gets the defaults: a receipt or MO
// must not wait for an options read.
type accountOptions struct {
	st  store.Accounts
	log zerolog.Logger
	ttl time.Duration

	mu sync.Mutex
	m  map[string]cachedOpts
}

type cachedOpts struct {
	opts accountOpts
	at   time.Time
}

func newAccountOptions(st store.Accounts, log zerolog.Logger) *accountOptions {
	return &accountOptions{st: st, log: log.With().Str("component", "accounts").Logger(), ttl: accountOptsTTL, m: make(map[string]cachedOpts)}
}

// cached returns systemID's options if they are cached and fresh at now, without asking the store.
func (a *accountOptions) cached(systemID string, now time.Time) (accountOpts, bool) {
	a.mu.Lock()
	c, ok := a.m[systemID]
	a.mu.Unlock()
	if !ok || now.Sub(c.at) >= a.ttl {
		return accountOpts{}, false
	}
	return c.opts, true
}

// get returns systemID's options.
func (a *accountOptions) get(ctx context.Context, systemID string) accountOpts {
	now := time.Now()
	a.mu.Lock()
	c, ok := a.m[systemID]
	a.mu.Unlock()
	if ok && now.Sub(c.at) < a.ttl {
		return c.opts
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var o accountOpts
	sa, err := a.st.GetAccount(ctx, systemID)
	switch {
	case err == nil:
		o = optsOf(accountFromStore(sa))
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		o = optsOf(Account{})
	case ok:
		a.log.Warn().Err(err).Str("account", systemID).Msg("account options unreadable; the last ones read are used")
		return c.opts
	default:
		a.log.Warn().Err(err).Str("account", systemID).Msg("account options unreadable; defaults used")
		return optsOf(Account{})
	}
	a.mu.Lock()
	a.m[systemID] = cachedOpts{opts: o, at: now}
	a.mu.Unlock()
	return o
}
