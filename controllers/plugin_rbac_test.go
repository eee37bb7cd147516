package controllers

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/cli"
)

// userWith makes a user who holds only the given rules in the namespace, and returns a kubeconfig.
func userWith(t *testing.T, ns, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	u, err := testEnv.ControlPlane.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: name}}}
	if err := k8s.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	return path
}

func pluginAs(t *testing.T, kubeconfig, ns, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--kubeconfig", kubeconfig, "-n", ns, "--timeout", "10s")
	code := cli.Main(context.Background(), args, cli.IO{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	logs.Write([]byte("plugin stderr: " + errOut.String()))
	return code, out.String(), errOut.String()
}

// The README's table of permissions per command holds: each command works with exactly what the
// table lists, and changing a value needs patch on the ManagedSecret, not only Secret rights.
func TestPluginPermissionsPerCommand(t *testing.T) {
	ns := newNamespace(t)
	createReady(t, generated(ns, "perm"))
	msecGet := rbacv1.PolicyRule{APIGroups: []string{"kube-secrets-manager.io"}, Resources: []string{"managedsecrets"}, Verbs: []string{"get"}}
	msecPatch := rbacv1.PolicyRule{APIGroups: []string{"kube-secrets-manager.io"}, Resources: []string{"managedsecrets"}, Verbs: []string{"get", "patch"}}
	secrets := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "get", "delete"}}
	describe := []rbacv1.PolicyRule{msecGet,
		{APIGroups: []string{"kube-secrets-manager.io"}, Resources: []string{"secretversions"}, Verbs: []string{"list"}},
		{APIGroups: []string{"kube-secrets-manager.io"}, Resources: []string{"rotationpolicies"}, Verbs: []string{"get"}}}

	describer := userWith(t, ns, "describer", describe)
	for _, cmd := range []string{"describe", "versions"} {
		if code, _, errOut := pluginAs(t, describer, ns, "", cmd, "perm"); code != 0 {
			t.Errorf("%s with its documented permissions: %s", cmd, errOut)
		}
	}
	if code, _, _ := pluginAs(t, describer, ns, "", "get", "perm"); code == 0 {
		t.Error("get worked without Secret permissions")
	}

	reader := userWith(t, ns, "reader", []rbacv1.PolicyRule{msecGet, secrets})
	if code, out, errOut := pluginAs(t, reader, ns, "", "get", "perm"); code != 0 || !strings.Contains(out, "password") {
		t.Errorf("get with its documented permissions: %d %s", code, errOut)
	}
	before := len(versions(t, ns))
	code, _, errOut := pluginAs(t, reader, ns, `{"v":"CANARY-unauthorised"}`, "put", "perm", "-f", "-")
	if code == 0 || !strings.Contains(errOut, "forbidden") {
		t.Errorf("put without patch on ManagedSecrets: %d %s", code, errOut)
	}
	if len(versions(t, ns)) != before {
		t.Fatal("a put without patch permission made a version")
	}

	writer := userWith(t, ns, "writer", []rbacv1.PolicyRule{msecPatch, secrets})
	if code, _, errOut := pluginAs(t, writer, ns, `{"v":"CANARY-authorised"}`, "put", "perm", "-f", "-"); code != 0 {
		t.Errorf("put with its documented permissions: %s", errOut)
	}
	if code, _, errOut := pluginAs(t, writer, ns, "", "rollback", "perm"); code != 0 {
		t.Errorf("rollback with its documented permissions: %s", errOut)
	}

	lifecycle := userWith(t, ns, "lifecycle", []rbacv1.PolicyRule{msecPatch})
	for _, args := range [][]string{{"cancel-rotation", "perm"}, {"delete", "perm"}, {"restore", "perm"}} {
		if code, _, errOut := pluginAs(t, lifecycle, ns, "", args...); code != 0 {
			t.Errorf("%v with its documented permissions: %s", args, errOut)
		}
	}
}
