package pdu

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunks is a stream whose octets arrive in chunks of the sizes given (the rest in one): a read
// returns what is left of the current chunk, at most len(p); then io.EOF.
type chunks struct {
	data  []byte
	sizes []int
	cur   int // what is left of the current chunk
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if c.cur == 0 {
		c.cur = len(c.data)
		if len(c.sizes) > 0 {
			c.cur = min(c.cur, c.sizes[0])
			c.sizes = c.sizes[1:]
		}
	}
	n := copy(p, c.data[:c.cur])
	c.data, c.cur = c.data[n:], c.cur-n
	return n, nil
}

// A Reader takes its big buffer when a read fills the small one and gives it back after a few reads
// that fit the small one: over a burst then a trickle, every frame comes out whole and in order, and
// the trickle ends with no big buffer held.
func TestReaderBufferFollowsTraffic(t *testing.T) {
	var stream []byte
	var seqs []uint32
	add := func(n int) int {
		size := 0
		for range n {
			seq := uint32(len(seqs) + 1)
			b, err := Append(nil, seq, ESME_ROK, &SubmitSM{SourceAddr: "12345", DestinationAddr: "447700900123", ShortMessage: bytes.Repeat([]byte("x"), 100)})
			if err != nil {
				t.Fatal(err)
			}
			stream = append(stream, b...)
			seqs = append(seqs, seq)
			size += len(b)
		}
		return size
	}
	burst := add(1000)
	var sizes []int
	for left := burst; left > 0; left -= 8000 {
		sizes = append(sizes, min(left, 8000))
	}
	one := len(stream) / 1000
	add(10)
	for range 10 {
		sizes = append(sizes, one) // one frame a read
	}
	src := &chunks{data: stream, sizes: sizes}
	r := NewReader(src, 0)
	sawBig := false
	for i, seq := range seqs {
		h, body, err := r.Read()
		if err != nil || h.Sequence != seq || len(body.(*SubmitSM).ShortMessage) != 100 {
			t.Fatalf("frame %d: %v seq %d, want seq %d", i, err, h.Sequence, seq)
		}
		sawBig = sawBig || r.big != nil
	}
	if !sawBig {
		t.Error("a burst of 8000-octet reads never took the big buffer")
	}
	if _, _, err := r.Read(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
	if r.big != nil {
		t.Error("after a trickle of one frame a read the big buffer is still held")
	}
}

// A frame cut off by the end of the stream is io.ErrUnexpectedEOF, in the header or in the body,
// whether the body is read through the buffer or straight into its own memory.
func TestReaderCutFrame(t *testing.T) {
	b, err := Append(nil, 1, ESME_ROK, &SubmitSM{ShortMessage: bytes.Repeat([]byte("y"), 200)})
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{5, HeaderLen + 3, len(b) - 1} {
		for _, chunk := range []int{1, 64, 4096} {
			r := NewReader(&chunks{data: b[:cut], sizes: []int{chunk, chunk, chunk, chunk, chunk, chunk}}, 0)
			if _, _, err := r.ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("cut at %d, reads of %d: %v, want io.ErrUnexpectedEOF", cut, chunk, err)
			}
		}
	}
}
