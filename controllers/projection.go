package controllers

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// project writes the target Secret from the AWSCURRENT value: created (never applied over) when
// absent, so a Secret someone else creates at the same moment makes the create fail instead of
// being taken over; then server-side applied under FieldManager. When the cached metadata still
// shows the resourceVersion the operator last wrote or checked, and the shape annotation
// matches, nothing is read or written; otherwise the Secret is read with one GET and compared.
func (r *ManagedSecretReconciler) project(ctx context.Context, s *scope) *result {
	msec := s.msec
	if t := msec.Spec.Target; t != nil {
		if err := objects.CheckTargetMetadata(t.Labels, t.Annotations, r.TargetPrefixes); err != nil {
			return failed(v1alpha1.ReasonInvalidTarget, err.Error()+"; the projected Secret is unchanged")
		}
	}
	if s.proof != nil {
		return nil // openCurrentUnlessProjected found it unchanged
	}
	data, err := value.Render(s.current.Bytes, objects.TargetKey(msec))
	if err != nil {
		return failed(v1alpha1.ReasonInvalidSource, err.Error())
	}
	previousID, data := r.withPrevious(ctx, s, data)
	desired := objects.ProjectedSecret(msec, s.currentID, previousID, data)
	existing, upToDate, res := r.readTarget(ctx, s, desired)
	if res != nil {
		return res
	}
	if upToDate != nil {
		r.prove(s, upToDate.UID, upToDate.ResourceVersion)
		return nil
	}
	if existing != nil && existing.Type == desired.Type &&
		existing.Annotations[objects.AnnotationProjection] == desired.Annotations[objects.AnnotationProjection] &&
		dataEqual(existing.Data, data) {
		r.prove(s, existing.UID, existing.ResourceVersion)
		return nil
	}
	if existing != nil && existing.Type != desired.Type {
		if res := r.replaceForType(ctx, existing, desired); res != nil {
			return res
		}
		existing = nil
	}
	if res := r.writeProjection(ctx, s, existing, desired); res != nil {
		return res
	}
	if existing == nil || s.rotated || existing.Annotations[objects.AnnotationVersionID] == s.currentID && dataEqual(existing.Data, data) {
		// A new secret's first projection is in its status (Ready), a rotation's in its
		// RotationSucceeded Event; a shape change (labels, annotations) of the same version is
		// not news. Events are for changes of value, and each is a write.
		return nil
	}
	r.Recorder.Eventf(msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonSecretProjected, "Project",
		"projected version %s into Secret %s", s.currentID, desired.Name)
	return nil
}

// withPrevious adds the AWSPREVIOUS value's keys (key.previous) when target.includePrevious asks
// for them and there is such a version. A previous version that cannot be opened or rendered is
// left out with a Warning: the current value is projected whatever happens to the previous one.
func (r *ManagedSecretReconciler) withPrevious(ctx context.Context, s *scope, data map[string][]byte) (string, map[string][]byte) {
	t := s.msec.Spec.Target
	if t == nil || t.IncludePrevious == nil || !*t.IncludePrevious {
		return "", data
	}
	id := s.sec.Holder(stages.Previous)
	if id == "" || id == s.currentID {
		return "", data
	}
	prev, err := s.sec.Open(ctx, s.sec.Version(id))
	if err != nil {
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeWarning, reasonPreviousNotProjected, "Project",
			"the AWSPREVIOUS version %s is not projected: %s", id, errMessage(err))
		return "", data
	}
	defer prev.Clear()
	rendered, err := value.Render(prev.Bytes, objects.TargetKey(s.msec))
	if err != nil {
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeWarning, reasonPreviousNotProjected, "Project",
			"the AWSPREVIOUS version %s is not projected: %s", id, err.Error())
		return "", data
	}
	return id, value.WithPrevious(data, rendered)
}

// reasonPreviousNotProjected: target.includePrevious could not add the AWSPREVIOUS value.
const reasonPreviousNotProjected = "PreviousNotProjected"

// openCurrentUnlessProjected finds the AWSCURRENT version and decrypts it, unless the projected
// Secret is proven to hold it unchanged (projectionProof): an idle reconcile, and a restart over
// secrets nobody touched, then cost neither a GET nor a decryption. Rotation opens the value
// when it needs it (currentValue).
func (r *ManagedSecretReconciler) openCurrentUnlessProjected(ctx context.Context, s *scope) *result {
	v, err := s.sec.Current()
	if err != nil {
		return r.openCurrent(ctx, s) // reports the broken labels
	}
	if proof, secret := r.projectionProof(ctx, s, v); proof != nil {
		s.currentID, s.currentCreated = v.Spec.VersionID, v.CreationTimestamp.Time
		s.proof, s.proofSecret = proof, secret
		return nil
	}
	if res := r.openCurrent(ctx, s); res != nil {
		return res
	}
	s.currentOpen = true
	return nil
}

