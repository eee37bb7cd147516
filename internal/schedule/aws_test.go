package schedule

import (
	"strings"
	"testing"
	"time"
)

func mustParse(t testing.TB, s Spec) *Schedule {
	t.Helper()
	sched, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%+v): %v", s, err)
	}
	return sched
}

// AWS's documented cron() examples (Secrets Manager user guide and API reference) and a few more,
// each with the rotations that follow a fixed instant.
var awsCronCases = []struct {
	expr string
	from string
	want []string
	k8s  string // the translated CronJob schedule, or "" for the one-shot form
}{
	{"cron(0 10 * * ? *)", "2026-11-29T10:00:00Z", []string{"2026-11-30T10:00:00Z", "2026-12-01T10:00:00Z"}, "0 10 * * *"},
	// "Hour increments reset each day": 8/8 is 08:00 and 16:00.
	{"cron(0 8/8 * * ? *)", "2026-11-29T10:00:00Z", []string{"2026-11-29T16:00:00Z", "2026-11-30T08:00:00Z", "2026-11-30T16:00:00Z", "2026-12-01T08:00:00Z"}, "0 8-23/8 * * *"},
	{"cron(0 4/12 * * ? *)", "2026-11-29T03:59:59Z", []string{"2026-11-29T04:00:00Z", "2026-11-29T16:00:00Z", "2026-11-30T04:00:00Z"}, "0 4-23/12 * * *"},
	{"cron(0 2/10 * * ? *)", "2026-11-29T00:00:00Z", []string{"2026-11-29T02:00:00Z", "2026-11-29T12:00:00Z", "2026-11-29T22:00:00Z", "2026-11-30T02:00:00Z"}, "0 2-23/10 * * *"},
	{"cron(0 */6 * * ? *)", "2026-11-29T00:00:00Z", []string{"2026-11-29T06:00:00Z", "2026-11-29T12:00:00Z", "2026-11-29T18:00:00Z", "2026-11-30T00:00:00Z"}, "0 */6 * * *"},
	// 29 November 2026 is a Sunday.
	{"cron(0 18 ? * SAT *)", "2026-11-29T00:00:00Z", []string{"2026-12-05T18:00:00Z", "2026-12-12T18:00:00Z", "2026-12-19T18:00:00Z"}, "0 18 * * 6"},
	{"cron(0 18 ? * sat *)", "2026-12-05T18:00:00Z", []string{"2026-12-12T18:00:00Z"}, "0 18 * * 6"},
	{"cron(0 8 1 * ? *)", "2026-11-29T00:00:00Z", []string{"2026-12-01T08:00:00Z", "2027-01-01T08:00:00Z", "2027-02-01T08:00:00Z"}, "0 8 1 * *"},
	{"cron(0 8 1/7 * ? *)", "2026-02-20T00:00:00Z", []string{"2026-02-22T08:00:00Z", "2026-03-01T08:00:00Z", "2026-03-08T08:00:00Z", "2026-03-15T08:00:00Z", "2026-03-22T08:00:00Z", "2026-03-29T08:00:00Z", "2026-04-01T08:00:00Z"}, "0 8 1-31/7 * *"},
	// Monday to Friday: 27 November 2026 is a Friday.
	{"cron(0 4 ? * 2-6 *)", "2026-11-27T05:00:00Z", []string{"2026-11-30T04:00:00Z", "2026-12-01T04:00:00Z", "2026-12-02T04:00:00Z", "2026-12-03T04:00:00Z", "2026-12-04T04:00:00Z", "2026-12-07T04:00:00Z"}, "0 4 * * 1-5"},
	{"cron(0 8 ? * MON-FRI *)", "2026-11-27T09:00:00Z", []string{"2026-11-30T08:00:00Z", "2026-12-01T08:00:00Z"}, "0 8 * * 1-5"},
	{"cron(0 0 ? * 1,7 *)", "2026-11-27T09:00:00Z", []string{"2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z", "2026-12-05T00:00:00Z"}, "0 0 * * 0,6"},
	{"cron(0 0 ? * */3 *)", "2026-11-28T09:00:00Z", []string{"2026-11-29T00:00:00Z", "2026-12-02T00:00:00Z", "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z"}, "0 0 * * */3"},
	{"cron(0 0 ? * 2/2 *)", "2026-11-29T00:00:00Z", []string{"2026-11-30T00:00:00Z", "2026-12-02T00:00:00Z", "2026-12-04T00:00:00Z", "2026-12-07T00:00:00Z"}, "0 0 * * 1-6/2"},
	{"cron(0 0 ? 1 SUN/1 *)", "2026-01-30T00:00:00Z", []string{"2026-01-31T00:00:00Z", "2027-01-01T00:00:00Z"}, "0 0 * 1 0-6"},
	{"cron(0 0 ? * 7/3 *)", "2026-11-29T00:00:00Z", []string{"2026-12-05T00:00:00Z", "2026-12-12T00:00:00Z"}, "0 0 * * 6"},
	{"cron(0 3/20 ? * 7/3 *)", "2026-11-29T00:00:00Z", []string{"2026-12-05T03:00:00Z", "2026-12-05T23:00:00Z", "2026-12-12T03:00:00Z"}, "0 3-23/20 * * 6"},
	// L alone in day-of-week is Saturday, the last day of the week.
	{"cron(0 0 ? * L *)", "2026-11-29T00:00:00Z", []string{"2026-12-05T00:00:00Z", "2026-12-12T00:00:00Z"}, "0 0 * * 6"},
	{"cron(0 16 1,15 * ? *)", "2026-11-29T00:00:00Z", []string{"2026-12-01T16:00:00Z", "2026-12-15T16:00:00Z", "2027-01-01T16:00:00Z"}, "0 16 1,15 * *"},
	{"cron(0 16 1-3 JAN,APR,JUL,OCT ? *)", "2026-11-29T00:00:00Z", []string{"2027-01-01T16:00:00Z", "2027-01-02T16:00:00Z", "2027-01-03T16:00:00Z", "2027-04-01T16:00:00Z"}, "0 16 1-3 1,4,7,10 *"},
	{"cron(0 0 31 * ? *)", "2026-01-31T00:00:00Z", []string{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z"}, "0 0 31 * *"},
	{"cron(0 0 29 2 ? *)", "2026-01-01T00:00:00Z", []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}, "0 0 29 2 *"},
	{"cron(0 6 ? */2 MON *)", "2026-01-31T00:00:00Z", []string{"2026-03-02T06:00:00Z", "2026-03-09T06:00:00Z"}, "0 6 * */2 1"},
	// The last day of every month.
	{"cron(0 17 L * ? *)", "2026-01-15T00:00:00Z", []string{"2026-01-31T17:00:00Z", "2026-02-28T17:00:00Z", "2026-03-31T17:00:00Z", "2026-04-30T17:00:00Z"}, ""},
	{"cron(0 16 L * ? *)", "2028-01-31T16:00:00Z", []string{"2028-02-29T16:00:00Z", "2028-03-31T16:00:00Z"}, ""},
	{"cron(0 4/12 L 2 ? *)", "2027-03-01T00:00:00Z", []string{"2028-02-29T04:00:00Z", "2028-02-29T16:00:00Z", "2029-02-28T04:00:00Z"}, ""},
	// Every three months on the first Sunday at 01:00: January, April, July, October.
	{"cron(0 1 ? 1/3 SUN#1 *)", "2026-01-01T00:00:00Z", []string{"2026-01-04T01:00:00Z", "2026-04-05T01:00:00Z", "2026-07-05T01:00:00Z", "2026-10-04T01:00:00Z", "2027-01-03T01:00:00Z"}, ""},
	{"cron(0 0 ? * SUN#1 *)", "2026-11-29T00:00:00Z", []string{"2026-12-06T00:00:00Z", "2027-01-03T00:00:00Z"}, ""},
	{"cron(0 10 ? * TUE#3 *)", "2026-11-29T00:00:00Z", []string{"2026-12-15T10:00:00Z", "2027-01-19T10:00:00Z"}, ""},
	// The fifth Friday: only in months that have one.
	{"cron(0 0 ? * 6#5 *)", "2026-01-01T00:00:00Z", []string{"2026-01-30T00:00:00Z", "2026-05-29T00:00:00Z", "2026-07-31T00:00:00Z", "2026-10-30T00:00:00Z"}, ""},
	// The last Sunday of the month, by name and by number.
	{"cron(0 3 ? * SUNL *)", "2026-01-01T00:00:00Z", []string{"2026-01-25T03:00:00Z", "2026-02-22T03:00:00Z", "2026-03-29T03:00:00Z"}, ""},
	{"cron(0 3 ? * 1L *)", "2026-01-25T03:00:00Z", []string{"2026-02-22T03:00:00Z", "2026-03-29T03:00:00Z"}, ""},
	{"cron(0 10 ? FEB,MAY,AUG,NOV TUE#2 *)", "2026-01-01T00:00:00Z", []string{"2026-02-10T10:00:00Z", "2026-05-12T10:00:00Z", "2026-08-11T10:00:00Z", "2026-11-10T10:00:00Z"}, ""},
	// Extra spaces are allowed between fields.
	{"  cron(0  10 * *  ? *) ", "2026-11-29T10:00:00Z", []string{"2026-11-30T10:00:00Z"}, "0 10 * * *"},
}

func TestAWSCronNext(t *testing.T) {
	for _, tt := range awsCronCases {
		t.Run(tt.expr, func(t *testing.T) {
			s := mustParse(t, Spec{Expression: tt.expr})
			now := at(tt.from)
			for i, want := range tt.want {
				got := s.Next(time.Time{}, now)
				if !got.Equal(at(want)) {
					t.Fatalf("Next #%d after %s = %s, want %s", i+1, now.Format(time.RFC3339), got.Format(time.RFC3339), want)
				}
				now = got
			}
		})
	}
}

func TestAWSCronJobSchedule(t *testing.T) {
	for _, tt := range awsCronCases {
		t.Run(tt.expr, func(t *testing.T) {
			s := mustParse(t, Spec{Expression: tt.expr})
			next := s.Next(time.Time{}, at(tt.from))
			sched, tz := s.CronJobSchedule(next)
			if tz != "Etc/UTC" {
				t.Fatalf("time zone %q, want Etc/UTC", tz)
			}
			want := tt.k8s
			if want == "" {
				want = oneShot(next)
			}
			if sched != want {
				t.Fatalf("CronJob schedule %q, want %q", sched, want)
			}
		})
	}
}

func oneShot(t time.Time) string {
	t = t.UTC()
	return strings.Join([]string{itoa(t.Minute()), itoa(t.Hour()), itoa(t.Day()), itoa(int(t.Month())), "*"}, " ")
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// The CronJob controller parses the translated schedule with robfig/cron: over a year (and over a
// leap year) it must fire at exactly the times our evaluator computes.
func TestTranslatedScheduleFiresLikeTheExpression(t *testing.T) {
	for _, tt := range awsCronCases {
		if tt.k8s == "" {
			continue
		}
		t.Run(tt.expr, func(t *testing.T) {
			s := mustParse(t, Spec{Expression: tt.expr})
			k8s, _ := s.CronJobSchedule(time.Time{})
			robfig, err := parser.Parse(k8s)
			if err != nil {
				t.Fatalf("robfig cannot parse %q: %v", k8s, err)
			}
			for _, start := range []string{"2026-01-01T00:00:00Z", "2028-01-01T00:00:00Z"} {
				ours, theirs := at(start), at(start)
				end := ours.AddDate(1, 0, 0)
				n := 0
				for ours.Before(end) {
					ours, theirs = s.Next(time.Time{}, ours), robfig.Next(theirs)
					if !ours.Equal(theirs) {
						t.Fatalf("after %d firings from %s: expression fires at %s, CronJob %q at %s", n, start, ours, k8s, theirs)
					}
					n++
				}
				if n == 0 {
					t.Fatal("no firings")
				}
			}
		})
	}
}

// The one-shot form: after each rotation the operator sets the CronJob to the minute of the next
// one, and the CronJob (robfig, from its last firing) must fire exactly then, not a year early.
func TestOneShotScheduleFiresAtNext(t *testing.T) {
	specs := []Spec{{Expression: "rate(4 hours)"}, {Expression: "rate(23 hours)"}, {Expression: "rate(10 days)"}, {EveryDays: 365}}
	for _, tt := range awsCronCases {
		if tt.k8s == "" {
			specs = append(specs, Spec{Expression: tt.expr})
		}
	}
	for _, sp := range specs {
		t.Run(sp.Expression, func(t *testing.T) {
			s := mustParse(t, sp)
			for _, start := range []string{"2026-01-01T00:00:00Z", "2027-06-15T13:00:00Z"} {
				fired := at(start)
				for i := 0; i < 60; i++ {
					next := s.Next(fired, fired)
					sched, tz := s.CronJobSchedule(next)
					if tz != "Etc/UTC" {
						t.Fatalf("time zone %q", tz)
					}
					cj, err := parser.Parse(sched)
					if err != nil {
						t.Fatalf("robfig cannot parse %q: %v", sched, err)
					}
					if got := cj.Next(fired); !got.Equal(next) {
						t.Fatalf("after %s the CronJob %q fires at %s, want %s", fired, sched, got, next)
					}
					fired = next
				}
			}
		})
	}
}

func TestRateNext(t *testing.T) {
	tests := []struct {
		name      string
		spec      Spec
		last, now string
		want      string
	}{
		{"rate(10 days) like everyDays 10", Spec{Expression: "rate(10 days)"}, "2026-11-01T08:15:42Z", "2026-11-05T10:00:00Z", "2026-11-11T08:15:00Z"},
		{"rate(1 day)", Spec{Expression: "rate(1 day)"}, "2026-11-28T10:00:00Z", "2026-11-29T10:00:00Z", "2026-11-29T10:00:00Z"},
		{"rate(7 days) overdue retries the next day", Spec{Expression: "rate(7 days)"}, "2026-11-01T08:00:00Z", "2026-11-29T10:00:00Z", "2026-11-30T08:00:00Z"},
		{"rate(4 hours) from the last rotation", Spec{Expression: "rate(4 hours)"}, "2026-11-29T08:15:42Z", "2026-11-29T09:00:00Z", "2026-11-29T12:15:00Z"},
		{"rate(4 hours) inside the window", Spec{Expression: "rate(4 hours)"}, "2026-11-29T08:00:00Z", "2026-11-29T12:59:59Z", "2026-11-29T12:00:00Z"},
		{"rate(4 hours) after the window, the next slot", Spec{Expression: "rate(4 hours)"}, "2026-11-29T08:00:00Z", "2026-11-29T13:00:00Z", "2026-11-29T16:00:00Z"},
		{"rate(4 hours) days overdue, the next slot", Spec{Expression: "rate(4 hours)"}, "2026-11-20T08:00:00Z", "2026-11-29T13:30:00Z", "2026-11-29T16:00:00Z"},
		{"rate(6 hours) with a 3h window", Spec{Expression: "rate(6 hours)", Window: "3h"}, "2026-11-29T08:00:00Z", "2026-11-29T16:59:00Z", "2026-11-29T14:00:00Z"},
		{"rate(23 hours)", Spec{Expression: "rate(23 hours)"}, "2026-11-29T08:00:00Z", "2026-11-29T09:00:00Z", "2026-11-30T07:00:00Z"},
		{"rate(1000 days)", Spec{Expression: "rate(1000 days)"}, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2028-09-27T00:00:00Z"},
		// A zero last (never rotated) must not overflow.
		{"rate(4 hours), no last rotation", Spec{Expression: "rate(4 hours)"}, "", "2026-11-29T13:30:00Z", "2026-11-29T16:00:00Z"},
		{"everyDays, no last rotation", Spec{EveryDays: 3}, "", "2026-11-29T13:30:00Z", "2026-11-30T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.spec)
			var last time.Time
			if tt.last != "" {
				last = at(tt.last)
			}
			got := s.Next(last, at(tt.now))
			if !got.Equal(at(tt.want)) {
				t.Fatalf("Next = %s, want %s", got.Format(time.RFC3339), tt.want)
			}
			if sched, tz := s.CronJobSchedule(got); sched != oneShot(got) || tz != "Etc/UTC" {
				t.Fatalf("CronJob schedule %q %q, want %q", sched, tz, oneShot(got))
			}
		})
	}
}

func TestRateDaysIsEveryDays(t *testing.T) {
	r, e := mustParse(t, Spec{Expression: "rate(30 days)"}), mustParse(t, Spec{EveryDays: 30})
	last := at("2026-01-01T07:31:00Z")
	for now := last; now.Before(last.AddDate(0, 3, 0)); now = now.Add(97 * time.Minute) {
		if a, b := r.Next(last, now), e.Next(last, now); !a.Equal(b) {
			t.Fatalf("at %s rate(30 days) is due %s, everyDays 30 %s", now, a, b)
		}
	}
	if r.Window() != e.Window() {
		t.Fatalf("windows %s and %s", r.Window(), e.Window())
	}
}

func TestExpressionWindows(t *testing.T) {
	tests := []struct {
		spec Spec
		want time.Duration
	}{
		// Schedules in hours: 1h by default (AWS).
		{Spec{Expression: "rate(4 hours)"}, time.Hour},
		{Spec{Expression: "rate(4 hours)", Window: "4h"}, 4 * time.Hour},
		{Spec{Expression: "cron(0 8/8 * * ? *)"}, time.Hour},
		{Spec{Expression: "cron(0 8/8 * * ? *)", Window: "8h"}, 8 * time.Hour},
		{Spec{Expression: "cron(0 4/12 * * ? *)", Window: "12h"}, 12 * time.Hour},
		// cron() schedules in days: until the end of the UTC day by default (AWS).
		{Spec{Expression: "cron(0 18 ? * SAT *)"}, 6 * time.Hour},
		{Spec{Expression: "cron(0 17 L * ? *)"}, 7 * time.Hour},
		{Spec{Expression: "cron(0 0 ? * SUN#1 *)"}, 24 * time.Hour},
		{Spec{Expression: "cron(0 18 ? * SAT *)", Window: "6h"}, 6 * time.Hour},
		{Spec{Expression: "cron(0 10 * * ? *)", Window: "2h"}, 2 * time.Hour},
		// rate(N days) is everyDays N: 1h unless set, up to 24h.
		{Spec{Expression: "rate(10 days)"}, time.Hour},
		{Spec{Expression: "rate(10 days)", Window: "24h"}, 24 * time.Hour},
		// Unchanged: everyDays and schedule.cron keep the 1h default.
		{Spec{EveryDays: 10}, time.Hour},
		{Spec{Cron: "0 18 * * 6"}, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Expression+" "+tt.spec.Window, func(t *testing.T) {
			if got := mustParse(t, tt.spec).Window(); got != tt.want {
				t.Fatalf("window %s, want %s", got, tt.want)
			}
		})
	}
}

func TestExpressionRejects(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Expression: "rate(1 day)", EveryDays: 1}, "set exactly one of schedule.cron, schedule.everyDays or schedule.expression"},
		{Spec{Expression: "rate(1 day)", Cron: "0 0 * * *"}, "set exactly one"},
		{Spec{Expression: "rate(1 day)", TimeZone: "Europe/Berlin"}, `schedule.timeZone "Europe/Berlin" must be empty with schedule.expression: AWS schedule expressions are always in UTC`},
		{Spec{Expression: "rate(1 day)", TimeZone: "UTC"}, "must be empty with schedule.expression"},
		{Spec{Expression: " "}, `schedule.expression " ": is empty`},
		{Spec{Expression: "0 3 * * *"}, `schedule.expression "0 3 * * *": must be rate(N days), rate(N hours) or cron(`},
		{Spec{Expression: "Rate(1 day)"}, "must be rate(N days), rate(N hours) or cron("},
		{Spec{Expression: "cron(0 3 * * ? *"}, "must be rate(N days), rate(N hours) or cron("},
		{Spec{Expression: "cron(0 3 * * ? *) # x"}, "must be rate(N days)"},
		{Spec{Expression: "cron(0 3 * * ? *);"}, `';' is not allowed`},
		{Spec{Expression: "rate(" + strings.Repeat("1", 300) + " days)"}, "characters long; AWS allows at most 256"},
		// rate()
		{Spec{Expression: "rate(3 hours)"}, `schedule.expression "rate(3 hours)": hours must be from 4 to 23 (AWS rotates at most every 4 hours`},
		{Spec{Expression: "rate(1 hour)"}, "hours must be from 4 to 23"},
		{Spec{Expression: "rate(24 hours)"}, "for a day or more use rate(N days)"},
		{Spec{Expression: "rate(0 days)"}, `schedule.expression "rate(0 days)": days must be from 1 to 1000`},
		{Spec{Expression: "rate(1001 days)"}, "days must be from 1 to 1000"},
		{Spec{Expression: "rate(-2 days)"}, `"-2" is not a whole number`},
		{Spec{Expression: "rate(2.5 days)"}, `'.' is not allowed`},
		{Spec{Expression: "rate(ten days)"}, `"ten" is not a whole number`},
		{Spec{Expression: "rate(10 weeks)"}, `unit "weeks" must be hour, hours, day or days`},
		{Spec{Expression: "rate(10 Days)"}, `unit "Days" must be`},
		{Spec{Expression: "rate(10)"}, "a whole number and a unit"},
		{Spec{Expression: "rate(4 hours)", Window: "5h"}, `schedule.window 5h is longer than the 4h between two rotations of schedule.expression "rate(4 hours)"`},
		{Spec{Expression: "rate(4 hours)", Window: "90m"}, "1h to 24h"},
		// cron(): shape, minutes, year.
		{Spec{Expression: "cron(0 3 * * ?)"}, `schedule.expression "cron(0 3 * * ?)": needs 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), found 5`},
		{Spec{Expression: "cron(0 0 3 * * ? *)"}, "found 7"},
		{Spec{Expression: "cron(5 3 * * ? *)"}, `schedule.expression "cron(5 3 * * ? *)": minutes must be 0 (AWS rotation windows start on the hour)`},
		{Spec{Expression: "cron(*/30 3 * * ? *)"}, "minutes must be 0"},
		{Spec{Expression: "cron(0 3 * * ? 2027)"}, "year must be * (AWS rotation schedules repeat every year)"},
		// cron(): ? in day-of-month or day-of-week, exactly one.
		{Spec{Expression: "cron(0 3 * * * *)"}, `one of day-of-month (*) and day-of-week (*) must be ? (AWS does not combine them)`},
		{Spec{Expression: "cron(0 1 * 1/3 SUN *)"}, "one of day-of-month (*) and day-of-week (SUN) must be ?"},
		{Spec{Expression: "cron(0 3 ? * ? *)"}, "day-of-month and day-of-week are both ?"},
		{Spec{Expression: "cron(0 ? * * ? *)"}, "hours may not be ?"},
		{Spec{Expression: "cron(0 3 * ? ? *)"}, "month may not be ?"},
		// cron(): values.
		{Spec{Expression: "cron(0 24 * * ? *)"}, `hours: 24 is out of range; use a number from 0 to 23`},
		{Spec{Expression: "cron(0 MON * * ? *)"}, `hours: "MON" is not a number from 0 to 23`},
		{Spec{Expression: "cron(0 3 0 * ? *)"}, "day-of-month: 0 is out of range; use a number from 1 to 31"},
		{Spec{Expression: "cron(0 3 32 * ? *)"}, "day-of-month: 32 is out of range"},
		{Spec{Expression: "cron(0 3 * 13 ? *)"}, "month: 13 is out of range; use 1-12 or JAN-DEC"},
		{Spec{Expression: "cron(0 3 * JANUARY ? *)"}, `month: "JANUARY" is not 1-12 or JAN-DEC`},
		{Spec{Expression: "cron(0 3 ? * 0 *)"}, "day-of-week: 0 is out of range; use 1-7 (1 = Sunday) or SUN-SAT"},
		{Spec{Expression: "cron(0 3 ? * 8 *)"}, "day-of-week: 8 is out of range"},
		{Spec{Expression: "cron(0 3 ? * SUNDAY *)"}, `day-of-week: "SUNDAY" is not 1-7 (1 = Sunday) or SUN-SAT`},
		{Spec{Expression: "cron(0 3 ? * FOO *)"}, `day-of-week: "FOO" is not 1-7 (1 = Sunday) or SUN-SAT`},
		{Spec{Expression: "cron(0 3 ? * FRI-MON *)"}, `day-of-week: range "FRI-MON" runs backwards`},
		{Spec{Expression: "cron(0 20-4 * * ? *)"}, `hours: range "20-4" runs backwards`},
		{Spec{Expression: "cron(0 3/0 * * ? *)"}, `hours: step "0" in "3/0" must be a whole number from 1 to 24`},
		{Spec{Expression: "cron(0 3/x * * ? *)"}, `step "x"`},
		{Spec{Expression: "cron(0 3,,4 * * ? *)"}, `hours "3,,4" has an empty value`},
		{Spec{Expression: "cron(0 3-4-5 * * ? *)"}, `"4-5" is not a number from 0 to 23`},
		// cron(): L and #.
		{Spec{Expression: "cron(0 3 LW * ? *)"}, `day-of-month "LW": use numbers, ranges and steps, or L alone`},
		{Spec{Expression: "cron(0 3 15W * ? *)"}, "no W, no L-n"},
		{Spec{Expression: "cron(0 3 L-2 * ? *)"}, "no W, no L-n"},
		{Spec{Expression: "cron(0 3 1,L * ? *)"}, "or L alone for the last day of the month"},
		{Spec{Expression: "cron(0 3 ? * TUE#6 *)"}, `day-of-week "TUE#6": the week after # must be 1 to 5`},
		{Spec{Expression: "cron(0 3 ? * TUE#0 *)"}, "the week after # must be 1 to 5"},
		{Spec{Expression: "cron(0 3 ? * 8#1 *)"}, "day-of-week: 8 is out of range"},
		{Spec{Expression: "cron(0 3 ? * TUE#1,FRI#1 *)"}, "x#n (the n-th weekday x of the month) must stand alone, as in TUE#3"},
		{Spec{Expression: "cron(0 3 ? * MON,FRIL *)"}, "xL (the last weekday x of the month) must stand alone, as in SUNL or 1L"},
		{Spec{Expression: "cron(0 3 ? * LL *)"}, `day-of-week "LL": xL (the last weekday x of the month) must stand alone`},
		{Spec{Expression: "cron(0 3 ? * L1 *)"}, `day-of-week "L1": L must stand alone (Saturday) or follow one weekday (SUNL, 1L)`},
		// cron(): schedules AWS cannot run.
		{Spec{Expression: "cron(0 0 30 2 ? *)"}, `schedule.expression "cron(0 0 30 2 ? *)": never fires`},
		{Spec{Expression: "cron(0 0 31 4,6,9,11 ? *)"}, "never fires"},
		{Spec{Expression: "cron(0 * * * ? *)"}, "rotations only 1h apart; AWS rotates at most every 4 hours"},
		{Spec{Expression: "cron(0 1,3 * * ? *)"}, "rotations only 2h apart"},
		{Spec{Expression: "cron(0 0,22 * * ? *)"}, "rotations only 2h apart"},
		{Spec{Expression: "cron(0 0,23 1,2 * ? *)"}, "rotations only 1h apart"},
		{Spec{Expression: "cron(0 0,23 29,1 2,3 ? *)"}, "rotations only 1h apart"}, // 29 February 23:00, 1 March 00:00
		{Spec{Expression: "cron(0 0,22 ? * SAT,SUN *)"}, "rotations only 2h apart"},
		{Spec{Expression: "cron(0 0 ? 1 SUN#1 *)"}, `schedule.expression "cron(0 0 ? 1 SUN#1 *)": rotations can be more than a year apart (2028-01-02, then 2029-01-07), which a one-shot CronJob schedule cannot express; name more months`},
		{Spec{Expression: "cron(0 0 ? 1 SUNL *)"}, "rotations can be more than a year apart"},
		{Spec{Expression: "cron(0 0 ? 2 SUN#5 *)"}, `schedule.expression "cron(0 0 ? 2 SUN#5 *)": fires on 2032-02-29 and then not for many years`},
		// Windows.
		{Spec{Expression: "cron(0 18 ? * SAT *)", Window: "7h"}, `schedule.window 7h runs past the end of the UTC day: schedule.expression "cron(0 18 ? * SAT *)" opens it at 18:00 UTC, so it may be at most 6h`},
		{Spec{Expression: "cron(0 23 L * ? *)", Window: "2h"}, "may be at most 1h"},
		{Spec{Expression: "cron(0 8/8 * * ? *)", Window: "9h"}, `schedule.window 9h is longer than the 8h between two rotations of schedule.expression "cron(0 8/8 * * ? *)"`},
		{Spec{Expression: "cron(0 4,8,20 * * ? *)", Window: "5h"}, "longer than the 4h between two rotations"},
		{Spec{Expression: "rate(10 days)", Window: "25h"}, "1h to 24h"},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Expression+" "+tt.spec.Window, func(t *testing.T) {
			_, err := Parse(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("message has more than one line: %q", err)
			}
		})
	}
}

