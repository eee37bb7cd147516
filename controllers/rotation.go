package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotator"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/schedule"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/summary"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// AnnotationSpecHash on generated objects is a digest of what was applied, so an unchanged object
// is not applied again (never computed from a value).
const AnnotationSpecHash = "kube-secrets-manager.io/spec-hash"

// Defaults of rotation pods.
const (
	defaultAttempts       = 3
	defaultTimeoutSeconds = 600
	rotationUID           = 65532
)

// rotationScope is what the rotation phases share.
type rotationScope struct {
	policy *v1alpha1.RotationPolicy
	sched  *schedule.Schedule
	jobs   []batchv1.Job
	update summary.Rotation
	// refused is set when a rotation could not start for a reason that may clear by itself.
	refused bool
}

func (s *scope) setRotationCondition(typ string, ok bool, reason, message string) {
	s.rot.update.Conditions = append(s.rot.update.Conditions, summary.Condition{Type: typ, True: ok, Reason: reason, Message: message})
}

// loadRotation finds the policy and the rotation Jobs. It returns false when rotation is not
// configured or cannot be scheduled (the conditions say why).
func (r *ManagedSecretReconciler) loadRotation(ctx context.Context, s *scope) (bool, error) {
	spec := s.msec.Spec.Rotation
	if spec == nil {
		return false, nil
	}
	s.rot = &rotationScope{}
	if s.before.Rotation != nil {
		s.rot.update.Status = *s.before.Rotation.DeepCopy()
	}
	s.rot.update.Status.PolicyName = spec.PolicyRef.Name
	s.rot.update.Status.CronJobName = cronJobName(s.msec)
	s.rot.update.NextRotationTime = timePtr(s.before.NextRotationTime)

	jobs, err := r.trustedJobs(ctx, s)
	if err != nil {
		return false, err
	}
	s.rot.jobs = jobs

	policy := &v1alpha1.RotationPolicy{}
	err = r.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: spec.PolicyRef.Name}, policy)
	if apierrors.IsNotFound(err) {
		s.setRotationCondition(v1alpha1.ConditionRotationScheduled, false, v1alpha1.ReasonPolicyNotFound,
			fmt.Sprintf("RotationPolicy %s does not exist; rotation is scheduled once it does", spec.PolicyRef.Name))
		s.rot.update.NextRotationTime = nil
		return false, r.suspendCronJob(ctx, s)
	}
	if err != nil {
		return false, err
	}
	s.rot.policy = policy
	if err := r.RotationAllow.Admit(policy.Namespace, policy.Spec, r.RotationImage); err != nil {
		s.setRotationCondition(v1alpha1.ConditionRotationScheduled, false, v1alpha1.ReasonPolicyNotAllowed,
			fmt.Sprintf("RotationPolicy %s: %s", policy.Name, err))
		s.rot.update.NextRotationTime = nil
		return false, r.suspendCronJob(ctx, s)
	}
	sched, err := schedule.Parse(scheduleSpec(policy))
	if err != nil {
		s.setRotationCondition(v1alpha1.ConditionRotationScheduled, false, v1alpha1.ReasonInvalidSchedule,
			fmt.Sprintf("RotationPolicy %s: %s", policy.Name, err))
		s.rot.update.NextRotationTime = nil
		return false, r.suspendCronJob(ctx, s)
	}
	s.rot.sched = sched
	return true, nil
}

// trustedJobs returns the rotation Jobs of this ManagedSecret. A label is not proof: anyone who
// may create Jobs can set it. A Job is the operator's only when its controller is the
// ManagedSecret's own CronJob (by UID) and it is one the CronJob controller started (listed in the
// CronJob's status.active, which only controllers write), the Job already being served, or a
// rotate-now Job the operator created in this reconcile (added by handleRotateRequest).
func (r *ManagedSecretReconciler) trustedJobs(ctx context.Context, s *scope) ([]batchv1.Job, error) {
	cj := &batchv1.CronJob{}
	err := r.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: cronJobName(s.msec)}, cj)
	if apierrors.IsNotFound(err) || (err == nil && !isControlledBy(cj, s.msec)) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	started := map[types.UID]bool{}
	for _, ref := range cj.Status.Active {
		started[ref.UID] = true
	}
	if st := s.before.Rotation; st != nil && st.ActiveJobUID != "" {
		started[types.UID(st.ActiveJobUID)] = true
	}
	list := &batchv1.JobList{}
	if err := r.List(ctx, list, client.InNamespace(s.msec.Namespace), client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.msec.UID)}); err != nil {
		return nil, err
	}
	var out []batchv1.Job
	for _, j := range list.Items {
		if c := metav1.GetControllerOf(&j); c != nil && c.Kind == "CronJob" && c.UID == cj.UID && started[j.UID] {
			out = append(out, j)
		}
	}
	return out, nil
}

