package controllers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

func generated(ns, name string) *v1alpha1.ManagedSecret {
	length := int32(24)
	return &v1alpha1.ManagedSecret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ManagedSecretSpec{
			Description: "orders database",
			Tags:        []v1alpha1.Tag{{Key: "team", Value: "payments"}},
			Generate: &v1alpha1.GenerateSource{
				Fields:         map[string]string{"engine": "postgres", "host": "db.internal", "port": "5432", "username": "orders", "dbname": "orders"},
				PasswordPolicy: &v1alpha1.PasswordPolicy{PasswordLength: &length},
			},
		},
	}
}

func TestGenerateBecomesEncryptedVersionAndProjectedSecret(t *testing.T) {
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "orders-db"))

	vs := versions(t, ns)
	if len(vs) != 1 {
		t.Fatalf("want one version, got %d", len(vs))
	}
	v := vs[0]
	if strings.Join(v.Spec.Stages, ",") != v1alpha1.StageCurrent || v.Spec.VersionID != m.Status.CurrentVersionID || v.Spec.ManagedSecretName != "orders-db" {
		t.Fatalf("version %+v, status current %s", v.Spec, m.Status.CurrentVersionID)
	}
	if c := metav1.GetControllerOf(&v); c == nil || c.UID != m.UID {
		t.Fatal("version is not owned by its ManagedSecret")
	}

	sec, err := secret(t, ns, "orders-db")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"engine": "postgres", "host": "db.internal", "port": "5432", "username": "orders", "dbname": "orders"}
	for k, w := range want {
		if string(sec.Data[k]) != w {
			t.Errorf("key %s = %q, want %q", k, sec.Data[k], w)
		}
	}
	pw := sec.Data["password"]
	if len(pw) != 24 {
		t.Fatalf("password has %d characters, want 24", len(pw))
	}
	ct, err := base64.StdEncoding.DecodeString(v.Spec.Payload.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, pw) || bytes.Contains(ct, []byte("db.internal")) {
		t.Fatal("the stored payload is not ciphertext")
	}
	if v.Spec.Payload.Algorithm != "AES-256-GCM" || v.Spec.Payload.KeyID == "" || len(v.Spec.Payload.WrappedKey) == 0 {
		t.Fatalf("payload header %+v", v.Spec.Payload.Algorithm)
	}
	if c := metav1.GetControllerOf(sec); c == nil || c.UID != m.UID || c.Kind != "ManagedSecret" {
		t.Fatalf("projected Secret owner %+v", c)
	}
	if sec.Labels[v1alpha1.LabelManagedSecretUID] != string(m.UID) || sec.Annotations[objects.AnnotationVersionID] != v.Spec.VersionID {
		t.Fatalf("projected Secret metadata %v %v", sec.Labels, sec.Annotations)
	}
	// Created by the operator (server-side apply ownership is taken with the first change, so a
	// new secret costs one write for its projection).
	if !hasFieldManager(sec.ManagedFields, FieldManager, metav1.ManagedFieldsOperationUpdate) {
		t.Fatalf("projected Secret not written by %s: %+v", FieldManager, sec.ManagedFields)
	}
	if !strings.HasPrefix(m.Status.ID, "arn:kubernetes:secretsmanager:local:"+ns+":secret:orders-db-") || len(m.Status.ID) != len("arn:kubernetes:secretsmanager:local:"+ns+":secret:orders-db-")+6 {
		t.Fatalf("id %q", m.Status.ID)
	}
	if len(m.Status.Versions) != 1 || m.Status.LastChangedTime == nil || m.Status.TargetSecretName != "orders-db" {
		t.Fatalf("status %+v", m.Status)
	}
	// A new secret's first version and projection are in its status, not in Events: four writes
	// in all (finalizer, version, projected Secret, status).
	for _, e := range eventsFor(t, ns) {
		if e.Regarding.UID == m.UID {
			t.Fatalf("a new secret recorded an Event: %s %s", e.Reason, e.Note)
		}
	}
}

