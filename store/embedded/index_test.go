package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// indexModel is what the time index must hold: messages by id, with account and creation.
type indexModel map[string]*store.Message

// want returns the ids a listing with f must return, in index order.
func (im indexModel) want(f store.MessageFilter) []string {
	var ms []*store.Message
	for _, m := range im {
		if f.Account != "" && m.Account != f.Account {
			continue
		}
		if !f.From.IsZero() && m.CreatedAt.Before(f.From) || !f.To.IsZero() && !m.CreatedAt.Before(f.To) {
			continue
		}
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *store.Message) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// blocks returns how many blocks the messages' index entries fill.
func (im indexModel) blocks() int {
	seen := map[string]bool{}
	for _, m := range im {
		seen[fmt.Sprint(m.Account, m.CreatedAt.UnixNano()&^(blockSpan-1))] = true
	}
	return len(seen)
}

// listAll pages through a listing with f and returns the ids.
func listAll(t *testing.T, s *Store, f store.MessageFilter) []string {
	t.Helper()
	var ids []string
	for range 1000 {
		ms, next, err := s.ListMessages(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		if next == "" {
			return ids
		}
		f.Cursor = next
	}
	t.Fatal("listing does not end")
	return nil
}

// checkListings compares listings of s with the model: all accounts, each account, time
// ranges that start and end inside blocks and on their edges, pages of 1, 3 and the default.
func checkListings(t *testing.T, what string, s *Store, im indexModel, base time.Time) {
	t.Helper()
	var filters []store.MessageFilter
	for _, acc := range []string{"", "a", "ab", "b"} {
		for _, limit := range []int{0, 1, 3} {
			filters = append(filters, store.MessageFilter{Account: acc, Limit: limit})
		}
		for _, r := range [][2]time.Duration{{0, blockSpan}, {30 * time.Millisecond, 200 * time.Millisecond}, {blockSpan, 3*blockSpan + 1}, {250 * time.Millisecond, time.Hour}} {
			filters = append(filters, store.MessageFilter{Account: acc, Limit: 2, From: base.Add(r[0]), To: base.Add(r[1])})
		}
	}
	for _, f := range filters {
		got, want := listAll(t, s, f), im.want(f)
		if !slices.Equal(got, want) {
			t.Errorf("%s: ListMessages(account %q, limit %d, base+%v..base+%v): %v, want %v", what, f.Account, f.Limit,
				since(f.From, base), since(f.To, base), got, want)
		}
	}
}

// since is t-base, 0 for a zero t (no bound).
func since(t, base time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return t.Sub(base)
}

// bboltIndex counts the keys of bbolt's old index bucket and its blocks.
func bboltIndex(t *testing.T, s *Store) (old, blocks int) {
	t.Helper()
	s.db.View(func(tx *bbolt.Tx) error {
		old, blocks = tx.Bucket(bIdxAcc).Stats().KeyN, tx.Bucket(bIdxBlk).Stats().KeyN
		return nil
	})
	return old, blocks
}

// TestBlockIndex: index entries of three accounts (one a prefix of another), 20 ms apart over
// about five blocks, written in two rounds each checkpointed by a close, the second round's
// entries falling between the first's in the same blocks; then the oldest expire and the store
// crashes before a checkpoint, so replay removes them from the blocks. After each step every
// listing returns what the model holds, bbolt's old index is empty, and the blocks are the
// ones the entries fill.
func TestBlockIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	// On a block's edge, an hour ago (the id map's generations expire nothing meanwhile).
	base := time.Unix(0, time.Now().Add(-time.Hour).UnixNano()&^(blockSpan-1)).UTC()
	im := indexModel{}
	accounts := []string{"a", "ab", "b"}
	accept := func(s *Store, round int) {
		for i := round; i < 16; i += 2 {
			for j, acc := range accounts {
				m := storetest.NewMessage(fmt.Sprintf("m%02d%d", i, j), acc, "up", 1)
				m.CreatedAt = base.Add(time.Duration(i) * 20 * time.Millisecond)
				if err := s.AcceptMessage(ctx, m); err != nil {
					t.Fatal(err)
				}
				im[m.ID] = m
			}
		}
	}
	reopen := func(s *Store, what string, crash bool) *Store {
		if crash {
			s.crash()
		} else if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openNeverFreeze(t, path)
		checkListings(t, what, s, im, base)
		if old, blocks := bboltIndex(t, s); old != 0 || blocks != im.blocks() {
			t.Errorf("%s: bbolt holds %d old index keys and %d blocks, want 0 and %d", what, old, blocks, im.blocks())
		}
		return s
	}
	s := openNeverFreeze(t, path)
	t.Cleanup(func() { s.Close() }) // the latest s; a closed one ignores it
	accept(s, 1)
	checkListings(t, "round 1 in the memtable", s, im, base)
	s = reopen(s, "round 1 checkpointed", false)
	accept(s, 0)
	checkListings(t, "round 2 in the memtable over round 1 in bbolt", s, im, base)
	s = reopen(s, "both rounds checkpointed", false)

	cutoff := base.Add(90 * time.Millisecond) // past the first block and into the second
	if err := s.write(ctx, func(tx *txn) error { return dirty(sweepMessages(tx, &s.f, cutoff, sweepMax)) }, nil); err != nil {
		t.Fatal(err)
	}
	n := len(im)
	for id, m := range im {
		if m.CreatedAt.Before(cutoff) {
			delete(im, id)
		}
	}
	if n-len(im) != 15 {
		t.Fatalf("model: %d expired, want 15", n-len(im))
	}
	checkListings(t, "expired in the memtable", s, im, base)
	s = reopen(s, "expired, replayed after a crash", true)
	for id := range im {
		if _, err := s.GetMessage(ctx, id); err != nil {
			t.Errorf("message %s: %v", id, err)
		}
	}
}

// TestOldIndexConverted: a time index an older release left in bbolt, one key a message in
// bIdxAcc, is moved into blocks at Open, a few keys a transaction (merging into blocks the
// transactions before wrote); listings find every message, and new accepts join the blocks.
func TestOldIndexConverted(t *testing.T) {
	defer func(n int) { convertMax = n }(convertMax)
	convertMax = 4
	path := filepath.Join(t.TempDir(), "db")
	ctx := context.Background()
	base := time.Unix(0, time.Now().Add(-time.Hour).UnixNano()&^(blockSpan-1)).UTC()
	im := indexModel{}
	s := openNeverFreeze(t, path)
	t.Cleanup(func() { s.Close() })
	for i := range 15 {
		m := storetest.NewMessage(fmt.Sprintf("m%02d", i), []string{"a", "ab", "b"}[i%3], "up", 1)
		m.CreatedAt = base.Add(time.Duration(i) * 15 * time.Millisecond)
		if err := s.AcceptMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		im[m.ID] = m
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What the previous release wrote: the same entries, one key each, and no blocks.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bIdxBlk); err != nil {
			return err
		}
		for _, m := range im {
			if err := tx.Bucket(bIdxAcc).Put(accKey(m.Account, store.IndexKey(m.CreatedAt, m.ID)), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openNeverFreeze(t, path)
	checkListings(t, "converted", s, im, base)
	if old, blocks := bboltIndex(t, s); old != 0 || blocks != im.blocks() {
		t.Errorf("converted: bbolt holds %d old index keys and %d blocks, want 0 and %d", old, blocks, im.blocks())
	}
	m := storetest.NewMessage("m99", "ab", "up", 1)
	m.CreatedAt = base.Add(17 * time.Millisecond)
	if err := s.AcceptMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	im[m.ID] = m
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openNeverFreeze(t, path)
	checkListings(t, "converted, then one more", s, im, base)
}

// TestBlockCursorSeek: seeks at every kind of key a reader uses (an account's start, past an
// account, a time inside a block, an entry itself and just after it) land on the first entry
// at or after the key.
func TestBlockCursorSeek(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys []string
	mb := newMBucket(bIdxAcc, nil)
	for _, acc := range []string{"a", "ab", "b"} {
		for i := range 6 {
			k := accKey(acc, store.IndexKey(time.Unix(0, int64(i)*blockSpan/2+int64(i)), fmt.Sprint("id", i)))
			keys = append(keys, string(k))
			mb.set(kv{k: k, v: []byte{}})
		}
	}
	slices.Sort(keys)
	if err := db.Update(func(tx *bbolt.Tx) error {
		tx.CreateBucket(bIdxAcc)
		tx.CreateBucket(bIdxBlk)
		_, err := writeIndex(tx, mb)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	seeks := []string{"", "a", "a\x00", "a\x01", "ab\x00", "b", "c"}
	for _, k := range keys {
		seeks = append(seeks, k, k+"\x00", k[:len(k)-1], k[:len(k)-4])
	}
	db.View(func(tx *bbolt.Tx) error {
		bc := &blockCursor{c: tx.Bucket(bIdxBlk).Cursor()}
		var all []string
		for k, _ := bc.First(); k != nil; k, _ = bc.Next() {
			all = append(all, string(k))
		}
		if !slices.Equal(all, keys) {
			t.Errorf("First/Next: %q, want %q", all, keys)
		}
		for _, k := range seeks {
			want := ""
			if i, _ := slices.BinarySearch(keys, k); i < len(keys) {
				want = keys[i]
			}
			if got, _ := bc.Seek([]byte(k)); string(got) != want {
				t.Errorf("Seek(%q): %q, want %q", k, got, want)
			}
		}
		return nil
	})
}

// TestIndexChanges: replay's index changes, accounts interleaved, come out in key order with
// the last change of each key.
func TestIndexChanges(t *testing.T) {
	put := func(k string) kv { return kv{k: []byte(k), v: []byte{}} }
	del := func(k string) kv { return kv{k: []byte(k), del: true} }
	mb := indexChanges([]kv{put("b\x001"), put("a\x001"), del("a\x001"), put("c\x001"), put("b\x002"), del("b\x001"), put("b\x001"), del("z\x001")})
	var got []string
	for _, e := range mb.w {
		got = append(got, fmt.Sprintf("%q del=%v", e.k, e.del))
	}
	want := []string{`"a\x001" del=true`, `"b\x001" del=false`, `"b\x002" del=false`, `"c\x001" del=false`, `"z\x001" del=true`}
	if !slices.Equal(got, want) {
		t.Errorf("indexChanges: %v, want %v", got, want)
	}
}
