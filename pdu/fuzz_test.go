package pdu

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/smppgw/smppgw/pdu/internal/hexfile"
)

// seedFrames returns every sample PDU and every golden frame, the seed corpus of the fuzz targets.
func seedFrames(f *testing.F) [][]byte {
	var frames [][]byte
	for i, b := range samples() {
		w, err := Append(nil, uint32(i+1), ESME_ROK, b)
		if err != nil {
			f.Fatal(err)
		}
		frames = append(frames, w)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.hex"))
	for _, name := range files {
		w, err := hexfile.Read(name)
		if err != nil {
			f.Fatal(err)
		}
		for len(w) >= HeaderLen {
			n := int(ParseHeader(w).Length)
			frames = append(frames, w[:n])
			w = w[n:]
		}
	}
	return frames
}

// checkStable asserts that a decoded body re-encodes and decodes again to the same octets.
func checkStable(t *testing.T, h Header, b Body) {
	out, err := Append(nil, h.Sequence, h.Status, b)
	if err != nil {
		t.Fatalf("%s decoded but does not re-encode: %v", h.ID, err)
	}
	h2 := ParseHeader(out)
	b2, err := Decode(h2, out[HeaderLen:])
	if err != nil {
		t.Fatalf("%s re-encoded octets do not decode: %v", h.ID, err)
	}
	out2, err := Append(nil, h2.Sequence, h2.Status, b2)
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("%s not stable: %v\n% x\n% x", h.ID, err, out, out2)
	}
}

// FuzzReadFrame feeds arbitrary streams to the Reader: it must return frames or errors, never panic,
// never allocate past the length limit, and every frame it decodes must re-encode stably.
func FuzzReadFrame(f *testing.F) {
	all := []byte{}
	for _, w := range seedFrames(f) {
		f.Add(w)
		all = append(all, w...)
	}
	f.Add(all)
	f.Add([]byte{0, 0, 0, 15, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := NewReader(bytes.NewReader(stream), 4096)
		for range 64 {
			h, b, err := r.Read()
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if errors.Is(err, ErrLength) {
				if h.Length >= HeaderLen && h.Length <= 4096 {
					t.Fatalf("length %d refused", h.Length)
				}
				return // the stream cannot be trusted past a bad length
			}
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Status == ESME_ROK {
					t.Fatalf("decode error without a status: %v", err)
				}
				continue
			}
			checkStable(t, h, b)
		}
	})
}

// FuzzDecode drives every PDU decoder: the command id picks the body type, the octets are arbitrary.
func FuzzDecode(f *testing.F) {
	for _, w := range seedFrames(f) {
		h := ParseHeader(w)
		f.Add(uint32(h.ID), uint32(h.Status), w[HeaderLen:])
	}
	f.Fuzz(func(t *testing.T, id, status uint32, body []byte) {
		h := Header{Length: uint32(HeaderLen + len(body)), ID: CommandID(id), Status: CommandStatus(status), Sequence: 1}
		b, err := Decode(h, body)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Status == ESME_ROK {
				t.Fatalf("error does not name a field and a status: %v", err)
			}
			return
		}
		checkStable(t, h, b)
	})
}

// FuzzOptions checks the TLV accessors on arbitrary octets: no panic, and Set then Get returns the value.
func FuzzOptions(f *testing.F) {
	f.Add([]byte{0x02, 0x0c, 0x00, 0x02, 0xbe, 0xef}, uint16(0x020c), []byte{1, 2})
	f.Add([]byte{0x14, 0x00, 0x00, 0x01}, uint16(0x001e), []byte("abc\x00"))
	f.Fuzz(func(t *testing.T, raw []byte, tag uint16, v []byte) {
		o := Options(raw)
		for range o.All() {
		}
		o.Uint(Tag(tag))
		o.CString(Tag(tag))
		if o.check(SubmitSMID) != nil {
			return
		}
		// Set appends like append does, into spare capacity v may share: compare with a copy.
		want := bytes.Clone(v)
		o.Set(Tag(tag), v)
		got, ok := o.Get(Tag(tag))
		if len(want) <= 0xFFFF && (!ok || !bytes.Equal(got, want)) {
			t.Fatalf("Set/Get: got % x %v, want % x", got, ok, want)
		}
		o.Delete(Tag(tag))
		if o.Has(Tag(tag)) {
			t.Fatal("Delete left the tag")
		}
	})
}
