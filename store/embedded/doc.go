// Package embedded is the store used when no Redis address is configured: a single bbolt file
// on local disk, durable (fsync per commit), for one gateway process.
//
// bbolt was chosen over Pebble and others because it is pure Go, one file, has no background
// compaction competing for the two cores a small gateway gets, is maintained by etcd, and its
// single-writer transactions are exactly what a group commit needs: every write of a batch
// goes into one transaction and one fsync, so concurrent writers share the disk flush.
//
// Measured for issue 13 on a 2-core box, a message's store writes (accept: record, index,
// queue entry; settle: record, id map, entry removed) by 256 concurrent writers, 200,000
// messages: bbolt behind a group commit like this store's 49,800 msgs/s, one commit per 66
// messages; Pebble v2.1.7 with synced batches (its WAL coalesces them into one fsync)
// 30,800 msgs/s, its flushes and compactions taking the CPU the writes need. Pebble wins
// one writer alone (1,190 against 430 msgs/s: one fsync per commit against bbolt's two), a
// load the group commit is not for.
//
// A message costs two writes, both shared by the group commit: AcceptMessage, and Settle
// (the upstream's answer and the Ack together). Claims cost none.
//
// Queues keep their entries on disk and their claim state in memory, so claiming costs no
// write; everything unacknowledged is claimable again after a restart.
//
// It must not be opened by two processes at once (bbolt's file lock refuses the second), and
// it does not replicate: use store/redis for several gateway instances.
package embedded
