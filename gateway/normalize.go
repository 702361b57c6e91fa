package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// Number normalisation: an account's rules rewrite the addresses of what it submits before the
// message is routed (so routes see the rewritten destination), an upstream's rules rewrite them just
// before each request is sent to it. A rule touches only numeric addresses (digits, optionally after
// one leading '+'); an alphanumeric sender or an empty address is left exactly as it is. A number
// that is already as the rule wants it (no '+', no "00", no trunk '0', the TON/NPI it sets) comes
// out unchanged, so applying a rule twice is applying it once.

// NumberRules are the rules for one account or one upstream, one rule per address.
type NumberRules struct {
	// Destination rewrites destination_addr (each destination of a submit_multi).
	Destination AddressRule `yaml:"destination" json:"destination"`
	// Source rewrites source_addr.
	Source AddressRule `yaml:"source" json:"source"`
}

// AddressRule rewrites one numeric address, in this order:
//  1. StripPlus: a leading '+' is removed ("+447911123456" -> "447911123456") and the address marked
//     international (TON 1, NPI 1).
//  2. Strip00: a leading international prefix "00" is removed ("00447911123456" -> "447911123456")
//     and the address marked international (TON 1, NPI 1).
//  3. CountryCode (digits): a national number, one whose TON is national (2), or unknown (0) with a
//     single leading trunk '0' ("07911123456", not "00..."), loses that '0' and gets the country
//     code in front ("07911123456" -> "447911123456") and is marked international (TON 1, NPI 1). A
//     number with TON international, or without a leading '0' and TON unknown, is left alone.
//  4. TON and NPI, when set, are then the address's TON and NPI whatever the steps above did: a name
//     (unknown, international, national, network, subscriber, alphanumeric, abbreviated; unknown,
//     isdn, data, telex, land_mobile, national, private, ermes, internet, wap) or a number 0-255.
//
// The zero rule changes nothing.
type AddressRule struct {
	StripPlus   bool   `yaml:"strip_plus" json:"strip_plus,omitempty"`
	Strip00     bool   `yaml:"strip_00" json:"strip_00,omitempty"`
	CountryCode string `yaml:"country_code" json:"country_code,omitempty"`
	TON         string `yaml:"ton" json:"ton,omitempty"`
	NPI         string `yaml:"npi" json:"npi,omitempty"`
}

// TON and NPI values (SMPP 3.4 section 5.2.5, 5.2.6).
const (
	tonUnknown       = 0
	tonInternational = 1
	tonNational      = 2
	tonAlphanumeric  = 5
	npiISDN          = 1
)

var tonNames = map[string]uint8{"unknown": 0, "international": 1, "national": 2, "network": 3, "subscriber": 4,
	"alphanumeric": 5, "abbreviated": 6}

var npiNames = map[string]uint8{"unknown": 0, "isdn": 1, "data": 3, "telex": 4, "land_mobile": 6, "national": 8,
	"private": 9, "ermes": 10, "internet": 14, "wap": 18}

func parseNumbering(v string, names map[string]uint8) (uint8, bool, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return 0, false, nil
	}
	if n, ok := names[v]; ok {
		return n, true, nil
	}
	n, err := strconv.ParseUint(v, 0, 8)
	if err != nil {
		return 0, false, fmt.Errorf("%q is neither a known name nor a number 0-255", v)
	}
	return uint8(n), true, nil
}

// IsZero reports whether r changes nothing.
func (r AddressRule) IsZero() bool { return r == AddressRule{} }

// IsZero reports whether r changes nothing.
func (r NumberRules) IsZero() bool { return r.Destination.IsZero() && r.Source.IsZero() }

// Validate reports the first field that cannot work.
func (r AddressRule) Validate() error {
	for _, c := range r.CountryCode {
		if c < '0' || c > '9' {
			return fmt.Errorf("country_code: %q, digits only", r.CountryCode)
		}
	}
	if len(r.CountryCode) > 4 {
		return fmt.Errorf("country_code: %q, at most 4 digits", r.CountryCode)
	}
	if _, _, err := parseNumbering(r.TON, tonNames); err != nil {
		return fmt.Errorf("ton: %w", err)
	}
	if _, _, err := parseNumbering(r.NPI, npiNames); err != nil {
		return fmt.Errorf("npi: %w", err)
	}
	return nil
}

// Validate reports the first field that cannot work.
func (r NumberRules) Validate() error {
	if err := r.Destination.Validate(); err != nil {
		return fmt.Errorf("destination.%w", err)
	}
	if err := r.Source.Validate(); err != nil {
		return fmt.Errorf("source.%w", err)
	}
	return nil
}

// numeric reports whether addr is digits, after at most one leading '+'.
func numeric(addr string) bool {
	addr = strings.TrimPrefix(addr, "+")
	if addr == "" {
		return false
	}
	for i := 0; i < len(addr); i++ {
		if addr[i] < '0' || addr[i] > '9' {
			return false
		}
	}
	return true
}

