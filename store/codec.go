package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/smppgw/smppgw/pdu"
)

// Records are written to disk and Redis in a compact binary form: a version byte, then the
// fields in a fixed order as uvarints and uvarint-length-prefixed bytes. It is several times
// smaller and faster than JSON on the accept path, and a version byte lets a later release
// read what an earlier one wrote. Decoders treat their input as untrusted: every length is
// checked against what is left, and a bad record is ErrCorrupt, never a panic.
//
// Encoders grow their buffer once, to a bound of the record's size, so encoding into nil costs
// one allocation. A decoded record costs one copy of its input, which its strings and byte
// slices share (each its own region, its capacity capped at its length), instead of one
// allocation per field: records never alias a bbolt page or a Redis reply buffer, and a
// caller may still change a part's bytes or append to them.

const (
	tagMessage  = 0x4d // 'M'
	tagReceipt  = 0x52 // 'R'
	tagPartTask = 0x50 // 'P'
	tagDelivery = 0x44 // 'D'
	tagLost     = 0x4c // 'L'
	codecV1     = 1
	// codecV2 adds the scheduled delivery time at the end of message and part task records; version 1
	// records (written before it) still decode, with no schedule.
	codecV2 = 2
	// codecV3 adds the accept time at the end of part task records (a part's age is bounded); version
	// 1 and 2 records still decode, with a zero accept time.
	codecV3 = 3
	// codecV4 adds the callback URL at the end of message records. A message without one is still
	// written as version 2, so releases before it read it; version 1 to 3 records decode with none.
	codecV4 = 4
	// codecV5 adds the origin after the callback URL. Only a message with an origin (OriginAPI: an
	// SMPP message's is "") is written as version 5; version 1 to 4 records decode with none (SMPP).
	codecV5 = 5
)

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime stores nanoseconds since the epoch, 0 for the zero time.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func appendAddr(b []byte, a Address) []byte {
	b = append(b, a.TON, a.NPI)
	return appendStr(b, a.Addr)
}

// varMax bounds a uvarint's or varint's encoded length.
const varMax = binary.MaxVarintLen64

// reader decodes with a sticky error so field lists read straight down.
type reader struct {
	b   []byte
	err error
}

// newReader reads a private copy of b: the decoded strings and byte slices point into it.
func newReader(b []byte) reader {
	return reader{b: slices.Clone(b)}
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
}

func (r *reader) u8() uint8 {
	if r.err != nil || len(r.b) < 1 {
		r.fail("short record")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || (n > 1 && r.b[n-1] == 0) { // a trailing zero byte is a second spelling
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 || (n > 1 && r.b[n-1] == 0) {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// u32 reads a uvarint that must fit 32 bits.
func (r *reader) u32() uint32 {
	v := r.uvarint()
	if v > 1<<32-1 {
		r.fail("value out of range")
		return 0
	}
	return uint32(v)
}

// count reads a uvarint count of items of at least one byte each, bounded by max.
func (r *reader) count(max int) int {
	v := r.uvarint()
	if v > uint64(len(r.b)) || v > uint64(max) {
		r.fail("count out of range")
		return 0
	}
	return int(v)
}

// bytes returns the next field, in the reader's own copy of the record, its capacity capped so
// an append copies rather than overwrites the next field.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("length out of range")
		return nil
	}
	if n == 0 {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail("length out of range")
		return ""
	}
	if n == 0 {
		return ""
	}
	// The reader's copy is never written to through a string's region, so the string is
	// immutable as Go requires; it shares the copy instead of allocating one of its own.
	v := unsafe.String(&r.b[0], n)
	r.b = r.b[n:]
	return v
}

func (r *reader) time() time.Time { return timeOfNanos(r.varint()) }

// timeOfNanos is the time a record's nanoseconds stand for: appendTime's 0 is the zero time.
func timeOfNanos(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

// RecordTime is t as a record gives it back (appendTime, then a decode): UTC, no monotonic
// reading, the zero time for the zero time.
func RecordTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return timeOfNanos(t.UnixNano())
}

func (r *reader) addr() Address {
	return Address{TON: r.u8(), NPI: r.u8(), Addr: r.str()}
}

func (r *reader) state() pdu.MessageState { return pdu.MessageState(r.u8()) }

// header checks the tag and version byte.
func (r *reader) header(tag byte, what string) {
	r.headerUpTo(tag, codecV1, what)
}

// headerUpTo reads a record header whose version may be 1 to max, and returns the version.
func (r *reader) headerUpTo(tag, max byte, what string) byte {
	if t := r.u8(); r.err == nil && t != tag {
		r.fail(what + ": wrong record tag")
	}
	v := r.u8()
	if r.err == nil && (v < codecV1 || v > max) {
		r.fail(fmt.Sprintf("%s: unknown version %d", what, v))
	}
	return v
}

// end fails when bytes are left over: a record is exactly its fields.
func (r *reader) end(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(what + ": trailing bytes")
	}
	return r.err
}

// AppendMessage appends the encoding of m to b.
func AppendMessage(b []byte, m *Message) []byte {
	b = slices.Grow(b, messageBound(m))
	version := byte(codecV2)
	switch {
	case m.Origin != "":
		version = codecV5
	case m.CallbackURL != "":
		version = codecV4
	}
	b = append(b, tagMessage, version)
	b = appendStr(b, m.ID)
	b = appendStr(b, m.Account)
	b = appendStr(b, m.ServiceType)
	b = appendAddr(b, m.Source)
	b = appendAddr(b, m.Destination)
	b = append(b, m.ESMClass, m.ProtocolID, m.PriorityFlag, m.RegisteredDelivery, m.DataCoding, uint8(m.Status))
	b = appendTime(b, m.Validity)
	b = appendStr(b, m.ClientRef)
	b = appendStr(b, m.Upstream)
	b = appendTime(b, m.CreatedAt)
	b = appendTime(b, m.UpdatedAt)
	b = binary.AppendUvarint(b, uint64(len(m.History)))
	for _, h := range m.History {
		b = append(b, uint8(h.State))
		b = appendTime(b, h.At)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Parts)))
	for i := range m.Parts {
		p := &m.Parts[i]
		b = append(b, p.ESMClass, uint8(p.Status))
		b = appendBytes(b, p.ShortMessage)
		b = appendBytes(b, p.TLVs)
		b = appendStr(b, p.Upstream)
		b = appendStr(b, p.UpstreamID)
		b = binary.AppendUvarint(b, uint64(p.Error))
		b = appendTime(b, p.SubmittedAt)
		b = appendTime(b, p.UpdatedAt)
	}
	b = appendTime(b, m.Schedule)
	if version >= codecV4 {
		b = appendStr(b, m.CallbackURL)
	}
	if version >= codecV5 {
		b = appendStr(b, m.Origin)
	}
	return b
}

