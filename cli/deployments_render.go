package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/schedule/tzdb"
)

// deploymentStatus is the status a person cares about: archived trumps the
// wire status (archived deployments report "active"), and a pause says why.
func deploymentStatus(d deployment) string {
	switch {
	case d.ArchivedAt != nil:
		return "archived"
	case d.PausedReason == nil:
		return oneLine(d.Status)
	case d.PausedReason.Type == "error" && d.PausedReason.Error != nil:
		return "paused (error: " + oneLine(d.PausedReason.Error.Type) + ")"
	default:
		return "paused (" + oneLine(d.PausedReason.Type) + ")"
	}
}

// deploymentSchedule is "EXPR ZONE" or "manual" for manual-only deployments.
func deploymentSchedule(d deployment) string {
	if d.Schedule == nil {
		return "manual"
	}
	return oneLine(d.Schedule.Expression + " " + d.Schedule.Timezone)
}

// nextRun is the first upcoming fire, relative to now; "-" when none
// (manual-only or archived).
func nextRun(d deployment, now time.Time) string {
	if d.Schedule == nil || len(d.Schedule.UpcomingRunsAt) == 0 {
		return "-"
	}
	return relativeTime(d.Schedule.UpcomingRunsAt[0], now)
}

// lastRun is the latest scheduled run, relative to now; "never" when the
// schedule has not fired yet, "-" for manual-only deployments (manual runs
// are not tracked here: see `runs list`).
func lastRun(d deployment, now time.Time) string {
	switch {
	case d.Schedule == nil:
		return "-"
	case d.Schedule.LastRunAt == nil:
		return "never"
	}
	return relativeTime(*d.Schedule.LastRunAt, now)
}

func writeDeploymentTable(w io.Writer, items []deployment, now time.Time) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "No deployments.")
		return err
	}
	tw := newTable(w)
	writeRow(tw, "ID", "NAME", "STATUS", "SCHEDULE", "NEXT", "LAST")
	for _, d := range items {
		writeRow(tw, oneLine(d.ID), cell(d.Name, maxNameWidth), deploymentStatus(d),
			cell(deploymentSchedule(d), maxNameWidth), nextRun(d, now), lastRun(d, now))
	}
	return tw.Flush()
}

// writeDeploymentBlock prints one deployment as aligned "Key: value" lines.
func writeDeploymentBlock(w io.Writer, d deployment, now time.Time) error {
	b := &block{}
	b.add("ID", oneLine(d.ID))
	b.add("Name", oneLine(d.Name))
	if d.Description != nil && *d.Description != "" {
		b.add("Description", oneLine(*d.Description))
	} else {
		b.add("Description", "-")
	}
	b.add("Status", deploymentStatus(d))
	b.add("Agent", fmt.Sprintf("%s (version %d)", oneLine(d.Agent.ID), d.Agent.Version))
	b.add("Environment", oneLine(d.EnvironmentID))
	b.add("Schedule", deploymentSchedule(d))
	if d.Schedule != nil {
		loc := scheduleLocation(d.Schedule.Timezone)
		if d.Schedule.LastRunAt != nil {
			b.add("Last run", zonedTime(*d.Schedule.LastRunAt, loc)+" ("+relativeTime(*d.Schedule.LastRunAt, now)+")")
		} else {
			b.add("Last run", "never")
		}
		var upcoming []string
		for _, t := range d.Schedule.UpcomingRunsAt {
			upcoming = append(upcoming, zonedTime(t, loc)+" ("+utcStamp(t)+", "+relativeTime(t, now)+")")
		}
		if len(upcoming) == 0 {
			upcoming = []string{"-"}
		}
		b.add("Upcoming runs", upcoming...)
	}
	b.add("Initial events", initialEventSummary(d.InitialEvents))
	var resources []string
	for _, r := range d.Resources {
		resources = append(resources, describeResource(r))
	}
	b.addList("Resources", resources)
	var vaults []string
	for _, v := range d.VaultIDs {
		vaults = append(vaults, oneLine(v))
	}
	if len(vaults) == 0 {
		b.add("Vaults", "-")
	} else {
		b.add("Vaults", strings.Join(vaults, ", "))
	}
	b.addList("Metadata", metadataLines(d.Metadata))
	b.add("Created", utcShort(d.CreatedAt)+" ("+relativeTime(d.CreatedAt, now)+")")
	b.add("Updated", utcShort(d.UpdatedAt)+" ("+relativeTime(d.UpdatedAt, now)+")")
	if d.ArchivedAt != nil {
		b.add("Archived", utcShort(*d.ArchivedAt)+" ("+relativeTime(*d.ArchivedAt, now)+")")
	}
	return b.write(w)
}

// scheduleLocation loads a schedule's zone for display, falling back to UTC
// (the times are still right, only shown in another zone).
func scheduleLocation(name string) *time.Location {
	loc, err := tzdb.Load(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// initialEventSummary counts events by type in order of first appearance:
// "2 (1 user.message, 1 system.message)".
func initialEventSummary(events []initialEvent) string {
	counts := map[string]int{}
	var order []string
	for _, e := range events {
		if counts[e.Type] == 0 {
			order = append(order, e.Type)
		}
		counts[e.Type]++
	}
	parts := make([]string, 0, len(order))
	for _, t := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[t], oneLine(t)))
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", len(events), strings.Join(parts, ", "))
}

// describeResource renders a resource on one line. Tokens are write-only in
// the API and never come back, so there is nothing secret to leave out.
func describeResource(r resource) string {
	var parts []string
	switch r.Type {
	case "github_repository":
		parts = append(parts, "github_repository", oneLine(r.URL))
		if c := r.Checkout; c != nil {
			switch c.Type {
			case "branch":
				parts = append(parts, "branch "+oneLine(c.Name))
			case "commit":
				parts = append(parts, "commit "+oneLine(c.SHA))
			}
		}
	case "file":
		parts = append(parts, "file", oneLine(r.FileID))
	case "memory_store":
		parts = append(parts, "memory_store", oneLine(r.MemoryStoreID))
		if r.Access != nil {
			parts = append(parts, "("+oneLine(*r.Access)+")")
		}
		if r.Instructions != nil && *r.Instructions != "" {
			parts = append(parts, "instructions: "+cell(*r.Instructions, maxMessageWidth))
		}
	default:
		parts = append(parts, oneLine(r.Type))
	}
	if r.MountPath != nil && *r.MountPath != "" {
		parts = append(parts, "at "+oneLine(*r.MountPath))
	}
	return strings.Join(parts, " ")
}

func metadataLines(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		lines = append(lines, oneLine(k)+": "+oneLine(m[k]))
	}
	return lines
}
