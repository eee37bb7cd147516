package rotation

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func job(name string, age time.Duration, cond batchv1.JobConditionType) batchv1.Job {
	j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0.Add(-age))}}
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
	}
	return j
}

func TestPlanJobs(t *testing.T) {
	names := func(js []*batchv1.Job) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.Name)
		}
		return out
	}
	tests := []struct {
		name      string
		jobs      []batchv1.Job
		active    string
		start     string
		standDown []string
	}{
		{"nothing runs", []batchv1.Job{job("done", time.Hour, batchv1.JobComplete)}, "", "", nil},
		{"the oldest unfinished is served", []batchv1.Job{job("young", time.Minute, ""), job("old", time.Hour, ""), job("failed", 2*time.Hour, batchv1.JobFailed)}, "", "old", []string{"young"}},
		{"the served one stays", []batchv1.Job{job("young", time.Minute, ""), job("old", time.Hour, "")}, "uid-young", "", []string{"old"}},
		{"served one finished, another runs", []batchv1.Job{job("served", time.Hour, batchv1.JobComplete), job("other", time.Minute, "")}, "uid-served", "", []string{"other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanJobs(tt.jobs, tt.active)
			start := ""
			if p.Start != nil {
				start = p.Start.Name
			}
			if start != tt.start || len(p.StandDown) != len(tt.standDown) || (len(tt.standDown) > 0 && names(p.StandDown)[0] != tt.standDown[0]) {
				t.Fatalf("start %q stand down %v; want %q %v", start, names(p.StandDown), tt.start, tt.standDown)
			}
		})
	}
	if !Busy(nil, "x") || Busy([]batchv1.Job{job("done", time.Hour, batchv1.JobComplete)}, "") || !Busy([]batchv1.Job{job("run", time.Hour, "")}, "") {
		t.Fatal("Busy is wrong")
	}
}

func TestScheduleBase(t *testing.T) {
	created, rotated, later := t0.Add(-48*time.Hour), t0.Add(-24*time.Hour), t0.Add(-time.Hour)
	if got := ScheduleBase(created, nil); !got.Equal(created) {
		t.Errorf("never rotated: %s", got)
	}
	if got := ScheduleBase(created, &rotated); !got.Equal(rotated) {
		t.Errorf("rotated after the value was made: %s", got)
	}
	if got := ScheduleBase(later, &rotated); !got.Equal(later) {
		t.Errorf("a value put after the rotation: %s", got)
	}
}
