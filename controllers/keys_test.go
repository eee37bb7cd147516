package controllers

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// Key custody on the suite's operator: rotation on request with every version re-wrapped and
// unchanged, retirement only of keys nothing uses, the first binding format migrated, and the
// keyring Secret deleted (written back) or replaced (reported, never adopted).

func keyStatus(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: suiteOpts.Namespace, Name: KeyStatusConfigMap}, cm); err != nil {
		t.Fatal(err)
	}
	return cm
}

func annotateKeyStatus(t *testing.T, key, value string) {
	t.Helper()
	eventually(t, "the key status ConfigMap exists", func() error {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: suiteOpts.Namespace, Name: KeyStatusConfigMap}, cm); err != nil {
			return err
		}
		patch := client.MergeFrom(cm.DeepCopy())
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[key] = value
		return k8s.Patch(context.Background(), cm, patch)
	})
}

func storedRing(t *testing.T) *keyring.Keyring {
	t.Helper()
	ring, err := (KeyringStore{Client: k8s, Namespace: suiteOpts.Namespace, Name: suiteOpts.KeyringSecret}).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// openAll opens every version in ns with the stored keyring and returns the values by version id.
func openAll(t *testing.T, ns string) map[string]string {
	t.Helper()
	kp := testKeys(t)
	out := map[string]string{}
	for _, v := range versions(t, ns) {
		m := getMsec(t, ns, v.Spec.ManagedSecretName)
		sealed, ok := objects.Sealed(&v)
		if !ok {
			t.Fatalf("version %s has no payload", v.Name)
		}
		plain, err := envelope.Open(context.Background(), kp, objects.Binding(m, &v), sealed)
		if err != nil {
			t.Fatalf("version %s does not open: %v", v.Name, err)
		}
		out[v.Spec.VersionID] = string(plain)
	}
	return out
}

func TestKeyRotationRewrapsEveryVersionAndRetiresTheOldKey(t *testing.T) {
	ns := newNamespace(t)
	for i := range 5 {
		createReady(t, generated(ns, fmt.Sprintf("app-%d", i)))
	}
	// Deprecated versions, which the operator's cache leaves out, are re-wrapped too.
	m0, r := getMsec(t, ns, "app-0"), testReconciler(t)
	for i := range 3 {
		sv, err := r.sealVersion(context.Background(), m0, fmt.Sprintf("dddddddd-1111-4000-8000-%012d", i), nil, []byte(fmt.Sprintf(`{"n":"%sdeprecated-%d"}`, canaryPrefix, i)))
		if err != nil {
			t.Fatal(err)
		}
		if sv.Labels[v1alpha1.LabelDeprecated] != v1alpha1.DeprecatedValue {
			t.Fatal("a version without stages is not labelled deprecated")
		}
		if err := k8s.Create(context.Background(), sv); err != nil {
			t.Fatal(err)
		}
	}
	// An access key is sealed with the keyring too.
	apiServiceAccount(t, ns, "ci", "secretsmanager-reader")
	accessKeyFor(t, ns, "ci-key", "ci")
	before := openAll(t, ns)
	old := storedRing(t).Primary

	annotateKeyStatus(t, AnnotationRotateKeyRequestedAt, time.Now().Format(time.RFC3339Nano))
	var primary string
	eventually(t, "a new primary key", func() error {
		if primary = storedRing(t).Primary; primary == old {
			return errors.New("the primary key did not change")
		}
		return nil
	})
	eventually(t, "every sealed object re-wrapped onto "+primary, func() error {
		for _, v := range versions(t, ns) {
			if v.Spec.Payload.KeyID != primary {
				return fmt.Errorf("version %s is on %s", v.Name, v.Spec.Payload.KeyID)
			}
		}
		ak := &v1alpha1.AccessKey{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "ci-key"}, ak); err != nil {
			return err
		}
		if ak.Status.SealedSecret.KeyID != primary {
			return fmt.Errorf("the access key is on %s", ak.Status.SealedSecret.KeyID)
		}
		// Other tests' namespaces may hold versions forged on purpose, which never move; the
		// status names the primary and counts nothing of this namespace as left.
		if cm := keyStatus(t); cm.Data[KeyStatusPrimary] != primary || cm.Data[KeyStatusRemaining] != cm.Data[KeyStatusFailing] {
			return fmt.Errorf("status: %v", cm.Data)
		}
		return nil
	})
	after := openAll(t, ns)
	if len(after) != len(before) {
		t.Fatalf("%d versions before, %d after", len(before), len(after))
	}
	for id, v := range before {
		if after[id] != v {
			t.Fatalf("version %s changed value in the re-wrap", id)
		}
	}
	// The API's session key was re-wrapped too: new web-identity sessions still work.
	apiServiceAccount(t, ns, "app", "secretsmanager-reader")
	if _, err := webIdentityClient(t, ns, "app").ListSecrets(context.Background(), nil); err != nil {
		t.Fatalf("the API after the rotation: %v", err)
	}

	// Retire the old key (nothing uses it) and the primary (refused).
	annotateKeyStatus(t, AnnotationRetireKeys, old+","+primary)
	eventually(t, "the old key retired", func() error {
		ring := storedRing(t)
		if slices.Contains(ring.KeyIDs(), old) || !slices.Contains(ring.Retired, old) {
			return fmt.Errorf("keys %v, retired %v", ring.KeyIDs(), ring.Retired)
		}
		if !strings.Contains(keyStatus(t).Data[KeyStatusMessage], "not retired: "+primary) {
			return fmt.Errorf("message %q", keyStatus(t).Data[KeyStatusMessage])
		}
		return nil
	})
	annotateKeyStatus(t, AnnotationRetireKeys, "")
	openAll(t, ns)
	// New versions are on the new key; key ids are never reused.
	createReady(t, generated(ns, "later"))
	for _, v := range versions(t, ns) {
		if v.Spec.Payload.KeyID != primary {
			t.Fatalf("a new version is on %s", v.Spec.Payload.KeyID)
		}
	}
	annotateKeyStatus(t, AnnotationRotateKeyRequestedAt, time.Now().Add(time.Second).Format(time.RFC3339Nano))
	eventually(t, "a third key", func() error {
		ring := storedRing(t)
		if ring.Primary == primary {
			return errors.New("not rotated")
		}
		if ring.Primary == old {
			return errors.New("a retired key id was reused")
		}
		return nil
	})
}

