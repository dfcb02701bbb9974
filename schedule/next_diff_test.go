package schedule

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Environment knobs for longer differential runs, e.g.
// SANDBOX0D_CRON_DIFF_CASES=200000 SANDBOX0D_CRON_DIFF_SEED=7 go test -run Differential ./schedule/
const (
	diffCasesEnv = "SANDBOX0D_CRON_DIFF_CASES"
	diffSeedEnv  = "SANDBOX0D_CRON_DIFF_SEED"
)

const (
	defaultDiffSeed = 20240310
	// diffChain is how many successive fires are compared per case: the
	// second and third start exactly on a fire time.
	diffChain = 3
	// diffHorizon bounds both implementations; the generator keeps
	// schedules frequent enough that every case fires well within it.
	diffHorizon = 50 * 366 * 24 * time.Hour
)

// defaultDiffCases is 3000 expressions, or a fifth of that under the race
// detector: the comparison runs on one goroutine, so -race finds nothing in it
// and only multiplies its cost (by ~6). Every run without -race compares the
// full count.
func defaultDiffCases() int {
	if raceEnabled {
		return 600
	}
	return 3000
}

var diffZones = []string{
	"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago",
	"America/Havana", "Asia/Beirut", "Asia/Kolkata", "Pacific/Chatham",
}

// diffPolicies: every differential test runs under both DST policies, with
// the same zones, years, seed and expressions.
var diffPolicies = []DSTPolicy{DSTOnce, DSTLiteral}

// TestNextMatchesBruteForceReference compares Cron.Next with referenceCron
// on random expressions from the whole grammar, in zones with 60- and
// 30-minute shifts, midnight transitions and fractional offsets, from starts
// clustered around the DST transitions of 2024-2030, half of them exactly on
// a fire time, under each DST policy.
func TestNextMatchesBruteForceReference(t *testing.T) {
	cases := envInt(t, diffCasesEnv, defaultDiffCases())
	seed := envInt(t, diffSeedEnv, defaultDiffSeed)
	for _, policy := range diffPolicies {
		t.Run(policy.String(), func(t *testing.T) {
			compared := compareWithReference(t, policy, diffZones, 2024, 2030, cases, seed)
			t.Logf("compared %d Next results over %d expressions (seed %d, dst_policy %s)", compared, cases, seed, policy)
		})
	}
}

// TestNextMatchesBruteForceReferenceInUnusualZones covers transitions the
// common zones never make: Samoa and Kiribati skipping a whole day, Troll's
// two-hour shift, Caracas and Moscow changing their standard offset, and
// Casablanca suspending its (negative) DST for Ramadan.
func TestNextMatchesBruteForceReferenceInUnusualZones(t *testing.T) {
	unusual := []struct {
		zone                string
		firstYear, lastYear int
	}{
		{"Pacific/Apia", 2011, 2012},
		{"Pacific/Kiritimati", 1994, 1995},
		{"Antarctica/Troll", 2024, 2025},
		{"America/Caracas", 2007, 2016},
		{"Europe/Moscow", 2010, 2014},
		{"Africa/Casablanca", 2024, 2026},
	}
	seed := envInt(t, diffSeedEnv, defaultDiffSeed)
	for _, policy := range diffPolicies {
		for _, u := range unusual {
			t.Run(policy.String()+"/"+u.zone, func(t *testing.T) {
				compareWithReference(t, policy, []string{u.zone}, u.firstYear, u.lastYear, max(1, envInt(t, diffCasesEnv, defaultDiffCases())/10), seed)
			})
		}
	}
}

// compareWithReference runs `cases` random expressions, under policy, in random zones of
// the list from random starts around the zones' transitions in the years
// given, following each through diffChain successive fires, and fails on
// the first disagreement. It returns the number of Next results compared.
func compareWithReference(t *testing.T, policy DSTPolicy, zoneNames []string, firstYear, lastYear, cases, seed int) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	zones := make([]*time.Location, len(zoneNames))
	transitions := make([][]time.Time, len(zoneNames))
	for i, name := range zoneNames {
		loc, err := time.LoadLocation(name)
		require.NoError(t, err)
		zones[i] = loc
		transitions[i] = zoneTransitions(loc, firstYear, lastYear)
		if name != "UTC" && name != "Asia/Kolkata" {
			require.NotEmpty(t, transitions[i], "zone %s should have transitions in %d-%d", name, firstYear, lastYear)
		}
	}

	compared := 0
	for caseIndex := 0; caseIndex < cases; caseIndex++ {
		zoneIndex := rng.IntN(len(zones))
		loc := zones[zoneIndex]
		expression, cron := randomValidCron(t, rng, loc, policy)
		reference, err := newReferenceCron(expression, loc, policy)
		require.NoError(t, err)

		start := randomStart(rng, transitions[zoneIndex], firstYear, lastYear)
		if rng.IntN(2) == 0 {
			if onFire := reference.next(start, diffHorizon); !onFire.IsZero() {
				start = onFire
			}
		}
		after := start
		for step := 0; step < diffChain; step++ {
			want := reference.next(after, diffHorizon)
			got := cron.Next(after)
			compared++
			if !got.Equal(want) {
				t.Fatalf("case %d (seed %d): ParseWith(%q, %q, %s).Next(%s):\n got %s\nwant %s (reference)",
					caseIndex, seed, expression, loc, policy, describeInstant(after, loc), describeInstant(got, loc), describeInstant(want, loc))
			}
			if want.IsZero() {
				break
			}
			after = want
		}
	}
	return compared
}

