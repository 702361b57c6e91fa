package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// What an upstream's answer to one attempt means for the part: accepted, throttled (the bind pauses),
// worth another attempt (lost, timed out, a temporary status) within MaxAttempts, or refused for good.

// throttlePause waits while the upstream asked us to slow down; false means ctx ended first.
func (c *Client) throttlePause(ctx context.Context) bool {
	for {
		until := c.throttleUntil.Load()
		if until == 0 {
			return true // not throttled: no clock read
		}
		d := time.Until(time.Unix(0, until))
		if d <= 0 {
			c.throttleUntil.CompareAndSwap(until, 0) // over, unless paused again meanwhile
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}

// newTPSLimiter is the token bucket of an upstream's MaxTPS: burst one, so that no second carries
// more than tps+1 requests; nil when tps is 0 (no cap).
func newTPSLimiter(tps float64) *rate.Limiter {
	if tps <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(tps), 1)
}

// waitTPS waits for the upstream's next token (MaxTPS); false means ctx ended first.
func (c *Client) waitTPS(ctx context.Context) bool {
	return c.tps == nil || c.tps.Wait(ctx) == nil
}

// result settles one attempt; it runs on the session's reader or timer, so it only requeues.
func (c *Client) result(j *Job, resp session.Response, err error) {
	switch {
	case err == nil:
		c.accepted.Add(1)
		c.throttleCur.Store(0)
		j.end(resp, nil)
	case errors.Is(err, pdu.ESME_RTHROTTLED) || errors.Is(err, pdu.ESME_RMSGQFUL):
		c.throttled.Add(1)
		d := time.Duration(c.throttleCur.Load())
		if d == 0 {
			d = c.cfg.ThrottleDelay
		} else {
			d = min(2*d, c.cfg.ThrottleDelayMax)
		}
		c.throttleCur.Store(int64(d))
		c.throttleUntil.Store(time.Now().Add(d).UnixNano())
		c.log.Info().Stringer("status", pdu.StatusOf(err)).Dur("pause", d).Msg("upstream throttling; slowing down")
		j.Attempts-- // the bind was asked to slow down; the part is not to blame
		c.queue.Requeue(j, RequeueThrottled, d)
	case (errors.Is(err, session.ErrLost) || errors.Is(err, session.ErrResponseTimeout) || temporaryStatus(err)) &&
		c.cfg.MaxAttempts > 0 && j.Attempts >= c.cfg.MaxAttempts:
		c.rejected.Add(1)
		c.log.Warn().Err(err).Int("attempts", j.Attempts).Msg("part sent as often as max_attempts allows; failing it")
		j.end(resp, fmt.Errorf("%w after %d: %w", ErrAttemptsExhausted, j.Attempts, err))
	case errors.Is(err, session.ErrLost) || errors.Is(err, session.ErrResponseTimeout):
		c.requeued.Add(1)
		j.Sequence = resp.Sequence
		c.queue.Requeue(j, RequeueLost, 0)
	case temporaryStatus(err):
		// A passing fault on the upstream's side (ESME_RSYSERR, ESME_RX_T_APPN): this part is tried
		// again after ThrottleDelay, without pausing the bind as throttling does; MaxAttempts bounds
		// the retries.
		c.requeued.Add(1)
		c.log.Info().Stringer("status", pdu.StatusOf(err)).Dur("retry_in", c.cfg.ThrottleDelay).Msg("upstream temporary error; retrying the part")
		c.queue.Requeue(j, RequeueTemporary, c.cfg.ThrottleDelay)
	default:
		c.rejected.Add(1)
		j.end(resp, err)
	}
}

// temporaryStatus reports whether err is a command status the upstream answered that is worth
// retrying (pdu.CommandStatus.Temporary), as opposed to a local error such as ErrLost.
func temporaryStatus(err error) bool {
	var st pdu.CommandStatus
	return errors.As(err, &st) && st.Temporary()
}
