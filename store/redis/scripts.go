package redis

import (
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/store"
)

// Lua scripts make each multi-key step atomic on the server. Every script touches keys of
// one hash slot only, so they run unchanged on Redis Cluster.
//
// A message is one string (see value.go): its accept writes it with SET NX (which refuses a
// taken id in the same command), and every change after is an event appended with APPEND,
// by plain commands (UpdatePart, Settle) or by the scripts below, which read no more of the
// message than its header (whether it exists, how many parts it has). Readers apply the
// events. No script computes a status.

// acceptAll accepts messages, each as one SET NX (which refuses a taken id in the same command)
// and its index entries and queue entries. KEYS six per message: msg, stream, time index
// bucket, account index, set of accounts, bucket directory, all in the message's shard's slot
// (on Cluster a script holds one shard's messages). ARGV per message, in the same order:
// value (appendValue), parts, expiry (ms, 0 never), index member, then one part payload per
// part, then the account to add to the set of accounts (empty when this instance added it
// lately, see Store.accountSeen), the bucket's number and when the bucket expires (ms, 0
// never). Returns per message 1, 0 when the id is taken, or the error text of the command that
// failed (redis.pcall: one message's failure is its own; what it wrote before stays, as a
// script's error would leave it).
//
// In three passes: every message's SET NX; then the index members of the messages that were
// set, one RPUSH per bucket of the index of all accounts (the round's messages of a shard and
// second share one) and one ZADD per account index (those of an account and shard); then each
// message's SADD and XADDs, unless one of its index writes failed (it is queued only when
// everything before it was written, as with one message at a time).
//
// One script for the accepts of a group commit's round (on Cluster one per shard):
// BenchmarkForwardCPU at 256 (25 to 30 accepts a script) measured redis-server at 23.9 us a
// message against 25.6 with a script each (everysec, median of five), 27.7 against 30.6
// (always). With the hash layout before, one script per slot, which held one message most of
// the time, cost more: 20.8 us against 16.9.
//
// The time index of all accounts is a list per shard and second (RPUSH, far cheaper than a
// ZADD into one sorted set of every message: no skip list, no dictionary), with a directory
// of the shard's buckets (a sorted set written when a bucket is created, once a second at
// most); readers sort a bucket's members. The index per account stays a sorted set: an
// account may send a message a minute, and a bucket per message costs more. Measured
// (BenchmarkAcceptAccountsCPU, a list per shard, account and second with a directory, against
// the sorted set): 9.0-9.2 us a message against 9.9-11.1 with one account, but 12.1-13.8
// against 10.9-11.8 with 300 and 15.8-16.6 against 11.9-12.5 with 10,000 (and 870-890 bytes
// of memory a message against 615).
var acceptAll = goredis.NewScript(`
local out, at, ok = {}, {}, {}
local a = 0
for j = 0, #KEYS / 6 - 1 do
  local k = j * 6
  at[j + 1] = a
  local r
  if ARGV[a + 3] ~= '0' then
    r = redis.pcall('SET', KEYS[k + 1], ARGV[a + 1], 'NX', 'PXAT', ARGV[a + 3])
  else
    r = redis.pcall('SET', KEYS[k + 1], ARGV[a + 1], 'NX')
  end
  if not r then
    out[j + 1] = 0
  elseif r.err then
    out[j + 1] = r.err
  else
    ok[#ok + 1] = j
  end
  a = a + 7 + tonumber(ARGV[a + 2])
end
local groups, order = {}, {}
for _, j in ipairs(ok) do
  local k, a = j * 6, at[j + 1]
  local n = tonumber(ARGV[a + 2])
  for i = 3, 4 do
    local g = groups[KEYS[k + i]]
    if not g then
      g = {bucket = i == 3, dir = KEYS[k + 6], b = ARGV[a + 6 + n], exp = ARGV[a + 7 + n], args = {}, js = {}}
      groups[KEYS[k + i]] = g
      order[#order + 1] = KEYS[k + i]
    end
    if g.bucket then
      g.args[#g.args + 1] = ARGV[a + 4]
    else
      g.args[#g.args + 1] = 0
      g.args[#g.args + 1] = ARGV[a + 4]
    end
    g.js[#g.js + 1] = j
  end
end
local function write(key, g)
  local cmd = 'ZADD'
  if g.bucket then cmd = 'RPUSH' end
  local n = 0
  for c = 1, #g.args, 500 do
    local r = redis.pcall(cmd, key, unpack(g.args, c, math.min(c + 499, #g.args)))
    if type(r) == 'table' then return r.err end
    n = r
  end
  if g.bucket and n == #g.args then
    local r = redis.pcall('ZADD', g.dir, g.b, g.b)
    if type(r) == 'table' then return r.err end
    if g.exp ~= '0' then
      r = redis.pcall('PEXPIREAT', key, g.exp)
      if type(r) == 'table' then return r.err end
    end
  end
  return nil
end
for _, key in ipairs(order) do
  local g = groups[key]
  local e = write(key, g)
  if e then
    for _, j in ipairs(g.js) do out[j + 1] = out[j + 1] or e end
  end
end
for _, j in ipairs(ok) do
  if not out[j + 1] then
    out[j + 1] = 1
    local k, a = j * 6, at[j + 1]
    local n = tonumber(ARGV[a + 2])
    if ARGV[a + 5 + n] ~= '' then
      local r = redis.pcall('SADD', KEYS[k + 5], ARGV[a + 5 + n])
      if type(r) == 'table' then out[j + 1] = r.err end
    end
    for i = 1, n do
      if out[j + 1] ~= 1 then break end
      local r = redis.pcall('XADD', KEYS[k + 2], '*', 'p', ARGV[a + 4 + i])
      if type(r) == 'table' then out[j + 1] = r.err end
    end
  end
end
return out
`)

