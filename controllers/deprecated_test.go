package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// deprecatedState says, per version id, whether the API server's object carries the deprecated
// label, and fails when a version's label disagrees with its staging labels.
func deprecatedState(t *testing.T, ns string) (map[string]bool, error) {
	t.Helper()
	out := map[string]bool{}
	for _, v := range versions(t, ns) {
		marked := v.Labels[v1alpha1.LabelDeprecated] == v1alpha1.DeprecatedValue
		if marked != (len(v.Spec.Stages) == 0) {
			return nil, fmt.Errorf("version %s with stages %v: deprecated label %v", v.Spec.VersionID, v.Spec.Stages, marked)
		}
		out[v.Spec.VersionID] = marked
	}
	return out, nil
}

// inManagerCache reports whether the running operator's cache holds the version (Get and List).
func inManagerCache(t *testing.T, ns, secretName, id string) (bool, error) {
	t.Helper()
	c := suiteMgr.GetClient()
	key := types.NamespacedName{Namespace: ns, Name: objects.VersionObjectName(secretName, id)}
	err := c.Get(context.Background(), key, &v1alpha1.SecretVersion{})
	got := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	list := &v1alpha1.SecretVersionList{}
	if err := c.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		return false, err
	}
	listed := slices.ContainsFunc(list.Items, func(v v1alpha1.SecretVersion) bool { return v.Spec.VersionID == id })
	if got != listed {
		return false, fmt.Errorf("the cache's Get (%v) and List (%v) disagree on %s", got, listed, id)
	}
	return got, nil
}

// Deprecated versions carry the deprecated label and are not in the operator's cache, yet every
// AWS operation that names one answers as before: GetSecretValue by VersionId,
// ListSecretVersionIds with IncludeDeprecated, ClientRequestToken idempotency, and
// UpdateSecretVersionStage onto one (which brings it back into the cache).
func TestDeprecatedVersionsLeaveTheCacheAndStillAnswer(t *testing.T) {
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "app", "secretsmanager-writer")
	sm := webIdentityClient(t, ns, "app")
	ctx := context.Background()
	const name = "dep"
	ids := make([]string, 5)
	vals := make([]string, 5)
	for i := range ids {
		ids[i] = fmt.Sprintf("dddddddd-0000-4000-8000-%012d", i)
		vals[i] = fmt.Sprintf("%sdeprecated-value-%d", canaryPrefix, i)
	}
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(vals[0]), ClientRequestToken: aws.String(ids[0])}))(t)
	for i := 1; i < len(ids); i++ {
		must(sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(vals[i]), ClientRequestToken: aws.String(ids[i])}))(t)
	}
	// ids[4] AWSCURRENT, ids[3] AWSPREVIOUS, ids[0..2] deprecated.
	wantCached := func(want map[string]bool) {
		t.Helper()
		eventually(t, "the deprecated labels and the operator's cache", func() error {
			state, err := deprecatedState(t, ns)
			if err != nil {
				return err
			}
			for id, cached := range want {
				if state[id] == cached {
					return fmt.Errorf("version %s: deprecated label %v", id, state[id])
				}
				in, err := inManagerCache(t, ns, name, id)
				if err != nil {
					return err
				}
				if in != cached {
					return fmt.Errorf("version %s: in the operator's cache %v, want %v", id, in, cached)
				}
			}
			return nil
		})
	}
	wantCached(map[string]bool{ids[0]: false, ids[1]: false, ids[2]: false, ids[3]: true, ids[4]: true})

	// GetSecretValue by the id of a deprecated version.
	got := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(ids[1])}))(t)
	if aws.ToString(got.SecretString) != vals[1] || aws.ToString(got.VersionId) != ids[1] || len(got.VersionStages) != 0 {
		t.Fatalf("GetSecretValue of a deprecated version: %s %v", aws.ToString(got.VersionId), got.VersionStages)
	}
	_, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(ids[1]), VersionStage: aws.String("AWSCURRENT")})
	wantAPIError(t, err, "InvalidRequestException", "not associated")
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String("dddddddd-0000-4000-8000-999999999999")})
	wantAPIError(t, err, "ResourceNotFoundException", "")

	// ListSecretVersionIds lists them only with IncludeDeprecated.
	listed := func(include bool) map[string][]string {
		t.Helper()
		out := map[string][]string{}
		l := must(sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name), IncludeDeprecated: aws.Bool(include)}))(t)
		for _, v := range l.Versions {
			out[aws.ToString(v.VersionId)] = v.VersionStages
		}
		return out
	}
	if all := listed(true); len(all) != 5 || len(all[ids[0]]) != 0 || !slices.Equal(all[ids[4]], []string{"AWSCURRENT"}) {
		t.Fatalf("ListSecretVersionIds with IncludeDeprecated: %v", all)
	}
	if some := listed(false); len(some) != 2 {
		t.Fatalf("ListSecretVersionIds without IncludeDeprecated: %v", some)
	}

	// A ClientRequestToken equal to a deprecated version's id: the same value is a success that
	// changes nothing, another value is refused.
	same := must(sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(vals[2]), ClientRequestToken: aws.String(ids[2])}))(t)
	if aws.ToString(same.VersionId) != ids[2] || len(same.VersionStages) != 0 {
		t.Fatalf("the repeated put answered %s %v", aws.ToString(same.VersionId), same.VersionStages)
	}
	_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(canaryPrefix + "other"), ClientRequestToken: aws.String(ids[2])})
	wantAPIError(t, err, "ResourceExistsException", "")
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(vals[2]), ClientRequestToken: aws.String(ids[2])})
	if err != nil {
		t.Fatalf("CreateSecret repeated with a deprecated version's token and value: %v", err)
	}
	if cur := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}))(t); aws.ToString(cur.VersionId) != ids[4] {
		t.Fatalf("AWSCURRENT moved to %s", aws.ToString(cur.VersionId))
	}

	// A custom label moved onto a deprecated version: it leaves the deprecated set.
	must(sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String("custom"), MoveToVersionId: aws.String(ids[1])}))(t)
	if g := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("custom")}))(t); aws.ToString(g.SecretString) != vals[1] {
		t.Fatalf("the custom label reads version %s", aws.ToString(g.VersionId))
	}
	// RemoveFromVersionId naming a deprecated version that does not hold the label.
	_, err = sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String("custom"), RemoveFromVersionId: aws.String(ids[0])})
	wantAPIError(t, err, "InvalidParameterException", "not found in version")
	// AWSCURRENT moved back to a deprecated version: the old current becomes AWSPREVIOUS and the old
	// AWSPREVIOUS deprecated.
	must(sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(ids[0]), RemoveFromVersionId: aws.String(ids[4])}))(t)
	if all := listed(true); !slices.Equal(all[ids[0]], []string{"AWSCURRENT"}) || !slices.Equal(all[ids[4]], []string{"AWSPREVIOUS"}) ||
		!slices.Equal(all[ids[1]], []string{"custom"}) || len(all[ids[3]]) != 0 || len(all[ids[2]]) != 0 {
		t.Fatalf("after the moves: %v", all)
	}
	wantCached(map[string]bool{ids[0]: true, ids[1]: true, ids[2]: false, ids[3]: false, ids[4]: true})
	if cur := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}))(t); aws.ToString(cur.SecretString) != vals[0] {
		t.Fatalf("AWSCURRENT reads version %s", aws.ToString(cur.VersionId))
	}
	waitReady(t, ns, name, "True", v1alpha1.ReasonReady)
}

