package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// canaryPrefix starts every value the tests plant; it must never show up outside the projected
// Secret and the test's own source Secrets. This file runs last, so the scan also covers what
// every earlier test made the operator write.
const canaryPrefix = "CANARY-"

func TestNoValueLeaksIntoLogsEventsOrStatus(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)

	// A few more failure paths that carry a canary value.
	big := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "big"},
		Data: map[string][]byte{"blob": []byte(canaryPrefix + strings.Repeat("y", 70000))}}
	if err := k8s.Create(ctx, big); err != nil {
		t.Fatal(err)
	}
	tooBig := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "too-big"},
		Spec: v1alpha1.ManagedSecretSpec{FromSecret: &v1alpha1.LocalObjectReference{Name: "big"}}}
	if err := k8s.Create(ctx, tooBig); err != nil {
		t.Fatal(err)
	}
	badKey := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-key"},
		Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{Fields: map[string]string{"not a key": canaryPrefix + "field"}}}}
	if err := k8s.Create(ctx, badKey); err != nil {
		t.Fatal(err)
	}
	clash := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "clash"},
		Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{Fields: map[string]string{"password": canaryPrefix + "clash"}}}}
	if err := k8s.Create(ctx, clash); err != nil {
		t.Fatal(err)
	}
	canarySource(t, ns, "fine")
	waitReady(t, ns, "too-big", metav1.ConditionFalse, v1alpha1.ReasonValueTooLarge)
	waitReady(t, ns, "bad-key", metav1.ConditionFalse, v1alpha1.ReasonInvalidSource)
	waitReady(t, ns, "clash", metav1.ConditionFalse, v1alpha1.ReasonInvalidSource)
	waitReady(t, ns, "fine", metav1.ConditionTrue, v1alpha1.ReasonReady)
	if sec, _ := secret(t, ns, "fine"); !bytes.HasPrefix(sec.Data["password"], []byte(canaryPrefix)) {
		t.Fatal("the canary did not reach the projected Secret, so the scan would prove nothing")
	}

	// Everything the operator wrote except Secret data: logs, Events, ManagedSecrets (status),
	// SecretVersions (payloads are ciphertext).
	if i := strings.Index(logs.String(), canaryPrefix); i >= 0 {
		t.Fatalf("a value is in the operator's log: %q", logs.String()[max(0, i-200):i+20])
	}
	if !strings.Contains(logs.String(), "Reconcil") {
		t.Fatal("the log capture is empty, so the scan would prove nothing")
	}
	scan := func(what string, list client.ObjectList) {
		if err := k8s.List(ctx, list); err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(canaryPrefix)) {
			t.Fatalf("a value is in %s", what)
		}
	}
	scan("Events", &eventsv1.EventList{})
	scan("core Events", &corev1.EventList{})
	// generate.fields are non-secret by design (two tests above plant canaries there to reach
	// error paths), so ManagedSecrets are checked by their status.
	msecs := &v1alpha1.ManagedSecretList{}
	if err := k8s.List(ctx, msecs); err != nil {
		t.Fatal(err)
	}
	for _, m := range msecs.Items {
		raw, _ := json.Marshal(m.Status)
		if bytes.Contains(raw, []byte(canaryPrefix)) {
			t.Fatalf("a value is in the status of %s/%s", m.Namespace, m.Name)
		}
	}
	scan("SecretVersions", &v1alpha1.SecretVersionList{})
}
