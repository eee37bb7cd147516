package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretVersionSpec is one encrypted version of a ManagedSecret. Only the operator writes it.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.payload) || has(self.payload)",message="payload cannot be removed"
type SecretVersionSpec struct {
	// managedSecretName is the ManagedSecret this version belongs to (also its controller owner).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="managedSecretName is immutable"
	ManagedSecretName string `json:"managedSecretName"`

	// versionId is AWS's VersionId: the ClientRequestToken that created the version, 32-64 characters.
	// +required
	// +kubebuilder:validation:MinLength=32
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="versionId is immutable"
	VersionID string `json:"versionId"`

	// stages are the staging labels attached to this version (none means deprecated).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	Stages []string `json:"stages,omitempty"`

	// payload is the encrypted value. The value never changes once written: only its data key
	// may be re-wrapped under another key-encryption key (keyId and wrappedKey, when keys rotate),
	// and a payload of the first binding format may move once to binding v2 (re-sealed, same value).
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf || (!has(oldSelf.binding) && has(self.binding)) || (self.algorithm == oldSelf.algorithm && self.nonce == oldSelf.nonce && self.ciphertext == oldSelf.ciphertext && has(self.valueType) == has(oldSelf.valueType) && (!has(self.valueType) || self.valueType == oldSelf.valueType) && has(self.binding) == has(oldSelf.binding))",message="payload is immutable: only its data key may be re-wrapped (keyId, wrappedKey), or a first-format payload moved to binding v2"
	Payload *EncryptedPayload `json:"payload,omitempty"`
}

// EncryptedPayload is an envelope-encrypted value: the value sealed with a fresh data key, and the
// data key wrapped by a key-encryption key.
type EncryptedPayload struct {
	// algorithm of the value's encryption.
	// +required
	// +kubebuilder:validation:Enum=AES-256-GCM
	Algorithm string `json:"algorithm"`
	// keyId names the key-encryption key that wrapped the data key.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	KeyID string `json:"keyId"`
	// wrappedKey is the data key, encrypted by the key-encryption key (standard base64). The
	// payload fields are base64 strings rather than bytes: the API server's CEL evaluation of
	// byte fields in transition rules rejects standard base64 (it decodes them as URL-safe).
	// +required
	// +kubebuilder:validation:MaxLength=1024
	WrappedKey string `json:"wrappedKey"`
	// nonce of the value's AES-GCM encryption (standard base64).
	// +required
	// +kubebuilder:validation:MaxLength=64
	Nonce string `json:"nonce"`
	// ciphertext of the value with its authentication tag (standard base64).
	// +required
	// +kubebuilder:validation:MaxLength=100000
	Ciphertext string `json:"ciphertext"`
	// valueType is String (AWS's SecretString) or Binary (SecretBinary); absent means String.
	// It is bound into the authentication data, so a value is read back as the kind it was put.
	// +optional
	// +kubebuilder:validation:Enum=String;Binary
	ValueType string `json:"valueType,omitempty"`
	// binding is the format of the authenticated binding: v2 binds namespace, name, the
	// secret's stable id, version id and value type. Absent on versions written before v2, which
	// bound the ManagedSecret's UID instead.
	// +optional
	// +kubebuilder:validation:Enum=v2
	Binding string `json:"binding,omitempty"`
}

// Value types of a version.
const (
	ValueTypeString = "String"
	ValueTypeBinary = "Binary"
	BindingV2       = "v2"
)

// SecretVersion is one encrypted version of a ManagedSecret and its staging labels.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=secver;secversion;secversions,categories=secretsmanager
// +kubebuilder:printcolumn:name="ManagedSecret",type=string,JSONPath=`.spec.managedSecretName`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.versionId`
// +kubebuilder:printcolumn:name="Stages",type=string,JSONPath=`.spec.stages`
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.spec.payload.keyId`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SecretVersion struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the version.
	// +required
	Spec SecretVersionSpec `json:"spec"`
}

// SecretVersionList is a list of SecretVersions.
// +kubebuilder:object:root=true
type SecretVersionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretVersion `json:"items"`
}

func init() {
	register(&SecretVersion{}, &SecretVersionList{})
}
