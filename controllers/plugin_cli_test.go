package controllers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/cli"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
)

// pluginErrorLine is stderr's error line, after checking there is exactly one.
func pluginErrorLine(t *testing.T, what, errOut string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(errOut, "\n"), "\n") {
		if strings.HasPrefix(l, "error: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Errorf("%s: want one error line, stderr %q", what, errOut)
		return ""
	}
	if strings.Contains(errOut, "CANARY") {
		t.Errorf("%s: stderr quotes a value: %q", what, errOut)
	}
	return lines[0]
}

// wantAWSError checks a failure of an AWS type: "error: <type>: <message>" on one line and the
// exit code awserr gives the type.
func wantAWSError(t *testing.T, what string, code int, errOut, typ, msg string) {
	t.Helper()
	line := pluginErrorLine(t, what, errOut)
	if code != awserr.ExitCode(typ) || !strings.HasPrefix(line, "error: "+typ+": ") || !strings.Contains(line, msg) {
		t.Errorf("%s: exit %d, %q; want exit %d and \"error: %s: ...%s...\"", what, code, line, awserr.ExitCode(typ), typ, msg)
	}
}

// wantRefusal checks a refusal answered by the operator: with an AWS type ("" for any), the
// exit code is the type's; an answer without a type (an operator that does not type this
// refusal) is "error: <message>" with exit 1.
func wantRefusal(t *testing.T, what string, code int, errOut, typ, msg string) {
	t.Helper()
	line := pluginErrorLine(t, what, errOut)
	if !strings.Contains(line, msg) {
		t.Errorf("%s: %q does not say %q", what, line, msg)
	}
	m := regexp.MustCompile(`^error: ([A-Za-z]+(?:Exception|Failure|Error)): `).FindStringSubmatch(line)
	switch {
	case m == nil && code != 1:
		t.Errorf("%s: untyped refusal with exit %d, want 1: %q", what, code, line)
	case m != nil && code != awserr.ExitCode(m[1]):
		t.Errorf("%s: %s with exit %d, want %d", what, m[1], code, awserr.ExitCode(m[1]))
	case m != nil && typ != "" && m[1] != typ:
		t.Errorf("%s: type %s, want %s", what, m[1], typ)
	}
}

// wantUsageError checks a bad argument: exit 2 and one error line.
func wantUsageError(t *testing.T, what string, code int, errOut string) {
	t.Helper()
	if line := pluginErrorLine(t, what, errOut); code != 2 || line == "" {
		t.Errorf("%s: exit %d, stderr %q; want 2", what, code, errOut)
	}
}

// runPlugin drives the plugin with exactly the given arguments (no flags added).
func runPlugin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), args, cli.IO{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	logs.Write([]byte("plugin stderr: " + errOut.String()))
	return code, out.String(), errOut.String()
}

