package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// testCancel: queued parts (ready or given back with a delay) are taken out of the queue and
// marked DELETED; a claimed part and a sent one are left alone; other accounts see nothing.
func testCancel(t *testing.T, h Harness) {
	opts := Options()
	opts.VisibilityTimeout = 10 * time.Second
	s := h.Open(t, opts)
	ctx := ctxT(t)
	mustAccept(t, s, NewMessage("c1", "a", "up", 3))
	mustAccept(t, s, NewMessage("c2", "a", "up", 1))
	inFlight := claimOne(t, s, "up", 0) // c1 part 0
	delayed := claimOne(t, s, "up", 0)  // c1 part 1
	if inFlight.MessageID != "c1" || inFlight.Part != 0 || delayed.MessageID != "c1" || delayed.Part != 1 {
		t.Fatalf("claimed %s/%d and %s/%d, want c1/0 and c1/1", inFlight.MessageID, inFlight.Part, delayed.MessageID, delayed.Part)
	}
	if err := s.GiveBack(ctx, delayed.Lease, time.Hour); err != nil {
		t.Fatalf("GiveBack: %v", err)
	}
	for _, tc := range []struct{ id, account string }{{"c1", "b"}, {"nope", "a"}} {
		if _, _, err := s.CancelMessage(ctx, tc.id, tc.account); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CancelMessage(%s, %s): %v, want ErrNotFound", tc.id, tc.account, err)
		}
	}
	if n := queueLen(t, s, submitQ("up")); n != 4 {
		t.Fatalf("queue length %d after refused cancels, want 4", n)
	}
	m, parts, err := s.CancelMessage(ctx, "c1", "a")
	if err != nil {
		t.Fatalf("CancelMessage: %v", err)
	}
	if !slices.Equal(parts, []int{1, 2}) {
		t.Errorf("cancelled parts %v, want [1 2] (part 0 is in flight)", parts)
	}
	want := []pdu.MessageState{pdu.ACCEPTED, pdu.DELETED, pdu.DELETED}
	for _, got := range []*store.Message{m, mustGet(t, s, "c1")} {
		for i, p := range got.Parts {
			if p.Status != want[i] {
				t.Errorf("part %d status %v, want %v", i, p.Status, want[i])
			}
		}
	}
	if n := queueLen(t, s, submitQ("up")); n != 2 {
		t.Errorf("queue length %d after the cancel, want 2 (c1/0 claimed, c2)", n)
	}
	for _, task := range claim(t, s, "up", 10, 300*time.Millisecond) {
		if task.MessageID != "c2" {
			t.Errorf("claimed %s/%d after the cancel", task.MessageID, task.Part)
		}
	}
	// The part in flight is answered: the message is then cancelled as far as this store goes.
	if _, _, err := s.Settle(ctx, inFlight.Lease, store.PartUpdate{MessageID: "c1", Part: 0, Upstream: "up", UpstreamID: "U1", Status: pdu.ENROUTE}); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	m, parts, err = s.CancelMessage(ctx, "c1", "a")
	if err != nil || len(parts) != 0 {
		t.Fatalf("second CancelMessage: parts %v, %v; want none", parts, err)
	}
	if m.Parts[0].UpstreamID != "U1" || m.Parts[0].Status != pdu.ENROUTE {
		t.Errorf("sent part after a cancel: %+v, want it untouched", m.Parts[0])
	}
}

// testReplace: a queued part goes out with the new text; a claimed one is left alone.
func testReplace(t *testing.T, h Harness) {
	opts := Options()
	opts.VisibilityTimeout = 10 * time.Second
	s := h.Open(t, opts)
	ctx := ctxT(t)
	mustAccept(t, s, NewMessage("r1", "a", "up", 1))
	mustAccept(t, s, NewMessage("r2", "a", "up2", 2))
	mustAccept(t, s, NewMessage("r3", "a", "up3", 1))
	r := store.Replacement{ShortMessage: []byte("new text"), RegisteredDelivery: 0,
		Validity: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, _, err := s.ReplaceMessage(ctx, "r2", "a", r); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("ReplaceMessage of two parts: %v, want ErrInvalid", err)
	}
	if _, _, err := s.ReplaceMessage(ctx, "r1", "b", r); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReplaceMessage by another account: %v, want ErrNotFound", err)
	}
	m, parts, err := s.ReplaceMessage(ctx, "r1", "a", r)
	if err != nil || !slices.Equal(parts, []int{0}) {
		t.Fatalf("ReplaceMessage: parts %v, %v; want [0]", parts, err)
	}
	for _, got := range []*store.Message{m, mustGet(t, s, "r1")} {
		if !bytes.Equal(got.Parts[0].ShortMessage, r.ShortMessage) || got.RegisteredDelivery != 0 || !got.Validity.Equal(r.Validity) {
			t.Errorf("replaced message: %q rd %d validity %v", got.Parts[0].ShortMessage, got.RegisteredDelivery, got.Validity)
		}
	}
	task := claimOne(t, s, "up", 0)
	if task.MessageID != "r1" || !bytes.Equal(task.ShortMessage, r.ShortMessage) || task.RegisteredDelivery != 0 || !task.Validity.Equal(r.Validity) {
		t.Errorf("claimed after replace: %s %q rd %d", task.MessageID, task.ShortMessage, task.RegisteredDelivery)
	}
	if n := queueLen(t, s, submitQ("up")); n != 1 {
		t.Errorf("queue length %d after replace, want 1", n)
	}
	// A part given back with a delay keeps its attempts and comes back with the new text.
	if err := s.GiveBack(ctx, task.Lease, 300*time.Millisecond); err != nil {
		t.Fatalf("GiveBack: %v", err)
	}
	r2 := store.Replacement{ShortMessage: []byte("newer"), RegisteredDelivery: 1}
	if _, parts, err := s.ReplaceMessage(ctx, "r1", "a", r2); err != nil || len(parts) != 1 {
		t.Fatalf("ReplaceMessage of a delayed part: parts %v, %v", parts, err)
	}
	task = claimOne(t, s, "up", 3*time.Second)
	if string(task.ShortMessage) != "newer" || task.Attempts != 1 || !task.Validity.Equal(r.Validity) {
		t.Errorf("delayed part after replace: %q attempts %d validity %v", task.ShortMessage, task.Attempts, task.Validity)
	}
	// In flight: left alone.
	claimOne(t, s, "up3", 0)
	m, parts, err = s.ReplaceMessage(ctx, "r3", "a", r)
	if err != nil || len(parts) != 0 {
		t.Fatalf("ReplaceMessage in flight: parts %v, %v; want none", parts, err)
	}
	if bytes.Equal(m.Parts[0].ShortMessage, r.ShortMessage) || bytes.Equal(mustGet(t, s, "r3").Parts[0].ShortMessage, r.ShortMessage) {
		t.Errorf("message in flight was replaced")
	}
}
