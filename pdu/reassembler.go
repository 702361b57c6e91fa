package pdu

import (
	"bytes"
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/smppgw/smppgw/pdu/text"
)

// Part is one PDU's share of a message, as ReadPart finds it: where the message goes, how the part is
// linked to the others, and its octets. Header and Data alias the PDU.
type Part struct {
	Command     CommandID // the PDU it came from, for errors
	Source      string    // source_addr
	Destination string    // destination_addr
	DataCoding  uint8     // data_coding
	Mode        SplitMode // SplitUDH8, SplitUDH16 or SplitSAR; zero for a message that is not part of a long one
	Ref         uint16    // reference number (an 8-bit one is 0-255)
	Total       uint8     // parts in the message; 1 when Mode is zero
	Seq         uint8     // this part, 1 to Total
	UDH         UDH       // the user data header, when esm_class has UDHI; nil otherwise
	Data        []byte    // the user data after the UDH: short_message, or message_payload when short_message is empty
	Payload     bool      // the user data came from message_payload
}

// Readable are the PDUs ReadPart reads.
type Readable interface {
	*SubmitSM | *DeliverSM | *DataSM
}

// ReadPart finds the long-message part in a PDU: a concatenation IE in the UDH when esm_class has
// UDHI, else the three sar_* TLVs. The user data is short_message, or message_payload when
// short_message is empty. A PDU with neither concatenation IE nor SAR TLVs is a whole message: Mode
// zero, Total and Seq 1.
//
// A malformed UDH is a *FieldError on the field that holds it (see ParseUDH). SAR TLVs must come as a
// set of three (ESME_RMISSINGOPTPARAM naming the missing one) with a non-zero total and a sequence
// number in 1..total (ESME_RINVOPTPARAMVAL).
func ReadPart[P Readable](p P) (Part, error) {
	var (
		part Part
		esm  uint8
		sm   []byte
		opts Options
	)
	switch t := any(p).(type) {
	case *SubmitSM:
		if t != nil {
			part = Part{Command: SubmitSMID, Source: t.SourceAddr, Destination: t.DestinationAddr, DataCoding: t.DataCoding}
			esm, sm, opts = t.EsmClass, t.ShortMessage, t.Options
		}
	case *DeliverSM:
		if t != nil {
			part = Part{Command: DeliverSMID, Source: t.SourceAddr, Destination: t.DestinationAddr, DataCoding: t.DataCoding}
			esm, sm, opts = t.EsmClass, t.ShortMessage, t.Options
		}
	case *DataSM:
		if t != nil {
			part = Part{Command: DataSMID, Source: t.SourceAddr, Destination: t.DestinationAddr, DataCoding: t.DataCoding}
			esm, opts = t.EsmClass, t.Options
		}
	}
	if part.Command == 0 {
		return Part{}, errors.New("pdu: ReadPart: nil PDU")
	}
	part.Total, part.Seq = 1, 1
	field := "short_message"
	part.Data = sm
	if len(sm) == 0 {
		if mp, ok := opts.MessagePayload(); ok {
			field, part.Data, part.Payload = "message_payload", mp, true
		}
	}
	if esm&EsmClassUDHI != 0 {
		h, rest, err := ParseUDH(part.Data)
		if err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Command, fe.Field = part.Command, field
			}
			return Part{}, err
		}
		part.UDH, part.Data = h, rest
		if c, ok := h.Concat(); ok {
			part.Mode, part.Ref, part.Total, part.Seq = SplitUDH8, c.Ref, c.Total, c.Seq
			if c.SixteenBit {
				part.Mode = SplitUDH16
			}
			return part, nil
		}
	}
	ref, hasRef := opts.SARMsgRefNum()
	total, hasTotal := opts.SARTotalSegments()
	seq, hasSeq := opts.SARSegmentSeqnum()
	if !hasRef && !hasTotal && !hasSeq {
		return part, nil
	}
	switch {
	case !hasRef:
		return Part{}, fieldErr(part.Command, "sar_msg_ref_num", ESME_RMISSINGOPTPARAM, "missing while other sar_* TLVs are present")
	case !hasTotal:
		return Part{}, fieldErr(part.Command, "sar_total_segments", ESME_RMISSINGOPTPARAM, "missing while other sar_* TLVs are present")
	case !hasSeq:
		return Part{}, fieldErr(part.Command, "sar_segment_seqnum", ESME_RMISSINGOPTPARAM, "missing while other sar_* TLVs are present")
	case total == 0:
		return Part{}, fieldErr(part.Command, "sar_total_segments", ESME_RINVOPTPARAMVAL, "is 0")
	case seq == 0 || seq > total:
		return Part{}, fieldErr(part.Command, "sar_segment_seqnum", ESME_RINVOPTPARAMVAL,
			itoa(int(seq))+" is outside 1.."+itoa(int(total)))
	}
	part.Mode, part.Ref, part.Total, part.Seq = SplitSAR, ref, total, seq
	return part, nil
}

