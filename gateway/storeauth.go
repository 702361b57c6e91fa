package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/config"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// storeAuthenticator decides binds from the store's accounts (store.Accounts), read at every bind, so
// that accounts the admin API creates or edits take effect at once: bcrypt password, bind types, IP
// allow-list, max binds and throughput (the Server enforces the last two).
type storeAuthenticator struct {
	st  store.Accounts
	log zerolog.Logger
	// dummy is compared against for unknown system_ids, so that they cost as much time as a wrong
	// password and do not reveal which ids exist.
	dummy []byte
}

// newStoreAuthenticator returns an Authenticator over st.
func newStoreAuthenticator(st store.Accounts, log zerolog.Logger) (*storeAuthenticator, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte("smppgw-no-such-account"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	return &storeAuthenticator{st: st, log: log.With().Str("component", "auth").Logger(), dummy: dummy}, nil
}

// Authenticate implements Authenticator. A store that cannot be read refuses with ESME_RSYSERR.
func (a *storeAuthenticator) Authenticate(ctx context.Context, req BindRequest) (Account, pdu.CommandStatus) {
	c, err := a.credentials(ctx, req.SystemID)
	return authenticateWith(c, err, req)
}

func (a *storeAuthenticator) credentials(ctx context.Context, systemID string) (credential, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	sa, err := a.st.GetAccount(ctx, systemID)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		return credential{hash: a.dummy}, nil
	case err != nil:
		a.log.Error().Err(err).Str("system_id", systemID).Msg("bind refused: accounts unreadable")
		return credential{}, fmt.Errorf("gateway: read account %s: %w", systemID, err)
	case len(sa.PasswordHash) == 0:
		// No password can match (store.Account.CheckPassword): costs what an unknown system_id does.
		return credential{hash: a.dummy}, nil
	}
	authorize := func(req BindRequest) (Account, pdu.CommandStatus) {
		if sa.Disabled || !sa.AllowsBind(storeBindType(req.BindType)) {
			return Account{}, pdu.ESME_RBINDFAIL
		}
		if len(sa.AllowIPs) > 0 {
			ip, ok := remoteIP(req.Remote)
			if !ok || !sa.AllowsIP(ip) {
				return Account{}, pdu.ESME_RBINDFAIL
			}
		}
		return accountFromStore(sa), pdu.ESME_ROK
	}
	admits := func(req BindRequest) bool { return addressAllowed(req, sa.AllowsIP, len(sa.AllowIPs) == 0) }
	return credential{hash: sa.PasswordHash, known: true, admits: admits, authorize: authorize}, nil
}

func storeBindType(b session.BindType) store.BindTypes {
	switch b {
	case session.BindTransmitter:
		return store.BindTransmitter
	case session.BindReceiver:
		return store.BindReceiver
	case session.BindTransceiver:
		return store.BindTransceiver
	}
	return 0
}

// accountFromStore is the gateway's view of a store account (the hash stays in the store).
func accountFromStore(sa *store.Account) Account {
	a := Account{SystemID: sa.SystemID, AllowedIPs: sa.AllowIPs, MaxBinds: sa.MaxBinds, Throughput: float64(sa.Throughput),
		MessageIDs: IDFormat(sa.MessageIDs), Receipts: ReceiptMode(sa.Receipts), LongMO: LongMOMode(sa.LongMO),
		APIReceiptsOverSMPP: sa.APIReceiptsOverSMPP}
	for _, b := range []session.BindType{session.BindTransmitter, session.BindReceiver, session.BindTransceiver} {
		if sa.BindTypes != 0 && sa.AllowsBind(storeBindType(b)) {
			a.BindTypes = append(a.BindTypes, b)
		}
	}
	return a
}

