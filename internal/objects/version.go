package objects

import (
	"encoding/base64"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
)

// SecretVersion is a new version object: the sealed value, owned by and labelled for its
// ManagedSecret, with the given staging labels and annotations (marked deprecated when it has
// neither).
func SecretVersion(msec *v1alpha1.ManagedSecret, versionID string, labels []string, sealed envelope.Sealed, binary bool, annotations map[string]string) *v1alpha1.SecretVersion {
	valueType := v1alpha1.ValueTypeString
	if binary {
		valueType = v1alpha1.ValueTypeBinary
	}
	b64 := base64.StdEncoding
	v := &v1alpha1.SecretVersion{
		ObjectMeta: metav1.ObjectMeta{
			Name:            VersionObjectName(msec.Name, versionID),
			Namespace:       msec.Namespace,
			Labels:          OwnedLabels(msec, ""),
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{OwnerRef(msec)},
		},
		Spec: v1alpha1.SecretVersionSpec{
			ManagedSecretName: msec.Name,
			VersionID:         versionID,
			Stages:            labels,
			Payload: &v1alpha1.EncryptedPayload{
				Algorithm: sealed.Algorithm, KeyID: sealed.KeyID,
				WrappedKey: b64.EncodeToString(sealed.WrappedKey),
				Nonce:      b64.EncodeToString(sealed.Nonce),
				Ciphertext: b64.EncodeToString(sealed.Ciphertext),
				ValueType:  valueType,
				Binding:    v1alpha1.BindingV2,
			},
		},
	}
	// The store passes annotations only to mark a label change under way.
	MarkDeprecated(v, len(annotations) > 0)
	return v
}

// Binding is the identity a version's payload is bound to: format 2 (the stable id and the value
// type) unless the payload predates it (format 1: the ManagedSecret's UID).
func Binding(msec *v1alpha1.ManagedSecret, v *v1alpha1.SecretVersion) envelope.Binding {
	if v.Spec.Payload == nil || v.Spec.Payload.Binding != v1alpha1.BindingV2 {
		return envelope.Binding{Namespace: msec.Namespace, Name: msec.Name, SecretID: string(msec.UID), VersionID: v.Spec.VersionID, Format: envelope.FormatV1}
	}
	return envelope.Binding{Namespace: msec.Namespace, Name: msec.Name, SecretID: SecretID(msec), VersionID: v.Spec.VersionID,
		Binary: v.Spec.Payload.ValueType == v1alpha1.ValueTypeBinary, Format: envelope.FormatV2}
}

// NewBinding is the binding of a version about to be sealed.
func NewBinding(msec *v1alpha1.ManagedSecret, versionID string, binary bool) envelope.Binding {
	return envelope.Binding{Namespace: msec.Namespace, Name: msec.Name, SecretID: SecretID(msec), VersionID: versionID, Binary: binary, Format: envelope.FormatV2}
}

// Sealed is a version's payload as envelope.Sealed; ok is false when it is missing or malformed.
func Sealed(v *v1alpha1.SecretVersion) (envelope.Sealed, bool) {
	p := v.Spec.Payload
	if p == nil {
		return envelope.Sealed{}, false
	}
	b64 := base64.StdEncoding
	wrapped, err1 := b64.DecodeString(p.WrappedKey)
	nonce, err2 := b64.DecodeString(p.Nonce)
	ct, err3 := b64.DecodeString(p.Ciphertext)
	if err1 != nil || err2 != nil || err3 != nil {
		return envelope.Sealed{}, false
	}
	return envelope.Sealed{Algorithm: p.Algorithm, KeyID: p.KeyID, WrappedKey: wrapped, Nonce: nonce, Ciphertext: ct}, true
}

// MarkDeprecated sets LabelDeprecated exactly when the version has no staging label and busy is
// false (busy: a label change involving it is under way), and removes it otherwise. It reports
// whether the version is now marked.
func MarkDeprecated(v *v1alpha1.SecretVersion, busy bool) bool {
	deprecated := len(v.Spec.Stages) == 0 && !busy
	if deprecated {
		if v.Labels == nil {
			v.Labels = map[string]string{}
		}
		v.Labels[v1alpha1.LabelDeprecated] = v1alpha1.DeprecatedValue
	} else {
		delete(v.Labels, v1alpha1.LabelDeprecated)
	}
	return deprecated
}

// IsMarkedDeprecated reports whether the version carries LabelDeprecated.
func IsMarkedDeprecated(v metav1.Object) bool {
	return v.GetLabels()[v1alpha1.LabelDeprecated] == v1alpha1.DeprecatedValue
}
