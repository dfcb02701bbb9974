package cli

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// runTriggerText is "manual" or "schedule @ <the instant the cron matched>".
func runTriggerText(r deploymentRun) string {
	if r.TriggerContext.Type == "schedule" && r.TriggerContext.ScheduledAt != nil {
		return "schedule @ " + utcShort(*r.TriggerContext.ScheduledAt)
	}
	return oneLine(r.TriggerContext.Type)
}

// runResult is the session the run created or, when it failed, its error.
func runResult(r deploymentRun) string {
	switch {
	case r.Error != nil:
		// The first line says what went wrong; the rest (a stderr excerpt,
		// an upstream body) is for `runs get`.
		first, _, _ := strings.Cut(strings.TrimSpace(r.Error.Message), "\n")
		return cell(r.Error.Type+": "+first, maxMessageWidth)
	case r.SessionID != nil:
		return oneLine(*r.SessionID)
	}
	return "-"
}

func writeRunTable(w io.Writer, runs []deploymentRun, now time.Time) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "No runs.")
		return err
	}
	tw := newTable(w)
	writeRow(tw, "ID", "DEPLOYMENT", "TRIGGER", "RESULT", "CREATED")
	for _, r := range runs {
		writeRow(tw, oneLine(r.ID), oneLine(r.DeploymentID), runTriggerText(r),
			runResult(r), relativeTime(r.CreatedAt, now))
	}
	return tw.Flush()
}

// writeRunBlock prints one run; the error message is shown whole.
func writeRunBlock(w io.Writer, r deploymentRun, now time.Time) error {
	b := &block{}
	b.add("ID", oneLine(r.ID))
	b.add("Deployment", oneLine(r.DeploymentID))
	b.add("Agent", fmt.Sprintf("%s (version %d)", oneLine(r.Agent.ID), r.Agent.Version))
	b.add("Trigger", runTriggerText(r))
	if r.SessionID != nil {
		b.add("Session", oneLine(*r.SessionID))
	} else {
		b.add("Session", "-")
	}
	if r.Error != nil {
		b.add("Error", oneLine(r.Error.Type)+": "+oneLine(r.Error.Message))
	}
	b.add("Created", utcShort(r.CreatedAt)+" ("+relativeTime(r.CreatedAt, now)+")")
	return b.write(w)
}