// completePlugin runs the completion request kubectl's helper makes, with the connection flags first.
func completePlugin(t *testing.T, flags []string, args ...string) []string {
	t.Helper()
	code, out, errOut := runPlugin(t, "", append(append([]string{cli.CompleteCommand}, flags...), args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d, %s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("__complete %q: no directive: %q", args, out)
	}
	return lines[:len(lines)-1]
}

// Every command's data comes back parseable as JSON and as YAML, with the same fields.
func TestPluginOutputFormatsParseBack(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	first := createReady(t, rotated(ns, "fmt", "pw")).Status.CurrentVersionID
	parse := func(format, out string) map[string]any {
		t.Helper()
		var m map[string]any
		var err error
		if format == "yaml" {
			err = yaml.Unmarshal([]byte(out), &m)
			if json.Valid([]byte(out)) {
				t.Errorf("-o yaml printed JSON: %s", out)
			}
		} else {
			err = json.Unmarshal([]byte(out), &m)
		}
		if err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, out)
		}
		return m
	}
	token := "66666666-aaaa-bbbb-cccc-000000000006"
	for _, format := range []string{"json", "yaml"} {
		code, out, errOut := plugin(t, ns, `{"k":"CANARY-fmt-`+format+`"}`, "put", "fmt", "-f", "-", "--stages", "fmt-"+format, "-o", format)
		if code != 0 {
			t.Fatalf("put -o %s: %s", format, errOut)
		}
		put := parse(format, out)
		if put["Name"] != "fmt" || !strings.HasPrefix(put["ARN"].(string), "arn:kubernetes:secretsmanager:") || fmt.Sprint(put["VersionStages"]) != "[fmt-"+format+"]" {
			t.Errorf("put -o %s: %v", format, put)
		}
		code, out, errOut = plugin(t, ns, "", "get", "fmt", "--stage", "fmt-"+format, "-o", format)
		if code != 0 {
			t.Fatalf("get -o %s: %s", format, errOut)
		}
		got := parse(format, out)
		if got["SecretString"] != `{"k":"CANARY-fmt-`+format+`"}` || got["VersionId"] != put["VersionId"] || fmt.Sprint(got["VersionStages"]) != "[fmt-"+format+"]" {
			t.Errorf("get -o %s: %v", format, got)
		}
		code, out, _ = plugin(t, ns, "", "describe", "fmt", "-o", format)
		d := parse(format, out)
		toStages, _ := d["VersionIdsToStages"].(map[string]any)
		if code != 0 || fmt.Sprint(toStages[first]) != "[AWSCURRENT]" || fmt.Sprint(toStages[put["VersionId"].(string)]) != "[fmt-"+format+"]" ||
			d["RotationStrategy"] != v1alpha1.StrategyPassword || d["Description"] != "orders database" {
			t.Errorf("describe -o %s: %v", format, d)
		}
		code, out, _ = plugin(t, ns, "", "versions", "fmt", "-o", format)
		vs, _ := parse(format, out)["Versions"].([]any)
		listed := map[string]map[string]any{}
		for _, v := range vs {
			listed[v.(map[string]any)["VersionId"].(string)] = v.(map[string]any)
		}
		if v := listed[put["VersionId"].(string)]; code != 0 || len(vs) < 2 || v == nil || fmt.Sprint(v["VersionStages"]) != "[fmt-"+format+"]" ||
			fmt.Sprint(v["KmsKeyIds"]) != "["+storedRing(t).Primary+"]" || fmt.Sprint(listed[first]["VersionStages"]) != "[AWSCURRENT]" {
			t.Errorf("versions -o %s: %s", format, out)
		}
	}
	code, out, errOut := plugin(t, ns, "", "update-stage", "fmt", "--stage", "blue", "--move-to-version-id", first, "-o", "yaml")
	if r := parse("yaml", out); code != 0 || r["VersionId"] != first || fmt.Sprint(r["VersionStages"]) != "[AWSCURRENT blue]" {
		t.Errorf("update-stage -o yaml: %d %s %s", code, out, errOut)
	}
	code, out, _ = plugin(t, ns, "", "put", "fmt", "-f", valueFile(t, "CANARY-token"), "--client-request-token", token, "-o", "json")
	if r := parse("json", out); code != 0 || r["VersionId"] != token || fmt.Sprint(r["VersionStages"]) != "[AWSCURRENT]" {
		t.Errorf("put with a token: %s", out)
	}
	code, out, _ = plugin(t, ns, "", "rollback", "fmt", "-o", "yaml")
	if r := parse("yaml", out); code != 0 || r["VersionId"] != first {
		t.Errorf("rollback -o yaml: %s", out)
	}
	for _, format := range []string{"json", "yaml"} {
		code, out, _ = plugin(t, ns, "", "rotate", "fmt", "-o", format)
		if r := parse(format, out); code != 0 || r["Name"] != "fmt" || r["RotationRequestedAt"] == nil {
			t.Errorf("rotate -o %s: %s", format, out)
		}
		code, out, _ = plugin(t, ns, "", "cancel-rotation", "fmt", "-o", format)
		if r := parse(format, out); code != 0 || r["Name"] != "fmt" || r["RotationEnabled"] != false {
			t.Errorf("cancel-rotation -o %s: %s", format, out)
		}
	}
	code, out, _ = plugin(t, ns, "", "delete", "fmt", "--recovery-window-in-days", "8", "-o", "yaml")
	if r := parse("yaml", out); code != 0 || r["Name"] != "fmt" || r["DeletionDate"] == nil {
		t.Errorf("delete -o yaml: %s", out)
	}
	code, out, _ = plugin(t, ns, "", "restore", "fmt", "-o", "yaml")
	if r := parse("yaml", out); code != 0 || r["Name"] != "fmt" || r["ARN"] == "" {
		t.Errorf("restore -o yaml: %s", out)
	}
}

