package smscsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/pdu/text"
)

// startHTTP starts a simulator (any account binds) and its HTTP API on loopback.
func startHTTP(t *testing.T, opts smscsim.Options) (*smscsim.Sim, string) {
	t.Helper()
	if opts.Accounts == nil {
		opts.Accounts = map[string]string{}
	}
	sim := start(t, opts)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// call sends body (nil: none; a string: as it is; else JSON) and decodes the JSON answer into out
// (when not nil); it returns the status code.
func call(t *testing.T, method, url string, body, out any) int {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, raw)
		}
	}
	return resp.StatusCode
}

func stats(t *testing.T, url string) smscsim.Stats {
	t.Helper()
	var st smscsim.Stats
	if code := call(t, "GET", url+"/stats?last=1000", nil, &st); code != http.StatusOK {
		t.Fatalf("GET /stats: %d", code)
	}
	return st
}

func TestHTTPHealthAndErrors(t *testing.T) {
	_, url := startHTTP(t, smscsim.Options{})
	var h map[string]any
	if code := call(t, "GET", url+"/healthz", nil, &h); code != 200 || h["status"] != "ok" {
		t.Errorf("healthz %d %v", code, h)
	}
	for _, c := range []struct {
		method, path string
		body         any
		code         int
		field        string
	}{
		{"POST", "/binds/999/close", nil, 404, "id"},
		{"POST", "/binds/abc/close", nil, 404, "id"},
		{"POST", "/mo", map[string]any{"text": "hi", "bind": 999}, 404, "bind"},
		{"POST", "/mo", map[string]any{"text": "hi"}, 409, ""},
		{"POST", "/receipts", map[string]any{"message_id": "SIM9999"}, 404, "message_id"},
		{"POST", "/receipts", map[string]any{"message_id": "SIM9999", "state": "GONE"}, 400, "state"},
		{"POST", "/mo", `{"text":"hi","tex":"x"}`, 400, "tex"},
		{"POST", "/mo", `{"text":5}`, 400, "text"},
		{"POST", "/mo", `{"text":"hi","long":"udh9"}`, 400, "long"},
		{"POST", "/mo", `{"text":"hi"} {}`, 400, ""},
		{"POST", "/mo", ``, 400, ""},
		{"POST", "/faults", `{"delay":"soon"}`, 400, "delay"},
		{"POST", "/faults", `{"status":"ESME_RNOPE"}`, 400, "status"},
		{"POST", "/faults", `{"refuse_binds":true}`, 400, "refuse_binds"},
		{"POST", "/faults", `{"drop_every":-1}`, 400, "drop_every"},
		{"GET", "/nowhere", nil, 404, ""},
	} {
		var e map[string]string
		code := call(t, c.method, url+c.path, c.body, &e)
		if code != c.code || e["field"] != c.field || e["error"] == "" {
			t.Errorf("%s %s %v: %d %v, want %d naming %q", c.method, c.path, c.body, code, e, c.code, c.field)
		}
	}
}

// submitAll sends n submissions without waiting, then reads their n answers (answering any
// deliver_sm in between, counted under ESME_RINVCMDID, which no answer carries) and counts them by status.
func submitAll(t *testing.T, p *smpptest.Peer, n int, registered uint8) map[pdu.CommandStatus]int {
	t.Helper()
	for i := range n {
		submit(p, fmt.Sprintf("msg %d", i), registered)
	}
	got := map[pdu.CommandStatus]int{}
	for answers := 0; answers < n; {
		h, _ := p.Read()
		switch h.ID {
		case pdu.SubmitSMRespID:
			got[h.Status]++
			answers++
		case pdu.DeliverSMID:
			p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
			got[pdu.ESME_RINVCMDID]++
		default:
			t.Fatalf("unexpected %v", h.ID)
		}
	}
	return got
}

func TestHTTPDropEvery(t *testing.T) {
	sim, url := startHTTP(t, smscsim.Options{})
	if code := call(t, "POST", url+"/faults", map[string]any{"drop_every": 3}, nil); code != 200 {
		t.Fatalf("POST /faults: %d", code)
	}
	for range 2 {
		p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
		for i := range 3 {
			if st, id := answered(t, p, submit(p, "x", 0)); st != pdu.ESME_ROK || id == "" {
				t.Fatalf("submit %d: %v %q", i, st, id)
			}
		}
		p.ExpectEOF() // after the third, not before
	}
	st := stats(t, url)
	if st.LinksDropped != 2 || st.Submits != 6 || st.Answered["ESME_ROK"] != 6 || st.BindsAccepted != 2 {
		t.Errorf("stats %+v", st)
	}
	var f map[string]any
	call(t, "DELETE", url+"/faults", nil, &f)
	if f["drop_every"] != 0.0 {
		t.Errorf("after DELETE: %v", f)
	}
}

