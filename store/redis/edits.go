package redis

import (
	"context"
	"fmt"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// editQueue: KEYS stream, delayed set. ARGV group, mode ('c' cancel, 'r' replace), the
// PartTaskTag byte, then one (key, new payload) pair per part that may be queued (see
// store.PartTaskKey; the payload is empty for a cancel). Walks the stream and the delayed set
// for entries of those parts; an entry that is pending (claimed: in flight) is left alone, any
// other is deleted (cancel) or deleted and added again with the new payload and its give-back
// fields (replace). Atomic, so a claim either took an entry before (and it is left alone) or
// never sees it. Returns the 1-based positions of the pairs whose entries it changed.
var editQueue = goredis.NewScript(`
local keys, pays = {}, {}
for j = 4, #ARGV, 2 do keys[#keys + 1] = ARGV[j]; pays[#pays + 1] = ARGV[j + 1] end
local function which(p)
  if not p or string.sub(p, 1, 1) ~= ARGV[3] then return nil end
  for i, k in ipairs(keys) do
    if string.sub(p, 3, 2 + #k) == k then return i end
  end
  return nil
end
local out = {}
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    local f = e[2]
    local p, a, r = nil, '0', '0'
    for i = 1, #f, 2 do
      if f[i] == 'p' then p = f[i + 1] elseif f[i] == 'a' then a = f[i + 1] elseif f[i] == 'r' then r = f[i + 1] end
    end
    local i = which(p)
    if i then
      local pe = redis.pcall('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
      local pending = type(pe) == 'table' and not pe.err and #pe > 0
      if not pending then
        redis.call('XDEL', KEYS[1], e[1])
        if ARGV[2] == 'r' then redis.call('XADD', KEYS[1], '*', 'p', pays[i], 'a', a, 'r', r) end
        out[#out + 1] = i
      end
    end
  end
end
local d = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for j = 1, #d, 2 do
  local m = d[j]
  local s1 = string.find(m, '|', 1, true)
  local s2 = s1 and string.find(m, '|', s1 + 1, true)
  local s3 = s2 and string.find(m, '|', s2 + 1, true)
  local i = s3 and which(string.sub(m, s3 + 1))
  if i then
    redis.call('ZREM', KEYS[2], m)
    if ARGV[2] == 'r' then redis.call('ZADD', KEYS[2], d[j + 1], string.sub(m, 1, s3) .. pays[i]) end
    out[#out + 1] = i
  end
end
return out
`)

// CancelMessage removes the message's unclaimed entries, then marks their parts DELETED: two
// steps (the queue entries and the message share their shard's slot, but the steps are kept
// apart as when they did not). A failure between them
// leaves parts that never go out but still show as queued, never a cancelled part sent.
func (s *Store) CancelMessage(ctx context.Context, id, account string) (*store.Message, []int, error) {
	return s.editQueued(ctx, id, account, nil)
}

// ReplaceMessage replaces the message's unclaimed entry, then its record.
func (s *Store) ReplaceMessage(ctx context.Context, id, account string, r store.Replacement) (*store.Message, []int, error) {
	return s.editQueued(ctx, id, account, &r)
}

func (s *Store) editQueued(ctx context.Context, id, account string, r *store.Replacement) (*store.Message, []int, error) {
	m, err := s.GetMessage(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if err := store.CheckEdit(m, account, r); err != nil {
		return nil, nil, err
	}
	cand := store.EditableParts(m)
	if len(cand) == 0 {
		return m, nil, nil
	}
	now := nowUTC()
	mode := "c"
	var replaced *store.Message
	if r != nil {
		mode = "r"
		c := *m
		c.Parts = slices.Clone(m.Parts)
		store.ApplyReplace(&c, r, now)
		replaced = &c
	}
	args := []any{group, mode, string([]byte{store.PartTaskTag})}
	for _, i := range cand {
		var payload []byte
		if replaced != nil {
			payload = store.AppendPartTask(nil, store.NewPartTask(replaced, i))
		}
		args = append(args, store.PartTaskKey(id, i), payload)
	}
	q := store.Queue{Kind: store.SubmitQueue, Name: m.Upstream}
	sh := s.shardOf(id) // the message's entries are in its shard's stream
	var (
		round int
		qcmd  *goredis.Cmd
		mcmd  *goredis.Cmd
		parts []int
	)
	var result error
	err = s.do(ctx, func(p goredis.Pipeliner) bool {
		round++
		switch round {
		case 1:
			qcmd = editQueue.EvalSha(ctx, p, []string{s.kStream(q, sh), s.kDelayed(q, sh)}, args...)
			return true
		case 2:
			pos, err := qcmd.Int64Slice()
			if err != nil {
				result = mapErr(err)
				return false
			}
			for _, j := range pos {
				if j >= 1 && int(j) <= len(cand) && !slices.Contains(parts, cand[j-1]) {
					parts = append(parts, cand[j-1])
				}
			}
			if len(parts) == 0 {
				return false
			}
			slices.Sort(parts)
			var events []byte
			if r != nil {
				events = appendReplace(nil, r, now)
			} else {
				for _, i := range parts {
					events = appendState(events, i, pdu.DELETED, 0, now)
				}
			}
			mcmd = appendEvents.EvalSha(ctx, p, []string{s.kMsg(id)}, events)
			return true
		case 3:
			v, err := mcmd.Result()
			m, result = messageReply(id, parts[0], v, err)
		}
		return false
	})
	if err != nil {
		return nil, nil, err
	}
	if result != nil {
		return nil, nil, fmt.Errorf("%w (parts %v taken from the queue)", result, parts)
	}
	return m, parts, nil
}
