package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/util/csaupgrade"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// Annotations on the projected Secret; none holds a value or a hash of one.
const (
	// AnnotationVersionID names the version the Secret holds.
	AnnotationVersionID = "kube-secrets-manager.io/version-id"
	// AnnotationProjection is a digest of the projection's shape (type, labels, annotations and
	// key names, never data), so an unchanged projection is not written again.
	AnnotationProjection = "kube-secrets-manager.io/projection"
)

// project writes the target Secret: created (never applied over) when absent, so a Secret someone
// else creates at the same moment makes the create fail instead of being taken over; then
// server-side applied under FieldManager. The Secret cache holds metadata only: when the cached
// metadata still shows the resourceVersion the operator last wrote or checked, and the version
// and shape annotations match, nothing is read or written; otherwise the Secret is read with one
// GET and compared.
func (r *ManagedSecretReconciler) project(ctx context.Context, s *scope, versionID string, data map[string][]byte) (result, bool) {
	msec := s.msec
	name := targetName(msec)
	if t := msec.Spec.Target; t != nil {
		if err := objects.CheckTargetMetadata(t.Labels, t.Annotations, r.TargetPrefixes); err != nil {
			return failed(v1alpha1.ReasonInvalidTarget, err.Error()+"; the projected Secret is unchanged"), true
		}
	}
	key := types.NamespacedName{Namespace: msec.Namespace, Name: name}
	meta, err := r.secretMeta(ctx, key)
	switch {
	case err != nil:
		return transient(v1alpha1.ReasonProjectionFailed, "reading the target Secret failed", err), true
	case meta != nil && !isControlledBy(meta, msec):
		return s.waitFor(v1alpha1.ReasonTargetConflict, fmt.Sprintf("Secret %s already exists and is not owned by this ManagedSecret; it is never adopted or overwritten: delete it or choose another target.name", name)), true
	}
	desired := desiredSecret(msec, versionID, data)
	if meta != nil && meta.Annotations[AnnotationProjection] == desired.Annotations[AnnotationProjection] &&
		r.verified.ok(meta.UID, meta.ResourceVersion) {
		return result{}, false
	}
	var existing *corev1.Secret
	if meta != nil {
		// The whole object, managed fields included: a crash between a create and its ownership
		// upgrade would leave create-owned fields, and the upgrade finishes first.
		if existing, err = r.readSecret(ctx, key); err != nil {
			return transient(v1alpha1.ReasonProjectionFailed, "reading the projected Secret failed", err), true
		}
		if existing != nil && !isControlledBy(existing, msec) {
			return s.waitFor(v1alpha1.ReasonTargetConflict, fmt.Sprintf("Secret %s already exists and is not owned by this ManagedSecret; it is never adopted or overwritten: delete it or choose another target.name", name)), true
		}
	}
	if existing != nil && existing.Type == desired.Type &&
		existing.Annotations[AnnotationProjection] == desired.Annotations[AnnotationProjection] &&
		dataEqual(existing.Data, data) && !needsApplyUpgrade(existing) {
		r.verified.set(existing.UID, existing.ResourceVersion)
		return result{}, false
	}
	if existing != nil && existing.Type != desired.Type {
		// A Secret's type is immutable, so it is replaced; first make sure the new one is valid,
		// so an invalid type never costs the Secret that exists.
		probe := desired.DeepCopy()
		err := r.Create(ctx, probe, client.DryRunAll)
		if apierrors.IsInvalid(err) {
			return failed(v1alpha1.ReasonInvalidTarget, fmt.Sprintf("the value does not fit a Secret of type %s: %s; the projected Secret is unchanged", desired.Type, invalidCauses(err))), true
		}
		if err := r.Delete(ctx, existing, client.Preconditions{UID: &existing.UID}); err != nil && !apierrors.IsNotFound(err) {
			return transient(v1alpha1.ReasonProjectionFailed, "replacing the target Secret to change its type failed", err), true
		}
		r.verified.forget(existing.UID)
		existing = nil
	}
	if existing == nil {
		created := desired.DeepCopy()
		err := r.Create(ctx, created, client.FieldOwner(FieldManager))
		switch {
		case apierrors.IsAlreadyExists(err):
			return s.waitFor(v1alpha1.ReasonTargetConflict, fmt.Sprintf("Secret %s appeared while it was being created; checking who owns it", name)), true
		case apierrors.IsInvalid(err):
			return failed(v1alpha1.ReasonInvalidTarget, fmt.Sprintf("the target Secret is not valid: %s", invalidCauses(err))), true
		case err != nil:
			return transient(v1alpha1.ReasonProjectionFailed, "creating the projected Secret failed", err), true
		}
		// Hand the fields the create wrote to the server-side apply manager, so later applies
		// can remove keys, labels and annotations the spec no longer has.
		if err := r.upgradeToApply(ctx, created); err != nil {
			return transient(v1alpha1.ReasonProjectionFailed, "taking server-side apply ownership of the projected Secret failed", err), true
		}
		r.verified.set(created.UID, created.ResourceVersion)
	} else {
		if err := r.upgradeToApply(ctx, existing); err != nil {
			return transient(v1alpha1.ReasonProjectionFailed, "taking server-side apply ownership of the projected Secret failed", err), true
		}
		// The next reconcile (this write's watch event) reads the result once and remembers it.
		if err := r.Apply(ctx, applyConfig(desired), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			if apierrors.IsInvalid(err) {
				return failed(v1alpha1.ReasonInvalidTarget, fmt.Sprintf("the target Secret is not valid: %s", invalidCauses(err))), true
			}
			return transient(v1alpha1.ReasonProjectionFailed, "applying the projected Secret failed", err), true
		}
		if existing.Annotations[AnnotationVersionID] == versionID && dataEqual(existing.Data, data) {
			// Only the shape changed (labels, annotations): no Event for the same version.
			return result{}, false
		}
	}
	r.Recorder.Eventf(msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonSecretProjected, "Project",
		"projected version %s into Secret %s", versionID, name)
	return result{}, false
}

