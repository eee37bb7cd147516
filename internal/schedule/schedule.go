// Package schedule computes rotation times the way the CronJobs that run them will: cron
// expressions are parsed with the same library and rules as Kubernetes' CronJob controller
// (robfig/cron/v3, five fields, an IANA time zone), and "every N days" counts from the last
// rotation, like AWS's AutomaticallyAfterDays and rate(N days). AWS's own ScheduleExpression syntax,
// rate() and cron() in UTC, is accepted as well (see aws.go).
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	// The operator's image is its static binary alone, with no zone files: policies' time zones
	// are read from the zone database embedded here.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// DefaultWindow is used when a policy names none (AWS: 1 hour for hourly schedules).
const DefaultWindow = time.Hour

// Day is 24 hours; "every N days" means N×24 h, as AWS counts it.
const Day = 24 * time.Hour

// Spec is a policy's schedule: exactly one of Cron, EveryDays and Expression.
type Spec struct {
	// Cron is a five-field Kubernetes cron expression, in TimeZone.
	Cron string
	// EveryDays is AWS's AutomaticallyAfterDays: N×24h after the last rotation.
	EveryDays int
	// Expression is AWS's ScheduleExpression, unchanged: rate(N days), rate(N hours) or
	// cron(Minutes Hours Day-of-month Month Day-of-week Year). Always UTC: TimeZone must be empty.
	Expression string
	// TimeZone is the IANA time zone of Cron.
	TimeZone string
	// Window is AWS's Duration, "1h" to "24h".
	Window string
}

