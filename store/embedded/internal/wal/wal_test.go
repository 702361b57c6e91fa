package wal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func body(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 10+i) }

func appendN(t *testing.T, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		lsn, err := l.Append(body(i))
		if err != nil {
			t.Fatal(err)
		}
		if lsn != uint64(i) {
			t.Fatalf("record %d got LSN %d", i, lsn)
		}
	}
}

// replayAll returns the LSNs replayed after after, checking each body.
func replayAll(t *testing.T, dir string, after uint64) ([]uint64, ReplayStats) {
	t.Helper()
	var got []uint64
	st, err := Replay(dir, after, func(lsn uint64, b []byte) error {
		if !bytes.Equal(b, body(int(lsn))) {
			t.Errorf("record %d: body %x", lsn, b)
		}
		got = append(got, lsn)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, st
}

func seq(from, to int) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, uint64(i))
	}
	return out
}

func TestAppendReplay(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, 50)
	l.Close(false)
	got, st := replayAll(t, dir, 0)
	if !slices.Equal(got, seq(1, 50)) || st.Last != 50 || st.Applied != 50 || st.Torn != 0 {
		t.Fatalf("replayed %v, %+v", got, st)
	}
}

// lastSegment returns the path of the newest segment.
func lastSegment(t *testing.T, dir string) string {
	segs, err := Segments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatal(segs, err)
	}
	return filepath.Join(dir, SegmentName(segs[len(segs)-1]))
}

// recordEnd is where record i (1-based, of body(i)) ends in a segment starting at LSN 1.
func recordEnd(i int) int64 {
	var off int64
	for j := 1; j <= i; j++ {
		off += headerLen + lsnLen + int64(len(body(j)))
	}
	return off
}

// TestTornTail cuts the last record short at every length: replay stops before it, and the
// zeros reserved after the records are read as a clean end.
func TestTornTail(t *testing.T) {
	full := recordEnd(5)
	for cut := recordEnd(4) + 1; cut < full; cut++ {
		dir := t.TempDir()
		l, _ := Open(dir, 1, 1<<20)
		appendN(t, l, 1, 5)
		l.Close(false)
		path := lastSegment(t, dir)
		// The segment is zero-filled past the records: zero the cut part too, then truncate
		// the file there, so both a zeroed and a short tail are seen.
		f, _ := os.OpenFile(path, os.O_RDWR, 0)
		f.WriteAt(make([]byte, full-cut), cut)
		f.Close()
		got, st := replayAll(t, dir, 0)
		if !slices.Equal(got, seq(1, 4)) {
			t.Fatalf("cut at %d: replayed %v", cut, got)
		}
		_ = st
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		got, st = replayAll(t, dir, 0)
		if !slices.Equal(got, seq(1, 4)) || st.Torn != 1 {
			t.Fatalf("truncated at %d: replayed %v, %+v", cut, got, st)
		}
	}
}

// TestBadCRCMidFile flips one byte of record 3 of 6: replay of that segment stops before it,
// and the next segment (as after a failed write) is still replayed.
func TestBadCRCMidFile(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 1, 1<<20)
	appendN(t, l, 1, 6)
	path := lastSegment(t, dir)
	if _, err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 7, 2)
	l.Close(false)
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	if _, err := f.WriteAt([]byte{0xff}, recordEnd(2)+headerLen+lsnLen+3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, st := replayAll(t, dir, 0)
	if !slices.Equal(got, []uint64{1, 2, 7, 8}) || st.Torn != 1 || st.Last != 8 {
		t.Fatalf("replayed %v, %+v", got, st)
	}
}

// TestSegmentRollover: segments roll past maxSeg, are named by their first LSN, and replay
// reads them all in order.
func TestSegmentRollover(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 1, 200) // a record of body(i) is 26+i bytes: a few per segment
	appendN(t, l, 1, 40)
	l.Close(false)
	segs, _ := Segments(dir)
	if len(segs) < 5 || segs[0] != 1 {
		t.Fatalf("segments %v", segs)
	}
	for _, s := range segs[1:] {
		// Each segment starts right after the record that passed maxSeg in the one before.
		if s < 2 || s > 40 {
			t.Fatalf("segment %d of %v", s, segs)
		}
	}
	got, _ := replayAll(t, dir, 0)
	if !slices.Equal(got, seq(1, 40)) {
		t.Fatalf("replayed %v", got)
	}
}

// TestReplayAfterPosition: records at or below a checkpoint's position are skipped, in every
// segment, and a new log continues the LSNs.
func TestReplayAfterPosition(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 1, 1<<20)
	appendN(t, l, 1, 10)
	l.Roll()
	appendN(t, l, 11, 10)
	l.Close(false)
	got, st := replayAll(t, dir, 14)
	if !slices.Equal(got, seq(15, 20)) || st.Last != 20 || st.Applied != 6 {
		t.Fatalf("replayed %v, %+v", got, st)
	}
	got, st = replayAll(t, dir, 25)
	if len(got) != 0 || st.Last != 25 {
		t.Fatalf("replayed %v after the end, %+v", got, st)
	}
	l, _ = Open(dir, st.Last+1, 1<<20)
	if lsn, _ := l.Append(body(26)); lsn != 26 {
		t.Fatalf("LSN %d after reopen", lsn)
	}
	l.Close(false)
}

