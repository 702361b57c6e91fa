// Package redis is the store for production and for several gateway instances: go-redis v9's
// UniversalClient, so a single node, Sentinel and Cluster all work.
//
// Keys carry hash tags so that what one atomic step touches shares a slot. Messages and queues
// are spread over a fixed number of shards (Config.Shards), each with its own hash tag: a
// message's shard follows from its id, and its value, receipts list, index entries and the
// entries of its parts in each queue live in its shard's slot, so accepting a message is one
// script in one slot (the accepts of a group commit's round share one script, on Cluster one
// per shard), and a settle plain commands in that slot (no script: see scripts.go)
// beside one SET of the id map, whose key ({upstream id}) follows from the upstream's id
// alone. A queue is one stream (and delayed set) per shard; a claim visits the shards one at
// a time, oldest work first, until it has enough. A visit is one XREADGROUP; the claim script,
// which moves due delayed entries back, reclaims entries past their visibility time-out and
// takes entries parked at a restart, runs on a shard about once a second (at most every half
// visibility time-out), so a delayed give-back or a time-out is acted on up to that much
// later. Queues are Redis Streams with one consumer group (XADD, XREADGROUP, XACK,
// XAUTOCLAIM).
//
// A message is one string: its record as accepted, then the events that changed it, appended
// by each write without reading it (value.go); readers apply the events with the store's rules.
// The time index of all accounts is a list per shard and second with a directory of the
// buckets, and so is each account's, a list per shard, account and second (index.go).
//
// # What a message costs Redis
//
// A message's way through the store (accept, claim, settle with the id map and the
// acknowledgement), go test -run XXX -bench 'BenchmarkForwardCPU/fsync=everysec/conc=256'
// -benchtime 30000x -v ./store/redis/ (and fsync=always; BenchmarkForwardCPUCluster/conc=256 on
// a one-node Cluster with appendfsync always), three runs each alternating with the release
// before, on the 2-core box other work shared (load average 4 to 11, so single figures move
// by a few us; the medians):
//
//	                          release before               this release
//	commands a message        7.2 (3.1 sent)               5.5 (3.1 sent)
//	  accept                  EVALSHA for the round's      EVALSHA for the round's accepts
//	                          accepts: each SET NX RPUSH   (on Cluster one per shard): each
//	                          ZADD XADD                    SET NX XADD, one RPUSH per bucket
//	  settle                  SET APPEND GET, and the round's XACK and XDEL of each stream
//	redis-server us/msg       24.5 everysec, 32.2 always   22.5 everysec, 28.9 always
//	  on Cluster              37.3 (8.1 commands)          33.9 (5.8 commands)
//	allocations a message     61                           48
//
// Step by step, each measured against the step before in the same minutes: the per-account
// index as buckets (a ZADD into a sorted set per account and shard became an RPUSH) took
// redis-server from 27.0-27.3 to 23.8-24.1 us a message (everysec); one RPUSH per bucket for
// the script's messages (the round's messages of one shard and second share a bucket: 2 RPUSH
// a message became 0.36) from 24.7-26.7 to 22.3-22.9; on Cluster one script per shard instead
// of one per message (0.25 EVALSHA a message) from 38.0-41.5 to 30.3-34.4. On the client, the
// accept's keys built and boxed once per shard, account and second rather than per message,
// and the group commit's op carried inside the accept's and the update's state: 63 to 48
// allocations a message.
//
// End to end, go build -o /tmp/redis/new ./cmd/smppgw && go run ./cmd/smppbench --rows 2
// --stores redis-everysec,redis-always --windows 256 --smppgw /tmp/redis/new --json, three
// runs alternating with a binary of the release before (a416ff1), load average 4 to 6:
// everysec 17.5k, 16.3k and 14.3k msgs/s before, 23.2k, 18.9k and 15.3k after, redis-server's
// CPU a message 25.3, 26.7 and 29.1 us before, 22.0, 23.0 and 24.5 after, smppgw's 24.4, 25.4
// and 28.3 before, 22.5, 25.5 and 24.8 after; always 16.0k, 11.2k and 10.2k before, 19.7k,
// 10.2k and 13.0k after, redis-server 27.8, 29.5 and 34.7 us before, 27.1, 30.5 and 27.3 after.
//
// What is left of a message in Redis: the accept's SET NX and XADD inside the script, whose
// payload repeats the message's record (a claim that read the message instead would write
// about 250 bytes less into the AOF a message, but the payload is what edits and reroutes
// rewrite); the id map's SET (a key with a time to live, and GET for the park mark); the
// APPEND and GET of the settle; the XCLAIM that Redis writes into the AOF for each entry an
// XREADGROUP hands out; XACK and XDEL (one each per stream and round).
//
// # Data of the releases before
//
// The release before (a416ff1) kept the index of one account as a sorted set per shard and
// account (ixa:{tag}account). Open moves those into buckets (migrateIndex: the accounts come
// from each shard's set of accounts, one EXISTS per shard tells whether any is left), and the
// sweeper moves again every SweepInterval what an instance of that release wrote since.
// Messages, queues, the id map and receipts are as that release wrote them, so the two can run
// side by side while a fleet is upgraded: a listing by account on a new instance misses an old
// instance's accepts until the next sweep, and one on an old instance misses the new
// instances' accepts.
//
// The release before that kept a message as a hash (same key) and the index of all accounts as
// one sorted set per shard (ix:{tag}). Open converts both (migrateMessages, migrateIndex: a
// SCAN of the message keys that are hashes, once, then a layout key says it is done; and the
// sorted sets moved into buckets), and the sweeper moves index entries again every
// SweepInterval. Upgrade from it by stopping every instance of it before starting this one:
// neither reads the other's messages (WRONGTYPE, an error its callers retry), so a mixed fleet
// stalls. Hashes an instance of it wrote after the conversion all the same are not lost: each
// start within a week of the conversion converts them in the background (convertLate), so the
// next restart after the last old instance stopped leaves none. The layout before shards
// (m:{id}, q:{queue}) is not read.
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
