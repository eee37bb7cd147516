package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rollout"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/summary"
)

// Rolling workloads (README, "Rolling workloads"): after AWSCURRENT moves, the Deployments,
// StatefulSets and DaemonSets spec.rollout names get the pod template annotation kubectl rollout
// restart sets, once per coalesce window. Workloads are read with a GET (the API reader), only
// for ManagedSecrets that name them and only while something is to be done: the operator keeps no
// informer on them, so its memory does not grow with the cluster's workloads.
//
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;patch

// rolloutState is what the rollout phase found, for status and for the rotation gate.
type rolloutState struct {
	status v1alpha1.RolloutStatus
	cond   rollout.Condition
}

func (r *ManagedSecretReconciler) rolloutWindow() time.Duration {
	if r.RolloutWindow > 0 {
		return r.RolloutWindow
	}
	if r.RolloutWindow < 0 {
		return 0
	}
	return rollout.DefaultWindow
}

// rolloutWorkloads restarts the targets that consume the projected Secret once AWSCURRENT has
// moved and the coalesce window has passed, follows their rollouts, and never stops the secret:
// API failures are retried, and it looks again while something is under way.
func (r *ManagedSecretReconciler) rolloutWorkloads(ctx context.Context, s *scope) *result {
	spec := s.msec.Spec.Rollout
	if spec == nil || len(spec.Targets) == 0 || s.currentID == "" {
		return nil
	}
	window := r.rolloutWindow()
	// Taken after the projection was written: a restart at or after this moment starts pods that
	// read the new value.
	now := r.now()
	st := rollout.Begin(s.before.Rollout, s.currentID, now)
	prevs := map[string]*v1alpha1.RolloutTargetStatus{}
	if s.before.Rollout != nil {
		for i := range s.before.Rollout.Targets {
			t := &s.before.Rollout.Targets[i]
			prevs[rollout.Key(t.Kind, t.Name)] = t
		}
	}
	if s.before.Rollout == nil || s.before.Rollout.VersionID == "" {
		prevs = map[string]*v1alpha1.RolloutTargetStatus{} // a first projection: every target is new
	}
	waiting, stalled := map[string]string{}, map[string]bool{}
	var wake time.Duration
	problems := false
	for _, t := range spec.Targets {
		key := rollout.Key(t.Kind, t.Name)
		prev := prevs[key]
		step, d := rollout.Plan(prev, st, now, window)
		switch step {
		case rollout.Settled:
			st.Targets = append(st.Targets, *prev)
			continue
		case rollout.Wait:
			st.Targets = append(st.Targets, *prev)
			wake = earliest(wake, d+500*time.Millisecond)
			continue
		}
		entry, progress, err := r.rollTarget(ctx, s, t, prev, st)
		if err != nil {
			if apierrors.IsConflict(err) {
				wake = earliest(wake, time.Second) // changed since read: read it again
			} else {
				s.retry = fmt.Errorf("rolling %s %s failed: %s", t.Kind, t.Name, apiErrorSummary(err))
			}
			if prev != nil {
				st.Targets = append(st.Targets, *prev)
			}
			continue
		}
		st.Targets = append(st.Targets, entry)
		switch {
		case entry.Reason != "":
			problems = true
		case !entry.Finished:
			waiting[key], stalled[key] = progress.Waiting, progress.Stalled
			since := now
			if entry.RestartedTime != nil {
				since = entry.RestartedTime.Time
			}
			wake = earliest(wake, summary.Backoff(since, now, 2*time.Second, 30*time.Second))
		}
	}
	if problems {
		// A missing workload may appear, a workload may start using the Secret: look again, less
		// and less often.
		since := now
		if c := meta.FindStatusCondition(s.before.Conditions, v1alpha1.ConditionRolledOut); c != nil && c.Status == metav1.ConditionFalse {
			since = c.LastTransitionTime.Time
		}
		wake = earliest(wake, summary.Backoff(since, now, 5*time.Second, 5*time.Minute))
	}
	s.wake = earliest(s.wake, wake)
	s.rollout = &rolloutState{status: st, cond: rollout.Summary(st, targetName(s.msec), window, waiting, stalled)}
	return nil
}

