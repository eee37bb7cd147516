package controllers

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// pluginKeyStatus is `keys -o json`.
type pluginKeyStatus struct {
	Primary   string         `json:"primaryKeyId"`
	Provider  string         `json:"provider"`
	Healthy   string         `json:"providerHealthy"`
	Remaining string         `json:"versionsNotOnPrimary"`
	Usage     map[string]int `json:"keyUsage"`
	Retired   string         `json:"retiredKeys"`
	Message   string         `json:"message"`
}

func pluginKeys(t *testing.T, ns string) pluginKeyStatus {
	t.Helper()
	code, out, errOut := plugin(t, ns, "", "keys", "-o", "json", "--operator-namespace", suiteOpts.Namespace)
	if code != 0 {
		t.Fatalf("keys -o json: exit %d, %s", code, errOut)
	}
	var st pluginKeyStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("keys -o json: %v\n%s", err, out)
	}
	return st
}

// The key custody commands against the suite's operator (the local keyring; it checks its keys
// every 300 ms): keys shows the status, rotate-key --wait returns the new primary once everything
// is on it, retire-key --wait retires the old key and refuses the primary. Other tests rotate
// keys too, so no key id is assumed.
func TestPluginKeyCustodyCommands(t *testing.T) {
	ns := newNamespace(t)
	createReady(t, generated(ns, "keyed"))
	t.Cleanup(func() { annotateKeyStatus(t, AnnotationRetireKeys, "") })

	before := pluginKeys(t, ns)
	if before.Primary == "" || before.Provider != KeyProviderLocal || before.Healthy != "true" {
		t.Fatalf("keys -o json before the rotation: %+v", before)
	}
	code, out, errOut := plugin(t, ns, "", "keys", "--operator-namespace", suiteOpts.Namespace)
	if code != 0 || !strings.Contains(out, "Primary Key:") || !strings.Contains(out, before.Primary) || !strings.Contains(out, "Provider:                 local") {
		t.Fatalf("keys: exit %d, %s\n%s", code, errOut, out)
	}
	old := before.Primary

	code, out, errOut = plugin(t, ns, "", "rotate-key", "--wait", "--operator-namespace", suiteOpts.Namespace, "--timeout", "60s")
	primary := strings.TrimSpace(out)
	if code != 0 || primary == "" || primary == old || strings.Contains(primary, "\n") {
		t.Fatalf("rotate-key --wait: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	if ring := storedRing(t); ring.Primary != primary {
		t.Fatalf("rotate-key printed %s, the keyring's primary is %s", primary, ring.Primary)
	}
	for _, v := range versions(t, ns) {
		if v.Spec.Payload.KeyID != primary {
			t.Fatalf("rotate-key --wait returned with version %s on %s", v.Name, v.Spec.Payload.KeyID)
		}
	}
	after := pluginKeys(t, ns)
	if after.Primary != primary || after.Usage[old] != 0 || after.Usage[primary] == 0 {
		t.Fatalf("keys -o json after the rotation: %+v", after)
	}

	// Without --wait: the request only.
	code, out, errOut = plugin(t, ns, "", "retire-key", old, "--operator-namespace", suiteOpts.Namespace)
	if code != 0 || !strings.Contains(out, "retirement of "+old+" requested") {
		t.Fatalf("retire-key %s: exit %d, %q, %s", old, code, out, errOut)
	}
	code, out, errOut = plugin(t, ns, "", "retire-key", old, "--wait", "--operator-namespace", suiteOpts.Namespace, "--timeout", "60s")
	if code != 0 || (out != "retired "+old+"\n" && out != "already retired: "+old+"\n") {
		t.Fatalf("retire-key %s --wait: exit %d, %q, %s", old, code, out, errOut)
	}
	if ring := storedRing(t); !slices.Contains(ring.Retired, old) || slices.Contains(ring.KeyIDs(), old) {
		t.Fatalf("keys %v, retired %v", ring.KeyIDs(), ring.Retired)
	}
	if got := keyStatus(t).Annotations[AnnotationRetireKeys]; !slices.Contains(strings.Split(got, ","), old) {
		t.Fatalf("the retire-keys annotation is %q", got)
	}

	// The primary is refused, with the operator's words and InvalidRequestException's exit code.
	code, out, errOut = plugin(t, ns, "", "retire-key", primary, "--wait", "--operator-namespace", suiteOpts.Namespace, "--timeout", "60s")
	wantRefusal(t, "retire-key of the primary key", code, errOut, awserr.InvalidRequest, "not retired: "+primary+" (primary")
	if out != "" {
		t.Errorf("a refused retire-key printed %q", out)
	}
	// Requests merge with what is there.
	if got := keyStatus(t).Annotations[AnnotationRetireKeys]; !slices.Contains(strings.Split(got, ","), old) || !slices.Contains(strings.Split(got, ","), primary) {
		t.Fatalf("the retire-keys annotation is %q", got)
	}
	if ring := storedRing(t); ring.Primary != primary || !slices.Contains(ring.KeyIDs(), primary) {
		t.Fatalf("the primary key %s was touched: %v", primary, ring.KeyIDs())
	}

	// retire-key completes the keys that are not retired, the primary said as such.
	got := completePlugin(t, []string{"--kubeconfig", kubeconfigPath}, "retire-key", "--operator-namespace", suiteOpts.Namespace, "")
	if !slices.Contains(got, primary+"\tthe primary key (wraps "+strconv.Itoa(pluginKeys(t, ns).Usage[primary])+" objects)") || slices.ContainsFunc(got, func(c string) bool { return strings.HasPrefix(c, old+"\t") }) {
		t.Errorf("retire-key completions: %q", got)
	}

	// An operator namespace without an operator.
	for _, args := range [][]string{{"keys"}, {"rotate-key"}, {"retire-key", old}} {
		code, _, errOut := plugin(t, ns, "", append(args, "--operator-namespace", ns)...)
		wantAWSError(t, args[0]+" where no operator runs", code, errOut, awserr.ResourceNotFound, "the operator has not started in namespace "+ns)
	}

	// The rights each command's help names: keys needs get; rotate-key patch.
	// (The Role is in the operator's namespace, which outlives this test: a user of its own.)
	reader := "key-reader-" + ns
	grantRole(t, suiteOpts.Namespace, "User", reader, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}})
	if code, out, errOut := pluginAs(t, reader, ns, "", "keys", "--operator-namespace", suiteOpts.Namespace); code != 0 || !strings.Contains(out, primary) {
		t.Errorf("keys with get on configmaps: exit %d, %s", code, errOut)
	}
	code, _, errOut = pluginAs(t, reader, ns, "", "rotate-key", "--operator-namespace", suiteOpts.Namespace)
	wantAWSError(t, "rotate-key without patch", code, errOut, awserr.AccessDenied, `cannot patch resource "configmaps"`)
	code, _, errOut = pluginAs(t, "nobody", ns, "", "keys", "--operator-namespace", suiteOpts.Namespace)
	wantAWSError(t, "keys without get", code, errOut, awserr.AccessDenied, `cannot get resource "configmaps"`)
}
