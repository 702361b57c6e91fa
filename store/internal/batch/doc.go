// Package batch is the group commit both stores use: callers hand in a write and wait for its
// own result, while one flusher at a time takes everything queued and writes it in a single
// transaction or pipeline. Under load many writers share one fsync or one round trip; alone,
// a writer pays no added delay, because the flusher never waits for a batch to fill.
//
// It must not know what the writes are.
package batch
