package controllers

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// The claim and status patches equal controller-runtime's MergeFromWithOptimisticLock for the
// same change: the same fields set, removed (null) and locked (resourceVersion).
func TestManagedSecretPatchesMatchMergeFrom(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC))
	read := func() *v1alpha1.ManagedSecret {
		return &v1alpha1.ManagedSecret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "db", UID: "u1", ResourceVersion: "42", Generation: 3,
				Labels: map[string]string{"app": "shop"}},
			Spec: v1alpha1.ManagedSecretSpec{Description: "orders"},
		}
	}
	full := v1alpha1.ManagedSecretStatus{
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Projected",
			Message: "projected", ObservedGeneration: 3, LastTransitionTime: at}},
		ObservedGeneration: 3, ID: "arn:x", CurrentVersionID: "v2", PreviousVersionID: "v1", TargetSecretName: "db",
		Versions:        []v1alpha1.VersionSummary{{VersionID: "v2", Stages: []string{"AWSCURRENT"}}, {VersionID: "v1", Stages: []string{"AWSPREVIOUS"}}},
		LastChangedTime: &at,
		Projection:      &v1alpha1.ProjectionStatus{SecretResourceVersion: "40", VersionResourceVersion: "39", Generation: 3},
	}
	decode := func(t *testing.T, p client.Patch, obj client.Object) map[string]any {
		t.Helper()
		data, err := p.Data(obj)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	claims := map[string]func(*v1alpha1.ManagedSecret){
		"a new secret": func(*v1alpha1.ManagedSecret) {},
		"someone else's finalizer and annotations": func(m *v1alpha1.ManagedSecret) {
			m.Finalizers = []string{"example.com/keep"}
			m.Annotations = map[string]string{"note": "x"}
		},
		"the id already there": func(m *v1alpha1.ManagedSecret) {
			m.Annotations = map[string]string{v1alpha1.AnnotationSecretID: "old-uid"}
		},
	}
	for name, setup := range claims {
		orig := read()
		setup(orig)
		msec := orig.DeepCopy()
		msec.Finalizers = append(msec.Finalizers, v1alpha1.Finalizer)
		if msec.Annotations == nil {
			msec.Annotations = map[string]string{}
		}
		if msec.Annotations[v1alpha1.AnnotationSecretID] == "" {
			msec.Annotations[v1alpha1.AnnotationSecretID] = string(msec.UID)
		}
		ours, err := claimPatch(orig, msec)
		if err != nil {
			t.Fatal(err)
		}
		got, want := decode(t, ours, msec), decode(t, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), msec)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("claim, %s: patch %v, MergeFrom's %v", name, got, want)
		}
	}

	statuses := map[string]struct {
		from, to func() v1alpha1.ManagedSecretStatus
	}{
		"first status": {func() v1alpha1.ManagedSecretStatus { return v1alpha1.ManagedSecretStatus{} }, func() v1alpha1.ManagedSecretStatus { return *full.DeepCopy() }},
		"fields removed and changed": {func() v1alpha1.ManagedSecretStatus { return *full.DeepCopy() }, func() v1alpha1.ManagedSecretStatus {
			s := full.DeepCopy()
			s.PreviousVersionID, s.Projection, s.LastChangedTime = "", nil, nil
			s.Conditions[0].Status, s.Conditions[0].Reason = metav1.ConditionFalse, "DecryptionFailed"
			s.Versions = s.Versions[:1]
			return *s
		}},
		"nothing but the proof": {func() v1alpha1.ManagedSecretStatus { return *full.DeepCopy() }, func() v1alpha1.ManagedSecretStatus {
			s := full.DeepCopy()
			s.Projection.SecretResourceVersion = "41"
			return *s
		}},
	}
	for name, tc := range statuses {
		orig := read()
		orig.Status = tc.from()
		msec := orig.DeepCopy()
		msec.Status = tc.to()
		ours, err := statusPatch(&orig.Status, msec)
		if err != nil {
			t.Fatal(err)
		}
		got, want := decode(t, ours, msec), decode(t, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), msec)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("status, %s: patch %v, MergeFrom's %v", name, got, want)
		}
		if meta, _ := got["metadata"].(map[string]any); meta["resourceVersion"] != "42" {
			t.Errorf("status, %s: the patch is not locked to resourceVersion 42: %v", name, got)
		}
	}
}
