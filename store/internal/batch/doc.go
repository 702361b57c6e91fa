// Package batch is the group commit both stores use: callers hand in a write and wait for its
// own result (Do), or hand it in with a completion that a flusher tells the result once the
// write's batch is written (DoAsync), while one flusher at a time takes everything queued and
// writes it in a single transaction or pipeline. Under load many writers share one fsync or one
// round trip; alone, a writer pays no added delay, because the flusher never waits for a batch
// to fill.
//
// It must not know what the writes are, nor wait for what a completion does.
package batch
