package objects

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

func TestTrimForCache(t *testing.T) {
	yes := true
	meta := metav1.ObjectMeta{
		Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "7",
		Labels: map[string]string{v1alpha1.LabelManagedSecretUID: "m", v1alpha1.LabelManagedBy: "kube-secrets-manager", "app": "padding"},
		Annotations: map[string]string{"kube-secrets-manager.io/version-id": "v1", "kube-secrets-manager.io/padding": strings.Repeat("p", 5000),
			"other.io/x": "y"},
		OwnerReferences: []metav1.OwnerReference{{Kind: "ManagedSecret", UID: "m", Controller: &yes}, {Kind: "Other", UID: "o"}},
		Finalizers:      []string{"a", "b"},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "x"}},
	}
	pom := &metav1.PartialObjectMetadata{ObjectMeta: *meta.DeepCopy()}
	out, _ := TrimForCache(pom)
	m := out.(*metav1.PartialObjectMetadata)
	if len(m.Labels) != 2 || m.Labels["app"] != "" || len(m.Annotations) != 1 || m.Annotations["kube-secrets-manager.io/version-id"] != "v1" ||
		len(m.OwnerReferences) != 1 || m.OwnerReferences[0].UID != "m" || m.Finalizers != nil || m.ManagedFields != nil ||
		m.UID != "u" || m.ResourceVersion != "7" {
		t.Fatalf("trimmed metadata: %+v", m.ObjectMeta)
	}

	job := &batchv1.Job{ObjectMeta: *meta.DeepCopy(), Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Args: []string{strings.Repeat("a", 1000)}}}}}},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Message: strings.Repeat("m", 1000)}}, Failed: 1}}
	out, _ = TrimForCache(job)
	j := out.(*batchv1.Job)
	if len(j.Spec.Template.Spec.Containers) != 0 || len(j.Status.Conditions) != 1 || len(j.Status.Conditions[0].Message) > maxCachedMessage || j.Status.Failed != 1 {
		t.Fatalf("trimmed Job: %+v", j)
	}

	suspend := true
	cj := &batchv1.CronJob{ObjectMeta: *meta.DeepCopy(), Spec: batchv1.CronJobSpec{Schedule: "* * * * *", Suspend: &suspend},
		Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{UID: "j1"}}}}
	out, _ = TrimForCache(cj)
	c := out.(*batchv1.CronJob)
	if c.Spec.Schedule != "" || c.Spec.Suspend == nil || !*c.Spec.Suspend || len(c.Status.Active) != 1 {
		t.Fatalf("trimmed CronJob: %+v", c)
	}
}

// The other caches drop managed fields and kubectl's last-applied copy, and keep every other
// annotation (the operator's requests and ids are annotations).
func TestTrimDefault(t *testing.T) {
	msec := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Name: "db", Annotations: map[string]string{
		lastApplied: strings.Repeat("{}", 500), v1alpha1.AnnotationSecretID: "id", "team.example.com/owner": "a"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	out, _ := TrimForCache(msec)
	m := out.(*v1alpha1.ManagedSecret)
	if m.ManagedFields != nil || len(m.Annotations) != 2 || m.Annotations[v1alpha1.AnnotationSecretID] != "id" || m.Annotations["team.example.com/owner"] != "a" {
		t.Fatalf("trimmed ManagedSecret: %+v", m.ObjectMeta)
	}
	v := &v1alpha1.SecretVersion{ObjectMeta: metav1.ObjectMeta{Name: "v", Annotations: map[string]string{lastApplied: `{"spec":{"payload":"..."}}`, "kube-secrets-manager.io/intended-stages": "AWSCURRENT"}}}
	if out, _ := TrimForCache(v); len(out.(*v1alpha1.SecretVersion).Annotations) != 1 {
		t.Fatalf("a cached version keeps kubectl's copy of its payload: %+v", out.(*v1alpha1.SecretVersion).Annotations)
	}
	p := &v1alpha1.RotationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{lastApplied: "{}"}}}
	if out, _ := TrimForCache(p); out.(*v1alpha1.RotationPolicy).Annotations != nil {
		t.Fatalf("an annotation map left empty is kept: %+v", out)
	}
}

func TestCheckTargetMetadata(t *testing.T) {
	tests := []struct {
		labels, annotations map[string]string
		allowed             []string
		refused             string
	}{
		{map[string]string{"app": "x", "app.kubernetes.io/part-of": "shop", "example.com/team": "a"}, nil, nil, ""},
		{nil, map[string]string{"replicator.v1.mittwald.de/replicate-to": "*"}, nil, "replicator.v1.mittwald.de/replicate-to"},
		{nil, map[string]string{"replicator.v1.mittwald.de/replicate-to": "*"}, []string{"replicator.v1.mittwald.de/"}, ""},
		{map[string]string{"kubernetes.io/service-account.name": "x"}, nil, nil, "kubernetes.io/service-account.name"},
		{nil, map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}, nil, "kubectl.kubernetes.io"},
		{map[string]string{"argocd.argoproj.io/instance": "x"}, nil, nil, "argocd.argoproj.io/instance"},
		{map[string]string{"kube-secrets-manager.io/managed-secret-uid": "x"}, nil, nil, "kube-secrets-manager.io/managed-secret-uid"},
		{nil, map[string]string{"reflector.v1.k8s.emberstack.com/reflection-allowed": "true"}, nil, "reflector"},
		{nil, map[string]string{"node.k8s.io/x": "y"}, nil, "node.k8s.io/x"},
		{nil, map[string]string{"sub.argoproj.io/x": "y"}, nil, "sub.argoproj.io/x"},
		{nil, map[string]string{"notargoproj.io/x": "y"}, nil, ""},
	}
	for i, tt := range tests {
		err := CheckTargetMetadata(tt.labels, tt.annotations, tt.allowed)
		switch {
		case tt.refused == "" && err != nil:
			t.Errorf("%d: refused: %v", i, err)
		case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
			t.Errorf("%d: err = %v, want it to name %q", i, err, tt.refused)
		}
	}
}

func TestImportAllowed(t *testing.T) {
	ann := map[string]string{v1alpha1.AnnotationImportAllowedFor: "app, other"}
	if !ImportAllowed(ann, "app") || !ImportAllowed(ann, "other") || ImportAllowed(ann, "ap") || ImportAllowed(nil, "app") {
		t.Fatal("consent is read wrongly")
	}
}

func TestManagedSecretUIDIndex(t *testing.T) {
	indexers := ManagedSecretUIDIndexers()
	if len(indexers) != 1 {
		t.Fatalf("want one indexer, got %d", len(indexers))
	}
	index := indexers["field:"+IndexManagedSecretUID]
	if index == nil {
		t.Fatalf("no indexer under the name controller-runtime's cache reader looks up: %v", indexers)
	}
	labelled := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a",
		Labels: map[string]string{v1alpha1.LabelManagedSecretUID: "u1"}}}
	// One key, in the object's namespace only: no second key under "all namespaces".
	if got, err := index(labelled); err != nil || len(got) != 1 || got[0] != "team-a/u1" {
		t.Fatalf("keys of a labelled object: %v, %v", got, err)
	}
	if got, err := index(&batchv1.Job{}); err != nil || got != nil {
		t.Fatalf("keys of an unlabelled object: %v, %v", got, err)
	}
	if _, err := index("not an object"); err == nil {
		t.Fatal("a non-object was indexed")
	}
	if f := OfManagedSecret("u1"); f[IndexManagedSecretUID] != "u1" || len(f) != 1 {
		t.Fatalf("selector: %v", f)
	}
}
