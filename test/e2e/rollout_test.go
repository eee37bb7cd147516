//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/testdb"
)

// Rolling workloads on the real cluster: a Deployment that takes the database credentials from
// environment variables (read once, when the pod starts) keeps logging in across rotations
// because the operator restarts it (spec.rollout) once AWSCURRENT moves.

const envConsumerName = "env-consumer"

// envConsumer runs a Deployment whose pods read the credentials of the Secret from environment
// variables (secretKeyRef) and, when extra is set, every key of a second Secret (envFrom).
func envConsumer(t *testing.T, ns, secret, extra string, minReadySeconds int32) *appsv1.Deployment {
	t.Helper()
	one, uid, no, yes := int32(1), int64(65532), false, true
	labels := map[string]string{"app": envConsumerName}
	key := func(env, k string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: k}}}
	}
	container := corev1.Container{
		Name: "consumer", Image: "ksm-e2e/consumer:e2e", ImagePullPolicy: corev1.PullNever, Args: []string{"--env"},
		Env:             []corev1.EnvVar{key("DB_USERNAME", "username"), key("DB_PASSWORD", "password"), key("DB_HOST", "host"), key("DB_PORT", "port")},
		SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes},
	}
	if extra != "" {
		container.EnvFrom = []corev1.EnvFromSource{{Prefix: "TOKEN_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: extra}}}}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: envConsumerName},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}, MinReadySeconds: minReadySeconds,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:                  true,
					AutomountServiceAccountToken: &no,
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid},
					Containers:                   []corev1.Container{container},
				},
			},
		},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// rollTargets sets spec.rollout of a ManagedSecret to the env consumer.
func rollTargets(t *testing.T, ns, name string) {
	t.Helper()
	patch := []byte(`{"spec":{"rollout":{"targets":[{"kind":"Deployment","name":"` + envConsumerName + `"}]}}}`)
	if err := c.Patch(ctx, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// podLogs keeps the logs of every consumer pod, read every two seconds while the test runs, so
// pods the rollouts replace are not lost.
type podLogs struct {
	mu   sync.Mutex
	logs map[string]string
	made map[string]time.Time
}

func collectLogs(t *testing.T, ns string) *podLogs {
	t.Helper()
	p := &podLogs{logs: map[string]string{}, made: map[string]time.Time{}}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			p.read(ns)
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return p
}

func (p *podLogs) read(ns string) {
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods(ns).List(rctx, metav1.ListOptions{LabelSelector: "app=" + envConsumerName})
	if err != nil {
		return
	}
	for _, pod := range pods.Items {
		raw, err := cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(rctx)
		if err != nil {
			continue
		}
		p.mu.Lock()
		if len(raw) >= len(p.logs[pod.Name]) {
			p.logs[pod.Name] = string(raw)
		}
		p.made[pod.Name] = pod.CreationTimestamp.Time
		p.mu.Unlock()
	}
}

// failures are the failed logins of every pod seen.
func (p *podLogs) failures() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for pod, log := range p.logs {
		for _, l := range strings.Split(log, "\n") {
			if strings.HasPrefix(l, "login failed") {
				out = append(out, pod+": "+l)
			}
		}
	}
	return out
}

// newestSays waits until the newest pod, created after a moment, logs the line last.
func (p *podLogs) newestSays(t *testing.T, line string, after time.Time, limit time.Duration) {
	t.Helper()
	eventually(t, "a consumer pod created after "+after.Format(time.RFC3339)+" logs "+line, limit, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		newest, at := "", time.Time{}
		for pod, made := range p.made {
			if made.After(at) {
				newest, at = pod, made
			}
		}
		if newest == "" || at.Before(after.Truncate(time.Second)) {
			return fmt.Errorf("no consumer pod created after %s", after)
		}
		lines := strings.Split(strings.TrimSpace(p.logs[newest]), "\n")
		if last := lines[len(lines)-1]; last != line {
			return fmt.Errorf("pod %s: last line %q", newest, last)
		}
		return nil
	})
}

func (p *podLogs) saw(pod, prefix string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range strings.Split(p.logs[pod], "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func (p *podLogs) pods() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for pod := range p.logs {
		out = append(out, pod)
	}
	return out
}

func msec(t *testing.T, ns, name string) *v1alpha1.ManagedSecret {
	t.Helper()
	m := &v1alpha1.ManagedSecret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func rolledOut(m *v1alpha1.ManagedSecret) (bool, string) {
	cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRolledOut)
	if cond == nil {
		return false, "no RolledOut condition"
	}
	ok := cond.Status == metav1.ConditionTrue && m.Status.Rollout != nil && m.Status.Rollout.VersionID == m.Status.CurrentVersionID
	return ok, cond.Reason + ": " + cond.Message
}

func waitRolledOutTo(t *testing.T, ns, name, version string, limit time.Duration) *v1alpha1.ManagedSecret {
	t.Helper()
	var m *v1alpha1.ManagedSecret
	eventually(t, name+" rolled out to "+version, limit, func() error {
		m = msec(t, ns, name)
		if ok, why := rolledOut(m); !ok || m.Status.CurrentVersionID != version {
			return fmt.Errorf("current %s: %s", m.Status.CurrentVersionID, why)
		}
		return nil
	})
	return m
}

