// Package chart tests the Helm chart by rendering it with the pinned helm binary (bin/helm, built
// by `make helm`): lint, the objects it makes for each option, and the values schema refusing bad
// values before anything is created.
package chart

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
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
		"secretsmanager-reader", "secretsmanager-writer", "secretsmanager-admin",
		"kube-secrets-manager-metrics-auth-kube-secrets-manager", "kube-secrets-manager-metrics-reader-kube-secrets-manager"} {
		if roles[name] == nil {
			t.Errorf("no ClusterRole %s", name)
		}
	}
	if len(roles) != 7 || len(byKind(objs, "ClusterRoleBinding")) != 3 {
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
	// The only cluster-wide grants to the operator are the API's (reviews of tokens and access,
	// and its own trust bundle) and the metrics endpoint's (reviews); no namespace's objects.
	bindings := byKind(objs, "ClusterRoleBinding")
	names := map[string]bool{}
	for _, b := range bindings {
		names[b.name()] = true
	}
	if len(bindings) != 2 || !names["kube-secrets-manager-api-kube-secrets-manager"] || !names["kube-secrets-manager-metrics-auth-kube-secrets-manager"] {
		t.Fatalf("namespaced mode binds %d ClusterRoles: %v", len(bindings), names)
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

// The monitoring objects (README, "Monitoring") are all opt-in, except the ClusterRole that lets a
// scraper read the metrics endpoint, which comes with the metrics.
func TestMonitoringOffByDefault(t *testing.T) {
	objs := render(t)
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
		if n := len(byKind(objs, kind)); n != 0 {
			t.Errorf("the defaults render %d %s", n, kind)
		}
	}
	for _, cm := range byKind(objs, "ConfigMap") {
		if cm.str("metadata", "labels", "grafana_dashboard") != "" {
			t.Errorf("the defaults render the dashboard ConfigMap %s", cm.name())
		}
	}
	if metricsReader(objs) == nil {
		t.Error("no metrics-reader ClusterRole with the metrics enabled")
	}
	if metricsReader(render(t, "metrics.enabled=false")) != nil {
		t.Error("metrics-reader ClusterRole without metrics")
	}
	// Each of them needs the metrics endpoint.
	for _, set := range []string{"metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "metrics.dashboard.enabled=true"} {
		_, errOut, err := helm(t, "template", "ksm", chartDir, "--set", "metrics.enabled=false", "--set", set)
		if err == nil || !strings.Contains(errOut, "needs metrics.enabled") {
			t.Errorf("%s without metrics: err %v, stderr %q", set, err, errOut)
		}
	}
}

func metricsReader(objs []object) object {
	for _, r := range byKind(objs, "ClusterRole") {
		if r.name() == "kube-secrets-manager-metrics-reader-kube-secrets-manager" {
			return r
		}
	}
	return nil
}

func TestServiceMonitor(t *testing.T) {
	objs := render(t, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.interval=15s",
		"metrics.serviceMonitor.labels.release=prometheus")
	mons := byKind(objs, "ServiceMonitor")
	if len(mons) != 1 {
		t.Fatalf("%d ServiceMonitors", len(mons))
	}
	m := mons[0]
	if m.str("apiVersion") != "monitoring.coreos.com/v1" || m.str("metadata", "namespace") != "kube-secrets-manager" ||
		m.str("metadata", "labels", "release") != "prometheus" {
		t.Fatalf("ServiceMonitor metadata: %v %v", m["apiVersion"], m["metadata"])
	}
	var spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []map[string]any `json:"endpoints"`
	}
	remarshal(t, m["spec"], &spec)
	if !reflect.DeepEqual(spec.NamespaceSelector.MatchNames, []string{"kube-secrets-manager"}) || len(spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor spec: %+v", spec)
	}
	// It selects the metrics Service, by its labels and its port's name, and no other port.
	var selected []string
	for _, svc := range byKind(objs, "Service") {
		var s struct {
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Ports []struct {
					Name string `json:"name"`
				} `json:"ports"`
			} `json:"spec"`
		}
		remarshal(t, svc, &s)
		matches := len(spec.Selector.MatchLabels) > 0
		for k, v := range spec.Selector.MatchLabels {
			matches = matches && s.Metadata.Labels[k] == v
		}
		for _, p := range s.Spec.Ports {
			if matches && p.Name == spec.Endpoints[0]["port"] {
				selected = append(selected, s.Metadata.Name)
			}
		}
	}
	if !reflect.DeepEqual(selected, []string{"kube-secrets-manager-metrics"}) {
		t.Fatalf("the ServiceMonitor scrapes the ports of %v", selected)
	}
	ep := spec.Endpoints[0]
	want := map[string]any{
		"port": "metrics", "path": "/metrics", "interval": "15s", "honorLabels": true, "scheme": "https",
		"bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
		"tlsConfig":       map[string]any{"insecureSkipVerify": true},
	}
	if !reflect.DeepEqual(ep, want) {
		t.Fatalf("secure endpoint:\n got %v\nwant %v", ep, want)
	}
	// The scraper's token must be allowed to get /metrics, and nothing else.
	raw, _ := yaml.Marshal(metricsReader(objs)["rules"])
	if string(raw) != "- nonResourceURLs:\n  - /metrics\n  verbs:\n  - get\n" {
		t.Fatalf("metrics-reader rules:\n%s", raw)
	}

	plain := byKind(render(t, "metrics.serviceMonitor.enabled=true", "metrics.secure=false", "metrics.serviceMonitor.scrapeTimeout=10s"), "ServiceMonitor")
	var plainSpec struct {
		Endpoints []map[string]any `json:"endpoints"`
	}
	remarshal(t, plain[0]["spec"], &plainSpec)
	want = map[string]any{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s", "honorLabels": true, "scheme": "http"}
	if len(plainSpec.Endpoints) != 1 || !reflect.DeepEqual(plainSpec.Endpoints[0], want) {
		t.Fatalf("plain endpoint:\n got %v\nwant %v", plainSpec.Endpoints, want)
	}
}

