// Package schedule computes rotation times the way the CronJobs that run them will: cron
// expressions are parsed with the same library and rules as Kubernetes' CronJob controller
// (robfig/cron/v3, five fields, an IANA time zone), and "every N days" counts from the last
// rotation, like AWS's AutomaticallyAfterDays and rate(N days).
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultWindow is used when a policy names none (AWS: 1 hour for hourly schedules).
const DefaultWindow = time.Hour

// Day is 24 hours; "every N days" means N×24 h, as AWS counts it.
const Day = 24 * time.Hour

// Spec is a policy's schedule.
type Spec struct {
	Cron      string
	EveryDays int
	TimeZone  string
	Window    string
}

// Schedule is a validated Spec.
type Schedule struct {
	cron      cron.Schedule
	location  *time.Location
	everyDays int
	window    time.Duration
	spec      Spec
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse validates a Spec: exactly one of cron and everyDays, a known time zone, and a window of
// 1h-24h that is not longer than the interval between two rotations.
func Parse(s Spec) (*Schedule, error) {
	out := &Schedule{spec: s, location: time.UTC, window: DefaultWindow}
	if (s.Cron == "") == (s.EveryDays == 0) {
		return nil, errors.New("set exactly one of schedule.cron or schedule.everyDays")
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
	if s.EveryDays != 0 {
		if s.EveryDays < 1 || s.EveryDays > 1000 {
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
// change of the value, which AWS counts as a rotation) and now. A cron schedule fires at its next
// time after now. Every N days is due N days after last; when that moment has passed without a
// rotation and its window (a failure or downtime), the next attempt is the first same time of day
// after now, so a failing rotation is retried daily rather than a year later.
func (s *Schedule) Next(last, now time.Time) time.Time {
	if s.cron != nil {
		return s.cron.Next(now.In(s.location)).UTC()
	}
	due := last.UTC().Add(time.Duration(s.everyDays) * Day).Truncate(time.Minute)
	if now.Before(due.Add(s.window)) {
		// Due, or inside its window: the CronJob may still start it.
		return due
	}
	days := now.Sub(due)/Day + 1
	return due.Add(days * Day)
}

// CronJobSchedule is the schedule and time zone for the CronJob that runs the rotations. A cron
// policy is passed through. Every N days becomes the single minute of the next rotation (in UTC),
// which the operator moves after each rotation, so the CronJob fires exactly at Next.
func (s *Schedule) CronJobSchedule(next time.Time) (schedule, timeZone string) {
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
