package smscsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// Handler serves the simulator's HTTP API, JSON both ways:
//
//	GET    /healthz            {"status":"ok","bound":N}
//	GET    /stats?last=N       Stats, with the latest N submissions (default 20)
//	GET    /binds              [Bind]
//	POST   /binds/{id}/close   drop that link; 404 for an id not bound
//	POST   /mo                 {to, from, text, long, bind}: send an MO (long: true, "udh8", "udh16",
//	                           "sar" or "payload" for how a long text is cut); 404 for an unknown bind
//	POST   /receipts           {message_id, state}: send a receipt now; 404 for an unknown message id
//	GET    /faults             the faults in force
//	POST   /faults             {status, hold, close, count, delay, drop_every, throttle_above, refuse_binds}
//	DELETE /faults             clear every fault, standing and queued, and accept binds again
//
// A body with an unknown field, a value of the wrong type, or trailing data is a 400 naming the
// field; an error is {"error": "..."} (with "field" when one is to blame).
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "bound": s.Bound()})
	})
	mux.HandleFunc("GET /stats", s.serveStats)
	mux.HandleFunc("GET /binds", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.BindList())
	})
	mux.HandleFunc("POST /binds/{id}/close", s.serveCloseBind)
	mux.HandleFunc("POST /mo", s.serveMO)
	mux.HandleFunc("POST /receipts", s.serveReceipt)
	mux.HandleFunc("GET /faults", s.serveFaults)
	mux.HandleFunc("POST /faults", s.serveSetFaults)
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		s.Clear()
		s.SetLinkFaults(LinkFaults{})
		s.RefuseBinds(pdu.ESME_ROK)
		s.serveFaults(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func (s *Sim) serveStats(w http.ResponseWriter, r *http.Request) {
	last := 20
	if v := r.URL.Query().Get("last"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "last", "last must be a non-negative integer")
			return
		}
		last = n
	}
	writeJSON(w, http.StatusOK, s.Stats(last))
}