// advanceRotation acts on the active rotation Job once it has finished: finishSecret when it
// succeeded, RotationFailed when it failed. It runs before the projection, so the projected
// Secret follows the new AWSCURRENT in the same reconcile.
func (r *ManagedSecretReconciler) advanceRotation(ctx context.Context, s *scope) error {
	st := &s.rot.update.Status
	if st.ActiveJobUID == "" {
		return nil
	}
	job := findJob(s.rot.jobs, st.ActiveJobUID)
	if job == nil {
		// The cache may not have a Job created a moment ago; ask before calling it gone.
		fresh := &batchv1.Job{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: st.ActiveJobName}, fresh)
		if err == nil && string(fresh.UID) == st.ActiveJobUID {
			job = fresh
			s.rot.jobs = append(s.rot.jobs, *fresh)
		} else if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	switch {
	case job == nil:
		s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonIdle,
			fmt.Sprintf("rotation Job %s disappeared before it finished; the pending version is kept for the next attempt", st.ActiveJobName))
	case jobSucceeded(job):
		if err := r.finishSecret(ctx, s, st.ActiveVersionID); err != nil {
			return err
		}
	case jobFailed(job) != "":
		st.FailedAttempts++
		msg := fmt.Sprintf("rotation Job %s failed (%s); AWSCURRENT is unchanged and version %s keeps AWSPENDING for the next attempt",
			job.Name, jobFailed(job), stages.UnfinishedPending(s.versionFacts()))
		s.setRotationCondition(v1alpha1.ConditionRotationFailed, true, v1alpha1.ReasonJobFailed, msg)
		s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonIdle, "no rotation in progress")
		r.Recorder.Eventf(s.msec, job, corev1.EventTypeWarning, v1alpha1.ReasonJobFailed, "Rotate", "%s", msg)
	default:
		return nil // still running
	}
	st.ActiveJobName, st.ActiveJobUID, st.ActiveVersionID = "", "", ""
	return r.deleteMaterial(ctx, s.msec)
}

// finishSecret moves AWSCURRENT to the version the Job set and tested (AWSPREVIOUS follows,
// AWSPENDING goes). Only that version is promoted: if it no longer holds AWSPENDING, something
// else changed the labels during the rotation, and nothing is promoted.
func (r *ManagedSecretReconciler) finishSecret(ctx context.Context, s *scope, token string) error {
	pending := stages.UnfinishedPending(s.versionFacts())
	if token != "" && pending != token {
		if s.version(token) != nil && contains(s.version(token).Spec.Stages, stages.Current) {
			pending = "" // already finished (a retry after a crash)
		} else {
			msg := fmt.Sprintf("rotation Job %s succeeded, but version %s no longer holds AWSPENDING; nothing was promoted", s.rot.update.Status.ActiveJobName, token)
			s.setRotationCondition(v1alpha1.ConditionRotationFailed, true, v1alpha1.ReasonCreateFailed, msg)
			s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonIdle, "no rotation in progress")
			r.Recorder.Eventf(s.msec, nil, corev1.EventTypeWarning, v1alpha1.ReasonCreateFailed, "FinishSecret", "%s", msg)
			return nil
		}
	}
	if pending != "" {
		v := s.version(pending)
		if _, err := r.open(ctx, s.msec, v); err != nil {
			// Never promote a version that does not decrypt.
			s.setRotationCondition(v1alpha1.ConditionRotationFailed, true, v1alpha1.ReasonDecryptionFailed,
				fmt.Sprintf("pending version %s: %s; AWSCURRENT is unchanged", pending, err))
			return nil
		}
		set := stages.FromVersions(s.versionFacts())
		final, err := set.Finish(pending)
		if err != nil {
			return err
		}
		if err := r.writeStages(ctx, s, set, final, pending, pending); err != nil {
			return err
		}
	}
	now := s.now
	s.rot.update.LastRotatedTime = &now
	s.rot.update.Status.FailedAttempts = 0
	current := stages.FromVersions(s.versionFacts()).Holder(stages.Current)
	msg := fmt.Sprintf("rotation Job %s succeeded; version %s is AWSCURRENT", s.rot.update.Status.ActiveJobName, current)
	s.setRotationCondition(v1alpha1.ConditionRotationFailed, false, v1alpha1.ReasonRotationSucceeded, msg)
	s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonIdle, "no rotation in progress")
	r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonRotationSucceeded, "Rotate", "%s", msg)
	return nil
}

// AnnotationTakingCurrent marks a version while AWSCURRENT moves to it, so a move a crash
// interrupts (two versions holding AWSCURRENT) is recognised and completed.
const AnnotationTakingCurrent = "kube-secrets-manager.io/taking-current"

// AnnotationIntendedStages records, on the version a label change is for, the labels it is to end
// with (a put's new version, a stage move's target), until the change is complete; an interrupted
// change is resumed from it (stages.Set.Complete).
const AnnotationIntendedStages = "kube-secrets-manager.io/intended-stages"

