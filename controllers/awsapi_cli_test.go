package controllers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/optout"
)

// The AWS CLI against the API: the real `aws` binary (version 2, as Debian's awscli package
// installs it; hack/ensure-awscli.sh) with a static access key, the way a CI job uses it. Every
// step parses the CLI's JSON output, so what is checked is what the CLI understood of the answer.

// awsCLIBinary is the first `aws` of version 2 on PATH, else Debian's /usr/bin/aws. A version-1
// `aws` (pip's) does not count: the test is about the CLI users install today.
func awsCLIBinary() (string, error) {
	var candidates, seen []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir != "" {
			candidates = append(candidates, filepath.Join(dir, "aws"))
		}
	}
	candidates = append(candidates, "/usr/bin/aws")
	for _, c := range candidates {
		if fi, err := os.Stat(c); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, c, "--version").CombinedOutput()
		cancel()
		version := strings.TrimSpace(string(out))
		if err == nil && strings.HasPrefix(version, "aws-cli/2.") {
			return c, nil
		}
		seen = append(seen, fmt.Sprintf("%s (%q, %v)", c, version, err))
	}
	if len(seen) > 0 {
		return "", fmt.Errorf("no aws of version 2; found only %s", strings.Join(seen, ", "))
	}
	return "", errors.New("no aws on PATH or in /usr/bin")
}

// awsCLI runs the CLI with nothing of the machine's AWS configuration: empty config and
// credentials files, a fresh HOME, no AWS_* variable but the ones set here.
type awsCLI struct {
	bin string
	env []string
}

func newAWSCLI(t *testing.T, bin, keyID, secretKey string) *awsCLI {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "api-ca.pem")
	if err := os.WriteFile(ca, []byte(apiCAPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	config, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	for _, f := range []string{config, creds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		// The machine's AWS settings (AWS_CA_BUNDLE, AWS_PROFILE, AWS_ENDPOINT_URL, a session
		// token...) and Python paths that would load another interpreter's modules stay out.
		if strings.HasPrefix(k, "AWS_") || k == "HOME" || k == "PYTHONPATH" || k == "PYTHONHOME" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HOME="+dir,
		"AWS_ACCESS_KEY_ID="+keyID,
		"AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_DEFAULT_REGION="+apiRegion,
		"AWS_CA_BUNDLE="+ca,
		"AWS_CONFIG_FILE="+config,
		"AWS_SHARED_CREDENTIALS_FILE="+creds,
		"AWS_PAGER=",
		"AWS_MAX_ATTEMPTS=1", // an answer is checked as the API gave it, not after retries
	)
	return &awsCLI{bin: bin, env: env}
}

// apiCAPEM is the API's CA bundle as its ClusterTrustBundle publishes it.
func apiCAPEM(t *testing.T) string {
	t.Helper()
	apiHTTPClient(t) // waits for the bundle
	ctb := &certificatesv1.ClusterTrustBundle{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Name: suiteOpts.API.TrustBundle}, ctb); err != nil {
		t.Fatal(err)
	}
	return ctb.Spec.TrustBundle
}

// run runs `aws <args> --endpoint-url <the API> --output json` and returns stdout, stderr and
// the exit code.
func (c *awsCLI) run(t *testing.T, args ...string) ([]byte, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(args, "--endpoint-url", apiEndpoint(), "--output", "json")...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return stdout.Bytes(), stderr.String(), code
}

// ok runs a step that must succeed and decodes its JSON output into out (nil: no output expected).
func (c *awsCLI) ok(t *testing.T, out any, args ...string) {
	t.Helper()
	if err := c.try(t, out, args...); err != nil {
		t.Fatal(err)
	}
}