// messageBound is at least the encoded length of m.
func messageBound(m *Message) int {
	n := 2 + 14*varMax + len(m.ID) + len(m.Account) + len(m.ServiceType) + len(m.ClientRef) + len(m.CallbackURL) + len(m.Origin) + len(m.Upstream) +
		2*2 + len(m.Source.Addr) + len(m.Destination.Addr) + 6 + len(m.History)*(1+varMax)
	for i := range m.Parts {
		p := &m.Parts[i]
		n += 2 + 7*varMax + len(p.ShortMessage) + len(p.TLVs) + len(p.Upstream) + len(p.UpstreamID)
	}
	return n
}

// DecodeMessage decodes a record written by AppendMessage.
func DecodeMessage(b []byte) (*Message, error) {
	// A small record is copied into the block its message will be decoded into (one allocation
	// for all); a larger one into a copy of its own.
	var blk *messageBlockRec
	var r reader
	if len(b) <= len(messageBlockRec{}.buf) {
		blk = new(messageBlockRec)
		r = reader{b: blk.buf[:copy(blk.buf[:], b)]}
	} else {
		r = newReader(b)
	}
	version := r.headerUpTo(tagMessage, codecV5, "message")
	if version == codecV3 { // a part task version only: no message was ever written as 3
		r.fail("message: unknown version 3")
	}
	// Into the block straight away when there is one; else onto the stack, and copied into the
	// block chosen once the number of parts is known.
	var (
		hdr    Message
		hist   [historyRoom]StatusChange
		big    []StatusChange // a history longer than the room kept for it
		hdrTo  = &hdr
		histTo = &hist
	)
	if blk != nil {
		hdrTo, histTo = &blk.m, &blk.history
	}
	*hdrTo = Message{
		ID: r.str(), Account: r.str(), ServiceType: r.str(), Source: r.addr(), Destination: r.addr(),
		ESMClass: r.u8(), ProtocolID: r.u8(), PriorityFlag: r.u8(), RegisteredDelivery: r.u8(),
		DataCoding: r.u8(), Status: r.state(), Validity: r.time(), ClientRef: r.str(),
		Upstream: r.str(), CreatedAt: r.time(), UpdatedAt: r.time(),
	}
	nh := r.count(1 << 16)
	if nh > historyRoom {
		big = make([]StatusChange, nh)
	}
	for i := range nh {
		c := StatusChange{State: r.state(), At: r.time()}
		if big != nil {
			big[i] = c
		} else {
			histTo[i] = c
		}
	}
	// The message, its history and (when it has one) its part in one allocation.
	var m *Message
	var room []StatusChange
	switch np := r.count(MaxParts); {
	case blk != nil:
		m, room = &blk.m, blk.history[:]
		if np == 1 {
			m.Parts = blk.parts[:1:1]
		} else if np > 0 {
			m.Parts = make([]Part, np)
		}
	case np == 1:
		blk := &messageBlock1{m: hdr, history: hist}
		m, room = &blk.m, blk.history[:]
		m.Parts = blk.parts[:1:1]
	default:
		blk := &messageBlock{m: hdr, history: hist}
		m, room = &blk.m, blk.history[:]
		if np > 0 {
			m.Parts = make([]Part, np)
		}
	}
	switch {
	case big != nil:
		m.History = big
	case nh > 0:
		m.History = room[:nh] // with room to append the changes still to come
	}
	for i := range m.Parts {
		m.Parts[i] = Part{
			ESMClass: r.u8(), Status: r.state(), ShortMessage: r.bytes(), TLVs: r.bytes(),
			Upstream: r.str(), UpstreamID: r.str(), Error: r.u32(), SubmittedAt: r.time(),
			UpdatedAt: r.time(),
		}
	}
	if version >= codecV2 {
		m.Schedule = r.time()
	}
	if version >= codecV4 {
		m.CallbackURL = r.str()
	}
	if version >= codecV5 {
		m.Origin = r.str()
	}
	if err := r.end("message"); err != nil {
		return nil, err
	}
	return m, nil
}