// completeMidFinish completes a label change that a crash or an API error interrupted half-way,
// before anything reads the labels. A mark left on a valid state is removed.
func (r *ManagedSecretReconciler) completeMidFinish(ctx context.Context, s *scope) error {
	set := stages.FromVersions(s.versionFacts())
	for i := range s.versions {
		v := &s.versions[i]
		intended, ok := v.Annotations[AnnotationIntendedStages]
		if !ok {
			continue
		}
		final, err := set.Complete(v.Spec.VersionID, splitLabels(intended))
		if err != nil {
			// Nothing sensible to resume (the labels changed since): drop the intent.
			return r.clearIntent(ctx, v)
		}
		return r.writeStages(ctx, s, set, final, gainer(final, v.Spec.VersionID), v.Spec.VersionID)
	}
	marked := map[string]bool{}
	for _, v := range s.versions {
		if v.Annotations[AnnotationTakingCurrent] != "" {
			marked[v.Spec.VersionID] = true
		}
	}
	if fixed := stages.Recover(set, marked); fixed != nil {
		return r.writeStages(ctx, s, set, fixed, fixed.Holder(stages.Current), "")
	}
	if id, before := set.MidFinish(); id != "" {
		final, err := before.Finish(id)
		if err != nil {
			return err
		}
		return r.writeStages(ctx, s, set, final, id, "")
	}
	for id := range marked {
		if err := r.patchStages(ctx, s, id, set[id], false); err != nil {
			return err
		}
	}
	return nil
}

// writeStages performs stages.WritePlan, so an interruption at any point is recoverable. When
// target is set, its intended labels are recorded on it first and cleared last.
func (r *ManagedSecretReconciler) writeStages(ctx context.Context, s *scope, from, to stages.Set, gaining, target string) error {
	if target != "" {
		if v := s.version(target); v != nil && v.Annotations[AnnotationIntendedStages] != strings.Join(to[target], ",") {
			orig := v.DeepCopy()
			if v.Annotations == nil {
				v.Annotations = map[string]string{}
			}
			v.Annotations[AnnotationIntendedStages] = strings.Join(to[target], ",")
			if err := r.Patch(ctx, v, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
				return err
			}
		}
	}
	for _, w := range stages.WritePlan(from, to, gaining) {
		if err := r.patchStages(ctx, s, w.ID, w.Labels, w.Marked); err != nil {
			return err
		}
	}
	if target != "" {
		if v := s.version(target); v != nil {
			return r.clearIntent(ctx, v)
		}
	}
	return nil
}