// Message is a whole message: a single PDU's, or a long one's once its last part has arrived.
type Message struct {
	Key         string    // the caller's key the parts were added under
	Source      string    // source_addr
	Destination string    // destination_addr
	DataCoding  uint8     // data_coding, the same in every part
	Mode        SplitMode // how the parts were linked; zero for a single PDU
	Ref         uint16    // reference number
	Total       uint8     // number of parts
	// Header holds the IEs of the first part's UDH other than concatenation (port addressing, say),
	// each with its IEI and length octets, without a UDHL; nil when there are none.
	Header  []byte
	Data    []byte  // the parts' user data in sequence order, UDHs removed
	Arrival []uint8 // sequence numbers in the order the parts arrived, duplicates left out
}

// Text decodes m.Data in m's data_coding (see text.Decode).
func (m *Message) Text() (string, error) { return text.Decode(text.Coding(m.DataCoding), m.Data) }

// EvictReason says why a Reassembler gave up on an incomplete message.
type EvictReason uint8

const (
	// EvictExpired: its parts did not all arrive within the time-out.
	EvictExpired EvictReason = iota + 1
	// EvictFull: room was needed for a newer message, by MaxPending or MaxOctets.
	EvictFull
	// EvictConflict: a part with the same reference did not belong with the parts held (same sequence
	// number with other octets, or another data_coding): the sender reused the reference, and the new
	// part starts a message of its own.
	EvictConflict
	// EvictTooLarge: the message grew past MaxOctets on its own.
	EvictTooLarge
)

func (r EvictReason) String() string {
	switch r {
	case EvictExpired:
		return "expired"
	case EvictFull:
		return "full"
	case EvictConflict:
		return "conflict"
	case EvictTooLarge:
		return "too large"
	}
	return "EvictReason(" + itoa(int(r)) + ")"
}

// Evicted describes an incomplete message a Reassembler dropped.
type Evicted struct {
	Key         string
	Source      string
	Destination string
	DataCoding  uint8
	Mode        SplitMode
	Ref         uint16
	Total       uint8
	Parts       [][]byte  // user data by sequence number (Parts[seq-1]); nil for the parts that never came
	First       time.Time // when its first part arrived
	Reason      EvictReason
}

// Defaults of ReassemblerConfig's zero fields.
const (
	DefaultReassemblyTimeout   = 5 * time.Minute
	DefaultReassemblyMaxSets   = 10000
	DefaultReassemblyMaxOctets = 16 << 20
)

// ReassemblerConfig configures a Reassembler. The zero value is usable.
type ReassemblerConfig struct {
	// Timeout is how long an incomplete message waits for its missing parts, counted from its first
	// part. Zero means DefaultReassemblyTimeout.
	Timeout time.Duration
	// MaxPending is the most incomplete messages held at once; the oldest is evicted to make room for
	// a new one. As many completed messages are remembered, by key and part digests, to recognise
	// late duplicates. Zero means DefaultReassemblyMaxSets.
	MaxPending int
	// MaxOctets bounds the memory held: the parts' user data and kept UDH IEs, each incomplete
	// message's key, addresses, bookkeeping and one slot per announced part, and each remembered
	// completed message's key and part digests. Remembered messages are forgotten first, then the
	// oldest incomplete messages are evicted, to make room; a message that alone would exceed it is
	// refused. Zero means DefaultReassemblyMaxOctets.
	MaxOctets int
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
	// OnEvict, when set, is told of every incomplete message dropped. It is called without the
	// Reassembler's lock held, on the goroutine whose Add or Expire caused the eviction.
	OnEvict func(Evicted)
}