func TestAWSRules(t *testing.T) {
	tests := []struct {
		spec     Spec
		days     int
		expr     string
		duration string
	}{
		{Spec{EveryDays: 30}, 30, "", "1h"},
		{Spec{EveryDays: 30, Window: "3h"}, 30, "", "3h"},
		{Spec{Expression: "rate(10 days)"}, 10, "rate(10 days)", "1h"},
		{Spec{Expression: "rate(4 hours)", Window: "2h"}, 1, "rate(4 hours)", "2h"},
		{Spec{Expression: " cron(0 8/8 * * ? *) "}, 1, "cron(0 8/8 * * ? *)", "1h"},
		{Spec{Expression: "cron(0 10 * * ? *)"}, 1, "cron(0 10 * * ? *)", "14h"},
		{Spec{Expression: "cron(0 18 ? * SAT *)"}, 7, "cron(0 18 ? * SAT *)", "6h"},
		{Spec{Expression: "cron(0 4 ? * 2-6 *)"}, 3, "cron(0 4 ? * 2-6 *)", "20h"},
		{Spec{Expression: "cron(0 17 L * ? *)", Window: "3h"}, 31, "cron(0 17 L * ? *)", "3h"},
		{Spec{Expression: "cron(0 1 ? 1/3 SUN#1 *)"}, 98, "cron(0 1 ? 1/3 SUN#1 *)", "23h"},
		{Spec{Cron: "0 3 * * *", TimeZone: "Europe/Berlin"}, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Expression, func(t *testing.T) {
			days, expr, duration := mustParse(t, tt.spec).AWSRules()
			if days != tt.days || expr != tt.expr || duration != tt.duration {
				t.Fatalf("AWSRules = (%d, %q, %q), want (%d, %q, %q)", days, expr, duration, tt.days, tt.expr, tt.duration)
			}
		})
	}
}