// header is Lua that reads a message's part count from its value's header: parts(key) is
// nil when the key holds no message.
const header = `
local function parts(key)
  local h = redis.call('GETRANGE', key, 0, 1)
  if #h < 2 or string.sub(h, 1, 1) ~= 'M' then return nil end
  return string.byte(h, 2)
end
`

// keepWith gives the receipts list the message's expiry.
const keepWith = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
`

// parkMark is the id map's value while receipts are parked under an upstream id and no
// mapping exists yet. UpdatePart and Settle write the mapping with SET ... GET: reading the
// mark back tells them, without a second command, that receipts wait in the park list.
const parkMark = "-"

// mapOrPark: KEYS id map, park list. ARGV parked entry, park ttl(ms). Returns the mapping, or
// nil after parking the receipt (and marking the id map, see parkMark). Atomic with the
// SET ... GET of a settle: a receipt is either parked (and marked) before, or sees the mapping.
var mapOrPark = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= '` + parkMark + `' then return v end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], '` + parkMark + `', 'PX', ARGV[2])
return false
`)

// applyReceipt: KEYS msg, receipts. ARGV part, the part state event (appendState), the
// receipt's record. Returns the message value, -1 when the message is gone or -2 when it has
// no such part: then nothing was written.
var applyReceipt = goredis.NewScript(header + `
local n = parts(KEYS[1])
if not n then return -1 end
if tonumber(ARGV[1]) >= n then return -2 end
redis.call('APPEND', KEYS[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
` + keepWith + `
return redis.call('GET', KEYS[1])
`)

// appendEvents: KEYS msg. ARGV events. Appends them to the message (a cancel's part states,
// a replacement). Returns the message value, or -1 when the message is gone.
var appendEvents = goredis.NewScript(header + `
if not parts(KEYS[1]) then return -1 end
redis.call('APPEND', KEYS[1], ARGV[1])
return redis.call('GET', KEYS[1])
`)

// dropNonMessage: KEYS msg. Deletes the key when it holds no message: what an APPEND to a
// message that does not exist created (see updateOp).
var dropNonMessage = goredis.NewScript(header + `
if parts(KEYS[1]) then return 0 end
return redis.call('DEL', KEYS[1])
`)

