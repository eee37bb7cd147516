// Package namespaced runs the operator in its multi-tenant setting: the chart with
// rbac.namespaced=true (Roles in the listed namespaces only, no ClusterRole) and the manager
// restricted to those namespaces with --watch-namespaces, against its own real API server. The
// operator runs as the chart's ServiceAccount with exactly the chart's RBAC.
package namespaced

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/controllers"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/optout"
)

var managed = []string{"team-a", "team-b"}

func TestNamespacedModeReconcilesOnlyItsNamespaces(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with 'make test', which builds kube-apiserver and etcd")
	}
	helm, err := filepath.Abs("../../bin/helm")
	if err == nil {
		_, err = os.Stat(helm)
	}
	optout.Need(t, optout.Helm, "helm ('make helm' builds it into bin/)", err)

	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	admin, err := client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range append([]string{"kube-secrets-manager", "team-c"}, managed...) {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	// The chart's RBAC in namespaced mode, exactly as helm renders it.
	var out, errOut bytes.Buffer
	cmd := exec.Command(helm, "template", "kube-secrets-manager", "../../charts/kube-secrets-manager", "--namespace", "kube-secrets-manager",
		"--set", "rbac.namespaced=true", "--set", "rbac.namespaces={"+strings.Join(managed, ",")+"}")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v: %s", err, errOut.String())
	}
	kinds, clusterBindings := map[string]int{}, []string{}
	for _, doc := range strings.Split(out.String(), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			if err := admin.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("helm")); err != nil {
				t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
			kinds[u.GetKind()]++
			if u.GetKind() == "ClusterRoleBinding" {
				clusterBindings = append(clusterBindings, u.GetName())
			}
		}
	}
	// Cluster-wide, the operator may only create TokenReviews and SubjectAccessReviews (the API's
	// and the metrics endpoint's) and keep its trust bundle.
	sort.Strings(clusterBindings)
	if kinds["Role"] != len(managed)+1 || strings.Join(clusterBindings, ",") != "kube-secrets-manager-api-kube-secrets-manager,kube-secrets-manager-metrics-auth-kube-secrets-manager" {
		t.Fatalf("namespaced mode renders %v (ClusterRoleBindings %v); want Roles in %v and the operator's own namespace, and only the API's and the metrics endpoint's ClusterRoleBindings", kinds, clusterBindings, managed)
	}

	opts := controllers.DefaultOptions()
	opts.MetricsAddr, opts.ProbeAddr = "0", "0"
	opts.WatchNamespaces = managed
	operator := rest.CopyConfig(cfg)
	operator.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:kube-secrets-manager:kube-secrets-manager",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-secrets-manager", "system:authenticated"}}
	mgr, err := controllers.NewManager(ctx, operator, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the manager stopped with: %v", err)
		}
	})

	msec := func(ns string) *v1alpha1.ManagedSecret {
		return &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{}}}
	}
	// The unwatched namespace's secret is made first, so a manager that watched it would have
	// reconciled it by the time the watched ones are Ready.
	if err := admin.Create(ctx, msec("team-c")); err != nil {
		t.Fatal(err)
	}
	for _, ns := range managed {
		if err := admin.Create(ctx, msec(ns)); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range managed {
		deadline := time.Now().Add(30 * time.Second)
		for {
			m := &v1alpha1.ManagedSecret{}
			if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, m); err != nil {
				t.Fatal(err)
			}
			if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/app is not Ready in namespaced mode: %+v", ns, m.Status.Conditions)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &corev1.Secret{}); err != nil {
			t.Fatalf("%s: the projected Secret: %v", ns, err)
		}
	}
	ignored := &v1alpha1.ManagedSecret{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "team-c", Name: "app"}, ignored); err != nil {
		t.Fatal(err)
	}
	if len(ignored.Finalizers) != 0 || len(ignored.Status.Conditions) != 0 {
		t.Fatalf("the operator touched a namespace it does not manage: %v %v", ignored.Finalizers, ignored.Status.Conditions)
	}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "team-c", Name: "app"}, &corev1.Secret{}); err == nil {
		t.Fatal("a Secret was projected in a namespace the operator does not manage")
	}
}
