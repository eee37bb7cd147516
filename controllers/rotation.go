package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/metrics"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/schedule"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/summary"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// reasonRotationFinishFailed is Ready's reason when finishing a rotation fails transiently.
const reasonRotationFinishFailed = "RotationFinishFailed"

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

// loadRotation finds the policy, checks it against the operator's bounds, parses its schedule and
// finds the rotation Jobs. When the policy is missing, not allowed or its schedule invalid, the
// conditions say why and the CronJob is suspended.
func (r *ManagedSecretReconciler) loadRotation(ctx context.Context, s *scope) *result {
	spec := s.msec.Spec.Rotation
	if spec == nil {
		return nil
	}
	s.rot = &rotationScope{}
	if s.before.Rotation != nil {
		s.rot.update.Status = *s.before.Rotation.DeepCopy()
	}
	s.rot.update.Status.PolicyName = spec.PolicyRef.Name
	s.rot.update.Status.CronJobName = cronJobName(s.msec)
	s.rot.update.NextRotationTime = timePtr(s.before.NextRotationTime)
	fail := func(err error) *result {
		return transient(v1alpha1.ReasonProjectionFailed, "reading the rotation state failed", err)
	}
	jobs, err := r.trustedJobs(ctx, s)
	if err != nil {
		return fail(err)
	}
	s.rot.jobs = jobs
	policy := &v1alpha1.RotationPolicy{}
	err = r.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: spec.PolicyRef.Name}, policy)
	var reason, why string
	switch {
	case apierrors.IsNotFound(err):
		reason, why = v1alpha1.ReasonPolicyNotFound, fmt.Sprintf("RotationPolicy %s does not exist; rotation is scheduled once it does", spec.PolicyRef.Name)
	case err != nil:
		return fail(err)
	default:
		s.rot.policy = policy
		if err := r.RotationAllow.Admit(policy.Namespace, policy.Spec, r.RotationImage); err != nil {
			reason, why = v1alpha1.ReasonPolicyNotAllowed, fmt.Sprintf("RotationPolicy %s: %s", policy.Name, err)
		} else if s.rot.sched, err = schedule.Parse(scheduleSpec(policy)); err != nil {
			reason, why = v1alpha1.ReasonInvalidSchedule, fmt.Sprintf("RotationPolicy %s: %s", policy.Name, err)
		}
	}
	if reason != "" {
		s.setRotationCondition(v1alpha1.ConditionRotationScheduled, false, reason, why)
		s.setRotationCondition(v1alpha1.ConditionRotationOverdue, false, reason, "no rotation is scheduled: "+why)
		s.wake = earliest(s.wake, s.checkStale())
		s.rot.update.NextRotationTime = nil
		if err := r.suspendCronJob(ctx, s); err != nil {
			return fail(err)
		}
		return nil
	}
	s.schedulable = true
	return nil
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
	if err := r.List(ctx, list, r.cachedList(s.msec.Namespace, client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.msec.UID)})...); err != nil {
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

// finishRotation acts on the served rotation Job once it has finished (finishSecret when it
// succeeded, RotationFailed when it failed), and on a cancellation. It runs before the projection,
// so the projected Secret follows the new AWSCURRENT in the same reconcile.
func (r *ManagedSecretReconciler) finishRotation(ctx context.Context, s *scope) *result {
	if s.rot == nil {
		return nil
	}
	if err := r.advanceRotation(ctx, s); err != nil {
		return transient(reasonRotationFinishFailed, "finishing the rotation failed", err)
	}
	if _, cancelled := s.msec.Annotations[request.AnnotationRotationCancelled]; cancelled {
		// Whether or not the policy can be scheduled, a cancelled rotation stops now.
		if err := r.cancelRotation(ctx, s); err != nil {
			return transient(reasonRotationFinishFailed, "cancelling the rotation failed", err)
		}
	}
	return nil
}

// advanceRotation runs finishSecret or records a failure when the served Job has finished.
func (r *ManagedSecretReconciler) advanceRotation(ctx context.Context, s *scope) error {
	st := &s.rot.update.Status
	if st.ActiveJobUID == "" {
		return nil
	}
	job, err := r.activeJob(ctx, s)
	if err != nil {
		return err
	}
	switch {
	case job == nil:
		s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonIdle,
			fmt.Sprintf("rotation Job %s disappeared before it finished; the pending version is kept for the next attempt", st.ActiveJobName))
	case rotation.Succeeded(job):
		if err := r.finishSecret(ctx, s, st.ActiveVersionID); err != nil {
			return err
		}
		s.observeRotation(job)
	case rotation.Failed(job) != "":
		st.FailedAttempts++
		msg := fmt.Sprintf("rotation Job %s failed (%s); AWSCURRENT is unchanged and version %s keeps AWSPENDING for the next attempt",
			job.Name, rotation.Failed(job), s.sec.UnfinishedPending())
		s.setRotationCondition(v1alpha1.ConditionRotationFailed, true, v1alpha1.ReasonJobFailed, msg)
		s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonIdle, "no rotation in progress")
		r.Recorder.Eventf(s.msec, job, corev1.EventTypeWarning, v1alpha1.ReasonJobFailed, "Rotate", "%s", msg)
		s.observeRotation(job)
	default:
		return nil // still running
	}
	st.ActiveJobName, st.ActiveJobUID, st.ActiveVersionID = "", "", ""
	return r.deleteMaterial(ctx, s.msec)
}