// convertHash: KEYS msg. ARGV value, the hash's field count when read. Replaces a message hash
// of the release before with its value, keeping its time to live, unless it changed since it
// was read (then 0: read it again). Returns 1 when done, 2 when the key is no hash (any more).
var convertHash = goredis.NewScript(`
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 2 end
if redis.call('HLEN', KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`)

// receiptScript is mapOrPark and applyReceipt in one script, for a store not on Cluster,
// where a script may touch keys of any slot: a receipt is looked up, and applied or parked, in
// one round trip. The message's keys follow from the id map's value as in Go (kMsg, kRcpt:
// the shard is FNV-1a of the id, the shards' tags are built into the script).
//
// KEYS id map, park list. ARGV parked entry, park ttl(ms), the part state event's body after
// the part (appendStateTail), the receipt's record with an empty message id and part 0 (the
// script puts the mapping's in), key prefix. Returns nil after parking as mapOrPark does, else
// {mapping, message value}, with -1 for the value when the message is gone, -2 when it has no
// such part and -3 when the mapping is not "part:id": then nothing was written.
func receiptScript(tags []string) *goredis.Script {
	q := make([]string, len(tags))
	for i, t := range tags {
		q[i] = "'" + t + "'" // "{s<k>-<j>}": nothing to escape
	}
	return goredis.NewScript(header + `
local tags = {` + strings.Join(q, ",") + `}
local v = redis.call('GET', KEYS[1])
if not v or v == '` + parkMark + `' then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[1], '` + parkMark + `', 'PX', ARGV[2])
  return false
end
local c = string.find(v, ':', 1, true)
if not c then return {v, -3} end
local i = tonumber(string.sub(v, 1, c - 1))
local id = string.sub(v, c + 1)
if not i or i < 0 or i >= ` + strconv.Itoa(store.MaxParts) + ` or i ~= math.floor(i) then return {v, -3} end
local h = 2166136261
for j = 1, #id do
  h = bit.bxor(h, string.byte(id, j)) % 4294967296
  h = ((h % 256) * 16777216 + h * 403) % 4294967296
end
local tag = tags[h % #tags + 1]
local mk, rk = ARGV[5] .. 'm:' .. tag .. id, ARGV[5] .. 'r:' .. tag .. id
local n = parts(mk)
if not n then return {v, -1} end
if i >= n then return {v, -2} end
local function uvarint(n)
  local out = ''
  while n >= 128 do
    out = out .. string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  return out .. string.char(n)
end
local body = uvarint(i) .. ARGV[3]
redis.call('APPEND', mk, 'r' .. uvarint(#body) .. body)
redis.call('RPUSH', rk, string.sub(ARGV[4], 1, 2) .. uvarint(#id) .. id .. uvarint(i) .. string.sub(ARGV[4], 5))
local ttl = redis.call('PTTL', mk)
if ttl > 0 then redis.call('PEXPIRE', rk, ttl) end
return {v, redis.call('GET', mk)}
`)
}

// holds is Lua that checks the claim a lease names still holds an entry: hold(stream, group,
// id, count) returns the entry's owner when it is pending with that delivery count, 0 when it
// is not pending (acknowledged, or never claimed) and -1 when its delivery count moved on
// (claimed again since). Every claim (XREADGROUP, XAUTOCLAIM) raises the count, so it names
// the claim.
const holds = `
local function hold(stream, group, id, count)
  local pe = redis.pcall('XPENDING', stream, group, id, id, 1)
  if type(pe) ~= 'table' or pe.err or #pe == 0 then return 0 end
  if tonumber(pe[1][4]) ~= tonumber(count) then return -1 end
  return pe[1][2]
end
`