// accountToStore converts a configured account (bcrypt hash, bind type names, allow-list) into the
// store's record, as the gateway seeds it at start.
func accountToStore(a Account) (*store.Account, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if a.Throughput != float64(int(a.Throughput)) {
		return nil, fmt.Errorf("gateway: account %s: throughput %v must be a whole number of messages per second", a.SystemID, a.Throughput)
	}
	sa := &store.Account{
		SystemID: a.SystemID, PasswordHash: []byte(a.PasswordHash), MaxBinds: a.MaxBinds, Throughput: int(a.Throughput),
		AllowIPs:   append([]string(nil), a.AllowedIPs...),
		MessageIDs: string(a.MessageIDs), Receipts: string(a.Receipts), LongMO: string(a.LongMO),
		APIReceiptsOverSMPP: a.APIReceiptsOverSMPP,
	}
	for _, b := range a.BindTypes {
		sa.BindTypes |= storeBindType(b)
	}
	return sa, nil
}

// seedAccounts writes the configured accounts into the store, replacing what the store holds under
// those system_ids (the file is their source of truth); other accounts are left alone.
func seedAccounts(ctx context.Context, st store.Accounts, accounts []Account) error {
	for _, a := range accounts {
		sa, err := accountToStore(a)
		if err != nil {
			return err
		}
		if old, err := st.GetAccount(ctx, a.SystemID); err == nil {
			sa.CreatedAt = old.CreatedAt
		}
		if err := st.PutAccount(ctx, sa); err != nil {
			return fmt.Errorf("gateway: seed account %s: %w", a.SystemID, err)
		}
	}
	return nil
}

// clientToStore is how AddUpstream persists an upstream: the named fields of store.Upstream, and the
// rest of the client's settings in Options under their YAML paths ("session.window", "tls.ca_file").
func clientToStore(c ClientConfig) (*store.Upstream, error) {
	u := &store.Upstream{
		Name: c.Name, Address: c.Address, TLS: c.TLS != nil, SystemID: c.SystemID, Password: c.Password,
		SystemType: c.SystemType, BindType: storeBindType(c.BindType), Binds: max(c.Binds, 1), Window: c.Session.Window,
	}
	opts, err := config.Flatten(c)
	if err != nil {
		return nil, err
	}
	named := []string{"name", "address", "system_id", "password", "system_type", "bind_type", "session.window", "binds"}
	// A whole max_tps is the record's Throughput; a fractional one stays in Options.
	if c.MaxTPS == math.Trunc(c.MaxTPS) && c.MaxTPS <= math.MaxInt32 {
		u.Throughput = int(c.MaxTPS)
		named = append(named, "max_tps")
	}
	for _, k := range named {
		delete(opts, k)
	}
	if len(opts) > 0 {
		u.Options = opts
	}
	return u, nil
}

// clientFromStore is the inverse of clientToStore.
func clientFromStore(u *store.Upstream) (ClientConfig, error) {
	opts := map[string]string{}
	for k, v := range u.Options {
		opts[k] = v
	}
	var c ClientConfig
	if err := config.Unflatten(opts, &c); err != nil {
		return c, fmt.Errorf("gateway: upstream %s: options: %w", u.Name, err)
	}
	c.Name, c.Address, c.SystemID, c.Password, c.SystemType = u.Name, u.Address, u.SystemID, u.Password, u.SystemType
	switch {
	case u.BindType&store.BindTransceiver != 0 || u.BindType == 0:
		c.BindType = session.BindTransceiver
	case u.BindType&store.BindTransmitter != 0:
		c.BindType = session.BindTransmitter
	default:
		c.BindType = session.BindReceiver
	}
	if u.Window > 0 {
		c.Session.Window = u.Window
	}
	if u.Binds > 0 {
		c.Binds = u.Binds
	}
	if u.Throughput > 0 && c.MaxTPS == 0 {
		c.MaxTPS = float64(u.Throughput)
	}
	if u.TLS && c.TLS == nil {
		c.TLS = &ClientTLSConfig{}
	}
	if strings.TrimSpace(c.Name) == "" {
		return c, errors.New("gateway: stored upstream without a name")
	}
	return c, nil
}
