package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// grantRole gives a user (or a group) only the given rules in the namespace.
func grantRole(t *testing.T, ns, kind, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	roleName := strings.ToLower(kind) + "-" + name
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: roleName}, Rules: rules}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: roleName},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: roleName},
		Subjects: []rbacv1.Subject{{Kind: kind, APIGroup: "rbac.authorization.k8s.io", Name: name}}}
	if err := k8s.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	waitForGrant(t, ns, kind, name, rules)
}

// waitForGrant waits until every verb the rules grant a user (or a group) in ns is allowed: the
// API server's authorizer reads roles from its own cache, so a request made at once may be refused
// for a grant it has not seen yet.
func waitForGrant(t *testing.T, ns, kind, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	for _, rule := range rules {
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				for _, verb := range rule.Verbs {
					res, sub, _ := strings.Cut(resource, "/")
					attrs := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: res, Subresource: sub}
					if len(rule.ResourceNames) > 0 {
						attrs.Name = rule.ResourceNames[0]
					}
					spec := authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: attrs}
					if kind == rbacv1.GroupKind {
						spec.User, spec.Groups = "someone", []string{name}
					} else {
						spec.User = name
					}
					eventually(t, fmt.Sprintf("%s %s may %s %s", kind, name, verb, resource), func() error {
						sar := &authorizationv1.SubjectAccessReview{Spec: spec}
						if err := k8s.Create(ctx, sar); err != nil {
							return err
						}
						if !sar.Status.Allowed {
							return fmt.Errorf("not allowed yet: %s", sar.Status.Reason)
						}
						return nil
					})
				}
			}
		}
	}
}

// pluginAs runs the plugin with the suite's admin kubeconfig, impersonating a user through
// kubectl's --as (the admin is in system:masters, which may impersonate).
func pluginAs(t *testing.T, user, ns, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return plugin(t, ns, stdin, append(args, "--as", user, "--timeout", "10s")...)
}

