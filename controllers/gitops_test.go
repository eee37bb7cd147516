package controllers

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// Argo CD with server-side apply: apply a ManagedSecret, let the operator reconcile, re-apply the
// same manifest as a dry run, and nothing in spec would change (no defaults written, no spec
// fields owned by the operator).
func TestNoDriftUnderServerSideApply(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	manifest := `
apiVersion: kube-secrets-manager.io/v1alpha1
kind: ManagedSecret
metadata:
  name: gitops
spec:
  description: managed by Argo CD
  generate:
    fields: {engine: postgres, username: app}
  target:
    labels: {team: a}
`
	apply := func(opts ...client.ApplyOption) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), append(opts, client.FieldOwner("argocd-controller"), client.ForceOwnership)...); err != nil {
			t.Fatal(err)
		}
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ManagedSecret"))
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gitops"}, got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	apply()
	waitReady(t, ns, "gitops", metav1.ConditionTrue, v1alpha1.ReasonReady)
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ManagedSecret"))
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gitops"}, live); err != nil {
		t.Fatal(err)
	}

	// The dry-run re-apply returns what the object would become.
	u := &unstructured.Unstructured{}
	_ = yaml.Unmarshal([]byte(manifest), &u.Object)
	u.SetNamespace(ns)
	dry := u.DeepCopy()
	if err := k8s.Patch(ctx, dry, client.Apply, client.FieldOwner("argocd-controller"), client.ForceOwnership, client.DryRunAll); err != nil { //nolint:staticcheck // Patch returns the dry-run result
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dry.Object["spec"], live.Object["spec"]) {
		t.Fatalf("a re-apply would change spec:\nlive %v\ndry  %v", live.Object["spec"], dry.Object["spec"])
	}
	if !reflect.DeepEqual(live.Object["spec"], u.Object["spec"]) {
		t.Fatalf("spec differs from the manifest (defaults written?):\nlive %v\nmanifest %v", live.Object["spec"], u.Object["spec"])
	}
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == FieldManager && mf.Subresource == "" && strings.Contains(string(mf.FieldsV1.Raw), `"f:spec"`) {
			t.Fatalf("the operator owns spec fields: %s", mf.FieldsV1.Raw)
		}
	}
}

// The operator's permissions (config/rbac/role.yaml, the rules the chart and bundle ship) are what
// SubjectAccessReviews say they are: enough for its work, nothing more; and the rotation pods'
// service account can do nothing at all.
func TestPermissionsBySubjectAccessReview(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	raw, err := os.ReadFile("../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		t.Fatal(err)
	}
	role.Name = "ksm-sar-test"
	if err := k8s.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), role) })
	// Rotation pods run as the namespace's default service account (envtest has no controller to
	// make it, so the test does).
	for _, sa := range []string{"operator", "default"} {
		if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}); err != nil {
			t.Fatal(err)
		}
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ksm-sar-test"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "operator"}}}
	if err := k8s.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), binding) })

	can := func(sa string, a authorizationv1.ResourceAttributes) bool {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + ns + ":" + sa,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &a,
		}}
		if err := k8s.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	type ra = authorizationv1.ResourceAttributes
	allowed := []ra{
		{Namespace: "team-a", Verb: "create", Group: "kube-secrets-manager.io", Resource: "secretversions"},
		{Namespace: "team-a", Verb: "patch", Group: "kube-secrets-manager.io", Resource: "managedsecrets", Subresource: "status"},
		{Namespace: "team-a", Verb: "create", Resource: "secrets"},
		{Namespace: "team-a", Verb: "create", Group: "batch", Resource: "cronjobs"},
		{Namespace: "team-a", Verb: "create", Group: "events.k8s.io", Resource: "events"},
	}
	denied := []ra{
		{Namespace: "team-a", Verb: "update", Resource: "secrets"},
		{Namespace: "team-a", Verb: "create", Resource: "pods"},
		{Namespace: "team-a", Verb: "create", Resource: "pods", Subresource: "exec"},
		{Namespace: "team-a", Verb: "create", Resource: "serviceaccounts", Subresource: "token"},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
		{Namespace: "team-a", Verb: "update", Group: "kube-secrets-manager.io", Resource: "managedsecrets"},
		{Namespace: "team-a", Verb: "update", Group: "batch", Resource: "jobs"},
		{Namespace: "kube-system", Verb: "create", Group: "coordination.k8s.io", Resource: "leases"},
		{Verb: "get", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
	}
	for _, a := range allowed {
		if !can("operator", a) {
			t.Errorf("the operator cannot %s %s/%s", a.Verb, a.Resource, a.Subresource)
		}
	}
	for _, a := range denied {
		if can("operator", a) {
			t.Errorf("the operator may %s %s/%s in %q, which it does not need", a.Verb, a.Resource, a.Subresource, a.Namespace)
		}
	}
	// The rotation pods' service account has no permissions at all (and no token is mounted).
	for _, a := range append(allowed, ra{Namespace: ns, Verb: "get", Resource: "secrets"}, ra{Namespace: ns, Verb: "list", Resource: "secrets"}) {
		if can("default", a) {
			t.Errorf("the rotation service account may %s %s", a.Verb, a.Resource)
		}
	}
}

// The kubectl-apply bundle is accepted by a real API server (server-side apply, as documented).
func TestInstallBundleApplies(t *testing.T) {
	ctx := context.Background()
	raw, err := os.ReadFile("../dist/install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, doc := range strings.Split(string(raw), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		kinds[u.GetKind()]++
	}
	if kinds["CustomResourceDefinition"] != 3 || kinds["Deployment"] != 1 || kinds["ClusterRole"] != 1 || kinds["Namespace"] != 1 {
		t.Fatalf("bundle kinds %v", kinds)
	}
}