// claim: KEYS stream, delayed set (one shard of a queue). ARGV group, consumer, count, min
// idle(ms), now(ms), consumer max idle(ms), sweep (1: delete idle consumers), parked (1: the
// consumer's parking consumer may hold entries), XAUTOCLAIM cursor.
//
// Moves due delayed entries into the stream, takes entries parked at a restart (see adopt),
// reclaims entries idle past the visibility time-out (XAUTOCLAIM), then reads new ones.
// Returns {entries, cursor, parked left, next, last}: entries are {id, fields, reclaimed,
// delivery count} tuples; next is the first entry not yet delivered as {id, fields} (an empty
// table when there is none, false when the count was filled before reading); last is the id
// to wait for new entries after (XREAD), when next is empty.
//
// XAUTOCLAIM looks at no more than 10 x COUNT pending entries per call, so it continues from
// where this instance's previous claim of the shard stopped (the cursor, kept by the caller)
// and wraps round to 0-0; always starting at 0-0 would leave an idle entry behind many fresh
// ones waiting for them to go idle too.
//
// When sweep is set it also deletes the group's consumers that hold no pending entries and
// have been idle longer than the consumer max idle: instances renamed or gone and emptied
// parking consumers would otherwise leave names behind for ever. Deleting one that is still in
// use costs nothing: its next XREADGROUP creates it again.
var claim = goredis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5], 'LIMIT', 0, 256)
for _, m in ipairs(due) do
  local s1 = string.find(m, '|', 1, true)
  local s2 = string.find(m, '|', s1 + 1, true)
  local s3 = string.find(m, '|', s2 + 1, true)
  redis.call('XADD', KEYS[1], '*', 'p', string.sub(m, s3 + 1), 'a', string.sub(m, 1, s1 - 1), 'r', string.sub(m, s1 + 1, s2 - 1))
  redis.call('ZREM', KEYS[2], m)
end
if ARGV[7] == '1' then
  local cs = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
  if cs.err then cs = {} end
  for _, c in ipairs(cs) do
    local name, pending, idle
    for i = 1, #c, 2 do
      if c[i] == 'name' then name = c[i + 1] elseif c[i] == 'pending' then pending = c[i + 1] elseif c[i] == 'idle' then idle = c[i + 1] end
    end
    if name and name ~= ARGV[2] and pending == 0 and idle and idle > tonumber(ARGV[6]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    end
  end
end
local count = tonumber(ARGV[3])
local out = {}
local cursor = ARGV[9]
local left = 0
local function autoclaim(from)
  local ac = redis.pcall('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], from, 'COUNT', count - #out)
  if ac.err then
    if string.find(ac.err, 'NOGROUP', 1, true) then
      redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
      return '0-0'
    end
    return redis.error_reply(ac.err)
  end
  for _, e in ipairs(ac[2]) do
    if e and e[2] then
      local pe = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
      out[#out + 1] = {e[1], e[2], 1, pe[1][4]}
    end
  end
  return ac[1]
end
local start = cursor
cursor = autoclaim(start)
if type(cursor) == 'table' then return cursor end
if cursor == '0-0' and start ~= '0-0' and #out < count then
  cursor = autoclaim('0-0')
  if type(cursor) == 'table' then return cursor end
end
if ARGV[8] == '1' and #out < count then
  local parked = ARGV[2] .. '#previous'
  local want = count - #out
  local pp = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', want, parked)
  if #pp > 0 then
    local ids, dc = {}, {}
    for i, p in ipairs(pp) do ids[i] = p[1]; dc[p[1]] = p[4] end
    for _, e in ipairs(redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids))) do
      if e and e[2] then out[#out + 1] = {e[1], e[2], 1, dc[e[1]] + 1} end
    end
  end
  if #pp == want then left = 1 end
end
local next, last = false, ''
if #out < count then
  local want = count - #out
  local rg = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want, 'STREAMS', KEYS[1], '>')
  local got = 0
  if rg then
    for _, e in ipairs(rg[1][2]) do out[#out + 1] = {e[1], e[2], 0, 1}; got = got + 1; last = e[1] end
  end
  next = {}
  if got == want then
    local nx = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)
    if #nx > 0 then next = nx[1] end
  else
    local lx = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
    if #lx > 0 then last = lx[1][1] else last = '0-0' end
  end
end
return {out, cursor, left, next, last}
`)

// adopt: KEYS stream (one shard of a queue). ARGV group, consumer. A consumer's first claim
// of a queue since the store was opened runs it on every shard. A consumer's name is the same
// across restarts of its instance, so what it had claimed and not settled when the process
// stopped is still pending for it: adopt moves those entries to a parking consumer,
// "<consumer>#previous" (XCLAIM JUSTID: the delivery count stays), so they are told apart
// from what this run claims; the claims then take parked entries first (XCLAIM, a new
// delivery count, so leases of the previous run are stale). Should the instance stop again
// before they are all taken, they are still reclaimed by anyone after the visibility
// time-out. Returns {parked (1 when the parking consumer holds entries), next} with next as
// in claim: the first entry not yet delivered, or an empty table.
var adopt = goredis.NewScript(`
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local parked = ARGV[2] .. '#previous'
for _ = 1, 1000 do
  local pe = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1000, ARGV[2])
  if #pe == 0 then break end
  local ids = {}
  for i, p in ipairs(pe) do ids[i] = p[1] end
  ids[#ids + 1] = 'JUSTID'
  redis.call('XCLAIM', KEYS[1], ARGV[1], parked, 0, unpack(ids))
end
local left = 0
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, parked) > 0 then left = 1 end
local ld = '0-0'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, id
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then id = g[i + 1] end
  end
  if name == ARGV[1] then ld = id end