// Apply rewrites one address. r must have passed Validate (an invalid TON or NPI is ignored).
func (r AddressRule) Apply(ton, npi uint8, addr string) (uint8, uint8, string) {
	if r.IsZero() || ton == tonAlphanumeric || !numeric(addr) {
		return ton, npi, addr
	}
	if r.StripPlus && strings.HasPrefix(addr, "+") {
		addr, ton, npi = addr[1:], tonInternational, npiISDN
	}
	if r.Strip00 && strings.HasPrefix(addr, "00") && len(addr) > 2 {
		addr, ton, npi = addr[2:], tonInternational, npiISDN
	}
	if r.CountryCode != "" && !strings.HasPrefix(addr, "+") {
		national := ton == tonNational || ton == tonUnknown && strings.HasPrefix(addr, "0") && !strings.HasPrefix(addr, "00")
		if national {
			addr, ton, npi = r.CountryCode+strings.TrimPrefix(addr, "0"), tonInternational, npiISDN
		}
	}
	if v, ok, err := parseNumbering(r.TON, tonNames); ok && err == nil {
		ton = v
	}
	if v, ok, err := parseNumbering(r.NPI, npiNames); ok && err == nil {
		npi = v
	}
	return ton, npi, addr
}

// Rewrite returns body with its addresses rewritten by r: a copy when anything changed, body itself
// otherwise (the caller's PDU is never modified). Requests without addresses pass as they are.
func (r *NumberRules) Rewrite(body pdu.Body) pdu.Body {
	if r == nil || r.IsZero() {
		return body
	}
	switch b := body.(type) {
	case *pdu.SubmitSM:
		c := *b
		if r.apply(&c.SourceAddrTON, &c.SourceAddrNPI, &c.SourceAddr, &c.DestAddrTON, &c.DestAddrNPI, &c.DestinationAddr) {
			return &c
		}
	case *pdu.DataSM:
		c := *b
		if r.apply(&c.SourceAddrTON, &c.SourceAddrNPI, &c.SourceAddr, &c.DestAddrTON, &c.DestAddrNPI, &c.DestinationAddr) {
			return &c
		}
	}
	return body
}

// apply rewrites a source and a destination in place and reports whether either changed.
func (r *NumberRules) apply(sTON, sNPI *uint8, src *string, dTON, dNPI *uint8, dst *string) bool {
	t, n, a := r.Source.Apply(*sTON, *sNPI, *src)
	changed := t != *sTON || n != *sNPI || a != *src
	*sTON, *sNPI, *src = t, n, a
	t, n, a = r.Destination.Apply(*dTON, *dNPI, *dst)
	changed = changed || t != *dTON || n != *dNPI || a != *dst
	*dTON, *dNPI, *dst = t, n, a
	return changed
}

// numberScope says whose rules a store record holds.
const (
	numbersAccount  = "account"
	numbersUpstream = "upstream"
)

// numberKey is the store key of the rules of scope's name.
func numberKey(scope, name string) string { return scope + ":" + name }

// numberTable holds the rules in force: the store's (set through the admin API), else the
// configuration's (RouterConfig.AccountNumbers; an upstream's own ClientConfig.Numbers). It is
// rebuilt from the store at each load; lookups take no lock.
type numberTable struct {
	st       store.Store
	accounts map[string]NumberRules // from the configuration
	log      zerolog.Logger
	rules    atomic.Pointer[map[string]*NumberRules] // numberKey -> rules
}

func newNumberTable(st store.Store, accounts map[string]NumberRules, log zerolog.Logger) *numberTable {
	t := &numberTable{st: st, accounts: accounts, log: log.With().Str("component", "numbers").Logger()}
	t.rules.Store(&map[string]*NumberRules{})
	return t
}

// load reads the store's rules and makes them, over the configuration's, the ones in force.
func (t *numberTable) load(ctx context.Context) error {
	m := map[string]*NumberRules{}
	for name, r := range t.accounts {
		if !r.IsZero() {
			m[numberKey(numbersAccount, name)] = &r
		}
	}
	stored, err := t.st.ListNumberRules(ctx)
	if err != nil {
		return fmt.Errorf("gateway: load number rules: %w", err)
	}
	for _, s := range stored {
		r := numberRulesFromStore(s)
		if err := r.Validate(); err != nil {
			t.log.Error().Err(err).Str("scope", s.Scope).Str("name", s.Name).Msg("stored number rules skipped")
			continue
		}
		m[numberKey(s.Scope, s.Name)] = &r
	}
	if reflect.DeepEqual(*t.rules.Load(), m) {
		return nil
	}
	t.rules.Store(&m)
	t.log.Info().Int("rule_sets", len(m)).Msg("number rules loaded")
	return nil
}

// get returns the rules of scope's name, nil when none (or t is nil).
func (t *numberTable) get(scope, name string) *NumberRules {
	if t == nil {
		return nil
	}
	m := *t.rules.Load()
	if len(m) == 0 {
		return nil // no rules (the usual case): no key to build, twice per message
	}
	return m[numberKey(scope, name)]
}

