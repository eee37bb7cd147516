package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// apiServer is a stand-in API server that counts the requests it gets and fails them all, so a
// test can tell whether a command contacted the cluster.
func apiServer(t *testing.T) (kubeconfig string, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"InternalError","code":500}`)
	}))
	t.Cleanup(srv.Close)
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: %q}}]
users: [{name: fake, user: {token: not-a-real-token}}]
contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: from-context}}]
current-context: fake
`, srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig, requests
}

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, IO{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// usageLine checks a usage error: exit 2, "error: ..." on one line, then kubectl's hint.
func usageLine(t *testing.T, code int, errOut, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
	if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], want) ||
		!strings.HasPrefix(lines[1], "See 'kubectl secrets-manager") {
		t.Errorf("exit %d, stderr %q; want exit 2 and one error line containing %q", code, errOut, want)
	}
}

func TestBadArgumentsAreRefusedBeforeTheClusterIsContacted(t *testing.T) {
	kc, requests := apiServer(t)
	big := strings.Repeat("x", value.MaxLimit+1)
	valueFile := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(valueFile, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"gett", "db"}, `unknown command "gett" for "kubectl secrets-manager"; did you mean "get"?`},
		{"", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"", []string{}, "no command given"},
		{"", []string{"get", "db", "--bogus"}, "unknown flag: --bogus"},
		{"", []string{"get", "db", "-x"}, "unknown shorthand flag: 'x'"},
		// Flags other commands take.
		{"", []string{"describe", "db", "--stage", "AWSCURRENT"}, "unknown flag: --stage"},
		{"", []string{"versions", "db", "--version-id", strings.Repeat("a", 32)}, "unknown flag: --version-id"},
		{"", []string{"rollback", "db", "-f", "-"}, "unknown shorthand flag: 'f'"},
		{"", []string{"get", "db", "--binary"}, "unknown flag: --binary"},
		{"", []string{"restore", "db", "--force-delete-without-recovery"}, "unknown flag: --force-delete-without-recovery"},
		{"", []string{"get"}, "get takes exactly one secret name (got 0 arguments)"},
		{"", []string{"get", "a", "b"}, "get takes exactly one secret name (got 2 arguments)"},
		{"", []string{"get", "Not_A_Name"}, "is not a valid ManagedSecret name"},
		{"", []string{"help", "frobnicate"}, `unknown help topic "frobnicate"`},
		{"", []string{"get", "db", "-o", "table"}, `unknown output format "table"`},
		{"", []string{"get", "db", "-o", "json", "--output-file", "x"}, "can't be combined with -o"},
		{"", []string{"get", "db", "--version-id", "short"}, "--version-id must be 32 to 64 characters"},
		{"", []string{"put", "db"}, "never from the command line"},
		{"", []string{"put", "db", "-f", "-"}, "the value is empty"},
		{big, []string{"put", "db", "-f", "-"}, "larger than 65536 bytes"},
		{"", []string{"put", "db", "-f", valueFile}, "larger than 65536 bytes"},
		{"", []string{"put", "db", "-f", filepath.Join(t.TempDir(), "missing")}, "reading the value"},
		{"v", []string{"put", "db", "-f", "-", "--client-request-token", "short"}, "--client-request-token must be 32 to 64 characters"},
		{"", []string{"update-stage", "db", "--stage", "AWSCURRENT"}, "name a version to move the label to"},
		{"", []string{"delete", "db", "--force-delete-without-recovery", "--recovery-window-in-days", "7"}, "in conjunction with RecoveryWindowInDays"},
		{"", []string{"delete", "db", "--recovery-window-in-days", "6"}, "recovery window must be 7 to 30 days"},
		{"", []string{"delete", "db", "--recovery-window-in-days", "seven"}, `invalid argument "seven"`},
		{"", []string{"get", "db", "--timeout", "0s"}, "--timeout must be more than 0"},
		{"", []string{"completion"}, "completion takes one shell"},
		{"", []string{"completion", "tcsh"}, `unknown shell "tcsh"`},
		// Key custody and the API's endpoint take no name; their flags are checked first too.
		{"", []string{"keys", "db"}, `keys takes no arguments (got "db")`},
		{"", []string{"keys", "-o", "table"}, `unknown output format "table"`},
		{"", []string{"keys", "--wait"}, "unknown flag: --wait"},
		{"", []string{"keys", "--operator-namespace", "Not_A_Namespace"}, `--operator-namespace "Not_A_Namespace" is not a valid namespace name`},
		{"", []string{"rotate-key", "now"}, "rotate-key takes no arguments"},
		{"", []string{"rotate-key", "-o", "json"}, "unknown shorthand flag: 'o'"},
		{"", []string{"rotate-key", "--wait=maybe"}, `invalid argument "maybe"`},
		{"", []string{"rotate-key", "--operator-namespace", ""}, `--operator-namespace "" is not a valid namespace name`},
		{"", []string{"rotate-key", "--wait", "--timeout", "0s"}, "--timeout must be more than 0"},
		{"", []string{"retire-key"}, "retire-key takes the ids of the keys to retire"},
		{"", []string{"retire-key", "key-1,key-2"}, `"key-1,key-2" is not a key id`},
		{"", []string{"retire-key", "key-1", ""}, `"" is not a key id`},
		{"", []string{"retire-key", "key-1", "--stage", "x"}, "unknown flag: --stage"},
		{"", []string{"endpoint", "db"}, `endpoint takes no arguments (got "db")`},
		{"", []string{"endpoint", "--audience", ""}, "--audience must be the operator's token audience"},
		{"", []string{"endpoint", "--audience", "two words"}, "--audience must be the operator's token audience"},
		{"", []string{"endpoint", "--port", "0"}, "--port must be 1 to 65535"},
		{"", []string{"endpoint", "--service-account", "Not_A_Name"}, `--service-account "Not_A_Name" is not a valid ServiceAccount name`},
		{"", []string{"endpoint", "--operator-namespace", "a.b"}, `--operator-namespace "a.b" is not a valid namespace name`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, c.stdin, append(c.args, "--kubeconfig", kc)...)
			usageLine(t, code, errOut, c.want)
			if out != "" {
				t.Errorf("stdout %q", out)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("bad arguments sent %d requests to the API server", n)
	}

	// The largest value passes the check and goes on to the cluster (which fails here).
	code, _, errOut := run(t, strings.Repeat("x", value.MaxLimit), "put", "db", "-f", "-", "--kubeconfig", kc, "--timeout", "5s")
	if code == 2 || requests.Load() == 0 {
		t.Fatalf("a value of exactly %d bytes: exit %d, %d requests, %s", value.MaxLimit, code, requests.Load(), errOut)
	}
}