// observeRotation counts the rotation the Job ended, by the RotationFailed condition just set.
func (s *scope) observeRotation(job *batchv1.Job) {
	strategy := ""
	if s.rot.policy != nil {
		strategy = s.rot.policy.Spec.Strategy
	}
	result, reason := metrics.RotationSucceeded, v1alpha1.ReasonRotationSucceeded
	for _, c := range s.rot.update.Conditions {
		if c.Type == v1alpha1.ConditionRotationFailed {
			if c.True {
				result, reason = metrics.RotationFailed, c.Reason
			} else {
				result, reason = metrics.RotationSucceeded, c.Reason
			}
		}
	}
	metrics.ObserveRotation(string(job.UID), strategy, result, reason, job.CreationTimestamp.Time, s.now)
}

// activeJob is the served Job; the cache may not have one created a moment ago, so a miss is
// confirmed with a GET (and the UID checked) before the Job counts as gone.
func (r *ManagedSecretReconciler) activeJob(ctx context.Context, s *scope) (*batchv1.Job, error) {
	st := &s.rot.update.Status
	for i := range s.rot.jobs {
		if string(s.rot.jobs[i].UID) == st.ActiveJobUID {
			return &s.rot.jobs[i], nil
		}
	}
	fresh := &batchv1.Job{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: st.ActiveJobName}, fresh)
	if apierrors.IsNotFound(err) || (err == nil && string(fresh.UID) != st.ActiveJobUID) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.rot.jobs = append(s.rot.jobs, *fresh)
	return fresh, nil
}

// finishSecret moves AWSCURRENT to the version the Job set and tested (AWSPREVIOUS follows,
// AWSPENDING goes). Only that version is promoted: if it no longer holds AWSPENDING, something
// else changed the labels during the rotation, and nothing is promoted.
func (r *ManagedSecretReconciler) finishSecret(ctx context.Context, s *scope, token string) error {
	pending := s.sec.UnfinishedPending()
	if token != "" && pending != token {
		if v := s.sec.Version(token); v != nil && contains(v.Spec.Stages, stages.Current) {
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
		val, err := s.sec.Open(ctx, s.sec.Version(pending))
		if err != nil {
			// Never promote a version that does not decrypt.
			s.setRotationCondition(v1alpha1.ConditionRotationFailed, true, v1alpha1.ReasonDecryptionFailed,
				fmt.Sprintf("pending version %s: %s; AWSCURRENT is unchanged", pending, errMessage(err)))
			return nil
		}
		val.Clear()
		if err := s.sec.Finish(ctx, pending); err != nil {
			return err
		}
	}
	now := s.now
	s.rot.update.LastRotatedTime = &now
	s.rot.update.Status.FailedAttempts = 0
	msg := fmt.Sprintf("rotation Job %s succeeded; version %s is AWSCURRENT", s.rot.update.Status.ActiveJobName, s.sec.Holder(stages.Current))
	s.setRotationCondition(v1alpha1.ConditionRotationFailed, false, v1alpha1.ReasonRotationSucceeded, msg)
	s.setRotationCondition(v1alpha1.ConditionRotating, false, v1alpha1.ReasonIdle, "no rotation in progress")
	r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonRotationSucceeded, "Rotate", "%s", msg)
	s.rotated = true
	return nil
}

