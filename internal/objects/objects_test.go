package objects

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	labelled := func(uid string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a",
			Labels: map[string]string{v1alpha1.LabelManagedSecretUID: uid}}}
	}
	// One key, in the object's namespace only (no second key under "all namespaces"), and only
	// the uid's bucket: objects of uids that share it share one index set.
	for uid, want := range map[string]string{"3f2a9c1e-0b7d-4e55-9a61-2c8d7e4f1a90": "team-a/3f", "u": "team-a/u"} {
		if got, err := index(labelled(uid)); err != nil || len(got) != 1 || got[0] != want {
			t.Fatalf("keys of an object labelled %q: %v, %v; want %s", uid, got, err, want)
		}
	}
	if got, err := index(&batchv1.Job{}); err != nil || got != nil {
		t.Fatalf("keys of an unlabelled object: %v, %v", got, err)
	}
	if _, err := index("not an object"); err == nil {
		t.Fatal("a non-object was indexed")
	}
	if f := OfManagedSecret("3f2a9c1e-0b7d-4e55-9a61-2c8d7e4f1a90"); f[IndexManagedSecretUID] != "3f" || len(f) != 1 {
		t.Fatalf("selector: %v", f)
	}
}

// The cache transforms share repeated strings: the table's copy of a label key or condition
// reason, and within one object the ManagedSecret's uid wherever it repeats. Nothing changes
// value.
func TestCachedObjectsShareRepeatedStrings(t *testing.T) {
	uid := "6988cfec-22e0-4649-9724-084f6e0f3fe6"
	clone := func(s string) string { return string([]byte(s)) } // a decoded copy
	ownerRef := func() []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: clone("kube-secrets-manager.io/v1alpha1"), Kind: clone("ManagedSecret"),
			Name: clone("db"), UID: types.UID(clone(uid)), Controller: ptr.To(true)}}
	}
	version := func() *v1alpha1.SecretVersion {
		return &v1alpha1.SecretVersion{
			ObjectMeta: metav1.ObjectMeta{Namespace: clone("team-a"), Name: "db-1", OwnerReferences: ownerRef(),
				Labels: map[string]string{clone(v1alpha1.LabelManagedSecretUID): clone(uid), clone(v1alpha1.LabelManagedBy): clone(v1alpha1.ManagedByValue)}},
			Spec: v1alpha1.SecretVersionSpec{ManagedSecretName: clone("db"), VersionID: clone(uid), Stages: []string{clone("AWSCURRENT")},
				Payload: &v1alpha1.EncryptedPayload{Algorithm: clone("AES-256-GCM"), KeyID: clone("key-1"), Ciphertext: "c"}},
		}
	}
	same := func(a, b string) bool {
		return len(a) > 0 && len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
	}
	a, _ := TrimForCache(version())
	b, _ := TrimForCache(version())
	va, vb := a.(*v1alpha1.SecretVersion), b.(*v1alpha1.SecretVersion)
	if !reflect.DeepEqual(va.Labels, vb.Labels) || va.Labels[v1alpha1.LabelManagedSecretUID] != uid || va.Spec.VersionID != uid || va.Spec.Payload.KeyID != "key-1" {
		t.Fatalf("values changed: %+v", va)
	}
	for k := range va.Labels {
		for k2 := range vb.Labels {
			if k == k2 && !same(k, k2) {
				t.Errorf("label key %q not shared between two versions", k)
			}
		}
	}
	if !same(va.Namespace, vb.Namespace) || !same(va.Spec.Stages[0], vb.Spec.Stages[0]) || !same(va.OwnerReferences[0].Kind, vb.OwnerReferences[0].Kind) ||
		!same(va.Spec.Payload.Algorithm, vb.Spec.Payload.Algorithm) {
		t.Error("namespace, staging label, owner kind or algorithm not shared between two versions")
	}
	// Within one version, its uid is one string.
	if !same(va.Spec.VersionID, va.Labels[v1alpha1.LabelManagedSecretUID]) || !same(string(va.OwnerReferences[0].UID), va.Spec.VersionID) ||
		!same(va.Spec.ManagedSecretName, va.OwnerReferences[0].Name) {
		t.Error("the version's uid or name is held more than once")
	}
	// A uid is never put into the shared table: it is one secret's, not repeated across secrets.
	if _, ok := cacheStrings.m[uid]; ok {
		t.Error("a uid entered the shared table")
	}

	msec := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: clone("team-a"), Name: "db", UID: types.UID(uid),
		Annotations: map[string]string{clone(v1alpha1.AnnotationSecretID): clone(uid)}, Finalizers: []string{clone(v1alpha1.Finalizer)}},
		Status: v1alpha1.ManagedSecretStatus{CurrentVersionID: clone(uid), TargetSecretName: clone("db"),
			Conditions: []metav1.Condition{{Type: clone("Ready"), Status: metav1.ConditionStatus(clone("True")), Reason: clone("Projected"), Message: "m"}},
			Versions:   []v1alpha1.VersionSummary{{VersionID: clone(uid), Stages: []string{clone("AWSCURRENT")}}}}}
	out, _ := TrimDefault(msec)
	m := out.(*v1alpha1.ManagedSecret)
	if !same(m.Status.CurrentVersionID, string(m.UID)) || !same(m.Annotations[v1alpha1.AnnotationSecretID], string(m.UID)) ||
		!same(m.Status.Versions[0].VersionID, string(m.UID)) || !same(m.Status.TargetSecretName, m.Name) {
		t.Error("the ManagedSecret's uid or name is held more than once")
	}
	if !same(m.Status.Versions[0].Stages[0], va.Spec.Stages[0]) || !same(m.Namespace, va.Namespace) {
		t.Error("a staging label or namespace is not shared between a ManagedSecret and a version")
	}
	if m.Status.Conditions[0].Reason != "Projected" || m.Finalizers[0] != v1alpha1.Finalizer {
		t.Fatalf("values changed: %+v", m)
	}

	// What tenants choose (their label keys and values, other owners' kinds) stays out of the table.
	tenant := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app",
		Labels:          map[string]string{clone("team.example/tier"): clone("gold-tier-label")},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: clone("example.com/v9"), Kind: clone("Widget"), Name: "w", UID: "u"}}}}
	out, _ = TrimDefault(tenant)
	if d := out.(*appsv1.Deployment); d.Labels["team.example/tier"] != "gold-tier-label" || d.OwnerReferences[0].Kind != "Widget" {
		t.Fatalf("values changed: %+v", d)
	}
	for _, s := range []string{"team.example/tier", "gold-tier-label", "example.com/v9", "Widget"} {
		if _, ok := cacheStrings.m[s]; ok {
			t.Errorf("%q, chosen by a tenant, entered the shared table", s)
		}
	}
}