// projectionProof returns the proof that the projected Secret holds version v as the operator
// wrote it for this generation, from status.projection or from memory, and that Secret's uid; or
// nil. Projections with includePrevious are always rendered (they depend on a second version).
func (r *ManagedSecretReconciler) projectionProof(ctx context.Context, s *scope, v *v1alpha1.SecretVersion) (*v1alpha1.ProjectionStatus, types.UID) {
	if t := s.msec.Spec.Target; t != nil && t.IncludePrevious != nil && *t.IncludePrevious {
		return nil, ""
	}
	meta, err := r.cachedSecretMeta(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: targetName(s.msec)})
	if err != nil || meta == nil || !isControlledBy(meta, s.msec) || meta.Annotations[objects.AnnotationVersionID] != v.Spec.VersionID {
		return nil, ""
	}
	want := v1alpha1.ProjectionStatus{SecretResourceVersion: meta.ResourceVersion, VersionResourceVersion: v.ResourceVersion, Generation: s.msec.Generation}
	if p := s.before.Projection; p != nil && *p == want {
		return &want, meta.UID
	}
	if p, ok := r.verified.get(meta.UID); ok && p == want {
		return &want, meta.UID
	}
	return nil, ""
}

// provenInStatus reports whether status.projection proves the projected Secret unchanged at
// resourceVersion since the operator wrote or compared it.
func provenInStatus(st *v1alpha1.ManagedSecretStatus, resourceVersion string) bool {
	return st.Projection != nil && st.Projection.SecretResourceVersion == resourceVersion
}

// prove records that the projected Secret (uid, at resourceVersion) holds the AWSCURRENT version
// as rendered for this generation: in memory until a status write carries it (patchStatus).
func (r *ManagedSecretReconciler) prove(s *scope, uid types.UID, resourceVersion string) {
	p := v1alpha1.ProjectionStatus{SecretResourceVersion: resourceVersion, Generation: s.msec.Generation}
	if v := s.sec.Version(s.currentID); v != nil {
		p.VersionResourceVersion = v.ResourceVersion
	}
	r.verified.set(uid, p)
	s.proof, s.proofSecret = &p, uid
}

// currentValue is the AWSCURRENT value, decrypted on first use when openCurrentUnlessProjected
// did not need it.
func (r *ManagedSecretReconciler) currentValue(ctx context.Context, s *scope) ([]byte, error) {
	if !s.currentOpen {
		val, err := s.sec.Open(ctx, s.sec.Version(s.currentID))
		if err != nil {
			return nil, err
		}
		s.current, s.currentOpen = val, true
	}
	return s.current.Bytes, nil
}

// readTarget returns the target Secret to compare with (nil when there is none), or the cached
// metadata when it shows the Secret unchanged since the operator last verified it with this shape.
func (r *ManagedSecretReconciler) readTarget(ctx context.Context, s *scope, desired *corev1.Secret) (*corev1.Secret, *metav1.PartialObjectMetadata, *result) {
	conflict := func() *result {
		return s.waitFor(v1alpha1.ReasonTargetConflict, targetConflictMessage(desired.Name))
	}
	key := types.NamespacedName{Namespace: desired.Namespace, Name: desired.Name}
	// The cache only: a Secret it does not hold is created, and a create that finds one there
	// (someone else's, or ours the cache has not seen yet) is sorted out then (createdElsewhere),
	// so a new secret's projection costs no GET.
	meta, err := r.cachedSecretMeta(ctx, key)
	switch {
	case err != nil:
		return nil, nil, transient(v1alpha1.ReasonProjectionFailed, "reading the target Secret failed", err)
	case meta == nil:
		return nil, nil, nil
	case !isControlledBy(meta, s.msec) && adoptableByRestore(meta, s.msec):
		if err := r.adopt(ctx, meta, s.msec); err != nil {
			return nil, nil, transient(v1alpha1.ReasonProjectionFailed, "adopting the restored projected Secret failed", err)
		}
	case !isControlledBy(meta, s.msec):
		return nil, nil, conflict()
	case meta.Annotations[objects.AnnotationProjection] == desired.Annotations[objects.AnnotationProjection] &&
		(provenInStatus(s.before, meta.ResourceVersion) || r.verified.ok(meta.UID, meta.ResourceVersion)):
		return nil, meta, nil
	}
	// The whole object, managed fields included: a crash between a create and its ownership
	// upgrade would leave create-owned fields, and the upgrade finishes first.
	existing, err := r.readSecret(ctx, key)
	if err != nil {
		return nil, nil, transient(v1alpha1.ReasonProjectionFailed, "reading the projected Secret failed", err)
	}
	if existing != nil && !isControlledBy(existing, s.msec) {
		return nil, nil, conflict()
	}
	return existing, nil, nil
}

// replaceForType deletes the projected Secret to change its type (immutable), after checking
// with a dry run that the new one is valid, so an invalid type never costs the Secret that exists.
func (r *ManagedSecretReconciler) replaceForType(ctx context.Context, existing, desired *corev1.Secret) *result {
	err := r.Create(ctx, desired.DeepCopy(), client.DryRunAll)
	if apierrors.IsInvalid(err) {
		return failed(v1alpha1.ReasonInvalidTarget, fmt.Sprintf("the value does not fit a Secret of type %s: %s; the projected Secret is unchanged", desired.Type, invalidCauses(err)))
	}
	if err := r.Delete(ctx, existing, client.Preconditions{UID: &existing.UID}); err != nil && !apierrors.IsNotFound(err) {
		return transient(v1alpha1.ReasonProjectionFailed, "replacing the target Secret to change its type failed", err)
	}
	r.verified.forget(existing.UID)
	return nil
}

