package controllers

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// canarySource creates a Secret holding a unique canary value and a ManagedSecret importing it.
func canarySource(t *testing.T, ns, name string) string {
	t.Helper()
	canary := fmt.Sprintf("CANARY-%s-%d", name, len(ns)*7919)
	ctx := context.Background()
	src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-src", Annotations: importConsent(name)},
		Data: map[string][]byte{"password": []byte(canary)}}
	if err := k8s.Create(ctx, src); err != nil {
		t.Fatal(err)
	}
	m := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ManagedSecretSpec{FromSecret: &v1alpha1.LocalObjectReference{Name: name + "-src"}}}
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	return canary
}

// replaceVersion stands in for someone with write access to etcd or the API: the payload is
// immutable through updates, so the version is deleted and re-created with changed bytes.
func replaceVersion(t *testing.T, v *v1alpha1.SecretVersion, change func(p *v1alpha1.EncryptedPayload)) {
	t.Helper()
	ctx := context.Background()
	forged := &v1alpha1.SecretVersion{
		ObjectMeta: metav1.ObjectMeta{Namespace: v.Namespace, Name: v.Name, Labels: v.Labels, OwnerReferences: v.OwnerReferences},
		Spec:       *v.Spec.DeepCopy(),
	}
	change(forged.Spec.Payload)
	if err := k8s.Delete(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, forged); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedVersionFailsClosed(t *testing.T) {
	flip := func(enc string, i int) string {
		c, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			t.Fatal(err)
		}
		c[i%len(c)] ^= 0x20
		return base64.StdEncoding.EncodeToString(c)
	}

	// A payload from another ManagedSecret, to copy in.
	donorNS := newNamespace(t)
	canarySource(t, donorNS, "donor")
	waitReady(t, donorNS, "donor", metav1.ConditionTrue, v1alpha1.ReasonReady)
	donor := versions(t, donorNS)[0].Spec.Payload

	tests := []struct {
		name   string
		change func(p *v1alpha1.EncryptedPayload)
	}{
		{"ciphertext byte", func(p *v1alpha1.EncryptedPayload) { p.Ciphertext = flip(p.Ciphertext, 5) }},
		{"nonce byte", func(p *v1alpha1.EncryptedPayload) { p.Nonce = flip(p.Nonce, 2) }},
		{"wrapped key byte", func(p *v1alpha1.EncryptedPayload) { p.WrappedKey = flip(p.WrappedKey, 30) }},
		{"key id", func(p *v1alpha1.EncryptedPayload) { p.KeyID = "key-999" }},
		{"payload of another secret", func(p *v1alpha1.EncryptedPayload) { *p = *donor.DeepCopy() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNamespace(t)
			canary := canarySource(t, ns, "victim")
			waitReady(t, ns, "victim", metav1.ConditionTrue, v1alpha1.ReasonReady)
			before, _ := secret(t, ns, "victim")
			v := versions(t, ns)[0]

			replaceVersion(t, &v, tt.change)
			// A forged version left behind would hold up later key rotations' re-wrap.
			t.Cleanup(func() { deleteAndWait(t, ns, "victim") })
			m := waitReady(t, ns, "victim", metav1.ConditionFalse, v1alpha1.ReasonDecryptionFailed)

			after, _ := secret(t, ns, "victim")
			if string(after.Data["password"]) != canary || after.ResourceVersion != before.ResourceVersion {
				t.Fatal("the projected Secret lost its last good data")
			}
			forged := versions(t, ns)[0].Spec.Payload
			msg := readyOf(m).Message
			for _, leak := range []string{canary, forged.Ciphertext, forged.WrappedKey} {
				if strings.Contains(msg, leak) {
					t.Fatalf("condition message leaks %q", leak)
				}
			}
			if !strings.Contains(msg, "failed authentication") {
				t.Fatalf("message %q", msg)
			}
		})
	}
}

func TestVanishedVersionsAreNotReplacedByANewValue(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "kept"))
	before, _ := secret(t, ns, "kept")
	v := versions(t, ns)[0]
	if err := k8s.Delete(ctx, &v); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "kept", metav1.ConditionFalse, v1alpha1.ReasonVersionsMissing)
	// Reconcile again and again, as retries and resyncs would: still no invented value.
	r := testReconciler(t)
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "kept"}}); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := secret(t, ns, "kept")
	if !bytes.Equal(after.Data["password"], before.Data["password"]) {
		t.Fatal("the projected Secret changed")
	}
	if n := len(versions(t, ns)); n != 0 {
		t.Fatalf("a new version was invented: %d", n)
	}
	if got := getMsec(t, ns, "kept"); got.Status.CurrentVersionID != m.Status.CurrentVersionID || readyOf(got).Reason != v1alpha1.ReasonVersionsMissing {
		t.Fatalf("status lost the missing version: %+v", got.Status)
	}
}

// deleteAndWait deletes a ManagedSecret and waits until its versions are gone.
func deleteAndWait(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Delete(ctx, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, name+"'s versions deleted", func() error {
		if n := len(versions(t, ns)); n > 0 {
			return fmt.Errorf("%d versions left", n)
		}
		return nil
	})
}