// The table stops growing at its bound: whatever a tenant writes, it costs a bounded amount.
func TestTheSharedTableIsBounded(t *testing.T) {
	in := &interner{m: map[string]string{}}
	for i := 0; i < internMaxEntries+100; i++ {
		s := fmt.Sprintf("key-%d", i)
		if got := in.intern(s); got != s {
			t.Fatalf("intern changed %q into %q", s, got)
		}
	}
	if in.len() != internMaxEntries {
		t.Fatalf("the table holds %d, want its bound %d", in.len(), internMaxEntries)
	}
	long := strings.Repeat("x", internMaxLen+1)
	in.m = map[string]string{}
	in.intern(long)
	if in.len() != 0 {
		t.Fatal("a long string entered the table")
	}
}

// A list of one secret's objects always names the namespace (the index keys objects under it) and
// requires the exact uid (the index keys only a bucket of it), and goes through the index only when
// the reader has it.
func TestListOfManagedSecret(t *testing.T) {
	const uid = "3f2a9c1e-0b7d-4e55-9a61-2c8d7e4f1a90"
	sel := labels.SelectorFromSet(labels.Set{"app": "x"})
	apply := func(opts []client.ListOption) *client.ListOptions {
		o := &client.ListOptions{}
		o.ApplyOptions(opts)
		return o
	}
	indexed := apply(ListOfManagedSecret("team-a", uid, sel, true))
	if indexed.Namespace != "team-a" || indexed.FieldSelector == nil || indexed.FieldSelector.String() != IndexManagedSecretUID+"=3f" {
		t.Fatalf("indexed list: %+v", indexed)
	}
	sameBucket := labels.Set{"app": "x", v1alpha1.LabelManagedSecretUID: uid[:len(uid)-1] + "1"}
	if !indexed.LabelSelector.Matches(labels.Set{"app": "x", v1alpha1.LabelManagedSecretUID: uid}) ||
		indexed.LabelSelector.Matches(sameBucket) || indexed.LabelSelector.Matches(labels.Set{v1alpha1.LabelManagedSecretUID: uid}) {
		t.Fatalf("the indexed list's selector %q does not require both the caller's labels and the exact uid", indexed.LabelSelector)
	}
	if o := apply(ListOfManagedSecret("team-a", uid, sel, false)); o.Namespace != "team-a" || o.FieldSelector != nil ||
		!o.LabelSelector.Matches(labels.Set{"app": "x", v1alpha1.LabelManagedSecretUID: uid}) || o.LabelSelector.Matches(sameBucket) {
		t.Fatalf("a list without the index: %+v", o)
	}
	// A selector that already requires the uid (the controllers' lists) does not get it twice.
	own := labels.SelectorFromSet(labels.Set{"app": "x", v1alpha1.LabelManagedSecretUID: uid})
	if o := apply(ListOfManagedSecret("team-a", uid, own, true)); o.LabelSelector.String() != own.String() {
		t.Fatalf("a selector already requiring the uid became %q, want %q", o.LabelSelector, own)
	}
	if o := apply(ListOfManagedSecret("team-a", "", sel, true)); o.Namespace != "team-a" || o.FieldSelector != nil || o.LabelSelector.String() != "app=x" {
		t.Fatalf("a list of no one secret: %+v", o)
	}
	// A uid that is no label value selects nothing, at the API server too (not the empty selector).
	bad := apply(ListOfManagedSecret("team-a", "not a label value!", sel, true))
	if bad.FieldSelector != nil || bad.LabelSelector.String() == "" || bad.LabelSelector.Matches(labels.Set{v1alpha1.LabelManagedSecretUID: "x"}) ||
		bad.LabelSelector.Matches(labels.Set{}) {
		t.Fatalf("a list of an invalid uid: %+v", bad)
	}
}

