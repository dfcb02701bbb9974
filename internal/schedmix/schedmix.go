// Package schedmix generates cron schedules that look like a real fleet's,
// for benchmarks that need many varied deployments. It must not be used
// outside tests and benchmarks.
package schedmix

import (
	"fmt"
	"math/rand/v2"
)

// Zones mixes common zones with unusual offsets (+05:45, +12:45, -03:30,
// a 30-minute DST shift).
var Zones = []string{
	"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe",
	"America/Los_Angeles", "Asia/Tokyo", "Europe/London", "America/Sao_Paulo",
	"Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns",
}

// Expression draws a five-field expression: a fifth fire several times an
// hour, most hourly or at fixed times of day, a few rare ones.
func Expression(rng *rand.Rand) string {
	switch p := rng.IntN(100); {
	case p < 10:
		return fmt.Sprintf("*/%d * * * *", []int{5, 10}[rng.IntN(2)])
	case p < 20:
		return fmt.Sprintf("*/%d * * * *", []int{15, 30}[rng.IntN(2)])
	case p < 25:
		return "*/10 9-17 * * 1-5"
	case p < 45:
		return fmt.Sprintf("%d * * * *", rng.IntN(60))
	case p < 70:
		return fmt.Sprintf("%d %d * * *", rng.IntN(60), rng.IntN(24))
	case p < 85:
		return fmt.Sprintf("%d %d * * 1-5", 15*rng.IntN(4), rng.IntN(24))
	case p < 95:
		return fmt.Sprintf("%d %d %d * *", rng.IntN(60), rng.IntN(24), 1+rng.IntN(28))
	case p < 98:
		return fmt.Sprintf("%d %d * * %d", rng.IntN(60), rng.IntN(24), rng.IntN(7))
	default:
		return []string{"0 0 29 2 *", "0 9 13 * 5", "0 12 1 1 *"}[rng.IntN(3)]
	}
}
