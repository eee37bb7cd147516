package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
)

// canaryPrefix starts every value the tests plant; it must never show up outside the projected
// Secret, the rotation material, request Secrets and the tests' own source Secrets.
const canaryPrefix = "CANARY-"

// seenValues holds every secret value a test planted or saw the operator produce (generated and
// rotated passwords included), whatever test saw it: the scan after the whole suite looks for each
// in every encoding a leak could take, so it does not depend on which tests ran or in what order.
var seenValues struct {
	sync.Mutex
	m map[string]bool
}

// remember records a value for the leak scans and returns it.
func remember(v string) string {
	if len(v) < 8 {
		return v // too short to search for without false alarms
	}
	seenValues.Lock()
	defer seenValues.Unlock()
	if seenValues.m == nil {
		seenValues.m = map[string]bool{}
	}
	seenValues.m[v] = true
	return v
}

// rememberData records the secret values in a Secret's data or a JSON value: passwords and
// planted canaries (fields such as host or engine are not secret, and appear in logs by design).
func rememberData(data map[string][]byte) {
	secretField := func(k, v string) bool { return k == "password" || strings.HasPrefix(v, canaryPrefix) }
	for k, v := range data {
		if secretField(k, string(v)) {
			remember(string(v))
		}
		var obj map[string]any
		if json.Unmarshal(v, &obj) == nil {
			for fk, f := range obj {
				if s, ok := f.(string); ok && secretField(fk, s) {
					remember(s)
				}
			}
		}
	}
}

