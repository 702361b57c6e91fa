// Package redis is the store for production and for several gateway instances: go-redis v9's
// UniversalClient, so a single node, Sentinel and Cluster all work.
//
// Keys carry hash tags so that what one atomic step touches shares a slot: a message's hash
// and receipts list ({id}), an upstream id's mapping and parked receipts ({upstream id}), a
// queue's stream and delayed set ({queue}). Multi-key steps are Lua scripts. Queues are Redis
// Streams with one consumer group (XADD, XREADGROUP, XACK, XAUTOCLAIM).
//
// Writes go through a group commit: concurrent callers' commands are sent together in one
// pipeline (one round trip per node) while each caller still waits for its own reply.
// Durability is the server's: run Redis with appendonly yes and appendfsync always (every
// acknowledged write is on disk) or everysec (the AOF is written before the reply, so a
// killed Redis process normally loses nothing, but a machine failure can lose about the last
// second). Client-side retries are off, so no write is ever applied twice by this package.
//
// It must not start, stop or configure the Redis server it is given.
package redis
