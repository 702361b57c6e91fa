package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// lostLog is a store that keeps the lost PDUs it was given, for tests to read.
type lostLog struct {
	store.Store
	mu   sync.Mutex
	lost []store.LostPDU
}

func (l *lostLog) RequeueLost(ctx context.Context, lost []store.LostPDU) error {
	err := l.Store.RequeueLost(ctx, lost)
	if err == nil {
		l.mu.Lock()
		l.lost = append(l.lost, lost...)
		l.mu.Unlock()
	}
	return err
}

func (l *lostLog) recorded() []store.LostPDU {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lost)
}

// TestGatewayResubmitsLostPDUs: the upstream drops the bind with submissions in flight; they are
// recorded as lost PDUs and submitted again on the next bind.
func TestGatewayResubmitsLostPDUs(t *testing.T) {
	const n = 3
	st := &lostLog{Store: newEmbedded(t)}
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	sim.Inject(smscsim.Fault{Hold: true, Close: true, Count: n}) // the link drops under the first n
	_, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
	e := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransmitter, "acme", "secret")
	ids := map[string]bool{}
	for i := range n {
		resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: fmt.Sprint("4477009000", i), ShortMessage: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		ids[resp.Body.(*pdu.SubmitSMResp).MessageID] = true
	}
	sessiontest.Eventually(t, "the lost submissions to be sent again", func() bool { return len(sim.Submits()) == 2*n })
	lost := st.recorded()
	if len(lost) != n {
		t.Fatalf("lost PDUs recorded = %d entries; want %d", len(lost), n)
	}
	for _, l := range lost {
		if l.CommandID != uint32(pdu.SubmitSMID) || l.SequenceNumber == 0 || l.Session == "" {
			t.Errorf("lost PDU %+v", l)
		}
	}
	for id := range ids {
		sessiontest.Eventually(t, "the message to be enroute", func() bool {
			m, err := st.GetMessage(sessiontest.Ctx(t), id)
			return err == nil && m.Status == pdu.ENROUTE && strings.HasPrefix(m.Parts[0].UpstreamID, "SIM")
		})
	}
	time.Sleep(100 * time.Millisecond)
	if got := len(sim.Submits()); got != 2*n {
		t.Errorf("the upstream saw %d submissions, want %d (each lost one once more)", got, 2*n)
	}
}

// TestGatewayRejectedPart: an upstream that refuses a message for good: the message is REJECTED in the
// store and the ESME that asked for a receipt gets a REJECTD one with our id.
func TestGatewayRejectedPart(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	sim.Inject(smscsim.Fault{Status: pdu.ESME_RINVDSTADR}) // every submission refused for good
	_, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("no")})
	if err != nil {
		t.Fatal(err)
	}
	ourID := resp.Body.(*pdu.SubmitSMResp).MessageID
	if info := awaitReceipts(t, rx, 1)[0]; info.MessageID != ourID || info.State != pdu.REJECTED {
		t.Errorf("receipt %+v, want %s REJECTED", info, ourID)
	}
	m, err := st.GetMessage(sessiontest.Ctx(t), ourID)
	if err != nil || m.Status != pdu.REJECTED || m.Parts[0].Error != uint32(pdu.ESME_RINVDSTADR) {
		t.Errorf("stored %+v %v", m, err)
	}
	// Queried over SMPP, the message reports its state.
	qr, err := e.Send(sessiontest.Ctx(t), &pdu.QuerySM{MessageID: ourID, SourceAddr: "1"})
	if err != nil || qr.Body.(*pdu.QuerySMResp).MessageState != pdu.REJECTED {
		t.Errorf("query_sm: %+v %v", qr.Body, err)
	}
	if _, err := e.Send(sessiontest.Ctx(t), &pdu.QuerySM{MessageID: "nope", SourceAddr: "1"}); !errors.Is(err, pdu.ESME_RQUERYFAIL) {
		t.Errorf("query_sm of an unknown id: %v", err)
	}
}