func (r *ManagedSecretReconciler) clearIntent(ctx context.Context, v *v1alpha1.SecretVersion) error {
	if _, ok := v.Annotations[AnnotationIntendedStages]; !ok {
		return nil
	}
	orig := v.DeepCopy()
	delete(v.Annotations, AnnotationIntendedStages)
	return r.Patch(ctx, v, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

func splitLabels(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func (r *ManagedSecretReconciler) patchStages(ctx context.Context, s *scope, id string, labels []string, marked bool) error {
	v := s.version(id)
	if v == nil {
		return fmt.Errorf("version %s not found", id)
	}
	_, wasMarked := v.Annotations[AnnotationTakingCurrent]
	if strings.Join(v.Spec.Stages, ",") == strings.Join(labels, ",") && wasMarked == marked {
		return nil
	}
	orig := v.DeepCopy()
	v.Spec.Stages = labels
	if marked {
		if v.Annotations == nil {
			v.Annotations = map[string]string{}
		}
		v.Annotations[AnnotationTakingCurrent] = "true"
	} else {
		delete(v.Annotations, AnnotationTakingCurrent)
	}
	return r.Patch(ctx, v, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

// scheduleRotation keeps the CronJob in place, starts the rotation of a new Job (createSecret and
// its material), and handles rotate-now requests. It runs after the projection, with the current
// value decrypted.
func (r *ManagedSecretReconciler) scheduleRotation(ctx context.Context, s *scope, current []byte) (time.Duration, error) {
	policy, sched := s.rot.policy, s.rot.sched
	// The last change counts as a rotation (AWS). When AWSCURRENT moved in this reconcile, the
	// status is about to record now as lastChangedTime (summary.Status does the same
	// truncation), so the schedule counts from the same instant.
	last := s.msec.CreationTimestamp.Time
	if s.before.LastChangedTime != nil {
		last = s.before.LastChangedTime.Time
	}
	if stages.FromVersions(s.versionFacts()).Holder(stages.Current) != s.before.CurrentVersionID {
		last = s.now.UTC().Truncate(time.Second)
	}
	if s.rot.update.LastRotatedTime != nil {
		last = *s.rot.update.LastRotatedTime
	} else if s.before.LastRotatedTime != nil && s.before.LastRotatedTime.After(last) {
		last = s.before.LastRotatedTime.Time
	}
	next := sched.Next(last, s.now)
	s.rot.update.NextRotationTime = &next
	suspended := policy.Spec.Suspend != nil && *policy.Spec.Suspend
	_, cancelled := s.msec.Annotations[request.AnnotationRotationCancelled]

	cj, err := r.applyCronJob(ctx, s, next, suspended || cancelled)
	if err != nil {
		return 0, s.refuseOr(err)
	}
	if cj == nil {
		return 30 * time.Second, nil // refused: another object holds the CronJob's name
	}
	switch {
	case cancelled:
		s.rot.update.NextRotationTime = nil
		s.setRotationCondition(v1alpha1.ConditionRotationScheduled, false, v1alpha1.ReasonRotationCancelled,
			"rotation was cancelled (kubectl secrets-manager cancel-rotation); 'kubectl secrets-manager rotate' turns it on again")
		return 0, nil
	case suspended:
		s.setRotationCondition(v1alpha1.ConditionRotationScheduled, false, v1alpha1.ReasonSuspended,
			fmt.Sprintf("RotationPolicy %s is suspended; no new rotation starts", policy.Name))
	default:
		s.setRotationCondition(v1alpha1.ConditionRotationScheduled, true, v1alpha1.ReasonScheduled,
			fmt.Sprintf("CronJob %s rotates with RotationPolicy %s (%s); next rotation at %s", cj.Name, policy.Name, policy.Spec.Strategy, next.UTC().Format(time.RFC3339)))
	}

	if err := r.handleRotateRequest(ctx, s, cj, suspended); err != nil {
		return 0, err
	}
	if err := r.startRotation(ctx, s, current); err != nil {
		return 0, err
	}
	if s.rot.refused {
		// A superuser that is not ready yet, say: look again soon, not at the next schedule.
		return 30 * time.Second, nil
	}
	// Come back when the schedule moves on, to keep nextRotationTime (and, for every-N-days, the
	// CronJob's one-shot schedule) exact.
	return next.Sub(s.now) + time.Second + sched.Window(), nil
}

// cancelRotation is AWS's CancelRotateSecret: scheduled rotation stops and a rotation in progress
// is cancelled (its Job and material deleted). As in AWS, the pending version keeps AWSPENDING; the
// next rotation, once turned on again, completes it.
func (r *ManagedSecretReconciler) cancelRotation(ctx context.Context, s *scope) error {
	st := &s.rot.update.Status
	for i := range s.rot.jobs {
		j := &s.rot.jobs[i]
		if jobSucceeded(j) || jobFailed(j) != "" || j.DeletionTimestamp != nil {
			continue
		}
		// Foreground: the pod goes before the Job does.
		if err := r.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationForeground), client.Preconditions{UID: &j.UID}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if st.ActiveJobUID != "" {
		st.ActiveJobName, st.ActiveJobUID, st.ActiveVersionID = "", "", ""
		s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonRotationCancelled, "the rotation in progress was cancelled")
	}
	return r.deleteMaterial(ctx, s.msec)
}

// startRotation serves the oldest unfinished rotation Job: createSecret (a pending version, or the
// one an earlier attempt left) and the material its pod mounts. Other unfinished Jobs are deleted:
// one rotation at a time.
func (r *ManagedSecretReconciler) startRotation(ctx context.Context, s *scope, current []byte) error {
	st := &s.rot.update.Status
	var unfinished []batchv1.Job
	for _, j := range s.rot.jobs {
		if !jobSucceeded(&j) && jobFailed(&j) == "" && j.DeletionTimestamp == nil {
			unfinished = append(unfinished, j)
		}
	}
	sort.Slice(unfinished, func(a, b int) bool {
		if unfinished[a].CreationTimestamp.Equal(&unfinished[b].CreationTimestamp) {
			return unfinished[a].Name < unfinished[b].Name
		}
		return unfinished[a].CreationTimestamp.Before(&unfinished[b].CreationTimestamp)
	})
	if st.ActiveJobUID == "" && len(unfinished) > 0 {
		st.ActiveJobName, st.ActiveJobUID = unfinished[0].Name, string(unfinished[0].UID)
		r.Recorder.Eventf(s.msec, &unfinished[0], corev1.EventTypeNormal, v1alpha1.ReasonRotationStarted, "Rotate",
			"rotation Job %s started", unfinished[0].Name)
	}
	for i := range unfinished {
		j := &unfinished[i]
		if string(j.UID) == st.ActiveJobUID {
			continue
		}
		policy := metav1.DeletePropagationBackground
		if err := r.Delete(ctx, j, client.PropagationPolicy(policy), client.Preconditions{UID: &j.UID}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		r.Recorder.Eventf(s.msec, j, corev1.EventTypeNormal, v1alpha1.ReasonJobStoodDown, "Rotate",
			"deleted rotation Job %s: Job %s is already rotating this secret", j.Name, st.ActiveJobName)
	}
	if st.ActiveJobUID == "" {
		if s.before.Rotation == nil || s.before.Rotation.ActiveJobUID == "" {
			s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonIdle, "no rotation in progress")
		}
		return nil
	}
	pendingID, pendingValue, err := r.createSecret(ctx, s, current)
	if err != nil {
		return s.refuseOr(err)
	}
	defer clear(pendingValue)
	st.ActiveVersionID = pendingID
	if err := r.applyMaterial(ctx, s, pendingID, current, pendingValue); err != nil {
		return s.refuseOr(err)
	}
	s.setRotationCondition(v1alpha1.ConditionRotating, true, v1alpha1.ReasonRotationStarted,
		fmt.Sprintf("rotation Job %s is setting and testing pending version %s", st.ActiveJobName, pendingID))
	return nil
}

// refusal is a rotation that cannot start for a reason the user must fix; it becomes a condition.
type refusal struct{ reason, msg string }

func (e refusal) Error() string { return e.msg }

// refuseOr turns a refusal into the RotationFailed condition (retried soon); other errors are
// returned to be retried with backoff.
func (s *scope) refuseOr(err error) error {
	var refused refusal
	if !errors.As(err, &refused) {
		return err
	}
	s.setRotationCondition(v1alpha1.ConditionRotationFailed, true, refused.reason, refused.msg)
	s.rot.refused = true
	return nil
}

// createSecret returns the pending version (creating it when no unfinished one exists) and its
// value.
func (r *ManagedSecretReconciler) createSecret(ctx context.Context, s *scope, current []byte) (string, []byte, error) {
	if token := s.rot.update.Status.ActiveVersionID; token != "" {
		// The Job was given this version; it stays the one, or the rotation is refused.
		v := s.version(token)
		if v == nil || !contains(v.Spec.Stages, stages.Pending) {
			return "", nil, refusal{v1alpha1.ReasonCreateFailed, fmt.Sprintf("version %s, given to rotation Job %s, no longer holds AWSPENDING", token, s.rot.update.Status.ActiveJobName)}
		}
		val, err := r.open(ctx, s.msec, v)
		if err != nil {
			return "", nil, refusal{v1alpha1.ReasonDecryptionFailed, fmt.Sprintf("pending version %s: %s", token, err)}
		}
		return token, val, nil
	}
	if id := stages.UnfinishedPending(s.versionFacts()); id != "" {
		v, err := r.open(ctx, s.msec, s.version(id))
		if err != nil {
			return "", nil, refusal{v1alpha1.ReasonDecryptionFailed, fmt.Sprintf("pending version %s: %s", id, err)}
		}
		return id, v, nil
	}
	// The cache may lag behind a pending version created a moment ago; ask the API server.
	fresh := &v1alpha1.SecretVersionList{}
	if err := r.APIReader.List(ctx, fresh, client.InNamespace(s.msec.Namespace), client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.msec.UID)}); err != nil {
		return "", nil, err
	}
	s.versions = fresh.Items
	if id := stages.UnfinishedPending(s.versionFacts()); id != "" {
		v, err := r.open(ctx, s.msec, s.version(id))
		if err != nil {
			return "", nil, refusal{v1alpha1.ReasonDecryptionFailed, fmt.Sprintf("pending version %s: %s", id, err)}
		}
		return id, v, nil
	}
	strategy := s.rot.policy.Spec.Strategy
	pw, err := rotation.PasswordPolicy(s.rot.policy.Spec.Strategy, s.rot.policy.Spec.PasswordPolicy).Generate()
	if err != nil {
		return "", nil, refusal{v1alpha1.ReasonInvalidPolicy, "passwordPolicy: " + err.Error()}
	}
	pending, err := rotation.PendingValue(current, strategy, pw)
	if err != nil {
		return "", nil, refusal{v1alpha1.ReasonCreateFailed, err.Error()}
	}
	if err := value.CheckSize(pending, r.ValueLimit); err != nil {
		return "", nil, refusal{v1alpha1.ReasonValueTooLarge, err.Error()}
	}
	id := uuid.NewString()
	if _, err := stages.FromVersions(s.versionFacts()).Put(id, []string{stages.Pending}); err != nil {
		return "", nil, refusal{v1alpha1.ReasonCreateFailed, err.Error()}
	}
	sv, err := r.sealVersion(ctx, s.msec, id, []string{stages.Pending}, pending)
	if err != nil {
		return "", nil, err
	}
	if err := r.Create(ctx, sv, client.FieldOwner(FieldManager)); err != nil {
		return "", nil, err
	}
	s.versions = append(s.versions, *sv)
	r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonVersionCreated, "CreateSecret",
		"created version %s with stage AWSPENDING", id)
	return id, pending, nil
}

// applyMaterial writes the short-lived Secret the rotation pod mounts: the request, and the
// current, pending, previous and (for alternating users) superuser values, and the policy's CA
// bundle. It is controlled by the ManagedSecret; a Secret of its name that someone else made is
// never written into. The annotation materialFor names what the material holds (version and Job
// ids, never a value), so unchanged material is not written again.
func (r *ManagedSecretReconciler) applyMaterial(ctx context.Context, s *scope, pendingID string, current, pending []byte) error {
	name := materialName(s.msec)
	existing, err := r.secretMeta(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: name})
	if err != nil {
		return err
	}
	if existing != nil && !isControlledBy(existing, s.msec) {
		return refusal{v1alpha1.ReasonObjectConflict, fmt.Sprintf("Secret %s, where the rotation material goes, exists and is not controlled by this ManagedSecret; it is left alone: delete it or rename the ManagedSecret", name)}
	}
	req := rotation.Request{
		SecretID: stableID(r.ClusterName, s.msec), ClientRequestToken: pendingID,
		Strategy: s.rot.policy.Spec.Strategy, JobUID: s.rot.update.Status.ActiveJobUID, Steps: rotation.PodSteps,
	}
	set := stages.FromVersions(s.versionFacts())
	prev := set.Holder(stages.Previous)
	superuser, suVersion := []byte(nil), ""
	if rotation.IsAlternating(req.Strategy) {
		if superuser, suVersion, err = r.superuserValue(ctx, s); err != nil {
			return err
		}
		defer clear(superuser)
	}
	var ca string
	if t := s.rot.policy.Spec.TLS; t != nil {
		ca = t.CABundle
	}
	caSum := sha256.Sum256([]byte(ca)) // a public CA bundle, never a value
	holds := strings.Join([]string{req.JobUID, pendingID, set.Holder(stages.Current), prev, suVersion, hex.EncodeToString(caSum[:8])}, "/")
	if existing != nil && existing.Annotations[AnnotationMaterialFor] == holds {
		return nil
	}
	reqJSON, _ := json.Marshal(req)
	data := map[string][]byte{
		rotation.FileRequest: reqJSON,
		rotation.FileCurrent: current,
		rotation.FilePending: pending,
	}
	if prev != "" {
		if v, err := r.open(ctx, s.msec, s.version(prev)); err == nil {
			data[rotation.FilePrevious] = v
			defer clear(v)
		}
	}
	if superuser != nil {
		data[rotation.FileSuperuser] = superuser
	}
	if ca != "" {
		data[rotation.FileCABundle] = []byte(ca)
	}
	o := ownerRef(s.msec)
	ac := corev1ac.Secret(name, s.msec.Namespace).
		WithLabels(ownedLabels(s.msec, v1alpha1.RoleRotationMaterial)).
		WithAnnotations(map[string]string{AnnotationMaterialFor: holds}).
		WithOwnerReferences(metav1ac.OwnerReference().WithAPIVersion(o.APIVersion).WithKind(o.Kind).
			WithName(o.Name).WithUID(o.UID).WithController(true).WithBlockOwnerDeletion(true)).
		WithType(corev1.SecretTypeOpaque).
		WithData(data)
	if existing == nil {
		// Created, never applied over: a Secret someone makes under this name at the same moment
		// makes the create fail instead of being taken over.
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.msec.Namespace,
			Labels: ownedLabels(s.msec, v1alpha1.RoleRotationMaterial), Annotations: map[string]string{AnnotationMaterialFor: holds},
			OwnerReferences: []metav1.OwnerReference{o}}, Type: corev1.SecretTypeOpaque, Data: data}
		err := r.Create(ctx, sec, client.FieldOwner(FieldManager))
		if apierrors.IsAlreadyExists(err) {
			return refusal{v1alpha1.ReasonObjectConflict, fmt.Sprintf("Secret %s, where the rotation material goes, appeared while it was being created; checking who owns it", name)}
		}
		if err == nil {
			return r.upgradeToApply(ctx, sec)
		}
		return err
	}
	return r.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership)
}

