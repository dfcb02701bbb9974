package daemon

// IdentityPathForTest is the age identity file this daemon opened.
func (d *Daemon) IdentityPathForTest() string { return d.identityPath }