// accountSubmit rewrites a submit_sm of account (before routing); b itself is never changed.
func (t *numberTable) accountSubmit(account string, b *pdu.SubmitSM) *pdu.SubmitSM {
	if out, ok := t.get(numbersAccount, account).Rewrite(b).(*pdu.SubmitSM); ok {
		return out
	}
	return b
}

// accountAddrs rewrites the addresses of an API submission of account (before routing).
func (t *numberTable) accountAddrs(account string, src, dst store.Address) (store.Address, store.Address) {
	r := t.get(numbersAccount, account)
	if r == nil {
		return src, dst
	}
	src.TON, src.NPI, src.Addr = r.Source.Apply(src.TON, src.NPI, src.Addr)
	dst.TON, dst.NPI, dst.Addr = r.Destination.Apply(dst.TON, dst.NPI, dst.Addr)
	return src, dst
}

// upstreamRewrite is the hook the client of upstream name calls before each send: the store's rules
// for it, else own (its ClientConfig.Numbers).
func (t *numberTable) upstreamRewrite(name string, own NumberRules) func(pdu.Body) pdu.Body {
	return func(b pdu.Body) pdu.Body {
		if r := t.get(numbersUpstream, name); r != nil {
			return r.Rewrite(b)
		}
		return own.Rewrite(b)
	}
}

func addressRuleToStore(r AddressRule) store.AddressRule {
	return store.AddressRule{StripPlus: r.StripPlus, Strip00: r.Strip00, CountryCode: r.CountryCode, TON: r.TON, NPI: r.NPI}
}

func addressRuleFromStore(r store.AddressRule) AddressRule {
	return AddressRule{StripPlus: r.StripPlus, Strip00: r.Strip00, CountryCode: r.CountryCode, TON: r.TON, NPI: r.NPI}
}

func numberRulesFromStore(s *store.NumberRules) NumberRules {
	return NumberRules{Destination: addressRuleFromStore(s.Destination), Source: addressRuleFromStore(s.Source)}
}

// NumberRulesInfo is the operator's view of one account's or upstream's rules.
type NumberRulesInfo struct {
	Scope      string // "account" or "upstream"
	Name       string
	Rules      NumberRules
	FromConfig bool // the configuration's rules, not overridden in the store
}

// ErrBadScope: number rules are for an "account" or an "upstream".
var ErrBadScope = errors.New(`gateway: number rules scope must be "account" or "upstream"`)

// NumberRulesList lists the rules in force, stored and configured, by scope and name.
func (g *Gateway) NumberRulesList(ctx context.Context) ([]NumberRulesInfo, error) {
	stored, err := g.st.ListNumberRules(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []NumberRulesInfo
	for _, s := range stored {
		seen[numberKey(s.Scope, s.Name)] = true
		out = append(out, NumberRulesInfo{Scope: s.Scope, Name: s.Name, Rules: numberRulesFromStore(s)})
	}
	add := func(scope string, m map[string]NumberRules) {
		for name, r := range m {
			if !r.IsZero() && !seen[numberKey(scope, name)] {
				out = append(out, NumberRulesInfo{Scope: scope, Name: name, Rules: r, FromConfig: true})
			}
		}
	}
	add(numbersAccount, g.numbers.accounts)
	ups := map[string]NumberRules{}
	for _, u := range g.ups.all() {
		ups[u.cfg.Name] = u.cfg.Numbers
	}
	add(numbersUpstream, ups)
	sortNumberRules(out)
	return out, nil
}

func sortNumberRules(out []NumberRulesInfo) {
	slices.SortFunc(out, func(a, b NumberRulesInfo) int {
		return strings.Compare(numberKey(a.Scope, a.Name), numberKey(b.Scope, b.Name))
	})
}

// SetNumberRules stores the rules of an account or an upstream (replacing the configuration's) and
// puts them in force.
func (g *Gateway) SetNumberRules(ctx context.Context, scope, name string, r NumberRules) error {
	if scope != numbersAccount && scope != numbersUpstream {
		return ErrBadScope
	}
	if name == "" {
		return fmt.Errorf("%w: number rules need a name", store.ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	s := &store.NumberRules{Scope: scope, Name: name, Destination: addressRuleToStore(r.Destination), Source: addressRuleToStore(r.Source)}
	if old, err := g.st.GetNumberRules(ctx, numberKey(scope, name)); err == nil {
		s.CreatedAt = old.CreatedAt
	}
	if err := g.st.PutNumberRules(ctx, s); err != nil {
		return err
	}
	return g.numbers.load(ctx)
}

// DeleteNumberRules removes the stored rules of an account or an upstream; the configuration's, if
// any, are in force again.
func (g *Gateway) DeleteNumberRules(ctx context.Context, scope, name string) error {
	if scope != numbersAccount && scope != numbersUpstream {
		return ErrBadScope
	}
	if err := g.st.DeleteNumberRules(ctx, numberKey(scope, name)); err != nil {
		return err
	}
	return g.numbers.load(ctx)
}