func envInt(t *testing.T, name string, fallback int) int {
	t.Helper()
	text := os.Getenv(name)
	if text == "" {
		return fallback
	}
	v, err := strconv.Atoi(text)
	require.NoError(t, err, "%s must be an integer", name)
	return v
}

func describeInstant(instant time.Time, loc *time.Location) string {
	if instant.IsZero() {
		return "(no fire)"
	}
	return instant.UTC().Format(time.RFC3339Nano) + " = " + instant.In(loc).Format("2006-01-02 15:04:05 -07:00 Mon")
}

// zoneTransitions lists every offset change of loc from the first to the
// last year given.
func zoneTransitions(loc *time.Location, firstYear, lastYear int) []time.Time {
	var found []time.Time
	end := time.Date(lastYear+1, 1, 1, 0, 0, 0, 0, time.UTC)
	for at := time.Date(firstYear, 1, 1, 0, 0, 0, 0, time.UTC); at.Before(end); {
		_, next := at.In(loc).ZoneBounds()
		if next.IsZero() || !next.Before(end) {
			break
		}
		found = append(found, next)
		at = next
	}
	return found
}

// randomStart picks a start instant: mostly within a day of a transition,
// otherwise anywhere in the years given, with a random sub-minute part half
// of the time.
func randomStart(rng *rand.Rand, transitions []time.Time, firstYear, lastYear int) time.Time {
	var start time.Time
	if len(transitions) > 0 && rng.IntN(4) != 0 {
		around := transitions[rng.IntN(len(transitions))]
		// A third of these land within two hours, where the repeated and
		// skipped wall times are.
		window := 26 * time.Hour
		if rng.IntN(3) == 0 {
			window = 2 * time.Hour
		}
		start = around.Add(time.Duration(rng.Int64N(int64(2*window))) - window).Truncate(time.Minute)
	} else {
		first := time.Date(firstYear, 1, 1, 0, 0, 0, 0, time.UTC)
		span := time.Date(lastYear+1, 1, 1, 0, 0, 0, 0, time.UTC).Sub(first)
		start = first.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Minute)
	}
	if rng.IntN(2) == 0 {
		start = start.Add(time.Duration(rng.Int64N(int64(time.Minute))))
	}
	return start
}

// randomValidCron draws expressions until Parse accepts one. Anything other
// than a never-fires rejection means the generator and the grammar disagree.
func randomValidCron(t *testing.T, rng *rand.Rand, loc *time.Location, policy DSTPolicy) (string, *Cron) {
	t.Helper()
	for {
		expression := randomExpression(rng)
		cron, err := ParseWith(expression, loc.String(), policy)
		if err == nil {
			return expression, cron
		}
		var verr *ValidationError
		require.True(t, errors.As(err, &verr), "Parse(%q) returned %T", expression, err)
		require.Contains(t, verr.Message, "never fires", "generated expression %q rejected: %v", expression, err)
	}
}

// randomExpression draws from the whole grammar, with values biased
// towards the hours and minutes where DST transitions happen and towards
// day fields that fire often enough for the reference to stay fast.
func randomExpression(rng *rand.Rand) string {
	fields := []string{
		randomField(rng, cronFieldSpecs[cronMinute], []int{0, 1, 15, 29, 30, 31, 44, 45, 59}, 0.45),
		randomField(rng, cronFieldSpecs[cronHour], []int{0, 1, 2, 3, 22, 23}, 0.4),
		randomField(rng, cronFieldSpecs[cronDayOfMonth], []int{1, 2, 6, 7, 8, 13, 15, 28, 29, 30, 31}, 0.7),
		randomField(rng, cronFieldSpecs[cronMonth], []int{1, 3, 4, 9, 10, 11, 12}, 0.75),
		randomField(rng, cronFieldSpecs[cronDayOfWeek], []int{0, 5, 6, 7}, 0.75),
	}
	separators := []string{" ", " ", " ", "  ", "\t"}
	var b strings.Builder
	for i, field := range fields {
		if i > 0 {
			b.WriteString(separators[rng.IntN(len(separators))])
		}
		b.WriteString(field)
	}
	return b.String()
}

// randomField returns a field starting with "*" with probability starChance,
// otherwise a list of one to three numeric items.
func randomField(rng *rand.Rand, spec cronFieldSpec, favourites []int, starChance float64) string {
	value := func() int {
		if rng.IntN(3) > 0 {
			return favourites[rng.IntN(len(favourites))]
		}
		return spec.min + rng.IntN(spec.max-spec.min+1)
	}
	valueRange := func() (int, int) {
		a, b := value(), value()
		if a > b {
			a, b = b, a
		}
		return a, b
	}
	step := func() int { return 1 + rng.IntN(min(spec.values, 20)) }

	var items []string
	if rng.Float64() < starChance {
		if rng.IntN(3) == 0 {
			items = append(items, "*")
		} else {
			items = append(items, fmt.Sprintf("*/%d", step()))
		}
		// Vixie decides the day-of-week rule by the leading "*", which gronx
		// mis-reads for a bare "*" followed by more items; keep that corner
		// to the unit tests.
		if items[0] == "*" && spec.isDayField {
			return "*"
		}
	}
	for len(items) == 0 || (len(items) < 3 && rng.IntN(3) == 0) {
		switch rng.IntN(4) {
		case 0, 1:
			items = append(items, strconv.Itoa(value()))
		case 2:
			a, b := valueRange()
			items = append(items, fmt.Sprintf("%d-%d", a, b))
		default:
			a, b := valueRange()
			items = append(items, fmt.Sprintf("%d-%d/%d", a, b, step()))
		}
	}
	return strings.Join(items, ",")
}
