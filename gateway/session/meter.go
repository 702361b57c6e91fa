package session

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// The PDU counts are fixed arrays of atomics indexed by a small command index and, for responses, a
// status index: counting a PDU is a switch and one atomic add, with no lock, map or allocation.

// NumCommands is the number of command indexes: the commands of SMPP 3.4 (a request and its
// response share an index) and index 0 for any other command id.
const NumCommands = 16

// NumStatuses is the number of status indexes: the few statuses an operator watches, and the last
// index for every other status.
const NumStatuses = 8

// countedCommands are the request ids by command index (generic_nack stands for itself).
var countedCommands = [NumCommands]pdu.CommandID{
	0: 0, 1: pdu.GenericNackID, 2: pdu.BindReceiverID, 3: pdu.BindTransmitterID, 4: pdu.QuerySMID,
	5: pdu.SubmitSMID, 6: pdu.DeliverSMID, 7: pdu.UnbindID, 8: pdu.ReplaceSMID, 9: pdu.CancelSMID,
	10: pdu.BindTransceiverID, 11: pdu.OutbindID, 12: pdu.EnquireLinkID, 13: pdu.SubmitMultiID,
	14: pdu.AlertNotificationID, 15: pdu.DataSMID,
}

// countedStatuses are the statuses by status index; the last index counts every other status.
var countedStatuses = [NumStatuses - 1]pdu.CommandStatus{
	pdu.ESME_ROK, pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL, pdu.ESME_RSYSERR, pdu.ESME_RINVDSTADR,
	pdu.ESME_RINVBNDSTS, pdu.ESME_RSUBMITFAIL,
}

// commandIndex maps a command id (request or response) to its command index.
func commandIndex(id pdu.CommandID) int {
	if id == pdu.GenericNackID {
		return 1
	}
	switch base := id &^ pdu.GenericNackID; {
	case base >= pdu.BindReceiverID && base <= pdu.BindTransceiverID: // 0x01..0x09 are contiguous
		return int(base) + 1
	case base == pdu.OutbindID:
		return 11
	case base == pdu.EnquireLinkID:
		return 12
	case base == pdu.SubmitMultiID:
		return 13
	case base == pdu.AlertNotificationID:
		return 14
	case base == pdu.DataSMID:
		return 15
	}
	return 0
}

// statusIndex maps a command_status to its status index.
func statusIndex(s pdu.CommandStatus) int {
	switch s {
	case pdu.ESME_ROK:
		return 0
	case pdu.ESME_RTHROTTLED:
		return 1
	case pdu.ESME_RMSGQFUL:
		return 2
	case pdu.ESME_RSYSERR:
		return 3
	case pdu.ESME_RINVDSTADR:
		return 4
	case pdu.ESME_RINVBNDSTS:
		return 5
	case pdu.ESME_RSUBMITFAIL:
		return 6
	}
	return NumStatuses - 1
}

// LatencyBounds are the upper bounds of the response latency buckets; a last bucket counts what
// is slower than the last bound.
var LatencyBounds = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second,
}

// NumLatencyBuckets is len(LatencyBounds) plus the bucket beyond the last bound.
const NumLatencyBuckets = len(LatencyBounds) + 1

// pduCounters count one session's PDUs by direction, command and status, and the latency of the
// responses to its own requests (window requests only: not bind, unbind or idle enquire_link).
type pduCounters struct {
	requests   [2][NumCommands]atomic.Uint64
	responses  [2][NumCommands][NumStatuses]atomic.Uint64
	latency    [NumLatencyBuckets]atomic.Uint64
	latencySum atomic.Int64 // nanoseconds
}

// Directions index the counts: In is read from the peer, Out written to it.
const (
	In  = 0
	Out = 1
)

func (c *pduCounters) count(dir int, id pdu.CommandID, status pdu.CommandStatus) {
	if !id.IsResponse() {
		c.requests[dir][commandIndex(id)].Add(1)
		return
	}
	c.responses[dir][commandIndex(id)][statusIndex(status)].Add(1)
}

// observe records the time one of our requests waited for its response.
func (c *pduCounters) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	c.latency[i].Add(1)
	c.latencySum.Add(int64(d))
}

func (c *pduCounters) fill(out *Counts) {
	for d := range c.requests {
		for i := range c.requests[d] {
			out.Requests[d][i] = c.requests[d][i].Load()
			for j := range c.responses[d][i] {
				out.Responses[d][i][j] = c.responses[d][i][j].Load()
			}
		}
	}
	for i := range c.latency {
		out.Latency[i] = c.latency[i].Load()
	}
	out.LatencySum = time.Duration(c.latencySum.Load())
}

