package rotation

import (
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/schedule"
)

func TestOverdue(t *testing.T) {
	every30, err := schedule.Parse(schedule.Spec{EveryDays: 30, Window: "2h"})
	if err != nil {
		t.Fatal(err)
	}
	last := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	due := last.Add(30 * Day)
	for _, tc := range []struct {
		name string
		now  time.Time
		want bool
	}{
		{"before the due time", due.Add(-time.Hour), false},
		{"inside the window", due.Add(time.Hour), false},
		{"at the end of the window", due.Add(2 * time.Hour), false},
		{"after the window", due.Add(2*time.Hour + time.Second), true},
		{"long after", due.Add(40 * Day), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, deadline := Overdue(every30, last, tc.now)
			if got != tc.want {
				t.Errorf("Overdue at %s = %v, want %v", tc.now, got, tc.want)
			}
			if !deadline.Equal(due.Add(2 * time.Hour)) {
				t.Errorf("deadline = %s, want %s", deadline, due.Add(2*time.Hour))
			}
		})
	}
}

func TestStale(t *testing.T) {
	created := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		created time.Time
		maxAge  int32
		now     time.Time
		want    bool
		wantAt  time.Time
	}{
		{"no limit", created, 0, created.Add(1000 * Day), false, time.Time{}},
		{"no value", time.Time{}, 10, created, false, time.Time{}},
		{"younger", created, 10, created.Add(9 * Day), false, created.Add(10 * Day)},
		{"exactly the limit", created, 10, created.Add(10 * Day), false, created.Add(10 * Day)},
		{"older", created, 10, created.Add(10*Day + time.Second), true, created.Add(10 * Day)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, at := Stale(tc.created, tc.maxAge, tc.now)
			if got != tc.want || !at.Equal(tc.wantAt) {
				t.Errorf("Stale = %v at %s, want %v at %s", got, at, tc.want, tc.wantAt)
			}
		})
	}
}
