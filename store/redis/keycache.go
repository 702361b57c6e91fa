package redis

import (
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/store"
)

// The keys an accept and a settle name, built and boxed (as the commands' arguments take them)
// once rather than for every message: a shard's bucket of the current second, an account's
// index in a shard, a queue's stream in each shard. A boxed string is an allocation of its
// own, beside the string's.

// bucketArgs are a shard's keys and arguments of one second's bucket (see kIdxBucket).
type bucketArgs struct {
	b         uint64
	key, bArg any // kIdxBucket, and b
	expiry    any // when the bucket expires (ms, 0 never)
}

// bucketArgsOf returns shard sh's bucket args of second b, built again when the second moved on.
func (s *Store) bucketArgsOf(sh int, b uint64) *bucketArgs {
	k := &s.shardKeys[sh]
	if a := k.bucket.Load(); a != nil && a.b == b {
		return a
	}
	var expiry int64
	if s.opts.MessageTTL > 0 {
		expiry = bucketEnd(b).Add(s.opts.MessageTTL).UnixMilli()
	}
	a := &bucketArgs{b: b, key: s.kIdxBucket(sh, b), bArg: b, expiry: expiry}
	k.bucket.Store(a)
	return a
}

// accountKeys are an account's keys in one shard, and when this instance last added the
// account to the shard's set of accounts (accountSeen).
type accountKeys struct {
	seen atomic.Int64 // Unix ns; 0 never
	idx  any          // kIdxAcc
}

// accountKeysOf returns account's keys in shard sh.
func (s *Store) accountKeysOf(account string, sh int) *accountKeys {
	k := accountShard{account, sh}
	s.accMu.RLock()
	a, ok := s.accounts[k]
	s.accMu.RUnlock()
	if ok {
		return a
	}
	s.accMu.Lock()
	defer s.accMu.Unlock()
	if a, ok := s.accounts[k]; ok {
		return a
	}
	a = &accountKeys{idx: s.kIdxAcc(sh, account)}
	s.accounts[k] = a
	return a
}

// accountSeen reports whether this instance added the account to its shard's set of accounts
// (which the index sweep walks) within the last SweepInterval: then an accept need not add it
// again. The set is written again once per interval, so one that went missing (a flushed
// database, a failover to a replica that had not got the write) is whole again after an
// interval.
func (s *Store) accountSeen(a *accountKeys, now time.Time) bool {
	at := a.seen.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) < s.opts.SweepInterval
}

// streamKeys returns q's stream key in each shard, boxed.
func (s *Store) streamKeys(q store.Queue) []any {
	if v, ok := s.streams.Load(q); ok {
		return v.([]any)
	}
	keys := make([]any, len(s.tags))
	for sh := range keys {
		keys[sh] = s.kStream(q, sh)
	}
	v, _ := s.streams.LoadOrStore(q, keys)
	return v.([]any)
}