// AnnotationMaterialFor on the rotation material names what it holds: the Job, the pending,
// current and previous version ids, the superuser's version id and a digest of the CA bundle.
const AnnotationMaterialFor = "kube-secrets-manager.io/material-for"

// superuserValue opens the superuser ManagedSecret's AWSCURRENT value, if that secret consents to
// this policy borrowing it. It returns the value and its version id.
func (r *ManagedSecretReconciler) superuserValue(ctx context.Context, s *scope) ([]byte, string, error) {
	ref := s.rot.policy.Spec.SuperuserSecretRef
	notReady := func(why string) error {
		return refusal{v1alpha1.ReasonSuperuserMissing, fmt.Sprintf("superuser ManagedSecret %s %s", ref.Name, why)}
	}
	su := &v1alpha1.ManagedSecret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: ref.Name}, su); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", notReady("does not exist")
		}
		return nil, "", err
	}
	if !rotation.SuperuserConsent(su.Annotations, s.rot.policy.Name) {
		return nil, "", refusal{v1alpha1.ReasonSuperuserNotAllowed, fmt.Sprintf("superuser ManagedSecret %s does not let RotationPolicy %s use its credentials: add %s to its annotation %s",
			ref.Name, s.rot.policy.Name, s.rot.policy.Name, v1alpha1.AnnotationSuperuserFor)}
	}
	list := &v1alpha1.SecretVersionList{}
	if err := r.List(ctx, list, client.InNamespace(su.Namespace), client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(su.UID)}); err != nil {
		return nil, "", err
	}
	cur, err := currentVersion(list.Items)
	if err != nil {
		return nil, "", notReady("has no readable AWSCURRENT version")
	}
	v, err := r.open(ctx, su, cur)
	if err != nil {
		return nil, "", notReady("cannot be decrypted")
	}
	return v, cur.Spec.VersionID, nil
}