func TestHTTPDelay(t *testing.T) {
	sim, url := startHTTP(t, smscsim.Options{})
	call(t, "POST", url+"/faults", map[string]any{"delay": "50ms"}, nil)
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	began := time.Now()
	got := submitAll(t, p, 20, pdu.RegisteredDeliveryReceiptFinal)
	if time.Since(began) < 50*time.Millisecond {
		t.Errorf("answered within %v, want after the 50ms delay", time.Since(began))
	}
	if got[pdu.ESME_ROK] != 20 {
		t.Errorf("answers %v", got)
	}
	// Each receipt follows its delayed answer.
	for range 20 - got[pdu.ESME_RINVCMDID] {
		h, _ := p.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
		p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
	}
	eventually(t, "the receipts answered", func() bool { return stats(t, url).ReceiptsAnswered == 20 })
	if st := stats(t, url); st.Submits != 20 || st.Answered["ESME_ROK"] != 20 || st.ReceiptsSent != 20 || len(st.Last) != 20 {
		t.Errorf("stats %+v", st)
	}
}

func TestHTTPThrottle(t *testing.T) {
	sim, url := startHTTP(t, smscsim.Options{})
	call(t, "POST", url+"/faults", map[string]any{"throttle_above": 10}, nil)
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	const n = 60
	got := submitAll(t, p, n, 0)
	ok, throttled := got[pdu.ESME_ROK], got[pdu.ESME_RTHROTTLED]
	// The bucket holds 10 and refills at 10/s: a burst of 60 gets at least 10 through and, unless it
	// took seconds, some throttled.
	if ok < 10 || throttled == 0 || ok+throttled != n {
		t.Errorf("answers %v", got)
	}
	st := stats(t, url)
	if st.Submits != n || st.Answered["ESME_ROK"] != ok || st.Answered["ESME_RTHROTTLED"] != throttled {
		t.Errorf("stats %+v, client saw %v", st, got)
	}
	call(t, "DELETE", url+"/faults", nil, nil)
	if got := submitAll(t, p, n, 0); got[pdu.ESME_ROK] != n {
		t.Errorf("after DELETE: %v", got)
	}
}

func TestHTTPRefuseBindsAndQueuedFaults(t *testing.T) {
	sim, url := startHTTP(t, smscsim.Options{})
	call(t, "POST", url+"/faults", map[string]any{"refuse_binds": "ESME_RBINDFAIL"}, nil)
	bind(t, sim, "gw", "pw", pdu.ESME_RBINDFAIL)
	call(t, "POST", url+"/faults", map[string]any{"refuse_binds": "ESME_ROK", "status": "ESME_RSYSERR", "count": 2}, nil)
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	var f struct {
		Queued []struct{ Status string } `json:"queued"`
	}
	call(t, "GET", url+"/faults", nil, &f)
	if len(f.Queued) != 1 || f.Queued[0].Status != "ESME_RSYSERR" {
		t.Errorf("faults %+v", f)
	}
	got := submitAll(t, p, 3, 0)
	if got[pdu.ESME_RSYSERR] != 2 || got[pdu.ESME_ROK] != 1 {
		t.Errorf("answers %v", got)
	}
	call(t, "POST", url+"/faults", map[string]any{"hold": true, "count": 1}, nil)
	submit(p, "held", 0)
	if st, _ := answered(t, p, submit(p, "after", 0)); st != pdu.ESME_ROK {
		t.Errorf("after the held one: %v", st)
	}
	st := stats(t, url)
	if st.BindsRefused != 1 || st.BindsAccepted != 1 || st.Submits != 5 || st.Held != 1 ||
		st.Answered["ESME_RSYSERR"] != 2 || st.Answered["ESME_ROK"] != 2 {
		t.Errorf("stats %+v", st)
	}
	if l := st.Last; len(l) != 5 || l[3].Status != "held" || l[3].Text != "held" || l[4].MessageID == "" {
		t.Errorf("last %+v", l)
	}
}

