package redis

import goredis "github.com/redis/go-redis/v9"

// Lua scripts make each multi-key step atomic on the server. Every script touches keys of
// one hash slot only, so they run unchanged on Redis Cluster, except acceptAll, which is used
// only on a single node or Sentinel (see Store.AcceptMessage).
//
// Message hash fields (key m:{id}):
//
//	b        the record as accepted (store.AppendMessage); the fields below override it
//	s        message status           hist   "state:unixnano;" per status change
//	n        number of parts          u      updated, unix nanoseconds
//	ps<i>    part status              pe<i>  part error code
//	pu<i>    part upstream            pi<i>  part upstream id
//	pt<i>    part updated (ns)        pq<i>  part submitted (ns)
//
// The status rules are store.Aggregate's, mirrored in statusLib; the conformance suite runs
// the same expectations against both stores.

const statusLib = `
local final = {[2]=true, [3]=true, [4]=true, [5]=true, [8]=true}
local order = {8, 5, 3, 4, 2}

-- aggregateOf is the message status of n part states (strings or numbers, nil: ACCEPTED).
local function aggregateOf(st, n)
  local allFinal, allAcc, allUnk = true, true, true
  for i = 1, n do
    local s = tonumber(st[i] or '6')
    st[i] = s
    if s ~= 6 then allAcc = false end
    if not final[s] then
      allFinal = false
      if s ~= 7 then allUnk = false end
    end
  end
  if allAcc then return 6 end
  if allFinal then
    for _, f in ipairs(order) do
      for i = 1, n do if st[i] == f then return f end end
    end
    return 2
  end
  if allUnk then return 7 end
  return 1
end

local function aggregate(key)
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if n == 0 then return 7 end
  local fields = {}
  for i = 0, n - 1 do fields[#fields + 1] = 'ps' .. i end
  return aggregateOf(redis.call('HMGET', key, unpack(fields)), n)
end

-- setPart moves part i to state st unless it is already final.
local function setPart(key, i, st, code, now)
  if st == 0 then return end
  local cur = tonumber(redis.call('HGET', key, 'ps' .. i) or '6')
  if final[cur] then return end
  redis.call('HSET', key, 'ps' .. i, st, 'pt' .. i, now)
  if code ~= '0' then redis.call('HSET', key, 'pe' .. i, code) end
end

local function refresh(key, now)
  local agg = aggregate(key)
  if tonumber(redis.call('HGET', key, 's') or '0') ~= agg then
    redis.call('HSET', key, 's', agg, 'hist', (redis.call('HGET', key, 'hist') or '') .. agg .. ':' .. now .. ';')
  end
  redis.call('HSET', key, 'u', now)
end
`

// writeMsg creates the message hash; ARGV[6] is when it expires (unix ms), 0 for never.
const writeMsg = `
local n = tonumber(ARGV[2])
local f = {'b', ARGV[1], 'n', n, 's', ARGV[3], 'hist', ARGV[3] .. ':' .. ARGV[4] .. ';', 'u', ARGV[4]}
for i = 0, n - 1 do f[#f + 1] = 'ps' .. i; f[#f + 1] = ARGV[3] end
redis.call('HSET', KEYS[1], unpack(f))
if ARGV[6] ~= '0' then redis.call('PEXPIREAT', KEYS[1], ARGV[6]) end
`

// acceptAll: KEYS msg, stream, index, account index, set of accounts. ARGV record, parts,
// status, created(ns), index member, expiry(ms), then one part payload per part, then the
// account to add to the set of accounts, empty when this instance added it lately (see
// Store.accountSeen). Returns 0 when the id is taken.
var acceptAll = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
` + writeMsg + `
redis.call('ZADD', KEYS[3], 0, ARGV[5])
redis.call('ZADD', KEYS[4], 0, ARGV[5])
if ARGV[7 + n] ~= '' then redis.call('SADD', KEYS[5], ARGV[7 + n]) end
for i = 1, n do redis.call('XADD', KEYS[2], '*', 'p', ARGV[6 + i]) end
return 1
`)

// acceptMsg is acceptAll's first half for Redis Cluster: KEYS msg; ARGV the first six of
// acceptAll. The index and queue writes follow in the next round trip.
var acceptMsg = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
` + writeMsg + `
return 1
`)

