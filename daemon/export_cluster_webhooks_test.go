package daemon

// WebhooksPending counts this cluster's deliveries not yet finished and
// events not yet fanned out (the store is shared, any node answers).
func (d *Daemon) WebhooksPending() int { return d.hooks.Pending() }
