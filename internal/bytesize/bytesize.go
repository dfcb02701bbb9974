// Package bytesize reads and writes the sizes config keys take: plain bytes
// or a number with a unit ("512MiB", "2GiB", "1.5G"), and prints them back in
// binary units for messages ("256 MiB").
package bytesize

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units maps a unit, lower-cased, to its multiplier. The IEC units and the
// bare letters are powers of 1024 (as systemd's MemoryMax= and docker's
// --memory read them); the SI units KB, MB, GB, TB are powers of 1000, as
// the standard defines them.
var units = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// Parse reads a size: bytes ("536870912") or a number, possibly with a
// fraction, and a unit (B, K, KiB, KB, M, MiB, MB, G, GiB, GB, T, TiB, TB;
// case does not matter; a space between is allowed). A fraction of a byte is
// dropped.
func Parse(s string) (int64, error) {
	text := strings.TrimSpace(s)
	i := 0
	for i < len(text) && (text[i] >= '0' && text[i] <= '9' || text[i] == '.') {
		i++
	}
	num, unit := text[:i], strings.ToLower(strings.TrimSpace(text[i:]))
	if num == "" {
		return 0, fmt.Errorf("%q is not a size (want bytes or a number with a unit: 512MiB, 2GiB)", s)
	}
	mult, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q (want B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)", s, strings.TrimSpace(text[i:]))
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err == nil && (mult == 1 || n <= math.MaxInt64/int64(mult)) {
			return n * int64(mult), nil
		}
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is not a size: %w", s, err)
		}
		return 0, fmt.Errorf("%q is too large", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (want bytes or a number with a unit: 512MiB, 2GiB)", s)
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// Format prints n in the largest binary unit that keeps it a whole number,
// or with one decimal above 1 KiB otherwise: "256 MiB", "1.5 GiB", "1000 B".
func Format(n int64) string {
	names := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	for i := len(names) - 1; i > 0; i-- {
		unit := int64(1) << (10 * i)
		if n >= unit && n%unit == 0 {
			return fmt.Sprintf("%d %s", n/unit, names[i])
		}
	}
	for i := len(names) - 1; i > 0; i-- {
		unit := int64(1) << (10 * i)
		if n >= unit {
			return strconv.FormatFloat(float64(n)/float64(unit), 'f', 1, 64) + " " + names[i]
		}
	}
	return fmt.Sprintf("%d B", n)
}