func rememberedValues() []string {
	seenValues.Lock()
	defer seenValues.Unlock()
	out := make([]string, 0, len(seenValues.m))
	for v := range seenValues.m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// leakForms are the encodings of v a careless log line or field could carry.
func leakForms(v string) []string {
	out := []string{v, hex.EncodeToString([]byte(v))}
	sum := sha256.Sum256([]byte(v))
	out = append(out, hex.EncodeToString(sum[:]))
	for offset := 0; offset < 3 && offset < len(v); offset++ {
		enc := base64.StdEncoding.EncodeToString([]byte(v[offset:]))
		// Drop the last block, which depends on what follows in the encoded stream.
		if len(enc) > 8 {
			out = append(out, enc[:len(enc)-4])
		}
	}
	return out
}

// leaks scans what the operator writes where values must never go (its log, Events, versions'
// metadata and payload, ManagedSecret and RotationPolicy status, CronJobs and Jobs) in the given
// namespace ("" for all), for the prefix and for every form of every value. It returns one line
// per leak, naming where, never the value.
func leaks(ctx context.Context, namespace string, values []string) ([]string, error) {
	haystacks := map[string]string{"the operator's log": logs.String()}
	collect := func(what string, list client.ObjectList) error {
		if err := k8s.List(ctx, list, client.InNamespace(namespace)); err != nil {
			return err
		}
		raw, err := json.Marshal(list)
		haystacks[what] = string(raw)
		return err
	}
	for what, list := range map[string]client.ObjectList{
		"Events": &eventsv1.EventList{}, "core Events": &corev1.EventList{}, "SecretVersions": &v1alpha1.SecretVersionList{},
		"CronJobs": &batchv1.CronJobList{}, "Jobs": &batchv1.JobList{}, "RotationPolicies": &v1alpha1.RotationPolicyList{},
	} {
		if err := collect(what, list); err != nil {
			return nil, err
		}
	}
	// generate.fields are non-secret by design (tests plant canaries there to reach error
	// paths), so ManagedSecrets are checked by their status.
	msecs := &v1alpha1.ManagedSecretList{}
	if err := k8s.List(ctx, msecs, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	var statuses []byte
	for _, m := range msecs.Items {
		raw, _ := json.Marshal(m.Status)
		statuses = append(statuses, raw...)
	}
	haystacks["ManagedSecret statuses"] = string(statuses)
	needles := []string{canaryPrefix}
	for _, v := range values {
		needles = append(needles, leakForms(v)...)
	}
	var found []string
	for what, hay := range haystacks {
		for i, n := range needles {
			if strings.Contains(hay, n) {
				found = append(found, fmt.Sprintf("value #%d (in some encoding) is in %s", i, what))
				break
			}
		}
	}
	sort.Strings(found)
	return found, nil
}

// scanAfterSuite runs once every test has run (from TestMain): no value any test planted or saw
// is anywhere it must not be.
func scanAfterSuite() error {
	ctx := context.Background()
	projected := &corev1.SecretList{}
	if err := k8s.List(ctx, projected, client.MatchingLabels{v1alpha1.LabelRole: v1alpha1.RoleProjection}); err != nil {
		return err
	}
	for _, sec := range projected.Items {
		rememberData(sec.Data)
	}
	values := rememberedValues()
	if !strings.Contains(logs.String(), "Reconcil") {
		return fmt.Errorf("the log capture is empty, so the leak scan would prove nothing")
	}
	found, err := leaks(ctx, "", values)
	if err != nil {
		return err
	}
	if len(found) > 0 {
		return fmt.Errorf("secret values leaked (scanned %d values):\n%s", len(values), strings.Join(found, "\n"))
	}
	fmt.Printf("leak scan after the suite: %d values, none outside Secrets\n", len(values))
	return nil
}

// The leak test's own scenario drives every path that carries a value — generate, import, put,
// get, rotation, refusals, and the clean-up of request Secrets — then scans for exactly its own
// values, so it proves something whichever tests run before it (run with -shuffle=on).
func TestNoValueLeaksIntoLogsEventsOrStatus(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	canary := func(name string) string {
		return remember(fmt.Sprintf("%s%s-%d", canaryPrefix, name, time.Now().UnixNano()))
	}
	var mine []string
	plant := func(v string) string { mine = append(mine, v); return v }

	// Failure paths that carry a value.
	big := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "big", Annotations: importConsent("too-big")},
		Data: map[string][]byte{"blob": []byte(plant(canary("big")) + strings.Repeat("y", 70000))}}
	badKey := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-key"},
		Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{Fields: map[string]string{"not a key": plant(canary("field"))}}}}
	clash := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "clash"},
		Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{Fields: map[string]string{"password": plant(canary("clash"))}}}}
	tooBig := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "too-big"},
		Spec: v1alpha1.ManagedSecretSpec{FromSecret: &v1alpha1.LocalObjectReference{Name: "big"}}}
	for _, o := range []client.Object{big, badKey, clash, tooBig} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitReady(t, ns, "too-big", metav1.ConditionFalse, v1alpha1.ReasonValueTooLarge)
	waitReady(t, ns, "bad-key", metav1.ConditionFalse, v1alpha1.ReasonInvalidSource)
	waitReady(t, ns, "clash", metav1.ConditionFalse, v1alpha1.ReasonInvalidSource)

	// Import, put, get (confirmed, of AWSPREVIOUS), rotation.
	plant(canarySource(t, ns, "imported"))
	waitReady(t, ns, "imported", metav1.ConditionTrue, v1alpha1.ReasonReady)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	m := createReady(t, rotated(ns, "app", "pw"))
	generated := plant(remember(projectedValue(t, ns, "app")["password"]))
	put := putByRequest(t, k8s, m, "ksm-request-put", "88888888-aaaa-bbbb-cccc-000000000008", []byte(`{"password":"`+plant(canary("put"))+`"}`))
	get := requestSecret(m, "ksm-request-get", request.Request{Op: request.OpGet, Stage: v1alpha1.StagePrevious}, nil)
	if err := k8s.Create(ctx, get); err != nil {
		t.Fatal(err)
	}
	confirmRequest(t, k8s, m, get, request.OpGet)
	_, val := answerOf(t, get)
	var got map[string]string
	if err := json.Unmarshal(val, &got); err != nil || got["password"] != generated {
		t.Fatal("the get did not return the generated value, so the scenario proves nothing about gets")
	}
	before := waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)
	rotateOnce(t, ns, "app", "rot-1", 0)
	waitRotated(t, ns, "app", before.Status.CurrentVersionID)
	plant(remember(projectedValue(t, ns, "app")["password"]))

	// A put never collected nor confirmed: the request Secret holding its value is deleted after
	// its time to live, and nothing but projected and source Secrets holds a value afterwards.
	left := requestSecret(m, "ksm-request-left", request.Request{Op: request.OpPut, ClientRequestToken: "99999999-aaaa-bbbb-cccc-000000000009"},
		[]byte(plant(canary("left-behind"))))
	if err := k8s.Create(ctx, left); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*corev1.Secret{put, get} {
		if err := k8s.Delete(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	r := testReconciler(t)
	r.Now = func() time.Time { return time.Now().Add(2*requestTTL + time.Minute) }
	for i := 0; i < 2; i++ { // answered (refused: never confirmed), then deleted once expired
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "app"}}); err != nil {
			t.Fatal(err)
		}
	}
	waitGone(t, left)
	all := &corev1.SecretList{}
	if err := k8s.List(ctx, all, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, sec := range all.Items {
		role := sec.Labels[v1alpha1.LabelRole]
		if role == v1alpha1.RoleProjection || sec.Name == "big" || strings.HasSuffix(sec.Name, "-src") {
			continue
		}
		for k, v := range sec.Data {
			if bytes.HasPrefix(v, []byte(canaryPrefix)) || bytes.Contains(v, []byte(generated)) {
				t.Errorf("Secret %s (role %q) still holds a value under %s", sec.Name, role, k)
			}
		}
	}
	if len(mine) < 8 {
		t.Fatalf("only %d values planted, so the scan would prove little", len(mine))
	}
	found, err := leaks(ctx, ns, mine)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Error(f)
	}
}
