package redis

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// listIDs pages through ListMessages with f and returns the ids in order.
func listIDs(t *testing.T, s *Store, f store.MessageFilter) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 200 {
			t.Fatal("pagination does not end")
		}
		ms, next, err := s.ListMessages(context.Background(), f)
		if err != nil {
			t.Fatalf("ListMessages(%+v): %v", f, err)
		}
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		if next == "" {
			return ids
		}
		f.Cursor = next
	}
}

// TestListWithinBuckets: messages of two accounts accepted out of time order, many in one
// second (one bucket of the index of all accounts per shard, and members of an account's
// index written by one ZADD), come back in time order, page by page, within a range that
// starts and ends inside a bucket, from the index of all accounts and from each account's.
func TestListWithinBuckets(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := openStore(t, srv, Config{Shards: 4})
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const n = 60
	at := func(i int) time.Time { return base.Add(time.Duration(i) * 50 * time.Millisecond) } // 20 a second
	account := func(i int) string { return []string{"acme", "other"}[i%3/2] }                 // 2 of 3 acme
	var wg sync.WaitGroup
	for i := n - 1; i >= 0; i-- {
		wg.Add(1)
		go func() { // at once, so that the accepts share scripts
			defer wg.Done()
			m := storetest.NewMessage(fmt.Sprintf("w%02d", i), account(i), "up", 1)
			m.CreatedAt = at(i)
			if err := s.AcceptMessage(ctx, m); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	want := func(from, to int, acc string) []string {
		var ids []string
		for i := from; i < to; i++ {
			if acc == "" || account(i) == acc {
				ids = append(ids, fmt.Sprintf("w%02d", i))
			}
		}
		return ids
	}
	for _, acc := range []string{"", "acme", "other"} {
		for _, tc := range []struct {
			f        store.MessageFilter
			from, to int
		}{
			{store.MessageFilter{Limit: 7}, 0, n},
			{store.MessageFilter{Limit: 1}, 0, n},
			{store.MessageFilter{From: at(13), To: at(47), Limit: 5}, 13, 47},
			{store.MessageFilter{From: at(13).Add(time.Millisecond), To: at(14)}, 14, 14},
		} {
			tc.f.Account = acc
			if got := listIDs(t, s, tc.f); !slices.Equal(got, want(tc.from, tc.to, acc)) {
				t.Errorf("%+v: got %v, want %v", tc.f, got, want(tc.from, tc.to, acc))
			}
		}
	}
	var buckets int64
	for sh := range s.tags {
		c, err := s.c.ZCard(ctx, s.kIdxDir(sh)).Result()
		if err != nil {
			t.Fatal(err)
		}
		buckets += c
	}
	// 3 seconds of messages over 4 shards: at most 12 buckets, and every second in some shard.
	if buckets < 3 || buckets > 12 {
		t.Errorf("%d buckets in the directories, want 3 to 12", buckets)
	}
}

// TestMigrateIndex: the index of all accounts as the release before wrote it (one sorted set per
// shard) is moved into buckets when a store opens, and listed as before.
func TestMigrateIndex(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := openStore(t, srv, Config{Shards: 4})
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 25 {
		m := storetest.NewMessage(fmt.Sprintf("old%02d", i), "acme", "up", 1)
		m.CreatedAt = base.Add(time.Duration(i) * 300 * time.Millisecond)
		if err := s.AcceptMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// Rewrite the index the old way: every bucket's members into the shard's sorted set.
	for sh := range s.tags {
		bs, err := s.c.ZRange(ctx, s.kIdxDir(sh), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			key := s.prefix + "ib:" + s.tags[sh] + b
			ms, err := s.c.LRange(ctx, key, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if err := s.c.ZAdd(ctx, s.kIdxOld(sh), goredis.Z{Member: m}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.c.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.c.Del(ctx, s.kIdxDir(sh)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := listIDs(t, s, store.MessageFilter{}); len(got) != 0 {
		t.Fatalf("before the migration the buckets list %v, want nothing", got)
	}
	s2 := openStore(t, srv, Config{Shards: 4})
	if got := listIDs(t, s2, store.MessageFilter{Limit: 4}); !slices.Equal(got, ids) {
		t.Errorf("after the migration: %v, want %v", got, ids)
	}
	if got := listIDs(t, s2, store.MessageFilter{From: base.Add(time.Second), To: base.Add(3 * time.Second)}); !slices.Equal(got, ids[4:10]) {
		t.Errorf("range after the migration: %v, want %v", got, ids[4:10])
	}
	for sh := range s.tags {
		if n, err := s.c.Exists(ctx, s.kIdxOld(sh)).Result(); err != nil || n != 0 {
			t.Errorf("shard %d: old index still there (%d, %v)", sh, n, err)
		}
	}
	// A second migration (another instance's Open) finds nothing to do.
	if err := s2.migrateIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, s2, store.MessageFilter{}); !slices.Equal(got, ids) {
		t.Errorf("after a second migration: %v, want %v", got, ids)
	}
}
