package store

import (
	"context"
	"encoding/base64"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// Re-wrapping keeps a version's value and moves its data key to another key-encryption key (when
// keys rotate), and moves a payload of the first binding format (bound to the ManagedSecret's UID,
// which a restore changes) to binding v2 (bound to the stable id). It runs beside the secret's
// reconcile, so it patches under the version's resourceVersion: a label write racing it makes one
// of them fail and retry, never interleave.

// NeedsRewrap reports whether a version is not yet on the primary key or binding v2.
func NeedsRewrap(v *v1alpha1.SecretVersion, primary string) bool {
	p := v.Spec.Payload
	return p != nil && (p.KeyID != primary || p.Binding != v1alpha1.BindingV2)
}

// Rewrap brings a version of owner to the key keyRef ("" for the provider's primary) and binding
// v2. The value is opened (and authenticated) on the way, so a tampered version is refused, not
// re-wrapped.
func (st *Store) Rewrap(ctx context.Context, owner *v1alpha1.ManagedSecret, v *v1alpha1.SecretVersion, keyRef string) error {
	if !objects.PayloadCached(v) && v.Spec.Payload != nil {
		full, err := st.fullVersion(ctx, v)
		if err != nil {
			return err
		}
		v = full
	}
	sealed, ok := objects.Sealed(v)
	if !ok || v.Spec.ManagedSecretName != owner.Name || !objects.IsControlledBy(v, owner) {
		return decryptionFailure(v.Spec.VersionID)
	}
	b := objects.Binding(owner, v)
	orig := v.DeepCopy()
	b64 := base64.StdEncoding
	if b.Format == envelope.FormatV1 {
		plain, err := envelope.Open(ctx, st.Keys, b, sealed)
		if err != nil {
			return openFailure(v.Spec.VersionID, err)
		}
		next, err := envelope.Seal(ctx, st.Keys, keyRef, objects.NewBinding(owner, v.Spec.VersionID, false), plain)
		clear(plain)
		if err != nil {
			return err
		}
		v.Spec.Payload = &v1alpha1.EncryptedPayload{Algorithm: next.Algorithm, KeyID: next.KeyID,
			WrappedKey: b64.EncodeToString(next.WrappedKey), Nonce: b64.EncodeToString(next.Nonce),
			Ciphertext: b64.EncodeToString(next.Ciphertext), ValueType: v1alpha1.ValueTypeString, Binding: v1alpha1.BindingV2}
	} else {
		// Open first: a payload whose value does not authenticate is not given a fresh wrapping.
		plain, err := envelope.Open(ctx, st.Keys, b, sealed)
		if err != nil {
			return openFailure(v.Spec.VersionID, err)
		}
		clear(plain)
		next, err := envelope.Rewrap(ctx, st.Keys, keyRef, b, sealed)
		if err != nil {
			return err
		}
		v.Spec.Payload.KeyID, v.Spec.Payload.WrappedKey = next.KeyID, b64.EncodeToString(next.WrappedKey)
	}
	return st.Client.Patch(ctx, v, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldManager))
}

// openFailure keeps a provider outage apart from a payload that does not authenticate.
func openFailure(versionID string, err error) error {
	if envelope.IsUnavailable(err) {
		return err
	}
	return decryptionFailure(versionID)
}