// try is ok as an error, for polling.
func (c *awsCLI) try(t *testing.T, out any, args ...string) error {
	t.Helper()
	stdout, stderr, code := c.run(t, args...)
	if code != 0 {
		return fmt.Errorf("aws %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr))
	}
	if stderr != "" { // a warning (TLS, an unexpected answer) is a finding too
		return fmt.Errorf("aws %s succeeded but wrote to stderr: %s", strings.Join(args, " "), strings.TrimSpace(stderr))
	}
	if out == nil {
		if len(bytes.TrimSpace(stdout)) != 0 {
			return fmt.Errorf("aws %s printed %d bytes where no output was expected", strings.Join(args, " "), len(stdout))
		}
		return nil
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		return fmt.Errorf("aws %s: the output is not the expected JSON (%v); stderr %q", strings.Join(args, " "), err, stderr)
	}
	return nil
}

// awsFailure is how the CLI reports an error answer: a non-zero exit (254 for an error the
// service answered, 255 for others) and "An error occurred (<code>) when calling the <op>
// operation: <message>" on stderr.
func awsFailure(args []string, stderr string, code int, wantCode string) error {
	if code != 254 && code != 255 {
		return fmt.Errorf("aws %s: exit %d, want 254 or 255; stderr %q", strings.Join(args, " "), code, stderr)
	}
	if !strings.Contains(stderr, "("+wantCode+")") {
		return fmt.Errorf("aws %s: stderr %q does not name %s", strings.Join(args, " "), stderr, wantCode)
	}
	return nil
}

// cliSecretValue is get-secret-value's output (encoding/json matches names case-insensitively,
// so VersionID reads the CLI's VersionId).
type cliSecretValue struct {
	ARN, Name, VersionID, SecretString, SecretBinary string
	VersionStages                                    []string
}

type cliTag struct{ Key, Value string }

// cliTime reads a timestamp as the CLI prints it (ISO 8601 by default in version 2).
func cliTime(t *testing.T, what, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("%s %q is not an ISO 8601 time: %v", what, s, err)
	}
	return ts
}