// TestRemoveCovered deletes the segments a checkpoint covered wholly and nothing else, and a
// clean close removes every segment.
func TestRemoveCovered(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 1, 1<<20)
	var firsts []uint64
	for i := range 4 {
		appendN(t, l, 1+i*3, 3)
		first, err := l.Roll()
		if err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, first)
	}
	segs, _ := Segments(dir)
	if !slices.Equal(segs, []uint64{1, 4, 7, 10, 13}) || !slices.Equal(firsts, []uint64{4, 7, 10, 13}) {
		t.Fatalf("segments %v, rolls %v", segs, firsts)
	}
	// Up to 8: segments 1-3 and 4-6 are covered, 7-9 only in part.
	if err := l.RemoveCovered(8); err != nil {
		t.Fatal(err)
	}
	if segs, _ = Segments(dir); !slices.Equal(segs, []uint64{7, 10, 13}) {
		t.Fatalf("after RemoveCovered(8): %v", segs)
	}
	if err := l.RemoveCovered(9); err != nil {
		t.Fatal(err)
	}
	if segs, _ = Segments(dir); !slices.Equal(segs, []uint64{10, 13}) {
		t.Fatalf("after RemoveCovered(9): %v", segs)
	}
	// The current segment stays even when a position is past it.
	if err := l.RemoveCovered(100); err != nil {
		t.Fatal(err)
	}
	if segs, _ = Segments(dir); !slices.Equal(segs, []uint64{13}) {
		t.Fatalf("after RemoveCovered(100): %v", segs)
	}
	if err := l.Close(true); err != nil {
		t.Fatal(err)
	}
	if segs, _ = Segments(dir); len(segs) != 0 {
		t.Fatalf("after a clean close: %v", segs)
	}
	if _, err := l.Append(nil); err != ErrClosed {
		t.Fatalf("Append after Close: %v", err)
	}
}

// TestReserveGrowsInChunks: records past the reserved zeros grow the file, including one record
// bigger than a chunk, and all replay.
func TestReserveGrowsInChunks(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 1, 64<<20)
	big := bytes.Repeat([]byte("x"), maxChunk+100)
	for i := range 3 {
		if _, err := l.Append(big); err != nil {
			t.Fatal(i, err)
		}
	}
	l.Close(false)
	n := 0
	if _, err := Replay(dir, 0, func(_ uint64, b []byte) error {
		if !bytes.Equal(b, big) {
			return fmt.Errorf("body of %d bytes", len(b))
		}
		n++
		return nil
	}); err != nil || n != 3 {
		t.Fatal(n, err)
	}
}

// TestSyncSharedAndRoll: a Sync covers every record written before it, and a roll makes the
// records of the closed segment durable, so their Sync has nothing left to do.
func TestSyncSharedAndRoll(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 1, 1<<20)
	for i := 1; i <= 3; i++ {
		if _, err := l.Write(body(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(3); err != nil || l.synced != 3 {
		t.Fatalf("Sync(3): %v, synced %d", err, l.synced)
	}
	if _, err := l.Write(body(4)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Roll(); err != nil || l.synced != 4 {
		t.Fatalf("Roll: %v, synced %d, want 4", err, l.synced)
	}
	if err := l.Sync(4); err != nil {
		t.Fatal(err)
	}
	l.Close(false)
	if got, _ := replayAll(t, dir, 0); !slices.Equal(got, seq(1, 4)) {
		t.Fatalf("replayed %v", got)
	}
}

// TestRecycledSegment: a covered segment is reused by a later roll without zeros; its old
// records are not replayed, and a clean close removes it.
func TestRecycledSegment(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 1, 1<<20)
	appendN(t, l, 1, 10)
	if _, err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 11, 2)
	if err := l.RemoveCovered(10); err != nil {
		t.Fatal(err)
	}
	if segs, _ := Segments(dir); !slices.Equal(segs, []uint64{11}) || len(l.free) != 1 {
		t.Fatalf("segments %v, free %v", segs, l.free)
	}
	if _, err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if len(l.free) != 0 || l.alloc == 0 {
		t.Fatalf("the roll did not reuse the covered segment: free %v, alloc %d", l.free, l.alloc)
	}
	appendN(t, l, 13, 1) // shorter than the old records under it
	l.Close(false)
	// The old bytes after record 13 read as a torn record (its header lands mid-record) or
	// as a record with an old LSN; either way replay stops there.
	if got, st := replayAll(t, dir, 0); !slices.Equal(got, seq(11, 13)) || st.Last != 13 {
		t.Fatalf("replayed %v, %+v", got, st)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("%d files left after RemoveAll", len(ents))
	}
}
