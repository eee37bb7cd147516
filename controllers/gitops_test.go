package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rollout"
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
	operatorWrote := false
	for _, mf := range live.GetManagedFields() {
		operatorWrote = operatorWrote || mf.Manager == FieldManager
		if fields := mf.FieldsV1.GetRawString(); mf.Manager != "argocd-controller" && mf.Subresource == "" && strings.Contains(fields, `"f:spec"`) {
			t.Fatalf("%s owns spec fields: %s", mf.Manager, fields)
		}
	}
	if !operatorWrote {
		t.Fatal("no managed-fields entry of the operator (its finalizer and status), so the check above proves nothing")
	}
}

// The operator's permissions are exactly what the install bundle (the chart with its defaults)
// grants its ServiceAccount, which the whole suite runs as: enough for its work (every test
// exercises that), nothing more (checked here with SubjectAccessReviews), and the bundle binds
// nothing to any other subject, so rotation pods (each namespace's default ServiceAccount, or one
// the operator's settings allow) get no permission from it.
func TestPermissionsBySubjectAccessReview(t *testing.T) {
	ctx := context.Background()
	objs, err := bundleObjects()
	if err != nil {
		t.Fatal(err)
	}
	bindings := 0
	for _, u := range objs {
		if u.GetKind() != "ClusterRoleBinding" && u.GetKind() != "RoleBinding" {
			continue
		}
		bindings++
		subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
		if len(subjects) != 1 {
			t.Errorf("%s %s binds %d subjects", u.GetKind(), u.GetName(), len(subjects))
		}
		for _, s := range subjects {
			sub := s.(map[string]any)
			if sub["kind"] != "ServiceAccount" || sub["name"] != "kube-secrets-manager" || sub["namespace"] != "kube-secrets-manager" {
				t.Errorf("%s %s binds %v, not the operator's ServiceAccount", u.GetKind(), u.GetName(), sub)
			}
		}
	}
	if bindings != 4 {
		t.Fatalf("the bundle has %d bindings, want the operator's, the API's and the metrics endpoint's ClusterRoleBindings and the own-namespace RoleBinding", bindings)
	}

	can := func(user string, groups []string, a authorizationv1.ResourceAttributes) bool {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &a}}
		if err := k8s.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	operatorGroups := []string{"system:serviceaccounts", "system:serviceaccounts:kube-secrets-manager", "system:authenticated"}
	type ra = authorizationv1.ResourceAttributes
	const own = "kube-secrets-manager"
	allowed := []ra{
		{Namespace: "team-a", Verb: "create", Group: ksmGroup, Resource: "secretversions"},
		{Namespace: "team-a", Verb: "patch", Group: ksmGroup, Resource: "managedsecrets", Subresource: "status"},
		{Namespace: "team-a", Verb: "update", Group: ksmGroup, Resource: "managedsecrets", Subresource: "finalizers"},
		{Namespace: "team-a", Verb: "create", Resource: "secrets"},
		{Verb: "list", Resource: "secrets"},
		{Verb: "watch", Resource: "secrets"},
		{Namespace: "team-a", Verb: "create", Group: "batch", Resource: "cronjobs"},
		{Namespace: "team-a", Verb: "create", Group: "batch", Resource: "jobs"},
		{Namespace: "team-a", Verb: "create", Group: "events.k8s.io", Resource: "events"},
		{Namespace: own, Verb: "update", Group: "coordination.k8s.io", Resource: "leases"},
		{Namespace: own, Verb: "create", Resource: "secrets"},
	}
	denied := []ra{
		{Namespace: "team-a", Verb: "update", Resource: "secrets"},
		{Namespace: "team-a", Verb: "create", Resource: "pods"},
		{Namespace: "team-a", Verb: "create", Resource: "pods", Subresource: "exec"},
		{Namespace: "team-a", Verb: "create", Resource: "serviceaccounts", Subresource: "token"},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
		{Namespace: "team-a", Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
		{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Verb: "bind", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Verb: "impersonate", Resource: "users"},
		{Namespace: "team-a", Verb: "update", Group: ksmGroup, Resource: "managedsecrets"},
		{Namespace: "team-a", Verb: "update", Group: ksmGroup, Resource: "rotationpolicies"},
		{Namespace: "team-a", Verb: "update", Group: "batch", Resource: "jobs"},
		{Namespace: "kube-system", Verb: "create", Group: "coordination.k8s.io", Resource: "leases"},
		{Namespace: "team-a", Verb: "update", Group: "coordination.k8s.io", Resource: "leases"},
		{Verb: "get", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
		{Verb: "create", Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicies"},
	}
	for _, a := range allowed {
		if !can(operatorServiceAccount, operatorGroups, a) {
			t.Errorf("the operator cannot %s %s/%s in %q", a.Verb, a.Resource, a.Subresource, a.Namespace)
		}
	}
	for _, a := range denied {
		if can(operatorServiceAccount, operatorGroups, a) {
			t.Errorf("the operator may %s %s/%s in %q, which it does not need", a.Verb, a.Resource, a.Subresource, a.Namespace)
		}
	}
	// A rotation pod's identity gets nothing (the positive control above shows the reviews work).
	for _, a := range append(allowed, ra{Namespace: "team-a", Verb: "get", Resource: "secrets"}) {
		if can("system:serviceaccount:team-a:default", []string{"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"}, a) {
			t.Errorf("a rotation pod's service account may %s %s", a.Verb, a.Resource)
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
		// A dry run: the API server validates and admits everything, and the suite's CRDs and
		// objects stay as they are for the other tests.
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("kubectl"), client.ForceOwnership, client.DryRunAll); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		kinds[u.GetKind()]++
	}
	if kinds["CustomResourceDefinition"] != 4 || kinds["Deployment"] != 1 || kinds["ClusterRole"] != 7 || kinds["Namespace"] != 1 {
		t.Fatalf("bundle kinds %v", kinds)
	}
}

// Argo CD manages a Deployment and a ManagedSecret that names it in spec.rollout. After the
// operator restarts the Deployment, a dry-run re-apply of both manifests changes nothing: on the
// Deployment the operator owns only the pod template's kubectl.kubernetes.io/restartedAt (the
// field kubectl rollout restart sets, which the manifest does not hold), and on the ManagedSecret
// no spec field (nothing defaulted into spec.rollout).
func TestRolloutRestartsCauseNoDrift(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	manifests := []string{`
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {team: a}
    spec:
      containers:
      - name: app
        image: registry.example/app:1
        env:
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: gitops-db, key: password}}
`, `
apiVersion: kube-secrets-manager.io/v1alpha1
kind: ManagedSecret
metadata:
  name: gitops-db
spec:
  generate:
    fields: {username: app}
  rollout:
    targets:
    - {kind: Deployment, name: web}
`}
	parse := func(manifest string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		return u
	}
	live := func(m string) *unstructured.Unstructured {
		want := parse(m)
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(want.GroupVersionKind())
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, m := range manifests {
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(parse(m)), client.FieldOwner("argocd-controller"), client.ForceOwnership); err != nil {
			t.Fatal(err)
		}
	}
	waitReady(t, ns, "gitops-db", metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitRolledOut(t, ns, "gitops-db", metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	putValue(t, ns, "gitops-db", "")
	suiteClock.advance(t, rollout.DefaultWindow+time.Second)
	nudge(t, ns, "gitops-db")
	eventually(t, "the Deployment is restarted", func() error {
		ann, _, _ := unstructured.NestedStringMap(live(manifests[0]).Object, "spec", "template", "metadata", "annotations")
		if ann[rollout.AnnotationRestartedAt] == "" || ann["team"] != "a" {
			return fmt.Errorf("pod template annotations %v", ann)
		}
		return nil
	})

	for _, m := range manifests {
		before := live(m)
		dry := parse(m)
		if err := k8s.Patch(ctx, dry, client.Apply, client.FieldOwner("argocd-controller"), client.ForceOwnership, client.DryRunAll); err != nil { //nolint:staticcheck // Patch returns the dry-run result
			t.Fatal(err)
		}
		if !reflect.DeepEqual(dry.Object["spec"], before.Object["spec"]) {
			t.Fatalf("%s: a re-apply would change spec:\nlive %v\ndry  %v", before.GetKind(), before.Object["spec"], dry.Object["spec"])
		}
		for _, mf := range before.GetManagedFields() {
			if mf.Manager != FieldManager || mf.Subresource != "" {
				continue
			}
			var owned map[string]any
			if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &owned); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{}
			if before.GetKind() == "Deployment" {
				want = map[string]any{"f:spec": map[string]any{"f:template": map[string]any{"f:metadata": map[string]any{
					"f:annotations": map[string]any{"f:" + rollout.AnnotationRestartedAt: map[string]any{}}}}}}
			}
			delete(owned, "f:metadata") // the ManagedSecret's finalizer and secret id
			if !reflect.DeepEqual(owned, want) {
				t.Fatalf("%s: the operator owns %s", before.GetKind(), mf.FieldsV1.GetRawString())
			}
		}
	}
	// No default was written into the ManagedSecret's spec.
	if got, want := live(manifests[1]).Object["spec"], parse(manifests[1]).Object["spec"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("spec differs from the manifest:\nlive %v\nmanifest %v", got, want)
	}
}