// Reassembler puts the parts of long messages back together. Parts may arrive in any order and more
// than once, even after their message completed (a peer resending a PDU whose response it missed):
// it remembers, for Timeout, the key and a digest of each part of up to MaxPending completed
// messages, so such a late copy is dropped rather than starting a message that can only expire. It
// holds bounded memory, expires what does not complete, and is safe for concurrent use. Parts are grouped by the caller's key (an account or session, so that two peers' references
// never meet), source and destination addresses, link mode, reference number and total: a part
// whose total differs from a pending message's with the same reference belongs to another message,
// as happens when a sender reuses a reference.
type Reassembler struct {
	timeout   time.Duration
	maxSets   int
	maxOctets int
	now       func() time.Time
	onEvict   func(Evicted)

	seed maphash.Seed

	mu       sync.Mutex
	sets     map[setKey]*pendingSet
	pending  setList // oldest first: creation order, so also expiry order
	octets   int
	done     map[setKey]*pendingSet // completed messages, by completion time in doneList
	doneList setList
	doneSize int // memory of the remembered completed messages, counted against maxOctets with octets
}

// setList is a list of sets, oldest first, linked through the sets.
type setList struct{ head, tail *pendingSet }

func (l *setList) push(s *pendingSet) {
	s.prev = l.tail
	if l.tail != nil {
		l.tail.next = s
	} else {
		l.head = s
	}
	l.tail = s
}

func (l *setList) remove(s *pendingSet) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		l.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

type setKey struct {
	key, src, dst string
	mode          SplitMode
	ref           uint16
	total         uint8
}

type pendingSet struct {
	k          setKey
	dataCoding uint8
	first      time.Time // when the first part came; for a completed message, when it completed
	sums       []uint64  // a completed message's part digests, by seq-1
	parts      [][]byte  // by seq-1
	header     []byte    // non-concatenation IEs of part 1
	have       int
	arrival    []uint8
	octets     int
	prev, next *pendingSet
}