// A deprecated version an older operator wrote (without the deprecated label) gets the label at
// the secret's next reconcile, leaves the cache, and still reads by its id.
func TestUnlabelledDeprecatedVersionsGetTheLabel(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "old"))
	const id = "eeeeeeee-0000-4000-8000-000000000001"
	sv, err := testReconciler(t).sealVersion(ctx, m, id, nil, []byte(canaryPrefix+"old-deprecated"))
	if err != nil {
		t.Fatal(err)
	}
	delete(sv.Labels, v1alpha1.LabelDeprecated)
	if err := k8s.Create(ctx, sv); err != nil {
		t.Fatal(err)
	}
	if sv.Labels[v1alpha1.LabelDeprecated] != "" {
		t.Fatal("the planted version was created with the deprecated label")
	}
	// Its creation wakes the secret (the cache holds it); a nudge too, in case that reconcile ran
	// before the cache saw it.
	nudge(t, ns, "old")
	eventually(t, "the version is labelled deprecated and leaves the cache", func() error {
		v := &v1alpha1.SecretVersion{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(sv), v); err != nil {
			return err
		}
		if v.Labels[v1alpha1.LabelDeprecated] != v1alpha1.DeprecatedValue {
			return errors.New("no deprecated label")
		}
		if in, err := inManagerCache(t, ns, "old", id); err != nil || in {
			return fmt.Errorf("in the cache: %v, %v", in, err)
		}
		return nil
	})
	code, out, errOut := plugin(t, ns, "", "get", "old", "--version-id", id)
	if code != 0 || !strings.Contains(out, canaryPrefix+"old-deprecated") {
		t.Fatalf("get --version-id of the upgraded version: %d %s %s", code, out, errOut)
	}
}
