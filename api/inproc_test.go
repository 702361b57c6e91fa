package api

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestPipeListener(t *testing.T) {
	l := newPipeListener()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := l.DialContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	go func() { _, _ = c.Write([]byte("ping")) }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}

	// Nobody accepting: the dial ends with its context.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.DialContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial without Accept: %v, want DeadlineExceeded", err)
	}

	// Close ends Accept and dials; a connection made before stays open.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_ = l.Close() // twice is fine
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if _, err := l.DialContext(t.Context()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("dial after Close: %v, want net.ErrClosed", err)
	}
	go func() { _, _ = s.Write([]byte("pong")) }()
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q after Close, %v", buf, err)
	}
	c.Close()
	s.Close()
}
