package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// adminService implements smppgwv1.AdminServiceServer; the interceptor has already checked the
// admin scope or the operator's Basic credentials.
type adminService struct {
	smppgwv1.UnimplementedAdminServiceServer
	s *Server
}

const (
	defaultAdminPage = 100
	defaultOutbind   = 30 * time.Second
	maxOutbind       = 5 * time.Minute
)

// Sessions.

func (a *adminService) sessionToProto(si session.Info) *smppgwv1.Session {
	return &smppgwv1.Session{
		SessionId:        strconv.FormatUint(si.ID, 10),
		SystemId:         si.SystemID,
		BindType:         bindTypeToProto(si.BindType),
		RemoteAddress:    si.RemoteAddr,
		LocalAddress:     si.LocalAddr,
		Tls:              si.TLS,
		Instance:         a.s.cfg.Instance,
		InterfaceVersion: uint32(si.InterfaceVersion),
		BindTime:         ts(si.BoundAt),
		LastActivityTime: ts(si.LastActivity),
		WindowSize:       uint32(max(si.WindowSize, 0)),
		WindowInUse:      uint32(max(si.WindowUsed, 0)),
		InboundPending:   uint32(max(si.InboundPending, 0)),
		Counters:         sessionCounters(si),
	}
}

// sessionCounters counts submit_sm and deliver_sm the way they flow for the session's role: a
// client's session (we are the SMSC) receives submit_sm and is sent deliver_sm, an upstream bind
// the other way round.
func sessionCounters(si session.Info) *smppgwv1.SessionCounters {
	c := &smppgwv1.SessionCounters{
		SubmitSm: si.SubmitSMIn, SubmitSmErrors: si.SubmitSMErrors,
		DeliverSm: si.DeliverSMOut, DeliverSmErrors: si.DeliverSMErrors,
		Throttled: si.Throttled, ResponseTimeouts: si.Timeouts,
		EnquireLinks: si.EnquireLinks, UnparsablePdus: si.Unparsable,
	}
	if si.Role == session.RoleESME {
		c.SubmitSm, c.DeliverSm = si.SubmitSMOut, si.DeliverSMIn
	}
	return c
}

func parseSessionID(id string) (uint64, error) {
	if id == "" {
		return 0, invalid("session_id", "required")
	}
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		if _, inst, ok := strings.Cut(id, "@"); ok { // another instance's (cluster.go)
			return 0, invalid("session_id", "a session of instance %s: ask that instance", inst)
		}
		return 0, invalid("session_id", "not a session id")
	}
	return n, nil
}

func (a *adminService) ListSessions(ctx context.Context, req *smppgwv1.ListSessionsRequest) (*smppgwv1.ListSessionsResponse, error) {
	all := a.s.gw.Sessions()
	slices.SortFunc(all, func(x, y session.Info) int { return cmpU64(x.ID, y.ID) })
	var out []*smppgwv1.Session
	for _, si := range all {
		if req.GetSystemId() == "" || si.SystemID == req.GetSystemId() {
			out = append(out, a.sessionToProto(si))
		}
	}
	out = append(out, a.otherSessions(ctx, req.GetSystemId())...) // cluster.go
	page, next, err := paginate(out, req.GetPageSize(), req.GetPageToken(), defaultAdminPage)
	if err != nil {
		return nil, err
	}
	return &smppgwv1.ListSessionsResponse{Sessions: page, NextPageToken: next}, nil
}