// The README's table of permissions per command holds: each command works with exactly what the
// table lists, and changing a value needs patch on the ManagedSecret, not only Secret rights.
// Refusals by RBAC are AccessDeniedException (exit 10).
func TestPluginPermissionsPerCommand(t *testing.T) {
	ns := newNamespace(t)
	createReady(t, generated(ns, "perm"))
	createReady(t, generated(ns, "keep"))
	msecGet := rbacv1.PolicyRule{APIGroups: []string{"kube-secrets-manager.io"}, Resources: []string{"managedsecrets"}, Verbs: []string{"get"}}
	msecPatch := rbacv1.PolicyRule{APIGroups: []string{"kube-secrets-manager.io"}, Resources: []string{"managedsecrets"}, Verbs: []string{"get", "patch"}}
	secrets := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "get", "delete"}}
	describe := []rbacv1.PolicyRule{msecGet,
		{APIGroups: []string{"kube-secrets-manager.io"}, Resources: []string{"secretversions"}, Verbs: []string{"list"}},
		{APIGroups: []string{"kube-secrets-manager.io"}, Resources: []string{"rotationpolicies"}, Verbs: []string{"get"}}}

	grantRole(t, ns, "User", "describer", describe)
	for _, cmd := range []string{"describe", "versions"} {
		if code, out, errOut := pluginAs(t, "describer", ns, "", cmd, "perm"); code != 0 || !strings.Contains(out, "AWSCURRENT") {
			t.Errorf("%s with its documented permissions: %d %s", cmd, code, errOut)
		}
	}
	code, _, errOut := pluginAs(t, "describer", ns, "", "get", "perm")
	wantAWSError(t, "get without Secret permissions", code, errOut, awserr.AccessDenied, "creating the request Secret failed")
	code, _, errOut = pluginAs(t, "describer", ns, "", "describe", "missing")
	wantAWSError(t, "describe of a missing secret", code, errOut, awserr.ResourceNotFound, awserr.MsgSecretNotFound)

	// Someone with no rights at all: refused at the first read.
	code, _, errOut = pluginAs(t, "nobody", ns, "", "describe", "perm")
	wantAWSError(t, "describe without permissions", code, errOut, awserr.AccessDenied, `User "nobody" cannot get resource "managedsecrets"`)

	grantRole(t, ns, "User", "reader", []rbacv1.PolicyRule{msecGet, secrets})
	if code, out, errOut := pluginAs(t, "reader", ns, "", "get", "perm"); code != 0 || !strings.Contains(out, "password") {
		t.Errorf("get with its documented permissions: %d %s", code, errOut)
	}
	if code, out, errOut := pluginAs(t, "reader", ns, "", "get", "perm", "--stage", "AWSCURRENT"); code != 0 || !strings.Contains(out, "password") {
		t.Errorf("get --stage AWSCURRENT with get's permissions: %d %s", code, errOut)
	}
	// Any other version is not projected anywhere: reading it needs patch, like a change.
	current := getMsec(t, ns, "perm").Status.CurrentVersionID
	for _, args := range [][]string{{"get", "perm", "--stage", "AWSPREVIOUS"}, {"get", "perm", "--version-id", current}} {
		code, out, errOut := pluginAs(t, "reader", ns, "", args...)
		wantAWSError(t, strings.Join(args, " ")+" without patch", code, errOut, awserr.AccessDenied, "cannot patch resource \"managedsecrets\"")
		if out != "" {
			t.Errorf("%v printed %q", args, out)
		}
	}
	before := len(versions(t, ns))
	code, _, errOut = pluginAs(t, "reader", ns, `{"v":"CANARY-unauthorised"}`, "put", "perm", "-f", "-")
	wantAWSError(t, "put without patch on ManagedSecrets", code, errOut, awserr.AccessDenied, "forbidden")
	if len(versions(t, ns)) != before {
		t.Fatal("a put without patch permission made a version")
	}

	grantRole(t, ns, "User", "writer", []rbacv1.PolicyRule{msecPatch, secrets})
	if code, _, errOut := pluginAs(t, "writer", ns, `{"v":"CANARY-authorised"}`, "put", "perm", "-f", "-"); code != 0 {
		t.Errorf("put with its documented permissions: %s", errOut)
	}
	if code, out, errOut := pluginAs(t, "writer", ns, "", "get", "perm", "--stage", "AWSPREVIOUS"); code != 0 || !strings.Contains(out, "password") {
		t.Errorf("get --stage AWSPREVIOUS with patch: %d %s", code, errOut)
	}
	if code, _, errOut := pluginAs(t, "writer", ns, "", "rollback", "perm"); code != 0 {
		t.Errorf("rollback with its documented permissions: %s", errOut)
	}

	grantRole(t, ns, "User", "lifecycle", []rbacv1.PolicyRule{msecPatch})
	// cancel-rotation and rotate need a secret with rotation configured (AWS refuses them otherwise).
	if err := k8s.Create(context.Background(), policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	createReady(t, rotated(ns, "rotated", "pw"))
	for _, args := range [][]string{{"cancel-rotation", "rotated"}, {"rotate", "rotated"}, {"delete", "perm"}, {"restore", "perm"}} {
		if code, _, errOut := pluginAs(t, "lifecycle", ns, "", args...); code != 0 {
			t.Errorf("%v with its documented permissions: %s", args, errOut)
		}
	}
	code, _, errOut = pluginAs(t, "lifecycle", ns, "", "delete", "keep", "--force-delete-without-recovery")
	wantAWSError(t, "a forced delete without delete on ManagedSecrets", code, errOut, awserr.AccessDenied, "cannot delete resource")
	getMsec(t, ns, "keep")

	// --as-group: the rights come from the impersonated group.
	grantRole(t, ns, "Group", "ksm-describers", describe)
	if code, _, errOut := pluginAs(t, "someone", ns, "", "describe", "perm", "--as-group", "ksm-describers"); code != 0 {
		t.Errorf("describe as a member of a group allowed to: %s", errOut)
	}
	code, _, errOut = pluginAs(t, "someone", ns, "", "describe", "perm")
	wantAWSError(t, "describe as someone outside the group", code, errOut, awserr.AccessDenied, "forbidden")
}
