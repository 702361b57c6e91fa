package embedded

import (
	"github.com/smppgw/smppgw/store"
)

// A settle returns the updated message, so it used to look the record up (often in bbolt,
// once checkpointed), decode it, apply the update and encode it again. The stager keeps the
// decoded form of each accepted message instead, until its parts are settled: a settle takes
// it, applies the update and encodes it, without the lookup and the decode.
//
// A kept message is exactly what decoding its current record gives (keptCopy). Every write
// of a record other than accept's and settle's forgets it first (AddReceipt, ReplaceMessage
// and CancelMessage, the sweeper, UpdatePart): forgetting is always safe, it costs the next
// settle the slow path. The map lives in flusherState, touched by the stager only; what a
// batch keeps is forgotten again if the batch's ops are rolled back, and what it takes is
// gone either way, since a taken message may have been changed.

// keptMax bounds the bytes of kept messages: past it, settles take the slow path. It is a
// quarter of what queues keep of payloads (keepMax): a gateway's in-flight messages need far
// less, and a small map is a cheap one (measured: at 8 MiB, with accepts running ahead of
// settles, the map's lookups cost the stager about what the decode they spare did).
const keptMax = 2 << 20

// keptMsg is an accepted message's decoded form and the settles still expected for it.
type keptMsg struct {
	m    *store.Message
	left int // parts not settled yet
	size int // what it holds, roughly, counted against keptMax
}

// keptBlock holds a kept message of one part in one allocation, with room for its history
// and its bytes.
type keptBlock struct {
	k       keptMsg
	m       store.Message
	parts   [1]store.Part
	history [4]store.StatusChange
	buf     [192]byte
}

// keptCopy returns a copy of m that is what decoding AppendMessage(m) gives: its times in UTC
// without a monotonic reading (zero when they encode as 0), empty byte fields nil, and its
// part bytes its own (the caller's m may change). Strings are shared: they are immutable.
func keptCopy(m *store.Message) *keptMsg {
	var (
		k     *keptMsg
		c     *store.Message
		room  []store.StatusChange
		bytes []byte
	)
	n := 0
	for i := range m.Parts {
		n += len(m.Parts[i].ShortMessage) + len(m.Parts[i].TLVs)
	}
	if len(m.Parts) == 1 {
		blk := &keptBlock{}
		k, c, room = &blk.k, &blk.m, blk.history[:0]
		*c = *m
		c.Parts = blk.parts[:1:1]
		if n <= len(blk.buf) {
			bytes = blk.buf[:0:n]
		}
	} else {
		k, c = new(keptMsg), new(store.Message)
		*c = *m
		c.Parts = make([]store.Part, len(m.Parts))
	}
	if bytes == nil && n > 0 {
		bytes = make([]byte, 0, n)
	}
	if len(m.History) > cap(room) {
		room = make([]store.StatusChange, 0, len(m.History))
	}
	c.History = nil
	if len(m.History) > 0 {
		c.History = room[:len(m.History)]
		for i, h := range m.History {
			c.History[i] = store.StatusChange{State: h.State, At: store.RecordTime(h.At)}
		}
	}
	c.Validity, c.Schedule = store.RecordTime(m.Validity), store.RecordTime(m.Schedule)
	c.CreatedAt, c.UpdatedAt = store.RecordTime(m.CreatedAt), store.RecordTime(m.UpdatedAt)
	for i := range m.Parts {
		p := m.Parts[i]
		p.ShortMessage, bytes = ownBytes(bytes, p.ShortMessage)
		p.TLVs, bytes = ownBytes(bytes, p.TLVs)
		p.SubmittedAt, p.UpdatedAt = store.RecordTime(p.SubmittedAt), store.RecordTime(p.UpdatedAt)
		c.Parts[i] = p
	}
	*k = keptMsg{m: c, left: len(m.Parts), size: 512 + n + 256*len(m.Parts)}
	return k
}

// ownBytes copies v to the end of buf (which has room for it) and returns the copy, nil when v
// is empty (as the decoder gives), and what is left of buf.
func ownBytes(buf, v []byte) ([]byte, []byte) {
	if len(v) == 0 {
		return nil, buf
	}
	n := len(buf)
	buf = append(buf, v...)
	return buf[n:len(buf):len(buf)], buf[len(buf):]
}

// keep keeps k for message id, unless the kept messages are over keptMax; if this batch's ops
// are rolled back, endKept forgets it.
func (f *flusherState) keep(id string, k *keptMsg) {
	if f.keptBytes+k.size > keptMax {
		return
	}
	if f.kept == nil {
		f.kept = map[string]*keptMsg{}
	}
	if old, ok := f.kept[id]; ok {
		f.keptBytes -= old.size
	}
	f.kept[id] = k
	f.keptBytes += k.size
	f.keptAdded = append(f.keptAdded, id)
}

// keptFull reports whether the kept messages are near keptMax, so an accept need not copy its
// message. It is read by the accepting goroutines, hence atomic.
func (f *flusherState) keptFull() bool { return f.full.Load() }

// take returns the kept message id, nil if there is none, and forgets it: the caller may change it.
func (f *flusherState) take(id []byte) *keptMsg {
	k, ok := f.kept[string(id)]
	if !ok {
		return nil
	}
	delete(f.kept, string(id))
	f.keptBytes -= k.size
	return k
}

// forget drops the kept message id, before its record is written other than by a settle.
func (f *flusherState) forget(id []byte) { f.take(id) }

// endKept closes a batch's kept messages: rolled back, what it kept is forgotten.
func (f *flusherState) endKept(committed bool) {
	if !committed {
		for _, id := range f.keptAdded {
			if k, ok := f.kept[id]; ok {
				delete(f.kept, id)
				f.keptBytes -= k.size
			}
		}
	}
	clear(f.keptAdded) // the ids are the messages' strings: let them go
	f.keptAdded = f.keptAdded[:0]
	f.full.Store(f.keptBytes > keptMax-keptMax/16)
}