// Schedule is a validated Spec.
type Schedule struct {
	cron       cron.Schedule
	location   *time.Location
	everyDays  int      // everyDays, rate(N days)
	everyHours int      // rate(N hours)
	aws        *awsCron // an AWS cron() expression
	expression string   // the trimmed Expression
	awsDays    int      // AutomaticallyAfterDays derived from Expression
	window     time.Duration
	spec       Spec
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse validates a Spec: exactly one of cron, everyDays and expression, a known time zone (none
// with expression), and a window of 1h-24h that is not longer than the interval between two
// rotations (and, for an AWS cron() schedule in days, does not run past the end of the UTC day).
func Parse(s Spec) (*Schedule, error) {
	out := &Schedule{spec: s, location: time.UTC, window: DefaultWindow}
	set := 0
	for _, given := range []bool{s.Cron != "", s.EveryDays != 0, s.Expression != ""} {
		if given {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("set exactly one of schedule.cron, schedule.everyDays or schedule.expression")
	}
	if s.Expression != "" && s.TimeZone != "" {
		return nil, fmt.Errorf("schedule.timeZone %q must be empty with schedule.expression: AWS schedule expressions are always in UTC (use schedule.cron for a local time zone)", s.TimeZone)
	}
	if s.TimeZone != "" {
		if strings.Contains(s.Cron, "TZ=") {
			return nil, errors.New("schedule.cron may not contain TZ=; use schedule.timeZone")
		}
		loc, err := time.LoadLocation(s.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("schedule.timeZone %q is not a known IANA time zone", s.TimeZone)
		}
		out.location = loc
	}
	if s.Window != "" {
		h, err := strconv.Atoi(strings.TrimSuffix(s.Window, "h"))
		if err != nil || !strings.HasSuffix(s.Window, "h") || h < 1 || h > 24 {
			return nil, fmt.Errorf("schedule.window %q must be a whole number of hours from 1h to 24h", s.Window)
		}
		out.window = time.Duration(h) * time.Hour
	}
	if s.Expression != "" {
		return parseExpression(out)
	}
	if s.EveryDays != 0 {
		if s.EveryDays < 1 || s.EveryDays > MaxEveryDays {
			return nil, errors.New("schedule.everyDays must be between 1 and 1000")
		}
		out.everyDays = s.EveryDays
		return out, nil
	}
	if strings.HasPrefix(strings.TrimSpace(s.Cron), "@every") {
		return nil, errors.New("schedule.cron may not use @every; use schedule.everyDays")
	}
	sched, err := parser.Parse(s.Cron)
	if err != nil {
		return nil, fmt.Errorf("schedule.cron %q is not a valid cron expression: %v", s.Cron, err)
	}
	out.cron = sched
	if sched.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("schedule.cron %q never fires", s.Cron)
	}
	gap, ok := out.shortestGap()
	if ok && s.Window == "" && gap < out.window {
		// No window given: the default (1h) shrinks to fit schedules that run more often.
		out.window = gap
	}
	if ok && out.window > gap {
		return nil, fmt.Errorf("schedule.window %s is longer than the %s between two rotations of schedule.cron %q", s.Window, gap, s.Cron)
	}
	return out, nil
}

// shortestGap samples a year of firings and returns the shortest interval between two. It counts
// in UTC: a daylight-saving change makes one gap shorter in local time once a year, which says
// nothing about the schedule's shape.
func (s *Schedule) shortestGap() (time.Duration, bool) {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := t.AddDate(1, 0, 0)
	prev := s.cron.Next(t)
	if prev.IsZero() {
		return 0, false
	}
	shortest := time.Duration(0)
	for i := 0; i < 20000 && prev.Before(end); i++ {
		next := s.cron.Next(prev)
		if next.IsZero() {
			break
		}
		if gap := next.Sub(prev); shortest == 0 || gap < shortest {
			shortest = gap
		}
		prev = next
	}
	return shortest, shortest > 0
}

// Window is the time after the scheduled moment in which a rotation may still start.
func (s *Schedule) Window() time.Duration { return s.window }

// Next returns when the next rotation is due, given the time of the last rotation (or of the last
// change of the value, which AWS counts as a rotation) and now. A cron schedule (schedule.cron or
// an AWS cron() expression) fires at its next time after now. Every N days (everyDays, rate(N
// days)) is due N days after last, rate(N hours) N hours after last; when that moment has passed
// without a rotation and its window (a failure or downtime), the next attempt is the first slot of
// the same interval after now, so a failing rotation is retried a day (or N hours) later rather
// than a year later.
func (s *Schedule) Next(last, now time.Time) time.Time {
	switch {
	case s.cron != nil:
		return s.cron.Next(now.In(s.location)).UTC()
	case s.aws != nil:
		return s.aws.next(now)
	case s.everyHours != 0:
		every := time.Duration(s.everyHours) * time.Hour
		return s.intervalNext(last, now, every, every)
	}
	return s.intervalNext(last, now, time.Duration(s.everyDays)*Day, Day)
}

// Deadline is when the first rotation due after last must have completed: its due time plus the
// window. Past it with no rotation since last, the rotation was missed (AWS's overdue rotation).
func (s *Schedule) Deadline(last time.Time) time.Time {
	return s.Next(last, last).Add(s.window)
}

// intervalNext is due interval after last (to the minute), or, once that moment and its window
// have passed, the first time after now that is a whole number of retry periods after it.
func (s *Schedule) intervalNext(last, now time.Time, interval, retry time.Duration) time.Time {
	due := last.UTC().Add(interval).Truncate(time.Minute)
	if now.Before(due.Add(s.window)) {
		// Due, or inside its window: the CronJob may still start it.
		return due
	}
	// In whole seconds, so that a zero or ancient last cannot overflow a Duration.
	step := int64(retry / time.Second)
	n := (now.Unix()-due.Unix())/step + 1
	return time.Unix(due.Unix()+n*step, 0).UTC()
}

// OneShotHorizon is how far ahead a one-shot CronJob schedule may name its minute. That schedule
// (minute, hour, day and month, no year) recurs every year, so for a rotation more than a year
// away (everyDays or rate(N days) up to AWS's 1,000) it would fire a year or more early, on an
// earlier year's same date. Kept well under a year, so that the earlier date has passed by more
// than any window (24 h at most) when the CronJob is let go, and its controller does not start it
// late as a missed run.
const OneShotHorizon = 360 * Day

// Hold reports whether the CronJob must stay suspended because its one-shot schedule names a
// rotation more than OneShotHorizon away, and until when: from then on it fires only at next.
func (s *Schedule) Hold(next, now time.Time) (until time.Time, hold bool) {
	if s.cron != nil || (s.aws != nil && s.aws.k8s != "") {
		return time.Time{}, false // a recurring schedule, passed through
	}
	until = next.Add(-OneShotHorizon)
	return until, now.Before(until)
}

// CronJobSchedule is the schedule and time zone for the CronJob that runs the rotations. A cron
// policy is passed through. An AWS cron() expression that five Kubernetes cron fields express
// exactly (no L for the last day of the month, no xL, no x#n) is translated: day-of-week 1-7
// becomes 0-6, ? becomes *, names become numbers, N/step becomes N-max/step, in Etc/UTC. Every N
// days, rate(), and the other cron() expressions become the single minute of the next rotation (in
// UTC), which the operator moves after each rotation, so the CronJob fires exactly at Next. (A
// one-shot minute recurs every year, so it is exact only while next is less than a year after the
// CronJob last fired: Hold keeps the CronJob suspended until then; Parse refuses cron()
// expressions whose rotations can be further apart.)
func (s *Schedule) CronJobSchedule(next time.Time) (schedule, timeZone string) {
	if s.aws != nil && s.aws.k8s != "" {
		return s.aws.k8s, "Etc/UTC"
	}
	if s.cron != nil {
		tz := s.spec.TimeZone
		if tz == "" {
			tz = "Etc/UTC"
		}
		return strings.TrimSpace(s.spec.Cron), tz
	}
	n := next.UTC()
	return fmt.Sprintf("%d %d %d %d *", n.Minute(), n.Hour(), n.Day(), int(n.Month())), "Etc/UTC"
}