func cmpU64(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func (a *adminService) GetSession(_ context.Context, req *smppgwv1.GetSessionRequest) (*smppgwv1.GetSessionResponse, error) {
	id, err := parseSessionID(req.GetSessionId())
	if err != nil {
		return nil, err
	}
	si, ok := a.s.gw.Session(id)
	if !ok {
		return nil, gateway.ErrUnknownSession
	}
	return &smppgwv1.GetSessionResponse{Session: a.sessionToProto(si)}, nil
}

func (a *adminService) UnbindSession(ctx context.Context, req *smppgwv1.UnbindSessionRequest) (*smppgwv1.UnbindSessionResponse, error) {
	id, err := parseSessionID(req.GetSessionId())
	if err != nil {
		return nil, err
	}
	if err := a.s.gw.UnbindSession(ctx, id, req.GetForce()); err != nil {
		return nil, err
	}
	return &smppgwv1.UnbindSessionResponse{}, nil
}

// Upstreams.

func upstreamToProto(u gateway.UpstreamInfo) *smppgwv1.Upstream {
	c := u.Config
	host, port, _ := net.SplitHostPort(c.Address)
	p, _ := strconv.ParseUint(port, 10, 16)
	window := c.Session.Window
	if window == 0 {
		window = 10
	}
	out := &smppgwv1.Upstream{
		Name:                c.Name,
		Host:                host,
		Port:                uint32(p),
		Tls:                 c.TLS != nil,
		SystemId:            c.SystemID,
		SystemType:          c.SystemType,
		BindType:            bindTypeToProto(c.BindType),
		WindowSize:          uint32(window),
		EnquireLinkInterval: dur(c.Session.EnquireLink),
		ResponseTimeout:     dur(c.Session.ResponseTimeout),
		Paused:              u.Paused,
		Binds:               uint32(max(c.Binds, 1)),
		MaxSubmitsPerSecond: uint32(c.MaxTPS),
		QueueDepth:          uint64(max(u.QueueDepth, 0)),
		LastError:           u.Status.LastError,
		StateChangeTime:     ts(u.Status.Since),
	}
	if c.TLS != nil {
		out.TlsServerName = c.TLS.ServerName
	}
	if out.BindType == smppgwv1.BindType_BIND_TYPE_UNSPECIFIED {
		out.BindType = smppgwv1.BindType_BIND_TYPE_TRANSCEIVER
	}
	switch {
	case u.Paused:
		out.State = smppgwv1.UpstreamState_UPSTREAM_STATE_PAUSED
	case u.Status.BindsUp > 0 && u.Status.BindsUp < len(u.Status.Slots):
		out.State = smppgwv1.UpstreamState_UPSTREAM_STATE_DEGRADED
	case u.Status.State == gateway.ClientBound:
		out.State = smppgwv1.UpstreamState_UPSTREAM_STATE_BOUND
	case u.Status.State == gateway.ClientBackingOff || u.Status.State == gateway.ClientStopped:
		out.State = smppgwv1.UpstreamState_UPSTREAM_STATE_BACKOFF
	case u.Status.State == gateway.ClientStandby:
		out.State = smppgwv1.UpstreamState_UPSTREAM_STATE_STANDBY
	default:
		out.State = smppgwv1.UpstreamState_UPSTREAM_STATE_CONNECTING
	}
	out.BoundBinds = uint32(u.Status.BindsUp)
	return out
}

func (a *adminService) upstream(name string) (*smppgwv1.Upstream, error) {
	if name == "" {
		return nil, invalid("name", "required")
	}
	for _, u := range a.s.gw.Upstreams() {
		if u.Config.Name == name {
			return upstreamToProto(u), nil
		}
	}
	return nil, gateway.ErrUnknownUpstream
}

func (a *adminService) ListUpstreams(context.Context, *smppgwv1.ListUpstreamsRequest) (*smppgwv1.ListUpstreamsResponse, error) {
	out := &smppgwv1.ListUpstreamsResponse{}
	for _, u := range a.s.gw.Upstreams() {
		out.Upstreams = append(out.Upstreams, upstreamToProto(u))
	}
	slices.SortFunc(out.Upstreams, func(x, y *smppgwv1.Upstream) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

func (a *adminService) GetUpstream(_ context.Context, req *smppgwv1.GetUpstreamRequest) (*smppgwv1.GetUpstreamResponse, error) {
	u, err := a.upstream(req.GetName())
	if err != nil {
		return nil, err
	}
	return &smppgwv1.GetUpstreamResponse{Upstream: u}, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

func positiveDuration(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil || d.AsDuration() <= 0 {
		return 0, invalid(field, "must be a positive duration")
	}
	return d.AsDuration(), nil
}

// maxUpstreamTPS bounds an upstream's max_submits_per_second.
const maxUpstreamTPS = 1000000

func (a *adminService) AddUpstream(ctx context.Context, req *smppgwv1.AddUpstreamRequest) (*smppgwv1.AddUpstreamResponse, error) {
	u := req.GetUpstream()
	switch {
	case u == nil:
		return nil, invalid("upstream", "required")
	case !validName(u.GetName()):
		return nil, invalid("upstream.name", "letters, digits, '-' and '_', 1 to 64")
	case u.GetHost() == "":
		return nil, invalid("upstream.host", "required")
	case u.GetPort() == 0 || u.GetPort() > 65535:
		return nil, invalid("upstream.port", "must be 1 to 65535")
	case u.GetSystemId() == "":
		return nil, invalid("upstream.system_id", "required")
	case len(u.GetSystemId()) > 15:
		return nil, invalid("upstream.system_id", "at most 15 characters (SMPP 3.4)")
	case len(u.GetPassword()) > 8:
		return nil, invalid("upstream.password", "at most 8 characters (SMPP 3.4)")
	case len(u.GetSystemType()) > 12:
		return nil, invalid("upstream.system_type", "at most 12 characters (SMPP 3.4)")
	case u.GetWindowSize() > 10000:
		return nil, invalid("upstream.window_size", "at most 10000")
	case u.GetBinds() > gateway.MaxBinds:
		return nil, invalid("upstream.binds", "at most %d", gateway.MaxBinds)
	case u.GetMaxSubmitsPerSecond() > maxUpstreamTPS:
		return nil, invalid("upstream.max_submits_per_second", "at most %d", maxUpstreamTPS)
	}
	for _, x := range a.s.gw.Upstreams() {
		if x.Config.Name == u.GetName() {
			return nil, status.Error(codes.AlreadyExists, "upstream.name: an upstream of that name exists")
		}
	}
	cfg := gateway.ClientConfig{
		Name:       u.GetName(),
		Address:    net.JoinHostPort(u.GetHost(), strconv.FormatUint(uint64(u.GetPort()), 10)),
		SystemID:   u.GetSystemId(),
		Password:   u.GetPassword(),
		SystemType: u.GetSystemType(),
	}
	if u.GetTls() {
		cfg.TLS = &gateway.ClientTLSConfig{ServerName: u.GetTlsServerName()}
	}
	switch u.GetBindType() {
	case smppgwv1.BindType_BIND_TYPE_UNSPECIFIED, smppgwv1.BindType_BIND_TYPE_TRANSCEIVER:
		cfg.BindType = session.BindTransceiver
	case smppgwv1.BindType_BIND_TYPE_TRANSMITTER:
		cfg.BindType = session.BindTransmitter
	case smppgwv1.BindType_BIND_TYPE_RECEIVER:
		cfg.BindType = session.BindReceiver
	default:
		return nil, invalid("upstream.bind_type", "unknown value %d", int32(u.GetBindType()))
	}
	cfg.Session.Window = int(u.GetWindowSize())
	cfg.Binds = int(u.GetBinds())
	cfg.MaxTPS = float64(u.GetMaxSubmitsPerSecond())
	var err error
	if cfg.Session.EnquireLink, err = positiveDuration("upstream.enquire_link_interval", u.GetEnquireLinkInterval()); err != nil {
		return nil, err
	}
	if cfg.Session.ResponseTimeout, err = positiveDuration("upstream.response_timeout", u.GetResponseTimeout()); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		// Every field a caller sets is checked above, in the API's terms; this is a bug here.
		return nil, fmt.Errorf("api: AddUpstream let through an invalid client config: %w", err)
	}
	if err := a.s.gw.AddUpstream(ctx, cfg); err != nil {
		return nil, err
	}
	if u.GetPaused() {
		if err := a.s.gw.SetUpstreamPaused(cfg.Name, true); err != nil {
			return nil, err
		}
	}
	out, err := a.upstream(cfg.Name)
	if err != nil {
		return nil, err
	}
	return &smppgwv1.AddUpstreamResponse{Upstream: out}, nil
}

func (a *adminService) UpdateUpstream(ctx context.Context, req *smppgwv1.UpdateUpstreamRequest) (*smppgwv1.UpdateUpstreamResponse, error) {
	in := req.GetUpstream()
	if in.GetName() == "" {
		return nil, invalid("upstream.name", "required")
	}
	present := []string{"binds", "max_submits_per_second"}
	var ch gateway.UpstreamChange
	for _, p := range maskPaths(req.GetUpdateMask(), present) {
		switch p {
		case "name":
		case "binds":
			if in.GetBinds() > gateway.MaxBinds {
				return nil, invalid("upstream.binds", "at most %d", gateway.MaxBinds)
			}
			n := max(int(in.GetBinds()), 1)
			ch.Binds = &n
		case "max_submits_per_second":
			if in.GetMaxSubmitsPerSecond() > maxUpstreamTPS {
				return nil, invalid("upstream.max_submits_per_second", "at most %d", maxUpstreamTPS)
			}
			tps := float64(in.GetMaxSubmitsPerSecond())
			ch.MaxTPS = &tps
		default:
			return nil, invalid("update_mask", "%q cannot be changed (binds and max_submits_per_second can); remove the upstream and add it again", p)
		}
	}
	err := a.s.gw.UpdateUpstream(ctx, in.GetName(), ch)
	if errors.Is(err, gateway.ErrConfiguredUpstream) {
		return nil, status.Error(codes.FailedPrecondition, "upstream: from the configuration file; change it there")
	}
	if err != nil {
		return nil, err
	}
	out, err := a.upstream(in.GetName())
	if err != nil {
		return nil, err
	}
	return &smppgwv1.UpdateUpstreamResponse{Upstream: out}, nil
}

func (a *adminService) RemoveUpstream(ctx context.Context, req *smppgwv1.RemoveUpstreamRequest) (*smppgwv1.RemoveUpstreamResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("name", "required")
	}
	if err := a.s.gw.RemoveUpstream(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &smppgwv1.RemoveUpstreamResponse{}, nil
}

func (a *adminService) ReconnectUpstream(_ context.Context, req *smppgwv1.ReconnectUpstreamRequest) (*smppgwv1.ReconnectUpstreamResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("name", "required")
	}
	if err := a.s.gw.ReconnectUpstream(req.GetName()); err != nil {
		return nil, err
	}
	u, err := a.upstream(req.GetName())
	if err != nil {
		return nil, err
	}
	return &smppgwv1.ReconnectUpstreamResponse{Upstream: u}, nil
}

func (a *adminService) setPaused(name string, paused bool) (*smppgwv1.Upstream, error) {
	if name == "" {
		return nil, invalid("name", "required")
	}
	if err := a.s.gw.SetUpstreamPaused(name, paused); err != nil {
		return nil, err
	}
	return a.upstream(name)
}

func (a *adminService) PauseUpstream(_ context.Context, req *smppgwv1.PauseUpstreamRequest) (*smppgwv1.PauseUpstreamResponse, error) {
	u, err := a.setPaused(req.GetName(), true)
	if err != nil {
		return nil, err
	}
	return &smppgwv1.PauseUpstreamResponse{Upstream: u}, nil
}

func (a *adminService) ResumeUpstream(_ context.Context, req *smppgwv1.ResumeUpstreamRequest) (*smppgwv1.ResumeUpstreamResponse, error) {
	u, err := a.setPaused(req.GetName(), false)
	if err != nil {
		return nil, err
	}
	return &smppgwv1.ResumeUpstreamResponse{Upstream: u}, nil
}

// Accounts.

func accountToProto(a *store.Account) *smppgwv1.Account {
	return &smppgwv1.Account{
		SystemId:             a.SystemID,
		Description:          a.Description,
		Disabled:             a.Disabled,
		MaxBinds:             uint32(max(a.MaxBinds, 0)),
		MaxMessagesPerSecond: uint32(max(a.Throughput, 0)),
		AllowedNetworks:      slices.Clone(a.AllowIPs),
		CreateTime:           ts(a.CreatedAt),
		UpdateTime:           ts(a.UpdatedAt),
		MessageIdFormat:      idFormats[a.MessageIDs],
		ReceiptMode:          receiptModes[a.Receipts],
		LongMoDelivery:       longMOModes[a.LongMO],
		ApiReceiptsOverSmpp:  a.APIReceiptsOverSMPP,
	}
}

// The account options as the store keeps them (gateway.Account's names; "" the default) and as the
// API names them. A stored value the API does not know reads as unspecified, the default.
var (
	idFormats = map[string]smppgwv1.MessageIdFormat{
		"": smppgwv1.MessageIdFormat_MESSAGE_ID_FORMAT_DECIMAL, string(gateway.IDDecimal): smppgwv1.MessageIdFormat_MESSAGE_ID_FORMAT_DECIMAL,
		string(gateway.IDHex): smppgwv1.MessageIdFormat_MESSAGE_ID_FORMAT_HEX, string(gateway.IDUUID): smppgwv1.MessageIdFormat_MESSAGE_ID_FORMAT_UUID,
	}
	receiptModes = map[string]smppgwv1.ReceiptMode{
		"": smppgwv1.ReceiptMode_RECEIPT_MODE_MESSAGE, string(gateway.ReceiptPerMessage): smppgwv1.ReceiptMode_RECEIPT_MODE_MESSAGE,
		string(gateway.ReceiptPerPart): smppgwv1.ReceiptMode_RECEIPT_MODE_PART,
	}
	longMOModes = map[string]smppgwv1.LongMoDelivery{
		"": smppgwv1.LongMoDelivery_LONG_MO_DELIVERY_PARTS, string(gateway.LongMOParts): smppgwv1.LongMoDelivery_LONG_MO_DELIVERY_PARTS,
		string(gateway.LongMOPayload): smppgwv1.LongMoDelivery_LONG_MO_DELIVERY_PAYLOAD,
	}
)

// optionName is the stored name of an API enum value v of opts; "" (the default) for unspecified.
func optionName[E comparable](opts map[string]E, v E, field string) (string, error) {
	var zero E
	if v == zero {
		return "", nil
	}
	for name, e := range opts {
		if e == v && name != "" {
			return name, nil
		}
	}
	return "", invalid(field, "unknown value %v", v)
}

// applyAccount copies the fields of in named by paths onto a.
func applyAccount(a *store.Account, in *smppgwv1.Account, paths []string) error {
	for _, p := range paths {
		switch p {
		case "system_id":
			if in.GetSystemId() != a.SystemID {
				return invalid("account.system_id", "cannot be changed")
			}
		case "password":
			if err := checkPassword(in.GetPassword()); err != nil {
				return err
			}
			if err := a.SetPassword(in.GetPassword()); err != nil {
				return err
			}
		case "disabled":
			a.Disabled = in.GetDisabled()
		case "max_binds":
			a.MaxBinds = int(in.GetMaxBinds())
		case "max_messages_per_second":
			a.Throughput = int(in.GetMaxMessagesPerSecond())
		case "allowed_networks":
			for _, n := range in.GetAllowedNetworks() {
				if _, err := netip.ParsePrefix(n); err != nil {
					if _, err := netip.ParseAddr(n); err != nil {
						return invalid("account.allowed_networks", "%q is neither a CIDR prefix nor an address", n)
					}
				}
			}
			a.AllowIPs = slices.Clone(in.GetAllowedNetworks())
		case "description":
			if err := checkDescription("account.description", in.GetDescription()); err != nil {
				return err
			}
			a.Description = in.GetDescription()
		case "message_id_format":
			v, err := optionName(idFormats, in.GetMessageIdFormat(), "account.message_id_format")
			if err != nil {
				return err
			}
			a.MessageIDs = v
		case "receipt_mode":
			v, err := optionName(receiptModes, in.GetReceiptMode(), "account.receipt_mode")
			if err != nil {
				return err
			}
			a.Receipts = v
		case "long_mo_delivery":
			v, err := optionName(longMOModes, in.GetLongMoDelivery(), "account.long_mo_delivery")
			if err != nil {
				return err
			}
			a.LongMO = v
		case "api_receipts_over_smpp":
			a.APIReceiptsOverSMPP = in.GetApiReceiptsOverSmpp()
		case "create_time", "update_time":
		default:
			return invalid("update_mask", "unknown field %q", p)
		}
	}
	return nil
}

func checkPassword(p string) error {
	switch {
	case p == "":
		return invalid("account.password", "required")
	case len(p) > 8:
		return invalid("account.password", "at most 8 characters (SMPP 3.4)")
	}
	return nil
}

// presentAccount lists the fields of in that are set, for a create or an update without a mask.
func presentAccount(in *smppgwv1.Account) []string {
	var p []string
	add := func(set bool, name string) {
		if set {
			p = append(p, name)
		}
	}
	add(in.GetPassword() != "", "password")
	add(in.GetDisabled(), "disabled")
	add(in.GetMaxBinds() != 0, "max_binds")
	add(in.GetMaxMessagesPerSecond() != 0, "max_messages_per_second")
	add(len(in.GetAllowedNetworks()) > 0, "allowed_networks")
	add(in.GetDescription() != "", "description")
	add(in.GetMessageIdFormat() != 0, "message_id_format")
	add(in.GetReceiptMode() != 0, "receipt_mode")
	add(in.GetLongMoDelivery() != 0, "long_mo_delivery")
	add(in.GetApiReceiptsOverSmpp(), "api_receipts_over_smpp")
	return p
}

func (a *adminService) ListAccounts(ctx context.Context, req *smppgwv1.ListAccountsRequest) (*smppgwv1.ListAccountsResponse, error) {
	all, err := a.s.st.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(x, y *store.Account) int { return strings.Compare(x.SystemID, y.SystemID) })
	out := make([]*smppgwv1.Account, 0, len(all))
	for _, acc := range all {
		out = append(out, accountToProto(acc))
	}
	page, next, err := paginate(out, req.GetPageSize(), req.GetPageToken(), defaultAdminPage)
	if err != nil {
		return nil, err
	}
	return &smppgwv1.ListAccountsResponse{Accounts: page, NextPageToken: next}, nil
}

func (a *adminService) GetAccount(ctx context.Context, req *smppgwv1.GetAccountRequest) (*smppgwv1.GetAccountResponse, error) {
	if req.GetSystemId() == "" {
		return nil, invalid("system_id", "required")
	}
	acc, err := a.s.st.GetAccount(ctx, req.GetSystemId())
	if err != nil {
		return nil, err
	}
	return &smppgwv1.GetAccountResponse{Account: accountToProto(acc)}, nil
}

func (a *adminService) CreateAccount(ctx context.Context, req *smppgwv1.CreateAccountRequest) (*smppgwv1.CreateAccountResponse, error) {
	in := req.GetAccount()
	if in == nil {
		return nil, invalid("account", "required")
	}
	if n := len(in.GetSystemId()); n == 0 || n > 15 {
		return nil, invalid("account.system_id", "1 to 15 characters")
	}
	if strings.ContainsFunc(in.GetSystemId(), unicode.IsControl) {
		return nil, invalid("account.system_id", "control characters are not allowed")
	}
	if err := checkPassword(in.GetPassword()); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	acc := &store.Account{SystemID: in.GetSystemId(), CreatedAt: now, UpdatedAt: now}
	if err := applyAccount(acc, in, presentAccount(in)); err != nil {
		return nil, err
	}
	if err := a.s.st.CreateAccount(ctx, acc); err != nil {
		return nil, err
	}
	if err := a.s.gw.ReloadRoutes(ctx); err != nil {
		return nil, err
	}
	return &smppgwv1.CreateAccountResponse{Account: accountToProto(acc)}, nil
}

func maskPaths(m *fieldmaskpb.FieldMask, present []string) []string {
	if len(m.GetPaths()) == 0 {
		return present
	}
	return m.GetPaths()
}

func (a *adminService) UpdateAccount(ctx context.Context, req *smppgwv1.UpdateAccountRequest) (*smppgwv1.UpdateAccountResponse, error) {
	in := req.GetAccount()
	if in.GetSystemId() == "" {
		return nil, invalid("account.system_id", "required")
	}
	acc, err := a.s.st.GetAccount(ctx, in.GetSystemId())
	if err != nil {
		return nil, err
	}
	if err := applyAccount(acc, in, maskPaths(req.GetUpdateMask(), presentAccount(in))); err != nil {
		return nil, err
	}
	acc.UpdatedAt = time.Now().UTC()
	if err := a.s.st.PutAccount(ctx, acc); err != nil {
		return nil, err
	}
	a.s.auth.invalidateKeys() // a disabled account's keys stop now
	if err := a.s.gw.ReloadRoutes(ctx); err != nil {
		return nil, err
	}
	return &smppgwv1.UpdateAccountResponse{Account: accountToProto(acc)}, nil
}

func (a *adminService) DeleteAccount(ctx context.Context, req *smppgwv1.DeleteAccountRequest) (*smppgwv1.DeleteAccountResponse, error) {
	id := req.GetSystemId()
	if id == "" {
		return nil, invalid("system_id", "required")
	}
	defer a.s.auth.invalidateKeys() // after the writes below, however far they got
	if err := a.s.st.DeleteAccount(ctx, id); err != nil {
		return nil, err
	}
	keys, err := a.s.st.ListAPIKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.Account == id {
			if err := a.s.st.DeleteAPIKey(ctx, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
	}
	if err := a.s.gw.ReloadRoutes(ctx); err != nil {
		return nil, err
	}
	for _, si := range a.s.gw.Sessions() {
		if si.Role == session.RoleSMSC && si.SystemID == id {
			if err := a.s.gw.UnbindSession(ctx, si.ID, false); err != nil && !errors.Is(err, gateway.ErrUnknownSession) {
				a.s.log.Warn().Err(err).Uint64("session", si.ID).Msg("unbind of a deleted account's session failed")
			}
		}
	}
	return &smppgwv1.DeleteAccountResponse{}, nil
}

// API keys.

var scopeNames = map[smppgwv1.Scope]store.Scope{
	smppgwv1.Scope_SCOPE_SEND:  store.ScopeSend,
	smppgwv1.Scope_SCOPE_READ:  store.ScopeRead,
	smppgwv1.Scope_SCOPE_ADMIN: store.ScopeAdmin,
}

func apiKeyToProto(k *store.APIKey) *smppgwv1.ApiKey {
	out := &smppgwv1.ApiKey{
		KeyId:        k.ID,
		Account:      k.Account,
		Name:         k.Name,
		ExpireTime:   ts(k.ExpiresAt),
		SecretPrefix: secretPrefix(k.ID),
		CreateTime:   ts(k.CreatedAt),
	}
	for e, s := range scopeNames {
		if slices.Contains(k.Scopes, s) {
			out.Scopes = append(out.Scopes, e)
		}
	}
	slices.Sort(out.Scopes)
	return out
}

func (a *adminService) CreateApiKey(ctx context.Context, req *smppgwv1.CreateApiKeyRequest) (*smppgwv1.CreateApiKeyResponse, error) {
	in := req.GetApiKey()
	if in == nil {
		return nil, invalid("api_key", "required")
	}
	if len(in.GetScopes()) == 0 {
		return nil, invalid("api_key.scopes", "at least one is required")
	}
	k := &store.APIKey{Name: in.GetName(), Account: in.GetAccount(), CreatedAt: time.Now().UTC()}
	onlyAdmin := true
	for _, s := range in.GetScopes() {
		name, ok := scopeNames[s]
		if !ok {
			return nil, invalid("api_key.scopes", "unknown scope %d", int32(s))
		}
		if name != store.ScopeAdmin {
			onlyAdmin = false
		}
		if !slices.Contains(k.Scopes, name) {
			k.Scopes = append(k.Scopes, name)
		}
	}
	if k.Account == "" && !onlyAdmin {
		return nil, invalid("api_key.account", "required unless the key has only the admin scope")
	}
	if k.Account != "" {
		if _, err := a.s.st.GetAccount(ctx, k.Account); errors.Is(err, store.ErrNotFound) {
			return nil, invalid("api_key.account", "no such account")
		} else if err != nil {
			return nil, err
		}
	}
	if e := in.GetExpireTime(); e != nil {
		if err := e.CheckValid(); err != nil || !e.AsTime().After(time.Now()) {
			return nil, invalid("api_key.expire_time", "must be in the future")
		}
		k.ExpiresAt = e.AsTime()
	}
	id, secret, err := newAPIKeySecret()
	if err != nil {
		return nil, err
	}
	k.ID, k.Hash = id, hashSecret(secret)
	if err := a.s.st.CreateAPIKey(ctx, k); err != nil {
		return nil, err
	}
	return &smppgwv1.CreateApiKeyResponse{ApiKey: apiKeyToProto(k), Secret: secret}, nil
}

func (a *adminService) ListApiKeys(ctx context.Context, req *smppgwv1.ListApiKeysRequest) (*smppgwv1.ListApiKeysResponse, error) {
	all, err := a.s.st.ListAPIKeys(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(x, y *store.APIKey) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	var out []*smppgwv1.ApiKey
	for _, k := range all {
		if req.GetAccount() == "" || k.Account == req.GetAccount() {
			out = append(out, apiKeyToProto(k))
		}
	}
	page, next, err := paginate(out, req.GetPageSize(), req.GetPageToken(), defaultAdminPage)
	if err != nil {
		return nil, err
	}
	return &smppgwv1.ListApiKeysResponse{ApiKeys: page, NextPageToken: next}, nil
}

func (a *adminService) RevokeApiKey(ctx context.Context, req *smppgwv1.RevokeApiKeyRequest) (*smppgwv1.RevokeApiKeyResponse, error) {
	if req.GetKeyId() == "" {
		return nil, invalid("key_id", "required")
	}
	if err := a.s.st.DeleteAPIKey(ctx, req.GetKeyId()); err != nil {
		return nil, err
	}
	a.s.auth.invalidateKeys()
	return &smppgwv1.RevokeApiKeyResponse{}, nil
}

// Routes.

func routeToProto(r *store.Route) *smppgwv1.Route {
	return &smppgwv1.Route{
		RouteId:     r.Name,
		Prefix:      r.Prefix,
		Upstreams:   slices.Clone(r.Upstreams),
		Weights:     weightsToProto(r.Weights),
		Priority:    int32(r.Priority),
		Account:     r.Account,
		Description: r.Description,
		CreateTime:  ts(r.CreatedAt),
		UpdateTime:  ts(r.UpdatedAt),
	}
}

func (a *adminService) applyRoute(r *store.Route, in *smppgwv1.Route, paths []string) error {
	for _, p := range paths {
		switch p {
		case "route_id":
			if in.GetRouteId() != r.Name {
				return invalid("route.route_id", "cannot be changed")
			}
		case "prefix":
			pr := strings.TrimPrefix(in.GetPrefix(), "+")
			for _, c := range pr {
				if c < '0' || c > '9' {
					return invalid("route.prefix", "digits only")
				}
			}
			if len(pr) > 20 {
				return invalid("route.prefix", "at most 20 digits")
			}
			r.Prefix = pr
		case "account":
			r.Account = in.GetAccount()
		case "upstreams":
			if len(in.GetUpstreams()) == 0 {
				return invalid("route.upstreams", "at least one is required")
			}
			known := map[string]bool{}
			for _, u := range a.s.gw.Upstreams() {
				known[u.Config.Name] = true
			}
			for _, u := range in.GetUpstreams() {
				if !known[u] {
					return invalid("route.upstreams", "no upstream named %q", u)
				}
			}
			r.Upstreams = slices.Clone(in.GetUpstreams())
		case "weights":
			r.Weights = nil
			for _, w := range in.GetWeights() {
				r.Weights = append(r.Weights, int(min(w, gateway.MaxRouteWeight+1)))
			}
		case "priority":
			r.Priority = int(in.GetPriority())
		case "description":
			if err := checkDescription("route.description", in.GetDescription()); err != nil {
				return err
			}
			r.Description = in.GetDescription()
		case "create_time", "update_time":
		default:
			return invalid("update_mask", "unknown field %q", p)
		}
	}
	if err := gateway.CheckWeights(r.Weights, len(r.Upstreams)); err != nil {
		return invalid("route.weights", "%v", err)
	}
	return nil
}

func weightsToProto(ws []int) []uint32 {
	var out []uint32
	for _, w := range ws {
		out = append(out, uint32(w))
	}
	return out
}

func presentRoute(in *smppgwv1.Route) []string {
	p := []string{"prefix", "account", "upstreams", "weights", "priority"}
	if in.GetDescription() != "" {
		p = append(p, "description")
	}
	return p
}

func (a *adminService) ListRoutes(ctx context.Context, _ *smppgwv1.ListRoutesRequest) (*smppgwv1.ListRoutesResponse, error) {
	all, err := a.s.gw.Routes(ctx)
	if err != nil {
		return nil, err
	}
	out := &smppgwv1.ListRoutesResponse{}
	for _, r := range all {
		out.Routes = append(out.Routes, routeToProto(r))
	}
	return out, nil
}

func (a *adminService) GetRoute(ctx context.Context, req *smppgwv1.GetRouteRequest) (*smppgwv1.GetRouteResponse, error) {
	if req.GetRouteId() == "" {
		return nil, invalid("route_id", "required")
	}
	r, err := a.s.st.GetRoute(ctx, req.GetRouteId())
	if err != nil {
		return nil, err
	}
	return &smppgwv1.GetRouteResponse{Route: routeToProto(r)}, nil
}

func (a *adminService) CreateRoute(ctx context.Context, req *smppgwv1.CreateRouteRequest) (*smppgwv1.CreateRouteResponse, error) {
	in := req.GetRoute()
	if in == nil {
		return nil, invalid("route", "required")
	}
	now := time.Now().UTC()
	r := &store.Route{Name: "rt_" + newID()[:12], CreatedAt: now, UpdatedAt: now}
	if err := a.applyRoute(r, in, presentRoute(in)); err != nil {
		return nil, err
	}
	if err := a.s.st.CreateRoute(ctx, r); err != nil {
		return nil, err
	}
	if err := a.s.gw.ReloadRoutes(ctx); err != nil {
		return nil, err
	}
	return &smppgwv1.CreateRouteResponse{Route: routeToProto(r)}, nil
}

func (a *adminService) UpdateRoute(ctx context.Context, req *smppgwv1.UpdateRouteRequest) (*smppgwv1.UpdateRouteResponse, error) {
	in := req.GetRoute()
	if in.GetRouteId() == "" {
		return nil, invalid("route.route_id", "required")
	}
	r, err := a.s.st.GetRoute(ctx, in.GetRouteId())
	if err != nil {
		return nil, err
	}
	if err := a.applyRoute(r, in, maskPaths(req.GetUpdateMask(), presentRoute(in))); err != nil {
		return nil, err
	}
	r.UpdatedAt = time.Now().UTC()
	if err := a.s.st.PutRoute(ctx, r); err != nil {
		return nil, err
	}
	if err := a.s.gw.ReloadRoutes(ctx); err != nil {
		return nil, err
	}
	return &smppgwv1.UpdateRouteResponse{Route: routeToProto(r)}, nil
}

func (a *adminService) DeleteRoute(ctx context.Context, req *smppgwv1.DeleteRouteRequest) (*smppgwv1.DeleteRouteResponse, error) {
	if req.GetRouteId() == "" {
		return nil, invalid("route_id", "required")
	}
	if err := a.s.st.DeleteRoute(ctx, req.GetRouteId()); err != nil {
		return nil, err
	}
	if err := a.s.gw.ReloadRoutes(ctx); err != nil {
		return nil, err
	}
	return &smppgwv1.DeleteRouteResponse{}, nil
}

func (a *adminService) TestRoute(ctx context.Context, req *smppgwv1.TestRouteRequest) (*smppgwv1.TestRouteResponse, error) {
	dest := strings.TrimPrefix(req.GetDestination(), "+")
	if dest == "" {
		return nil, invalid("destination", "required")
	}
	names, err := a.s.gw.TestRoute(ctx, req.GetAccount(), req.GetDestination())
	if errors.Is(err, gateway.ErrNoRoute) {
		return &smppgwv1.TestRouteResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &smppgwv1.TestRouteResponse{Matched: true}
	// The stored route this destination matches, by the same rule, for the operator to see.
	routes, err := a.s.gw.Routes(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if gateway.RouteMatches(r, req.GetAccount(), dest) {
			out.Route = routeToProto(r)
			break
		}
	}
	infos := map[string]gateway.UpstreamInfo{}
	for _, u := range a.s.gw.Upstreams() {
		infos[u.Config.Name] = u
	}
	for _, n := range names {
		u, ok := infos[n]
		if !ok {
			out.Upstreams = append(out.Upstreams, &smppgwv1.Upstream{Name: n})
			continue
		}
		p := upstreamToProto(u)
		out.Upstreams = append(out.Upstreams, p)
		if out.SelectedUpstream == "" && (p.State == smppgwv1.UpstreamState_UPSTREAM_STATE_BOUND || p.State == smppgwv1.UpstreamState_UPSTREAM_STATE_DEGRADED) {
			out.SelectedUpstream = n
		}
	}
	return out, nil
}

// MO routes.

func moRouteToProto(r *store.MORoute) *smppgwv1.MoRoute {
	return &smppgwv1.MoRoute{MoRouteId: r.Name, Prefix: r.Prefix, Account: r.Account, Priority: int32(r.Priority),
		Description: r.Description, CreateTime: ts(r.CreatedAt)}
}

func (a *adminService) ListMoRoutes(ctx context.Context, _ *smppgwv1.ListMoRoutesRequest) (*smppgwv1.ListMoRoutesResponse, error) {
	all, err := a.s.gw.MORoutes(ctx)
	if err != nil {
		return nil, err
	}
	out := &smppgwv1.ListMoRoutesResponse{}
	for _, r := range all {
		out.MoRoutes = append(out.MoRoutes, moRouteToProto(r))
	}
	return out, nil
}

func (a *adminService) CreateMoRoute(ctx context.Context, req *smppgwv1.CreateMoRouteRequest) (*smppgwv1.CreateMoRouteResponse, error) {
	in := req.GetMoRoute()
	if in == nil {
		return nil, invalid("mo_route", "required")
	}
	prefix := strings.TrimPrefix(in.GetPrefix(), "+")
	for _, c := range prefix {
		if c < '0' || c > '9' {
			return nil, invalid("mo_route.prefix", "digits only")
		}
	}
	switch {
	case len(prefix) > 20:
		return nil, invalid("mo_route.prefix", "at most 20 digits")
	case in.GetAccount() == "":
		return nil, invalid("mo_route.account", "required")
	case len(in.GetAccount()) > 15:
		return nil, invalid("mo_route.account", "at most 15 characters (a system_id)")
	}
	if err := checkDescription("mo_route.description", in.GetDescription()); err != nil {
		return nil, err
	}
	r := &store.MORoute{Name: "mo_" + newID()[:12], Prefix: prefix, Account: in.GetAccount(), Priority: int(in.GetPriority()),
		Description: in.GetDescription()}
	if err := a.s.gw.AddMORoute(ctx, r); err != nil {
		return nil, err
	}
	return &smppgwv1.CreateMoRouteResponse{MoRoute: moRouteToProto(r)}, nil
}

func (a *adminService) DeleteMoRoute(ctx context.Context, req *smppgwv1.DeleteMoRouteRequest) (*smppgwv1.DeleteMoRouteResponse, error) {
	if req.GetMoRouteId() == "" {
		return nil, invalid("mo_route_id", "required")
	}
	if err := a.s.gw.DeleteMORoute(ctx, req.GetMoRouteId()); err != nil {
		return nil, err
	}
	return &smppgwv1.DeleteMoRouteResponse{}, nil
}

// Number normalisation rules.

func addressRuleToProto(r gateway.AddressRule) *smppgwv1.AddressRule {
	return &smppgwv1.AddressRule{StripPlus: r.StripPlus, Strip_00: r.Strip00, CountryCode: r.CountryCode, Ton: r.TON, Npi: r.NPI}
}

func addressRuleFromProto(r *smppgwv1.AddressRule) gateway.AddressRule {
	return gateway.AddressRule{StripPlus: r.GetStripPlus(), Strip00: r.GetStrip_00(), CountryCode: r.GetCountryCode(), TON: r.GetTon(), NPI: r.GetNpi()}
}

func numberRulesToProto(i gateway.NumberRulesInfo) *smppgwv1.NumberRules {
	return &smppgwv1.NumberRules{Scope: i.Scope, Name: i.Name, Destination: addressRuleToProto(i.Rules.Destination),
		Source: addressRuleToProto(i.Rules.Source), FromConfig: i.FromConfig}
}

func checkScope(field, scope string) error {
	if scope != "account" && scope != "upstream" {
		return invalid(field, `"account" or "upstream"`)
	}
	return nil
}

func (a *adminService) ListNumberRules(ctx context.Context, _ *smppgwv1.ListNumberRulesRequest) (*smppgwv1.ListNumberRulesResponse, error) {
	all, err := a.s.gw.NumberRulesList(ctx)
	if err != nil {
		return nil, err
	}
	out := &smppgwv1.ListNumberRulesResponse{}
	for _, r := range all {
		out.Rules = append(out.Rules, numberRulesToProto(r))
	}
	return out, nil
}

func (a *adminService) SetNumberRules(ctx context.Context, req *smppgwv1.SetNumberRulesRequest) (*smppgwv1.SetNumberRulesResponse, error) {
	in := req.GetRules()
	if in == nil {
		return nil, invalid("rules", "required")
	}
	if err := checkScope("rules.scope", in.GetScope()); err != nil {
		return nil, err
	}
	if in.GetName() == "" || len(in.GetName()) > 64 {
		return nil, invalid("rules.name", "1 to 64 characters")
	}
	r := gateway.NumberRules{Destination: addressRuleFromProto(in.GetDestination()), Source: addressRuleFromProto(in.GetSource())}
	if err := r.Destination.Validate(); err != nil {
		return nil, invalid("rules.destination", "%v", err)
	}
	if err := r.Source.Validate(); err != nil {
		return nil, invalid("rules.source", "%v", err)
	}
	if err := a.s.gw.SetNumberRules(ctx, in.GetScope(), in.GetName(), r); err != nil {
		return nil, err
	}
	return &smppgwv1.SetNumberRulesResponse{Rules: numberRulesToProto(gateway.NumberRulesInfo{Scope: in.GetScope(), Name: in.GetName(), Rules: r})}, nil
}

func (a *adminService) DeleteNumberRules(ctx context.Context, req *smppgwv1.DeleteNumberRulesRequest) (*smppgwv1.DeleteNumberRulesResponse, error) {
	if err := checkScope("scope", req.GetScope()); err != nil {
		return nil, err
	}
	if req.GetName() == "" {
		return nil, invalid("name", "required")
	}
	if err := a.s.gw.DeleteNumberRules(ctx, req.GetScope(), req.GetName()); err != nil {
		return nil, err
	}
	return &smppgwv1.DeleteNumberRulesResponse{}, nil
}

// Outbind.

func (a *adminService) Outbind(ctx context.Context, req *smppgwv1.OutbindRequest) (*smppgwv1.OutbindResponse, error) {
	switch {
	case req.GetHost() == "":
		return nil, invalid("host", "required")
	case req.GetPort() == 0 || req.GetPort() > 65535:
		return nil, invalid("port", "must be 1 to 65535")
	case req.GetSystemId() == "":
		return nil, invalid("system_id", "required")
	}
	wait, err := positiveDuration("bind_timeout", req.GetBindTimeout())
	if err != nil {
		return nil, err
	}
	if wait == 0 {
		wait = defaultOutbind
	}
	if wait > maxOutbind {
		return nil, invalid("bind_timeout", "at most %s", maxOutbind)
	}
	port := strconv.FormatUint(uint64(req.GetPort()), 10)
	cfg := gateway.OutbindConfig{Address: net.JoinHostPort(req.GetHost(), port), SystemID: req.GetSystemId(), Password: req.GetPassword()}
	if req.GetTls() {
		cfg.TLS = &gateway.ClientTLSConfig{}
	}
	reqCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	si, err := a.s.gw.Outbind(ctx, cfg)
	if err != nil {
		return nil, outbindError(reqCtx, cfg.Address, wait, err)
	}
	return &smppgwv1.OutbindResponse{Session: a.sessionToProto(si)}, nil
}

// outbindError says why an outbind to addr did not end in a bind: nobody listens there (NotFound:
// no ESME, simulated or real, waits for outbinds at that address), the connection or the ESME's bind
// did not come within bind_timeout (DeadlineExceeded), the ESME closed the connection without
// binding (FailedPrecondition), the caller gave up, or another network or TLS failure (Unavailable).
func outbindError(reqCtx context.Context, addr string, wait time.Duration, err error) error {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	dialing := errors.As(err, &opErr)
	switch {
	case reqCtx.Err() != nil:
		return reqCtx.Err()
	case errors.Is(err, syscall.ECONNREFUSED):
		return status.Errorf(codes.NotFound, "no ESME listening at %s (connection refused)", addr)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return status.Errorf(codes.NotFound, "no ESME at %s: no such host", addr)
	case dialing && opErr.Timeout():
		return status.Errorf(codes.DeadlineExceeded, "could not connect to the ESME at %s: %v", addr, err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "the ESME at %s took the outbind but did not bind back within bind_timeout (%s)", addr, wait)
	case errors.Is(err, gateway.ErrNotBoundBack):
		return status.Errorf(codes.FailedPrecondition, "the ESME at %s closed the connection without binding back (does it expect another outbind system_id or password?)", addr)
	}
	return status.Errorf(codes.Unavailable, "outbind to %s: %v", addr, err)
}

// Stats.

func (a *adminService) GetStats(ctx context.Context, req *smppgwv1.GetStatsRequest) (*smppgwv1.GetStatsResponse, error) {
	if d := req.GetThroughputInterval(); d != nil && d.AsDuration() != time.Minute {
		return nil, invalid("throughput_interval", "only 1m is measured by this gateway")
	}
	st, err := a.s.gw.Stats(ctx)
	if err != nil {
		return nil, err
	}
	out := &smppgwv1.GetStatsResponse{
		MessagesByStatus: map[string]uint64{},
		Throughput: &smppgwv1.Throughput{Interval: durationpb.New(time.Minute), AcceptedPerSecond: st.AcceptRate,
			SubmittedPerSecond: st.SubmitRate, ReceiptsPerSecond: st.ReceiptRate, MoPerSecond: st.MORate},
		Time:              timestamppb.Now(),
		ReceiptsDuplicate: st.ReceiptsDuplicate,
	}
	for s, n := range st.MessagesByStatus {
		if n > 0 {
			out.MessagesByStatus[stateToProto(s).String()] += uint64(n) // states outside SMPP's count as UNSPECIFIED
		}
	}
	for _, u := range a.s.gw.Upstreams() {
		if ss := u.Status.Session; ss != nil {
			out.Windows = append(out.Windows, &smppgwv1.WindowUsage{Id: u.Config.Name, Upstream: true, InUse: uint32(max(ss.WindowUsed, 0)), Size: uint32(max(ss.WindowSize, 0))})
		}
	}
	for _, si := range a.s.gw.Sessions() {
		out.Windows = append(out.Windows, &smppgwv1.WindowUsage{Id: strconv.FormatUint(si.ID, 10), InUse: uint32(max(si.WindowUsed, 0)), Size: uint32(max(si.WindowSize, 0))})
	}
	for _, q := range st.UpstreamQueues {
		out.UpstreamQueues = append(out.UpstreamQueues, queueToProto(q))
	}
	for _, q := range st.DeliveryQueues {
		out.DeliveryQueues = append(out.DeliveryQueues, queueToProto(q))
	}
	byName := func(x, y *smppgwv1.QueueDepth) int { return strings.Compare(x.Name, y.Name) }
	slices.SortFunc(out.UpstreamQueues, byName)
	slices.SortFunc(out.DeliveryQueues, byName)
	return out, nil
}

// queueToProto reports a queue's entries waiting as its depth and the claimed ones as pending.
func queueToProto(q gateway.QueueInfo) *smppgwv1.QueueDepth {
	out := &smppgwv1.QueueDepth{Name: q.Name, Depth: uint64(max(q.Len-q.Claimed, 0)), Pending: uint64(max(q.Claimed, 0))}
	if q.OldestAge > 0 {
		out.OldestAge = durationpb.New(q.OldestAge)
	}
	return out
}