// versions and describe print kubectl-style tables by default.
func TestPluginTables(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	first := createReady(t, rotated(ns, "tab", "pw")).Status.CurrentVersionID
	ids := []string{first}
	for i := 0; i < 2; i++ {
		code, out, errOut := plugin(t, ns, "", "put", "tab", "-f", valueFile(t, fmt.Sprintf(`{"password":"CANARY-tab-%d"}`, i)))
		if code != 0 {
			t.Fatal(errOut)
		}
		var r map[string]any
		_ = json.Unmarshal([]byte(out), &r)
		ids = append(ids, r["VersionId"].(string))
	}
	// ids[0] is deprecated now, ids[1] AWSPREVIOUS, ids[2] AWSCURRENT.
	row := func(out, id string) []string {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == id {
				return f
			}
		}
		return nil
	}
	code, out, errOut := plugin(t, ns, "", "versions", "tab")
	if code != 0 {
		t.Fatal(errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !regexp.MustCompile(`^VERSION ID +STAGES +KEY ID +CREATED$`).MatchString(lines[0]) || len(lines) != 3 {
		t.Fatalf("versions table:\n%s", out)
	}
	// Aligned columns: STAGES starts at the same place in every line.
	col := strings.Index(lines[0], "STAGES")
	for _, l := range lines[1:] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("column STAGES not aligned at %d:\n%s", col, out)
		}
	}
	if r := row(out, ids[2]); len(r) != 4 || r[1] != stages.Current || !strings.HasPrefix(r[2], "key-") || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT`).MatchString(r[3]) {
		t.Errorf("the AWSCURRENT row: %q\n%s", r, out)
	}
	if r := row(out, ids[1]); len(r) != 4 || r[1] != stages.Previous {
		t.Errorf("the AWSPREVIOUS row: %q", r)
	}
	if row(out, ids[0]) != nil || lines[1] != strings.TrimRight(lines[1], " ") {
		t.Errorf("a deprecated version without --include-deprecated, or trailing blanks:\n%s", out)
	}
	_, out, _ = plugin(t, ns, "", "versions", "tab", "--include-deprecated")
	if r := row(out, ids[0]); len(r) != 4 || r[1] != "<none>" {
		t.Errorf("the deprecated row: %q\n%s", r, out)
	}

	code, out, errOut = plugin(t, ns, "", "describe", "tab")
	if code != 0 {
		t.Fatal(errOut)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Name: +tab$`),
		regexp.MustCompile(`(?m)^Namespace: +` + regexp.QuoteMeta(ns) + `$`),
		regexp.MustCompile(`(?m)^ARN: +arn:kubernetes:secretsmanager:`),
		regexp.MustCompile(`(?m)^Description: +orders database$`),
		regexp.MustCompile(`(?m)^Tags: +team=payments$`),
		regexp.MustCompile(`(?m)^Last Changed: +\d{4}-`),
		regexp.MustCompile(`(?m)^Deletion: +<none>$`),
		regexp.MustCompile(`(?m)^Rotation:\n  Enabled: +true\n  Policy: +pw\n  Strategy: +password\n  Schedule: +every 30 days, window 2h$`),
		regexp.MustCompile(`(?m)^Versions:\n  VERSION ID +STAGES +KEY ID +CREATED\n`),
		regexp.MustCompile(`(?m)^  ` + ids[2] + ` +AWSCURRENT +key-\d+ +\d{4}-`),
		regexp.MustCompile(`(?m)^  ` + ids[1] + ` +AWSPREVIOUS +key-\d+ +\d{4}-`),
		regexp.MustCompile(`(?m)^  \(1 deprecated: kubectl secrets-manager versions tab --include-deprecated\)$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("describe lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, ids[0]) || strings.Contains(out, "CANARY") {
		t.Errorf("describe shows the deprecated version or a value:\n%s", out)
	}
}

// put --binary asks for a SecretBinary; its bytes come back exactly.
func TestPluginBinaryPut(t *testing.T) {
	ns := newNamespace(t)
	createReady(t, generated(ns, "bin"))
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := cs.CoreV1().Secrets(ns).Watch(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelRole + "=" + request.RoleRequest})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	raw := []byte{0x00, 0xff, 0xfe, 'C', 'A', 'N', 'A', 'R', 'Y', 0x80, '\n'}
	code, out, errOut := plugin(t, ns, "", "put", "bin", "-f", valueFile(t, string(raw)), "--binary")
	if code != 0 {
		t.Fatalf("put --binary: %d %s", code, errOut)
	}
	var sent request.Request
	for sent.Op == "" {
		select {
		case ev := <-w.ResultChan():
			if sec, ok := ev.Object.(*corev1.Secret); ok && ev.Type == watch.Added {
				if err := json.Unmarshal(sec.Data[request.KeyRequest], &sent); err != nil {
					t.Fatal(err)
				}
			}
		case <-ctx.Done():
			t.Fatal("no request Secret seen")
		}
	}
	if sent.Op != request.OpPut || !sent.Binary {
		t.Fatalf("put --binary sent %+v", sent)
	}
	var put map[string]any
	_ = json.Unmarshal([]byte(out), &put)
	code, got, errOut := plugin(t, ns, "", "get", "bin")
	if code != 0 || got != string(raw) {
		t.Fatalf("get after put --binary: %d %q %s", code, got, errOut)
	}
	// -o json|yaml shows bytes that are not text as SecretBinary (base64), exactly.
	for _, format := range []string{"json", "yaml"} {
		code, out, _ = plugin(t, ns, "", "get", "bin", "-o", format)
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(out), &doc); code != 0 || err != nil || doc["VersionId"] != put["VersionId"] {
			t.Fatalf("get -o %s: %s", format, out)
		}
		b64, _ := doc["SecretBinary"].(string)
		if dec, _ := base64.StdEncoding.DecodeString(b64); string(dec) != string(raw) || doc["SecretString"] != nil {
			t.Fatalf("get -o %s: %s", format, out)
		}
	}
}

// Unknown commands and flags, and flags a command does not take, are refused with exit 2 before
// anything reaches the cluster.
func TestPluginRefusesBadArgumentsWithoutTouchingTheCluster(t *testing.T) {
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "strict"))
	for _, args := range [][]string{
		{"gett", "strict"},
		{"put", "strict", "-f", valueFile(t, "CANARY-strict"), "--stagess", "x"},
		{"put", "strict", "-f", valueFile(t, "CANARY-strict"), "--version-id", m.Status.CurrentVersionID},
		{"get", "strict", "--stages", "x"},
		{"describe", "strict", "--include-deprecated"},
		{"versions", "strict", "-f", "-"},
		{"rollback", "strict", "--stage", stages.Previous},
		{"rotate", "strict", "--force-delete-without-recovery"},
		{"cancel-rotation", "strict", "--binary"},
		{"delete", "strict", "--version-id", m.Status.CurrentVersionID},
		{"restore", "strict", "--recovery-window-in-days", "7"},
		{"update-stage", "strict", "--stage", "x", "--move-to-version-id", m.Status.CurrentVersionID, "--output-file", "x"},
		{"delete", "strict", "--force-delete-without-recovery", "--recovery-window-in-days", "30"},
		{"put", "strict", "-f", valueFile(t, strings.Repeat("x", 65537))},
	} {
		code, out, errOut := plugin(t, ns, "", args...)
		wantUsageError(t, strings.Join(args, " "), code, errOut)
		if out != "" {
			t.Errorf("%v printed %q", args, out)
		}
	}
	after := getMsec(t, ns, "strict")
	if after.ResourceVersion != m.ResourceVersion || requestSecrets(t, ns) != 0 || len(versions(t, ns)) != 1 {
		t.Fatalf("bad arguments changed the cluster: resourceVersion %s -> %s, %d request Secrets", m.ResourceVersion, after.ResourceVersion, requestSecrets(t, ns))
	}
}

// Without -n the namespace is the kubeconfig context's, as in kubectl; --context picks another.
func TestPluginNamespaceFromTheKubeconfigContext(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	createReady(t, generated(ns, "ctx"))
	createReady(t, generated(other, "elsewhere"))
	kc := kubeconfigWithNamespace(t, ns, other)
	code, out, errOut := runPlugin(t, "", "get", "ctx", "--kubeconfig", kc)
	if code != 0 || !strings.Contains(out, "password") {
		t.Fatalf("get in the context's namespace: %d %s", code, errOut)
	}
	code, _, errOut = runPlugin(t, "", "get", "ctx", "--kubeconfig", kc, "-n", "default")
	wantAWSError(t, "-n overrides the context", code, errOut, awserr.ResourceNotFound, awserr.MsgSecretNotFound)
	if names := completePlugin(t, []string{"--kubeconfig", kc}, "get", ""); strings.Join(names, ",") != "ctx" {
		t.Fatalf("completion in the context's namespace: %q", names)
	}
	code, out, errOut = runPlugin(t, "", "versions", "elsewhere", "--kubeconfig", kc, "--context", "other")
	if code != 0 || !strings.Contains(out, "AWSCURRENT") {
		t.Fatalf("versions with --context other: %d %s", code, errOut)
	}
	if names := completePlugin(t, []string{"--kubeconfig", kc, "--context", "other"}, "get", ""); strings.Join(names, ",") != "elsewhere" {
		t.Fatalf("completion with --context other: %q", names)
	}
	if got := completePlugin(t, []string{"--kubeconfig", kc}, "get", "--context", ""); !slices.Contains(got, "other") || len(got) != 2 {
		t.Fatalf("contexts: %q", got)
	}
}

// kubeconfigWithNamespace copies the suite's admin kubeconfig with the current context's
// namespace set, and adds a context "other" for the same cluster and user in otherNs.
func kubeconfigWithNamespace(t *testing.T, ns, otherNs string) string {
	t.Helper()
	data, err := os.ReadFile(kubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var kc map[string]any
	if err := yaml.Unmarshal(data, &kc); err != nil {
		t.Fatal(err)
	}
	contexts := kc["contexts"].([]any)
	if len(contexts) != 1 {
		t.Fatalf("the suite's kubeconfig has %d contexts", len(contexts))
	}
	current := contexts[0].(map[string]any)["context"].(map[string]any)
	current["namespace"] = ns
	otherCtx := map[string]any{}
	for k, v := range current {
		otherCtx[k] = v
	}
	otherCtx["namespace"] = otherNs
	kc["contexts"] = append(contexts, map[string]any{"name": "other", "context": otherCtx})
	out, _ := yaml.Marshal(kc)
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Completion reads ManagedSecret names, version ids and staging labels from the cluster.
func TestPluginCompletion(t *testing.T) {
	ns := newNamespace(t)
	other := newNamespace(t)
	alpha := createReady(t, generated(ns, "alpha"))
	createReady(t, generated(ns, "beta"))
	createReady(t, generated(other, "gamma"))
	code, out, errOut := plugin(t, ns, "", "put", "alpha", "-f", valueFile(t, "CANARY-blue"), "--stages", "blue")
	if code != 0 {
		t.Fatal(errOut)
	}
	var put map[string]any
	_ = json.Unmarshal([]byte(out), &put)
	current, blue := alpha.Status.CurrentVersionID, put["VersionId"].(string)
	conn := []string{"--kubeconfig", kubeconfigPath, "-n", ns}

	for _, cmd := range []string{"put", "get", "describe", "versions", "update-stage", "rollback", "rotate", "cancel-rotation", "delete", "restore"} {
		if got := completePlugin(t, conn, cmd, ""); strings.Join(got, ",") != "alpha,beta" {
			t.Errorf("%s NAME: %q", cmd, got)
		}
	}
	if got := completePlugin(t, conn, "get", "al"); strings.Join(got, ",") != "alpha" {
		t.Errorf("names starting with al: %q", got)
	}
	if got := completePlugin(t, conn, "get", "alpha", ""); len(got) != 0 {
		t.Errorf("a second NAME: %q", got)
	}
	// Flags after the command, as a user types them.
	if got := completePlugin(t, nil, "describe", "--kubeconfig", kubeconfigPath, "--namespace", other, ""); strings.Join(got, ",") != "gamma" {
		t.Errorf("names in the namespace given after the command: %q", got)
	}
	wantStages := []string{"AWSCURRENT\tversion " + current, "blue\tversion " + blue}
	for _, args := range [][]string{{"get", "alpha", "--stage", ""}, {"update-stage", "alpha", "--stage", ""}} {
		if got := completePlugin(t, conn, args...); fmt.Sprint(got) != fmt.Sprint(wantStages) {
			t.Errorf("%v: %q, want %q", args, got, wantStages)
		}
	}
	if got := completePlugin(t, conn, "get", "alpha", "--stage", "b"); fmt.Sprint(got) != fmt.Sprint(wantStages[1:]) {
		t.Errorf("labels starting with b: %q", got)
	}
	wantIDs := []string{current + "\tAWSCURRENT", blue + "\tblue"}
	sort.Strings(wantIDs)
	for _, args := range [][]string{{"get", "alpha", "--version-id", ""}, {"update-stage", "alpha", "--move-to-version-id", ""}, {"update-stage", "alpha", "--remove-from-version-id", ""}} {
		got := completePlugin(t, conn, args...)
		sort.Strings(got)
		if fmt.Sprint(got) != fmt.Sprint(wantIDs) {
			t.Errorf("%v: %q, want %q", args, got, wantIDs)
		}
	}
	if got := completePlugin(t, conn, "get", "beta", "--version-id", ""); len(got) != 1 || strings.HasPrefix(got[0], current) || strings.HasPrefix(got[0], blue) {
		t.Errorf("beta's versions: %q", got)
	}
	if got := completePlugin(t, conn, "get", "missing", "--version-id", ""); len(got) != 0 {
		t.Errorf("versions of a missing secret: %q", got)
	}
	// Completion follows RBAC: a user who may not list ManagedSecrets gets no names.
	if got := completePlugin(t, append(conn, "--as", "nobody"), "get", ""); len(got) != 0 {
		t.Errorf("names for a user without permissions: %q", got)
	}
	// Commands and flags.
	if got := completePlugin(t, conn, "up"); len(got) != 1 || !strings.HasPrefix(got[0], "update-stage\t") {
		t.Errorf("commands starting with up: %q", got)
	}
	if got := completePlugin(t, conn, "delete", "alpha", "--f"); len(got) != 1 || !strings.HasPrefix(got[0], "--force-delete-without-recovery\t") {
		t.Errorf("delete's flags starting with --f: %q", got)
	}
	if got := completePlugin(t, conn, "get", "alpha", "--output", ""); strings.Join(got, ",") != "json,yaml" {
		t.Errorf("-o: %q", got)
	}
	if got := completePlugin(t, []string{"--kubeconfig", kubeconfigPath}, "get", "-n", "t"); !slices.Contains(got, ns) || !slices.Contains(got, other) {
		t.Errorf("namespaces: %q", got)
	}
}