func TestHelpForEachCommand(t *testing.T) {
	code, out, _ := run(t, "", "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, cmd := range []string{"put", "get", "describe", "versions", "update-stage", "rollback", "rotate", "cancel-rotation", "delete", "restore",
		"create-access-key", "endpoint", "keys", "rotate-key", "retire-key", "completion", "help"} {
		if !regexp.MustCompile(`(?m)^  ` + cmd + ` +\S`).MatchString(out) {
			t.Errorf("the root help does not list %s", cmd)
		}
		code, viaFlag, _ := run(t, "", cmd, "--help")
		code2, viaHelp, _ := run(t, "", "help", cmd)
		if code != 0 || code2 != 0 || viaFlag != viaHelp || !strings.Contains(viaFlag, "kubectl secrets-manager "+cmd) {
			t.Errorf("%s --help (%d) and help %s (%d) differ or miss the usage line:\n%s", cmd, code, cmd, code2, viaFlag)
		}
	}
	// Every kubectl connection flag, and the plugin's --timeout.
	for _, flag := range []string{"--kubeconfig", "--context", "--cluster", "--user", "-n, --namespace", "--as ", "--as-group", "--token",
		"-s, --server", "--request-timeout", "--insecure-skip-tls-verify", "--certificate-authority", "--timeout duration"} {
		if !strings.Contains(out, flag) {
			t.Errorf("the root help does not list %s", flag)
		}
	}
	// Per-command flags are listed under each command only.
	_, putHelp, _ := run(t, "", "put", "--help")
	_, getHelp, _ := run(t, "", "get", "--help")
	if !strings.Contains(putHelp, "-f, --filename") || !strings.Contains(putHelp, "--binary") || strings.Contains(getHelp, "--binary") ||
		!strings.Contains(getHelp, "--output-file") || !strings.Contains(getHelp, "-o, --output") {
		t.Errorf("per-command flags:\n%s\n%s", putHelp, getHelp)
	}
}

// The exit codes the help documents are the ones awserr assigns.
func TestHelpDocumentsTheExitCodes(t *testing.T) {
	_, out, _ := run(t, "", "--help")
	for _, typ := range []string{awserr.ResourceNotFound, awserr.InvalidRequest, awserr.InvalidParameter, awserr.ResourceExists,
		awserr.LimitExceeded, awserr.DecryptionFailure, awserr.PreconditionNotMet, awserr.AccessDenied} {
		want := regexp.MustCompile(fmt.Sprintf(`(?m)^  %-3d [^\n]*%s`, awserr.ExitCode(typ), typ))
		if !want.MatchString(out) {
			t.Errorf("the help does not document exit %d for %s", awserr.ExitCode(typ), typ)
		}
	}
	for _, line := range []string{"  0   success", "  1   any other failure", "  2   bad arguments"} {
		if !strings.Contains(out, line) {
			t.Errorf("the help does not document %q", line)
		}
	}
}

