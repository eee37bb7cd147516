//go:build e2e

// Package e2e runs kube-secrets-manager on a real single-node cluster (hack/e2e/run.sh brings it
// up, builds and loads the images, and installs the chart with Helm): a consumer Deployment logs in
// to PostgreSQL with the projected Secret, CronJob-driven rotation pods change the password every
// minute, and the consumer keeps logging in with what the kubelet mounts. The chart's example
// workload, an unmodified AWS SDK program (test/e2e/sdkclient), reads a secret through the
// operator's AWS API (api_test.go).
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/testdb"
)

var (
	c   client.Client
	cs  *kubernetes.Clientset
	ctx = context.Background()
)

func TestMain(m *testing.M) {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KSM_E2E_KUBECONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "KSM_E2E_KUBECONFIG:", err)
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	if c, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cs = kubernetes.NewForConfigOrDie(cfg)
	os.Exit(m.Run())
}

func eventually(t *testing.T, what string, limit time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if last = cond(); last == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s: not reached within %s: %v", what, limit, last)
}

func namespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := testdb.RandomName(prefix)
	ns = strings.ReplaceAll(ns, "_", "-")
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}) })
	return ns
}

func importCreds(t *testing.T, ns, name string, u testdb.User) *v1alpha1.ManagedSecret {
	t.Helper()
	return importData(t, ns, name, map[string]string{
		"engine": "postgres", "host": "127.0.0.1", "port": "5432", "username": u.Name, "password": u.Password, "dbname": "postgres"})
}

// importData makes a ManagedSecret whose first value is the data of a Secret it imports, and
// waits until it is Ready.
func importData(t *testing.T, ns, name string, data map[string]string) *v1alpha1.ManagedSecret {
	t.Helper()
	src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-import",
		Annotations: map[string]string{v1alpha1.AnnotationImportAllowedFor: name}}, StringData: data}
	if err := c.Create(ctx, src); err != nil {
		t.Fatal(err)
	}
	m := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ManagedSecretSpec{FromSecret: &v1alpha1.LocalObjectReference{Name: src.Name}}}
	if err := c.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ManagedSecret Ready", time.Minute, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(m), m); err != nil {
			return err
		}
		for _, cond := range m.Status.Conditions {
			if cond.Type == v1alpha1.ConditionReady && cond.Status == metav1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("%+v", m.Status.Conditions)
	})
	return m
}

// consumer runs a Deployment that mounts the projected Secret and logs in with it.
func consumer(t *testing.T, ns, secret string) {
	t.Helper()
	one, uid, no, yes := int32(1), int64(65532), false, true
	labels := map[string]string{"app": "consumer"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "consumer"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:                  true,
					AutomountServiceAccountToken: &no,
					SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, FSGroup: &uid},
					Containers: []corev1.Container{{
						Name: "consumer", Image: "ksm-e2e/consumer:e2e", ImagePullPolicy: corev1.PullNever,
						VolumeMounts:    []corev1.VolumeMount{{Name: "db", MountPath: "/etc/db", ReadOnly: true}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes},
					}},
					Volumes: []corev1.Volume{{Name: "db", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}},
				},
			},
		},
	}
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// consumerSays waits until the consumer's log since a moment ends with the line.
func consumerSays(t *testing.T, ns, line string, since time.Time, limit time.Duration) {
	t.Helper()
	eventually(t, "consumer logs "+line, limit, func() error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=consumer"})
		if err != nil || len(pods.Items) == 0 {
			return fmt.Errorf("no consumer pod: %v", err)
		}
		st := metav1.NewTime(since)
		raw, err := cs.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{SinceTime: &st}).DoRaw(ctx)
		if err != nil {
			return err
		}
		var last string
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		for sc.Scan() {
			last = sc.Text()
		}
		if last != line {
			return fmt.Errorf("last line %q", last)
		}
		return nil
	})
}

