package bytesize

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "536870912": 536870912, "512MiB": 512 << 20, "2GiB": 2 << 30, "2gib": 2 << 30,
		"2 GiB": 2 << 30, "1.5G": 3 << 29, "4K": 4096, "1KB": 1000, "1MB": 1_000_000, "3GB": 3_000_000_000,
		"1T": 1 << 40, "100B": 100, " 64M ": 64 << 20, "0.5KiB": 512,
	} {
		got, err := Parse(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, want := range map[string]string{
		"":                     "is not a size",
		"lots":                 "is not a size",
		"2 gigs":               `unknown unit "gigs"`,
		"-1G":                  "is not a size",
		"1.2.3M":               "is not a size",
		"9999999999T":          "too large",
		"99999999999999999999": "too large",
	} {
		_, err := Parse(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1000: "1000 B", 1024: "1 KiB", 256 << 20: "256 MiB", 4 << 30: "4 GiB",
		3 << 29: "1536 MiB", 1<<30 + 1: "1.0 GiB", 1<<30 + 1<<29 + 7: "1.5 GiB",
	} {
		assert.Equal(t, want, Format(n), n)
	}
}
