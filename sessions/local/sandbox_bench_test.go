package local

import (
	"slices"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// BenchmarkSessionStartSandbox measures a whole session of a trivial
// harness (create, workspace, start, exit, recorded end) without and with
// bubblewrap. Run it with -benchtime 50x: the reported median-ms is the
// median of the b.N sessions.
func BenchmarkSessionStartSandbox(b *testing.B) {
	modes := []struct {
		name string
		sb   func(b *testing.B) sandbox.Sandbox
	}{
		{"none", func(*testing.B) sandbox.Sandbox { return sandbox.None{} }},
		{"bubblewrap", func(b *testing.B) sandbox.Sandbox {
			sb, err := sandbox.New(sandbox.Config{Mode: sandbox.ModeBubblewrap})
			if err != nil {
				b.Skip(err)
			}
			return sb
		}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			sb := m.sb(b)
			rig := newRig(b, []Agent{{ID: "agent_true", Version: 1, Command: []string{"/bin/true"}}},
				func(c *Config) { c.Sandbox = sb; c.MaxConcurrentSessions = 1 })
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				id := rig.create("agent_true", nil)
				if rec := rig.waitDone(id); rec.Status != statusIdle {
					b.Fatalf("session ended %s: %s", rec.Status, rig.dump(id))
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
		})
	}
}
