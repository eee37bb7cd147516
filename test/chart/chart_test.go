// Package chart tests the Helm chart by rendering it with the pinned helm binary (bin/helm, built
// by `make helm`): lint, the objects it makes for each option, and the values schema refusing bad
// values before anything is created.
package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/optout"
)

const chartDir = "../../charts/kube-secrets-manager"

func helmBin(t *testing.T) string {
	t.Helper()
	p := os.Getenv("HELM")
	if p == "" {
		p, _ = filepath.Abs("../../bin/helm")
	}
	if _, err := os.Stat(p); err != nil {
		optout.Need(t, optout.Helm, "helm ('make helm' builds it into bin/)", err)
	}
	return p
}

func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(helmBin(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }
func (o object) name() string { return o.str("metadata", "name") }
func (o object) str(path ...string) string {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func render(t *testing.T, set ...string) []object {
	t.Helper()
	args := []string{"template", "ksm", chartDir, "--namespace", "kube-secrets-manager"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, errOut, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", set, err, errOut)
	}
	var objs []object
	for _, doc := range strings.Split(out, "\n---") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if len(o) > 0 {
			objs = append(objs, o)
		}
	}
	return objs
}

func byKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func TestLint(t *testing.T) {
	out, errOut, err := helm(t, "lint", chartDir, "--strict")
	if err != nil || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
		t.Fatalf("helm lint: %v\n%s%s", err, out, errOut)
	}
}

func TestDefaults(t *testing.T) {
	objs := render(t)
	crds := byKind(objs, "CustomResourceDefinition")
	if len(crds) != 4 {
		t.Fatalf("%d CRDs", len(crds))
	}
	for _, c := range crds {
		if c.str("metadata", "annotations", "helm.sh/resource-policy") != "keep" {
			t.Errorf("CRD %s is not kept on uninstall", c.name())
		}
	}
	roles := map[string]object{}
	for _, r := range byKind(objs, "ClusterRole") {
		roles[r.name()] = r
	}
	for _, name := range []string{"kube-secrets-manager-kube-secrets-manager", "kube-secrets-manager-api-kube-secrets-manager",
		"secretsmanager-reader", "secretsmanager-writer", "secretsmanager-admin"} {
		if roles[name] == nil {
			t.Errorf("no ClusterRole %s", name)
		}
	}
	if len(roles) != 5 || len(byKind(objs, "ClusterRoleBinding")) != 2 {
		t.Fatalf("cluster-wide RBAC expected by default: %d ClusterRoles, %d bindings", len(roles), len(byKind(objs, "ClusterRoleBinding")))
	}
	// The operator's ClusterRole's rules are exactly the generated ones.
	raw, _ := os.ReadFile("../../config/rbac/role.yaml")
	var generated object
	_ = yaml.Unmarshal(raw, &generated)
	if !reflect.DeepEqual(roles["kube-secrets-manager-kube-secrets-manager"]["rules"], generated["rules"]) {
		t.Fatal("the chart's ClusterRole differs from config/rbac/role.yaml")
	}
	deps := byKind(objs, "Deployment")
	if len(deps) != 1 {
		t.Fatal("no Deployment")
	}
	b, _ := yaml.Marshal(deps[0])
	d := string(b)
	for _, want := range []string{"--leader-elect=true", "--metrics-bind-address=:8080", "--namespace=kube-secrets-manager",
		"readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false", "runAsNonRoot: true", "- ALL",
		"path: /healthz", "path: /readyz", "image: kube-secrets-manager:0.1.0", "--rotation-image=kube-secrets-manager:0.1.0"} {
		if !strings.Contains(d, want) {
			t.Errorf("Deployment lacks %q", want)
		}
	}
	if strings.Contains(d, "--watch-namespaces") {
		t.Error("cluster-wide by default")
	}
	if len(byKind(objs, "Service")) != 2 {
		t.Error("metrics and API Services expected")
	}
	for _, want := range []string{"--api-bind-address=:8443", "--api-token-audience=kube-secrets-manager", "--api-trust-bundle=kube-secrets-manager-api-ca"} {
		if !strings.Contains(d, want) {
			t.Errorf("Deployment lacks %q", want)
		}
	}
}

