// Package redis is the store for production and for several gateway instances: go-redis v9's
// UniversalClient, so a single node, Sentinel and Cluster all work.
//
// Keys carry hash tags so that what one atomic step touches shares a slot. Messages and queues
// are spread over a fixed number of shards (Config.Shards), each with its own hash tag: a
// message's shard follows from its id, and its hash, receipts list, index entries and the
// entries of its parts in each queue live in its shard's slot, so accepting a message is one
// script in one slot, and a settle plain commands in that slot (no script: see scripts.go)
// beside one SET of the id map, whose key ({upstream id}) follows from the upstream's id alone. A queue is one stream (and delayed
// set) per shard; a claim visits the shards one at a time, oldest work first, until it has
// enough. A visit is one XREADGROUP; the claim script, which moves due delayed entries back,
// reclaims entries past their visibility time-out and takes entries parked at a restart, runs
// on a shard about once a second (at most every half visibility time-out), so a delayed
// give-back or a time-out is acted on up to that much later. Queues are Redis Streams with
// one consumer group (XADD, XREADGROUP, XACK, XAUTOCLAIM).
//
// The layout is not the one before shards (m:{id}, q:{queue}): records and queue entries
// written by that version are not read.
//
// Writes go through a group commit: concurrent callers' commands are sent together in one
// pipeline (one round trip per node) while each caller still waits for its own reply.
// Durability is the server's: run Redis with appendonly yes and appendfsync always (every
// acknowledged write is on disk) or everysec (the AOF is written before the reply, except while
// the previous second's fsync is still running on a busy disk: then Redis postpones the write
// for up to 2 s and replies all the same, so a killed Redis process can lose up to that, and a
// machine failure about the last second or two). A Cluster replica is updated after its master
// replies: a promoted replica may lack the master's last acknowledged writes. Client-side
// retries are off, on Cluster too (no resend after a lost connection, no MOVED followed: a
// command's error is that of its one sending), so no write is ever applied twice by this
// package, and an error that proves a command was never sent is told from one that may have
// run.
//
// It must not start, stop or configure the Redis server it is given.
package redis
