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
// buckets, an account's a sorted set per shard (index.go).
//
// # What a message costs Redis
//
// A message's way through the store (accept, claim, settle with the id map and the
// acknowledgement), go test -run XXX -bench 'BenchmarkForwardCPU/fsync=everysec/conc=256'
// -benchtime 30000x -v ./store/redis/ (and fsync=always; BenchmarkForwardCPUCluster/conc=256 on
// a one-node Cluster with appendfsync always), three runs each alternating with the release
// before (a416ff1), on the 2-core box other work shared (single runs move by several us; the
// medians):
//
//	                          release before               this release
//	commands a message        7.2 (3.1 sent)               5.6 (3.1 sent)
//	  accept                  EVALSHA for the round's      EVALSHA for the round's accepts
//	                          accepts (on Cluster one      (on Cluster one per shard): each
//	                          each): each SET NX RPUSH     SET NX XADD, one RPUSH per bucket,
//	                          ZADD XADD                    one ZADD per account and shard
//	  settle                  SET APPEND GET, and the round's XACK and XDEL of each stream
//	redis-server us/msg       30.9 everysec, 37.1 always   29.3 everysec, 35.7 always
//	  on Cluster              39.6 (8.1 commands)          36.1 (5.8 commands)
//	allocations a message     61                           48
//
// Step by step, each against the step before in the same minutes: one RPUSH per bucket of the
// index of all accounts for a script's messages (the round's messages of one shard and second
// share a bucket: 1 RPUSH a message became 0.36) took redis-server from 24.7-26.7 to
// 22.3-22.9 us a message (everysec); on Cluster one script per shard instead of one per
// message (0.25 EVALSHA a message) from 38.0-41.5 to 30.3-34.4. On the client, the accept's
// keys built and boxed once per shard, account and second rather than per message, and the
// group commit's op carried inside the accept's and the update's state: 61 to 48 allocations
// a message. A time index per account in buckets like the index of all accounts was tried and
// dropped (see acceptAll): cheaper with one account, dearer with a few hundred.
//
// End to end, go build -o /tmp/redis/new ./cmd/smppgw && go run ./cmd/smppbench --rows 2
// --stores redis-everysec,redis-always --windows 256 --smppgw /tmp/redis/new --json, three
// runs alternating with a binary of the release before (a416ff1), the box loaded (load
// average 3 to 7, so msgs/s moved by half between runs of one binary): redis-server's CPU a
// message 30.9, 26.0 and 27.1 us before, 26.0, 25.5 and 27.2 after (everysec), 33.2, 28.0 and
// 34.1 before, 31.1, 29.8 and 34.4 after (always); smppgw's 29.8, 26.8 and 28.0 before, 25.9,
// 26.1 and 27.6 after (everysec). Within the noise of the box more than the benchmark's
// 5 to 10 percent.
//
// # Asynchronous writes
//
// AcceptMessageAsync and SettleAsync (store.AsyncWrites, async.go) queue the write on the group
// commit (batch.DoAsync) and return: the flusher that ran its round trips runs its completion
// with what the synchronous call returns, so the gateway keeps no goroutine waiting per write.
// A context that ends first is told at once by the batcher's watcher (every 20 ms): an accept
// whose script has not gone out is refused (ctx's error, and the flusher skips it), anything
// else is ErrInDoubt. End to end, go run ./cmd/smppbench --rows 2 --stores
// redis-everysec,redis-always --windows 256 --smppgw BIN --json with this release's binary
// against the one before (9b94f8e, whose gateway kept a pool goroutine waiting per Redis write),
// three pairs alternating at load average 0.8 to 3, and three earlier at 4 to 6 (smppgw's CPU
// only: msgs/s was then the load's more than the binary's):
//
//	                            before                 this release
//	smppgw CPU us/msg           22.4 19.6 21.1         15.7 17.4 15.7     (everysec)
//	                            22.7 21.2 21.5         15.3 17.1 15.8     (always)
//	  at load 4 to 6            28.4 30.3 26.1         16.8 21.0 15.9     (everysec)
//	                            28.1 32.7 27.0         18.6 20.5 18.4     (always)
//	redis-server CPU us/msg     22.5 22.0 22.5         22.0 22.0 21.0     (everysec)
//	                            25.5 25.0 26.0         23.5 24.5 23.0     (always)
//	msgs/s                      29478 31313 30098      35134 33159 35643  (everysec)
//	                            25508 26161 25145      30690 28862 30117  (always)
//
// In the store alone (BenchmarkForwardCPU/fsync=*/conc=256 -benchtime 20000x, three pairs)
// the synchronous path is unchanged: client 18.0-21.8 us a message before, 17.7-20.3 after
// (everysec), 17.4-24.2 and 19.2-19.9 (always), 48 allocations. BenchmarkForwardAsyncCPU, the
// same traffic through the asynchronous writes, one producer and one claimer whose windows the
// completions free: 14.7-20.3 us (everysec), 15.6-19.7 (always), 46 allocations.
//
// What is left of a message in Redis: the accept's SET NX and XADD inside the script, whose
// payload repeats the message's record (a claim that read the message instead would write
// about 250 bytes less into the AOF a message, but the payload is what edits and reroutes
// rewrite); the account's ZADD; the id map's SET (a key with a time to live, and GET for the
// park mark); the APPEND and GET of the settle; the XCLAIM that Redis writes into the AOF for
// each entry an XREADGROUP hands out; XACK and XDEL (one each per stream and round).
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
// pipeline (one round trip per node) while each caller still waits for its own reply, or is
// told it by a completion (see Asynchronous writes).
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
