// Package rollout decides when the workloads a ManagedSecret names in spec.rollout are restarted
// after AWSCURRENT moves, whether a restart already covers a change, whether a rollout finished,
// and what the RolledOut condition says. It is pure: the controller reads and patches.
//
// The rules:
//   - Never on a first projection: workloads first seen (or a ManagedSecret whose rollout is new)
//     are recorded at the current version without a restart; they started with that value.
//   - Coalescing: a change waits for the window from the moment it was projected, then each
//     workload is restarted once; a workload restarted at or after that moment (by the operator for
//     another secret, or by kubectl rollout restart) is not restarted again.
//   - Only a workload whose pod template uses the projected Secret is restarted.
package rollout

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// AnnotationRestartedAt is the pod template annotation kubectl rollout restart sets; changing it
// makes the workload's controller replace its pods.
const AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"

// Kinds of targets (group apps, version v1).
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
)

// DefaultWindow is the default coalesce window.
const DefaultWindow = 30 * time.Second

// Progress is how far a workload's rollout is.
type Progress struct {
	// Done: the current pod template is observed, every replica is updated and available, and no
	// old replica is left (kubectl rollout status would return).
	Done bool
	// Stalled: a Deployment's progress deadline passed.
	Stalled bool
	// Waiting says what the rollout waits for, when it is not done.
	Waiting string
}

// Workload is what the controller read of a target.
type Workload struct {
	Found bool
	// Consumes: the pod template uses the projected Secret.
	Consumes bool
	// RestartedAt is the pod template's restartedAt annotation, when it holds a time.
	RestartedAt *time.Time
	Progress    Progress
}

// Step is what a target needs before anything is read.
type Step int

const (
	// Settled is a target that runs the version: nothing to read.
	Settled Step = iota
	// Wait is a target whose coalesce window is open: read nothing until it closes.
	Wait
	// Read is a target to read, then Decide about.
	Read
)

// Action is what Decide asks of the controller.
type Action int

const (
	// None is no write.
	None Action = iota
	// Restart sets the restartedAt annotation to the decided time.
	Restart
	// Coalesced is a change a restart after it already covers (an Event, no write).
	Coalesced
	// Refused is a target that cannot be rolled (an Event when its reason is new, no write).
	Refused
)

// Key is a target's identity.
func Key(kind, name string) string { return kind + "/" + name }

// Begin returns the rollout status to judge the targets against: the version the workloads must
// run, and since when. now is the moment the version was seen projected.
func Begin(prev *v1alpha1.RolloutStatus, current string, now time.Time) v1alpha1.RolloutStatus {
	if prev == nil || prev.VersionID == "" {
		// A first projection, or a rollout just configured: the workloads started with this value.
		return v1alpha1.RolloutStatus{VersionID: current}
	}
	st := *prev.DeepCopy()
	if st.VersionID != current {
		changed := metav1.NewTime(CeilSecond(now))
		st.VersionID, st.ChangedTime = current, &changed
	}
	st.Targets = nil
	return st
}

// CeilSecond rounds up to the second: restartedAt annotations have second precision, so a
// restart recorded at or after the rounded-up change time happened after the change.
func CeilSecond(t time.Time) time.Time {
	t = t.UTC()
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}

// Deadline is when the coalesce window of the status's change closes.
func Deadline(st v1alpha1.RolloutStatus, window time.Duration) time.Time {
	if st.ChangedTime == nil {
		return time.Time{}
	}
	return st.ChangedTime.Add(window)
}

// Plan says what a target needs (prev is its previous status, nil when it is new) and, for Wait,
// how long.
func Plan(prev *v1alpha1.RolloutTargetStatus, st v1alpha1.RolloutStatus, now time.Time, window time.Duration) (Step, time.Duration) {
	switch {
	case prev == nil || prev.Reason != "":
		return Read, 0 // new, or a problem to look at again
	case prev.VersionID == st.VersionID && prev.Finished:
		return Settled, 0
	case prev.VersionID == st.VersionID:
		return Read, 0 // restarted; is it finished?
	}
	if d := Deadline(st, window).Sub(now); d > 0 {
		return Wait, d
	}
	return Read, 0
}