// NewReassembler returns a Reassembler configured by cfg; a negative field is an error naming it.
func NewReassembler(cfg ReassemblerConfig) (*Reassembler, error) {
	switch {
	case cfg.Timeout < 0:
		return nil, errors.New("pdu: ReassemblerConfig.Timeout is negative")
	case cfg.MaxPending < 0:
		return nil, errors.New("pdu: ReassemblerConfig.MaxPending is negative")
	case cfg.MaxOctets < 0:
		return nil, errors.New("pdu: ReassemblerConfig.MaxOctets is negative")
	}
	r := &Reassembler{timeout: cfg.Timeout, maxSets: cfg.MaxPending, maxOctets: cfg.MaxOctets, now: cfg.Now,
		onEvict: cfg.OnEvict, seed: maphash.MakeSeed(), sets: make(map[setKey]*pendingSet),
		done: make(map[setKey]*pendingSet)}
	if r.timeout == 0 {
		r.timeout = DefaultReassemblyTimeout
	}
	if r.maxSets == 0 {
		r.maxSets = DefaultReassemblyMaxSets
	}
	if r.maxOctets == 0 {
		r.maxOctets = DefaultReassemblyMaxOctets
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Add takes one part, read with ReadPart, under the caller's key. It returns the whole message when
// p completes one (at once for a part of a single-part message), nil while parts are missing, and nil
// with no error for an exact duplicate of a part held. The message owns its octets: p's may be reused
// once Add returns.
//
// A part whose Total is 0 or whose Seq is outside 1..Total is refused with a *FieldError naming the
// field that carried it, as is a message too large to ever fit MaxOctets (ESME_RINVMSGLEN).
func (r *Reassembler) Add(key string, p Part) (*Message, error) {
	if err := checkPart(p); err != nil {
		return nil, err
	}
	var other []byte
	if p.Seq == 1 {
		other = p.UDH.AppendOther(nil)
	}
	if p.Mode == 0 || p.Total == 1 {
		return &Message{Key: key, Source: p.Source, Destination: p.Destination, DataCoding: p.DataCoding, Mode: p.Mode,
			Ref: p.Ref, Total: 1, Header: other, Data: bytes.Clone(p.Data), Arrival: []uint8{1}}, nil
	}
	now := r.now()
	var evicted []Evicted
	r.mu.Lock()
	msg, err := r.add(key, p, other, now, &evicted)
	r.mu.Unlock()
	if r.onEvict != nil {
		for _, e := range evicted {
			r.onEvict(e)
		}
	}
	return msg, err
}

func (r *Reassembler) add(key string, p Part, other []byte, now time.Time, evicted *[]Evicted) (*Message, error) {
	r.expire(now, evicted)
	cost := len(p.Data) + len(other)
	k := setKey{key: key, src: p.Source, dst: p.Destination, mode: p.Mode, ref: p.Ref, total: p.Total}
	s := r.sets[k]
	if s != nil {
		held := s.parts[p.Seq-1]
		switch {
		case held != nil && bytes.Equal(held, p.Data):
			return nil, nil
		case held != nil || s.dataCoding != p.DataCoding:
			r.evict(s, EvictConflict, evicted)
			s = nil
		case s.octets+cost > r.maxOctets:
			r.evict(s, EvictTooLarge, evicted)
			return nil, r.tooLarge(p)
		}
	}
	if s == nil {
		if d := r.done[k]; d != nil {
			if d.sums[p.Seq-1] == maphash.Bytes(r.seed, p.Data) {
				return nil, nil // a late copy of a part of a message already returned
			}
			r.forget(d) // the reference is in use again
		}
		setCost := setOverhead + partSlotSize*int(p.Total) + len(key) + len(p.Source) + len(p.Destination)
		if setCost+cost > r.maxOctets {
			return nil, r.tooLarge(p)
		}
		for len(r.sets) >= r.maxSets {
			r.evict(r.pending.head, EvictFull, evicted)
		}
		k.key, k.src, k.dst = strings.Clone(key), strings.Clone(p.Source), strings.Clone(p.Destination)
		s = &pendingSet{k: k, dataCoding: p.DataCoding, first: now, parts: make([][]byte, p.Total), octets: setCost}
		r.sets[k] = s
		r.octets += setCost
		r.pending.push(s)
	}
	// Make room by forgetting completed messages, then dropping the oldest other incomplete ones; s
	// alone fits, as checked above.
	for r.octets+r.doneSize+cost > r.maxOctets && r.doneList.head != nil {
		r.forget(r.doneList.head)
	}
	for r.octets+cost > r.maxOctets {
		victim := r.pending.head
		if victim == s {
			victim = s.next
		}
		r.evict(victim, EvictFull, evicted)
	}
	s.parts[p.Seq-1] = bytes.Clone(p.Data)
	if s.parts[p.Seq-1] == nil {
		s.parts[p.Seq-1] = []byte{} // an empty part is still a part held
	}
	if p.Seq == 1 && len(other) > 0 {
		s.header = other
	}
	s.have++
	s.arrival = append(s.arrival, p.Seq)
	s.octets += cost
	r.octets += cost
	if s.have < len(s.parts) {
		return nil, nil
	}
	r.remove(s)
	r.remember(s, now)
	n := 0
	for _, b := range s.parts {
		n += len(b)
	}
	data := make([]byte, 0, n)
	for _, b := range s.parts {
		data = append(data, b...)
	}
	return &Message{Key: s.k.key, Source: s.k.src, Destination: s.k.dst, DataCoding: s.dataCoding, Mode: s.k.mode,
		Ref: s.k.ref, Total: s.k.total, Header: s.header, Data: data, Arrival: s.arrival}, nil
}

// Expire drops the incomplete messages whose time-out has passed, as Add does before each part, and
// returns how many. Call it from a ticker when parts may stop arriving altogether.
func (r *Reassembler) Expire() int {
	now := r.now()
	var evicted []Evicted
	r.mu.Lock()
	r.expire(now, &evicted)
	r.mu.Unlock()
	if r.onEvict != nil {
		for _, e := range evicted {
			r.onEvict(e)
		}
	}
	return len(evicted)
}

// Pending returns the number of incomplete messages held.
func (r *Reassembler) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets)
}