func TestCRDOptions(t *testing.T) {
	if n := len(byKind(render(t, "crds.enabled=false"), "CustomResourceDefinition")); n != 0 {
		t.Fatalf("crds.enabled=false rendered %d CRDs", n)
	}
	kept := byKind(render(t), "CustomResourceDefinition")
	if len(kept) != 4 {
		t.Fatalf("the defaults render %d CRDs, want 4", len(kept))
	}
	for _, c := range kept {
		if c.str("metadata", "annotations", "helm.sh/resource-policy") != "keep" {
			t.Fatalf("CRD %s is not kept on uninstall by default", c.name())
		}
	}
	unkept := byKind(render(t, "crds.keep=false"), "CustomResourceDefinition")
	if len(unkept) != 4 {
		t.Fatalf("crds.keep=false renders %d CRDs, want 4", len(unkept))
	}
	for _, c := range unkept {
		if c.str("metadata", "annotations", "helm.sh/resource-policy") != "" {
			t.Fatal("crds.keep=false still keeps")
		}
	}
}

func TestNamespacedRBAC(t *testing.T) {
	objs := render(t, "rbac.namespaced=true", "rbac.namespaces={team-a,team-b}")
	// The only cluster-wide grant to the operator is the API's: reviews of tokens and access, and
	// its own trust bundle; no namespace's objects.
	bindings := byKind(objs, "ClusterRoleBinding")
	if len(bindings) != 1 || bindings[0].name() != "kube-secrets-manager-api-kube-secrets-manager" {
		t.Fatalf("namespaced mode binds %d ClusterRoles", len(bindings))
	}
	for _, r := range byKind(objs, "ClusterRole") {
		if r.name() != "kube-secrets-manager-api-kube-secrets-manager" {
			continue
		}
		raw, _ := yaml.Marshal(r["rules"])
		for _, forbidden := range []string{"secrets", "managedsecrets", "jobs", "cronjobs", "secretversions"} {
			if strings.Contains(string(raw), "- "+forbidden+"\n") {
				t.Fatalf("the API's ClusterRole grants %s", forbidden)
			}
		}
	}
	namespaces := map[string]bool{}
	for _, r := range byKind(objs, "Role") {
		namespaces[r.str("metadata", "namespace")] = true
	}
	if !namespaces["team-a"] || !namespaces["team-b"] || !namespaces["kube-secrets-manager"] {
		t.Fatalf("Roles in %v", namespaces)
	}
	b, _ := yaml.Marshal(byKind(objs, "Deployment")[0])
	if !strings.Contains(string(b), "--watch-namespaces=team-a,team-b") {
		t.Fatal("the operator is not told its namespaces")
	}
}

func TestSchemaRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"unknownKey=1", "additional properties 'unknownKey' not allowed"},
		{"replicas=0", "replicas"},
		{"image.pullPolicy=Sometimes", "pullPolicy"},
		{"valueSizeLimit=10000000", "valueSizeLimit"},
		{"rbac.namespaced=true", "namespaces"},
		{"logLevel=verbose", "logLevel"},
		{"replicas=2,leaderElection.enabled=false", "/leaderElection/enabled': value must be true"},
		{"probePort=8080", "metrics.port and probePort must differ"},
	} {
		_, errOut, err := helm(t, "template", "ksm", chartDir, "--set", tc.set)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("--set %s: err %v, stderr %q", tc.set, err, errOut)
		}
	}
}

// dist/install.yaml, the kubectl-apply bundle, is the chart rendered with its defaults.
func TestBundleIsFresh(t *testing.T) {
	out, errOut, err := helm(t, "template", "kube-secrets-manager", chartDir, "--namespace", "kube-secrets-manager")
	if err != nil {
		t.Fatal(errOut)
	}
	bundle, err := os.ReadFile("../../dist/install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(bundle), out) {
		t.Fatal("dist/install.yaml is stale; run 'make bundle'")
	}
}
