package embedded

import (
	"encoding/binary"
	"testing"
	"time"
)

// BenchmarkMerge moves write sets of 256 keys per bucket, as a W=256 batch makes, into a
// memtable: rising keys (time index, queue sequences) and scattered ones (message ids).
func BenchmarkMerge(b *testing.B) {
	ws := newWriteSet()
	active := newMemtable()
	b.ReportAllocs()
	var n uint64
	for i := 0; i < b.N; i++ {
		up := ws.bucket("idx", bIdx, nil, true)
		scattered := ws.bucket("msg", bMsg, nil, true)
		for range 256 {
			n++
			up.set(kv{k: binary.BigEndian.AppendUint64(nil, n), v: []byte("v")})
			scattered.set(kv{k: binary.BigEndian.AppendUint64(nil, n*0x9E3779B97F4A7C15), v: []byte("v")})
		}
		active.merge(ws, uint64(i+1), time.Now())
		ws.reset()
		if active.size > 16<<20 {
			active = newMemtable()
		}
	}
}
