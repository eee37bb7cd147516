package controllers

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
)

// scraper reads the operator's metrics endpoint as Prometheus would, with a ServiceAccount token
// bound to the chart's metrics-reader ClusterRole.
type scraper struct {
	t     *testing.T
	token string
}

// defaultAudienceToken is a token of the ServiceAccount for the API server's own audience, as a
// pod's mounted token is.
func defaultAudienceToken(t *testing.T, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8s.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{}
	if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func newScraper(t *testing.T) *scraper {
	t.Helper()
	ns := newNamespace(t)
	token := defaultAudienceToken(t, ns, "prometheus")
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kube-secrets-manager-metrics-reader-kube-secrets-manager"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: ns}}}
	if err := k8s.Create(context.Background(), crb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), crb) })
	return &scraper{t: t, token: token}
}

// get returns the status and body of GET /metrics with the token ("" for none).
func getMetrics(token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "https://"+suiteOpts.MetricsAddr+"/metrics", nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The endpoint's certificate is self-signed, as in the chart (the ServiceMonitor skips the check).
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test endpoint
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// sample returns the value of the series with exactly this name and label set ("" labels for
// none), and whether it exists.
func sample(body, series string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

// waitSample polls the endpoint until the series has the value.
func (s *scraper) waitSample(series string, want float64) string {
	s.t.Helper()
	var body string
	eventually(s.t, series+" = "+fmt.Sprint(want), func() error {
		code, b, err := getMetrics(s.token)
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("scrape: %d %v", code, err)
		}
		body = b
		got, ok := sample(b, series)
		if !ok || got != want {
			return fmt.Errorf("%s = %v (present %v)", series, got, ok)
		}
		return nil
	})
	return body
}

// value is the current value of a series (0 when absent).
func (s *scraper) value(series string) float64 {
	s.t.Helper()
	code, b, err := getMetrics(s.token)
	if err != nil || code != http.StatusOK {
		s.t.Fatalf("scrape: %d %v", code, err)
	}
	v, _ := sample(b, series)
	return v
}

func secretSeries(name, ns, msec string) string {
	return fmt.Sprintf(`kube_secrets_manager_secret_%s{name=%q,namespace=%q}`, name, msec, ns)
}

// The metrics endpoint answers only callers the API server authenticates and allows to get
// /metrics: no token 401, a token without the right 403, the metrics-reader's 200.
func TestMetricsEndpointNeedsAnAllowedToken(t *testing.T) {
	eventually(t, "metrics endpoint up, refusing a caller without a token", func() error {
		if code, _, err := getMetrics(""); err != nil || code != http.StatusUnauthorized {
			return fmt.Errorf("without a token: %d %v, want 401", code, err)
		}
		return nil
	})
	ns := newNamespace(t)
	stranger := defaultAudienceToken(t, ns, "stranger")
	if code, body, err := getMetrics(stranger); err != nil || code != http.StatusForbidden || strings.Contains(body, "kube_secrets_manager") {
		t.Fatalf("a ServiceAccount without the right: %d %v, want 403", code, err)
	}
	if code, _, err := getMetrics("not-a-token"); err != nil || code != http.StatusForbidden {
		t.Fatalf("a forged token: %d %v, want 403", code, err)
	}
	s := newScraper(t)
	if code, body, err := getMetrics(s.token); err != nil || code != http.StatusOK || !strings.Contains(body, "kube_secrets_manager_decryption_failures_total") {
		t.Fatalf("the metrics reader: %d %v\n%.2000s", code, err, body)
	}
}

// A rotation's outcome, the overdue and stale verdicts and a tampered version all show in the
// metrics and conditions; no value appears in the scrape.
func TestRotationHealthConditionsAndMetrics(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	s := newScraper(t)
	maxAge := int32(10)
	if err := k8s.Create(ctx, policy(ns, "monthly", v1alpha1.StrategyPassword, func(p *v1alpha1.RotationPolicySpec) { p.MaxAgeDays = &maxAge })); err != nil {
		t.Fatal(err)
	}
	canary := canarySource(t, ns, "app")
	patchSpec(t, ns, "app", map[string]any{"rotation": map[string]any{"policyRef": map[string]any{"name": "monthly"}}})
	waitScheduled(t, ns, "app")
	condition := func(typ, status, reason string) {
		t.Helper()
		eventually(t, typ+" "+status+" "+reason, func() error {
			m := getMsec(t, ns, "app")
			c := rotationCondition(m, typ)
			if string(c.Status) != status || c.Reason != reason || c.ObservedGeneration != m.Generation {
				return fmt.Errorf("%s is %+v", typ, c)
			}
			return nil
		})
	}
	condition(v1alpha1.ConditionRotationOverdue, "False", v1alpha1.ReasonOnSchedule)
	condition(v1alpha1.ConditionStale, "False", v1alpha1.ReasonValueFresh)
	s.waitSample(fmt.Sprintf(`kube_secrets_manager_secret_info{name="app",namespace=%q,rotation_policy="monthly",strategy="password"}`, ns), 1)
	s.waitSample(secretSeries("ready", ns, "app"), 1)
	s.waitSample(secretSeries("versions", ns, "app"), 1)
	m := getMsec(t, ns, "app")
	s.waitSample(secretSeries("next_rotation_timestamp_seconds", ns, "app"), float64(m.Status.NextRotationTime.Unix()))
	s.waitSample(secretSeries("last_changed_timestamp_seconds", ns, "app"), float64(m.Status.LastChangedTime.Unix()))

	// Eleven days on, the value is older than maxAgeDays; the rotation is not due yet.
	suiteClock.advance(t, 11*rotation.Day)
	nudge(t, ns, "app")
	condition(v1alpha1.ConditionStale, "True", v1alpha1.ReasonValueTooOld)
	condition(v1alpha1.ConditionRotationOverdue, "False", v1alpha1.ReasonOnSchedule)
	s.waitSample(secretSeries("stale", ns, "app"), 1)
	s.waitSample(secretSeries("rotation_overdue", ns, "app"), 0)

	// Past the due time and its two-hour window with no rotation: overdue.
	suiteClock.advance(t, 19*rotation.Day+3*time.Hour)
	nudge(t, ns, "app")
	condition(v1alpha1.ConditionRotationOverdue, "True", v1alpha1.ReasonRotationMissed)
	s.waitSample(secretSeries("rotation_overdue", ns, "app"), 1)

	// A rotation that completes clears the overdue verdict and counts as succeeded.
	failedSeries := `kube_secrets_manager_rotations_total{reason="RotationJobFailed",result="failed",strategy="password"}`
	succeededSeries := `kube_secrets_manager_rotations_total{reason="RotationSucceeded",result="succeeded",strategy="password"}`
	failedBefore, succeededBefore := s.value(failedSeries), s.value(succeededSeries)
	before := getMsec(t, ns, "app").Status.CurrentVersionID
	rotateOnce(t, ns, "app", "rot-ok", 0)
	waitRotated(t, ns, "app", before)
	condition(v1alpha1.ConditionRotationOverdue, "False", v1alpha1.ReasonOnSchedule)
	s.waitSample(secretSeries("rotation_overdue", ns, "app"), 0)
	s.waitSample(secretSeries("rotation_failed", ns, "app"), 0)
	s.waitSample(succeededSeries, succeededBefore+1)
	s.waitSample(secretSeries("versions", ns, "app"), 2)

	// A failed rotation Job counts as a failed rotation and sets the flag.
	job := startJob(t, cronJobOf(t, ns, "app"), "rot-fails")
	eventually(t, "rotation started", func() error {
		if getMsec(t, ns, "app").Status.Rotation.ActiveJobUID != string(job.UID) {
			return fmt.Errorf("not serving the Job yet")
		}
		return nil
	})
	finishJob(t, job, false)
	s.waitSample(secretSeries("rotation_failed", ns, "app"), 1)
	s.waitSample(failedSeries, failedBefore+1)
	if n := s.value(`kube_secrets_manager_rotation_duration_seconds_count{strategy="password"}`); n < 2 {
		t.Fatalf("rotation duration observations: %v", n)
	}

	// A tampered current version: decryption failures are counted and flagged.
	decryptBefore := s.value("kube_secrets_manager_decryption_failures_total")
	cur := getMsec(t, ns, "app").Status.CurrentVersionID
	for _, v := range versions(t, ns) {
		if v.Spec.VersionID == cur {
			replaceVersion(t, &v, func(p *v1alpha1.EncryptedPayload) { p.KeyID = "key-999" })
		}
	}
	t.Cleanup(func() { deleteAndWait(t, ns, "app") })
	waitReady(t, ns, "app", metav1.ConditionFalse, v1alpha1.ReasonDecryptionFailed)
	body := s.waitSample(secretSeries("decryption_failing", ns, "app"), 1)
	if got := s.value("kube_secrets_manager_decryption_failures_total"); got <= decryptBefore {
		t.Fatalf("decryption failures %v, before %v", got, decryptBefore)
	}
	if strings.Contains(body, canary) {
		t.Fatal("the scrape contains the secret's value")
	}
}

// target.includePrevious projects AWSPREVIOUS beside AWSCURRENT as key.previous.
func TestIncludePreviousProjectsBothValues(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "monthly", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	yes := true
	m := rotated(ns, "app", "monthly")
	m.Spec.Target = &v1alpha1.TargetSpec{IncludePrevious: &yes}
	createReady(t, m)
	first := projectedValue(t, ns, "app")
	if _, ok := first["password.previous"]; ok || first["password"] == "" {
		t.Fatalf("before any rotation the Secret has keys %v", keysOf(first))
	}
	before := getMsec(t, ns, "app").Status.CurrentVersionID
	rotateOnce(t, ns, "app", "rot-1", 0)
	after := waitRotated(t, ns, "app", before)
	eventually(t, "both values projected", func() error {
		got := projectedValue(t, ns, "app")
		if got["password.previous"] != first["password"] || got["password"] == first["password"] || got["password"] == "" {
			return fmt.Errorf("keys %v", keysOf(got))
		}
		sec, err := secret(t, ns, "app")
		if err != nil {
			return err
		}
		if sec.Annotations["kube-secrets-manager.io/previous-version-id"] != before || sec.Annotations["kube-secrets-manager.io/version-id"] != after.Status.CurrentVersionID {
			return fmt.Errorf("annotations %v", sec.Annotations)
		}
		return nil
	})

	// Turned off, the previous keys go.
	patchSpec(t, ns, "app", map[string]any{"target": map[string]any{"includePrevious": nil}})
	eventually(t, "previous keys removed", func() error {
		got := projectedValue(t, ns, "app")
		for k := range got {
			if strings.HasSuffix(k, ".previous") {
				return fmt.Errorf("keys %v", keysOf(got))
			}
		}
		if got["password"] == "" || got["password"] == first["password"] {
			return fmt.Errorf("the current value is not the rotated one")
		}
		return nil
	})
}

// patchSpec merge-patches the ManagedSecret's spec, as kubectl patch --type merge does.
func patchSpec(t *testing.T, ns, name string, spec map[string]any) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"spec": spec})
	m := &v1alpha1.ManagedSecret{}
	m.Namespace, m.Name = ns, name
	if err := k8s.Patch(context.Background(), m, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Requests through the AWS API are counted by operation and result, and a value over the size
// limit also as a refusal; an operation the API does not know is counted without its name.
func TestAPIRequestsAreCounted(t *testing.T) {
	ns := newNamespace(t)
	s := newScraper(t)
	apiServiceAccount(t, ns, "app", "secretsmanager-writer")
	sm := webIdentityClient(t, ns, "app")
	ctx := context.Background()
	series := func(op, result string) string {
		return fmt.Sprintf(`kube_secrets_manager_requests_total{interface="api",operation=%q,result=%q}`, op, result)
	}
	refusals := `kube_secrets_manager_value_size_refusals_total{interface="api"}`
	created, gets, tooLarge, sizeRefused := s.value(series("CreateSecret", "success")), s.value(series("GetSecretValue", "success")),
		s.value(series("PutSecretValue", "client_error")), s.value(refusals)
	const canary = canaryPrefix + "metrics-api-value-77c1"
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("counted"), SecretString: aws.String(canary)}))(t)
	must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("counted")}))(t)
	_, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("counted"), SecretString: aws.String(strings.Repeat("x", 65537))})
	if err == nil {
		t.Fatal("a value over 64 KiB was accepted")
	}
	s.waitSample(series("CreateSecret", "success"), created+1)
	s.waitSample(series("GetSecretValue", "success"), gets+1)
	s.waitSample(series("PutSecretValue", "client_error"), tooLarge+1)
	body := s.waitSample(refusals, sizeRefused+1)
	if strings.Contains(body, canary) {
		t.Fatal("the scrape carries a value")
	}
}
