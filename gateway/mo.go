package gateway

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
)

// MORoute, in the configuration file, sends MO messages (deliver_sm from an upstream that is not a
// receipt) whose destination_addr starts with Prefix to the account named Account. The longest prefix
// wins, then the configuration order. They are seeded into the store at start (moRouteTable).
type MORoute struct {
	Prefix  string `yaml:"prefix"`
	Account string `yaml:"account"`
}

// fromUpstream is what the Gateway's Clients hand the requests of their upstreams to (DESIGN.md,
// "Message life", steps 3 and 4), deliver_sm and data_sm alike (a data_sm is read as the deliver_sm it
// would be, deliverOfDataSM, and answered with data_sm_resp): a receipt goes to receipts; an MO is
// routed to an account by the MO routes (longest prefix first), queued for it with
// store.EnqueueDelivery part by part, sent by the account's delivery loop, and published to the API
// once whole (a long MO reassembled first, moparts.go). Either is answered once
// what it carries is durable, so the upstream keeps it until then; a store error is answered
// ESME_RX_T_APPN, which asks the upstream to retry.
type fromUpstream struct {
	st       store.Store
	log      zerolog.Logger
	moRoutes *moRouteTable
	receipts *receipts
	deliv    *deliverer
	events   *hub
	stats    *counters
	work     *pool
	accounts *accountOptions // long_mo of each account; nil: every account gets the parts

	// Long MO (see moparts.go): for an account that gets the parts, they go to it one by one as they
	// come and only the API's event waits for the whole message; for one that gets long MO whole,
	// the parts are held here until the whole is queued for it.
	reasm    *pdu.Reassembler
	expMu    sync.Mutex
	expNext  *time.Timer // armed while incomplete messages are held
	expTick  time.Duration
	unqMu    sync.Mutex
	unqueued map[wholeKey]*store.Delivery // whole MO whose queueing failed, until its last part comes again
}

var _ DeliverHandler = (*fromUpstream)(nil)

func newFromUpstream(moRoutes *moRouteTable, st store.Store, rc *receipts, deliv *deliverer, events *hub, stats *counters, work *pool, log zerolog.Logger) *fromUpstream {
	r := &fromUpstream{st: st, log: log.With().Str("component", "mo").Logger(), moRoutes: moRoutes, receipts: rc,
		deliv: deliv, events: events, stats: stats, work: work}
	r.initReassembly(moReassembly)
	return r
}

// MOAccount returns the account an MO to dest goes to.
func (r *fromUpstream) MOAccount(dest string) (string, bool) { return r.moRoutes.account(dest) }

// HandleDeliver implements DeliverHandler.
func (r *fromUpstream) HandleDeliver(upstream string, req session.Request, respond func(pdu.CommandStatus)) {
	var d *pdu.DeliverSM
	switch b := req.Body.(type) {
	case *pdu.DeliverSM:
		d = cloneDeliver(b)
	case *pdu.DataSM:
		d = cloneDeliver(deliverOfDataSM(b))
	default:
		r.log.Info().Str("upstream", upstream).Stringer("command", req.Body.CommandID()).Msg("request from upstream not routed")
		respond(pdu.ESME_RINVCMDID)
		return
	}
	if dlr.IsReceipt(d.EsmClass) {
		r.work.do(func() { respond(r.receipts.fromUpstream(upstream, d)) })
		return
	}
	account, ok := r.MOAccount(d.DestinationAddr)
	if !ok {
		r.log.Info().Str("upstream", upstream).Str("dest", d.DestinationAddr).Msg("MO refused: no MO route")
		respond(pdu.ESME_RINVDSTADR)
		return
	}
	r.work.do(func() { respond(r.mo(upstream, account, d)) })
}

// mo queues an MO for account: as it came, or, when it is a part of a long MO and the account gets
// long MO whole (LongMOPayload), held until its message is whole (moparts.go).
func (r *fromUpstream) mo(upstream, account string, d *pdu.DeliverSM) pdu.CommandStatus {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	del := &store.Delivery{
		Account: account, Kind: store.DeliveryMO,
		Source:      store.Address{TON: d.SourceAddrTON, NPI: d.SourceAddrNPI, Addr: d.SourceAddr},
		Destination: store.Address{TON: d.DestAddrTON, NPI: d.DestAddrNPI, Addr: d.DestinationAddr},
		ESMClass:    d.EsmClass, ProtocolID: d.ProtocolID, DataCoding: d.DataCoding,
		ShortMessage: d.ShortMessage, TLVs: d.Options, CreatedAt: time.Now(),
	}
	if r.accounts != nil && r.accounts.get(ctx, account).LongMO == LongMOPayload {
		if st, done := r.moWhole(ctx, upstream, account, d, del); done {
			return st
		}
	}
	if err := r.st.EnqueueDelivery(ctx, del); err != nil {
		r.log.Error().Err(err).Str("upstream", upstream).Str("account", account).Msg("MO not queued; the upstream is asked to retry")
		return pdu.ESME_RX_T_APPN
	}
	r.stats.mo()
	r.deliv.startIfBound(account)
	r.publishMO(upstream, account, d, del)
	r.log.Debug().Str("upstream", upstream).Str("account", account).Msg("MO queued for the account")
	return pdu.ESME_ROK
}

// deliverOfDataSM is the deliver_sm view of an upstream's data_sm, a receipt or an MO: the fields the
// two share and its TLVs as they came, the message in message_payload (which dlr.FromDeliverSM reads
// when short_message is empty, and which the account's deliver_sm carries as it is). It aliases b.
func deliverOfDataSM(b *pdu.DataSM) *pdu.DeliverSM {
	return &pdu.DeliverSM{
		ServiceType:   b.ServiceType,
		SourceAddrTON: b.SourceAddrTON, SourceAddrNPI: b.SourceAddrNPI, SourceAddr: b.SourceAddr,
		DestAddrTON: b.DestAddrTON, DestAddrNPI: b.DestAddrNPI, DestinationAddr: b.DestinationAddr,
		EsmClass: b.EsmClass, RegisteredDelivery: b.RegisteredDelivery, DataCoding: b.DataCoding, Options: b.Options,
	}
}

func cloneDeliver(in *pdu.DeliverSM) *pdu.DeliverSM {
	d := *in
	d.ServiceType = strings.Clone(in.ServiceType)
	d.SourceAddr = strings.Clone(in.SourceAddr)
	d.DestinationAddr = strings.Clone(in.DestinationAddr)
	d.ScheduleDeliveryTime = strings.Clone(in.ScheduleDeliveryTime)
	d.ValidityPeriod = strings.Clone(in.ValidityPeriod)
	d.ShortMessage = bytes.Clone(in.ShortMessage)
	d.Options = pdu.Options(bytes.Clone(in.Options))
	return &d
}