func TestFirstFormatVersionsMoveToBindingV2(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "legacy"))
	v := versions(t, ns)[0]
	want := openAll(t, ns)[v.Spec.VersionID]
	// Re-seal the value as a version written before binding v2 was (bound to the UID).
	sealed, err := envelope.Seal(ctx, testKeys(t), "", envelope.Binding{Namespace: ns, Name: m.Name, SecretID: string(m.UID), VersionID: v.Spec.VersionID, Format: envelope.FormatV1}, []byte(want))
	if err != nil {
		t.Fatal(err)
	}
	replaceVersion(t, &v, func(p *v1alpha1.EncryptedPayload) {
		b64 := base64.StdEncoding
		*p = v1alpha1.EncryptedPayload{Algorithm: sealed.Algorithm, KeyID: sealed.KeyID, WrappedKey: b64.EncodeToString(sealed.WrappedKey),
			Nonce: b64.EncodeToString(sealed.Nonce), Ciphertext: b64.EncodeToString(sealed.Ciphertext)}
	})
	eventually(t, "the version moved to binding v2", func() error {
		got := versions(t, ns)
		if len(got) != 1 || got[0].Spec.Payload.Binding != v1alpha1.BindingV2 || got[0].Spec.Payload.ValueType != v1alpha1.ValueTypeString {
			return fmt.Errorf("payload %+v", got[0].Spec.Payload)
		}
		return nil
	})
	if got := openAll(t, ns)[v.Spec.VersionID]; got != want {
		t.Fatal("the migrated version's value changed")
	}
	waitReady(t, ns, "legacy", metav1.ConditionTrue, v1alpha1.ReasonReady)
}

func TestKeyringDeletedIsWrittenBackAndReplacedIsNotAdopted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReady(t, generated(ns, "before"))
	orig := &corev1.Secret{}
	key := types.NamespacedName{Namespace: suiteOpts.Namespace, Name: suiteOpts.KeyringSecret}
	if err := k8s.Get(ctx, key, orig); err != nil {
		t.Fatal(err)
	}
	inUse := storedRing(t)

	// Deleted: written back from memory, same keys, with a Warning Event.
	if err := k8s.Delete(ctx, orig); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the keyring written back", func() error {
		sec := &corev1.Secret{}
		if err := k8s.Get(ctx, key, sec); err != nil {
			return err
		}
		ring, err := keyring.Parse(sec.Data[keyring.DataKey])
		if err != nil {
			return err
		}
		if err := keyring.Successor(inUse, ring); err != nil || ring.Primary != inUse.Primary {
			return fmt.Errorf("another keyring: %v", err)
		}
		return nil
	})
	eventually(t, "a KeyringRestored Event", func() error {
		if !hasEvent(t, suiteOpts.Namespace, reasonRingRestored) {
			return errors.New("no Event")
		}
		return nil
	})

	// Replaced by a fresh keyring: reported, not adopted; the operator keeps working with the
	// keys in memory.
	fresh, err := keyring.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := fresh.Marshal()
	sec := &corev1.Secret{}
	if err := k8s.Get(ctx, key, sec); err != nil {
		t.Fatal(err)
	}
	good := sec.Data[keyring.DataKey]
	sec.Data[keyring.DataKey] = data
	if err := k8s.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replacement reported", func() error {
		if msg := keyStatus(t).Data[KeyStatusMessage]; !strings.Contains(msg, "replaced") {
			return fmt.Errorf("message %q", msg)
		}
		if !hasEvent(t, suiteOpts.Namespace, reasonRingReplaced) {
			return errors.New("no KeyringReplaced Event")
		}
		return nil
	})
	m := createReady(t, generated(ns, "during"))
	for _, v := range versions(t, ns) {
		if v.Spec.Payload.KeyID != inUse.Primary {
			t.Fatalf("version %s is on %s, not the key in use", v.Name, v.Spec.Payload.KeyID)
		}
	}
	_ = m
	// Restored from the backup: the report clears.
	if err := k8s.Get(ctx, key, sec); err != nil {
		t.Fatal(err)
	}
	sec.Data[keyring.DataKey] = good
	if err := k8s.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the report cleared", func() error {
		if msg := keyStatus(t).Data[KeyStatusMessage]; strings.Contains(msg, "replaced") {
			return fmt.Errorf("message %q", msg)
		}
		return nil
	})
}
