// Package summary computes a ManagedSecret's status from what a reconcile found: its versions, the
// outcome of the reconcile, and the previous status. It is pure, so every rule is table-tested.
package summary

import (
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
)

// MaxListedVersions bounds status.versions (at most 20 labels can exist, so at most 20 labelled
// versions).
const MaxListedVersions = stages.MaxLabels

// Outcome is the result of one reconcile, as the Ready condition shows it.
type Outcome struct {
	Ready   bool
	Reason  string
	Message string
}

// Condition is a condition to set, observed at the input's generation.
type Condition struct {
	Type    string
	True    bool
	Reason  string
	Message string
}

// Rotation is what the rotation phase found. A nil *Rotation in Input means no RotationPolicy is
// attached: the rotation conditions and fields are removed.
type Rotation struct {
	// Conditions to set; rotation conditions not listed keep their value.
	Conditions []Condition
	// NextRotationTime replaces the field (nil clears it).
	NextRotationTime *time.Time
	// LastRotatedTime replaces the field when set.
	LastRotatedTime *time.Time
	// Status replaces status.rotation.
	Status v1alpha1.RotationStatus
}

var rotationConditions = []string{v1alpha1.ConditionRotationScheduled, v1alpha1.ConditionRotating, v1alpha1.ConditionRotationFailed,
	v1alpha1.ConditionRotationOverdue, v1alpha1.ConditionStale}

// Input is everything the status is computed from.
type Input struct {
	Generation int64
	Previous   v1alpha1.ManagedSecretStatus
	Versions   []stages.Version
	TargetName string
	Outcome    Outcome
	Rotation   *Rotation
	// DeletionTime and DeletionRequest are set while the secret is marked for deletion.
	DeletionTime    *time.Time
	DeletionRequest string
	// Changed is a change AWS counts in LastChangedDate that the versions do not show: marked for
	// deletion or restored, rotation turned on or off.
	Changed bool
	// Accessed is a read of a value (GetSecretValue through the plugin or the API).
	Accessed bool
	Now      time.Time
}

// Status returns the new status. Fields that describe versions are left as they were when the
// versions could not be read (Versions == nil and the outcome is not Ready).
func Status(in Input) v1alpha1.ManagedSecretStatus {
	st := *in.Previous.DeepCopy()
	st.ObservedGeneration = in.Generation
	st.TargetSecretName = in.TargetName

	byID := map[string]stages.Version{}
	for _, v := range in.Versions {
		byID[v.ID] = v
	}
	holder := func(label string) string {
		for _, v := range in.Versions {
			for _, l := range v.Labels {
				if l == label {
					return v.ID
				}
			}
		}
		return ""
	}
	changed := in.Changed || (in.Previous.ObservedGeneration != 0 && in.Previous.ObservedGeneration != in.Generation)
	if len(in.Versions) > 0 || in.Outcome.Ready {
		current := holder(stages.Current)
		labelsMoved := !sameLabels(in.Previous.Versions, listed(in.Versions))
		changed = changed || (current != "" && current != in.Previous.CurrentVersionID) || (labelsMoved && in.Previous.CurrentVersionID != "")
		if current != "" && in.Previous.LastChangedTime == nil {
			changed = true
		}
		st.CurrentVersionID = current
		st.PendingVersionID = stages.UnfinishedPending(in.Versions)
		st.PreviousVersionID = holder(stages.Previous)
		st.Versions = listed(in.Versions)
	}
	// AWS's LastChangedDate moves on every change: the value, its labels, metadata (a new
	// generation of the spec: description, tags, key, rotation), deletion and restore.
	if changed {
		t := metav1.NewTime(in.Now.UTC().Truncate(time.Second))
		st.LastChangedTime = &t
	}
	if in.Accessed {
		// Day precision, as AWS keeps it: at most one write a day for reads.
		day := metav1.NewTime(in.Now.UTC().Truncate(24 * time.Hour))
		if st.LastAccessedDate == nil || !st.LastAccessedDate.Equal(&day) {
			st.LastAccessedDate = &day
		}
	}

	setCondition(&st, in, Condition{Type: v1alpha1.ConditionReady, True: in.Outcome.Ready, Reason: in.Outcome.Reason, Message: in.Outcome.Message})
	applyRotation(&st, in)
	st.DeletionTime, st.DeletionRequest = nil, in.DeletionRequest
	if in.DeletionTime != nil {
		t := metav1.NewTime(in.DeletionTime.UTC())
		st.DeletionTime = &t
	}
	return st
}

func setCondition(st *v1alpha1.ManagedSecretStatus, in Input, c Condition) {
	status := metav1.ConditionFalse
	if c.True {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type:               c.Type,
		Status:             status,
		Reason:             c.Reason,
		Message:            c.Message,
		ObservedGeneration: in.Generation,
		LastTransitionTime: metav1.NewTime(in.Now.UTC().Truncate(time.Second)),
	})
}

func applyRotation(st *v1alpha1.ManagedSecretStatus, in Input) {
	if in.Rotation == nil {
		for _, t := range rotationConditions {
			meta.RemoveStatusCondition(&st.Conditions, t)
		}
		st.NextRotationTime = nil
		st.Rotation = nil
		return
	}
	for _, c := range in.Rotation.Conditions {
		setCondition(st, in, c)
	}
	// Conditions kept from before still describe the current generation.
	for i := range st.Conditions {
		st.Conditions[i].ObservedGeneration = in.Generation
	}
	st.NextRotationTime = nil
	if in.Rotation.NextRotationTime != nil {
		t := metav1.NewTime(in.Rotation.NextRotationTime.UTC())
		st.NextRotationTime = &t
	}
	if in.Rotation.LastRotatedTime != nil {
		t := metav1.NewTime(in.Rotation.LastRotatedTime.UTC().Truncate(time.Second))
		st.LastRotatedTime = &t
	}
	rs := in.Rotation.Status
	st.Rotation = &rs
}

// sameLabels compares which versions hold which labels.
func sameLabels(a, b []v1alpha1.VersionSummary) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].VersionID != b[i].VersionID || strings.Join(a[i].Stages, ",") != strings.Join(b[i].Stages, ",") {
			return false
		}
	}
	return true
}

// listed returns the labelled versions, newest first, at most MaxListedVersions.
func listed(vs []stages.Version) []v1alpha1.VersionSummary {
	var out []v1alpha1.VersionSummary
	sorted := append([]stages.Version(nil), vs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Created.Equal(sorted[j].Created) {
			return sorted[i].ID < sorted[j].ID
		}
		return sorted[i].Created.After(sorted[j].Created)
	})
	for _, v := range sorted {
		if len(v.Labels) == 0 {
			continue
		}
		created := metav1.NewTime(v.Created.UTC())
		out = append(out, v1alpha1.VersionSummary{VersionID: v.ID, Stages: append([]string(nil), v.Labels...), CreatedTime: &created})
		if len(out) == MaxListedVersions {
			break
		}
	}
	return out
}

// Backoff returns how long to wait before retrying a condition that has held since since: the
// time it has already lasted, between min and max, so retries thin out the longer it lasts.
func Backoff(since, now time.Time, min, max time.Duration) time.Duration {
	d := now.Sub(since)
	if d < min {
		return min
	}
	if d > max {
		return max
	}
	return d
}
