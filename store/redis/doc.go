// Package redis is the store for production and for several gateway instances: go-redis v9's
// UniversalClient, so a single node, Sentinel and Cluster all work.
//
// Keys carry hash tags so that what one atomic step touches shares a slot. Messages and queues
// are spread over a fixed number of shards (Config.Shards), each with its own hash tag: a
// message's shard follows from its id, and its value, receipts list, index entries and the
// entries of its parts in each queue live in its shard's slot, so accepting a message is one
// script in one slot (on one node the accepts of a group commit's round share one script), and
// a settle plain commands in that slot (no script: see scripts.go)
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
// buckets, an account's a sorted set per shard (index.go).
//
// # What a message costs Redis
//
// A message's way through the store (accept, claim, settle with the id map and the
// acknowledgement), go test -run XXX -bench 'BenchmarkForwardCPU/fsync=everysec/conc=256'
// -benchtime 30000x -v ./store/redis/ (and fsync=always), the median of three runs each,
// alternating with the release before (a0bd6c3), on the 2-core box other work shared:
//
//	                          before                     after
//	commands a message        12.0 (7.0 sent)            7.2 (3.1 sent)
//	  accept                  EVALSHA each: EXISTS HSET  EVALSHA for the round's accepts:
//	                          ZADD ZADD XADD             each SET NX RPUSH ZADD XADD
//	  settle                  SET HSET HSETNX HMGET      SET APPEND GET, and the round's
//	                          XACK XDEL                  XACK and XDEL of each stream
//	redis-server us/msg       37.0 everysec, 45.2 always 24.2 everysec, 29.6 always
//	client us/msg             28.5, 33.0                 23.6, 23.9
//	msgs/s                    20.8k, 11.6k               27.4k, 19.5k
//	allocations a message     84                         61
//
// End to end, go build -o /tmp/redis/smppgw ./cmd/smppgw && go run ./cmd/smppbench --rows 2
// --stores redis-everysec,redis-always --windows 256 --smppgw /tmp/redis/smppgw, two runs each
// alternating with a binary of the release before, the box loaded (load average near 4):
// everysec 16.3k and 15.9k msgs/s before, 21.7k and 25.7k after; always 8.9k and 10.1k before,
// 12.1k and 15.7k after. redis-server's CPU a message 40-41 us before, 24-28 after (everysec),
// 47-51 before, 30-35 after (always); smppgw's 33-34 us before, 23-29 after (everysec). What is
// left of a message in Redis: the accept script (its own cost, a third of it per message now
// that a round shares it), the account's ZADD, the id map's SET (a key with a time to live),
// the APPEND, and the AOF of every write.
//
// # Data of the release before
//
// That release kept a message as a hash (same key) and the index of all accounts as one sorted
// set per shard (ix:{tag}). Open converts both (migrateMessages, migrateIndex: a SCAN of the
// message keys that are hashes, once, then a layout key says it is done; and the sorted sets
// moved into buckets), and the sweeper moves index entries again every SweepInterval. Upgrade
// by stopping every instance of that release before starting this one: neither reads the
// other's messages (WRONGTYPE, an error its callers retry), so a mixed fleet stalls. Hashes an
// instance of that release wrote after the conversion all the same are not lost: each start
// within a week of the conversion converts them in the background (convertLate), so the next
// restart after the last old instance stopped leaves none. Queue entries, the id map,
// receipts and the per-account indexes are as they were. The layout before shards (m:{id},
// q:{queue}) is not read.
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