func consumerTarget(m *v1alpha1.ManagedSecret) v1alpha1.RolloutTargetStatus {
	if m.Status.Rollout != nil {
		for _, tg := range m.Status.Rollout.Targets {
			if tg.Kind == "Deployment" && tg.Name == envConsumerName {
				return tg
			}
		}
	}
	return v1alpha1.RolloutTargetStatus{}
}

func restartEvents(t *testing.T, ns string) int {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Reason == v1alpha1.ReasonWorkloadRestarted {
			n++
			if e.Series != nil {
				n += int(e.Series.Count) - 1
			}
		}
	}
	return n
}

func suspendPolicy(t *testing.T, ns, name string) {
	t.Helper()
	patch := []byte(`{"spec":{"suspend":true}}`)
	if err := c.Patch(ctx, &v1alpha1.RotationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// Single user: the old password stops working when the rotation finishes, so the pod started
// with it fails its next logins until the operator restarts the Deployment, whose new pod logs in
// with the new password. A second secret the same pods read changes within the coalesce window:
// the Deployment is restarted once, and both ManagedSecrets record that one restart.
func TestRolloutSingleUserRestartsTheConsumerOnce(t *testing.T) {
	t.Parallel() // with the other rollout test, after the rest of the suite: each waits minutes
	admin := testdb.Postgres(t)
	u := testdb.PostgresUser(t, admin, "")
	ns := namespace(t, "e2e-roll-single-")
	importCreds(t, ns, "orders-db", u)
	// The second secret rotates with the password strategy, on request only.
	yearly := &v1alpha1.RotationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "on-request"},
		Spec: v1alpha1.RotationPolicySpec{Strategy: v1alpha1.StrategyPassword, Schedule: v1alpha1.RotationSchedule{Cron: "0 0 1 1 *"},
			Pod: &v1alpha1.RotationPodSpec{HostNetwork: true}}}
	if err := c.Create(ctx, yearly); err != nil {
		t.Fatal(err)
	}
	token := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api-token"}, Spec: v1alpha1.ManagedSecretSpec{
		Generate: &v1alpha1.GenerateSource{}, Rotation: &v1alpha1.RotationSpec{PolicyRef: v1alpha1.LocalObjectReference{Name: "on-request"}}}}
	if err := c.Create(ctx, token); err != nil {
		t.Fatal(err)
	}
	eventually(t, "api-token Ready", time.Minute, func() error {
		if cond := meta.FindStatusCondition(msec(t, ns, "api-token").Status.Conditions, v1alpha1.ConditionReady); cond == nil || cond.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", cond)
		}
		return nil
	})
	deploy := envConsumer(t, ns, "orders-db", "api-token", 0)
	rollTargets(t, ns, "orders-db")
	rollTargets(t, ns, "api-token")
	logs := collectLogs(t, ns)
	logs.newestSays(t, "login ok user="+u.Name, time.Now().Add(-time.Minute), 2*time.Minute)
	before := msec(t, ns, "orders-db").Status.CurrentVersionID
	tokenBefore := waitRolledOutTo(t, ns, "api-token", msec(t, ns, "api-token").Status.CurrentVersionID, time.Minute).Status.CurrentVersionID
	waitRolledOutTo(t, ns, "orders-db", before, time.Minute)
	if err := c.Get(ctx, client.ObjectKeyFromObject(deploy), deploy); err != nil || deploy.Generation != 1 {
		t.Fatalf("the first projection restarted the consumer: generation %d (%v)", deploy.Generation, err)
	}
	firstPods := logs.pods()

	// orders-db rotates at the next minute; the moment AWSCURRENT moves, api-token is rotated too.
	rotateEveryMinute(t, ns, "orders-db", v1alpha1.StrategyPostgreSQLSingleUser, "")
	eventually(t, "orders-db rotated by the CronJob's pod", 3*time.Minute, func() error {
		if m := msec(t, ns, "orders-db"); m.Status.CurrentVersionID == before {
			return fmt.Errorf("not yet: %+v", m.Status.Conditions)
		}
		return nil
	})
	rotatedAt := time.Now()
	suspendPolicy(t, ns, "every-minute")
	now := []byte(`{"metadata":{"annotations":{"` + v1alpha1.AnnotationRotateRequestedAt + `":"` + rotatedAt.Format(time.RFC3339) + `"}}}`)
	if err := c.Patch(ctx, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api-token"}}, client.RawPatch(types.MergePatchType, now)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "api-token rotated on request", 2*time.Minute, func() error {
		if m := msec(t, ns, "api-token"); m.Status.CurrentVersionID == tokenBefore {
			return fmt.Errorf("not yet: %+v", m.Status.Conditions)
		}
		return nil
	})
	db, tok := msec(t, ns, "orders-db"), msec(t, ns, "api-token")
	if gap := tok.Status.Rollout.ChangedTime.Sub(db.Status.Rollout.ChangedTime.Time); gap < 0 || gap >= 30*time.Second {
		t.Fatalf("the two changes are %s apart; this test needs them within the 30s coalesce window", gap)
	}

	// The consumer's pod still has the old password in its environment: it fails until restarted.
	eventually(t, "the first pod fails with the old password", time.Minute, func() error {
		for _, pod := range firstPods {
			if logs.saw(pod, "login failed user="+u.Name) {
				return nil
			}
		}
		return fmt.Errorf("no failed login in %v yet", firstPods)
	})
	db = waitRolledOutTo(t, ns, "orders-db", db.Status.CurrentVersionID, 3*time.Minute)
	tok = waitRolledOutTo(t, ns, "api-token", tok.Status.CurrentVersionID, 3*time.Minute)
	logs.newestSays(t, "login ok user="+u.Name, rotatedAt, 2*time.Minute)

	// One restart for both changes.
	if err := c.Get(ctx, client.ObjectKeyFromObject(deploy), deploy); err != nil || deploy.Generation != 2 {
		t.Fatalf("consumer generation %d, want 2 (one restart): %v", deploy.Generation, err)
	}
	rsets := &appsv1.ReplicaSetList{}
	if err := c.List(ctx, rsets, client.InNamespace(ns)); err != nil || len(rsets.Items) != 2 {
		t.Fatalf("%d ReplicaSets, want 2 (one restart): %v", len(rsets.Items), err)
	}
	dbT, tokT := consumerTarget(db), consumerTarget(tok)
	if dbT.RestartedTime == nil || tokT.RestartedTime == nil || !dbT.RestartedTime.Equal(tokT.RestartedTime) || !dbT.Finished || !tokT.Finished {
		t.Fatalf("the targets' status: orders-db %+v, api-token %+v", dbT, tokT)
	}
	if n := restartEvents(t, ns); n != 1 {
		t.Fatalf("%d WorkloadRestarted Events, want 1", n)
	}
	creds := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "orders-db"}, creds); err != nil {
		t.Fatal(err)
	}
	if now := (testdb.User{Name: string(creds.Data["username"]), Password: string(creds.Data["password"])}); !testdb.PostgresLogin(now) || testdb.PostgresLogin(u) {
		t.Fatal("after rotation the new password must log in and the old one must not")
	}
}