// cancelRotation is AWS's CancelRotateSecret: scheduled rotation stops and a rotation in progress
// is cancelled (its Job and material deleted). As in AWS, the pending version keeps AWSPENDING; the
// next rotation, once turned on again, completes it.
func (r *ManagedSecretReconciler) cancelRotation(ctx context.Context, s *scope) error {
	st := &s.rot.update.Status
	for i := range s.rot.jobs {
		j := &s.rot.jobs[i]
		if !rotation.Unfinished(j) {
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

// scheduleRotation keeps the CronJob in place, handles rotate-now requests and starts the
// rotation of a new Job (createSecret and its material), or removes the rotation objects of a
// secret whose rotation was detached. It never stops the secret: failures are retried.
func (r *ManagedSecretReconciler) scheduleRotation(ctx context.Context, s *scope) *result {
	if s.rot == nil {
		if err := r.removeRotation(ctx, s); err != nil {
			s.retry = fmt.Errorf("removing the rotation CronJob failed: %s", apiErrorSummary(err))
		}
		return nil
	}
	if !s.schedulable {
		return nil
	}
	requeue, err := r.schedule(ctx, s)
	if err != nil {
		s.retry = fmt.Errorf("scheduling rotation failed: %s", apiErrorSummary(err))
	}
	s.wake = earliest(s.wake, requeue)
	return nil
}

func (r *ManagedSecretReconciler) schedule(ctx context.Context, s *scope) (time.Duration, error) {
	policy, sched := s.rot.policy, s.rot.sched
	last := rotation.ScheduleBase(s.currentCreated, lastRotated(s))
	next := sched.Next(last, s.now)
	s.rot.update.NextRotationTime = &next
	suspended := policy.Spec.Suspend != nil && *policy.Spec.Suspend
	_, cancelled := s.msec.Annotations[request.AnnotationRotationCancelled]
	// A rotation more than a year away: the CronJob's one-shot minute would fire on an earlier
	// year's same date, so it waits suspended, and the operator lets it go in time.
	release, held := sched.Hold(next, s.now)
	if held {
		s.wake = earliest(s.wake, release.Sub(s.now)+time.Second)
	}
	cj, err := r.applyCronJob(ctx, s, next, suspended || cancelled || held)
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
		s.setRotationCondition(v1alpha1.ConditionRotationOverdue, false, v1alpha1.ReasonRotationCancelled, "rotation was cancelled")
		return earliest(0, s.checkStale()), nil
	case suspended:
		s.setRotationCondition(v1alpha1.ConditionRotationScheduled, false, v1alpha1.ReasonSuspended,
			fmt.Sprintf("RotationPolicy %s is suspended; no new rotation starts", policy.Name))
		s.setRotationCondition(v1alpha1.ConditionRotationOverdue, false, v1alpha1.ReasonSuspended,
			fmt.Sprintf("RotationPolicy %s is suspended", policy.Name))
	default:
		msg := fmt.Sprintf("CronJob %s rotates with RotationPolicy %s (%s); next rotation at %s", cj.Name, policy.Name, policy.Spec.Strategy, next.UTC().Format(time.RFC3339))
		if held {
			msg += fmt.Sprintf(" (the CronJob stays suspended until %s, as its schedule names a date without a year)", release.UTC().Format(time.RFC3339))
		}
		s.setRotationCondition(v1alpha1.ConditionRotationScheduled, true, v1alpha1.ReasonScheduled, msg)
	}
	wake := earliest(s.checkOverdue(last, suspended), s.checkStale())
	if err := r.handleRotateRequest(ctx, s, cj, suspended); err != nil {
		return 0, err
	}
	if err := r.startRotation(ctx, s); err != nil {
		return 0, err
	}
	if s.rot.refused {
		// A superuser that is not ready yet, say: look again soon, not at the next schedule.
		return 30 * time.Second, nil
	}
	// Come back when the schedule moves on, to keep nextRotationTime (and a one-minute CronJob
	// schedule) exact, or when the value turns overdue or stale.
	return earliest(wake, next.Sub(s.now)+time.Second+sched.Window()), nil
}

// checkOverdue sets RotationOverdue: True once the rotation due after last has not completed
// within its window. It returns when to look again (0: no change to wait for).
func (s *scope) checkOverdue(last time.Time, suspended bool) time.Duration {
	if suspended {
		return 0
	}
	if s.currentCreated.IsZero() {
		s.setRotationCondition(v1alpha1.ConditionRotationOverdue, false, v1alpha1.ReasonNoValueToRotate, "the secret has no current value yet")
		return 0
	}
	overdue, deadline := rotation.Overdue(s.rot.sched, last, s.now)
	if overdue {
		s.setRotationCondition(v1alpha1.ConditionRotationOverdue, true, v1alpha1.ReasonRotationMissed,
			fmt.Sprintf("the rotation due after %s did not complete by %s (due time plus window)",
				last.UTC().Format(time.RFC3339), deadline.UTC().Format(time.RFC3339)))
		return 0
	}
	s.setRotationCondition(v1alpha1.ConditionRotationOverdue, false, v1alpha1.ReasonOnSchedule,
		fmt.Sprintf("the next rotation must complete by %s", deadline.UTC().Format(time.RFC3339)))
	return deadline.Sub(s.now) + time.Second
}

// checkStale sets Stale from the policy's maxAgeDays and the current value's age. It returns when
// to look again (0: no change to wait for).
func (s *scope) checkStale() time.Duration {
	var maxAge int32
	if s.rot.policy != nil && s.rot.policy.Spec.MaxAgeDays != nil {
		maxAge = *s.rot.policy.Spec.MaxAgeDays
	}
	stale, at := rotation.Stale(s.currentCreated, maxAge, s.now)
	switch {
	case maxAge <= 0:
		s.setRotationCondition(v1alpha1.ConditionStale, false, v1alpha1.ReasonNoMaxAge, "the rotation policy sets no maxAgeDays")
	case s.currentCreated.IsZero():
		s.setRotationCondition(v1alpha1.ConditionStale, false, v1alpha1.ReasonNoValueToRotate, "the secret has no current value yet")
	case stale:
		s.setRotationCondition(v1alpha1.ConditionStale, true, v1alpha1.ReasonValueTooOld,
			fmt.Sprintf("the current value (version %s) was created %s, more than maxAgeDays %d ago", s.currentID, s.currentCreated.UTC().Format(time.RFC3339), maxAge))
	default:
		s.setRotationCondition(v1alpha1.ConditionStale, false, v1alpha1.ReasonValueFresh,
			fmt.Sprintf("the current value stays within maxAgeDays %d until %s", maxAge, at.UTC().Format(time.RFC3339)))
		return at.Sub(s.now) + time.Second
	}
	return 0
}

func lastRotated(s *scope) *time.Time {
	if s.rot.update.LastRotatedTime != nil {
		return s.rot.update.LastRotatedTime
	}
	return timePtr(s.before.LastRotatedTime)
}

// startRotation serves the oldest unfinished rotation Job: createSecret (a pending version, or the
// one an earlier attempt left) and the material its pod mounts. Other unfinished Jobs are deleted:
// one rotation at a time.
func (r *ManagedSecretReconciler) startRotation(ctx context.Context, s *scope) error {
	st := &s.rot.update.Status
	if r.rotationAwaitsRollout(s) { // alternating users: the workloads run AWSCURRENT first (rollout.go)
		return nil
	}
	plan := rotation.PlanJobs(s.rot.jobs, st.ActiveJobUID)
	if plan.Start != nil {
		st.ActiveJobName, st.ActiveJobUID = plan.Start.Name, string(plan.Start.UID)
	}
	for _, j := range plan.StandDown {
		if err := r.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &j.UID}); err != nil && !apierrors.IsNotFound(err) {
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
	// A start is told by the Rotating condition, not an Event (each Event is a write): a rotation
	// has one Event, its outcome (RotationSucceeded, or the failure's).
	pendingID, pending, created, err := r.createSecret(ctx, s)
	if created && plan.Start == nil {
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonVersionCreated, "CreateSecret",
			"created version %s with stage AWSPENDING", pendingID)
	}
	if err != nil {
		return s.refuseOr(err)
	}
	defer pending.Clear()
	st.ActiveVersionID = pendingID
	if err := r.applyMaterial(ctx, s, pendingID, pending.Bytes); err != nil {
		return s.refuseOr(err)
	}
	s.setRotationCondition(v1alpha1.ConditionRotating, true, v1alpha1.ReasonRotationStarted,
		fmt.Sprintf("rotation Job %s is setting and testing pending version %s", st.ActiveJobName, pendingID))
	return nil
}

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

// createSecret returns the pending version the served Job rotates to (creating it when no
// unfinished one exists) and its value.
func (r *ManagedSecretReconciler) createSecret(ctx context.Context, s *scope) (string, store.Value, bool, error) {
	id, val, err := r.pendingVersion(ctx, s)
	if err != nil || id != "" {
		return id, val, false, err
	}
	pending, err := r.pendingValue(ctx, s)
	if err != nil {
		return "", store.Value{}, false, err
	}
	id = requestedVersionID(s)
	if id != "" {
		// A version (cached, or deprecated and read) may hold the id: then a new UUID.
		taken, err := s.sec.Find(ctx, id)
		if err != nil {
			pending.Clear()
			return "", store.Value{}, false, err
		}
		if taken != nil {
			id = ""
		}
	}
	id, err = s.sec.CreatePending(ctx, pending, id)
	if err != nil {
		pending.Clear()
		if code := awserr.CodeOf(err); code != "" {
			return "", store.Value{}, false, refusal{v1alpha1.ReasonCreateFailed, errMessage(err)}
		}
		return "", store.Value{}, false, err
	}
	return id, pending, true, nil
}

// requestedVersionID is the id a rotate request (RotateSecret's ClientRequestToken) gave the Job
// being served, when it is a valid token; "" otherwise (a new UUID). createSecret checks that no
// version has it yet.
func requestedVersionID(s *scope) string {
	st := s.rot.update.Status
	for i := range s.rot.jobs {
		j := &s.rot.jobs[i]
		if string(j.UID) != st.ActiveJobUID {
			continue
		}
		id := j.Annotations[v1alpha1.AnnotationRotateVersionID]
		if id == "" || store.CheckToken(id) != nil {
			return ""
		}
		return id
	}
	return ""
}

// pendingVersion opens the pending version a rotation already has (the one its Job was given, or
// one an earlier attempt left); the id is "" when there is none.
func (r *ManagedSecretReconciler) pendingVersion(ctx context.Context, s *scope) (string, store.Value, error) {
	open := func(id string) (string, store.Value, error) {
		v, err := s.sec.Open(ctx, s.sec.Version(id))
		if err != nil {
			return "", store.Value{}, refusal{v1alpha1.ReasonDecryptionFailed, fmt.Sprintf("pending version %s: %s", id, errMessage(err))}
		}
		return id, v, nil
	}
	if token := s.rot.update.Status.ActiveVersionID; token != "" {
		// The Job was given this version; it stays the one, or the rotation is refused.
		if v := s.sec.Version(token); v == nil || !contains(v.Spec.Stages, stages.Pending) {
			return "", store.Value{}, refusal{v1alpha1.ReasonCreateFailed, fmt.Sprintf("version %s, given to rotation Job %s, no longer holds AWSPENDING", token, s.rot.update.Status.ActiveJobName)}
		}
		return open(token)
	}
	if id := s.sec.UnfinishedPending(); id != "" {
		return open(id)
	}
	// The cache may lag behind a pending version created a moment ago; ask the API server.
	fresh, err := r.store.LoadFresh(ctx, s.msec)
	if err != nil {
		return "", store.Value{}, err
	}
	if s.sec = fresh; s.sec.UnfinishedPending() != "" {
		return open(s.sec.UnfinishedPending())
	}
	return "", store.Value{}, nil
}

// pendingValue is the new value: the current one with a new password (and, for alternating
// users, the other user).
func (r *ManagedSecretReconciler) pendingValue(ctx context.Context, s *scope) (store.Value, error) {
	strategy := s.rot.policy.Spec.Strategy
	pw, err := rotation.PasswordPolicy(strategy, s.rot.policy.Spec.PasswordPolicy).Generate()
	if err != nil {
		return store.Value{}, refusal{v1alpha1.ReasonInvalidPolicy, "passwordPolicy: " + err.Error()}
	}
	current, err := r.currentValue(ctx, s)
	if err != nil {
		return store.Value{}, err
	}
	pending, err := rotation.PendingValue(current, strategy, pw)
	if err != nil {
		return store.Value{}, refusal{v1alpha1.ReasonCreateFailed, err.Error()}
	}
	if err := value.CheckSize(pending, r.ValueLimit); err != nil {
		clear(pending)
		return store.Value{}, refusal{v1alpha1.ReasonValueTooLarge, err.Error()}
	}
	return store.Value{Bytes: pending}, nil
}

func contains(ls []string, l string) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

func timePtr(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}