// writeProjection creates the projected Secret (handing its fields to server-side apply) or
// applies it over the one the operator owns.
func (r *ManagedSecretReconciler) writeProjection(ctx context.Context, s *scope, existing, desired *corev1.Secret) *result {
	invalid := func(err error) *result {
		return failed(v1alpha1.ReasonInvalidTarget, fmt.Sprintf("the target Secret is not valid: %s", invalidCauses(err)))
	}
	if existing == nil {
		created := desired.DeepCopy()
		err := r.Create(ctx, created, client.FieldOwner(FieldManager))
		switch {
		case apierrors.IsAlreadyExists(err):
			return r.createdElsewhere(ctx, s, desired.Name)
		case apierrors.IsInvalid(err):
			return invalid(err)
		case err != nil:
			return transient(v1alpha1.ReasonProjectionFailed, "creating the projected Secret failed", err)
		}
		// Server-side apply ownership is taken with the first change (upgradeToApply below): one
		// write for a new secret's projection, not two.
		r.prove(s, created.UID, created.ResourceVersion)
		return nil
	}
	if drops(existing, desired) {
		// Fields the create set and the apply no longer has: only an Apply owner removes them.
		if err := r.upgradeToApply(ctx, existing); err != nil {
			return transient(v1alpha1.ReasonProjectionFailed, "taking server-side apply ownership of the projected Secret failed", err)
		}
	}
	applied := objects.SecretApplyConfig(desired)
	if err := r.Apply(ctx, applied, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		if apierrors.IsInvalid(err) {
			return invalid(err)
		}
		return transient(v1alpha1.ReasonProjectionFailed, "applying the projected Secret failed", err)
	}
	// The response is the whole Secret as written: what it holds is known without reading it.
	if applied.UID != nil && applied.ResourceVersion != nil {
		r.prove(s, *applied.UID, *applied.ResourceVersion)
	}
	return nil
}

// drops reports whether the existing Secret has a data key, label or annotation the desired one
// has not. Only then must the create-time ownership be upgraded before applying: an apply that
// sets every field the Secret has takes them over by itself (a rotation changes values, not
// keys), which saves a write.
func drops(existing, desired *corev1.Secret) bool {
	for k := range existing.Data {
		if _, ok := desired.Data[k]; !ok {
			return true
		}
	}
	for k := range existing.Labels {
		if _, ok := desired.Labels[k]; !ok {
			return true
		}
	}
	for k := range existing.Annotations {
		if _, ok := desired.Annotations[k]; !ok {
			return true
		}
	}
	return false
}

// createdElsewhere explains a create of the projected Secret that found one under its name: a
// Secret this ManagedSecret does not control is a conflict; one it does (the cache is behind) is
// looked at again shortly.
func (r *ManagedSecretReconciler) createdElsewhere(ctx context.Context, s *scope, name string) *result {
	meta, err := r.collidedWith(ctx, secretGVK, types.NamespacedName{Namespace: s.msec.Namespace, Name: name})
	if err != nil {
		return transient(v1alpha1.ReasonProjectionFailed, "reading the target Secret failed", err)
	}
	if meta != nil && !isControlledBy(meta, s.msec) && !adoptableByRestore(meta, s.msec) {
		return s.waitFor(v1alpha1.ReasonTargetConflict, targetConflictMessage(name))
	}
	return s.waitFor(v1alpha1.ReasonTargetConflict, fmt.Sprintf("Secret %s appeared while it was being created; checking who owns it", name))
}

func targetConflictMessage(name string) string {
	return fmt.Sprintf("Secret %s already exists and is not owned by this ManagedSecret; it is never adopted or overwritten: delete it or choose another target.name", name)
}

// removeStaleProjections deletes Secrets this ManagedSecret projected under an earlier target name.
func (r *ManagedSecretReconciler) removeStaleProjections(ctx context.Context, s *scope) error {
	list, err := r.listSecretMeta(ctx, s.msec.Namespace,
		client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.msec.UID), v1alpha1.LabelRole: v1alpha1.RoleProjection})
	if err != nil {
		return err
	}
	for i := range list {
		sec := &list[i]
		if sec.Name == targetName(s.msec) || !isControlledBy(sec, s.msec) {
			continue
		}
		if err := r.deleteIfControlled(ctx, sec, s.msec.UID); err != nil {
			return err
		}
		r.verified.forget(sec.UID)
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonOrphanedProjection, "Delete",
			"deleted Secret %s, projected under an earlier target name", sec.Name)
	}
	return nil
}

// dataEqual compares the keys the operator renders; keys someone else added are left alone.
func dataEqual(have, want map[string][]byte) bool {
	for k, v := range want {
		w, ok := have[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}