func rotateEveryMinute(t *testing.T, ns, msec string, strategy string, superuser string) {
	t.Helper()
	p := &v1alpha1.RotationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "every-minute"},
		Spec: v1alpha1.RotationPolicySpec{Strategy: strategy, Schedule: v1alpha1.RotationSchedule{Cron: "* * * * *"},
			Pod: &v1alpha1.RotationPodSpec{HostNetwork: true}}}
	if superuser != "" {
		p.Spec.SuperuserSecretRef = &v1alpha1.LocalObjectReference{Name: superuser}
		// The superuser ManagedSecret's consent to this policy borrowing its credentials.
		consent := []byte(`{"metadata":{"annotations":{"` + v1alpha1.AnnotationSuperuserFor + `":"every-minute"}}}`)
		if err := c.Patch(ctx, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: superuser}}, client.RawPatch(types.MergePatchType, consent)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"spec":{"rotation":{"policyRef":{"name":"every-minute"}}}}`)
	if err := c.Patch(ctx, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: msec}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// waitRotation waits for a completed rotation and returns the projected credentials.
func waitRotation(t *testing.T, ns, name, from string) testdb.User {
	t.Helper()
	m := &v1alpha1.ManagedSecret{}
	eventually(t, "a rotation by the CronJob's pod", 4*time.Minute, func() error {
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, m); err != nil {
			return err
		}
		if m.Status.LastRotatedTime == nil || m.Status.CurrentVersionID == from {
			return fmt.Errorf("not yet: %+v", m.Status.Conditions)
		}
		return nil
	})
	// Stop further rotations so what follows is stable, and let a Job the CronJob may already have
	// started finish first.
	patch := []byte(`{"spec":{"suspend":true}}`)
	if err := c.Patch(ctx, &v1alpha1.RotationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "every-minute"}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "no rotation in progress", 3*time.Minute, func() error {
		jobs := &batchv1.JobList{}
		if err := c.List(ctx, jobs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, j := range jobs.Items {
			finished := j.DeletionTimestamp != nil
			for _, cond := range j.Status.Conditions {
				finished = finished || ((cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue)
			}
			if !finished {
				return fmt.Errorf("Job %s is still running", j.Name)
			}
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, m); err != nil {
			return err
		}
		if m.Status.Rotation != nil && m.Status.Rotation.ActiveJobUID != "" {
			return fmt.Errorf("rotation %s still active", m.Status.Rotation.ActiveJobName)
		}
		return nil
	})
	sec := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sec); err != nil {
		t.Fatal(err)
	}
	return testdb.User{Name: string(sec.Data["username"]), Password: string(sec.Data["password"])}
}

func TestSingleUserRotationReachesTheConsumer(t *testing.T) {
	admin := testdb.Postgres(t)
	u := testdb.PostgresUser(t, admin, "")
	ns := namespace(t, "e2e-single-")
	m := importCreds(t, ns, "orders-db", u)
	consumer(t, ns, "orders-db")
	consumerSays(t, ns, "login ok user="+u.Name, time.Now().Add(-time.Minute), 2*time.Minute)

	rotateEveryMinute(t, ns, "orders-db", v1alpha1.StrategyPostgreSQLSingleUser, "")
	now := waitRotation(t, ns, "orders-db", m.Status.CurrentVersionID)
	rotatedAt := time.Now()
	if now.Name != u.Name || now.Password == u.Password || !testdb.PostgresLogin(now) || testdb.PostgresLogin(u) {
		t.Fatal("after rotation the new password must log in and the old one must not")
	}
	// The kubelet brings the new value to the pod, which logs in with it.
	consumerSays(t, ns, "login ok user="+u.Name, rotatedAt.Add(15*time.Second), 2*time.Minute)
}

func TestAlternatingUsersRotationReachesTheConsumer(t *testing.T) {
	admin := testdb.Postgres(t)
	su := testdb.PostgresUser(t, admin, "SUPERUSER")
	u := testdb.PostgresUser(t, admin, "")
	ns := namespace(t, "e2e-alt-")
	importCreds(t, ns, "pg-admin", su)
	m := importCreds(t, ns, "orders-db", u)
	consumer(t, ns, "orders-db")
	consumerSays(t, ns, "login ok user="+u.Name, time.Now().Add(-time.Minute), 2*time.Minute)

	rotateEveryMinute(t, ns, "orders-db", v1alpha1.StrategyPostgreSQLAlternatingUsers, "pg-admin")
	now := waitRotation(t, ns, "orders-db", m.Status.CurrentVersionID)
	rotatedAt := time.Now()
	if now.Name != u.Name+"_clone" || !testdb.PostgresLogin(now) || !testdb.PostgresLogin(u) {
		t.Fatal("after alternating, the clone and the original must both log in")
	}
	consumerSays(t, ns, "login ok user="+u.Name+"_clone", rotatedAt.Add(15*time.Second), 2*time.Minute)
}

// The image is the static binary alone, with no zone files: a policy's time zone still resolves
// (the zone database is embedded), so the secret's rotation is scheduled.
func TestTimeZoneScheduleInTheShippedImage(t *testing.T) {
	ns := namespace(t, "e2e-tz-")
	p := &v1alpha1.RotationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "berlin"},
		Spec: v1alpha1.RotationPolicySpec{Strategy: v1alpha1.StrategyPassword, Schedule: v1alpha1.RotationSchedule{Cron: "0 3 * * *", TimeZone: "Europe/Berlin"}}}
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	m := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: v1alpha1.ManagedSecretSpec{
		Generate: &v1alpha1.GenerateSource{}, Rotation: &v1alpha1.RotationSpec{PolicyRef: v1alpha1.LocalObjectReference{Name: "berlin"}}}}
	if err := c.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rotation scheduled in Europe/Berlin", time.Minute, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(m), m); err != nil {
			return err
		}
		for _, cond := range m.Status.Conditions {
			if cond.Type == v1alpha1.ConditionRotationScheduled {
				if cond.Status != metav1.ConditionTrue {
					return fmt.Errorf("%s: %s", cond.Reason, cond.Message)
				}
				return nil
			}
		}
		return fmt.Errorf("no RotationScheduled condition yet")
	})
}

// The operator lists and watches Secrets only with its label selector: the API server's audit log
// shows no unselected LIST or WATCH of Secrets by its service account.
func TestAuditLogShowsOnlySelectedSecretListsAndWatches(t *testing.T) {
	path := os.Getenv("KSM_E2E_AUDIT_LOG")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const operator = "system:serviceaccount:kube-secrets-manager:kube-secrets-manager"
	seen := 0
	for _, line := range strings.Split(string(data), "\n") {
		var ev struct {
			Verb       string `json:"verb"`
			RequestURI string `json:"requestURI"`
			User       struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef struct {
				Resource string `json:"resource"`
			} `json:"objectRef"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil || ev.User.Username != operator || ev.ObjectRef.Resource != "secrets" {
			continue
		}
		if ev.Verb == "list" || ev.Verb == "watch" {
			seen++
			if !strings.Contains(ev.RequestURI, "labelSelector=kube-secrets-manager.io%2Fmanaged-secret-uid") {
				t.Errorf("unselected %s of Secrets: %s", ev.Verb, ev.RequestURI)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no LIST or WATCH of Secrets by the operator in the audit log: the check proves nothing")
	}
}