// deleteMaterial deletes the rotation material, if this ManagedSecret controls it.
func (r *ManagedSecretReconciler) deleteMaterial(ctx context.Context, msec *v1alpha1.ManagedSecret) error {
	m, err := r.secretMeta(ctx, types.NamespacedName{Namespace: msec.Namespace, Name: materialName(msec)})
	if err != nil || m == nil {
		return err
	}
	return r.deleteIfControlled(ctx, m, msec.UID)
}

// handleRotateRequest turns a new rotate-requested-at annotation into a Job made from the
// CronJob's template, unless a rotation is already under way or the policy is suspended.
func (r *ManagedSecretReconciler) handleRotateRequest(ctx context.Context, s *scope, cj *batchv1.CronJob, suspended bool) error {
	req := s.msec.Annotations[v1alpha1.AnnotationRotateRequestedAt]
	st := &s.rot.update.Status
	if req == "" || req == st.LastHandledRequest {
		return nil
	}
	st.LastHandledRequest = req
	busy := st.ActiveJobUID != ""
	for _, j := range s.rot.jobs {
		busy = busy || (!jobSucceeded(&j) && jobFailed(&j) == "" && j.DeletionTimestamp == nil)
	}
	switch {
	case suspended:
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeWarning, v1alpha1.ReasonRotateRequested, "Rotate",
			"rotation request %q ignored: RotationPolicy %s is suspended", req, s.rot.policy.Name)
		return nil
	case busy:
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonRotateRequested, "Rotate",
			"rotation request %q: a rotation is already in progress", req)
		return nil
	}
	sum := sha256.Sum256([]byte(req))
	yes := true
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: cj.Name + "-now-" + hex.EncodeToString(sum[:4]), Namespace: cj.Namespace,
			Labels:      cj.Spec.JobTemplate.Labels,
			Annotations: map[string]string{"cronjob.kubernetes.io/instantiate": "manual", v1alpha1.AnnotationManagedSecretName: s.msec.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID,
				Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
	err := r.Create(ctx, job, client.FieldOwner(FieldManager))
	if apierrors.IsAlreadyExists(err) {
		// Made by an earlier attempt of this reconcile, or by someone else: only a Job this
		// CronJob controls is used.
		if err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), job); err == nil {
			if c := metav1.GetControllerOf(job); c == nil || c.UID != cj.UID {
				r.Recorder.Eventf(s.msec, nil, corev1.EventTypeWarning, v1alpha1.ReasonRotateRequested, "Rotate",
					"rotation request %q ignored: a Job named %s exists and is not this secret's", req, job.Name)
				return nil
			}
		}
	}
	if err != nil {
		return err
	}
	s.rot.jobs = append(s.rot.jobs, *job)
	r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonRotateRequested, "Rotate",
		"rotation request %q: created Job %s", req, job.Name)
	return nil
}