func TestHTTPBinds(t *testing.T) {
	sim, url := startHTTP(t, smscsim.Options{})
	p := bind(t, sim, "alice", "pw", pdu.ESME_ROK)
	var binds []smscsim.Bind
	eventually(t, "the bind listed", func() bool {
		call(t, "GET", url+"/binds", nil, &binds)
		return len(binds) == 1
	})
	if b := binds[0]; b.SystemID != "alice" || b.BindType != "transceiver" || b.ID == 0 {
		t.Errorf("binds %+v", binds)
	}
	if code := call(t, "POST", fmt.Sprintf("%s/binds/%d/close", url, binds[0].ID), nil, nil); code != 200 {
		t.Errorf("close: %d", code)
	}
	p.ExpectEOF()
	if code := call(t, "POST", fmt.Sprintf("%s/binds/%d/close", url, binds[0].ID), nil, nil); code != 404 {
		t.Errorf("close again: %d, want 404", code)
	}
}

// readMO reads an MO's parts as they come, answering each, and returns them.
func readMO(t *testing.T, p *smpptest.Peer, parts int) []*pdu.DeliverSM {
	t.Helper()
	var out []*pdu.DeliverSM
	for range parts {
		h, b := p.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
		out = append(out, b.(*pdu.DeliverSM))
		p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
	}
	return out
}

