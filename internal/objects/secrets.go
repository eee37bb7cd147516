package objects

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// Annotations on the objects the operator writes; none holds a value or a hash of one.
const (
	// AnnotationVersionID on the projected Secret names the version it holds.
	AnnotationVersionID = "kube-secrets-manager.io/version-id"
	// AnnotationPreviousVersionID names the AWSPREVIOUS version projected beside it
	// (target.includePrevious).
	AnnotationPreviousVersionID = "kube-secrets-manager.io/previous-version-id"
	// AnnotationProjection on the projected Secret is a digest of the projection's shape (type,
	// labels, annotations and key names, never data), so an unchanged projection is not written
	// again.
	AnnotationProjection = "kube-secrets-manager.io/projection"
	// AnnotationMaterialFor on the rotation material names what it holds: the Job, the pending,
	// current and previous version ids, the superuser's version id and a digest of the CA bundle.
	AnnotationMaterialFor = "kube-secrets-manager.io/material-for"
	// AnnotationSpecHash on generated objects is a digest of what was applied, so an unchanged
	// object is not applied again (never computed from a value).
	AnnotationSpecHash = "kube-secrets-manager.io/spec-hash"
)

// ProjectedSecret is the Secret the AWSCURRENT version is projected into.
func ProjectedSecret(msec *v1alpha1.ManagedSecret, versionID, previousID string, data map[string][]byte) *corev1.Secret {
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
	for k, v := range OwnedLabels(msec, v1alpha1.RoleProjection) {
		labels[k] = v
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	annotations[AnnotationVersionID] = versionID
	if previousID != "" {
		annotations[AnnotationPreviousVersionID] = previousID
	}
	typ := TargetType(msec)
	shape, _ := json.Marshal([]any{typ, labels, annotations, keys})
	sum := sha256.Sum256(shape)
	annotations[AnnotationProjection] = hex.EncodeToString(sum[:16])
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: TargetName(msec), Namespace: msec.Namespace,
			Labels: labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{OwnerRef(msec)},
		},
		Type: typ,
		Data: data,
	}
}

// SecretApplyConfig is a Secret as a server-side apply configuration, with its controller owner.
func SecretApplyConfig(s *corev1.Secret) *corev1ac.SecretApplyConfiguration {
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

// MaterialSecret is the short-lived Secret a rotation pod mounts, controlled by the ManagedSecret;
// holds names what it holds (AnnotationMaterialFor).
func MaterialSecret(msec *v1alpha1.ManagedSecret, holds string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: MaterialName(msec), Namespace: msec.Namespace,
			Labels:          OwnedLabels(msec, v1alpha1.RoleRotationMaterial),
			Annotations:     map[string]string{AnnotationMaterialFor: holds},
			OwnerReferences: []metav1.OwnerReference{OwnerRef(msec)}},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}