// A decoded message is allocated with room for its history, and its part when it has one, so
// decoding most costs one allocation for all three (and one for the copy of its record) where
// it cost three. A message's life is a few status changes: accepted, en route, delivered.
const historyRoom = 4

type messageBlock struct {
	m       Message
	history [historyRoom]StatusChange
}

type messageBlock1 struct {
	m       Message
	parts   [1]Part
	history [historyRoom]StatusChange
}

// messageBlockRec is messageBlock1 with the copy of its record, when it is small: 896 octets in all
// with the 8-octet header the allocator puts before an object of pointers over 512 octets, so
// that it fills one of the allocator's size classes.
type messageBlockRec struct {
	messageBlock1
	buf [896 - 8 - unsafe.Sizeof(messageBlock1{})]byte
}

// AppendReceipt appends the encoding of rc to b.
func AppendReceipt(b []byte, rc *Receipt) []byte {
	b = append(b, tagReceipt, codecV1)
	b = appendStr(b, rc.MessageID)
	b = binary.AppendUvarint(b, uint64(rc.Part))
	b = appendStr(b, rc.Upstream)
	b = appendStr(b, rc.UpstreamID)
	b = append(b, uint8(rc.State))
	b = binary.AppendUvarint(b, uint64(rc.Error))
	b = appendTime(b, rc.Submitted)
	b = appendTime(b, rc.Done)
	b = appendTime(b, rc.Received)
	return appendBytes(b, rc.Text)
}

// DecodeReceipt decodes a record written by AppendReceipt.
func DecodeReceipt(b []byte) (*Receipt, error) {
	r := newReader(b)
	r.header(tagReceipt, "receipt")
	rc := &Receipt{MessageID: r.str()}
	if p := r.uvarint(); p >= MaxParts {
		r.fail("receipt: part out of range")
	} else {
		rc.Part = int(p)
	}
	rc.Upstream, rc.UpstreamID, rc.State, rc.Error = r.str(), r.str(), r.state(), r.u32()
	rc.Submitted, rc.Done, rc.Received, rc.Text = r.time(), r.time(), r.time(), r.bytes()
	if err := r.end("receipt"); err != nil {
		return nil, err
	}
	return rc, nil
}

// AppendPartTask appends the queue payload of t (not its lease or attempt count) to b.
func AppendPartTask(b []byte, t *PartTask) []byte {
	b = slices.Grow(b, 2+12*varMax+len(t.MessageID)+len(t.Account)+len(t.ServiceType)+2*2+len(t.Source.Addr)+
		len(t.Destination.Addr)+5+len(t.ShortMessage)+len(t.TLVs))
	b = append(b, tagPartTask, codecV3)
	b = appendStr(b, t.MessageID)
	b = binary.AppendUvarint(b, uint64(t.Part))
	b = binary.AppendUvarint(b, uint64(t.Parts))
	b = appendStr(b, t.Account)
	b = appendStr(b, t.ServiceType)
	b = appendAddr(b, t.Source)
	b = appendAddr(b, t.Destination)
	b = append(b, t.ESMClass, t.ProtocolID, t.PriorityFlag, t.RegisteredDelivery, t.DataCoding)
	b = appendTime(b, t.Validity)
	b = appendBytes(b, t.ShortMessage)
	b = appendBytes(b, t.TLVs)
	b = appendTime(b, t.Schedule)
	return appendTime(b, t.Accepted)
}

