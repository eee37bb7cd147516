package rotation

import (
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Succeeded reports whether a rotation Job completed.
func Succeeded(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// Failed returns the reason a rotation Job failed, or "".
func Failed(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			if c.Reason == "" {
				return "Failed"
			}
			return c.Reason
		}
	}
	return ""
}

// Unfinished reports whether a Job still runs (neither succeeded, failed nor being deleted).
func Unfinished(j *batchv1.Job) bool {
	return !Succeeded(j) && Failed(j) == "" && j.DeletionTimestamp == nil
}

// JobPlan is which rotation Job to serve and which to stand down: one rotation at a time.
type JobPlan struct {
	// Start is the Job to start serving (nil when one is already served or none runs).
	Start *batchv1.Job
	// StandDown are the other unfinished Jobs, to delete.
	StandDown []*batchv1.Job
}

// PlanJobs keeps the Job already served (activeUID), or serves the oldest unfinished one, and
// stands every other unfinished Job down.
func PlanJobs(jobs []batchv1.Job, activeUID string) JobPlan {
	var unfinished []*batchv1.Job
	for i := range jobs {
		if Unfinished(&jobs[i]) {
			unfinished = append(unfinished, &jobs[i])
		}
	}
	sort.Slice(unfinished, func(a, b int) bool {
		ta, tb := unfinished[a].CreationTimestamp, unfinished[b].CreationTimestamp
		if ta.Equal(&tb) {
			return unfinished[a].Name < unfinished[b].Name
		}
		return ta.Before(&tb)
	})
	var plan JobPlan
	active := activeUID
	if active == "" && len(unfinished) > 0 {
		plan.Start, active = unfinished[0], string(unfinished[0].UID)
	}
	for _, j := range unfinished {
		if string(j.UID) != active {
			plan.StandDown = append(plan.StandDown, j)
		}
	}
	return plan
}

// Busy reports whether a rotation is under way: a Job is served, or one still runs.
func Busy(jobs []batchv1.Job, activeUID string) bool {
	if activeUID != "" {
		return true
	}
	for i := range jobs {
		if Unfinished(&jobs[i]) {
			return true
		}
	}
	return false
}

// ScheduleBase is the time the next rotation is counted from: the later of the last rotation and
// the creation of the current value (a value put by hand counts as a rotation, as in AWS). Label
// moves that do not bring a new value, such as a rotation's pending version, do not count.
func ScheduleBase(currentCreated time.Time, lastRotated *time.Time) time.Time {
	if lastRotated != nil && lastRotated.After(currentCreated) {
		return *lastRotated
	}
	return currentCreated
}
