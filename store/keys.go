package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"
)

// Index keys order by time first so a reverse cursor walk yields newest
// first; the id breaks ties so the order is total and stable.

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func readU64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// maxKeyTime is the latest instant nanoseconds since the epoch can hold
// (year 2262); UnixNano overflows past it.
var maxKeyTime = time.Unix(0, math.MaxInt64)

// timeKey encodes t as big-endian nanoseconds since the epoch. Times outside
// 1970…2262 saturate to the ends, so a far-future filter bound still sorts
// after everything.
func timeKey(t time.Time) []byte {
	switch {
	case t.Before(time.Unix(0, 0)):
		return u64(0)
	case t.After(maxKeyTime):
		return u64(math.MaxInt64)
	}
	return u64(uint64(t.UnixNano()))
}

func timeFromKey(b []byte) time.Time { return time.Unix(0, int64(readU64(b))).UTC() }

// createdKey is created|id.
func createdKey(created time.Time, id string) []byte {
	k := make([]byte, 0, 8+len(id))
	k = append(k, timeKey(created)...)
	return append(k, id...)
}

func splitCreatedKey(k []byte) (time.Time, string) {
	if len(k) < 8 {
		return time.Time{}, ""
	}
	return timeFromKey(k[:8]), string(k[8:])
}

// prefixed is prefix 0x00 rest: ids never contain NUL, so prefixes cannot collide.
func prefixed(prefix string, rest []byte) []byte {
	k := make([]byte, 0, len(prefix)+1+len(rest))
	k = append(k, prefix...)
	k = append(k, 0)
	return append(k, rest...)
}

func prefixOf(prefix string) []byte { return prefixed(prefix, nil) }

func hasPrefix(k, p []byte) bool { return bytes.HasPrefix(k, p) }
