//go:build unix

package cputime

import (
	"testing"
	"time"
)

// TestProcessCounts: a goroutine spinning for 50 ms of wall time adds at least 40 ms of CPU.
func TestProcessCounts(t *testing.T) {
	start := Process()
	if start <= 0 {
		t.Fatalf("Process() = %v at start, want > 0 (the test binary has run already)", start)
	}
	end := time.Now().Add(50 * time.Millisecond)
	n := 0
	for time.Now().Before(end) {
		n++
	}
	if d := Process() - start; d < 40*time.Millisecond {
		t.Errorf("spinning 50ms (%d loops) added %v of CPU, want >= 40ms", n, d)
	}
}