func remarshal(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		t.Fatal(err)
	}
}

var alertKeys = map[string]string{
	"KubeSecretsManagerRotationFailed":    "rotationFailed",
	"KubeSecretsManagerRotationOverdue":   "rotationOverdue",
	"KubeSecretsManagerSecretStale":       "secretStale",
	"KubeSecretsManagerDecryptionFailing": "decryptionFailing",
	"KubeSecretsManagerNotReconciling":    "notReconciling",
}

type promRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func TestPrometheusRule(t *testing.T) {
	rules := byKind(render(t, "metrics.prometheusRule.enabled=true", "metrics.prometheusRule.labels.release=prometheus",
		"metrics.prometheusRule.alerts.rotationFailed.for=1h", "metrics.prometheusRule.alerts.notReconciling.severity=page"), "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("%d PrometheusRules", len(rules))
	}
	pr := rules[0]
	if pr.str("apiVersion") != "monitoring.coreos.com/v1" || pr.str("metadata", "namespace") != "kube-secrets-manager" ||
		pr.str("metadata", "labels", "release") != "prometheus" {
		t.Fatalf("PrometheusRule metadata: %v %v", pr["apiVersion"], pr["metadata"])
	}
	var spec struct {
		Groups []struct {
			Name  string     `json:"name"`
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	remarshal(t, pr["spec"], &spec)
	wantFor := map[string]string{"rotationFailed": "1h", "rotationOverdue": "15m", "secretStale": "15m", "decryptionFailing": "5m", "notReconciling": "15m"}
	wantSeverity := map[string]string{"rotationFailed": "warning", "rotationOverdue": "warning", "secretStale": "warning", "decryptionFailing": "critical", "notReconciling": "page"}
	seen := map[string]int{}
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			key, ok := alertKeys[r.Alert]
			if !ok {
				t.Errorf("unexpected rule %q in group %s", r.Alert, g.Name)
				continue
			}
			seen[r.Alert]++
			if r.For != wantFor[key] || r.Labels["severity"] != wantSeverity[key] {
				t.Errorf("%s: for %q severity %q, want %q %q", r.Alert, r.For, r.Labels["severity"], wantFor[key], wantSeverity[key])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s lacks a summary or a description", r.Alert)
			}
			if key != "notReconciling" && !strings.Contains(r.Annotations["description"], "{{ $labels.namespace }}/{{ $labels.name }}") {
				t.Errorf("%s's description does not name the secret: %q", r.Alert, r.Annotations["description"])
			}
			if key == "notReconciling" && !strings.Contains(r.Annotations["description"], "kube-secrets-manager") {
				t.Errorf("%s's description does not name the operator's namespace", r.Alert)
			}
			if bad := unknownMetrics(r.Expr); len(bad) > 0 {
				t.Errorf("%s uses metrics outside the contract: %v in %s", r.Alert, bad, r.Expr)
			}
		}
	}
	for alert := range alertKeys {
		if seen[alert] == 0 {
			t.Errorf("no %s alert", alert)
		}
	}
	// The job label defaults to the metrics Service's name (what the ServiceMonitor gives) and can
	// be changed; the operator's own series are selected in its namespace.
	b, _ := yaml.Marshal(pr["spec"])
	if !strings.Contains(string(b), `up{job="kube-secrets-manager-metrics",namespace="kube-secrets-manager"}`) {
		t.Errorf("the rules do not select the operator's up series:\n%s", b)
	}
	other := byKind(render(t, "metrics.prometheusRule.enabled=true", "metrics.prometheusRule.job=ksm"), "PrometheusRule")
	b, _ = yaml.Marshal(other[0]["spec"])
	if strings.Contains(string(b), `job="kube-secrets-manager-metrics"`) || !strings.Contains(string(b), `kube_secrets_manager_secret_stale{job="ksm"}`) {
		t.Errorf("metrics.prometheusRule.job is not used:\n%s", b)
	}
}

