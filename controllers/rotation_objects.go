package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/schedule"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
)

// applyCronJob keeps the rotation CronJob as the policy describes it. It returns the desired
// CronJob with the UID of the one in the cluster, or a refusal when a CronJob of its name exists
// that this ManagedSecret does not control (it is left alone).
func (r *ManagedSecretReconciler) applyCronJob(ctx context.Context, s *scope, next time.Time, suspended bool) (*batchv1.CronJob, error) {
	sched, tz := s.rot.sched.CronJobSchedule(next)
	desired := objects.CronJob(objects.CronJobInput{ManagedSecret: s.msec, Policy: s.rot.policy, Schedule: sched, TimeZone: tz,
		WindowSeconds: int64(s.rot.sched.Window().Seconds()), Suspended: suspended, Image: r.RotationImage})
	u, hash, err := specHashed(desired)
	if err != nil {
		return nil, err
	}
	existing, err := r.cachedCronJob(ctx, s.msec)
	switch {
	case err != nil:
		return nil, err
	case existing != nil && !isControlledBy(existing, s.msec):
		return nil, refusal{v1alpha1.ReasonObjectConflict, fmt.Sprintf("CronJob %s exists and is not controlled by this ManagedSecret; it is left alone: delete it or rename the ManagedSecret", desired.Name)}
	case existing != nil && existing.GetAnnotations()[objects.AnnotationSpecHash] == hash:
		desired.UID = existing.GetUID()
		return desired, nil
	case existing != nil:
		if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return nil, err
		}
		desired.UID = existing.GetUID()
		return desired, nil
	}
	// Created, never applied over, so a CronJob someone makes at the same moment is not taken
	// over; then its fields are handed to server-side apply.
	created := desired.DeepCopy()
	created.Annotations = u.GetAnnotations()
	err = r.Create(ctx, created, client.FieldOwner(FieldManager))
	if apierrors.IsAlreadyExists(err) {
		other, err := r.collidedWith(ctx, batchv1.SchemeGroupVersion.WithKind("CronJob"), client.ObjectKeyFromObject(desired))
		if err == nil && other != nil && !isControlledBy(other, s.msec) {
			return nil, refusal{v1alpha1.ReasonObjectConflict, fmt.Sprintf("CronJob %s exists and is not controlled by this ManagedSecret; it is left alone: delete it or rename the ManagedSecret", desired.Name)}
		}
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

// specHashed is the object as an apply configuration carrying a digest of itself.
func specHashed(obj runtime.Object) (*unstructured.Unstructured, string, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, "", err
	}
	pruneNulls(m)
	delete(m, "status")
	raw, _ := json.Marshal(m)
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:16])
	u := &unstructured.Unstructured{Object: m}
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[objects.AnnotationSpecHash] = hash
	u.SetAnnotations(ann)
	return u, hash, nil
}

// cachedCronJob returns the CronJob under the ManagedSecret's CronJob name when the cache holds
// it (it carries the operator's label), nil otherwise. What the operator controls is always there
// (or on its way: its creation wakes the ManagedSecret again), so deciding to delete or create
// needs no GET; a create that collides with someone else's is sorted out then.
func (r *ManagedSecretReconciler) cachedCronJob(ctx context.Context, msec *v1alpha1.ManagedSecret) (*batchv1.CronJob, error) {
	cj := &batchv1.CronJob{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: msec.Namespace, Name: cronJobName(msec)}, cj); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return cj, nil
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
	switch {
	case suspended:
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeWarning, v1alpha1.ReasonRotateRequested, "Rotate",
			"rotation request %q ignored: RotationPolicy %s is suspended", req, s.rot.policy.Name)
		return nil
	case rotation.Busy(s.rot.jobs, st.ActiveJobUID):
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonRotateRequested, "Rotate",
			"rotation request %q: a rotation is already in progress", req)
		return nil
	}
	job := objects.RotateNowJob(cj, req, s.msec.Annotations[v1alpha1.AnnotationRotateVersionID])
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

