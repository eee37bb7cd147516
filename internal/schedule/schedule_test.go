package schedule

import (
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNext(t *testing.T) {
	tests := []struct {
		name      string
		spec      Spec
		last, now string
		want      string
	}{
		{"cron in UTC", Spec{Cron: "0 3 * * *"}, "2026-11-01T00:00:00Z", "2026-11-29T10:00:00Z", "2026-11-30T03:00:00Z"},
		{"cron on the minute is strictly after now", Spec{Cron: "0 3 * * *"}, "", "2026-11-29T03:00:00Z", "2026-11-30T03:00:00Z"},
		{"cron in Berlin winter (UTC+1)", Spec{Cron: "30 2 * * *", TimeZone: "Europe/Berlin"}, "", "2026-11-29T10:00:00Z", "2026-11-30T01:30:00Z"},
		{"cron in Berlin summer (UTC+2)", Spec{Cron: "30 2 * * *", TimeZone: "Europe/Berlin"}, "", "2026-07-01T10:00:00Z", "2026-07-02T00:30:00Z"},
		// 29 March 2026: Berlin clocks jump from 02:00 to 03:00, so 02:30 does not exist that day and
		// the CronJob controller (same library) skips it.
		{"cron in a spring-forward gap is skipped that day", Spec{Cron: "30 2 * * *", TimeZone: "Europe/Berlin"}, "", "2026-03-28T12:00:00Z", "2026-03-30T00:30:00Z"},
		// 25 October 2026: Berlin clocks go back from 03:00 to 02:00; 02:30 happens twice (00:30Z
		// and 01:30Z) and the CronJob controller fires at both.
		{"cron in the autumn overlap: first 02:30", Spec{Cron: "30 2 * * *", TimeZone: "Europe/Berlin"}, "", "2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z"},
		{"cron in the autumn overlap: second 02:30", Spec{Cron: "30 2 * * *", TimeZone: "Europe/Berlin"}, "", "2026-10-25T00:31:00Z", "2026-10-25T01:30:00Z"},
		{"cron in New York across DST", Spec{Cron: "0 12 * * 0", TimeZone: "America/New_York"}, "", "2026-11-01T00:00:00Z", "2026-11-01T17:00:00Z"},
		{"every 30 days from the last rotation", Spec{EveryDays: 30}, "2026-11-01T08:15:42Z", "2026-11-29T10:00:00Z", "2026-12-01T08:15:00Z"},
		{"every day, due exactly now", Spec{EveryDays: 1}, "2026-11-28T10:00:00Z", "2026-11-29T10:00:00Z", "2026-11-29T10:00:00Z"},
		{"inside the window the due time stands", Spec{EveryDays: 1, Window: "3h"}, "2026-11-28T10:00:00Z", "2026-11-29T12:59:00Z", "2026-11-29T10:00:00Z"},
		{"after the window, the next day", Spec{EveryDays: 1, Window: "3h"}, "2026-11-28T10:00:00Z", "2026-11-29T13:00:00Z", "2026-11-30T10:00:00Z"},
		{"overdue every-N-days retries at the same time the next day", Spec{EveryDays: 7}, "2026-11-01T08:00:00Z", "2026-11-29T10:00:00Z", "2026-11-30T08:00:00Z"},
		{"every 1000 days", Spec{EveryDays: 1000}, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2028-09-27T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			var last time.Time
			if tt.last != "" {
				last = at(tt.last)
			}
			if got := s.Next(last, at(tt.now)); !got.Equal(at(tt.want)) {
				t.Fatalf("Next = %s, want %s", got.Format(time.RFC3339), tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{}, "exactly one"},
		{Spec{Cron: "0 3 * * *", EveryDays: 3}, "exactly one"},
		{Spec{Cron: "0 3 * *"}, "not a valid cron expression"},
		{Spec{Cron: "61 3 * * *"}, "not a valid cron expression"},
		{Spec{Cron: "@every 5m"}, "@every"},
		{Spec{Cron: "0 0 30 2 *"}, "never fires"},
		{Spec{Cron: "0 3 * * *", TimeZone: "Mars/Olympus"}, "not a known IANA time zone"},
		{Spec{EveryDays: 1001}, "between 1 and 1000"},
		{Spec{EveryDays: 3, Window: "25h"}, "1h to 24h"},
		{Spec{EveryDays: 3, Window: "90m"}, "1h to 24h"},
		{Spec{Cron: "0 * * * *", Window: "2h"}, "longer than the 1h0m0s between two rotations"},
		{Spec{Cron: "0 */4 * * *", Window: "5h"}, "longer than the 4h0m0s"},
		{Spec{Cron: "0 1,3 * * *", Window: "3h"}, "longer than the 2h0m0s"},
		{Spec{Cron: "*/10 * * * *", Window: "1h"}, "longer than the 10m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Cron+tt.spec.Window, func(t *testing.T) {
			_, err := Parse(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDaylightSavingDoesNotShrinkTheInterval(t *testing.T) {
	if _, err := Parse(Spec{Cron: "30 2 * * *", TimeZone: "Europe/Berlin", Window: "24h"}); err != nil {
		t.Fatalf("a daily schedule must allow a 24h window in a zone with DST: %v", err)
	}
}

func TestWindowAndCronJobSchedule(t *testing.T) {
	s, _ := Parse(Spec{Cron: "0 4 * * 1", TimeZone: "Europe/Berlin", Window: "3h"})
	if s.Window() != 3*time.Hour {
		t.Fatalf("window %s", s.Window())
	}
	if sched, tz := s.CronJobSchedule(time.Time{}); sched != "0 4 * * 1" || tz != "Europe/Berlin" {
		t.Fatalf("cronjob schedule %q %q", sched, tz)
	}
	m, err := Parse(Spec{Cron: "* * * * *"})
	if err != nil || m.Window() != time.Minute {
		t.Fatalf("every minute without a window: %v, window %s", err, m.Window())
	}
	d, _ := Parse(Spec{EveryDays: 30})
	if d.Window() != DefaultWindow {
		t.Fatalf("default window %s", d.Window())
	}
	if sched, tz := d.CronJobSchedule(at("2026-12-01T08:15:00Z")); sched != "15 8 1 12 *" || tz != "Etc/UTC" {
		t.Fatalf("cronjob schedule %q %q", sched, tz)
	}
}

// A one-shot CronJob schedule recurs every year: a rotation more than OneShotHorizon away keeps
// the CronJob suspended until OneShotHorizon before it, or it would fire a year early.
func TestHoldFarRotations(t *testing.T) {
	now := at("2026-12-01T08:15:00Z")
	cases := []struct {
		name string
		spec Spec
		next time.Time
		hold bool
	}{
		{"everyDays 30", Spec{EveryDays: 30}, now.Add(30 * Day), false},
		{"everyDays 365", Spec{EveryDays: 365}, now.Add(365 * Day), true},
		{"everyDays 500", Spec{EveryDays: 500}, now.Add(500 * Day), true},
		{"everyDays 1000", Spec{EveryDays: 1000}, now.Add(1000 * Day), true},
		{"everyDays 500, nearly due", Spec{EveryDays: 500}, now.Add(100 * Day), false},
		{"everyDays 500, exactly at the horizon", Spec{EveryDays: 500}, now.Add(OneShotHorizon), false},
		{"rate(400 days)", Spec{Expression: "rate(400 days)"}, now.Add(400 * Day), true},
		{"a recurring cron", Spec{Cron: "0 4 * * 1"}, now.Add(500 * Day), false},
		{"an AWS cron passed through", Spec{Expression: "cron(0 4 * * ? *)"}, now.Add(500 * Day), false},
	}
	for _, c := range cases {
		s, err := Parse(c.spec)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		until, hold := s.Hold(c.next, now)
		if hold != c.hold {
			t.Errorf("%s: hold %v, want %v", c.name, hold, c.hold)
		}
		if hold && !until.Equal(c.next.Add(-OneShotHorizon)) {
			t.Errorf("%s: held until %s, want %s", c.name, until, c.next.Add(-OneShotHorizon))
		}
	}
}