func TestAWSCLIWithStaticAccessKeys(t *testing.T) {
	bin, err := awsCLIBinary()
	optout.Need(t, optout.AWSCLI, "the AWS CLI v2 ('aws'; hack/ensure-awscli.sh installs Debian's awscli)", err)
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "ci", "secretsmanager-admin")
	keyID, secretKey := accessKeyFor(t, ns, "ci-key", "ci")
	remember(secretKey)
	cli := newAWSCLI(t, bin, keyID, secretKey)

	stamp := time.Now().UnixNano()
	first := remember(fmt.Sprintf("%scli-first-%d", canaryPrefix, stamp))
	second := remember(fmt.Sprintf("%scli-second-%d", canaryPrefix, stamp))
	binValue := append([]byte(fmt.Sprintf("%scli-binary-%d", canaryPrefix, stamp)), 0, 1, 0xfe, 0xff, '\n')
	remember(string(binValue))
	const name = "ci/db"

	// sts get-caller-identity: the key acts as its ServiceAccount.
	var caller struct{ UserID, Account, Arn string }
	cli.ok(t, &caller, "sts", "get-caller-identity")
	if caller.Arn != "arn:kubernetes:iam::"+ns+":user/ci" || caller.Account != ns || !strings.HasPrefix(caller.UserID, "AIDA") {
		t.Fatalf("get-caller-identity answered %+v", caller)
	}

	// create-secret, then put-secret-value: the new version is AWSCURRENT.
	var created struct{ ARN, Name, VersionID string }
	cli.ok(t, &created, "secretsmanager", "create-secret", "--name", name, "--description", "the CI database", "--secret-string", first)
	if created.Name != name || created.VersionID == "" || !strings.HasPrefix(created.ARN, "arn:kubernetes:secretsmanager:"+apiRegion+":"+ns+":secret:"+name+"-") {
		t.Fatalf("create-secret answered %+v", created)
	}
	var put struct {
		ARN, Name, VersionID string
		VersionStages        []string
	}
	cli.ok(t, &put, "secretsmanager", "put-secret-value", "--secret-id", name, "--secret-string", second)
	if put.Name != name || put.ARN != created.ARN || put.VersionID == "" || put.VersionID == created.VersionID || !slices.Equal(put.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("put-secret-value answered %+v", put)
	}

	// get-secret-value: the value put, AWSCURRENT.
	var got cliSecretValue
	cli.ok(t, &got, "secretsmanager", "get-secret-value", "--secret-id", name)
	if got.SecretString != second || got.VersionID != put.VersionID || !slices.Equal(got.VersionStages, []string{"AWSCURRENT"}) || got.ARN != created.ARN || got.Name != name || got.SecretBinary != "" {
		t.Fatalf("get-secret-value answered version %s stages %v name %s (the value put: %t)", got.VersionID, got.VersionStages, got.Name, got.SecretString == second)
	}
	var prev cliSecretValue
	cli.ok(t, &prev, "secretsmanager", "get-secret-value", "--secret-id", name, "--version-stage", "AWSPREVIOUS")
	if prev.SecretString != first || prev.VersionID != created.VersionID {
		t.Fatalf("AWSPREVIOUS is version %s (the first value: %t)", prev.VersionID, prev.SecretString == first)
	}

	// list-secrets, whole and filtered by a name prefix.
	type listed struct {
		SecretList []struct {
			ARN, Name, Description string
		}
	}
	names := func(l listed) []string {
		var out []string
		for _, e := range l.SecretList {
			out = append(out, e.Name)
		}
		return out
	}
	var all, filtered, none listed
	eventually(t, "list-secrets shows the secret", func() error {
		all = listed{}
		if err := cli.try(t, &all, "secretsmanager", "list-secrets"); err != nil {
			return err
		}
		if !slices.Equal(names(all), []string{name}) || all.SecretList[0].ARN != created.ARN || all.SecretList[0].Description != "the CI database" {
			return fmt.Errorf("list-secrets answered %+v", all)
		}
		return nil
	})
	cli.ok(t, &filtered, "secretsmanager", "list-secrets", "--filters", "Key=name,Values=ci/")
	if !slices.Equal(names(filtered), []string{name}) {
		t.Fatalf("list-secrets --filters Key=name,Values=ci/ answered %v", names(filtered))
	}
	cli.ok(t, &none, "secretsmanager", "list-secrets", "--filters", "Key=name,Values=other/")
	if len(none.SecretList) != 0 {
		t.Fatalf("list-secrets --filters Key=name,Values=other/ answered %v", names(none))
	}

	// tag-resource and untag-resource print nothing; describe-secret shows what is left.
	cli.ok(t, nil, "secretsmanager", "tag-resource", "--secret-id", name, "--tags", "Key=env,Value=prod", "Key=owner,Value=ci")
	cli.ok(t, nil, "secretsmanager", "untag-resource", "--secret-id", name, "--tag-keys", "owner")
	var desc struct {
		ARN, Name, Description string
		Tags                   []cliTag
		VersionIDsToStages     map[string][]string
		DeletedDate            *string
	}
	cli.ok(t, &desc, "secretsmanager", "describe-secret", "--secret-id", name)
	if desc.Name != name || desc.Description != "the CI database" || !slices.Equal(desc.Tags, []cliTag{{"env", "prod"}}) ||
		!slices.Equal(desc.VersionIDsToStages[put.VersionID], []string{"AWSCURRENT"}) || !slices.Equal(desc.VersionIDsToStages[created.VersionID], []string{"AWSPREVIOUS"}) || desc.DeletedDate != nil {
		t.Fatalf("describe-secret answered %+v", desc)
	}

	// get-resource-policy (which Terraform reads on every refresh) answers that there is none;
	// put-resource-policy is refused: RBAC decides access.
	var pol struct {
		ARN, Name      string
		ResourcePolicy *string
	}
	cli.ok(t, &pol, "secretsmanager", "get-resource-policy", "--secret-id", name)
	if pol.ARN != created.ARN || pol.Name != name || pol.ResourcePolicy != nil {
		t.Fatalf("get-resource-policy answered %+v", pol)
	}
	putPolicy := []string{"secretsmanager", "put-resource-policy", "--secret-id", name, "--resource-policy", "{}"}
	if _, stderr, code := cli.run(t, putPolicy...); awsFailure(putPolicy, stderr, code, "InvalidRequestException") != nil {
		t.Fatal(awsFailure(putPolicy, stderr, code, "InvalidRequestException"))
	}

	// delete-secret with a seven-day recovery window; reads are then refused.
	before := time.Now()
	var del struct{ ARN, Name, DeletionDate string }
	cli.ok(t, &del, "secretsmanager", "delete-secret", "--secret-id", name, "--recovery-window-in-days", "7")
	if del.Name != name || del.ARN != created.ARN {
		t.Fatalf("delete-secret answered %+v", del)
	}
	if dd := cliTime(t, "DeletionDate", del.DeletionDate); dd.Before(before.Add(7*24*time.Hour-time.Minute)) || dd.After(time.Now().Add(7*24*time.Hour+time.Minute)) {
		t.Fatalf("DeletionDate %s is not seven days away", dd)
	}
	getArgs := []string{"secretsmanager", "get-secret-value", "--secret-id", name}
	var refusal string
	eventually(t, "the CLI's reads of a secret pending deletion are refused", func() error {
		stdout, stderr, code := cli.run(t, getArgs...)
		if code == 0 {
			return fmt.Errorf("get-secret-value succeeded (%d bytes)", len(stdout))
		}
		refusal = fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(stderr))
		return awsFailure(getArgs, stderr, code, "InvalidRequestException")
	})
	t.Logf("get-secret-value of a secret pending deletion: %s", refusal)
	var deleted struct{ DeletedDate string }
	cli.ok(t, &deleted, "secretsmanager", "describe-secret", "--secret-id", name)
	// DescribeSecret's DeletedDate is "the date the secret is scheduled for deletion" (AWS's
	// reference), which this API answers as DeleteSecret's DeletionDate.
	if dd, want := cliTime(t, "DeletedDate", deleted.DeletedDate), cliTime(t, "DeletionDate", del.DeletionDate); dd.Sub(want).Abs() > time.Second {
		t.Fatalf("describe-secret's DeletedDate %s is not delete-secret's DeletionDate %s", dd, want)
	}

	// restore-secret; the value reads again.
	var restored struct{ ARN, Name string }
	cli.ok(t, &restored, "secretsmanager", "restore-secret", "--secret-id", name)
	if restored.Name != name || restored.ARN != created.ARN {
		t.Fatalf("restore-secret answered %+v", restored)
	}
	eventually(t, "the CLI reads a restored secret", func() error {
		var g cliSecretValue
		if err := cli.try(t, &g, getArgs...); err != nil {
			return err
		}
		if g.SecretString != second || !slices.Equal(g.VersionStages, []string{"AWSCURRENT"}) {
			return fmt.Errorf("version %s %v, not the value put", g.VersionID, g.VersionStages)
		}
		return nil
	})

	// A binary value from a file (fileb://): the CLI sends it base64-encoded and prints it so.
	binFile := filepath.Join(t.TempDir(), "value.bin")
	if err := os.WriteFile(binFile, binValue, 0o600); err != nil {
		t.Fatal(err)
	}
	var createdBin struct{ ARN, Name, VersionID string }
	cli.ok(t, &createdBin, "secretsmanager", "create-secret", "--name", "ci/blob", "--secret-binary", "fileb://"+binFile)
	if createdBin.Name != "ci/blob" || createdBin.VersionID == "" {
		t.Fatalf("create-secret --secret-binary answered %+v", createdBin)
	}
	var gotBin cliSecretValue
	cli.ok(t, &gotBin, "secretsmanager", "get-secret-value", "--secret-id", "ci/blob")
	if raw, err := base64.StdEncoding.DecodeString(gotBin.SecretBinary); err != nil || !bytes.Equal(raw, binValue) || gotBin.SecretString != "" ||
		gotBin.VersionID != createdBin.VersionID || !slices.Equal(gotBin.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("get-secret-value of the binary secret: version %s %v, SecretString set %t, the bytes written %t (%v)",
			gotBin.VersionID, gotBin.VersionStages, gotBin.SecretString != "", bytes.Equal(raw, binValue), err)
	}

	// Pages of one secret each: the CLI follows the API's NextToken to the end.
	eventually(t, "list-secrets pages through both secrets", func() error {
		var paged listed
		if err := cli.try(t, &paged, "secretsmanager", "list-secrets", "--page-size", "1", "--filters", "Key=name,Values=ci/"); err != nil {
			return err
		}
		if n := names(paged); !slices.Equal(slices.Sorted(slices.Values(n)), []string{"ci/blob", name}) {
			return fmt.Errorf("list-secrets --page-size 1 answered %v", n)
		}
		return nil
	})

	// The right key id with a wrong secret: the signature does not match.
	bad := newAWSCLI(t, bin, keyID, secretKey+"x")
	stdout, stderr, code := bad.run(t, getArgs...)
	if err := awsFailure(getArgs, stderr, code, "InvalidSignatureException"); err != nil {
		t.Fatalf("with a wrong secret key: %v (stdout %d bytes)", err, len(stdout))
	}
	t.Logf("get-secret-value with a wrong secret key: exit %d: %s", code, strings.TrimSpace(stderr))
}