// applyCronJob keeps the rotation CronJob as the policy describes it. It returns the desired
// CronJob with the UID of the one in the cluster, or nil and a refusal when a CronJob of its name
// exists that this ManagedSecret does not control (it is left alone).
func (r *ManagedSecretReconciler) applyCronJob(ctx context.Context, s *scope, next time.Time, suspended bool) (*batchv1.CronJob, error) {
	desired := r.desiredCronJob(s, next, suspended)
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(desired)
	if err != nil {
		return nil, err
	}
	pruneNulls(obj)
	delete(obj, "status")
	raw, _ := json.Marshal(obj)
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:16])
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion("batch/v1")
	u.SetKind("CronJob")
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationSpecHash] = hash
	u.SetAnnotations(ann)

	existing, err := r.cronJobMeta(ctx, s.msec)
	if err != nil {
		return nil, err
	}
	if existing != nil && !isControlledBy(existing, s.msec) {
		return nil, refusal{v1alpha1.ReasonObjectConflict, fmt.Sprintf("CronJob %s exists and is not controlled by this ManagedSecret; it is left alone: delete it or rename the ManagedSecret", desired.Name)}
	}
	if existing != nil && existing.GetAnnotations()[AnnotationSpecHash] == hash {
		desired.UID = existing.GetUID()
		return desired, nil
	}
	if existing == nil {
		// Created, never applied over, so a CronJob someone makes at the same moment is not
		// taken over.
		created := desired.DeepCopy()
		created.Annotations = ann
		err := r.Create(ctx, created, client.FieldOwner(FieldManager))
		if apierrors.IsAlreadyExists(err) {
			return nil, refusal{v1alpha1.ReasonObjectConflict, fmt.Sprintf("CronJob %s appeared while it was being created; checking who owns it", desired.Name)}
		}
		if err != nil {
			return nil, err
		}
		if err := r.upgradeToApply(ctx, created); err != nil {
			return nil, err
		}
		desired.UID = created.UID
		return desired, nil
	}
	if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return nil, err
	}
	desired.UID = existing.GetUID()
	return desired, nil
}