end
local next = {}
local nx = redis.call('XRANGE', KEYS[1], '(' .. ld, '+', 'COUNT', 1)
if #nx > 0 then next = nx[1] end
return {left, next}
`)

// giveBack: KEYS stream, delayed set. ARGV group, entry id, delay(ms), now(ms), why (0 a
// give-back, 1 a lost PDU, 2 a postponement), the lease's delivery count. Removes the entry
// and adds it again (at once, or in the delayed set), counting an attempt unless it is
// postponed and marking a lost PDU reclaimed. Returns 1 when done, 0 when the
// entry is gone (acknowledged), -1 when the lease is stale (the entry was claimed again):
// then nothing is touched.
var giveBack = goredis.NewScript(holds + `
local h = hold(KEYS[1], ARGV[1], ARGV[2], ARGV[6])
if h == 0 or h == -1 then return h end
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #e == 0 then return 0 end
local f = e[1][2]
local p, a, r = '', 0, '0'
for i = 1, #f, 2 do
  if f[i] == 'p' then p = f[i + 1] elseif f[i] == 'a' then a = tonumber(f[i + 1]) elseif f[i] == 'r' then r = f[i + 1] end
end
if ARGV[5] == '1' then r = '1' end
if ARGV[5] ~= '2' then a = a + 1 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local delay = tonumber(ARGV[3])
if delay > 0 then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + delay, a .. '|' .. r .. '|' .. ARGV[2] .. '|' .. p)
else
  redis.call('XADD', KEYS[1], '*', 'p', p, 'a', a, 'r', r)
end
return 1
`)

// rerouteTake, Reroute's first step: KEYS stream. ARGV group, entry id, the lease's delivery
// count. When the lease holds the entry, claims it again for its owner with the same delivery
// count (XCLAIM RETRYCOUNT), which resets its idle time, so nobody reclaims it while it is
// copied, and leaves the lease valid should the copy fail. Returns {payload, attempts}, or
// 0 / -1 as hold does.
var rerouteTake = goredis.NewScript(holds + `
local h = hold(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if h == 0 or h == -1 then return h end
local e = redis.call('XCLAIM', KEYS[1], ARGV[1], h, 0, ARGV[2], 'RETRYCOUNT', ARGV[3])
if #e == 0 or not e[1] or not e[1][2] then return 0 end
local f = e[1][2]
local p, a = false, '0'
for i = 1, #f, 2 do
  if f[i] == 'p' then p = f[i + 1] elseif f[i] == 'a' then a = f[i + 1] end
end
if not p then return 0 end
return {p, a}
`)

// ackHeld: KEYS stream. ARGV group, entry id, delivery count. Acknowledges and deletes the
// entry if that claim still holds it. Returns 1, or 0 / -1 as hold does.
var ackHeld = goredis.NewScript(holds + `
local h = hold(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if h == 0 or h == -1 then return h end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
`)

var allScripts = []*goredis.Script{acceptAll, mapOrPark, applyReceipt, appendEvents, dropNonMessage, convertHash, claim, adopt, giveBack, rerouteTake, ackHeld, editQueue}
