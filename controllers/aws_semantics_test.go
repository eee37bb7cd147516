package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"k8s.io/client-go/util/retry"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// A rotation started while AWSPENDING sits on the AWSCURRENT version (a put with both labels, as
// AWS allows): createSecret takes AWSPENDING off it, so exactly one version holds AWSPENDING, Ready
// stays True, and finishSecret moves AWSCURRENT and AWSPREVIOUS as AWS does.
func TestRotationWhilePendingSitsOnCurrent(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	createReady(t, rotated(ns, "app", "pw"))
	if code, _, errOut := plugin(t, ns, `{"password":"CANARY-both-labels"}`, "put", "app", "-f", "-", "--stages", "AWSCURRENT,AWSPENDING",
		"--client-request-token", "bbbbbbbb-aaaa-bbbb-cccc-00000000000b"); code != 0 {
		t.Fatal(errOut)
	}
	both := "bbbbbbbb-aaaa-bbbb-cccc-00000000000b"
	eventually(t, "the put's version holds AWSCURRENT and AWSPENDING", func() error {
		if got := stagesByVersion(t, ns)[both]; got != "AWSCURRENT,AWSPENDING" {
			return fmt.Errorf("%q", got)
		}
		return nil
	})
	before := waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)
	cj := cronJobOf(t, ns, "app")
	job := startJob(t, cj, "rot-1")
	dir, req := material(t, ns, cj, job)
	pendingHolders := func() []string {
		var out []string
		for id, labels := range stagesByVersion(t, ns) {
			if strings.Contains(labels, v1alpha1.StagePending) {
				out = append(out, id)
			}
		}
		return out
	}
	if h := pendingHolders(); len(h) != 1 || h[0] != req.ClientRequestToken {
		t.Fatalf("AWSPENDING is on %v, want only the new version %s", h, req.ClientRequestToken)
	}
	waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)
	if code, out := runPod(t, dir, job); code != 0 {
		t.Fatal(out)
	}
	finishJob(t, job, true)
	after := waitRotated(t, ns, "app", before.Status.CurrentVersionID)
	labels := stagesByVersion(t, ns)
	if after.Status.CurrentVersionID != req.ClientRequestToken || labels[req.ClientRequestToken] != "AWSCURRENT" || labels[both] != "AWSPREVIOUS" || len(pendingHolders()) != 0 {
		t.Fatalf("after finishSecret: %v", labels)
	}
	waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)
}

// Secret-level operations answer as AWS does: a forced delete of a secret that does not exist
// succeeds; cancel-rotation of a secret without rotation is InvalidRequestException; describe
// prints tags as Key/Value and omits empty members.
func TestSecretLevelOperationsAnswerAsAWS(t *testing.T) {
	ns := newNamespace(t)
	code, out, errOut := plugin(t, ns, "", "delete", "never-existed", "--force-delete-without-recovery")
	if code != 0 || !strings.Contains(out, `"DeletionDate"`) {
		t.Fatalf("a forced delete of a missing secret: %d %s %s", code, out, errOut)
	}
	code, _, errOut = plugin(t, ns, "", "delete", "never-existed")
	wantAWSError(t, "an unforced delete of a missing secret", code, errOut, awserr.ResourceNotFound, awserr.MsgSecretNotFound)

	m := generated(ns, "tagged")
	m.Spec.Tags = []v1alpha1.Tag{{Key: "team", Value: "a"}}
	createReady(t, m)
	code, _, errOut = plugin(t, ns, "", "cancel-rotation", "tagged")
	wantAWSError(t, "cancel-rotation without rotation", code, errOut, awserr.InvalidRequest, "doesn't already have")

	code, out, _ = plugin(t, ns, "", "describe", "tagged", "-o", "json")
	var d map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("describe: %d %s", code, out)
	}
	if tags, _ := d["Tags"].([]any); len(tags) != 1 || tags[0].(map[string]any)["Key"] != "team" || tags[0].(map[string]any)["Value"] != "a" {
		t.Fatalf("tags: %v", d["Tags"])
	}
	for _, absent := range []string{"RotationEnabled", "RotationRules", "DeletedDate", "KmsKeyId", "LastRotatedDate"} {
		if _, ok := d[absent]; ok {
			t.Errorf("describe printed %s for a secret that has none", absent)
		}
	}
	if strings.Contains(out, "null") || strings.Contains(out, "{}") {
		t.Fatalf("describe printed an empty member: %s", out)
	}
	// A secret with no value yet has no VersionIdsToStages at all.
	awaiting := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty"}}
	if err := k8s.Create(context.Background(), awaiting); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "empty", metav1.ConditionFalse, v1alpha1.ReasonAwaitingValue)
	_, out, _ = plugin(t, ns, "", "describe", "empty", "-o", "json")
	if strings.Contains(out, "VersionIdsToStages") || strings.Contains(out, "{}") {
		t.Fatalf("describe of a secret with no value: %s", out)
	}
}

// A secret marked for deletion keeps its spec (description, tags, key, rotation) until it is
// restored, also when someone edits the ManagedSecret directly: the chart's admission policy
// refuses it, as AWS refuses UpdateSecret and TagResource in PendingDeletion.
func TestMarkedSecretRefusesSpecEdits(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReady(t, generated(ns, "doomed"))
	if code, _, errOut := plugin(t, ns, "", "delete", "doomed"); code != 0 {
		t.Fatal(errOut)
	}
	editor := tenantClient(t, ns, "editor", rule(ksmGroup, "managedsecrets", "get", "update", "patch"))
	edit := func(description string) error {
		// The operator writes the object too; a conflict is retried, it is not what is tested.
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			m := &v1alpha1.ManagedSecret{}
			if err := editor.Get(ctx, client.ObjectKey{Namespace: ns, Name: "doomed"}, m); err != nil {
				return err
			}
			m.Spec.Description = description
			m.Spec.Tags = append(m.Spec.Tags, v1alpha1.Tag{Key: "edited", Value: "yes"})
			return editor.Update(ctx, m)
		})
	}
	err := edit("changed while marked")
	if err == nil || !strings.Contains(err.Error(), "marked for deletion") {
		t.Fatalf("an edit of a marked secret: %v", err)
	}
	if got := getMsec(t, ns, "doomed"); got.Spec.Description == "changed while marked" {
		t.Fatal("the edit went through")
	}
	if code, _, errOut := plugin(t, ns, "", "restore", "doomed"); code != 0 {
		t.Fatal(errOut)
	}
	eventually(t, "an edit after restore", func() error { return edit("changed after restore") })
}