// keepWith gives the receipts list the message hash's expiry.
const keepWith = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
`

// mapSet: KEYS id map, park list. ARGV value, ttl(ms). Writes the mapping and returns what is
// parked, atomically with mapOrPark, so a receipt is either parked before (and returned here)
// or sees the mapping.
var mapSet = goredis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('LRANGE', KEYS[2], 0, -1)
`)

// mapOrPark: KEYS id map, park list. ARGV parked entry, park ttl(ms). Returns the mapping, or
// nil after parking the receipt.
var mapOrPark = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return false
`)

// updatePart: KEYS msg, receipts. ARGV part, upstream, upstream id, status, error, now(ns),
// then per attached receipt: state, error, received(ns), record. Returns the message hash,
// -1 when the message does not exist, -2 when it has no such part.
var updatePart = goredis.NewScript(statusLib + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local i = tonumber(ARGV[1])
if i < 0 or i >= tonumber(redis.call('HGET', KEYS[1], 'n') or '0') then return -2 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'pu' .. i, ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'pi' .. i, ARGV[3], 'pq' .. i, ARGV[6]) end
setPart(KEYS[1], i, tonumber(ARGV[4]), ARGV[5], ARGV[6])
refresh(KEYS[1], ARGV[6])
for j = 7, #ARGV, 4 do
  setPart(KEYS[1], i, tonumber(ARGV[j]), ARGV[j + 1], ARGV[j + 2])
  refresh(KEYS[1], ARGV[j + 2])
  redis.call('RPUSH', KEYS[2], ARGV[j + 3])
end
` + keepWith + `
return redis.call('HGETALL', KEYS[1])
`)

// settle: KEYS id map, park list, msg, stream. ARGV id map value (empty when there is no
// upstream id), id map ttl(ms), group, entry id, part, upstream, upstream id, status, error,
// now(ns). Settle's fast path on one node: writes the id map, then, unless a receipt is
// parked under the upstream id (returns 0 having done only that: the caller takes the slow
// path, UpdatePart and Ack), updates the message with one read and one write and removes the
// entry. Returns the message hash as it was followed by the fields written (later ones win),
// or -1 / -2 as updatePart, having changed nothing but the id map.
var settle = goredis.NewScript(statusLib + `
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
end
local h = redis.call('HGETALL', KEYS[3])
if #h == 0 then return -1 end
local f = {}
for j = 1, #h, 2 do f[h[j]] = h[j + 1] end
local n = tonumber(f['n'] or '0')
local i = tonumber(ARGV[5])
if i < 0 or i >= n then return -2 end
local set = {}
local function put(k, v)
  set[#set + 1] = k
  set[#set + 1] = v
  f[k] = v
end
local now = ARGV[10]
if ARGV[6] ~= '' then put('pu' .. i, ARGV[6]) end
if ARGV[7] ~= '' then put('pi' .. i, ARGV[7]); put('pq' .. i, now) end
local st = tonumber(ARGV[8])
if st ~= 0 and not final[tonumber(f['ps' .. i] or '6')] then
  put('ps' .. i, ARGV[8])
  put('pt' .. i, now)
  if ARGV[9] ~= '0' then put('pe' .. i, ARGV[9]) end
end
local states = {}
for j = 0, n - 1 do states[j + 1] = f['ps' .. j] end
local agg = aggregateOf(states, n)
if tonumber(f['s'] or '0') ~= agg then
  put('hist', (f['hist'] or '') .. agg .. ':' .. now .. ';')
  put('s', tostring(agg))
end
put('u', now)
redis.call('HSET', KEYS[3], unpack(set))
redis.pcall('XACK', KEYS[4], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[4], ARGV[4])
for j = 1, #set do h[#h + 1] = set[j] end
return h
`)