func TestHTTPMO(t *testing.T) {
	sim, url := startHTTP(t, smscsim.Options{})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	eventually(t, "the bind", func() bool { return stats(t, url).Bound == 1 })

	type moAnswer struct {
		Bind    uint64   `json:"bind"`
		Parts   int      `json:"parts"`
		Answers []string `json:"answers"`
	}
	post := func(body any) <-chan moAnswer {
		ch := make(chan moAnswer, 1)
		go func() {
			var a moAnswer
			if code := call(t, "POST", url+"/mo", body, &a); code != 200 {
				t.Errorf("POST /mo %v: %d", body, code)
			}
			ch <- a
		}()
		return ch
	}

	done := post(map[string]any{"from": "447700900555", "to": "12345", "text": "STOP"})
	d := readMO(t, p, 1)[0]
	if string(d.ShortMessage) != "STOP" || d.SourceAddr != "447700900555" || d.DestinationAddr != "12345" || dlr.IsReceipt(d.EsmClass) {
		t.Errorf("MO %+v", d)
	}
	if a := <-done; a.Parts != 1 || a.Bind == 0 || len(a.Answers) != 1 || a.Answers[0] != "ESME_ROK" {
		t.Errorf("answer %+v", a)
	}

	long := strings.Repeat("0123456789", 35) // 350 GSM characters: 3 parts of 153
	for _, c := range []struct {
		long any
		mode pdu.SplitMode
	}{{true, pdu.SplitUDH8}, {"sar", pdu.SplitSAR}} {
		done := post(map[string]any{"text": long, "long": c.long})
		parts := readMO(t, p, 3)
		var whole []byte
		for i, d := range parts {
			part, err := pdu.ReadPart(d)
			if err != nil || part.Mode != c.mode || part.Total != 3 || int(part.Seq) != i+1 {
				t.Fatalf("%v part %d: %+v %v", c.long, i, part, err)
			}
			if (c.mode == pdu.SplitUDH8) != (d.EsmClass&pdu.EsmClassUDHI != 0) {
				t.Errorf("%v part %d: esm_class %#x", c.long, i, d.EsmClass)
			}
			whole = append(whole, part.Data...)
		}
		if s, err := text.Decode(text.Coding(parts[0].DataCoding), whole); err != nil || s != long {
			t.Errorf("%v: reassembled %q %v", c.long, s, err)
		}
		if a := <-done; a.Parts != 3 {
			t.Errorf("%v: answer %+v", c.long, a)
		}
	}
	if st := stats(t, url); st.MOSent != 7 || st.MOAnswered != 7 || st.MOFailed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTimedMO(t *testing.T) {
	sim, _ := startHTTP(t, smscsim.Options{MOEvery: 10 * time.Millisecond, MOText: "tick"})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	for _, d := range readMO(t, p, 3) {
		if string(d.ShortMessage) != "tick" || d.SourceAddr != "447700900000" {
			t.Errorf("MO %+v", d)
		}
	}
}

func TestHTTPReceiptOnDemand(t *testing.T) {
	sim, url := startHTTP(t, smscsim.Options{})
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	_, id := answered(t, p, submit(p, "later", 0))
	done := make(chan int, 1)
	go func() {
		done <- call(t, "POST", url+"/receipts", map[string]any{"message_id": id, "state": "UNDELIV"}, nil)
	}()
	h, b := p.Expect(pdu.DeliverSMID, pdu.ESME_ROK)
	p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
	info, err := dlr.FromDeliverSM(b.(*pdu.DeliverSM))
	if err != nil || info.MessageID != id || info.State != pdu.UNDELIVERABLE {
		t.Errorf("receipt %+v %v", info, err)
	}
	if code := <-done; code != 200 {
		t.Errorf("POST /receipts: %d", code)
	}
	if st := stats(t, url); st.ReceiptsSent != 1 || st.ReceiptsAnswered != 1 || st.ReceiptStates["UNDELIV"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiptMix(t *testing.T) {
	mix, err := smscsim.ParseMix("DELIVRD:90,UNDELIV:5,EXPIRED:5")
	if err != nil {
		t.Fatal(err)
	}
	const seed, k = 7, 300
	sim, url := startHTTP(t, smscsim.Options{ReceiptMix: mix, Seed: seed})
	want := map[string]int{}
	r := rand.New(rand.NewPCG(seed, seed))
	for range k {
		want[dlr.StatFor(mix.Pick(r))]++
	}
	p := bind(t, sim, "gw", "pw", pdu.ESME_ROK)
	for i := range k {
		submit(p, fmt.Sprintf("m%d", i), pdu.RegisteredDeliveryReceiptFinal)
	}
	got := map[string]int{}
	for answers, receipts := 0, 0; answers < k || receipts < k; {
		h, b := p.Read()
		switch h.ID {
		case pdu.SubmitSMRespID:
			answers++
		case pdu.DeliverSMID:
			receipts++
			info, err := dlr.FromDeliverSM(b.(*pdu.DeliverSM))
			if err != nil {
				t.Fatal(err)
			}
			got[dlr.StatFor(info.State)]++
			p.Send(h.Sequence, pdu.ESME_ROK, &pdu.DeliverSMResp{})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || want["DELIVRD"] < k*8/10 || want["UNDELIV"] == 0 || want["EXPIRED"] == 0 {
		t.Errorf("receipt states %v, the seeded draws say %v", got, want)
	}
	eventually(t, "the receipts counted", func() bool { return stats(t, url).ReceiptsAnswered == k })
	if st := stats(t, url); fmt.Sprint(st.ReceiptStates) != fmt.Sprint(want) || st.Submits != k {
		t.Errorf("stats %+v, want states %v", st, want)
	}
}

func TestParseMix(t *testing.T) {
	m, err := smscsim.ParseMix("delivrd=3, UNDELIVERABLE:1")
	if err != nil || m.String() != "DELIVRD:3,UNDELIV:1" {
		t.Errorf("%v %v", m, err)
	}
	for _, bad := range []string{"DELIVRD", "DELIVRD:0", "NOPE:1", "DELIVRD:x"} {
		if _, err := smscsim.ParseMix(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if st, err := smscsim.ParseStatus("rthrottled"); err != nil || st != pdu.ESME_RTHROTTLED {
		t.Errorf("%v %v", st, err)
	}
	if st, err := smscsim.ParseStatus("0x58"); err != nil || st != pdu.ESME_RTHROTTLED {
		t.Errorf("%v %v", st, err)
	}
}

// TestSessionClientSeesFaults observes faults set over HTTP through an ESME built on gateway/session,
// as the gateway's upstream binds are: delayed answers arrive, a held one is lost when the link drops
// after every 3 submissions.
func TestSessionClientSeesFaults(t *testing.T) {
	sim, url := startHTTP(t, smscsim.Options{})
	call(t, "POST", url+"/faults", map[string]any{"delay": "20ms", "drop_every": 3, "hold": true, "count": 1}, nil)
	c, err := net.Dial("tcp", sim.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ss := session.New(c, session.Options{Role: session.RoleESME})
	defer ss.Abort()
	ctx, cancel := context.WithTimeout(context.Background(), smpptest.Wait)
	defer cancel()
	if _, err := ss.Bind(ctx, session.BindTransceiver, session.BindParams{SystemID: "gw", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := ss.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("held")})
		held <- err
	}()
	eventually(t, "the held one received", func() bool { return stats(t, url).Held == 1 })
	for i := range 2 {
		resp, err := ss.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("x")})
		if err != nil || resp.Body.(*pdu.SubmitSMResp).MessageID == "" {
			t.Fatalf("submit %d: %+v %v", i, resp, err)
		}
	}
	if err := <-held; !errors.Is(err, session.ErrLost) {
		t.Errorf("held submission: %v, want ErrLost", err)
	}
	<-ss.Done()
	if st := stats(t, url); st.Submits != 3 || st.Held != 1 || st.Answered["ESME_ROK"] != 2 || st.LinksDropped != 1 {
		t.Errorf("stats %+v", st)
	}
}
