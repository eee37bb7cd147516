package rotation

import (
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/schedule"
)

// Day is the unit of a policy's maxAgeDays.
const Day = 24 * time.Hour

// Overdue tells whether the rotation due after last was missed: its due time and window have
// passed and the value has not rotated since (AWS's missed rotation). It also returns the
// deadline, after which the answer changes from false to true.
func Overdue(sched *schedule.Schedule, last, now time.Time) (overdue bool, deadline time.Time) {
	deadline = sched.Deadline(last)
	return now.After(deadline), deadline
}

// Stale tells whether a value created at created is older than maxAgeDays at now, and when it
// becomes (or became) so. maxAgeDays <= 0 means no limit.
func Stale(created time.Time, maxAgeDays int32, now time.Time) (stale bool, at time.Time) {
	if maxAgeDays <= 0 || created.IsZero() {
		return false, time.Time{}
	}
	at = created.Add(time.Duration(maxAgeDays) * Day)
	return now.After(at), at
}