func TestExitCodeOfFailures(t *testing.T) {
	var errOut bytes.Buffer
	a := &app{io: IO{Err: &errOut}}
	for _, c := range []struct {
		err  error
		code int
		line string
	}{
		{&runError{awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound)}, 3, "error: ResourceNotFoundException: Secrets Manager can't find the specified secret.\n"},
		{&runError{awserr.New(awserr.AccessDenied, "secrets is forbidden:\n  User \"x\"")}, 10, "error: AccessDeniedException: secrets is forbidden: User \"x\"\n"},
		{&runError{&awserr.Error{Code: "SomethingNew", Message: "m"}}, 1, "error: SomethingNew: m\n"},
		{&runError{fmt.Errorf("the operator did not answer")}, 1, "error: the operator did not answer\n"},
		{fmt.Errorf("cobra's own complaint"), 2, "error: cobra's own complaint\nSee 'kubectl secrets-manager --help' for usage.\n"},
	} {
		errOut.Reset()
		if code := a.exit(nil, c.err); code != c.code || errOut.String() != c.line {
			t.Errorf("%v: exit %d, %q; want %d, %q", c.err, code, errOut.String(), c.code, c.line)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "complete -o default -F __start_kubectl-secrets_manager kubectl-secrets_manager",
		"zsh":  "#compdef kubectl-secrets_manager",
		"fish": "complete -c kubectl-secrets_manager",
	} {
		code, out, errOut := run(t, "", "completion", shell)
		if code != 0 || !strings.Contains(out, marker) || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, %s, script without %q", shell, code, errOut, marker)
		}
	}
}

// completions runs the hidden __complete command and returns the candidates and the directive.
func completions(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	code, out, errOut := run(t, "", append([]string{CompleteCommand}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d %s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestCompletionOfCommandsAndFlagsWithoutACluster(t *testing.T) {
	got, directive := completions(t, "")
	if len(got) != 17 || !strings.HasPrefix(got[0], "put\t") || !strings.HasPrefix(got[9], "restore\t") || !strings.HasPrefix(got[11], "endpoint\t") ||
		!strings.HasPrefix(got[12], "keys\t") || !strings.HasPrefix(got[13], "rotate-key\t") || !strings.HasPrefix(got[14], "retire-key\t") ||
		!strings.HasPrefix(got[15], "completion\t") || directive != ":4" {
		t.Errorf("commands: %q %s", got, directive)
	}
	if got, _ := completions(t, "ro"); len(got) != 3 || !strings.HasPrefix(got[0], "rollback\t") || !strings.HasPrefix(got[2], "rotate-key\t") {
		t.Errorf("commands starting with ro: %q", got)
	}
	got, _ = completions(t, "rotate-key", "--")
	if flags := strings.Join(got, "\n"); !strings.Contains(flags, "--wait\t") || !strings.Contains(flags, "--operator-namespace\t") || strings.Contains(flags, "--output\t") {
		t.Errorf("rotate-key's flags: %q", got)
	}
	if got, _ := completions(t, "keys", "-o", ""); strings.Join(got, ",") != "json,yaml" {
		t.Errorf("keys -o: %q", got)
	}
	if got, _ := completions(t, "u"); len(got) != 1 || !strings.HasPrefix(got[0], "update-stage\t") {
		t.Errorf("commands starting with u: %q", got)
	}
	if got, _ := completions(t, "get", "db", "-o", ""); strings.Join(got, ",") != "json,yaml" {
		t.Errorf("-o: %q", got)
	}
	got, _ = completions(t, "get", "db", "--")
	flags := strings.Join(got, "\n")
	for _, f := range []string{"--version-id", "--stage", "--output-file", "--output", "--namespace", "--as", "--kubeconfig", "--timeout"} {
		if !strings.Contains(flags, f+"\t") {
			t.Errorf("get's flags lack %s: %q", f, got)
		}
	}
	if strings.Contains(flags, "--binary") || strings.Contains(flags, "--stages") {
		t.Errorf("get offers put's flags: %q", got)
	}
	if got, _ := completions(t, "completion", ""); strings.Join(got, ",") != "bash,zsh,fish" {
		t.Errorf("shells: %q", got)
	}
	// Without a name, --stage offers AWS's labels.
	if got, _ := completions(t, "update-stage", "--stage", "AWSP"); strings.Join(got, ",") != "AWSPENDING,AWSPREVIOUS" {
		t.Errorf("labels without a name: %q", got)
	}
}

// The namespace is -n, else the kubeconfig context's, as kubectl has it.
func TestKubeconfigContextNamespaceIsUsed(t *testing.T) {
	kc, _ := apiServer(t)
	for _, c := range []struct {
		args []string
		ns   string
	}{
		{[]string{"--kubeconfig", kc}, "from-context"},
		{[]string{"--kubeconfig", kc, "-n", "explicit"}, "explicit"},
		{[]string{"--kubeconfig", kc, "--namespace=other"}, "other"},
	} {
		a := newApp(IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
		if err := a.rootCommand().ParseFlags(c.args); err != nil {
			t.Fatal(err)
		}
		s, err := a.connect()
		if err != nil {
			t.Fatal(err)
		}
		if s.ns != c.ns {
			t.Errorf("%q: namespace %q, want %q", c.args, s.ns, c.ns)
		}
	}
}
