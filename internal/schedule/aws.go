package schedule

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// AWS ScheduleExpression (RotationRules.ScheduleExpression): rate(N hours|days) and
// cron(Minutes Hours Day-of-month Month Day-of-week Year), always in UTC.
//
// Decisions where AWS is silent (our own contract, documented here and in the tests):
//
//   - rate(N hours) takes N from 4 to 23. 4 is AWS's shortest rotation interval. AWS documents no
//     upper bound, but its rotation windows have two models, hours (default 1h, window ≤ interval)
//     and days (the window must not run into the next UTC day); 24 hours or more is a schedule in
//     days, so we refuse it and name rate(N days) instead, rather than guess which window rules
//     AWS would apply to rate(36 hours).
//   - rate(N days) is exactly schedule.everyDays N (1 to 1000, like AutomaticallyAfterDays): due N×24h
//     after the last rotation, its window defaulting to 1h like everyDays. AWS opens rate windows
//     at 00:00 UTC and by default keeps them open to the end of that UTC day; this package counts
//     every-N-days from the time of the last rotation instead, so "until the end of the UTC day"
//     would be a different length every time, which a CronJob's startingDeadlineSeconds cannot
//     express. Set schedule.window (up to 24h) for a longer window.
//   - rate(N hours) counts from the last rotation the same way (due last+N h, to the minute); a due
//     time missed together with its window is retried at the next slot of that grid.
//   - cron(): an expression that fires at more than one hour of the day is a schedule in hours:
//     its window defaults to 1h and may not be longer than the shortest gap between two rotations.
//     One that fires at a single hour is a schedule in days: its window defaults to AWS's "until
//     the end of that UTC day" (24h minus the start hour) and start hour + window must be ≤ 24.
//     These AWS defaults apply to cron() expressions only; schedule.cron and schedule.everyDays
//     keep this package's 1h default.
//   - cron() expressions whose rotations come less than 4 hours apart are refused (AWS's shortest
//     interval), as are expressions that never fire.
//   - A cron() expression with L, xL or x#n has no five-field equivalent and runs as a one-shot
//     CronJob schedule ("M H D Mon *", moved after each rotation). That minute recurs every year,
//     so such an expression is refused when two rotations can be more than a year apart (the first
//     Sunday of January only: 2028-01-02, then 2029-01-07): the CronJob would fire on 2028-01-07.
//     AWS says its schedules are never more than a year apart; it is not known whether AWS itself
//     refuses these.
//   - L alone in day-of-week is Saturday (7), the last day of the week, as in AWS/EventBridge.
//     L, xL and x#n must stand alone in their field (no lists, ranges or steps), and day-of-month
//     takes no W and no L-n: AWS lists only L for Secrets Manager.
//   - Ranges must run upwards (FRI-MON is refused): a wrapped range is ambiguous across cron
//     dialects, and two ranges say the same thing.
//   - Names (JAN-DEC, SUN-SAT) are case-insensitive; the words rate, cron, hour(s), day(s) must be
//     lower case, as AWS writes them. rate(1 days) and rate(2 day) are accepted.

const (
	// MinInterval is AWS's shortest rotation interval: "You can rotate a secret as often as every
	// four hours."
	MinInterval = 4 * time.Hour
	// MinRateHours and MaxRateHours bound rate(N hours).
	MinRateHours = 4
	// MaxRateHours is the largest hour rate; 24 hours and more are rate(N days).
	MaxRateHours = 23
	// MaxEveryDays is the largest everyDays and rate(N days), as AutomaticallyAfterDays.
	MaxEveryDays = 1000
	// maxExpressionLength is the AWS model's limit on ScheduleExpression.
	maxExpressionLength = 256
	// scanYears of days are examined when an expression is parsed: a 28-year cycle repeats
	// weekdays and leap years (1901-2099), plus one year for gaps that cross the cycle's end.
	scanFromYear = 2024
	scanYears    = 29
	// nextSearchYears bounds Next: a cron() expression that Parse accepts fires at least every
	// 8 years (29 February, across the non-leap 2100).
	nextSearchYears = 30
)

// awsCron is a parsed AWS cron() expression. Minutes are always 0 and the year always *.
type awsCron struct {
	hours  uint32 // bit h: fires at h:00 UTC
	months uint16 // bit m (1-12)
	mode   dayMode
	dom    uint32       // domList: bit d (1-31)
	dow    uint8        // dowList: bit w, Go's time.Weekday (0 = Sunday)
	wd     time.Weekday // dowLast, dowNth
	nth    int          // dowNth: 1-5
	k8s    string       // the exact five-field Kubernetes schedule, or "" if there is none
}

