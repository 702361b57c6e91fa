package load

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a log-linear histogram of durations, after HdrHistogram: values under 64ns count exactly,
// above that each power of two is cut into 32 buckets, so a bucket is within 1/32 (3%) of its values.
// It is a fixed 15 KiB whatever the count, and Record is two atomic adds, so a session's reader
// records into it while a progress reader may look.
type hist struct {
	b   [histBuckets]atomic.Uint64
	max atomic.Int64
}

const (
	histSub     = 32
	histBuckets = 2*histSub + 58*histSub
)

func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - 6 // v>>shift is in [32, 64)
	return 2*histSub + (shift-1)*histSub + int(v>>shift) - histSub
}

// histLow is the smallest value of bucket i.
func histLow(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	i -= 2 * histSub
	shift := i/histSub + 1
	return uint64(i%histSub+histSub) << shift
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.b[histIndex(uint64(d))].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// merge adds o's counts into h.
func (h *hist) merge(o *hist) {
	for i := range o.b {
		if n := o.b[i].Load(); n > 0 {
			h.b[i].Add(n)
		}
	}
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

// quantiles returns the values at each quantile q (0 < q <= 1), in the order given: the middle of
// the bucket holding it, never above the recorded maximum.
func (h *hist) quantiles(qs ...float64) []time.Duration {
	var total uint64
	for i := range h.b {
		total += h.b[i].Load()
	}
	out := make([]time.Duration, len(qs))
	if total == 0 {
		return out
	}
	max := h.max.Load()
	for j, q := range qs {
		rank := uint64(q*float64(total) + 0.5)
		if rank < 1 {
			rank = 1
		}
		var seen uint64
		for i := range h.b {
			seen += h.b[i].Load()
			if seen >= rank {
				lo := histLow(i)
				hi := lo + 1
				if i+1 < histBuckets {
					hi = histLow(i + 1)
				}
				v := int64(lo + (hi-lo)/2)
				if v > max {
					v = max
				}
				out[j] = time.Duration(v)
				break
			}
		}
	}
	return out
}
