package pdu

import (
	"errors"
	"io"
	"sync"
)

// DefaultMaxLength is the command_length a Reader accepts when none is set: room for a full 64 KiB
// message_payload TLV plus every mandatory field of data_sm, and far below what would let a peer make
// us allocate without limit.
const DefaultMaxLength = 70000

// slabSize is the most a Reader allocates at once to carve frame bodies from; bodies larger than
// slabSize/8 get an allocation of their own. Its first slab is minSlab and each next one twice the
// last, so that a connection that carries little (a bind, then enquire_link) holds little.
const (
	slabSize = 32 << 10
	minSlab  = 256
)

// A Reader reads into a small buffer of its own while the stream trickles, and into a big one taken
// from a pool once a read fills the small one; the big one goes back to the pool when a read fits
// the small one again. An idle connection holds no big buffer.
const (
	smallReadBuf = 512
	bigReadBuf   = 64 << 10
	trickleReads = 4
)

var bigReadBufs = sync.Pool{New: func() any { b := make([]byte, bigReadBuf); return &b }}

// Reader reads PDUs from a byte stream, one frame at a time.
//
// Every body it returns is memory of its own, never overwritten by later reads, so decoded PDUs may
// alias it safely. Small bodies are carved from a shared slab to spare the allocator: a body keeps its
// slab (1 to 32 KiB) alive for as long as it is referenced.
type Reader struct {
	rd       io.Reader
	buf      []byte  // small[:] or *big; buf[r:w] is read and not yet consumed
	big      *[]byte // from bigReadBufs, while in use
	r, w     int
	last     int   // octets the last fill read
	trickle  int   // fills in a row into the big buffer that would have fit the small one
	err      error // met by a fill that also read octets; returned by the next
	max      uint32
	hdr      [HeaderLen]byte
	slab     []byte
	nextSlab int // size of the next slab
	small    [smallReadBuf]byte
}

// NewReader returns a Reader that refuses frames whose command_length exceeds maxLength (0 means
// DefaultMaxLength). r is buffered by the Reader.
func NewReader(r io.Reader, maxLength int) *Reader {
	if maxLength <= 0 {
		maxLength = DefaultMaxLength
	}
	rd := &Reader{rd: r, max: uint32(maxLength), nextSlab: minSlab}
	rd.buf = rd.small[:]
	return rd
}

// fill reads what the stream has into the buffer, which is empty, choosing the buffer first: the big
// one after a read that filled the small one, the small one after a few reads in a row that would
// have fit it (a few, so that a stream between the two sizes does not swap at every read).
func (r *Reader) fill() error {
	if r.err != nil {
		err := r.err
		r.err = nil
		return err
	}
	r.r, r.w = 0, 0
	if r.big != nil && r.last <= smallReadBuf {
		r.trickle++
	} else {
		r.trickle = 0
	}
	switch {
	case r.big == nil && r.last == len(r.buf):
		r.big = bigReadBufs.Get().(*[]byte)
		r.buf = *r.big
	case r.big != nil && r.trickle >= trickleReads:
		r.trickle = 0
		bigReadBufs.Put(r.big)
		r.big, r.buf = nil, r.small[:]
		// The burst is over: the next slab starts small again.
		r.slab, r.nextSlab = nil, minSlab
	}
	for range 100 {
		n, err := r.rd.Read(r.buf)
		if n < 0 || n > len(r.buf) {
			return errors.New("pdu: reader returned an impossible count")
		}
		r.w, r.last = n, n
		if n > 0 {
			r.err = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// readFull fills p as io.ReadFull does: io.EOF if the stream ended before any of it,
// io.ErrUnexpectedEOF if it ended within. What is larger than the buffer is read straight into p.
func (r *Reader) readFull(p []byte) error {
	n := 0
	for n < len(p) {
		if r.r < r.w {
			c := copy(p[n:], r.buf[r.r:r.w])
			r.r += c
			n += c
			continue
		}
		var err error
		if len(p)-n >= len(r.buf) && r.err == nil {
			var m int
			m, err = r.rd.Read(p[n:])
			if m < 0 || m > len(p)-n {
				return errors.New("pdu: reader returned an impossible count")
			}
			n += m
			if n == len(p) {
				r.err = err
				return nil
			}
		} else {
			err = r.fill()
		}
		if err != nil {
			if err == io.EOF && n > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// Buffered returns how many octets are buffered and can be read without blocking; a session uses it to
// know when a burst of PDUs has been read.
func (r *Reader) Buffered() int { return r.w - r.r }

// ReadFrame reads one PDU's header and body octets. A command_length under 16 or over the maximum is
// refused with a *FieldError wrapping ErrLength (status ESME_RINVCMDLEN) before any of the body is read;
// the stream cannot be trusted after that and should be closed once the peer has been answered. A body
// cut off by the end of the stream gives io.ErrUnexpectedEOF; a clean end between frames gives io.EOF.
func (r *Reader) ReadFrame() (Header, []byte, error) {
	if err := r.readFull(r.hdr[:]); err != nil {
		return Header{}, nil, err
	}
	h := ParseHeader(r.hdr[:])
	if h.Length < HeaderLen || h.Length > r.max {
		reason := "command_length " + itoa(int(h.Length)) + " is under the 16-octet header"
		if h.Length >= HeaderLen {
			reason = "command_length " + itoa(int(h.Length)) + " exceeds the maximum of " + itoa(int(r.max))
		}
		return h, nil, &FieldError{Command: h.ID, Field: "command_length", Status: ESME_RINVCMDLEN, Reason: reason, Err: ErrLength}
	}
	n := int(h.Length) - HeaderLen
	if n == 0 {
		return h, nil, nil
	}
	body := r.alloc(n)
	if err := r.readFull(body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, body, nil
}

func (r *Reader) alloc(n int) []byte {
	if n > slabSize/8 {
		return make([]byte, n)
	}
	if len(r.slab) < n {
		size := max(r.nextSlab, n)
		r.slab = make([]byte, size)
		r.nextSlab = min(2*size, slabSize)
	}
	b := r.slab[:n:n]
	r.slab = r.slab[n:]
	return b
}

// Read reads one frame and decodes its body. When the frame was read but its body could not be
// decoded, the header is returned with the error so that the peer can be answered (a response with the
// error's status, or generic_nack) under the right sequence number.
func (r *Reader) Read() (Header, Body, error) {
	h, raw, err := r.ReadFrame()
	if err != nil {
		return h, nil, err
	}
	b, err := Decode(h, raw)
	return h, b, err
}