type dayMode int

const (
	domList dayMode = iota // day-of-month values, day-of-week ?
	domLast                // L in day-of-month: the last day of the month
	dowList                // day-of-week values, day-of-month ?
	dowLast                // xL: the last weekday x of the month
	dowNth                 // x#n: the n-th weekday x of the month
)

// matches reports whether day d of a month with dim days, on weekday wd, is a rotation day (the
// month is checked by the caller).
func (c *awsCron) matches(d, dim int, wd time.Weekday) bool {
	switch c.mode {
	case domList:
		return c.dom&(1<<d) != 0
	case domLast:
		return d == dim
	case dowList:
		return c.dow&(1<<wd) != 0
	case dowLast:
		return wd == c.wd && d+7 > dim
	default: // dowNth
		return wd == c.wd && (d-1)/7+1 == c.nth
	}
}

// next is the first firing strictly after t.
func (c *awsCron) next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Hour).Add(time.Hour)
	y, m, d := t.Date()
	h := t.Hour()
	for i := 0; i < 12*nextSearchYears; i++ {
		if c.months&(1<<m) != 0 {
			dim := daysIn(y, m)
			wd1 := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Weekday()
			for ; d <= dim; d++ {
				if c.matches(d, dim, (wd1+time.Weekday(d-1))%7) {
					if rest := c.hours >> h; rest != 0 {
						return time.Date(y, m, d, h+bits.TrailingZeros32(rest), 0, 0, 0, time.UTC)
					}
				}
				h = 0
			}
		}
		if m++; m > time.December {
			m, y = time.January, y+1
		}
		d, h = 1, 0
	}
	return time.Time{}
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// exprError is a human message about schedule.expression.
func exprError(expr, format string, args ...any) error {
	return fmt.Errorf("schedule.expression %q: %s", expr, fmt.Sprintf(format, args...))
}

// parseExpression fills out (already holding the parsed window, if any) from s.Expression.
func parseExpression(out *Schedule) (*Schedule, error) {
	expr := strings.TrimSpace(out.spec.Expression)
	if expr == "" {
		return nil, exprError(out.spec.Expression, "is empty; write rate(N days), rate(N hours) or cron(0 H D M W *)")
	}
	if len(expr) > maxExpressionLength {
		return nil, exprError(expr[:40]+"...", "is %d characters long; AWS allows at most %d", len(expr), maxExpressionLength)
	}
	for _, r := range expr {
		alnum := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !alnum && !strings.ContainsRune("()#?*-/, ", r) {
			return nil, exprError(expr, "%q is not allowed; AWS schedule expressions use only letters, digits, spaces and ( ) # ? * - / ,", r)
		}
	}
	out.expression = expr
	explicit := out.spec.Window != ""
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		return parseRate(out, expr, explicit)
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		return parseAWSCron(out, expr, explicit)
	}
	return nil, exprError(expr, "must be rate(N days), rate(N hours) or cron(Minutes Hours Day-of-month Month Day-of-week Year), as in AWS RotationRules.ScheduleExpression")
}

func parseRate(out *Schedule, expr string, explicit bool) (*Schedule, error) {
	f := strings.Fields(expr[len("rate(") : len(expr)-1])
	if len(f) != 2 {
		return nil, exprError(expr, "must be rate(N days) or rate(N hours), a whole number and a unit")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || strings.HasPrefix(f[0], "+") || strings.HasPrefix(f[0], "-") {
		return nil, exprError(expr, "%q is not a whole number of hours or days", f[0])
	}
	switch f[1] {
	case "day", "days":
		if n < 1 || n > MaxEveryDays {
			return nil, exprError(expr, "days must be from 1 to %d", MaxEveryDays)
		}
		out.everyDays = n
		out.awsDays = n
		return out, nil
	case "hour", "hours":
		if n < MinRateHours || n > MaxRateHours {
			return nil, exprError(expr, "hours must be from %d to %d (AWS rotates at most every 4 hours; for a day or more use rate(N days))", MinRateHours, MaxRateHours)
		}
		out.everyHours = n
		out.awsDays = 1
		interval := time.Duration(n) * time.Hour
		if explicit && out.window > interval {
			return nil, fmt.Errorf("schedule.window %s is longer than the %dh between two rotations of schedule.expression %q", out.spec.Window, n, expr)
		}
		return out, nil
	}
	return nil, exprError(expr, "unit %q must be hour, hours, day or days", f[1])
}

// fieldSpec describes one cron() field.
type fieldSpec struct {
	name     string
	min, max int
	names    []string // names[i] is the value min+i
	what     string   // what a value may be, for messages
}

var (
	hoursField = fieldSpec{name: "hours", min: 0, max: 23, what: "a number from 0 to 23"}
	domField   = fieldSpec{name: "day-of-month", min: 1, max: 31, what: "a number from 1 to 31"}
	monthField = fieldSpec{name: "month", min: 1, max: 12, what: "1-12 or JAN-DEC",
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}}
	dowField = fieldSpec{name: "day-of-week", min: 1, max: 7, what: "1-7 (1 = Sunday) or SUN-SAT",
		names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}}
)