// Decide returns a target's new status and the action, from what was read. now is the time a
// restart records.
func Decide(kind, name string, prev *v1alpha1.RolloutTargetStatus, st v1alpha1.RolloutStatus, w Workload, now time.Time) (v1alpha1.RolloutTargetStatus, Action) {
	out := v1alpha1.RolloutTargetStatus{Kind: kind, Name: name}
	if prev != nil {
		out = *prev.DeepCopy()
		out.Kind, out.Name = kind, name
	}
	refuse := func(reason string) (v1alpha1.RolloutTargetStatus, Action) {
		out.Reason, out.Finished = reason, false
		return out, Refused
	}
	switch {
	case !w.Found:
		return refuse(v1alpha1.ReasonTargetNotFound)
	case !w.Consumes:
		return refuse(v1alpha1.ReasonTargetNotConsuming)
	case prev == nil || prev.Reason != "":
		// First seen (or usable again): its pods started with (or were replaced, by the change that
		// made it usable, with) the current value. Nothing to roll.
		return v1alpha1.RolloutTargetStatus{Kind: kind, Name: name, VersionID: st.VersionID, Finished: true}, None
	case prev.VersionID == st.VersionID:
		out.Finished = w.Progress.Done
		return out, None
	}
	out.VersionID = st.VersionID
	if w.RestartedAt != nil && st.ChangedTime != nil && !w.RestartedAt.Before(st.ChangedTime.Time) {
		t := metav1.NewTime(w.RestartedAt.UTC())
		out.RestartedTime, out.Finished = &t, w.Progress.Done
		return out, Coalesced
	}
	t := metav1.NewTime(now.UTC().Truncate(time.Second))
	out.RestartedTime, out.Finished = &t, false
	return out, Restart
}

// RestartedAt parses a pod template's restartedAt annotation (RFC 3339, as kubectl writes it).
func RestartedAt(annotations map[string]string) *time.Time {
	v, ok := annotations[AnnotationRestartedAt]
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil
	}
	return &t
}

// FormatRestartedAt is the annotation's value for a restart at t.
func FormatRestartedAt(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// Consumes reports whether a pod spec uses the Secret: an environment variable's secretKeyRef,
// an envFrom secretRef (in any container or init container), a secret volume, or a projected
// volume's secret source.
func Consumes(spec *corev1.PodSpec, secret string) bool {
	containers := append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == secret {
				return true
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil && e.SecretRef.Name == secret {
				return true
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			return true
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil && src.Secret.Name == secret {
					return true
				}
			}
		}
	}
	return false
}

// DeploymentProgress is kubectl rollout status's judgement of a Deployment, and no old pod left
// terminating (status.terminatingReplicas, where the API server reports it).
func DeploymentProgress(d *appsv1.Deployment) Progress {
	if d.Status.ObservedGeneration < d.Generation {
		return Progress{Waiting: "the new pod template is not observed yet"}
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return Progress{Stalled: true, Waiting: "its progress deadline was exceeded"}
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	switch {
	case d.Status.UpdatedReplicas < want:
		return Progress{Waiting: fmt.Sprintf("%d of %d replicas updated", d.Status.UpdatedReplicas, want)}
	case d.Status.Replicas > d.Status.UpdatedReplicas:
		return Progress{Waiting: fmt.Sprintf("%d old replicas pending termination", d.Status.Replicas-d.Status.UpdatedReplicas)}
	case d.Status.AvailableReplicas < d.Status.UpdatedReplicas:
		return Progress{Waiting: fmt.Sprintf("%d of %d updated replicas available", d.Status.AvailableReplicas, d.Status.UpdatedReplicas)}
	case d.Status.TerminatingReplicas != nil && *d.Status.TerminatingReplicas > 0:
		// Stricter than kubectl: an old pod that is still shutting down may still log in.
		return Progress{Waiting: fmt.Sprintf("%d old pods still terminating", *d.Status.TerminatingReplicas)}
	}
	return Progress{Done: true}
}

// StatefulSetProgress is kubectl rollout status's judgement of a StatefulSet. With the OnDelete
// strategy its pods are replaced only when someone deletes them.
func StatefulSetProgress(s *appsv1.StatefulSet) Progress {
	onDelete := ""
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		onDelete = " (updateStrategy OnDelete: its pods are replaced when deleted)"
	}
	if s.Status.ObservedGeneration < s.Generation {
		return Progress{Waiting: "the new pod template is not observed yet"}
	}
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	if s.Status.ReadyReplicas < want {
		return Progress{Waiting: fmt.Sprintf("%d of %d replicas ready%s", s.Status.ReadyReplicas, want, onDelete)}
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; onDelete == "" && ru != nil && ru.Partition != nil && *ru.Partition > 0 {
		if s.Status.UpdatedReplicas < want-*ru.Partition {
			return Progress{Waiting: fmt.Sprintf("%d of %d replicas above the partition updated", s.Status.UpdatedReplicas, want-*ru.Partition)}
		}
		return Progress{Done: true}
	}
	if s.Status.UpdateRevision != s.Status.CurrentRevision || s.Status.UpdatedReplicas < want {
		return Progress{Waiting: fmt.Sprintf("%d of %d replicas updated%s", s.Status.UpdatedReplicas, want, onDelete)}
	}
	return Progress{Done: true}
}

// DaemonSetProgress is kubectl rollout status's judgement of a DaemonSet.
func DaemonSetProgress(d *appsv1.DaemonSet) Progress {
	onDelete := ""
	if d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		onDelete = " (updateStrategy OnDelete: its pods are replaced when deleted)"
	}
	switch {
	case d.Status.ObservedGeneration < d.Generation:
		return Progress{Waiting: "the new pod template is not observed yet"}
	case d.Status.UpdatedNumberScheduled < d.Status.DesiredNumberScheduled:
		return Progress{Waiting: fmt.Sprintf("%d of %d pods updated%s", d.Status.UpdatedNumberScheduled, d.Status.DesiredNumberScheduled, onDelete)}
	case d.Status.NumberAvailable < d.Status.DesiredNumberScheduled:
		return Progress{Waiting: fmt.Sprintf("%d of %d updated pods available", d.Status.NumberAvailable, d.Status.DesiredNumberScheduled)}
	}
	return Progress{Done: true}
}

