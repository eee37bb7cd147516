package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/cli"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
)

// The plugin is driven as a user runs it: its entry point, a kubeconfig, arguments, stdin.
func plugin(t *testing.T, ns, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append(args, "--kubeconfig", kubeconfigPath, "-n", ns)
	code := cli.Main(context.Background(), args, cli.IO{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	logs.Write([]byte("plugin stderr: " + errOut.String()))
	return code, out.String(), errOut.String()
}

func valueFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func stagesByVersion(t *testing.T, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range versions(t, ns) {
		out[v.Spec.VersionID] = strings.Join(v.Spec.Stages, ",")
	}
	return out
}

func requestSecrets(t *testing.T, ns string) int {
	t.Helper()
	list := &corev1.SecretList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelRole: request.RoleRequest}); err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

func TestPluginPutAndGet(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"}}); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "api", metav1.ConditionFalse, v1alpha1.ReasonAwaitingValue)

	v1 := `{"token":"CANARY-put-one"}`
	token := "11111111-aaaa-bbbb-cccc-000000000001"
	code, out, errOut := plugin(t, ns, "", "put", "api", "-f", valueFile(t, v1), "--client-request-token", token)
	if code != 0 {
		t.Fatalf("put: %d %s", code, errOut)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["VersionId"] != token {
		t.Fatalf("put output %s", out)
	}
	waitReady(t, ns, "api", metav1.ConditionTrue, v1alpha1.ReasonReady)
	if got := projectedValue(t, ns, "api"); got["token"] != "CANARY-put-one" {
		t.Fatalf("projected %v", got)
	}
	code, out, _ = plugin(t, ns, "", "get", "api")
	if code != 0 || out != v1 {
		t.Fatalf("get: %d %q", code, out)
	}

	// The same token and value again: a no-op. The same token with another value: refused.
	if code, _, errOut := plugin(t, ns, "", "put", "api", "-f", valueFile(t, v1), "--client-request-token", token); code != 0 {
		t.Fatalf("idempotent put: %d %s", code, errOut)
	}
	code, _, errOut = plugin(t, ns, "", "put", "api", "-f", valueFile(t, `{"token":"CANARY-other"}`), "--client-request-token", token)
	wantRefusal(t, "conflicting put", code, errOut, awserr.ResourceExists, "You can't use ClientRequestToken "+token+" because that value is already in use")
	if n := len(versions(t, ns)); n != 1 {
		t.Fatalf("%d versions after the refused put", n)
	}

	// A value from stdin with a custom label only: AWSCURRENT stays where it is.
	code, out, errOut = plugin(t, ns, `{"token":"CANARY-staged"}`, "put", "api", "-f", "-", "--stages", "canary-stage")
	if code != 0 {
		t.Fatalf("put --stages: %d %s", code, errOut)
	}
	_ = json.Unmarshal([]byte(out), &res)
	staged := res["VersionId"].(string)
	if l := stagesByVersion(t, ns); l[token] != stages.Current || l[staged] != "canary-stage" {
		t.Fatalf("labels %v", l)
	}
	code, out, _ = plugin(t, ns, "", "get", "api", "--stage", "canary-stage")
	if code != 0 || out != `{"token":"CANARY-staged"}` {
		t.Fatalf("get --stage: %d %q", code, out)
	}
	// Written to a file with mode 0600.
	path := filepath.Join(t.TempDir(), "out.json")
	if code, out, errOut := plugin(t, ns, "", "get", "api", "--version-id", token, "--output-file", path); code != 0 || out != "" {
		t.Fatalf("get --output-file: %d %q %s", code, out, errOut)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v %v", st, err)
	}
	if data, _ := os.ReadFile(path); string(data) != v1 {
		t.Fatalf("file holds %q", data)
	}

	// Bad input: one line, the exit code of its class, nothing changed.
	before := stagesByVersion(t, ns)
	for _, b := range []struct {
		args []string
		typ  string
		want string
	}{
		{[]string{"get", "api", "--version-id", "99999999-aaaa-bbbb-cccc-000000000009"}, awserr.ResourceNotFound, "can't find the specified secret value for VersionId: 99999999-aaaa-bbbb-cccc-000000000009"},
		{[]string{"get", "api", "--stage", "nope"}, awserr.ResourceNotFound, "can't find the specified secret value for staging label: nope"},
	} {
		code, _, errOut := plugin(t, ns, "", b.args...)
		wantRefusal(t, strings.Join(b.args, " "), code, errOut, b.typ, b.want)
	}
	for _, b := range [][]string{
		{"put", "api", "-f", valueFile(t, "x"), "--client-request-token", "short"},
		{"put", "api"},
		{"put", "api", "-f", valueFile(t, "")},
		{"put", "api", "-f", "-"},
	} {
		code, _, errOut := plugin(t, ns, "", b...)
		wantUsageError(t, strings.Join(b, " "), code, errOut)
	}
	code, _, errOut = plugin(t, ns, "", "get", "missing")
	wantAWSError(t, "get of a missing ManagedSecret", code, errOut, awserr.ResourceNotFound, awserr.MsgSecretNotFound)
	if after := stagesByVersion(t, ns); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("bad input changed versions: %v -> %v", before, after)
	}
	eventually(t, "request Secrets cleaned up", func() error {
		if n := requestSecrets(t, ns); n != 0 {
			return fmt.Errorf("%d left", n)
		}
		return nil
	})
}

func TestPluginUpdateStageAndRollback(t *testing.T) {
	ns := newNamespace(t)
	first := createReady(t, generated(ns, "db")).Status.CurrentVersionID
	code, out, errOut := plugin(t, ns, "", "put", "db", "-f", valueFile(t, `{"password":"CANARY-second"}`))
	if code != 0 {
		t.Fatalf("put: %s", errOut)
	}
	var res map[string]any
	_ = json.Unmarshal([]byte(out), &res)
	second := res["VersionId"].(string)
	if l := stagesByVersion(t, ns); l[first] != stages.Previous || l[second] != stages.Current {
		t.Fatalf("after put: %v", l)
	}
	eventually(t, "projection follows the put", func() error {
		if projectedValue(t, ns, "db")["password"] != "CANARY-second" {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	// rollback: AWSCURRENT back to AWSPREVIOUS in one step, and the projected Secret follows.
	if code, _, errOut := plugin(t, ns, "", "rollback", "db"); code != 0 {
		t.Fatalf("rollback: %s", errOut)
	}
	if l := stagesByVersion(t, ns); l[first] != stages.Current || l[second] != stages.Previous {
		t.Fatalf("after rollback: %v", l)
	}
	eventually(t, "projection follows the rollback", func() error {
		if projectedValue(t, ns, "db")["password"] == "CANARY-second" {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	// Moving AWSCURRENT without naming the version it leaves: refused, as AWS does.
	code, _, errOut = plugin(t, ns, "", "update-stage", "db", "--stage", stages.Current, "--move-to-version-id", second)
	wantRefusal(t, "move without remove-from", code, errOut, "", "so you must explicitly reference that version in RemoveFromVersionId")
	code, _, errOut = plugin(t, ns, "", "update-stage", "db", "--stage", stages.Current, "--move-to-version-id", "99999999-aaaa-bbbb-cccc-000000000009", "--remove-from-version-id", first)
	wantRefusal(t, "move to a missing version", code, errOut, "", "Not a valid version: ")
	if l := stagesByVersion(t, ns); l[first] != stages.Current {
		t.Fatalf("a refused move changed labels: %v", l)
	}
	if code, _, errOut := plugin(t, ns, "", "update-stage", "db", "--stage", stages.Current, "--move-to-version-id", second, "--remove-from-version-id", first); code != 0 {
		t.Fatalf("move: %s", errOut)
	}
	// A custom label attached and removed.
	if code, _, errOut := plugin(t, ns, "", "update-stage", "db", "--stage", "blue", "--move-to-version-id", first); code != 0 {
		t.Fatalf("attach custom: %s", errOut)
	}
	if l := stagesByVersion(t, ns); l[second] != stages.Current || l[first] != "AWSPREVIOUS,blue" {
		t.Fatalf("after moves: %v", l)
	}
}

func TestPluginDescribeAndVersions(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	m := rotated(ns, "app", "pw")
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	first := waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady).Status.CurrentVersionID
	for i := 0; i < 2; i++ {
		if code, _, errOut := plugin(t, ns, "", "put", "app", "-f", valueFile(t, fmt.Sprintf(`{"password":"CANARY-%d"}`, i))); code != 0 {
			t.Fatal(errOut)
		}
	}
	eventually(t, "nextRotationTime", func() error {
		if getMsec(t, ns, "app").Status.NextRotationTime == nil {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	code, out, errOut := plugin(t, ns, "", "describe", "app", "-o", "json")
	if code != 0 {
		t.Fatal(errOut)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	toStages := d["VersionIdsToStages"].(map[string]any)
	if len(toStages) != 2 || d["RotationEnabled"] != true || d["NextRotationDate"] == nil || d["Description"] != "orders database" ||
		d["RotationRules"].(map[string]any)["AutomaticallyAfterDays"] != float64(30) || !strings.HasPrefix(d["ARN"].(string), "arn:kubernetes:secretsmanager:") {
		t.Fatalf("describe: %s", out)
	}
	if _, listed := toStages[first]; listed {
		t.Fatal("the deprecated first version must not be in VersionIdsToStages")
	}
	code, out, _ = plugin(t, ns, "", "versions", "app", "-o", "json")
	var l struct{ Versions []map[string]any }
	_ = json.Unmarshal([]byte(out), &l)
	if code != 0 || len(l.Versions) != 2 {
		t.Fatalf("versions: %s", out)
	}
	code, out, _ = plugin(t, ns, "", "versions", "app", "--include-deprecated", "-o", "json")
	l = struct{ Versions []map[string]any }{}
	_ = json.Unmarshal([]byte(out), &l)
	if code != 0 || len(l.Versions) != 3 {
		t.Fatalf("versions --include-deprecated: %s", out)
	}
	for _, v := range l.Versions {
		if v["VersionId"] == first {
			if _, has := v["VersionStages"]; has {
				t.Fatal("a deprecated version is listed without VersionStages, as AWS does")
			}
		}
	}
}

func TestPluginDeleteWithRecoveryWindowAndRestore(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	m := rotated(ns, "old", "pw")
	week := int32(7)
	m.Spec.RecoveryWindowDays = &week
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "old", metav1.ConditionTrue, v1alpha1.ReasonReady)
	cj := cronJobOf(t, ns, "old")
	secretBefore := projectedValue(t, ns, "old")

	for _, days := range []string{"6", "31"} {
		code, _, errOut := plugin(t, ns, "", "delete", "old", "--recovery-window-in-days", days)
		if code != 2 || !strings.Contains(errOut, "recovery window must be 7 to 30 days") {
			t.Fatalf("window %s: %d %s", days, code, errOut)
		}
	}
	if _, marked := getMsec(t, ns, "old").Annotations[request.AnnotationDeleteRequested]; marked {
		t.Fatal("a refused delete marked the secret")
	}
	start := time.Now()
	// No --recovery-window-in-days: the secret's spec.recoveryWindowDays (7) applies.
	code, out, errOut := plugin(t, ns, "", "delete", "old")
	if code != 0 || !strings.Contains(out, "DeletionDate") {
		t.Fatalf("delete: %d %s %s", code, out, errOut)
	}
	got := waitReady(t, ns, "old", metav1.ConditionFalse, v1alpha1.ReasonPendingDeletion)
	if got.Status.DeletionTime == nil || got.Status.DeletionTime.Sub(start) < 7*24*time.Hour-time.Minute || got.Status.DeletionTime.Sub(start) > 7*24*time.Hour+time.Minute {
		t.Fatalf("deletionTime %v", got.Status.DeletionTime)
	}
	// No rotations while marked: the CronJob is gone. The projected Secret stays as it was.
	eventually(t, "CronJob removed", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(cj), &batchv1.CronJob{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
	if fmt.Sprint(projectedValue(t, ns, "old")) != fmt.Sprint(secretBefore) {
		t.Fatal("the projected Secret changed during the recovery window")
	}
	for _, args := range [][]string{{"get", "old"}, {"put", "old", "-f", valueFile(t, "CANARY-late")}, {"rotate", "old"}, {"rollback", "old"}} {
		code, _, errOut := plugin(t, ns, "", args...)
		wantAWSError(t, strings.Join(args, " ")+" while marked", code, errOut, awserr.InvalidRequest, awserr.MsgMarkedForDeletion)
	}
	// A second (unforced) delete is refused with AWS's own words for it.
	code, _, errOut = plugin(t, ns, "", "delete", "old")
	wantAWSError(t, "delete while marked", code, errOut, awserr.InvalidRequest, "You tried to perform the operation on a secret that's currently marked deleted.")
	code, out, _ = plugin(t, ns, "", "describe", "old", "-o", "json")
	if code != 0 || !strings.Contains(out, "DeletedDate") {
		t.Fatalf("describe while marked: %d %s", code, out)
	}
	// The name cannot be reused: the ManagedSecret is still there.
	if err := k8s.Create(ctx, generated(ns, "old")); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("re-creating the name: %v", err)
	}

	if code, _, errOut := plugin(t, ns, "", "restore", "old"); code != 0 {
		t.Fatalf("restore: %s", errOut)
	}
	restored := waitReady(t, ns, "old", metav1.ConditionTrue, v1alpha1.ReasonReady)
	if restored.Status.DeletionTime != nil {
		t.Fatal("deletionTime kept after restore")
	}
	cronJobOf(t, ns, "old")

	// When the window ends the secret is purged, with everything it owned.
	if code, _, errOut := plugin(t, ns, "", "delete", "old", "--recovery-window-in-days", "7"); code != 0 {
		t.Fatal(errOut)
	}
	marked := waitReady(t, ns, "old", metav1.ConditionFalse, v1alpha1.ReasonPendingDeletion)
	past := metav1.NewTime(time.Now().Add(-time.Minute).UTC().Truncate(time.Second))
	orig := marked.DeepCopy()
	marked.Status.DeletionTime = &past
	if err := k8s.Status().Patch(ctx, marked, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	// Nudge a reconcile (the operator would wake at the deletion time by itself).
	r := testReconciler(t)
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "old"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "purged", func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "old"}, &v1alpha1.ManagedSecret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("ManagedSecret still there: %v", err)
		}
		if n := len(versions(t, ns)); n != 0 {
			return fmt.Errorf("%d versions left", n)
		}
		if _, err := secret(t, ns, "old"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("projected Secret left")
		}
		return nil
	})
}

func TestPluginForceDelete(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReady(t, generated(ns, "now"))
	if code, _, errOut := plugin(t, ns, "", "delete", "now", "--force-delete-without-recovery", "--recovery-window-in-days", "7"); code != 2 || !strings.Contains(errOut, "in conjunction") {
		t.Fatalf("both options: %d %s", code, errOut)
	}
	if code, _, errOut := plugin(t, ns, "", "delete", "now", "--force-delete-without-recovery"); code != 0 {
		t.Fatal(errOut)
	}
	eventually(t, "deleted at once", func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "now"}, &v1alpha1.ManagedSecret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there")
		}
		return nil
	})
}

func TestPluginRotateAndCancel(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	m := rotated(ns, "app", "pw")
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)
	cj := cronJobOf(t, ns, "app")
	if code, _, errOut := plugin(t, ns, "", "rotate", "app"); code != 0 {
		t.Fatal(errOut)
	}
	var job *batchv1.Job
	eventually(t, "rotation Job", func() error {
		jobs := &batchv1.JobList{}
		if err := k8s.List(ctx, jobs, client.InNamespace(ns)); err != nil || len(jobs.Items) != 1 {
			return fmt.Errorf("%d jobs %v", len(jobs.Items), err)
		}
		job = &jobs.Items[0]
		return nil
	})
	material(t, ns, cj, job)

	// cancel-rotation: the CronJob is suspended and the rotation in progress stops; the pending
	// version keeps AWSPENDING (AWS's CancelRotateSecret).
	if code, _, errOut := plugin(t, ns, "", "cancel-rotation", "app"); code != 0 {
		t.Fatal(errOut)
	}
	eventually(t, "cancelled", func() error {
		got := getMsec(t, ns, "app")
		if c := rotationCondition(got, v1alpha1.ConditionRotationScheduled); c.Reason != v1alpha1.ReasonRotationCancelled {
			return fmt.Errorf("%+v", c)
		}
		cur := cronJobOf(t, ns, "app")
		if cur.Spec.Suspend == nil || !*cur.Spec.Suspend {
			return fmt.Errorf("CronJob not suspended")
		}
		// Deleted in the foreground (pods first); envtest has no garbage collector to finish it.
		if j := (&batchv1.Job{}); k8s.Get(ctx, client.ObjectKeyFromObject(job), j) == nil && j.DeletionTimestamp == nil {
			return fmt.Errorf("the Job in progress was not deleted")
		}
		if got.Status.PendingVersionID == "" {
			return fmt.Errorf("the pending version lost AWSPENDING")
		}
		return nil
	})
	code, out, _ := plugin(t, ns, "", "describe", "app", "-o", "json")
	if code != 0 || !strings.Contains(out, `"RotationEnabled": false`) {
		t.Fatalf("describe after cancel: %s", out)
	}
	// rotate turns rotation on again.
	if code, _, errOut := plugin(t, ns, "", "rotate", "app"); code != 0 {
		t.Fatal(errOut)
	}
	waitScheduled(t, ns, "app")
}

// putRequest writes a put request Secret by hand, as the plugin would, without confirming it.
func putRequest(t *testing.T, m *v1alpha1.ManagedSecret, name, token, val string) *corev1.Secret {
	t.Helper()
	yes := true
	reqJSON, _ := json.Marshal(request.Request{Op: request.OpPut, ClientRequestToken: token})
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: name, Labels: map[string]string{
			v1alpha1.LabelManagedSecretUID: string(m.UID), v1alpha1.LabelRole: request.RoleRequest},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ManagedSecret", Name: m.Name, UID: m.UID, Controller: &yes}}},
		Data: map[string][]byte{request.KeyRequest: reqJSON, request.KeyValue: []byte(val)},
	}
	if err := k8s.Create(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	return sec
}

// A request Secret that nobody confirmed on the ManagedSecret (someone who may create Secrets but
// not patch ManagedSecrets) changes nothing.
func TestUnconfirmedPutIsIgnored(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "guarded"))
	sneaky := putRequest(t, m, "ksm-request-sneaky", "22222222-aaaa-bbbb-cccc-000000000002", "CANARY-sneaky")
	r := testReconciler(t)
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "guarded"}}); err != nil {
		t.Fatal(err)
	}
	if n := len(versions(t, ns)); n != 1 {
		t.Fatalf("an unconfirmed put made a version (%d versions)", n)
	}
	got := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(sneaky), got); err != nil || got.Annotations[request.AnnotationResult] != "" {
		t.Fatalf("the unconfirmed request was answered: %v", got.Annotations)
	}
}