// Counts are a snapshot of PDU counts and response latency, of one session or summed over many.
type Counts struct {
	Requests   [2][NumCommands]uint64              // [In/Out][command index]
	Responses  [2][NumCommands][NumStatuses]uint64 // [In/Out][command index][status index]
	Latency    [NumLatencyBuckets]uint64           // responses to our requests per latency bucket, not cumulative
	LatencySum time.Duration
}

// Add adds o to c.
func (c *Counts) Add(o *Counts) {
	for d := range c.Requests {
		for i := range c.Requests[d] {
			c.Requests[d][i] += o.Requests[d][i]
			for j := range c.Responses[d][i] {
				c.Responses[d][i][j] += o.Responses[d][i][j]
			}
		}
	}
	for i := range c.Latency {
		c.Latency[i] += o.Latency[i]
	}
	c.LatencySum += o.LatencySum
}

// Each calls f for every non-zero count: direction (In or Out), command name ("submit_sm",
// "submit_sm_resp", "generic_nack", or "other"), status name ("ESME_ROK", ..., or "other"; requests
// count as ESME_ROK, the command_status they carry) and the count.
func (c *Counts) Each(f func(dir int, command, status string, n uint64)) {
	for d := range c.Requests {
		for i := range c.Requests[d] {
			req := countedCommands[i]
			if n := c.Requests[d][i]; n != 0 {
				f(d, commandName(req, false), pdu.ESME_ROK.String(), n)
			}
			for j, n := range c.Responses[d][i] {
				if n == 0 {
					continue
				}
				status := "other"
				if j < len(countedStatuses) {
					status = countedStatuses[j].String()
				}
				f(d, commandName(req, true), status, n)
			}
		}
	}
}

func commandName(req pdu.CommandID, resp bool) string {
	switch {
	case req == 0:
		return "other"
	case req == pdu.GenericNackID || !resp:
		return req.String()
	}
	return req.Response().String()
}

// Meter sums the counts of a group of sessions (those of a server, or of one upstream) over their
// lives: the sessions it was given to (in Config.Meter) are read live, and each one's final counts
// are added to the meter when it ends, so the sums only grow. Sessions never wait on it: a session
// takes its lock twice, when it starts and when it ends.
type Meter struct {
	name string

	mu   sync.Mutex
	live map[*Session]struct{}
	done map[meterKey]*Counts
}

type meterKey struct {
	role     Role
	systemID string
}

// NewMeter returns a meter. A non-empty name labels all its sessions (an upstream's name);
// otherwise each session is labelled with its system_id.
func NewMeter(name string) *Meter {
	return &Meter{name: name, live: map[*Session]struct{}{}, done: map[meterKey]*Counts{}}
}

// Name is the meter's name.
func (m *Meter) Name() string { return m.name }

// MeterCounts are the counts of a meter's sessions of one role and name.
type MeterCounts struct {
	Role Role
	Name string // the meter's name, or the sessions' system_id ("" before a bind)
	Counts
}

// Snapshot returns the counts of every session the meter was given, ended or live, summed by role
// and name, sorted.
func (m *Meter) Snapshot() []MeterCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	sums := make(map[meterKey]*Counts, len(m.done)+1)
	for k, c := range m.done {
		cc := *c
		sums[k] = &cc
	}
	var one Counts
	for s := range m.live {
		s.ctr.pdus.fill(&one)
		k := m.key(s)
		if c, ok := sums[k]; ok {
			c.Add(&one)
		} else {
			cc := one
			sums[k] = &cc
		}
	}
	out := make([]MeterCounts, 0, len(sums))
	for k, c := range sums {
		out = append(out, MeterCounts{Role: k.role, Name: k.systemID, Counts: *c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Role != out[j].Role {
			return out[i].Role < out[j].Role
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (m *Meter) key(s *Session) meterKey {
	k := meterKey{role: s.role, systemID: m.name}
	if k.systemID == "" {
		k.systemID = s.SystemID()
	}
	return k
}

func (m *Meter) start(s *Session) {
	m.mu.Lock()
	m.live[s] = struct{}{}
	m.mu.Unlock()
}

// end moves a session's final counts from live to done.
func (m *Meter) end(s *Session) {
	var final Counts
	s.ctr.pdus.fill(&final)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.live, s)
	k := m.key(s)
	c := m.done[k]
	if c == nil {
		c = new(Counts)
		m.done[k] = c
	}
	c.Add(&final)
}