// part is one comma-separated element of a field: start-end/step, or */step. A single value
// with a step, N/step, runs to the field's max.
type part struct {
	start, end, step int
	star             bool
}

func (f fieldSpec) value(expr, s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && !strings.ContainsAny(s, "+-") {
		if n < f.min || n > f.max {
			return 0, exprError(expr, "%s: %s is out of range; use %s", f.name, s, f.what)
		}
		return n, nil
	}
	for i, name := range f.names {
		if strings.EqualFold(s, name) {
			return f.min + i, nil
		}
	}
	return 0, exprError(expr, "%s: %q is not %s", f.name, s, f.what)
}

// list parses a field of comma-separated values, ranges and steps into a bit set and its parts.
func (f fieldSpec) list(expr, field string) (uint64, []part, error) {
	var set uint64
	var parts []part
	for _, tok := range strings.Split(field, ",") {
		if tok == "" {
			return 0, nil, exprError(expr, "%s %q has an empty value; check the commas", f.name, field)
		}
		body, stepStr, hasStep := strings.Cut(tok, "/")
		p := part{step: 1}
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || strings.ContainsAny(stepStr, "+-") || n < 1 || n > f.max-f.min+1 {
				return 0, nil, exprError(expr, "%s: step %q in %q must be a whole number from 1 to %d", f.name, stepStr, tok, f.max-f.min+1)
			}
			p.step = n
		}
		if body == "*" {
			p.star, p.start, p.end = true, f.min, f.max
		} else {
			lo, hi, isRange := strings.Cut(body, "-")
			var err error
			if p.start, err = f.value(expr, lo); err != nil {
				return 0, nil, err
			}
			switch {
			case isRange:
				if p.end, err = f.value(expr, hi); err != nil {
					return 0, nil, err
				}
				if p.end < p.start {
					return 0, nil, exprError(expr, "%s: range %q runs backwards; write it as two ranges joined by a comma", f.name, body)
				}
			case hasStep:
				p.end = f.max
			default:
				p.end = p.start
			}
		}
		for v := p.start; v <= p.end; v += p.step {
			set |= 1 << v
		}
		parts = append(parts, p)
	}
	return set, parts, nil
}

// render writes parts as a Kubernetes (robfig/cron) field, numbers shifted by shift (-1 turns
// AWS's day-of-week 1-7 into cron's 0-6).
func render(parts []part, shift int) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		var s string
		switch {
		case p.star:
			s = "*"
		case p.start == p.end:
			out[i] = strconv.Itoa(p.start + shift)
			continue
		default:
			// N/step is written N-max/step: the same set, in the plainest cron syntax.
			s = fmt.Sprintf("%d-%d", p.start+shift, p.end+shift)
		}
		if p.step > 1 {
			s += "/" + strconv.Itoa(p.step)
		}
		out[i] = s
	}
	return strings.Join(out, ",")
}