func (s *Sim) serveCloseBind(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err == nil {
		err = s.CloseBind(id)
	}
	if err != nil {
		writeError(w, http.StatusNotFound, "id", fmt.Sprintf("no bind %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"closed": id})
}

// longMode is the "long" field of POST /mo: a bool (true: udh8) or a split mode's name.
type longMode pdu.SplitMode

func (m *longMode) UnmarshalJSON(b []byte) error {
	var on bool
	if err := json.Unmarshal(b, &on); err == nil {
		*m = 0
		if on {
			*m = longMode(pdu.SplitUDH8)
		}
		return nil
	}
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return &fieldError{"long", `want true, false, "udh8", "udh16", "sar" or "payload"`}
	}
	for _, mode := range []pdu.SplitMode{pdu.SplitUDH8, pdu.SplitUDH16, pdu.SplitSAR, pdu.SplitPayload} {
		if strings.EqualFold(name, mode.String()) {
			*m = longMode(mode)
			return nil
		}
	}
	return &fieldError{"long", fmt.Sprintf(`unknown mode %q: want "udh8", "udh16", "sar" or "payload"`, name)}
}

type moRequest struct {
	To   string   `json:"to"`
	From string   `json:"from"`
	Text string   `json:"text"`
	Long longMode `json:"long"`
	Bind uint64   `json:"bind"`
}

func (s *Sim) serveMO(w http.ResponseWriter, r *http.Request) {
	var req moRequest
	if !decode(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.SendTimeout)
	defer cancel()
	res, err := s.SendText(ctx, MO{From: req.From, To: req.To, Text: req.Text, Split: pdu.SplitMode(req.Long), Bind: req.Bind})
	switch {
	case errors.Is(err, ErrUnknownBind):
		writeError(w, http.StatusNotFound, "bind", fmt.Sprintf("no bind %d", req.Bind))
		return
	case errors.Is(err, ErrNoBind):
		writeError(w, http.StatusConflict, "", err.Error())
		return
	case err != nil && res.Parts == 0:
		writeError(w, http.StatusBadRequest, "text", err.Error())
		return
	}
	out := map[string]any{"bind": res.Bind, "parts": res.Parts, "answers": names(res.Answers)}
	if err != nil {
		out["error"] = err.Error()
		writeJSON(w, http.StatusBadGateway, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type receiptRequest struct {
	MessageID string `json:"message_id"`
	State     string `json:"state"`
}

func (s *Sim) serveReceipt(w http.ResponseWriter, r *http.Request) {
	var req receiptRequest
	if !decode(w, r, &req) {
		return
	}
	var state pdu.MessageState
	if req.State != "" {
		var err error
		if state, err = ParseState(req.State); err != nil {
			writeError(w, http.StatusBadRequest, "state", err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.SendTimeout)
	defer cancel()
	status, err := s.SendReceipt(ctx, req.MessageID, state)
	switch {
	case errors.Is(err, ErrUnknownMessage):
		writeError(w, http.StatusNotFound, "message_id", fmt.Sprintf("no message %q", req.MessageID))
		return
	case errors.Is(err, ErrNoBind):
		writeError(w, http.StatusConflict, "", err.Error())
		return
	}
	out := map[string]any{"message_id": req.MessageID, "answer": status.String()}
	if err != nil {
		out["error"] = err.Error()
		writeJSON(w, http.StatusBadGateway, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// statusValue is the status of POST /faults: a command status name ("ESME_RTHROTTLED") or number.
type statusValue pdu.CommandStatus

func (v *statusValue) UnmarshalJSON(b []byte) error {
	st, err := unmarshalStatus("status", b)
	*v = statusValue(st)
	return err
}

// refuseValue is the refuse_binds of POST /faults, a status as statusValue.
type refuseValue pdu.CommandStatus

func (v *refuseValue) UnmarshalJSON(b []byte) error {
	st, err := unmarshalStatus("refuse_binds", b)
	*v = refuseValue(st)
	return err
}

func unmarshalStatus(field string, b []byte) (pdu.CommandStatus, error) {
	var n uint32
	if err := json.Unmarshal(b, &n); err == nil {
		return pdu.CommandStatus(n), nil
	}
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return 0, &fieldError{field, `want a command status name ("ESME_RTHROTTLED") or number`}
	}
	st, err := ParseStatus(name)
	if err != nil {
		return 0, &fieldError{field, err.Error()}
	}
	return st, nil
}

// fieldError is a bad value in a request body, naming its field (encoding/json does not name the
// field for errors of UnmarshalJSON methods).
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

var statusByName = sync.OnceValue(func() map[string]pdu.CommandStatus {
	m := map[string]pdu.CommandStatus{}
	for c := range pdu.CommandStatus(0x500) {
		if n := c.String(); !strings.HasPrefix(n, "0x") {
			m[n] = c
		}
	}
	return m
})

// ParseStatus reads a command status by its specification name (ESME_RTHROTTLED, any case, the
// ESME_ prefix optional) or as a number (88, 0x58).
func ParseStatus(name string) (pdu.CommandStatus, error) {
	name = strings.ToUpper(strings.TrimSpace(name))
	if n, err := strconv.ParseUint(name, 0, 32); err == nil {
		return pdu.CommandStatus(n), nil
	}
	if !strings.HasPrefix(name, "ESME_") {
		name = "ESME_" + name
	}
	if st, ok := statusByName()[name]; ok {
		return st, nil
	}
	return 0, fmt.Errorf("unknown command status %q", name)
}

// duration is the delay of POST /faults: "250ms", or a number of nanoseconds.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*d = duration(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &fieldError{"delay", `want a duration ("250ms")`}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return &fieldError{"delay", fmt.Sprintf("bad duration %q: want a non-negative one like \"250ms\"", s)}
	}
	*d = duration(v)
	return nil
}

type faultRequest struct {
	// A per-submission Fault, queued when any of status, hold and close is set.
	Status statusValue `json:"status"`
	Hold   bool        `json:"hold"`
	Close  bool        `json:"close"`
	Count  int         `json:"count"`
	// Standing faults: each given replaces its value, each absent keeps it.
	Delay         *duration `json:"delay"`
	DropEvery     *int      `json:"drop_every"`
	ThrottleAbove *float64  `json:"throttle_above"`
	// RefuseBinds, given, refuses binds from now on with that status (ESME_ROK accepts again).
	RefuseBinds *refuseValue `json:"refuse_binds"`
}

type faultView struct {
	Delay         string      `json:"delay"`
	DropEvery     int         `json:"drop_every"`
	ThrottleAbove float64     `json:"throttle_above"`
	RefuseBinds   string      `json:"refuse_binds"`
	Queued        []faultJSON `json:"queued"`
}

type faultJSON struct {
	Status string `json:"status"`
	Hold   bool   `json:"hold"`
	Close  bool   `json:"close"`
	Count  int    `json:"count"`
}

func (s *Sim) serveFaults(w http.ResponseWriter, _ *http.Request) {
	lf, queued, refuse := s.Faults()
	v := faultView{Delay: lf.Delay.String(), DropEvery: lf.DropEvery, ThrottleAbove: lf.ThrottleAbove,
		RefuseBinds: refuse.String(), Queued: []faultJSON{}}
	for _, f := range queued {
		v.Queued = append(v.Queued, faultJSON{f.Status.String(), f.Hold, f.Close, f.Count})
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Sim) serveSetFaults(w http.ResponseWriter, r *http.Request) {
	var req faultRequest
	if !decode(w, r, &req) {
		return
	}
	switch {
	case req.Count < 0:
		writeError(w, http.StatusBadRequest, "count", "count must not be negative")
		return
	case req.DropEvery != nil && *req.DropEvery < 0:
		writeError(w, http.StatusBadRequest, "drop_every", "drop_every must not be negative")
		return
	case req.ThrottleAbove != nil && *req.ThrottleAbove < 0:
		writeError(w, http.StatusBadRequest, "throttle_above", "throttle_above must not be negative")
		return
	}
	if req.Status != 0 || req.Hold || req.Close {
		s.Inject(Fault{Status: pdu.CommandStatus(req.Status), Hold: req.Hold, Close: req.Close, Count: req.Count})
	}
	if req.Delay != nil || req.DropEvery != nil || req.ThrottleAbove != nil {
		lf, _, _ := s.Faults()
		if req.Delay != nil {
			lf.Delay = time.Duration(*req.Delay)
		}
		if req.DropEvery != nil {
			lf.DropEvery = *req.DropEvery
		}
		if req.ThrottleAbove != nil {
			lf.ThrottleAbove = *req.ThrottleAbove
		}
		s.SetLinkFaults(lf)
	}
	if req.RefuseBinds != nil {
		s.RefuseBinds(pdu.CommandStatus(*req.RefuseBinds))
	}
	s.serveFaults(w, r)
}

// decode reads one JSON value into v, strictly; on failure it answers 400 naming the field and
// returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		return true
	}
	field := ""
	var (
		te *json.UnmarshalTypeError
		fe *fieldError
	)
	switch {
	case errors.As(err, &fe):
		field = fe.field
	case errors.As(err, &te):
		field = te.Field
		err = fmt.Errorf("%s: want a %s, got %s", te.Field, te.Type, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ = strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.EOF):
		err = errors.New("empty body: want a JSON object")
	}
	writeError(w, http.StatusBadRequest, field, err.Error())
	return false
}

func names(sts []pdu.CommandStatus) []string {
	out := make([]string, len(sts))
	for i, st := range sts {
		out[i] = st.String()
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, code, body)
}