// Condition is the RolledOut condition.
type Condition struct {
	True    bool
	Reason  string
	Message string
}

// Summary is the RolledOut condition for the targets' statuses. waiting holds what each target
// read this time waits for (by Key), stalled the targets whose rollout stalled.
func Summary(st v1alpha1.RolloutStatus, secret string, window time.Duration, waiting map[string]string, stalled map[string]bool) Condition {
	var notConsuming, notFound, pending, inProgress, stalledOnes, done []string
	for _, t := range st.Targets {
		name := t.Kind + " " + t.Name
		switch {
		case t.Reason == v1alpha1.ReasonTargetNotConsuming:
			notConsuming = append(notConsuming, name)
		case t.Reason == v1alpha1.ReasonTargetNotFound:
			notFound = append(notFound, name)
		case t.VersionID != st.VersionID:
			pending = append(pending, name)
		case !t.Finished && stalled[Key(t.Kind, t.Name)]:
			stalledOnes = append(stalledOnes, name+" ("+waiting[Key(t.Kind, t.Name)]+")")
		case !t.Finished:
			what := name
			if w := waiting[Key(t.Kind, t.Name)]; w != "" {
				what += " (" + w + ")"
			}
			inProgress = append(inProgress, what)
		default:
			done = append(done, name)
		}
	}
	var parts []string
	add := func(list []string, format string) {
		if len(list) > 0 {
			parts = append(parts, fmt.Sprintf(format, strings.Join(list, ", ")))
		}
	}
	add(notConsuming, "not restarted, because the pod template does not use Secret "+secret+" (env secretKeyRef, envFrom secretRef, a secret volume or a projected volume): %s")
	add(notFound, "not found in this namespace: %s")
	add(stalledOnes, "rollout stalled: %s")
	if len(pending) > 0 && st.ChangedTime != nil {
		parts = append(parts, fmt.Sprintf("version %s was projected at %s; restart at %s (coalesce window %s): %s", st.VersionID,
			st.ChangedTime.UTC().Format(time.RFC3339), Deadline(st, window).UTC().Format(time.RFC3339), window, strings.Join(pending, ", ")))
	} else {
		add(pending, "to restart: %s")
	}
	add(inProgress, "rolling out version "+st.VersionID+": %s")
	reason := v1alpha1.ReasonRolledOut
	switch {
	case len(notConsuming) > 0:
		reason = v1alpha1.ReasonTargetNotConsuming
	case len(notFound) > 0:
		reason = v1alpha1.ReasonTargetNotFound
	case len(stalledOnes) > 0:
		reason = v1alpha1.ReasonRolloutStalled
	case len(pending) > 0:
		reason = v1alpha1.ReasonRolloutWaiting
	case len(inProgress) > 0:
		reason = v1alpha1.ReasonRolloutInProgress
	}
	if reason == v1alpha1.ReasonRolledOut {
		sort.Strings(done)
		how := "rolled out to"
		if st.ChangedTime == nil {
			how = "started with"
		}
		return Condition{True: true, Reason: reason, Message: fmt.Sprintf("%s %s version %s", strings.Join(done, ", "), how, st.VersionID)}
	}
	return Condition{Reason: reason, Message: strings.Join(parts, "; ")}
}

// Unrolled lists the targets whose pods may still run an older value: not yet restarted for the
// current version, or restarted and not finished. Targets that cannot be rolled (missing, or not
// using the Secret) hold no pod that uses it.
func Unrolled(st v1alpha1.RolloutStatus) []string {
	var out []string
	for _, t := range st.Targets {
		if t.Reason == "" && (t.VersionID != st.VersionID || !t.Finished) {
			out = append(out, t.Kind+" "+t.Name)
		}
	}
	return out
}
