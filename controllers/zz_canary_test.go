package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
	big := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "big", Annotations: importConsent("too-big")},
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

	// Every value the suite projected (generated passwords included) plus the planted canaries, in
	// the forms a leak could take: raw, base64 (zap and JSON encode []byte that way, at any of
	// three offsets), hex, and SHA-256 hex.
	var values []string
	projected := &corev1.SecretList{}
	if err := k8s.List(ctx, projected, client.MatchingLabels{v1alpha1.LabelRole: v1alpha1.RoleProjection}); err != nil {
		t.Fatal(err)
	}
	for _, sec := range projected.Items {
		for k, v := range sec.Data {
			if k == "password" || bytes.HasPrefix(v, []byte(canaryPrefix)) {
				values = append(values, string(v))
			}
		}
	}
	if len(values) < 5 {
		t.Fatalf("only %d projected values found, so the scan would prove little", len(values))
	}
	needles := []string{canaryPrefix}
	for _, v := range values {
		needles = append(needles, leakForms(v)...)
	}
	haystacks := map[string]string{"the operator's log": logs.String()}
	collect := func(what string, list client.ObjectList) {
		if err := k8s.List(ctx, list); err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		haystacks[what] = string(raw)
	}
	collect("Events", &eventsv1.EventList{})
	collect("core Events", &corev1.EventList{})
	collect("SecretVersions", &v1alpha1.SecretVersionList{})
	// generate.fields are non-secret by design (two tests above plant canaries there to reach
	// error paths), so ManagedSecrets are checked by their status.
	msecs := &v1alpha1.ManagedSecretList{}
	if err := k8s.List(ctx, msecs); err != nil {
		t.Fatal(err)
	}
	var statuses []byte
	for _, m := range msecs.Items {
		raw, _ := json.Marshal(m.Status)
		statuses = append(statuses, raw...)
	}
	haystacks["ManagedSecret statuses"] = string(statuses)
	if !strings.Contains(haystacks["the operator's log"], "Reconcil") {
		t.Fatal("the log capture is empty, so the scan would prove nothing")
	}
	for what, hay := range haystacks {
		for _, n := range needles {
			if len(n) >= 8 && strings.Contains(hay, n) {
				t.Fatalf("a value (in some encoding) is in %s", what)
			}
		}
	}
}

// leakForms are the encodings of v a careless log line or field could carry.
func leakForms(v string) []string {
	out := []string{v, hex.EncodeToString([]byte(v))}
	sum := sha256.Sum256([]byte(v))
	out = append(out, hex.EncodeToString(sum[:]))
	for offset := 0; offset < 3 && offset < len(v); offset++ {
		enc := base64.StdEncoding.EncodeToString([]byte(v[offset:]))
		// Drop the last block, which depends on what follows in the encoded stream.
		if len(enc) > 8 {
			out = append(out, enc[:len(enc)-4])
		}
	}
	return out
}