// cronJobMeta returns the CronJob under the ManagedSecret's CronJob name: from the cache when it
// carries the operator's label, otherwise with one metadata-only GET; nil when there is none.
func (r *ManagedSecretReconciler) cronJobMeta(ctx context.Context, msec *v1alpha1.ManagedSecret) (client.Object, error) {
	key := types.NamespacedName{Namespace: msec.Namespace, Name: cronJobName(msec)}
	cj := &batchv1.CronJob{}
	err := r.Get(ctx, key, cj)
	if err == nil {
		return cj, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("CronJob"))
	err = r.APIReader.Get(ctx, key, m)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (r *ManagedSecretReconciler) desiredCronJob(s *scope, next time.Time, suspended bool) *batchv1.CronJob {
	policy, msec := s.rot.policy, s.msec
	schedule, tz := s.rot.sched.CronJobSchedule(next)
	attempts := int32(defaultAttempts)
	if policy.Spec.Attempts != nil {
		attempts = *policy.Spec.Attempts
	}
	timeout := int64(defaultTimeoutSeconds)
	pod := policy.Spec.Pod
	if pod != nil && pod.TimeoutSeconds != nil {
		timeout = *pod.TimeoutSeconds
	}
	window := int64(s.rot.sched.Window().Seconds())
	labels := ownedLabels(msec, "rotation")
	annotations := map[string]string{v1alpha1.AnnotationManagedSecretName: msec.Name}
	no, yes := false, true
	uid := int64(rotationUID)
	three := int32(3)

	image, args := r.RotationImage, []string{"rotate", "--material", rotator.DefaultDir}
	container := corev1.Container{
		Name:            "rotate",
		ImagePullPolicy: corev1.PullIfNotPresent,
		Env: []corev1.EnvVar{{Name: "JOB_UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			FieldPath: "metadata.labels['batch.kubernetes.io/controller-uid']"}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "material", MountPath: rotator.DefaultDir, ReadOnly: true}},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes,
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	podSpec := corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: &no,
		EnableServiceLinks:           &no,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
			// The kubelet makes the material files group-owned by fsGroup, so mode 0440 reads.
			FSGroup:        &uid,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Volumes: []corev1.Volume{{Name: "material", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: materialName(msec), DefaultMode: ptrInt32(0o440)}}}},
	}
	if pod != nil {
		if pod.Image != "" {
			image = pod.Image
		}
		if pod.Resources != nil {
			container.Resources = *pod.Resources
		}
		podSpec.ServiceAccountName = pod.ServiceAccountName
		podSpec.NodeSelector = pod.NodeSelector
		podSpec.Tolerations = pod.Tolerations
		podSpec.HostNetwork = pod.HostNetwork
	}
	if policy.Spec.Strategy == v1alpha1.StrategyCustom {
		args = nil // the custom image's own entrypoint honours the same contract
	}
	container.Image, container.Args = image, args
	podSpec.Containers = []corev1.Container{container}

	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{
			Name: cronJobName(msec), Namespace: msec.Namespace, Labels: labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{ownerRef(msec)},
		},
		Spec: batchv1.CronJobSpec{
			Schedule:                   schedule,
			TimeZone:                   &tz,
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			StartingDeadlineSeconds:    &window,
			Suspend:                    &suspended,
			SuccessfulJobsHistoryLimit: &three,
			FailedJobsHistoryLimit:     &three,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: batchv1.JobSpec{
					BackoffLimit:          ptrInt32(attempts - 1),
					ActiveDeadlineSeconds: &timeout,
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
						Spec:       podSpec,
					},
				},
			},
		},
	}
}

// removeRotation deletes the CronJob and material of a ManagedSecret whose rotation was detached
// (or that is marked for deletion), when this ManagedSecret controls them. It looks each time, so
// a failed delete is retried.
func (r *ManagedSecretReconciler) removeRotation(ctx context.Context, s *scope) error {
	cj, err := r.cronJobMeta(ctx, s.msec)
	if err != nil {
		return err
	}
	if cj == nil && s.before.Rotation == nil {
		return nil
	}
	if cj != nil {
		if err := r.deleteIfControlled(ctx, cj, s.msec.UID, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
			return err
		}
	}
	return r.deleteMaterial(ctx, s.msec)
}

// suspendCronJob stops the ManagedSecret's CronJob from starting Jobs nobody would serve (the
// policy is missing, not allowed, or its schedule invalid).
func (r *ManagedSecretReconciler) suspendCronJob(ctx context.Context, s *scope) error {
	cj := &batchv1.CronJob{}
	err := r.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: cronJobName(s.msec)}, cj)
	if apierrors.IsNotFound(err) || (err == nil && (!isControlledBy(cj, s.msec) || (cj.Spec.Suspend != nil && *cj.Spec.Suspend))) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.Patch(ctx, cj, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"suspend":true}}`)))
}

func scheduleSpec(p *v1alpha1.RotationPolicy) schedule.Spec {
	sp := schedule.Spec{Cron: p.Spec.Schedule.Cron, Expression: p.Spec.Schedule.Expression, TimeZone: p.Spec.Schedule.TimeZone, Window: p.Spec.Schedule.Window}
	if p.Spec.Schedule.EveryDays != nil {
		sp.EveryDays = int(*p.Spec.Schedule.EveryDays)
	}
	return sp
}

func jobSucceeded(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// jobFailed returns the reason a Job failed, or "".
func jobFailed(j *batchv1.Job) string {
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

func findJob(jobs []batchv1.Job, uid string) *batchv1.Job {
	for i := range jobs {
		if string(jobs[i].UID) == uid {
			return &jobs[i]
		}
	}
	return nil
}

func (s *scope) version(id string) *v1alpha1.SecretVersion {
	for i := range s.versions {
		if s.versions[i].Spec.VersionID == id {
			return &s.versions[i]
		}
	}
	return nil
}

// cronJobName fits the CronJob limit of 52 characters and stays unique per ManagedSecret.
func cronJobName(msec *v1alpha1.ManagedSecret) string {
	sum := sha256.Sum256([]byte(msec.UID))
	prefix := msec.Name
	if len(prefix) > 36 {
		prefix = strings.TrimRight(prefix[:36], ".-")
	}
	return prefix + "-rot-" + hex.EncodeToString(sum[:3])
}

func materialName(msec *v1alpha1.ManagedSecret) string { return cronJobName(msec) + "-material" }

func contains(ls []string, l string) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

func union(ls []string, l string) []string {
	if contains(ls, l) {
		return ls
	}
	out := append(append([]string(nil), ls...), l)
	sort.Strings(out)
	return out
}

func ptrInt32(v int32) *int32 { return &v }

func timePtr(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

// pruneNulls drops null values (such as creationTimestamp), which an apply would otherwise claim.
func pruneNulls(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(t)
			if len(t) == 0 {
				delete(m, k)
			}
		case []any:
			for _, e := range t {
				if em, ok := e.(map[string]any); ok {
					pruneNulls(em)
				}
			}
		}
	}
}