// Deprecated versions beyond 100 are pruned once something says the secret is over the cap (a
// version deprecated by the operator, or the key pass that reads them all), oldest first, never one
// under 24 hours old and never one with a label.
func TestDeprecatedVersionsArePrunedBeyondAHundred(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "many"))
	r := testReconciler(t)
	// 102 deprecated versions and one with a custom label, written directly.
	for i := 0; i < 103; i++ {
		var labels []string
		if i == 0 {
			labels = []string{"keep-me"}
		}
		sv, err := r.sealVersion(ctx, m, fmt.Sprintf("00000000-0000-0000-0000-%012d", i), labels, []byte(fmt.Sprintf(`{"n":"%d"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := k8s.Create(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	reconcileAt := func(at time.Time) {
		t.Helper()
		r.Now = func() time.Time { return at }
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "many"}}); err != nil {
			t.Fatal(err)
		}
	}
	// Written behind the operator's back, so nothing deprecated them in this process: a reconcile
	// does not even count them (no LIST per secret) ...
	reconcileAt(time.Now().Add(25 * time.Hour))
	if n := len(versions(t, ns)); n != 104 {
		t.Fatalf("%d versions; pruned before anything said they were over the cap", n)
	}
	// ... until the key pass, which reads every deprecated version, finds the secret over the cap.
	primary, err := r.Keys.(envelope.PrimaryKeyer).PrimaryKeyID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keyPass := &KeyCustodian{Cache: k8s, Direct: k8s, Keys: r.Keys, Store: r.Store(), Namespaces: []string{ns}}
	if _, _, _, _, err := keyPass.rewrapAll(ctx, primary, false); err != nil {
		t.Fatal(err)
	}
	// All are younger than 24 hours: nothing is pruned.
	reconcileAt(time.Now())
	if n := len(versions(t, ns)); n != 104 {
		t.Fatalf("%d versions; young ones must not be pruned", n)
	}
	// A day later: the two oldest deprecated go, the labelled one and AWSCURRENT stay.
	reconcileAt(time.Now().Add(25 * time.Hour))
	eventually(t, "pruned to 100 deprecated", func() error {
		l := stagesByVersion(t, ns)
		deprecated := 0
		for _, stages := range l {
			if stages == "" {
				deprecated++
			}
		}
		if deprecated != 100 || l["00000000-0000-0000-0000-000000000000"] != "keep-me" || l[m.Status.CurrentVersionID] != stages.Current {
			return fmt.Errorf("%d deprecated of %d", deprecated, len(l))
		}
		return nil
	})
}

// A confirmed request runs once: replaying it (someone who may update Secrets removes the answer
// and swaps the value) or changing it after it was confirmed does nothing.
func TestReplayedOrChangedRequestsAreRefused(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "once"))
	newRequest := func(name, token, val string) *corev1.Secret { return putRequest(t, m, name, token, val) }
	confirm := func(sec *corev1.Secret, rv string) {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, request.AnnotationPrefix+sec.Name, request.Confirmation(request.OpPut, string(sec.UID), rv))
		if err := k8s.Patch(ctx, getMsec(t, ns, "once"), client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(sec *corev1.Secret) request.Result {
		var res request.Result
		eventually(t, "answer to "+sec.Name, func() error {
			got := &corev1.Secret{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(sec), got); err != nil {
				return err
			}
			a, ok := got.Annotations[request.AnnotationResult]
			if !ok {
				return fmt.Errorf("no answer yet")
			}
			res, _ = request.DecodeResult(a)
			return nil
		})
		return res
	}

	// Changed after confirmation: refused.
	changed := newRequest("ksm-request-changed", "33333333-aaaa-bbbb-cccc-000000000003", "CANARY-original")
	rv := changed.ResourceVersion
	changed.Data[request.KeyValue] = []byte("CANARY-swapped")
	if err := k8s.Update(ctx, changed); err != nil {
		t.Fatal(err)
	}
	confirm(changed, rv)
	if res := answer(changed); res.OK || !strings.Contains(res.Error, "changed after it was confirmed") {
		t.Fatalf("changed request: %+v", res)
	}

	// A legitimate request runs; replaying it with another value does not.
	legit := newRequest("ksm-request-legit", "44444444-aaaa-bbbb-cccc-000000000004", "CANARY-legit")
	confirm(legit, legit.ResourceVersion)
	if res := answer(legit); !res.OK {
		t.Fatalf("legit request: %+v", res)
	}
	replay := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(legit), replay); err != nil {
		t.Fatal(err)
	}
	reqJSON, _ := json.Marshal(request.Request{Op: request.OpPut, ClientRequestToken: "55555555-aaaa-bbbb-cccc-000000000005"})
	delete(replay.Annotations, request.AnnotationResult)
	replay.Data = map[string][]byte{request.KeyRequest: reqJSON, request.KeyValue: []byte("CANARY-replayed")}
	if err := k8s.Update(ctx, replay); err != nil {
		t.Fatal(err)
	}
	r := testReconciler(t)
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "once"}}); err != nil {
		t.Fatal(err)
	}
	l := stagesByVersion(t, ns)
	if _, made := l["55555555-aaaa-bbbb-cccc-000000000005"]; made || len(l) != 2 {
		t.Fatalf("a replayed request ran: %v", l)
	}
	if got := projectedValue(t, ns, "once"); got["value"] != "CANARY-legit" {
		t.Fatalf("projected %v", got)
	}
}

func TestPluginForceDeletesAMarkedSecretAndRestoreStartsANewWindow(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReady(t, generated(ns, "twice"))
	if code, _, errOut := plugin(t, ns, "", "delete", "twice", "--recovery-window-in-days", "0"); code != 2 || !strings.Contains(errOut, "7 to 30 days") {
		t.Fatalf("window 0: %d %s", code, errOut)
	}
	if code, _, errOut := plugin(t, ns, "", "delete", "twice", "--recovery-window-in-days", "7"); code != 0 {
		t.Fatal(errOut)
	}
	first := waitReady(t, ns, "twice", metav1.ConditionFalse, v1alpha1.ReasonPendingDeletion).Status.DeletionTime
	if code, _, errOut := plugin(t, ns, "", "restore", "twice"); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := plugin(t, ns, "", "delete", "twice", "--recovery-window-in-days", "30"); code != 0 {
		t.Fatal(errOut)
	}
	eventually(t, "a new 30-day window", func() error {
		got := getMsec(t, ns, "twice").Status.DeletionTime
		if got == nil || got.Sub(first.Time) < 22*24*time.Hour {
			return fmt.Errorf("deletionTime %v (first %v)", got, first)
		}
		return nil
	})
	if code, _, errOut := plugin(t, ns, "", "delete", "twice", "--force-delete-without-recovery"); code != 0 {
		t.Fatalf("force on a marked secret: %d %s", code, errOut)
	}
	eventually(t, "deleted", func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "twice"}, &v1alpha1.ManagedSecret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there")
		}
		return nil
	})
}
