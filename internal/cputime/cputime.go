// Package cputime reads the CPU time the process has used, for benchmarks that report CPU per
// operation: wall time per op hides work done in other goroutines (group commits, checkpoints,
// the garbage collector) and grows with the load of a shared box, CPU per op does neither.
package cputime

import "testing"

// PerOp starts counting the process's CPU time (user and system, every goroutine); the function it
// returns, called when b's loop is done, reports it per iteration as cpu-us/op. It reads 0 where
// Process is not measured.
func PerOp(b *testing.B) func() {
	start := Process()
	return func() {
		b.ReportMetric(float64((Process()-start).Microseconds())/float64(b.N), "cpu-us/op")
	}
}
