package gateway

import (
	"errors"
	"slices"
	"testing"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestGatewaySubmitMulti: a submit_multi to two good numbers, one that is not a number and one
// distribution list is answered with the first accepted destination's id and the two refusals in
// unsuccess_sme with their own statuses; the two good ones reach the upstream as a submit_sm each,
// and each receipt reaches the ESME with the id of its own message. A submit_multi whose every
// destination is refused is answered with the refusal.
func TestGatewaySubmitMulti(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		st := open()
		sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
		g, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
		sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
		rx := sessiontest.NewRecorder()
		esme := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
		ctx := sessiontest.Ctx(t)

		resp, err := esme.Send(ctx, &pdu.SubmitMulti{
			SourceAddr: "12345",
			DestAddresses: []pdu.DestAddress{
				{Flag: 1, TON: pdu.TONInternational, NPI: pdu.NPIISDN, Addr: "447700900001"},
				{Flag: 1, Addr: "not-a-number"},
				{Flag: 2, DLName: "friends"},
				{Flag: 1, TON: pdu.TONInternational, NPI: pdu.NPIISDN, Addr: "447700900002"},
			},
			RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("hello all"),
		})
		if err != nil {
			t.Fatal(err)
		}
		mr := resp.Body.(*pdu.SubmitMultiResp)
		want := []pdu.UnsuccessSME{
			{Addr: "not-a-number", ErrorStatus: pdu.ESME_RINVDSTADR},
			{Addr: "friends", ErrorStatus: pdu.ESME_RCNTSUBDL},
		}
		if len(mr.MessageID) != 16 || !slices.Equal(mr.UnsuccessSMEs, want) {
			t.Errorf("submit_multi_resp %+v, want a gateway id and unsuccess_sme %+v", mr, want)
		}
		first, err := st.GetMessage(ctx, mr.MessageID)
		if err != nil || first.Destination.Addr != "447700900001" || first.Account != "acme" {
			t.Fatalf("the answered id's message: %+v, %v; want the first good destination's", first, err)
		}

		sessiontest.Eventually(t, "two submit_sm at the upstream", func() bool { return sim.Count() >= 2 })
		var dests []string
		for _, sm := range sim.Submits() {
			if string(sm.ShortMessage) != "hello all" || sm.SourceAddr != "12345" {
				t.Errorf("upstream submit_sm %+v", sm)
			}
			dests = append(dests, sm.DestinationAddr)
		}
		slices.Sort(dests)
		if !slices.Equal(dests, []string{"447700900001", "447700900002"}) {
			t.Errorf("upstream destinations %v", dests)
		}

		// One receipt per destination, each with the id of its own message.
		ids := map[string]string{}
		for _, info := range awaitReceipts(t, rx, 2) {
			if info.State != pdu.DELIVERED {
				t.Errorf("receipt %+v, want DELIVERED", info)
			}
			m, err := st.GetMessage(ctx, info.MessageID)
			if err != nil {
				t.Fatalf("receipt for %s: %v", info.MessageID, err)
			}
			ids[m.Destination.Addr] = m.ID
		}
		if len(ids) != 2 || ids["447700900001"] != mr.MessageID || ids["447700900002"] == "" || ids["447700900002"] == mr.MessageID {
			t.Errorf("receipts by destination %v; want one each, the first with the answered id", ids)
		}

		for _, tc := range []struct {
			name  string
			dests []pdu.DestAddress
			want  pdu.CommandStatus
			n     int
		}{
			{"one list", []pdu.DestAddress{{Flag: 2, DLName: "all"}}, pdu.ESME_RCNTSUBDL, 1},
			{"two bad numbers", []pdu.DestAddress{{Flag: 1, Addr: "x"}, {Flag: 1, Addr: "y"}}, pdu.ESME_RINVDSTADR, 2},
			{"mixed refusals", []pdu.DestAddress{{Flag: 1, Addr: "x"}, {Flag: 2, DLName: "all"}}, pdu.ESME_RSUBMITFAIL, 2},
			// pdu's decoder refuses it before the gateway sees it: a header alone (n -1).
			{"bad flag", []pdu.DestAddress{{Flag: 3}}, pdu.ESME_RINVDESTFLAG, -1},
		} {
			resp, err := esme.Send(ctx, &pdu.SubmitMulti{SourceAddr: "12345", DestAddresses: tc.dests, ShortMessage: []byte("x")})
			var got pdu.CommandStatus
			if !errors.As(err, &got) || got != tc.want {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
				continue
			}
			if tc.n < 0 {
				continue
			}
			if mr, ok := resp.Body.(*pdu.SubmitMultiResp); !ok || len(mr.UnsuccessSMEs) != tc.n || mr.MessageID != "" {
				t.Errorf("%s: body %+v, want %d unsuccess_sme and no id", tc.name, resp.Body, tc.n)
			}
		}
		if n := sim.Count(); n != 2 {
			t.Errorf("the upstream saw %d submissions, want 2", n)
		}
	})
}