func TestGrafanaDashboard(t *testing.T) {
	var cms []object
	for _, cm := range byKind(render(t, "metrics.dashboard.enabled=true", "metrics.dashboard.annotations.grafana_folder=Secrets"), "ConfigMap") {
		if cm.str("metadata", "labels", "grafana_dashboard") == "1" {
			cms = append(cms, cm)
		}
	}
	if len(cms) != 1 {
		t.Fatalf("%d dashboard ConfigMaps", len(cms))
	}
	if cms[0].str("metadata", "annotations", "grafana_folder") != "Secrets" {
		t.Error("metrics.dashboard.annotations are not set")
	}
	file, err := os.ReadFile(chartDir + "/dashboards/kube-secrets-manager.json")
	if err != nil {
		t.Fatal(err)
	}
	shipped := cms[0].str("data", "kube-secrets-manager.json")
	if strings.TrimSpace(shipped) != strings.TrimSpace(string(file)) {
		t.Fatal("the ConfigMap does not hold dashboards/kube-secrets-manager.json")
	}
	var dash struct {
		UID        string           `json:"uid"`
		Title      string           `json:"title"`
		Panels     []map[string]any `json:"panels"`
		Templating struct {
			List []map[string]any `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(shipped))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no uid, title or panels")
	}
	used := map[string]bool{}
	ids := map[float64]bool{}
	var walk func([]map[string]any)
	walk = func(panels []map[string]any) {
		for _, p := range panels {
			id, _ := p["id"].(float64)
			if ids[id] {
				t.Errorf("panel id %v is not unique", id)
			}
			ids[id] = true
			var nested []map[string]any
			remarshal(t, p["panels"], &nested)
			walk(nested)
			if p["type"] == "row" {
				continue
			}
			var targets []struct {
				Expr string `json:"expr"`
			}
			remarshal(t, p["targets"], &targets)
			if len(targets) == 0 {
				t.Errorf("panel %q has no query", p["title"])
			}
			for _, tg := range targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q has an empty query", p["title"])
				}
				if bad := unknownMetrics(tg.Expr); len(bad) > 0 {
					t.Errorf("panel %q uses metrics outside the contract: %v in %s", p["title"], bad, tg.Expr)
				}
				for _, m := range metricNames(tg.Expr) {
					used[m] = true
				}
			}
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if q, ok := v["definition"].(string); ok {
			if bad := unknownMetrics(labelValuesSelector(q)); len(bad) > 0 {
				t.Errorf("variable %v uses metrics outside the contract: %v", v["name"], bad)
			}
		}
	}
	// Every metric of the contract is on the dashboard somewhere.
	for _, m := range ksmMetrics {
		if m == "kube_secrets_manager_rotation_duration_seconds" {
			m += "_bucket"
		}
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

func TestMonitoringSchemaRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"metrics.serviceMonitor.interval=often", "interval"},
		{"metrics.serviceMonitor.unknown=1", "additional properties 'unknown' not allowed"},
		{"metrics.prometheusRule.alerts.rotationFailed.for=5 minutes", "for"},
		{"metrics.prometheusRule.alerts.stale.for=5m", "additional properties 'stale' not allowed"},
		{`metrics.prometheusRule.job=a"b`, "job"},
		{"metrics.secure=yes", "secure"},
		{"metrics.dashboard.labels.grafana=1", "labels"},
	} {
		_, errOut, err := helm(t, "template", "ksm", chartDir, "--set", tc.set)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("--set %s: err %v, stderr %q", tc.set, err, errOut)
		}
	}
}

