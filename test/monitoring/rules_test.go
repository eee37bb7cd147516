// Package monitoring tests the chart's alerts and dashboard queries with Prometheus's own promtool
// (bin/promtool, built by `make promtool`) on what the chart ships: the PrometheusRule rendered by the
// pinned helm (bin/helm, `make helm`) must pass `promtool check rules`, and alerts_test.yaml, unit
// tests in promtool's format, must pass `promtool test rules` against exactly those rules.
package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/optout"
)

const (
	chartDir = "../../charts/kube-secrets-manager"
	// promtoolOptOut is the KSM_SKIP name that lets these tests skip when promtool is missing.
	promtoolOptOut = "promtool"
)

// binary is the tool named by the environment variable env, or bin/<name>.
func binary(t *testing.T, env, name, optOut, hint string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p, _ = filepath.Abs(filepath.Join("../../bin", name))
	}
	if _, err := os.Stat(p); err != nil {
		optout.Need(t, optOut, fmt.Sprintf("%s ('make %s' builds it into bin/)", name, hint), err)
	}
	return p
}

func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	err := cmd.Run()
	return out.String(), err
}

func promtool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return run(t, binary(t, "PROMTOOL", "promtool", promtoolOptOut, "promtool"), args...)
}

// renderRules renders the chart's PrometheusRule (release namespace kube-secrets-manager, the
// defaults plus set) and returns its spec.groups as a Prometheus rules file.
func renderRules(t *testing.T, set ...string) string {
	t.Helper()
	return rulesFile(t, renderPrometheusRule(t, set...))
}

// renderPrometheusRule is the chart's PrometheusRule as helm renders it.
func renderPrometheusRule(t *testing.T, set ...string) string {
	t.Helper()
	args := []string{"template", "ksm", chartDir, "--namespace", "kube-secrets-manager",
		"--show-only", "templates/prometheusrule.yaml", "--set", "metrics.prometheusRule.enabled=true"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := run(t, binary(t, "HELM", "helm", optout.Helm, "helm"), args...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	return out
}

// rulesFile is the spec.groups of a PrometheusRule as a Prometheus rules file.
func rulesFile(t *testing.T, out string) string {
	t.Helper()
	var pr struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(out), &pr); err != nil {
		t.Fatalf("the rendered PrometheusRule does not parse: %v\n%s", err, out)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || len(pr.Spec.Groups) == 0 {
		t.Fatalf("not a PrometheusRule with groups:\n%s", out)
	}
	rules, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	return string(rules)
}

// testRules runs alerts_test.yaml against rules with promtool test rules.
func testRules(t *testing.T, rules string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	tests, err := os.ReadFile("alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o600); err != nil {
		t.Fatal(err)
	}
	return promtool(t, "test", "rules", filepath.Join(dir, "alerts_test.yaml"))
}

func checkRules(t *testing.T, rules string) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	return promtool(t, "check", "rules", file)
}

func TestRulesCheck(t *testing.T) {
	out, err := checkRules(t, renderRules(t))
	if err != nil || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestAlerts(t *testing.T) {
	out, err := testRules(t, renderRules(t))
	if err != nil || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// The unit tests notice when the shipped rules change: each change below, to a value or to an
// expression, makes them fail on the alert it touches.
func TestAlertTestsCatchChanges(t *testing.T) {
	for _, tc := range []struct {
		name      string
		set       []string
		old, new  string
		wantAlert string
	}{
		{name: "a longer for", set: []string{"metrics.prometheusRule.alerts.rotationFailed.for=10m"},
			wantAlert: "KubeSecretsManagerRotationFailed"},
		{name: "another severity", set: []string{"metrics.prometheusRule.alerts.decryptionFailing.severity=info"},
			wantAlert: "KubeSecretsManagerDecryptionFailing"},
		{name: "another job", set: []string{"metrics.prometheusRule.job=ksm"},
			wantAlert: "KubeSecretsManagerSecretStale"},
		{name: "replicas counted twice", old: "max by (namespace, name) (kube_secrets_manager_secret_rotation_failed",
			new: "sum by (namespace, name) (kube_secrets_manager_secret_rotation_failed", wantAlert: "KubeSecretsManagerRotationFailed"},
		{name: "only success counts as progress", old: `result!="error"`, new: `result="success"`,
			wantAlert: "KubeSecretsManagerNotReconciling"},
		{name: "other releases' operators count", old: `absent(up{job="kube-secrets-manager-metrics",namespace="kube-secrets-manager"} == 1)`,
			new: `absent(up{job="kube-secrets-manager-metrics"} == 1)`, wantAlert: "KubeSecretsManagerNotReconciling"},
		{name: "an idle queue is stuck", old: `name="managedsecret"}) > 0`, new: `name="managedsecret"}) >= 0`,
			wantAlert: "KubeSecretsManagerNotReconciling"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rendered := renderPrometheusRule(t, tc.set...)
			if tc.old != "" {
				if strings.Count(rendered, tc.old) != 1 {
					t.Fatalf("the rules do not hold %q once:\n%s", tc.old, rendered)
				}
				rendered = strings.Replace(rendered, tc.old, tc.new, 1)
			}
			out, err := testRules(t, rulesFile(t, rendered))
			if err == nil {
				t.Fatalf("promtool test rules passes on changed rules:\n%s", out)
			}
			if !strings.Contains(out, "alertname: "+tc.wantAlert) {
				t.Fatalf("promtool test rules fails, but not on %s:\n%s", tc.wantAlert, out)
			}
		})
	}
}

// grafanaVariables are the dashboard's variables and Grafana's built-in intervals, with values
// that make its queries plain PromQL.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1d", "$job", ".+", "$namespace", ".*")

// Every query of the dashboard is PromQL that Prometheus accepts (each becomes a recording rule
// that promtool checks).
func TestDashboardQueriesParse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "dashboards/kube-secrets-manager.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var rules []map[string]string
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			walk(p.Panels)
			for _, tg := range p.Targets {
				if strings.Contains(grafanaVariables.Replace(tg.Expr), "$") {
					t.Errorf("panel %q: unknown variable in %s", p.Title, tg.Expr)
				}
				rules = append(rules, map[string]string{
					"record": fmt.Sprintf("dashboard:panel_%d_%s", p.ID, tg.RefID),
					"expr":   grafanaVariables.Replace(tg.Expr),
				})
			}
		}
	}
	walk(dash.Panels)
	if len(rules) < 20 {
		t.Fatalf("only %d queries in the dashboard", len(rules))
	}
	file, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := checkRules(t, string(file))
	if err != nil || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`SUCCESS: (\d+) rules found`).FindStringSubmatch(out); m == nil || m[1] != fmt.Sprint(len(rules)) {
		t.Fatalf("promtool did not check the %d queries:\n%s", len(rules), out)
	}
}

type panel struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}
