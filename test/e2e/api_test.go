//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/cli"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// The chart's example workload (installed by hack/e2e/run.sh with api.exampleWorkload): an
// unmodified aws-sdk-go-v2 program (test/e2e/sdkclient) with the environment EKS gives pods.
const (
	exampleName     = "kube-secrets-manager-example"
	exampleSelector = "app.kubernetes.io/name=" + exampleName
	operatorNS      = "kube-secrets-manager"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func canary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "canary-" + hex.EncodeToString(b)
}

// podLog is the whole log of a pod's only (or named) container.
func podLog(ns, pod, container string) (string, error) {
	raw, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	return string(raw), err
}

func logLines(log string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// examplePod waits until the example Deployment has rolled out its current template and returns
// its one running pod.
func examplePod(t *testing.T, ns string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	eventually(t, "the example workload rolled out", 3*time.Minute, func() error {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: exampleName}, d); err != nil {
			return err
		}
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != 1 || st.Replicas != 1 || st.AvailableReplicas != 1 {
			return fmt.Errorf("rollout: %+v", st)
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: exampleSelector})
		if err != nil {
			return err
		}
		var running []corev1.Pod
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				running = append(running, p)
			}
		}
		if len(running) != 1 {
			return fmt.Errorf("%d running pods", len(running))
		}
		pod = running[0]
		return nil
	})
	return pod
}

// exampleSays waits until the pod's log has a line the function accepts, and returns it.
func exampleSays(t *testing.T, ns, pod, what string, limit time.Duration, ok func(line string) bool) string {
	t.Helper()
	var found string
	eventually(t, "the example workload logs "+what, limit, func() error {
		log, err := podLog(ns, pod, "")
		if err != nil {
			return err
		}
		lines := logLines(log)
		for _, l := range lines {
			if ok(l) {
				found = l
				return nil
			}
		}
		if len(lines) > 0 {
			return fmt.Errorf("last line %q", lines[len(lines)-1])
		}
		return fmt.Errorf("no log yet")
	})
	return found
}