// A decoded part task shares one allocation with its copy of the payload when the payload is
// small, as a text message's is: one allocation where it took two. Two sizes, so that a short
// payload does not pay for a long one's room: 384 and 512 octets in all, two of the allocator's
// size classes.
type (
	partTaskBlockS struct {
		t   PartTask
		buf [384 - unsafe.Sizeof(PartTask{})]byte
	}
	partTaskBlockL struct {
		t   PartTask
		buf [512 - unsafe.Sizeof(PartTask{})]byte
	}
)

// DecodePartTask decodes a payload written by AppendPartTask.
func DecodePartTask(b []byte) (*PartTask, error) {
	var t *PartTask
	var r reader
	switch {
	case len(b) <= len(partTaskBlockS{}.buf):
		blk := new(partTaskBlockS)
		t, r = &blk.t, reader{b: blk.buf[:copy(blk.buf[:], b)]}
	case len(b) <= len(partTaskBlockL{}.buf):
		blk := new(partTaskBlockL)
		t, r = &blk.t, reader{b: blk.buf[:copy(blk.buf[:], b)]}
	default:
		t, r = new(PartTask), newReader(b)
	}
	version := r.headerUpTo(tagPartTask, codecV3, "part task")
	t.MessageID = r.str()
	part, parts := r.uvarint(), r.uvarint()
	if part >= MaxParts || parts > MaxParts || part >= parts {
		r.fail("part task: part out of range")
	}
	t.Part, t.Parts = int(part), int(parts)
	t.Account, t.ServiceType, t.Source, t.Destination = r.str(), r.str(), r.addr(), r.addr()
	t.ESMClass, t.ProtocolID, t.PriorityFlag, t.RegisteredDelivery, t.DataCoding = r.u8(), r.u8(), r.u8(), r.u8(), r.u8()
	t.Validity, t.ShortMessage, t.TLVs = r.time(), r.bytes(), r.bytes()
	if version >= codecV2 {
		t.Schedule = r.time()
	}
	if version >= codecV3 {
		t.Accepted = r.time()
	}
	if err := r.end("part task"); err != nil {
		return nil, err
	}
	return t, nil
}

// AppendDelivery appends the queue payload of d (not its lease or attempt count) to b.
func AppendDelivery(b []byte, d *Delivery) []byte {
	b = append(b, tagDelivery, codecV1)
	b = appendStr(b, d.Account)
	b = append(b, uint8(d.Kind))
	b = appendStr(b, d.MessageID)
	b = appendAddr(b, d.Source)
	b = appendAddr(b, d.Destination)
	b = append(b, d.ESMClass, d.ProtocolID, d.DataCoding)
	b = appendBytes(b, d.ShortMessage)
	b = appendBytes(b, d.TLVs)
	return appendTime(b, d.CreatedAt)
}

// DecodeDelivery decodes a payload written by AppendDelivery.
func DecodeDelivery(b []byte) (*Delivery, error) {
	r := newReader(b)
	r.header(tagDelivery, "delivery")
	d := &Delivery{Account: r.str(), Kind: DeliveryKind(r.u8()), MessageID: r.str(), Source: r.addr(), Destination: r.addr()}
	d.ESMClass, d.ProtocolID, d.DataCoding = r.u8(), r.u8(), r.u8()
	d.ShortMessage, d.TLVs, d.CreatedAt = r.bytes(), r.bytes(), r.time()
	if err := r.end("delivery"); err != nil {
		return nil, err
	}
	return d, nil
}

// AppendLostPDU appends the encoding of l to b.
func AppendLostPDU(b []byte, l *LostPDU) []byte {
	b = append(b, tagLost, codecV1, uint8(l.Lease.Queue.Kind))
	b = appendStr(b, l.Lease.Queue.Name)
	b = appendStr(b, l.Lease.Entry)
	b = appendStr(b, l.Session)
	b = binary.AppendUvarint(b, uint64(l.CommandID))
	b = binary.AppendUvarint(b, uint64(l.SequenceNumber))
	return appendTime(b, l.At)
}

// DecodeLostPDU decodes a record written by AppendLostPDU.
func DecodeLostPDU(b []byte) (*LostPDU, error) {
	r := newReader(b)
	r.header(tagLost, "lost pdu")
	l := &LostPDU{}
	l.Lease.Queue.Kind = QueueKind(r.u8())
	l.Lease.Queue.Name, l.Lease.Entry, l.Session = r.str(), r.str(), r.str()
	l.CommandID, l.SequenceNumber, l.At = r.u32(), r.u32(), r.time()
	if err := r.end("lost pdu"); err != nil {
		return nil, err
	}
	return l, nil
}