// ksmMetrics is the operator's metric contract (README, "Monitoring").
var ksmMetrics = []string{
	"kube_secrets_manager_secret_info",
	"kube_secrets_manager_secret_ready",
	"kube_secrets_manager_secret_last_changed_timestamp_seconds",
	"kube_secrets_manager_secret_last_rotated_timestamp_seconds",
	"kube_secrets_manager_secret_next_rotation_timestamp_seconds",
	"kube_secrets_manager_secret_versions",
	"kube_secrets_manager_secret_rotation_overdue",
	"kube_secrets_manager_secret_stale",
	"kube_secrets_manager_secret_rotation_failed",
	"kube_secrets_manager_secret_decryption_failing",
	"kube_secrets_manager_rotations_total",
	"kube_secrets_manager_rotation_duration_seconds",
	"kube_secrets_manager_decryption_failures_total",
	"kube_secrets_manager_value_size_refusals_total",
	"kube_secrets_manager_requests_total",
}

// knownMetric reports whether name is in the contract, a series of its histogram, or one of
// controller-runtime's and Prometheus's own.
func knownMetric(name string) bool {
	for _, m := range ksmMetrics {
		if name == m || (m == "kube_secrets_manager_rotation_duration_seconds" &&
			(name == m+"_bucket" || name == m+"_sum" || name == m+"_count")) {
			return true
		}
	}
	for _, prefix := range []string{"controller_runtime_", "workqueue_"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return name == "up"
}

var (
	promQuoted   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promWord     = regexp.MustCompile(`[0-9.]*[a-zA-Z_:][a-zA-Z0-9_:]*(?:\s*\()?`)
	labelValues  = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
		"ignoring": true, "group_left": true, "group_right": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// metricNames lists the metric names a PromQL expression (or a Grafana label_values query)
// selects: the words left after string literals, label matchers, ranges and grouping clauses are
// removed that are neither functions, keywords nor numbers.
func metricNames(expr string) []string {
	s := promQuoted.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, w := range promWord.FindAllString(s, -1) {
		if strings.HasSuffix(w, "(") || promKeywords[strings.ToLower(w)] || strings.ContainsAny(w[:1], "0123456789.") {
			continue
		}
		names = append(names, w)
	}
	return names
}

// labelValuesSelector is the series selector of a Grafana label_values(selector, label) query.
func labelValuesSelector(query string) string {
	if m := labelValues.FindStringSubmatch(query); m != nil {
		return m[1]
	}
	return query
}

func unknownMetrics(expr string) []string {
	var bad []string
	for _, m := range metricNames(expr) {
		if !knownMetric(m) {
			bad = append(bad, m)
		}
	}
	return bad
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (le) (rate(a_bucket{job=~"$job", x="y}"}[$__rate_interval]))`:                         {"a_bucket"},
		`b / ignoring (result) group_left sum without (x) (c) > 0 and on () absent(up{job="j"} == 1)`: {"b", "c", "up"},
		`histogram_quantile(0.99, d) * 1e3 unless bool e offset 5m`:                                   {"d", "e"},
		labelValuesSelector(`label_values(f{controller="managedsecret"}, job)`):                       {"f"},
	} {
		if got := metricNames(expr); !reflect.DeepEqual(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
	if bad := unknownMetrics(`kube_secrets_manager_rotation_duration_seconds_bucket + kube_secrets_manager_secret_age`); !reflect.DeepEqual(bad, []string{"kube_secrets_manager_secret_age"}) {
		t.Errorf("unknownMetrics: %v", bad)
	}
}
