package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AccessKeySpec is a static access key for the AWS-compatible API, for tools outside the cluster
// (the aws CLI, CI jobs). It acts as a ServiceAccount of its own namespace: every call it signs is
// authorised as that ServiceAccount, so the key reaches what the ServiceAccount may reach and
// nothing more. Creating one takes the right to mint tokens for that ServiceAccount (an admission
// policy checks it).
// +kubebuilder:validation:XValidation:rule="self.serviceAccountName == oldSelf.serviceAccountName",message="serviceAccountName is immutable: create another key"
// +kubebuilder:validation:XValidation:rule="has(self.recipientPublicKey) == has(oldSelf.recipientPublicKey) && (!has(self.recipientPublicKey) || self.recipientPublicKey == oldSelf.recipientPublicKey)",message="recipientPublicKey is immutable"
type AccessKeySpec struct {
	// serviceAccountName is the identity the key acts as.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName"`

	// recipientPublicKey is an X25519 public key (standard base64) of whoever creates the key:
	// the secret access key is delivered in status encrypted to it, so it never exists in the
	// cluster in plaintext. `kubectl secrets-manager create-access-key` sets and uses it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	RecipientPublicKey string `json:"recipientPublicKey,omitempty"`

	// disabled revokes the key without deleting it (AWS's Inactive); deleting the AccessKey
	// revokes it for good.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// description of what the key is for.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
}

// SealedKey is the secret access key sealed with the operator's keyring (for verifying
// signatures), as a version's payload is.
type SealedKey struct {
	// keyId names the key-encryption key.
	KeyID string `json:"keyId"`
	// wrappedKey, nonce and ciphertext (standard base64).
	WrappedKey string `json:"wrappedKey"`
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

// DeliveredKey is the secret access key encrypted to spec.recipientPublicKey (X25519 + HKDF +
// AES-256-GCM), for its creator to open once.
type DeliveredKey struct {
	// ephemeralPublicKey of the operator's side of the exchange (standard base64).
	EphemeralPublicKey string `json:"ephemeralPublicKey"`
	Nonce              string `json:"nonce"`
	Ciphertext         string `json:"ciphertext"`
}

// AccessKeyStatus is the issued key.
type AccessKeyStatus struct {
	// conditions: Ready (issued and active).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// accessKeyId is the key's id (AWS's AKIA… form); it is never reused.
	// +optional
	AccessKeyID string `json:"accessKeyId,omitempty"`
	// sealedSecret is the secret access key, sealed with the keyring.
	// +optional
	SealedSecret *SealedKey `json:"sealedSecret,omitempty"`
	// delivered is the secret access key encrypted to the creator's public key.
	// +optional
	Delivered *DeliveredKey `json:"delivered,omitempty"`
	// createdTime is when the key was issued.
	// +optional
	CreatedTime *metav1.Time `json:"createdTime,omitempty"`
	// serviceAccountUID is the UID of the ServiceAccount the key was issued for: calls signed with
	// the key are refused once that ServiceAccount is gone, also when one of the same name is made
	// again (empty for keys issued before it was recorded: then the name alone is checked).
	// +optional
	ServiceAccountUID string `json:"serviceAccountUID,omitempty"`
}

// AccessKey is a static access key for the AWS-compatible API, acting as a ServiceAccount.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ak,categories=secretsmanager
// +kubebuilder:printcolumn:name="ServiceAccount",type=string,JSONPath=`.spec.serviceAccountName`
// +kubebuilder:printcolumn:name="AccessKeyId",type=string,JSONPath=`.status.accessKeyId`
// +kubebuilder:printcolumn:name="Disabled",type=boolean,JSONPath=`.spec.disabled`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AccessKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec AccessKeySpec `json:"spec"`

	// status is the issued key.
	// +optional
	Status AccessKeyStatus `json:"status,omitempty"`
}

// AccessKeyList is a list of AccessKeys.
// +kubebuilder:object:root=true
type AccessKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AccessKey `json:"items"`
}

func init() {
	register(&AccessKey{}, &AccessKeyList{})
}
