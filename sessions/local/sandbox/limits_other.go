//go:build !linux

package sandbox

// LimitsEnforcement says how this host enforces the limits of Spec.Limits:
// outside Linux, not at all.
func LimitsEnforcement() Enforcement {
	return Enforcement{Problem: "resource limits need Linux (cgroups and rlimits)"}
}

// applyLimits leaves p as it is: nothing here enforces limits.
func applyLimits(*Process, Spec) error { return nil }

// HostMemory is the memory the daemon can count on: unknown here.
func HostMemory() int64 { return 0 }
