package pdu

import (
	"bufio"
	"errors"
	"io"
)

// DefaultMaxLength is the command_length a Reader accepts when none is set: room for a full 64 KiB
// message_payload TLV plus every mandatory field of data_sm, and far below what would let a peer make
// us allocate without limit.
const DefaultMaxLength = 70000

// slabSize is how much a Reader allocates at once to carve frame bodies from; bodies larger than
// slabSize/8 get an allocation of their own.
const slabSize = 32 << 10

// Reader reads PDUs from a byte stream, one frame at a time.
//
// Every body it returns is memory of its own, never overwritten by later reads, so decoded PDUs may
// alias it safely. Small bodies are carved from a shared slab to spare the allocator: a body keeps its
// slab (32 KiB) alive for as long as it is referenced.
type Reader struct {
	br   *bufio.Reader
	max  uint32
	hdr  [HeaderLen]byte
	slab []byte
}

// NewReader returns a Reader that refuses frames whose command_length exceeds maxLength (0 means
// DefaultMaxLength). r is buffered unless it already is a *bufio.Reader.
func NewReader(r io.Reader, maxLength int) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	if maxLength <= 0 {
		maxLength = DefaultMaxLength
	}
	return &Reader{br: br, max: uint32(maxLength)}
}

// Buffered returns how many octets are buffered and can be read without blocking; a session uses it to
// know when a burst of PDUs has been read.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReadFrame reads one PDU's header and body octets. A command_length under 16 or over the maximum is
// refused with a *FieldError wrapping ErrLength (status ESME_RINVCMDLEN) before any of the body is read;
// the stream cannot be trusted after that and should be closed once the peer has been answered. A body
// cut off by the end of the stream gives io.ErrUnexpectedEOF; a clean end between frames gives io.EOF.
func (r *Reader) ReadFrame() (Header, []byte, error) {
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
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
	if _, err := io.ReadFull(r.br, body); err != nil {
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
		r.slab = make([]byte, slabSize)
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
