package local

// SandboxMode names the confinement in force for the daemon's health and
// metrics: "bubblewrap" or "none".
func (b *Backend) SandboxMode() string { return b.sandbox.Name() }