// Alternating users: the pods run as one user (AWSCURRENT) or the other (AWSPREVIOUS), both
// valid, so the consumer never fails a login across two rotations, provided the second rotation
// (which sets a new password for the AWSPREVIOUS user) starts only after the pods were rolled to
// AWSCURRENT. The Deployment's minReadySeconds makes its rollout outlast the next scheduled
// rotation, which waits (Rotating=False, AwaitingRollout) until it finishes.
func TestRolloutAlternatingUsersNeverBreaksTheConsumer(t *testing.T) {
	t.Parallel()
	admin := testdb.Postgres(t)
	su := testdb.PostgresUser(t, admin, "SUPERUSER")
	u := testdb.PostgresUser(t, admin, "")
	ns := namespace(t, "e2e-roll-alt-")
	importCreds(t, ns, "pg-admin", su)
	v1 := importCreds(t, ns, "orders-db", u).Status.CurrentVersionID
	envConsumer(t, ns, "orders-db", "", 45)
	rollTargets(t, ns, "orders-db")
	logs := collectLogs(t, ns)
	logs.newestSays(t, "login ok user="+u.Name, time.Now().Add(-time.Minute), 2*time.Minute)
	waitRolledOutTo(t, ns, "orders-db", v1, time.Minute)

	rotateEveryMinute(t, ns, "orders-db", v1alpha1.StrategyPostgreSQLAlternatingUsers, "pg-admin")
	var v2, v3 string
	held := false
	eventually(t, "two rotations, the second after the rollout of the first", 6*time.Minute, func() error {
		m := msec(t, ns, "orders-db")
		if cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRotating); cond != nil && cond.Reason == v1alpha1.ReasonAwaitingRollout {
			held = true
		}
		switch cur := m.Status.CurrentVersionID; {
		case cur == v1:
		case v2 == "":
			v2 = cur
		case cur != v2 && v3 == "":
			v3 = cur
		}
		if v3 == "" {
			return fmt.Errorf("current %s: %+v", m.Status.CurrentVersionID, m.Status.Conditions)
		}
		return nil
	})
	suspendPolicy(t, ns, "every-minute")
	if !held {
		t.Fatal("the second rotation never waited for the rollout (Rotating reason AwaitingRollout); the test proves nothing")
	}
	waitRolledOutTo(t, ns, "orders-db", v3, 4*time.Minute)
	// Back to the first user, with a new password.
	logs.newestSays(t, "login ok user="+u.Name, time.Now().Add(-2*time.Minute), 2*time.Minute)
	if f := logs.failures(); len(f) > 0 {
		t.Fatalf("the consumer failed to log in during the rotations:\n%s", strings.Join(f, "\n"))
	}
	if len(logs.pods()) < 3 {
		t.Fatalf("consumer pods %v: want the first one and one per rotation", logs.pods())
	}
}
