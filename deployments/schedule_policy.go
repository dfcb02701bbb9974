package deployments

import "github.com/sandbox0/sandbox0d/schedule"

// checkSchedulePolicy re-checks a decoded schedule under the daemon's DST
// policy. Decoding (DecodeCreate, DecodeUpdate) knows no config and checks
// under the default policy, under which every fixed-time schedule fires; under
// literal a fixed-time schedule whose every matching time is skipped by a
// spring-forward gap would never fire, and is refused here with the same
// 400 shape. Under the default policy this is a parse-cache hit.
func (s *Service) checkSchedulePolicy(sc *Schedule) error {
	if sc == nil {
		return nil
	}
	if _, err := schedule.ParseWith(sc.Expression, sc.Timezone, s.dstPolicy); err != nil {
		return scheduleError(err)
	}
	return nil
}
