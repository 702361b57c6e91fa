package redis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/store"
)

var _ store.RateLimits = (*Store)(nil)

// takeTokens is one bucket in a hash (t: tokens, ts: last refill in microseconds of Redis's clock):
// refill by the elapsed time, take up to ARGV[3] whole tokens, in one atomic step. Redis's TIME is the
// one clock of every instance. ARGV: rate/s, burst, n, idle ms.
var takeTokens = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, last = tonumber(cur[1]), tonumber(cur[2])
if not tokens or not last then
  tokens, last = burst, now
end
if now > last then
  tokens = math.min(burst, tokens + (now - last) * rate / 1000000)
  last = now
end
local take = math.min(n, math.floor(tokens))
if take < 0 then take = 0 end
tokens = tokens - take
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(last))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return take`)

func (s *Store) kBucket(key string) string { return s.prefix + "tb:{" + key + "}" }

// TakeTokens implements store.RateLimits.
func (s *Store) TakeTokens(ctx context.Context, key string, rate, burst float64, n int, idle time.Duration) (int, error) {
	switch {
	case key == "":
		return 0, fmt.Errorf("%w: empty bucket key", store.ErrInvalid)
	case !(rate > 0) || math.IsInf(rate, 0):
		return 0, fmt.Errorf("%w: bucket rate %v", store.ErrInvalid, rate)
	case !(burst >= 1) || math.IsInf(burst, 0):
		return 0, fmt.Errorf("%w: bucket burst %v", store.ErrInvalid, burst)
	case n < 0:
		return 0, fmt.Errorf("%w: %d tokens asked", store.ErrInvalid, n)
	case idle < time.Millisecond:
		return 0, fmt.Errorf("%w: bucket idle time %v", store.ErrInvalid, idle)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	got, err := takeTokens.Run(ctx, s.c, []string{s.kBucket(key)}, f(rate), f(burst), n, idle.Milliseconds()).Int()
	return got, mapErr(err)
}
