package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// The plugin repeats the operator's names for the key status ConfigMap rather than import the
// controllers; they must stay the same strings.
func TestKeyStatusNamesAreTheOperators(t *testing.T) {
	operator := map[string]string{}
	fset := token.NewFileSet()
	for _, file := range []string{"keys.go", "setup.go"} {
		f, err := parser.ParseFile(fset, filepath.Join("..", "..", "controllers", file), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range spec.Names {
				if i < len(spec.Values) {
					if lit, ok := spec.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						operator[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
			return true
		})
	}
	for name, ours := range map[string]string{
		"KeyStatusConfigMap":             keyStatusConfigMap,
		"AnnotationRotateKeyRequestedAt": annotationRotateKeyRequestedAt,
		"AnnotationRetireKeys":           annotationRetireKeys,
		"KeyStatusPrimary":               keyStatusPrimary,
		"KeyStatusProvider":              keyStatusProvider,
		"KeyStatusHealthy":               keyStatusHealthy,
		"KeyStatusRemaining":             keyStatusRemaining,
		"KeyStatusFailing":               keyStatusFailing,
		"KeyStatusUsage":                 keyStatusUsage,
		"KeyStatusRetired":               keyStatusRetired,
		"KeyStatusMessage":               keyStatusMessage,
		"KeyStatusLastPass":              keyStatusLastPass,
		"KeyStatusHandled":               keyStatusHandled,
		"KeyProviderKMSv2":               keyProviderKMSv2,
	} {
		if operator[name] != ours {
			t.Errorf("controllers.%s is %q, the plugin says %q", name, operator[name], ours)
		}
	}
}

func TestKeyStatusSummaryAndDocument(t *testing.T) {
	data := map[string]string{
		keyStatusProvider: "local", keyStatusHealthy: "true", keyStatusPrimary: "key-10",
		keyStatusRemaining: "3", keyStatusFailing: "1", keyStatusUsage: `{"key-10":12,"key-9":2,"key-2":1}`,
		keyStatusRetired: "key-1", keyStatusMessage: "3 sealed objects are not on key-10 yet", keyStatusLastPass: "2030-01-02T03:04:05Z",
		keyStatusHandled: "2030-01-02T03:04:00.123Z",
	}
	var out bytes.Buffer
	if err := printKeyStatus(&out, data); err != nil {
		t.Fatal(err)
	}
	want := `Provider:                 local
Healthy:                  true
Primary Key:              key-10
Versions Not On Primary:  3
Failing:                  1
Retired:                  key-1
Message:                  3 sealed objects are not on key-10 yet
Last Pass:                2030-01-02T03:04:05Z
Usage:
  KEY ID  OBJECTS
  ------  -------
  key-2   1
  key-9   2
  key-10  12
`
	if out.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", out.String(), want)
	}

	// A status the operator has not filled in yet: every field says <none>.
	out.Reset()
	if err := printKeyStatus(&out, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), none); n != 9 {
		t.Errorf("an empty status shows %d %s:\n%s", n, none, out.String())
	}

	// -o json|yaml: the data, keyUsage as a map of counts.
	for _, format := range []string{"json", "yaml"} {
		var buf bytes.Buffer
		a := &app{io: IO{Out: &buf}}
		if err := a.printData(format, keyStatusDoc(data)); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Primary  string         `json:"primaryKeyId"`
			Usage    map[string]int `json:"keyUsage"`
			Retired  string         `json:"retiredKeys"`
			Provider string         `json:"provider"`
		}
		if err := yaml.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, buf.String())
		}
		if doc.Primary != "key-10" || doc.Usage["key-10"] != 12 || len(doc.Usage) != 3 || doc.Retired != "key-1" || doc.Provider != "local" {
			t.Errorf("-o %s: %+v", format, doc)
		}
		if format == "json" && !json.Valid(buf.Bytes()) {
			t.Errorf("-o json: %s", buf.String())
		}
	}
	// keyUsage that does not parse is shown as it is.
	if doc := keyStatusDoc(map[string]string{keyStatusUsage: "garbled"}); doc[keyStatusUsage] != "garbled" {
		t.Errorf("garbled keyUsage: %v", doc)
	}
}

func TestRotationDone(t *testing.T) {
	const req = "2030-01-02T03:04:05.123456789Z"
	for _, c := range []struct {
		what string
		data map[string]string
		done bool
		warn bool
	}{
		{"not handled yet", map[string]string{keyStatusHandled: "2029-01-01T00:00:00Z", keyStatusHealthy: "true", keyStatusRemaining: "0"}, false, false},
		{"handled, re-wrapping", map[string]string{keyStatusHandled: req, keyStatusHealthy: "true", keyStatusRemaining: "4", keyStatusFailing: "0"}, false, false},
		{"handled, all on the primary", map[string]string{keyStatusHandled: req, keyStatusHealthy: "true", keyStatusRemaining: "0", keyStatusFailing: "0"}, true, false},
		{"handled, only what does not open is left", map[string]string{keyStatusHandled: req, keyStatusHealthy: "true", keyStatusRemaining: "2", keyStatusFailing: "2"}, true, true},
		{"handled, provider down (stale counts)", map[string]string{keyStatusHandled: req, keyStatusHealthy: "false", keyStatusRemaining: "0"}, false, false},
		{"kmsv2: handled is enough", map[string]string{keyStatusHandled: req, keyStatusProvider: keyProviderKMSv2, keyStatusRemaining: "7"}, true, false},
		{"kmsv2: not handled", map[string]string{keyStatusProvider: keyProviderKMSv2}, false, false},
	} {
		if got := rotationDone(c.data, req); got != c.done {
			t.Errorf("%s: done %v", c.what, got)
		}
		if got := rotationWarning(c.data) != ""; c.done && got != c.warn {
			t.Errorf("%s: warning %q", c.what, rotationWarning(c.data))
		}
	}
}