// applyMaterial writes the short-lived Secret the rotation pod mounts: the request, and the
// current, pending, previous and (for alternating users) superuser values, and the policy's CA
// bundle. It is controlled by the ManagedSecret; a Secret of its name that someone else made is
// never written into. The material-for annotation names what it holds (version and Job ids,
// never a value), so unchanged material is not written again.
func (r *ManagedSecretReconciler) applyMaterial(ctx context.Context, s *scope, pendingID string, pending []byte) error {
	name := materialName(s.msec)
	existing, err := r.cachedSecretMeta(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: name})
	if err != nil {
		return err
	}
	foreign := func() error {
		return refusal{v1alpha1.ReasonObjectConflict, fmt.Sprintf("Secret %s, where the rotation material goes, exists and is not controlled by this ManagedSecret; it is left alone: delete it or rename the ManagedSecret", name)}
	}
	if existing != nil && !isControlledBy(existing, s.msec) {
		return foreign()
	}
	req := rotation.Request{SecretID: r.arn(s.msec), ClientRequestToken: pendingID,
		Strategy: s.rot.policy.Spec.Strategy, JobUID: s.rot.update.Status.ActiveJobUID, Steps: rotation.PodSteps}
	prev := s.sec.Holder(stages.Previous)
	var superuser []byte
	suVersion := ""
	if rotation.IsAlternating(req.Strategy) {
		if superuser, suVersion, err = r.superuserValue(ctx, s); err != nil {
			return err
		}
		defer clear(superuser)
	}
	ca := ""
	if t := s.rot.policy.Spec.TLS; t != nil {
		ca = t.CABundle
	}
	caSum := sha256.Sum256([]byte(ca)) // a public CA bundle, never a value
	holds := strings.Join([]string{req.JobUID, pendingID, s.currentID, prev, suVersion, hex.EncodeToString(caSum[:8])}, "/")
	if existing != nil && existing.Annotations[objects.AnnotationMaterialFor] == holds {
		return nil
	}
	reqJSON, _ := json.Marshal(req)
	current, err := r.currentValue(ctx, s)
	if err != nil {
		return err
	}
	data := map[string][]byte{rotation.FileRequest: reqJSON, rotation.FileCurrent: current, rotation.FilePending: pending}
	if v := s.sec.Version(prev); v != nil {
		if val, err := s.sec.Open(ctx, v); err == nil {
			data[rotation.FilePrevious] = val.Bytes
			defer val.Clear()
		}
	}
	if superuser != nil {
		data[rotation.FileSuperuser] = superuser
	}
	if ca != "" {
		data[rotation.FileCABundle] = []byte(ca)
	}
	desired := objects.MaterialSecret(s.msec, holds, data)
	if existing != nil {
		// Rare (the material of a rotation changed under it): its create-time field ownership
		// is upgraded first, so the apply removes keys it no longer has.
		full, err := r.readSecret(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: name})
		if err != nil {
			return err
		}
		if full != nil {
			if err := r.upgradeToApply(ctx, full); err != nil {
				return err
			}
		}
		return r.Apply(ctx, objects.SecretApplyConfig(desired), client.FieldOwner(FieldManager), client.ForceOwnership)
	}
	// Created, never applied over: a Secret someone makes under this name at the same moment
	// makes the create fail instead of being taken over.
	err = r.Create(ctx, desired, client.FieldOwner(FieldManager))
	if apierrors.IsAlreadyExists(err) {
		other, err := r.collidedWith(ctx, secretGVK, types.NamespacedName{Namespace: s.msec.Namespace, Name: name})
		if err == nil && other != nil && !isControlledBy(other, s.msec) {
			return foreign()
		}
		return refusal{v1alpha1.ReasonObjectConflict, fmt.Sprintf("Secret %s, where the rotation material goes, appeared while it was being created; checking who owns it", name)}
	}
	// Server-side apply ownership is taken only if it ever changes: most material is created and
	// deleted, never changed, so that costs no write.
	return err
}

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
	sec, err := r.store.Load(ctx, su)
	if err != nil {
		return nil, "", err
	}
	cur, err := sec.Current()
	if err != nil {
		return nil, "", notReady("has no readable AWSCURRENT version")
	}
	val, err := sec.Open(ctx, cur)
	if err != nil {
		return nil, "", notReady("cannot be decrypted")
	}
	return val.Bytes, cur.Spec.VersionID, nil
}

// deleteMaterial deletes the rotation material, if this ManagedSecret controls it.
func (r *ManagedSecretReconciler) deleteMaterial(ctx context.Context, msec *v1alpha1.ManagedSecret) error {
	// Material the ManagedSecret controls carries its label, so the cache has it.
	m, err := r.cachedSecretMeta(ctx, types.NamespacedName{Namespace: msec.Namespace, Name: materialName(msec)})
	if err != nil || m == nil {
		return err
	}
	return r.deleteIfControlled(ctx, m, msec.UID)
}

// removeRotation deletes the CronJob and material of a ManagedSecret whose rotation was detached
// (or that is marked for deletion), when this ManagedSecret controls them.
func (r *ManagedSecretReconciler) removeRotation(ctx context.Context, s *scope) error {
	cj, err := r.cachedCronJob(ctx, s.msec)
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