func hasFieldManager(fields []metav1.ManagedFieldsEntry, manager string, op metav1.ManagedFieldsOperationType) bool {
	for _, f := range fields {
		if f.Manager == manager && f.Operation == op {
			return true
		}
	}
	return false
}

func TestIdleReconcileWritesNothing(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "idle"))
	sec, _ := secret(t, ns, "idle")
	v := versions(t, ns)[0]

	// Run the reconciler by hand, as a restart or resync would, against the API server.
	r := testReconciler(t)
	for i := 0; i < 3; i++ {
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "idle"}}); err != nil {
			t.Fatal(err)
		}
	}
	m2 := getMsec(t, ns, "idle")
	sec2, _ := secret(t, ns, "idle")
	v2 := versions(t, ns)
	if m2.Status.ID != m.Status.ID {
		t.Fatalf("the id changed: %s -> %s", m.Status.ID, m2.Status.ID)
	}
	if m2.ResourceVersion != m.ResourceVersion || sec2.ResourceVersion != sec.ResourceVersion || len(v2) != 1 || v2[0].ResourceVersion != v.ResourceVersion {
		t.Fatalf("an idle reconcile wrote: msec %s->%s secret %s->%s versions %d", m.ResourceVersion, m2.ResourceVersion, sec.ResourceVersion, sec2.ResourceVersion, len(v2))
	}
	if events := r.Recorder.(*countingRecorder).emitted(); len(events) != 0 {
		t.Fatalf("an idle reconcile emitted Events (each a write): %v", events)
	}
}

// fullReads counts GETs of whole Secrets (their data) and SecretVersions (their payloads).
type fullReads struct {
	client.Client
	secrets, versions int
}

func (c *fullReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	switch obj.(type) {
	case *corev1.Secret:
		c.secrets++
	case *v1alpha1.SecretVersion:
		c.versions++
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// A restarted operator trusts a projection nobody changed (status.projection) without reading the
// Secret's data or decrypting the version, and still repairs one somebody changed.
func TestRestartTrustsAnUnchangedProjection(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReady(t, generated(ns, "restart"))
	want, _ := secret(t, ns, "restart")
	eventually(t, "status.projection", func() error {
		if p := getMsec(t, ns, "restart").Status.Projection; p == nil || p.SecretResourceVersion == "" || p.VersionResourceVersion == "" {
			return fmt.Errorf("status.projection is %+v", p)
		}
		return nil
	})
	restart := func() *fullReads {
		reads := &fullReads{Client: k8s}
		r := testReconciler(t)
		r.Client, r.APIReader = reads, reads
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "restart"}}); err != nil {
			t.Fatal(err)
		}
		return reads
	}
	if reads := restart(); reads.secrets != 0 || reads.versions != 0 {
		t.Fatalf("a restarted reconcile over an unchanged projection read %d Secrets and %d versions", reads.secrets, reads.versions)
	}

	tampered := want.DeepCopy()
	tampered.Data["password"] = []byte("CANARY-tampered")
	if err := k8s.Update(ctx, tampered); err != nil {
		t.Fatal(err)
	}
	if reads := restart(); reads.secrets == 0 {
		t.Fatal("a changed projection was trusted: its data was not read")
	}
	eventually(t, "the projection repaired", func() error {
		got, err := secret(t, ns, "restart")
		if err != nil || !bytes.Equal(got.Data["password"], want.Data["password"]) {
			return fmt.Errorf("not repaired (%v)", err)
		}
		return nil
	})
}

// entries counts the proofs kept in memory.
func (v *verifiedSecrets) entries() int {
	n := 0
	v.m.Range(func(any, any) bool { n++; return true })
	return n
}