func TestRetirementDoneAndRefusal(t *testing.T) {
	refusal := "everything is on key-3; not retired: key-3 (primary or still used by 5), key-22 (no such key); the keyring is fine"
	for _, c := range []struct {
		what string
		ids  []string
		data map[string]string
		done bool
		err  string
	}{
		{"pending", []string{"key-1"}, map[string]string{keyStatusRetired: "", keyStatusMessage: "everything is on key-3"}, false, ""},
		{"retired", []string{"key-1", "key-2"}, map[string]string{keyStatusRetired: "key-1,key-2"}, true, ""},
		{"refused", []string{"key-3"}, map[string]string{keyStatusMessage: refusal}, false,
			"InvalidRequestException: not retired: key-3 (primary or still used by 5), key-22 (no such key)"},
		{"one refused, one retired", []string{"key-1", "key-22"}, map[string]string{keyStatusRetired: "key-1", keyStatusMessage: refusal}, false,
			"key-22 (no such key); retired: key-1"},
		// Another key's refusal (left from an earlier request) is not an answer to this one;
		// neither is a key whose id only ends like one refused.
		{"someone else's refusal", []string{"key-2"}, map[string]string{keyStatusMessage: refusal}, false, ""},
		{"a longer id refused", []string{"ey-3"}, map[string]string{keyStatusMessage: refusal}, false, ""},
	} {
		done, err := retirementDone(c.data, c.ids)
		switch {
		case done != c.done:
			t.Errorf("%s: done %v", c.what, done)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.what, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || awserr.CodeOf(err) != awserr.InvalidRequest):
			t.Errorf("%s: %v, want %q", c.what, err, c.err)
		}
	}
	if got := mergeIDs([]string{"key-1", "key-4"}, []string{"key-4", "key-2", "key-2"}); strings.Join(got, ",") != "key-1,key-4,key-2" {
		t.Errorf("merged %q", got)
	}
}

// The one place the plugin reads the key status, against a fake API: a missing ConfigMap is said
// as an operator that has not started (exit 3, like any missing resource), and --wait prints the
// operator's message as it changes and stops at the deadline with the last one.
func TestWaitingForTheKeyStatus(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(scheme()).Build()
	var errOut bytes.Buffer
	a := &app{io: IO{Out: &bytes.Buffer{}, Err: &errOut}, timeout: 2 * time.Second}
	s := &session{c: c, ns: "app", timeout: a.timeout}

	_, err := s.keyStatus(ctx, "ops")
	if code := a.exit(nil, &runError{err}); code != awserr.ExitCode(awserr.ResourceNotFound) ||
		!strings.Contains(errOut.String(), "the operator has not started in namespace ops") || !strings.Contains(errOut.String(), "--operator-namespace") {
		t.Fatalf("missing ConfigMap: exit %d, %s", code, errOut.String())
	}

	const req = "2030-01-02T03:04:05.5Z"
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: keyStatusConfigMap},
		Data: map[string]string{keyStatusProvider: "local", keyStatusHealthy: "true", keyStatusPrimary: "key-1", keyStatusRemaining: "0", keyStatusMessage: "everything is on key-1"}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	start := cm.DeepCopy()
	set := func(d map[string]string) {
		t.Helper()
		patch := client.MergeFrom(cm.DeepCopy())
		for k, v := range d {
			cm.Data[k] = v
		}
		if err := c.Patch(ctx, cm, patch); err != nil {
			t.Error(err)
		}
	}
	go func() {
		time.Sleep(2 * keyPollInterval)
		set(map[string]string{keyStatusHandled: req, keyStatusPrimary: "key-2", keyStatusRemaining: "3", keyStatusFailing: "0", keyStatusMessage: "3 sealed objects are not on key-2 yet"})
		time.Sleep(2 * keyPollInterval)
		set(map[string]string{keyStatusRemaining: "0", keyStatusMessage: "everything is on key-2"})
	}()
	errOut.Reset()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := a.waitKeys(wctx, s, "ops", start, "rotate the key", func(d map[string]string) (bool, error) { return rotationDone(d, req), nil })
	if err != nil || got.Data[keyStatusPrimary] != "key-2" {
		t.Fatalf("wait: %v %v", err, got)
	}
	if errOut.String() != "3 sealed objects are not on key-2 yet\neverything is on key-2\n" {
		t.Errorf("progress: %q", errOut.String())
	}

	errOut.Reset()
	wctx, cancel = context.WithTimeout(ctx, 3*keyPollInterval)
	defer cancel()
	_, err = a.waitKeys(wctx, s, "ops", got, "retire key-9", func(d map[string]string) (bool, error) { return retirementDone(d, []string{"key-9"}) })
	if err == nil || !strings.Contains(err.Error(), "did not retire key-9 within 2s") || !strings.Contains(err.Error(), "its message: everything is on key-2") {
		t.Errorf("deadline: %v", err)
	}
	if errOut.Len() != 0 {
		t.Errorf("no change, yet progress: %q", errOut.String())
	}
}

