package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/store"
)

var _ store.Cluster = (*Store)(nil)

// A lease is a string key holding its owner's token with a PX expiry: SET NX PX takes it, and the
// scripts below renew or delete it only while it still holds the caller's token, in one atomic step,
// so an owner whose lease expired and was taken never extends or deletes the new owner's. The expiry
// is Redis's clock, the same for every instance.
var (
	acquireLease = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)
	renewLease = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
	releaseLease = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

func (s *Store) kLease(key string) string     { return s.prefix + "lease:" + key }
func (s *Store) kInstance(name string) string { return s.prefix + "instance:" + name }
func (s *Store) kInstances() string           { return s.prefix + "instances" }

func leaseArgs(key, owner string, ttl time.Duration) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty lease key", store.ErrInvalid)
	case owner == "":
		return fmt.Errorf("%w: empty lease owner", store.ErrInvalid)
	case ttl < time.Millisecond:
		return fmt.Errorf("%w: lease time to live %v", store.ErrInvalid, ttl)
	}
	return nil
}

// AcquireLease implements store.Leases.
func (s *Store) AcquireLease(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if err := leaseArgs(key, owner, ttl); err != nil {
		return false, err
	}
	n, err := acquireLease.Run(ctx, s.c, []string{s.kLease(key)}, owner, ttl.Milliseconds()).Int()
	return n == 1, mapErr(err)
}

// RenewLease implements store.Leases.
func (s *Store) RenewLease(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if err := leaseArgs(key, owner, ttl); err != nil {
		return false, err
	}
	n, err := renewLease.Run(ctx, s.c, []string{s.kLease(key)}, owner, ttl.Milliseconds()).Int()
	return n == 1, mapErr(err)
}

// ReleaseLease implements store.Leases.
func (s *Store) ReleaseLease(ctx context.Context, key, owner string) error {
	if err := leaseArgs(key, owner, time.Second); err != nil {
		return err
	}
	return mapErr(releaseLease.Run(ctx, s.c, []string{s.kLease(key)}, owner).Err())
}

// LeaseHolder implements store.Leases.
func (s *Store) LeaseHolder(ctx context.Context, key string) (string, error) {
	v, err := s.c.Get(ctx, s.kLease(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	return v, mapErr(err)
}

// The board is one key per instance with a PX expiry, and a set of the names published, which
// Instances reads and prunes of names whose key has expired. The two are written separately (they may
// live in different Cluster slots); a name in the set without its key is just pruned.

// PublishInstance implements store.Board.
func (s *Store) PublishInstance(ctx context.Context, name string, state []byte, ttl time.Duration) error {
	if err := leaseArgs(name, "-", ttl); err != nil {
		return err
	}
	if err := s.c.Set(ctx, s.kInstance(name), state, ttl).Err(); err != nil {
		return mapErr(err)
	}
	return mapErr(s.c.SAdd(ctx, s.kInstances(), name).Err())
}

// Instances implements store.Board.
func (s *Store) Instances(ctx context.Context) (map[string][]byte, error) {
	names, err := s.c.SMembers(ctx, s.kInstances()).Result()
	if err != nil {
		return nil, mapErr(err)
	}
	cmds := make([]*goredis.StringCmd, len(names))
	if _, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.Get(ctx, s.kInstance(n))
		}
		return nil
	}); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, mapErr(err)
	}
	out := make(map[string][]byte, len(names))
	var gone []any
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
			gone = append(gone, names[i])
		case err != nil:
			return nil, mapErr(err)
		default:
			out[names[i]] = b
		}
	}
	if len(gone) > 0 {
		// A racing PublishInstance adds its name again with its next publication.
		_ = s.c.SRem(ctx, s.kInstances(), gone...).Err()
	}
	return out, nil
}

// RemoveInstance implements store.Board.
func (s *Store) RemoveInstance(ctx context.Context, name string) error {
	if err := s.c.Del(ctx, s.kInstance(name)).Err(); err != nil {
		return mapErr(err)
	}
	return mapErr(s.c.SRem(ctx, s.kInstances(), name).Err())
}
