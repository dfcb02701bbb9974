package schedule

import (
	"math/bits"
	"time"
)

// Jitter returns a deterministic delay in [0, maxDelay) for (id,
// scheduledAt) that never reaches next, the following nominal fire: the
// result is below next-scheduledAt when next is non-zero. maxDelay <= 0
// gives 0.
//
// The same fire gets the same delay in every process and after a restart,
// so a restarted daemon plans exactly the instant it planned before, while
// deployments sharing a cron minute spread over the window instead of
// stampeding the session backend together.
func Jitter(id string, scheduledAt, next time.Time, maxDelay time.Duration) time.Duration {
	limit := maxDelay
	if !next.IsZero() {
		if gap := next.Sub(scheduledAt); gap < limit {
			limit = gap
		}
	}
	if limit <= 0 {
		return 0
	}
	// Scale a uniform 64-bit hash onto [0, limit) with the high word of the
	// product: no modulo bias, no division.
	offset, _ := bits.Mul64(jitterHash(id, scheduledAt), uint64(limit))
	return time.Duration(offset)
}

// jitterHash mixes a fire's identity into 64 well-spread bits. It is FNV-1a
// (stable across processes and Go versions, unlike hash/maphash whose seed
// is random per process) followed by an avalanche step, because FNV's high
// bits barely move between similar ids.
func jitterHash(id string, scheduledAt time.Time) uint64 {
	const (
		fnvOffset = 14695981039346656037
		fnvPrime  = 1099511628211
	)
	h := uint64(fnvOffset)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * fnvPrime
	}
	// Seconds and nanoseconds rather than UnixNano, which overflows outside
	// the years 1678-2262. The fixed-width tail keeps (id, instant) pairs
	// from colliding by concatenation.
	for _, word := range [2]uint64{uint64(scheduledAt.Unix()), uint64(scheduledAt.Nanosecond())} {
		for shift := 56; shift >= 0; shift -= 8 {
			h = (h ^ (word >> shift & 0xff)) * fnvPrime
		}
	}
	return mix64(h)
}

// mix64 is the SplitMix64 finalizer: each input bit flips about half of the
// output bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