// endpoint prints the flags' audience and trust bundle, and every endpoint variable, without
// asking the cluster anything.
func TestEndpointSettings(t *testing.T) {
	kc, requests := apiServer(t)
	type envVar struct{ Name, Value string }
	type podParts struct {
		Env     []envVar
		Volumes []struct {
			Projected struct {
				Sources []struct {
					ServiceAccountToken *struct{ Audience, Path string } `json:"serviceAccountToken"`
					ClusterTrustBundle  *struct{ Name, Path string }     `json:"clusterTrustBundle"`
				}
			}
		}
	}
	parse := func(out string) (map[string]string, podParts) {
		t.Helper()
		var p podParts
		if err := yaml.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		env := map[string]string{}
		for _, e := range p.Env {
			env[e.Name] = e.Value
		}
		return env, p
	}

	code, out, errOut := run(t, "", "endpoint", "--kubeconfig", kc)
	if code != 0 {
		t.Fatalf("endpoint: %d %s", code, errOut)
	}
	env, p := parse(out)
	url := "https://kube-secrets-manager-api.kube-secrets-manager.svc:8443"
	for _, name := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_STS"} {
		if env[name] != url {
			t.Errorf("%s = %q, want %q", name, env[name], url)
		}
	}
	if env["AWS_ROLE_ARN"] != "arn:aws:iam::from-context:role/default" || env["AWS_CA_BUNDLE"] == "" {
		t.Errorf("env %v", env)
	}
	src := p.Volumes[0].Projected.Sources
	if len(src) != 2 || src[0].ServiceAccountToken.Audience != "kube-secrets-manager" || src[1].ClusterTrustBundle.Name != "kube-secrets-manager-api-ca" {
		t.Errorf("defaults: %s", out)
	}

	code, out, errOut = run(t, "", "endpoint", "--kubeconfig", kc, "-n", "payments", "--service-account", "api", "--operator-namespace", "secrets",
		"--port", "9443", "--audience", "https://secrets.example", "--trust-bundle", "example.com:signer:ca")
	if code != 0 {
		t.Fatalf("endpoint with flags: %d %s", code, errOut)
	}
	env, p = parse(out)
	src = p.Volumes[0].Projected.Sources
	if env["AWS_ENDPOINT_URL_STS"] != "https://kube-secrets-manager-api.secrets.svc:9443" || env["AWS_ROLE_ARN"] != "arn:aws:iam::payments:role/api" ||
		src[0].ServiceAccountToken.Audience != "https://secrets.example" || src[1].ClusterTrustBundle.Name != "example.com:signer:ca" ||
		!strings.HasPrefix(out, "# In namespace payments, ServiceAccount api:") {
		t.Errorf("flags not used:\n%s", out)
	}

	// An operator that publishes no trust bundle: no bundle mounted, and a word about the CA.
	code, out, _ = run(t, "", "endpoint", "--kubeconfig", kc, "--trust-bundle", "")
	env, p = parse(out)
	if code != 0 || len(p.Volumes[0].Projected.Sources) != 1 || env["AWS_CA_BUNDLE"] != "" || !strings.Contains(out, "# The operator publishes no ClusterTrustBundle") {
		t.Errorf("no trust bundle: %d\n%s", code, out)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("endpoint sent %d requests to the API server", n)
	}

	_, help, _ := run(t, "", "endpoint", "--help")
	for _, want := range []string{"aws-sdk-go-v2's config v1.33", "AWS_ENDPOINT_URL_STS", "--audience string", "--trust-bundle string",
		`(default "kube-secrets-manager")`, `(default "kube-secrets-manager-api-ca")`} {
		if !strings.Contains(help, want) {
			t.Errorf("endpoint --help lacks %q:\n%s", want, help)
		}
	}
}

// Each key command's help says the rights it needs.
func TestKeyCommandsHelpSaysTheRights(t *testing.T) {
	for cmd, want := range map[string]string{
		"keys":       "Rights: get on configmaps in the operator's namespace.",
		"rotate-key": "Rights: patch on configmaps in the operator's namespace; with --wait, get too.",
		"retire-key": "Rights: get and patch on configmaps in the operator's namespace.",
	} {
		code, out, _ := run(t, "", cmd, "--help")
		if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "--operator-namespace string") {
			t.Errorf("%s --help: %d\n%s", cmd, code, out)
		}
	}
}
