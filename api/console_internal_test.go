package api

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/smppgw/smppgw/store"
)

// listOnly is a store.Messages whose ListMessages pages through msgs (oldest first), counting calls.
type listOnly struct {
	store.Messages
	msgs  []*store.Message
	calls int
}

func (l *listOnly) ListMessages(_ context.Context, f store.MessageFilter) ([]*store.Message, string, error) {
	l.calls++
	var out []*store.Message
	for _, m := range l.msgs {
		if !f.Match(m) {
			continue
		}
		if len(out) == f.PageLimit() {
			return out, "more", nil
		}
		out = append(out, m)
	}
	return out, "", nil
}

// TestRecentMessagesBusy: with thousands of messages in the last second and a few old ones, the
// newest come first for a handful of store pages, not a scan of everything.
func TestRecentMessagesBusy(t *testing.T) {
	now := time.Now()
	l := &listOnly{}
	add := func(id string, at time.Time) { l.msgs = append(l.msgs, &store.Message{ID: id, CreatedAt: at}) }
	add("old1", now.Add(-30*24*time.Hour))
	add("old2", now.Add(-time.Hour))
	for i := range 3000 {
		add(fmt.Sprintf("m%04d", i), now.Add(-500*time.Millisecond+time.Duration(i)*100*time.Microsecond))
	}
	got, err := recentMessages(context.Background(), l, "", 50, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	var want []string
	for i := 2999; i >= 2950; i-- {
		want = append(want, fmt.Sprintf("m%04d", i))
	}
	if !slices.Equal(ids, want) {
		t.Errorf("got %v\nwant %v", ids, want)
	}
	t.Logf("busy: %d store pages", l.calls)
	if l.calls > 8 {
		t.Errorf("%d store pages read for 50 messages", l.calls)
	}

	// Few messages, far apart: every one is found, newest first, and the look-back ends.
	l.msgs = l.msgs[:2]
	l.calls = 0
	got, err = recentMessages(context.Background(), l, "", 50, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "old2" || got[1].ID != "old1" {
		t.Errorf("got %v, want old2, old1", got)
	}
	t.Logf("sparse: %d store pages", l.calls)
	if l.calls > 20 {
		t.Errorf("%d store pages read to look back a year", l.calls)
	}
}