// applyReceipt: KEYS msg, receipts. ARGV part, state, error, received(ns), record. Returns
// the message hash, or -1 when the message is gone.
var applyReceipt = goredis.NewScript(statusLib + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local i = tonumber(ARGV[1])
if i >= tonumber(redis.call('HGET', KEYS[1], 'n') or '0') then return -2 end
setPart(KEYS[1], i, tonumber(ARGV[2]), ARGV[3], ARGV[4])
refresh(KEYS[1], ARGV[4])
redis.call('RPUSH', KEYS[2], ARGV[5])
` + keepWith + `
return redis.call('HGETALL', KEYS[1])
`)

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

// claim: KEYS stream, delayed set, XAUTOCLAIM cursor, consumer sweep gate. ARGV group,
// consumer, count, min idle(ms), now(ms), consumer max idle(ms), sweep interval(ms), adopt
// (1 on the first claim of the queue by this consumer since the store was opened).
//
// Moves due delayed entries into the stream, hands out again what the consumer held before a
// restart, reclaims entries idle past the visibility time-out (XAUTOCLAIM), then reads new
// ones. Returns {id, fields, reclaimed, delivery count} tuples.
//
// A consumer's name is the same across restarts of its instance, so what it had claimed and
// not settled when the process stopped is still pending for it. Its first claim after the
// start (adopt) moves those entries to a parking consumer, "<consumer>#previous" (XCLAIM
// JUSTID: the delivery count stays), so they are told apart from what this run claims; each
// claim then takes parked entries first (XCLAIM, a new delivery count, so leases of the
// previous run are stale). Should the instance stop again before they are all taken, they are
// still reclaimed by anyone after the visibility time-out.
//
// XAUTOCLAIM looks at no more than 10 x COUNT pending entries per call, so it continues from
// where the previous claim of the queue stopped (the cursor key) and wraps round to 0-0;
// always starting at 0-0 would leave an idle entry behind many fresh ones waiting for them
// to go idle too.
//
// At most once per sweep interval per queue it also deletes the group's consumers that hold
// no pending entries and have been idle longer than the consumer max idle: instances renamed
// or gone and emptied parking consumers would otherwise leave names behind for ever. Deleting one that is still in use costs nothing: its next XREADGROUP creates it again.
var claim = goredis.NewScript(`
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local parked = ARGV[2] .. '#previous'
if ARGV[8] == '1' then
  for _ = 1, 1000 do
    local pe = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1000, ARGV[2])
    if #pe == 0 then break end
    local ids = {}
    for i, p in ipairs(pe) do ids[i] = p[1] end
    ids[#ids + 1] = 'JUSTID'
    redis.call('XCLAIM', KEYS[1], ARGV[1], parked, 0, unpack(ids))
  end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5], 'LIMIT', 0, 256)
for _, m in ipairs(due) do
  local s1 = string.find(m, '|', 1, true)
  local s2 = string.find(m, '|', s1 + 1, true)
  local s3 = string.find(m, '|', s2 + 1, true)
  redis.call('XADD', KEYS[1], '*', 'p', string.sub(m, s3 + 1), 'a', string.sub(m, 1, s1 - 1), 'r', string.sub(m, s1 + 1, s2 - 1))
  redis.call('ZREM', KEYS[2], m)
end
if redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[7]) then
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
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
local pp = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', count, parked)
if #pp > 0 then
  local ids = {}
  for i, p in ipairs(pp) do ids[i] = p[1] end
  for _, e in ipairs(redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(ids))) do
    if e and e[2] then
      local pe = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
      out[#out + 1] = {e[1], e[2], 1, pe[1][4]}
    end
  end
end
local function autoclaim(from)
  local ac = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], from, 'COUNT', count - #out)
  for _, e in ipairs(ac[2]) do
    if e and e[2] then
      local pe = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
      out[#out + 1] = {e[1], e[2], 1, pe[1][4]}
    end
  end
  return ac[1]
end
if #out < count then
  local start = redis.call('GET', KEYS[3]) or '0-0'
  local cursor = autoclaim(start)
  if cursor == '0-0' and start ~= '0-0' and #out < count then
    cursor = autoclaim('0-0')
  end
  if cursor == '0-0' then redis.call('DEL', KEYS[3]) else redis.call('SET', KEYS[3], cursor) end
end
if #out < count then
  local rg = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', count - #out, 'STREAMS', KEYS[1], '>')
  if rg then
    for _, e in ipairs(rg[1][2]) do out[#out + 1] = {e[1], e[2], 0, 1} end
  end
end
return out
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

var allScripts = []*goredis.Script{acceptAll, acceptMsg, mapSet, mapOrPark, updatePart, settle, applyReceipt, claim, giveBack, rerouteTake, ackHeld, editQueue, cancelParts, setRecord}
