package redis

import (
	"context"
	"sync"

	"github.com/smppgw/smppgw/store"
)

var _ store.Events = (*Store)(nil)

// kEvents is the pub/sub channel of store.Events. PUBLISH reaches every node's subscribers in a
// Redis Cluster too, so one channel serves every deployment.
func (s *Store) kEvents() string { return s.prefix + "events" }

// PublishEvents implements store.Events with PUBLISH.
func (s *Store) PublishEvents(ctx context.Context, payload []byte) error {
	return mapErr(s.c.Publish(ctx, s.kEvents(), payload).Err())
}

// SubscribeEvents implements store.Events with SUBSCRIBE on a connection of its own, which go-redis
// re-establishes (and re-subscribes) when it breaks.
func (s *Store) SubscribeEvents(ctx context.Context, handle func(payload []byte)) (func(), error) {
	ps := s.c.Subscribe(context.Background(), s.kEvents())
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		_ = ps.Close()
		return nil, mapErr(err)
	}
	ch := ps.Channel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for m := range ch {
			handle([]byte(m.Payload))
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = ps.Close() // closes ch
			wg.Wait()
		})
	}, nil
}
