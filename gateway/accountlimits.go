package gateway

import (
	"sync"
	"time"

	"github.com/smppgw/smppgw/internal/tokenbucket"
)

// accountLimits is the throughput cap of each account (Account.Throughput): one token bucket per
// account, shared by every way a submission comes in, the SMPP sessions of the Server and the API of
// the Gateway, so that the account gets its quota once, not once per path. A Gateway owns one and
// gives it to its Server; a Server built alone (NewServer) has its own. It caps this process only:
// instances sharing a Redis each grant the full quota.
type accountLimits struct {
	mu sync.Mutex
	m  map[string]*tokenbucket.Bucket
}

func newAccountLimits() *accountLimits {
	return &accountLimits{m: make(map[string]*tokenbucket.Bucket)}
}

// bucket returns the account's bucket at rate, nil when rate is not positive (no cap). A bucket is
// made once per account and its rate follows the account's when that changes, so that the paths
// holding it keep sharing it.
func (l *accountLimits) bucket(systemID string, rate float64) *tokenbucket.Bucket {
	if rate <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[systemID]
	if b == nil {
		b = tokenbucket.New(rate, time.Now())
		l.m[systemID] = b
		return b
	}
	b.SetRate(rate, time.Now())
	return b
}
