package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sandbox0/sandbox0d/schedule"
)

// maxCronPreview bounds -n.
const maxCronPreview = 1000

func newCronCommand(cc *commandContext) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cron",
		Short: "Work with cron schedules offline",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newCronNextCommand(cc))
	return cmd
}

// cronPreview is the --json output of `cron next`.
type cronPreview struct {
	Expression string   `json:"expression"`
	Timezone   string   `json:"timezone"`
	DSTPolicy  string   `json:"dst_policy"`
	From       string   `json:"from"`
	Upcoming   []string `json:"upcoming"`
}

func newCronNextCommand(cc *commandContext) *cobra.Command {
	var (
		timezone, from, policyName string
		count                      int
	)
	cmd := &cobra.Command{
		Use:   "next EXPR [--tz ZONE]",
		Short: "Preview a schedule's next fire times with the daemon's own cron code (offline)",
		Long: "Preview a schedule's next fire times. The expression and zone are validated and\n" +
			"evaluated by the same code the daemon uses, DST rules included; nothing is sent\n" +
			"to the daemon, which is why --dst-policy must be given to match a daemon that runs\n" +
			"with schedule.dst_policy literal (the default, once, is the daemon's default).\n" +
			"Quote the expression: sandbox0d cron next '0 9 * * 1-5' --tz Europe/Berlin",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 1 || count > maxCronPreview {
				return fmt.Errorf("-n: must be between 1 and %d, got %d", maxCronPreview, count)
			}
			start := cc.now()
			if from != "" {
				var err error
				if start, err = time.Parse(time.RFC3339, from); err != nil {
					return fmt.Errorf("--from: must be an RFC 3339 timestamp such as 2026-11-28T09:00:00Z, got %q", from)
				}
			}
			// Without --tz the schedule is read in UTC, and the output says
			// so: a preview silently in some zone is worse than none.
			defaulted := !cmd.Flags().Changed("tz")
			if defaulted {
				timezone = "UTC"
			}
			policy, err := schedule.ParseDSTPolicy(policyName)
			if err != nil {
				return fmt.Errorf("--dst-policy: %w", err)
			}
			cron, err := schedule.ParseWith(args[0], timezone, policy)
			if err != nil {
				return err // names the field: "schedule.expression: …"
			}
			upcoming := cron.Upcoming(start, count)
			if cc.json {
				out := cronPreview{Expression: args[0], Timezone: timezone, DSTPolicy: policy.String(), From: utcStamp(start), Upcoming: []string{}}
				for _, t := range upcoming {
					out.Upcoming = append(out.Upcoming, utcStamp(t))
				}
				return printValueJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			if defaulted {
				fmt.Fprintln(w, "Timezone: UTC (default; give --tz ZONE for the schedule's zone)")
			}
			for _, t := range upcoming {
				// The weekday helps check day-of-week fields at a glance.
				fmt.Fprintln(w, t.In(cron.Location()).Format("Mon")+" "+zonedAndUTC(t, cron.Location()))
			}
			if len(upcoming) < count {
				fmt.Fprintf(w, "(only %d fire times within the next century)\n", len(upcoming))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&timezone, "tz", "", "IANA timezone the schedule follows, e.g. Europe/Berlin (default UTC, and the output says so)")
	cmd.Flags().IntVarP(&count, "count", "n", 5, "how many fire times to show")
	cmd.Flags().StringVar(&policyName, "dst-policy", schedule.DSTOnce.String(),
		"DST policy, as the daemon's schedule.dst_policy: "+strings.Join(schedule.DSTPolicyNames, " or ")+
			" (once: a fixed time fires once per local day; literal: the hosted API's wall-clock matching)")
	cmd.Flags().StringVar(&from, "from", "", "preview fires strictly after this RFC 3339 instant (default: now)")
	return cmd
}