func parseAWSCron(out *Schedule, expr string, explicit bool) (*Schedule, error) {
	f := strings.Fields(expr[len("cron(") : len(expr)-1])
	if len(f) != 6 {
		return nil, exprError(expr, "needs 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), found %d", len(f))
	}
	if f[0] != "0" {
		return nil, exprError(expr, "minutes must be 0 (AWS rotation windows start on the hour)")
	}
	if f[5] != "*" {
		return nil, exprError(expr, "year must be * (AWS rotation schedules repeat every year)")
	}
	for _, i := range []int{1, 3} {
		if strings.Contains(f[i], "?") {
			return nil, exprError(expr, "%s may not be ?; ? goes in day-of-month or day-of-week", []string{1: "hours", 3: "month"}[i])
		}
	}
	domQ, dowQ := f[2] == "?", f[4] == "?"
	switch {
	case domQ && dowQ:
		return nil, exprError(expr, "day-of-month and day-of-week are both ?; give one of them a value")
	case !domQ && !dowQ:
		return nil, exprError(expr, "one of day-of-month (%s) and day-of-week (%s) must be ? (AWS does not combine them)", f[2], f[4])
	}
	c := &awsCron{}
	translatable := true
	hours, hourParts, err := hoursField.list(expr, f[1])
	if err != nil {
		return nil, err
	}
	c.hours = uint32(hours)
	months, monthParts, err := monthField.list(expr, f[3])
	if err != nil {
		return nil, err
	}
	c.months = uint16(months)
	domK8s, dowK8s := "*", "*"
	if dowQ {
		switch dom := strings.ToUpper(f[2]); {
		case dom == "L":
			c.mode, translatable = domLast, false
		case strings.ContainsAny(dom, "LW?#"):
			return nil, exprError(expr, "day-of-month %q: use numbers, ranges and steps, or L alone for the last day of the month (no W, no L-n)", f[2])
		default:
			set, parts, err := domField.list(expr, f[2])
			if err != nil {
				return nil, err
			}
			c.mode, c.dom = domList, uint32(set)
			domK8s = render(parts, 0)
		}
	} else {
		dow := strings.ToUpper(f[4])
		switch {
		case dow == "L":
			// The last day of the week: Saturday.
			c.mode, c.dow = dowList, 1<<time.Saturday
			dowK8s = "6"
		case strings.Contains(dow, "#"):
			day, nth, _ := strings.Cut(dow, "#")
			if strings.ContainsAny(day, ",-/*L") || strings.ContainsAny(nth, ",-/*#") {
				return nil, exprError(expr, "day-of-week %q: x#n (the n-th weekday x of the month) must stand alone, as in TUE#3", f[4])
			}
			w, err := dowField.value(expr, day)
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(nth)
			if err != nil || n < 1 || n > 5 {
				return nil, exprError(expr, "day-of-week %q: the week after # must be 1 to 5", f[4])
			}
			c.mode, c.wd, c.nth, translatable = dowNth, time.Weekday(w-1), n, false
		case strings.HasSuffix(dow, "L"):
			day := dow[:len(dow)-1]
			if strings.ContainsAny(day, ",-/*L") {
				return nil, exprError(expr, "day-of-week %q: xL (the last weekday x of the month) must stand alone, as in SUNL or 1L", f[4])
			}
			w, err := dowField.value(expr, day)
			if err != nil {
				return nil, err
			}
			c.mode, c.wd, translatable = dowLast, time.Weekday(w-1), false
		case strings.Contains(dow, "L"):
			return nil, exprError(expr, "day-of-week %q: L must stand alone (Saturday) or follow one weekday (SUNL, 1L)", f[4])
		default:
			set, parts, err := dowField.list(expr, f[4])
			if err != nil {
				return nil, err
			}
			c.mode, c.dow = dowList, uint8(set>>1) // AWS 1-7 → time.Weekday 0-6
			dowK8s = render(parts, -1)
		}
	}
	if translatable {
		c.k8s = fmt.Sprintf("0 %s %s %s %s", render(hourParts, 0), domK8s, render(monthParts, 0), dowK8s)
		if _, err := parser.Parse(c.k8s); err != nil {
			// A translation the CronJob controller would refuse is a bug here, not the user's.
			return nil, exprError(expr, "cannot be run by a CronJob (%q: %v)", c.k8s, err)
		}
	}
	out.aws = c
	return c.check(out, expr, explicit)
}

