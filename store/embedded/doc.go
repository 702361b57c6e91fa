// Package embedded is the store used when no Redis address is configured: a single bbolt file
// on local disk, durable (fsync per commit), for one gateway process.
//
// bbolt was chosen over Pebble and others because it is pure Go, one file, has no background
// compaction competing for the two cores a small gateway gets, is maintained by etcd, and its
// single-writer transactions are exactly what a group commit needs: every write of a batch
// goes into one transaction and one fsync, so concurrent writers share the disk flush.
//
// Queues keep their entries on disk and their claim state in memory, so claiming costs no
// write; everything unacknowledged is claimable again after a restart.
//
// It must not be opened by two processes at once (bbolt's file lock refuses the second), and
// it does not replicate: use store/redis for several gateway instances.
package embedded