// The parser never panics, and whatever it accepts can be scheduled: Next moves forward, within
// the window rules, and the CronJob schedule is one robfig/cron accepts and that fires at Next.
func FuzzParseExpression(f *testing.F) {
	for _, tt := range awsCronCases {
		f.Add(tt.expr, "")
	}
	for _, seed := range []string{"rate(4 hours)", "rate(1 day)", "rate(1000 days)", "cron(0 3 ? * 1L *)", "cron(0 3 ? * L *)",
		"cron(0 3 ? * 7#5 *)", "cron(0 0-23/4 1-31/2 JAN-DEC/5 ? *)", "cron(0 3 ? * #1 *)", "cron(0 3 ? * L#1 *)", "cron()", "rate()", "cron(0 3 -1 * ? *)"} {
		f.Add(seed, "")
		f.Add(seed, "4h")
	}
	f.Fuzz(func(t *testing.T, expr, window string) {
		s, err := Parse(Spec{Expression: expr, Window: window})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line message %q", err)
			}
			return
		}
		if w := s.Window(); w < time.Hour || w > 24*time.Hour {
			t.Fatalf("window %s", w)
		}
		last := at("2026-03-01T10:17:00Z")
		now := at("2026-03-02T11:00:00Z")
		next := s.Next(last, now)
		if next.IsZero() || next.Before(last) {
			t.Fatalf("Next(%s, %s) = %s", last, now, next)
		}
		sched, tz := s.CronJobSchedule(next)
		if tz != "Etc/UTC" {
			t.Fatalf("time zone %q", tz)
		}
		cj, err := parser.Parse(sched)
		if err != nil {
			t.Fatalf("CronJob schedule %q: %v", sched, err)
		}
		if s.aws != nil {
			if got := cj.Next(now); !got.Equal(next) {
				t.Fatalf("CronJob %q fires at %s after %s, Next is %s", sched, got, now, next)
			}
		}
		s.AWSRules()
	})
}