// Buffered returns the memory held by incomplete messages, counted as MaxOctets counts it (the
// remembered completed messages share the bound but are not included).
func (r *Reassembler) Buffered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.octets
}

func (r *Reassembler) expire(now time.Time, evicted *[]Evicted) {
	for r.pending.head != nil && now.Sub(r.pending.head.first) >= r.timeout {
		r.evict(r.pending.head, EvictExpired, evicted)
	}
	for r.doneList.head != nil && now.Sub(r.doneList.head.first) >= r.timeout {
		r.forget(r.doneList.head)
	}
}

func (r *Reassembler) evict(s *pendingSet, why EvictReason, evicted *[]Evicted) {
	r.remove(s)
	if r.onEvict == nil {
		return
	}
	*evicted = append(*evicted, Evicted{Key: s.k.key, Source: s.k.src, Destination: s.k.dst, DataCoding: s.dataCoding,
		Mode: s.k.mode, Ref: s.k.ref, Total: s.k.total, Parts: s.parts, First: s.first, Reason: why})
}

func (r *Reassembler) remove(s *pendingSet) {
	delete(r.sets, s.k)
	r.octets -= s.octets
	r.pending.remove(s)
}

// remember records a completed message so that late copies of its parts are recognised.
func (r *Reassembler) remember(s *pendingSet, now time.Time) {
	if len(r.done) >= r.maxSets {
		r.forget(r.doneList.head)
	}
	d := &pendingSet{k: s.k, first: now, sums: make([]uint64, len(s.parts)),
		octets: setOverhead + 8*len(s.parts) + len(s.k.key) + len(s.k.src) + len(s.k.dst)}
	for i, b := range s.parts {
		d.sums[i] = maphash.Bytes(r.seed, b)
	}
	r.done[d.k] = d
	r.doneList.push(d)
	r.doneSize += d.octets
	for r.octets+r.doneSize > r.maxOctets && r.doneList.head != nil {
		r.forget(r.doneList.head)
	}
}

func (r *Reassembler) forget(d *pendingSet) {
	delete(r.done, d.k)
	r.doneList.remove(d)
	r.doneSize -= d.octets
}

// What a set costs beyond its octets, counted against MaxOctets so that a peer announcing many
// 255-part messages cannot hold more memory than the bound says: the set itself with its map entry,
// and one slice header per announced part.
const (
	setOverhead  = int(unsafe.Sizeof(pendingSet{})) + 64
	partSlotSize = int(unsafe.Sizeof([]byte(nil)))
)

func (r *Reassembler) tooLarge(p Part) error {
	return fieldErr(p.Command, dataField(p), ESME_RINVMSGLEN,
		"message would hold more than the "+itoa(r.maxOctets)+" octets the reassembler buffers")
}

// dataField names the field that carried a part's user data.
func dataField(p Part) string {
	if p.Payload {
		return "message_payload"
	}
	return "short_message"
}

// checkPart refuses a Part whose numbering cannot be placed, naming the field it came from.
func checkPart(p Part) error {
	if p.Mode == 0 {
		return nil
	}
	totalField, seqField, st := dataField(p), dataField(p), ESME_RINVMSGLEN
	switch p.Mode {
	case SplitSAR:
		totalField, seqField, st = "sar_total_segments", "sar_segment_seqnum", ESME_RINVOPTPARAMVAL
	case SplitUDH8, SplitUDH16:
	default:
		return errors.New("pdu: Part: link mode " + p.Mode.String() + " is not one parts arrive in")
	}
	if p.Total == 0 {
		return fieldErr(p.Command, totalField, st, "total of parts is 0")
	}
	if p.Seq == 0 || p.Seq > p.Total {
		return fieldErr(p.Command, seqField, st, "sequence "+itoa(int(p.Seq))+" is outside 1.."+itoa(int(p.Total)))
	}
	if p.Mode == SplitUDH8 && p.Ref > 0xFF {
		return fieldErr(p.Command, dataField(p), st, "8-bit reference "+itoa(int(p.Ref))+" is above 255")
	}
	return nil
}