// A proof status.projection holds is not repeated in memory (one entry per secret was about a
// twentieth of the operator's memory at 5,000 secrets); a proof no status write has carried yet
// is kept there, so none is lost and the next reconcile still reads nothing.
func TestProofInStatusIsNotKeptInMemory(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReady(t, generated(ns, "proof"))
	eventually(t, "status.projection", func() error {
		if p := getMsec(t, ns, "proof").Status.Projection; p == nil || p.SecretResourceVersion == "" {
			return fmt.Errorf("status.projection is %+v", p)
		}
		return nil
	})
	reads := &fullReads{Client: k8s}
	r := testReconciler(t)
	r.Client, r.APIReader = reads, reads
	reconcileOnce := func() {
		t.Helper()
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "proof"}}); err != nil {
			t.Fatal(err)
		}
	}
	reconcileOnce()
	if reads.secrets != 0 || r.verified.entries() != 0 {
		t.Fatalf("a projection proven by status: %d Secret reads, %d proofs kept in memory; want none", reads.secrets, r.verified.entries())
	}

	projected, _ := secret(t, ns, "proof")
	projected.Labels["touched"] = "yes" // moves the resourceVersion, not what the operator wrote
	if err := k8s.Update(ctx, projected); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the touched projection proven again", func() error {
		reconcileOnce()
		now, err := secret(t, ns, "proof")
		if err != nil {
			return err
		}
		inStatus := provenInStatus(&getMsec(t, ns, "proof").Status, now.ResourceVersion)
		if !inStatus && !r.verified.ok(now.UID, now.ResourceVersion) {
			return fmt.Errorf("the proof of resourceVersion %s is neither in status nor in memory", now.ResourceVersion)
		}
		return nil
	})
	reads.secrets = 0
	reconcileOnce()
	if reads.secrets != 0 {
		t.Fatalf("a reconcile after the proof read the projected Secret %d times", reads.secrets)
	}
}

func TestFromSecretImportsAndWaitsForSource(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := &v1alpha1.ManagedSecret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "imported"},
		Spec: v1alpha1.ManagedSecretSpec{
			FromSecret: &v1alpha1.LocalObjectReference{Name: "legacy"},
			Target:     &v1alpha1.TargetSpec{Name: "app-credentials", Labels: map[string]string{"app": "shop"}},
		},
	}
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	got := waitReady(t, ns, "imported", metav1.ConditionFalse, v1alpha1.ReasonSourceNotFound)
	if !strings.Contains(readyOf(got).Message, "legacy") {
		t.Fatalf("message does not name the source: %q", readyOf(got).Message)
	}
	if len(versions(t, ns)) != 0 {
		t.Fatal("a version was written without a source")
	}

	// The source exists but its owner has not consented: nothing is imported.
	legacy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy"},
		Data: map[string][]byte{"username": []byte("shop"), "password": []byte("imported-pw")}}
	if err := k8s.Create(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	nudge(t, ns, "imported")
	got = waitReady(t, ns, "imported", metav1.ConditionFalse, v1alpha1.ReasonSourceNotAllowed)
	if !strings.Contains(readyOf(got).Message, v1alpha1.AnnotationImportAllowedFor) {
		t.Fatalf("the message does not say how to consent: %q", readyOf(got).Message)
	}
	if len(versions(t, ns)) != 0 {
		t.Fatal("a Secret was imported without its owner's consent")
	}
	legacy.Annotations = importConsent("imported")
	if err := k8s.Update(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	nudge(t, ns, "imported")
	waitReady(t, ns, "imported", metav1.ConditionTrue, v1alpha1.ReasonReady)
	sec, err := secret(t, ns, "app-credentials")
	if err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["username"]) != "shop" || string(sec.Data["password"]) != "imported-pw" || len(sec.Data) != 2 || sec.Labels["app"] != "shop" {
		t.Fatalf("projected %v labels %v", sec.Data, sec.Labels)
	}
	// Imported once: a later change of the source does not create a version, however often the
	// secret is reconciled.
	legacy.Data["password"] = []byte("changed")
	if err := k8s.Update(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := testReconciler(t).Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(m)}); err != nil {
			t.Fatal(err)
		}
	}
	nudge(t, ns, "imported")
	waitReady(t, ns, "imported", metav1.ConditionTrue, v1alpha1.ReasonReady)
	if n := len(versions(t, ns)); n != 1 {
		t.Fatalf("want exactly one version, have %d", n)
	}
	if v := projectedValue(t, ns, "app-credentials")["password"]; v != "imported-pw" {
		t.Fatalf("the projected password changed after the source did: %q", v)
	}
}