// check examines a 29-year cycle of rotation days: the expression must fire, rotations must be
// at least MinInterval apart, a one-shot CronJob schedule must be exact, and the window must fit.
func (c *awsCron) check(out *Schedule, expr string, explicit bool) (*Schedule, error) {
	first := bits.TrailingZeros32(c.hours)
	last := 31 - bits.LeadingZeros32(c.hours)
	// Gaps between firings of one day, in hours.
	shortest, longest := 0, 0
	for h, prev := first+1, first; h <= last; h++ {
		if c.hours&(1<<h) != 0 {
			if g := h - prev; shortest == 0 || g < shortest {
				shortest = g
			}
			longest = max(longest, h-prev)
			prev = h
		}
	}
	start := time.Date(scanFromYear, time.January, 1, 0, 0, 0, 0, time.UTC)
	prevDay, prevDate, days := -1, time.Time{}, 0
	for y := scanFromYear; y < scanFromYear+scanYears; y++ {
		for m := time.January; m <= time.December; m++ {
			if c.months&(1<<m) == 0 {
				continue
			}
			first1 := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
			base := int(first1.Sub(start) / Day)
			dim, wd1 := daysIn(y, m), first1.Weekday()
			for d := 1; d <= dim; d++ {
				if !c.matches(d, dim, (wd1+time.Weekday(d-1))%7) {
					continue
				}
				day := base + d - 1
				if prevDay >= 0 {
					// From the last firing of the previous rotation day to the first of this one.
					g := (day-prevDay)*24 - last + first
					if shortest == 0 || g < shortest {
						shortest = g
					}
					longest = max(longest, g)
					if c.k8s == "" {
						a := prevDate.Add(time.Duration(last) * time.Hour)
						b := time.Date(y, m, d, first, 0, 0, 0, time.UTC)
						if p := previousSameMinute(b); p.After(a) {
							return nil, exprError(expr, "rotations can be more than a year apart (%s, then %s), which a one-shot CronJob schedule cannot express; name more months (AWS rotation schedules repeat at least every year)",
								a.Format("2006-01-02"), b.Format("2006-01-02"))
						}
					}
				}
				prevDay, prevDate = day, time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
				days++
			}
		}
	}
	switch days {
	case 0:
		return nil, exprError(expr, "never fires (no such day in any month it names)")
	case 1:
		return nil, exprError(expr, "fires on %s and then not for many years; AWS rotation schedules repeat at least every year", prevDate.Format("2006-01-02"))
	}
	if time.Duration(shortest)*time.Hour < MinInterval {
		return nil, exprError(expr, "rotations only %dh apart; AWS rotates at most every 4 hours", shortest)
	}
	out.awsDays = (longest + 23) / 24
	if first == last {
		// A schedule in days: the window runs, by default, to the end of the UTC day.
		if !explicit {
			out.window = time.Duration(24-first) * time.Hour
		} else if first+int(out.window/time.Hour) > 24 {
			return nil, fmt.Errorf("schedule.window %s runs past the end of the UTC day: schedule.expression %q opens it at %02d:00 UTC, so it may be at most %dh",
				out.spec.Window, expr, first, 24-first)
		}
		return out, nil
	}
	// A schedule in hours: the window defaults to 1h and must end before the next rotation.
	if gap := time.Duration(shortest) * time.Hour; explicit && out.window > gap {
		return nil, fmt.Errorf("schedule.window %s is longer than the %dh between two rotations of schedule.expression %q", out.spec.Window, shortest, expr)
	}
	return out, nil
}

// previousSameMinute is the last time before t with t's month, day, hour and minute: what a
// one-shot "M H D Mon *" CronJob schedule would match before t.
func previousSameMinute(t time.Time) time.Time {
	for back := 1; back <= 8; back++ {
		p := t.AddDate(-back, 0, 0)
		if p.Day() == t.Day() {
			return p
		}
	}
	return time.Time{}
}

// AWSRules is the schedule as DescribeSecret reports it in RotationRules: AutomaticallyAfterDays,
// ScheduleExpression and Duration (the window, as "3h"). Zero values mean "omit".
//
//   - everyDays N: (N, "", window).
//   - an expression: the expression as written, its window, and AutomaticallyAfterDays derived
//     from it, as AWS derives it from the schedule: N for rate(N days), 1 for rate(N hours), and for
//     cron() the longest gap between two rotations rounded up to whole days (7 for a weekly
//     schedule, 31 for the last day of every month), so compliance checks on "rotated at least
//     every N days" read true.
//   - schedule.cron: a Kubernetes cron with a time zone has no AWS form: (0, "", "").
//
// A window that is not a whole number of hours (schedule.cron only) has no Duration.
func (s *Schedule) AWSRules() (automaticallyAfterDays int, scheduleExpression string, duration string) {
	if s.cron != nil {
		return 0, "", ""
	}
	if s.window%time.Hour == 0 {
		duration = fmt.Sprintf("%dh", s.window/time.Hour)
	}
	if s.expression == "" {
		return s.everyDays, "", duration
	}
	return s.awsDays, s.expression, duration
}