// An event on an object wakes the ManagedSecret its controller reference names, and only one of
// this API group: not a plain owner, nor a kind of the same name elsewhere.
func TestControllingManagedSecret(t *testing.T) {
	yes, no := true, false
	ref := func(apiVersion, kind, name string, controller *bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: "u1", Controller: controller}
	}
	ours := v1alpha1.GroupVersion.String()
	for _, tc := range []struct {
		name   string
		owners []metav1.OwnerReference
		want   string
	}{
		{"controller ManagedSecret", []metav1.OwnerReference{ref(ours, "ManagedSecret", "db", &yes)}, "db"},
		{"another version of the group", []metav1.OwnerReference{ref(v1alpha1.GroupVersion.Group+"/v1", "ManagedSecret", "db", &yes)}, "db"},
		{"after a plain owner", []metav1.OwnerReference{ref("v1", "ConfigMap", "x", &no), ref(ours, "ManagedSecret", "db", &yes)}, "db"},
		{"owner, not controller", []metav1.OwnerReference{ref(ours, "ManagedSecret", "db", &no)}, ""},
		{"no owner", nil, ""},
		{"same kind, other group", []metav1.OwnerReference{ref("example.com/v1", "ManagedSecret", "db", &yes)}, ""},
		{"other kind", []metav1.OwnerReference{ref(ours, "RotationPolicy", "db", &yes)}, ""},
		{"unparsable apiVersion", []metav1.OwnerReference{ref("a/b/c", "ManagedSecret", "db", &yes)}, ""},
		{"no name", []metav1.OwnerReference{ref(ours, "ManagedSecret", "", &yes)}, ""},
	} {
		obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", OwnerReferences: tc.owners}}
		got, ok := ControllingManagedSecret(obj)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}