func readyOf(m *v1alpha1.ManagedSecret) metav1.Condition {
	for _, c := range m.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c
		}
	}
	return metav1.Condition{}
}

func TestTargetOwnedBySomeoneElseIsNeverTouched(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"}, StringData: map[string]string{"theirs": "keep-me"}}
	if err := k8s.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	m := generated(ns, "wants-taken")
	m.Spec.Target = &v1alpha1.TargetSpec{Name: "taken"}
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	got := waitReady(t, ns, "wants-taken", metav1.ConditionFalse, v1alpha1.ReasonTargetConflict)
	if !strings.Contains(readyOf(got).Message, "taken") {
		t.Fatalf("message %q", readyOf(got).Message)
	}
	sec, _ := secret(t, ns, "taken")
	if string(sec.Data["theirs"]) != "keep-me" || len(sec.Data) != 1 || len(sec.OwnerReferences) != 0 || sec.Labels[v1alpha1.LabelManagedSecretUID] != "" {
		t.Fatalf("the foreign Secret was changed: %v %v %v", sec.Data, sec.OwnerReferences, sec.Labels)
	}

	// Once the conflict is gone (the user deletes their Secret), the projection happens by itself.
	if err := k8s.Delete(ctx, sec); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "wants-taken", metav1.ConditionTrue, v1alpha1.ReasonReady)
}

func TestTargetRenameRemovesOldProjection(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReady(t, generated(ns, "moving"))
	m := getMsec(t, ns, "moving")
	m.Spec.Target = &v1alpha1.TargetSpec{Name: "moved"}
	if err := k8s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "moving", metav1.ConditionTrue, v1alpha1.ReasonReady)
	if _, err := secret(t, ns, "moved"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "old projection removed", func() error {
		if _, err := secret(t, ns, "moving"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("old Secret still there: %v", err)
		}
		return nil
	})
}

func TestTargetMetadataFollowsTheSpec(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := generated(ns, "meta")
	m.Spec.Target = &v1alpha1.TargetSpec{Labels: map[string]string{"a": "1", "b": "2"}, Annotations: map[string]string{"note": "x"}}
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "meta", metav1.ConditionTrue, v1alpha1.ReasonReady)
	m = getMsec(t, ns, "meta")
	m.Spec.Target.Labels = map[string]string{"a": "1"}
	m.Spec.Target.Annotations = nil
	if err := k8s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "label b and annotation note removed", func() error {
		sec, err := secret(t, ns, "meta")
		if err != nil {
			return err
		}
		if _, ok := sec.Labels["b"]; ok || sec.Labels["a"] != "1" {
			return fmt.Errorf("labels %v", sec.Labels)
		}
		if _, ok := sec.Annotations["note"]; ok {
			return fmt.Errorf("annotations %v", sec.Annotations)
		}
		return nil
	})
}

func TestTargetTypeChange(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReady(t, generated(ns, "typed"))
	before, _ := secret(t, ns, "typed")

	// TLS needs tls.crt and tls.key, which this value lacks: refused, and the Secret stays.
	m := getMsec(t, ns, "typed")
	m.Spec.Target = &v1alpha1.TargetSpec{Type: "kubernetes.io/tls"}
	if err := k8s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	got := waitReady(t, ns, "typed", metav1.ConditionFalse, v1alpha1.ReasonInvalidTarget)
	if !strings.Contains(readyOf(got).Message, "tls.crt") {
		t.Fatalf("message %q", readyOf(got).Message)
	}
	sec, err := secret(t, ns, "typed")
	if err != nil || sec.UID != before.UID || sec.Type != corev1.SecretTypeOpaque {
		t.Fatalf("the projected Secret was lost: %v", err)
	}

	// basic-auth fits (it has username and password): the Secret is replaced with the new type.
	m = getMsec(t, ns, "typed")
	m.Spec.Target = &v1alpha1.TargetSpec{Type: "kubernetes.io/basic-auth"}
	if err := k8s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "typed", metav1.ConditionTrue, v1alpha1.ReasonReady)
	sec, err = secret(t, ns, "typed")
	if err != nil || sec.Type != corev1.SecretTypeBasicAuth || !bytes.Equal(sec.Data["password"], before.Data["password"]) {
		t.Fatalf("type %s, err %v", sec.Type, err)
	}
}