// needsApplyUpgrade reports whether the Secret still has fields owned by the operator's create
// (Update) rather than its server-side apply.
func needsApplyUpgrade(sec *corev1.Secret) bool {
	for _, f := range sec.ManagedFields {
		if f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationUpdate {
			return true
		}
	}
	return false
}

func desiredSecret(msec *v1alpha1.ManagedSecret, versionID string, data map[string][]byte) *corev1.Secret {
	labels := map[string]string{}
	annotations := map[string]string{}
	if t := msec.Spec.Target; t != nil {
		for k, v := range t.Labels {
			labels[k] = v
		}
		for k, v := range t.Annotations {
			annotations[k] = v
		}
	}
	for k, v := range ownedLabels(msec, v1alpha1.RoleProjection) {
		labels[k] = v
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	annotations[AnnotationVersionID] = versionID
	typ := targetType(msec)
	shape, _ := json.Marshal([]any{typ, labels, annotations, keys})
	sum := sha256.Sum256(shape)
	annotations[AnnotationProjection] = hex.EncodeToString(sum[:16])
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: targetName(msec), Namespace: msec.Namespace,
			Labels: labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{ownerRef(msec)},
		},
		Type: typ,
		Data: data,
	}
}

func applyConfig(s *corev1.Secret) *corev1ac.SecretApplyConfiguration {
	o := s.OwnerReferences[0]
	return corev1ac.Secret(s.Name, s.Namespace).
		WithLabels(s.Labels).
		WithAnnotations(s.Annotations).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(o.APIVersion).WithKind(o.Kind).WithName(o.Name).WithUID(o.UID).
			WithController(true).WithBlockOwnerDeletion(true)).
		WithType(s.Type).
		WithData(s.Data)
}

// upgradeToApply converts the operator's create-time (Update) field ownership into Apply
// ownership; it does nothing when there is none.
func (r *ManagedSecretReconciler) upgradeToApply(ctx context.Context, obj client.Object) error {
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(obj, sets.New(FieldManager), FieldManager)
	if err != nil || patch == nil {
		return err
	}
	return r.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, patch))
}

// invalidCauses lists the fields an Invalid error names, without the values it may quote.
func invalidCauses(err error) string {
	var status apierrors.APIStatus
	var fields []string
	if e, ok := err.(apierrors.APIStatus); ok {
		status = e
	}
	if status != nil && status.Status().Details != nil {
		for _, c := range status.Status().Details.Causes {
			fields = append(fields, fmt.Sprintf("%s (%s)", c.Field, c.Type))
		}
	}
	if len(fields) == 0 {
		return "the API server refused it"
	}
	return "invalid " + strings.Join(fields, ", ")
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

func ownedLabels(msec *v1alpha1.ManagedSecret, role string) map[string]string {
	return map[string]string{
		v1alpha1.LabelManagedSecretUID: string(msec.UID),
		v1alpha1.LabelManagedBy:        v1alpha1.ManagedByValue,
		v1alpha1.LabelRole:             role,
	}
}

func targetName(msec *v1alpha1.ManagedSecret) string {
	if msec.Spec.Target != nil && msec.Spec.Target.Name != "" {
		return msec.Spec.Target.Name
	}
	return msec.Name
}

func targetKey(msec *v1alpha1.ManagedSecret) string {
	if msec.Spec.Target != nil {
		return msec.Spec.Target.Key
	}
	return ""
}

func targetType(msec *v1alpha1.ManagedSecret) corev1.SecretType {
	if msec.Spec.Target != nil && msec.Spec.Target.Type != "" {
		return corev1.SecretType(msec.Spec.Target.Type)
	}
	return corev1.SecretTypeOpaque
}

func ownerRef(msec *v1alpha1.ManagedSecret) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "ManagedSecret", Name: msec.Name, UID: msec.UID,
		Controller: &yes, BlockOwnerDeletion: &yes,
	}
}

func isControlledBy(obj metav1.Object, msec *v1alpha1.ManagedSecret) bool {
	c := metav1.GetControllerOf(obj)
	return c != nil && c.UID == msec.UID
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