// putValue puts a new value with the kubectl plugin (AWS's PutSecretValue) and returns its id.
func putValue(t *testing.T, ns, name, val string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(ctx, []string{"put", name, "-f", "-", "-n", ns, "--kubeconfig", os.Getenv("KSM_E2E_KUBECONFIG"), "-o", "json"},
		cli.IO{In: strings.NewReader(val), Out: &out, Err: &errOut})
	if code != 0 {
		t.Fatalf("kubectl secrets-manager put: exit %d: %s", code, errOut.String())
	}
	var res struct {
		VersionID string `json:"VersionId"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.VersionID == "" {
		t.Fatalf("kubectl secrets-manager put printed %q: %v", out.String(), err)
	}
	return res.VersionID
}

// An unmodified AWS SDK program in a pod reads a ManagedSecret through the operator's AWS API,
// authenticated EKS-style with its projected ServiceAccount token and trusting the API's CA from
// the ClusterTrustBundle; it sees a new version without restarting, another namespace's secret
// is refused by ARN and by name, and no value reaches a log.
func TestAWSSDKWorkloadReadsThroughTheAPI(t *testing.T) {
	ns := envOr("KSM_E2E_API_NAMESPACE", "ksm-e2e-api")
	name := envOr("KSM_E2E_API_SECRET", "app-config")

	mine, theirs, next := canary(t), canary(t), canary(t)
	data := map[string]string{"api_key": mine, "endpoint": "https://example.com"}
	m := importData(t, ns, name, data)
	t.Cleanup(func() {
		_ = c.Delete(ctx, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
		_ = c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-import"}})
	})
	first, err := value.FromSecretData(map[string][]byte{"api_key": []byte(mine), "endpoint": []byte("https://example.com")})
	if err != nil {
		t.Fatal(err)
	}
	otherNS := namespace(t, "e2e-other-")
	other := importData(t, otherNS, "team-b-db", map[string]string{"api_key": theirs})
	if m.Status.CurrentVersionID == "" || other.Status.ID == "" {
		t.Fatalf("status without ids: %+v, %+v", m.Status, other.Status)
	}

	// The example workload tries the other namespace's secret once at start: give it the ids,
	// which rolls out a new pod.
	others := other.Status.ID + "," + other.Name
	patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"OTHER_SECRET_ID","value":%q}]}]}}}}`, others)
	if err := c.Patch(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: exampleName}},
		client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	pod := examplePod(t, ns)
	if !slices.ContainsFunc(pod.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "OTHER_SECRET_ID" && e.Value == others }) {
		t.Fatalf("pod %s runs without OTHER_SECRET_ID", pod.Name)
	}

	// The current version, read through STS AssumeRoleWithWebIdentity and GetSecretValue.
	want := fmt.Sprintf("get ok secret=%s version=%s stages=AWSCURRENT length=%d", name, m.Status.CurrentVersionID, len(first))
	exampleSays(t, ns, pod.Name, want, 2*time.Minute, func(l string) bool { return l == want })

	// The other namespace's secret, by ARN and by name, is refused.
	for _, id := range []string{other.Status.ID, other.Name} {
		line := exampleSays(t, ns, pod.Name, "an answer for "+id, time.Minute, func(l string) bool {
			return strings.HasPrefix(l, "other ") && strings.Contains(l, " secret="+id+" ") && !strings.HasPrefix(l, "other failed ")
		})
		if line != "other refused secret="+id+" code=ResourceNotFoundException" && line != "other refused secret="+id+" code=AccessDeniedException" {
			t.Errorf("another namespace's secret %s: %q", id, line)
		}
	}

	// A new version reaches the same pod, which keeps running.
	newValue := `{"api_key":"` + next + `","endpoint":"https://example.com/v2"}`
	versionID := putValue(t, ns, name, newValue)
	if versionID == m.Status.CurrentVersionID {
		t.Fatal("the put made no new version")
	}
	want = fmt.Sprintf("get ok secret=%s version=%s stages=AWSCURRENT length=%d", name, versionID, len(newValue))
	exampleSays(t, ns, pod.Name, want, time.Minute, func(l string) bool { return l == want })
	p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.DeletionTimestamp != nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("the example pod restarted or went away: %+v", p.Status.ContainerStatuses)
	}

	// No value reaches the workload's or the operator's logs.
	logs := map[string]string{}
	if logs["example pod "+pod.Name], err = podLog(ns, pod.Name, ""); err != nil {
		t.Fatal(err)
	}
	ops, err := cs.CoreV1().Pods(operatorNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=kube-secrets-manager"})
	if err != nil || len(ops.Items) == 0 {
		t.Fatalf("no operator pod: %v", err)
	}
	for _, op := range ops.Items {
		if logs["operator pod "+op.Name], err = podLog(operatorNS, op.Name, "manager"); err != nil {
			t.Fatal(err)
		}
	}
	// What the workload did, repeated lines once (it prints no value: checked below).
	lines := logLines(logs["example pod "+pod.Name])
	for i, n := 0, 0; i < len(lines); i += n {
		for n = 1; i+n < len(lines) && lines[i+n] == lines[i]; n++ {
		}
		t.Logf("%s: %s (x%d)", pod.Name, lines[i], n)
	}
	for what, log := range logs {
		if log == "" {
			t.Errorf("%s: empty log, the check proves nothing", what)
		}
		for _, secret := range []string{mine, theirs, next} {
			if strings.Contains(log, secret) {
				t.Errorf("%s logged a secret value", what)
			}
		}
		for _, l := range logLines(log) {
			if strings.HasPrefix(l, "other READ ") {
				t.Errorf("%s read another namespace's secret: %q", what, l)
			}
		}
	}
}