func TestValueOverTheLimitIsRefused(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	big := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "big", Annotations: importConsent("too-big")},
		Data: map[string][]byte{"blob": bytes.Repeat([]byte("x"), 70000)}}
	if err := k8s.Create(ctx, big); err != nil {
		t.Fatal(err)
	}
	m := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "too-big"},
		Spec: v1alpha1.ManagedSecretSpec{FromSecret: &v1alpha1.LocalObjectReference{Name: "big"}}}
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	got := waitReady(t, ns, "too-big", metav1.ConditionFalse, v1alpha1.ReasonValueTooLarge)
	if msg := readyOf(got).Message; !strings.Contains(msg, "70011 bytes") || !strings.Contains(msg, "65536") {
		t.Fatalf("message %q", msg)
	}
	if n := len(versions(t, ns)); n != 0 {
		t.Fatalf("%d versions written", n)
	}
	if _, err := secret(t, ns, "too-big"); !apierrors.IsNotFound(err) {
		t.Fatalf("a projected Secret was written: %v", err)
	}
}

func TestDeletionLeavesNothingBehind(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "doomed"))
	if err := k8s.Delete(ctx, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "everything deleted", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(m), &v1alpha1.ManagedSecret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("ManagedSecret still there: %v", err)
		}
		if n := len(versions(t, ns)); n != 0 {
			return fmt.Errorf("%d versions left", n)
		}
		if _, err := secret(t, ns, "doomed"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("projected Secret left: %v", err)
		}
		return nil
	})
}

func TestNoSourceAwaitsAValue(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty"}}
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "empty", metav1.ConditionFalse, v1alpha1.ReasonAwaitingValue)
	if len(versions(t, ns)) != 0 {
		t.Fatal("a version was written")
	}
}

func TestPrinterColumns(t *testing.T) {
	ns := newNamespace(t)
	createReady(t, generated(ns, "shown"))
	// What `kubectl get msec` and `kubectl get secversions` print: the server-side Table.
	for _, tc := range []struct {
		resource string
		columns  []string
		cell     func(m *v1alpha1.ManagedSecret) string
	}{
		{"managedsecrets", []string{"Name", "Ready", "Reason", "Current", "Age"}, func(m *v1alpha1.ManagedSecret) string { return m.Status.CurrentVersionID }},
		{"secretversions", []string{"Name", "ManagedSecret", "Version", "Stages", "Age"}, func(m *v1alpha1.ManagedSecret) string { return "AWSCURRENT" }},
	} {
		table := tableOf(t, ns, tc.resource)
		var names []string
		for _, c := range table.ColumnDefinitions {
			if c.Priority == 0 {
				names = append(names, c.Name)
			}
		}
		if strings.Join(names, ",") != strings.Join(tc.columns, ",") {
			t.Fatalf("%s columns %v, want %v", tc.resource, names, tc.columns)
		}
		if len(table.Rows) != 1 || !strings.Contains(fmt.Sprint(table.Rows[0].Cells), tc.cell(getMsec(t, ns, "shown"))) {
			t.Fatalf("%s rows %v", tc.resource, table.Rows)
		}
	}
}

func tableOf(t *testing.T, ns, resource string) *metav1.Table {
	t.Helper()
	hc, err := restClientFor()
	if err != nil {
		t.Fatal(err)
	}
	body, err := hc.Get().AbsPath("/apis/kube-secrets-manager.io/v1alpha1/namespaces", ns, resource).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(body, table); err != nil {
		t.Fatal(err)
	}
	return table
}