// rollTarget reads one target and acts on the decision: a restart (an optimistically locked
// patch of the object just checked, so the workload restarted is the one found to use the
// Secret), an Event for a covered change or a target that cannot be rolled.
func (r *ManagedSecretReconciler) rollTarget(ctx context.Context, s *scope, t v1alpha1.RolloutTarget, prev *v1alpha1.RolloutTargetStatus, st v1alpha1.RolloutStatus) (v1alpha1.RolloutTargetStatus, rollout.Progress, error) {
	obj, tmpl, progress, err := r.readWorkload(ctx, s.msec.Namespace, t)
	if err != nil && !apierrors.IsNotFound(err) {
		return v1alpha1.RolloutTargetStatus{}, progress, err
	}
	secret := targetName(s.msec)
	w := rollout.Workload{Found: err == nil}
	if w.Found {
		w.Consumes = rollout.Consumes(&tmpl.Spec, secret)
		w.RestartedAt = rollout.RestartedAt(tmpl.Annotations)
		w.Progress = progress
	}
	now := r.now()
	entry, action := rollout.Decide(t.Kind, t.Name, prev, st, w, now)
	if action != rollout.Refused {
		r.rolloutWarned.Delete(string(s.msec.UID) + "/" + rollout.Key(t.Kind, t.Name))
	}
	switch action {
	case rollout.Restart:
		orig := obj.DeepCopyObject().(client.Object)
		if tmpl.Annotations == nil {
			tmpl.Annotations = map[string]string{}
		}
		tmpl.Annotations[rollout.AnnotationRestartedAt] = rollout.FormatRestartedAt(now)
		if err := r.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldManager)); err != nil {
			return v1alpha1.RolloutTargetStatus{}, progress, err
		}
		progress = rollout.Progress{Waiting: "the new pod template is not observed yet"}
		r.Recorder.Eventf(s.msec, obj, corev1.EventTypeNormal, v1alpha1.ReasonWorkloadRestarted, "Rollout",
			"restarted %s %s: AWSCURRENT moved to version %s", t.Kind, t.Name, st.VersionID)
	case rollout.Coalesced:
		r.Recorder.Eventf(s.msec, obj, corev1.EventTypeNormal, v1alpha1.ReasonRestartCoalesced, "Rollout",
			"%s %s was restarted at %s, after version %s was projected; not restarted again", t.Kind, t.Name,
			entry.RestartedTime.UTC().Format(time.RFC3339), st.VersionID)
	case rollout.Refused:
		// Warned once per reason: the status may not show the last warning yet (a reconcile
		// racing its own status write), so the reason warned is also remembered here.
		warnKey := string(s.msec.UID) + "/" + rollout.Key(t.Kind, t.Name)
		if last, _ := r.rolloutWarned.Swap(warnKey, entry.Reason); last != entry.Reason && (prev == nil || prev.Reason != entry.Reason) {
			msg := fmt.Sprintf("%s %s does not exist in namespace %s; nothing is restarted for it", t.Kind, t.Name, s.msec.Namespace)
			if entry.Reason == v1alpha1.ReasonTargetNotConsuming {
				msg = fmt.Sprintf("%s %s is not restarted: its pod template does not use Secret %s (env secretKeyRef, envFrom secretRef, a secret volume or a projected volume)", t.Kind, t.Name, secret)
			}
			r.Recorder.Eventf(s.msec, nil, corev1.EventTypeWarning, entry.Reason, "Rollout", "%s", msg)
		}
	}
	return entry, progress, nil
}

// readWorkload GETs a target with the API reader (no cache, no informer) and returns it, its pod
// template (inside the object, so an edit patches it) and how far its rollout is.
func (r *ManagedSecretReconciler) readWorkload(ctx context.Context, ns string, t v1alpha1.RolloutTarget) (client.Object, *corev1.PodTemplateSpec, rollout.Progress, error) {
	key := types.NamespacedName{Namespace: ns, Name: t.Name}
	switch t.Kind {
	case rollout.KindDeployment:
		d := &appsv1.Deployment{}
		if err := r.APIReader.Get(ctx, key, d); err != nil {
			return nil, nil, rollout.Progress{}, err
		}
		return d, &d.Spec.Template, rollout.DeploymentProgress(d), nil
	case rollout.KindStatefulSet:
		ss := &appsv1.StatefulSet{}
		if err := r.APIReader.Get(ctx, key, ss); err != nil {
			return nil, nil, rollout.Progress{}, err
		}
		return ss, &ss.Spec.Template, rollout.StatefulSetProgress(ss), nil
	case rollout.KindDaemonSet:
		ds := &appsv1.DaemonSet{}
		if err := r.APIReader.Get(ctx, key, ds); err != nil {
			return nil, nil, rollout.Progress{}, err
		}
		return ds, &ds.Spec.Template, rollout.DaemonSetProgress(ds), nil
	}
	// The schema admits only the three kinds; anything else is treated as absent.
	return nil, nil, rollout.Progress{}, apierrors.NewNotFound(appsv1.Resource(strings.ToLower(t.Kind)), t.Name)
}

// applyRollout puts what the rollout phase found into the new status: status.rollout and the
// RolledOut condition, both removed when spec.rollout names no target. When the phase did not
// run (an earlier phase ended the reconcile), what was known is kept.
func (r *ManagedSecretReconciler) applyRollout(s *scope, st *v1alpha1.ManagedSecretStatus) {
	if spec := s.msec.Spec.Rollout; spec == nil || len(spec.Targets) == 0 {
		st.Rollout = nil
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionRolledOut)
		return
	}
	if s.rollout == nil {
		return
	}
	rs := s.rollout.status
	st.Rollout = &rs
	status := metav1.ConditionFalse
	if s.rollout.cond.True {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: v1alpha1.ConditionRolledOut, Status: status,
		Reason: s.rollout.cond.Reason, Message: s.rollout.cond.Message, ObservedGeneration: s.msec.Generation,
		LastTransitionTime: metav1.NewTime(s.now.UTC().Truncate(time.Second))})
}

// rotationAwaitsRollout is the gate of alternating-users rotations: the next rotation sets a new
// password for the user AWSPREVIOUS holds, which pods not yet rolled to AWSCURRENT may still log in
// with. While a target has not finished rolling out AWSCURRENT, a rotation Job waiting to be
// served is not served (its pod waits for its material); the Rotating condition says so, and the
// rollout phase looks again until the rollouts finish. A rotation already served goes on.
func (r *ManagedSecretReconciler) rotationAwaitsRollout(s *scope) bool {
	if s.rollout == nil || s.rot.update.Status.ActiveJobUID != "" || !rotation.IsAlternating(s.rot.policy.Spec.Strategy) ||
		!rotation.Busy(s.rot.jobs, "") {
		return false
	}
	unrolled := rollout.Unrolled(s.rollout.status)
	if len(unrolled) == 0 {
		return false
	}
	s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonAwaitingRollout, fmt.Sprintf(
		"the next rotation waits until %s run version %s (AWSCURRENT): it changes the password of the user AWSPREVIOUS holds, which their pods may still use",
		strings.Join(unrolled, ", "), s.rollout.status.VersionID))
	return true
}

// rolloutWindowOption maps the flag (0: restart at once) to the reconciler's field (0: default).
func rolloutWindowOption(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
