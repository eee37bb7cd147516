// Package custody tests key custody end to end on real API servers: the kmsv2 provider over a
// real unix socket to the in-repo KMS v2 plugin (failing closed while it is down, recovering when
// it returns, following its key rotation), the move from the local keyring to a KMS, a key
// rotation through a thousand secrets with the manager killed half-way, and a backup restored into
// a fresh cluster.
package custody

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/controllers"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/kmsplugin"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/kmsv2"
)

const operatorNS = "kube-secrets-manager"

type cluster struct {
	cfg *rest.Config
	c   client.Client
	env *envtest.Environment
}

func init() {
	// The managers' logs are not needed here; a logger set keeps controller-runtime quiet.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
}

// kubeconfig writes an admin kubeconfig for the cluster (for the plugin).
func (cl cluster) kubeconfig(t *testing.T) string {
	t.Helper()
	user, err := cl.env.ControlPlane.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startCluster starts etcd and kube-apiserver with the CRDs and the operator's namespace.
func startCluster(t *testing.T) cluster {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with 'make test', which builds kube-apiserver and etcd")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	createNamespace(t, c, operatorNS)
	return cluster{cfg: cfg, c: c, env: env}
}

// installAdmissionPolicies applies the install bundle's admission policies (dist/install.yaml,
// the chart with its defaults), as users who install the chart or the bundle have them.
func installAdmissionPolicies(t *testing.T, c client.Client) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "dist", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, doc := range strings.Split(string(raw), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if kind := u.GetKind(); kind != "ValidatingAdmissionPolicy" && kind != "ValidatingAdmissionPolicyBinding" {
			continue
		}
		if err := c.Create(context.Background(), u); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("dist/install.yaml has no admission policies; run 'make bundle'")
	}
}

func createNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

// runManager starts the operator; the returned stop kills it (as a crash would: the context ends
// wherever it is) and waits until it has stopped.
func runManager(t *testing.T, cl cluster, mutate func(*controllers.Options)) (stop func()) {
	t.Helper()
	o := controllers.DefaultOptions()
	o.MetricsAddr, o.ProbeAddr = "0", "0"
	o.Namespace = operatorNS
	o.KeyCheckInterval = 200 * time.Millisecond
	o.SkipNameValidation = true
	if mutate != nil {
		mutate(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := controllers.NewManager(ctx, cl.cfg, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("the manager stopped with %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, what string, limit time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if last = cond(); last == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %s: %v", what, limit, last)
}

func generated(ns, name string) *v1alpha1.ManagedSecret {
	return &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{Fields: map[string]string{"username": "app"}}}}
}

func readyReason(m *v1alpha1.ManagedSecret) (metav1.ConditionStatus, string, string) {
	c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.ObservedGeneration != m.Generation {
		return "", "", ""
	}
	return c.Status, c.Reason, c.Message
}

func waitReady(t *testing.T, c client.Client, ns, name string, status metav1.ConditionStatus, reason string) *v1alpha1.ManagedSecret {
	t.Helper()
	m := &v1alpha1.ManagedSecret{}
	eventually(t, fmt.Sprintf("%s/%s Ready=%s %s", ns, name, status, reason), 30*time.Second, func() error {
		if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, m); err != nil {
			return err
		}
		if s, r, msg := readyReason(m); s != status || r != reason {
			return fmt.Errorf("Ready=%s %s: %s", s, r, msg)
		}
		return nil
	})
	return m
}

// projections are the projected Secrets' data in the namespaces, by namespace/name.
func projections(t *testing.T, c client.Client, namespaces ...string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, ns := range namespaces {
		list := &corev1.SecretList{}
		if err := c.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelRole: v1alpha1.RoleProjection}); err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			data := map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
			out[ns+"/"+s.Name] = data
		}
	}
	return out
}

func versionKeys(t *testing.T, c client.Client) map[string]int {
	t.Helper()
	list := &v1alpha1.SecretVersionList{}
	if err := c.List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, v := range list.Items {
		out[v.Spec.Payload.KeyID]++
	}
	return out
}

func keyStatus(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: operatorNS, Name: controllers.KeyStatusConfigMap}, cm); err != nil {
		return map[string]string{}
	}
	return cm.Data
}

func requestKeyRotation(t *testing.T, c client.Client) {
	t.Helper()
	eventually(t, "the key status ConfigMap to annotate", 20*time.Second, func() error {
		cm := &corev1.ConfigMap{}
		if err := c.Get(context.Background(), types.NamespacedName{Namespace: operatorNS, Name: controllers.KeyStatusConfigMap}, cm); err != nil {
			return err
		}
		patch := client.MergeFrom(cm.DeepCopy())
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[controllers.AnnotationRotateKeyRequestedAt] = time.Now().Format(time.RFC3339Nano)
		return c.Patch(context.Background(), cm, patch)
	})
}

func equalProjections(t *testing.T, before, after map[string]map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("%d projected Secrets before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if fmt.Sprint(after[k]) != fmt.Sprint(v) {
			t.Fatalf("projected Secret %s changed", k)
		}
	}
}

// The kmsv2 provider: versions are wrapped by the plugin; while the plugin is down nothing is
// written (a clear condition and Event), projected Secrets keep their data, and everything
// recovers when the plugin returns; a key rotation in the KMS is followed by a re-wrap. Before
// that, a cluster started on the local keyring moves onto the KMS with the values unchanged.
func TestKMSv2FailsClosedRecoversAndFollowsRotation(t *testing.T) {
	cl := startCluster(t)
	ctx := context.Background()
	createNamespace(t, cl.c, "team")

	// Started on the local keyring.
	stopLocal := runManager(t, cl, nil)
	for _, n := range []string{"a", "b"} {
		if err := cl.c.Create(ctx, generated("team", n)); err != nil {
			t.Fatal(err)
		}
		waitReady(t, cl.c, "team", n, metav1.ConditionTrue, v1alpha1.ReasonReady)
	}
	before := projections(t, cl.c, "team")
	stopLocal()

	dir, err := os.MkdirTemp("", "ksm-kms-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	socket, keysFile := filepath.Join(dir, "kms.sock"), filepath.Join(dir, "keys.json")
	pluginCtx, stopPluginCtx := context.WithCancel(ctx)
	stopPlugin, err := kmsplugin.Start(pluginCtx, socket, keysFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopPlugin(); stopPluginCtx() })
	runManager(t, cl, func(o *controllers.Options) {
		o.KeyProvider = controllers.KeyProviderKMSv2
		o.KMS = controllers.KMSOptions{Socket: "unix://" + socket, Timeout: 500 * time.Millisecond, CacheTTL: time.Hour, CacheSize: 100}
	})
	var kmsKey string
	eventually(t, "every version moved onto the KMS key", 30*time.Second, func() error {
		keys := versionKeys(t, cl.c)
		if len(keys) != 1 {
			return fmt.Errorf("versions by key: %v", keys)
		}
		for k := range keys {
			if _, ok := kmsv2.PluginKeyID(k); !ok {
				return fmt.Errorf("versions by key: %v", keys)
			}
			kmsKey = k
		}
		return nil
	})
	equalProjections(t, before, projections(t, cl.c, "team"))
	if err := cl.c.Create(ctx, generated("team", "c")); err != nil {
		t.Fatal(err)
	}
	waitReady(t, cl.c, "team", "c", metav1.ConditionTrue, v1alpha1.ReasonReady)
	before = projections(t, cl.c, "team")

	// The plugin goes away: writes stop with a clear condition, nothing falls back.
	stopPlugin()
	eventually(t, "the provider reported down", 20*time.Second, func() error {
		if st := keyStatus(t, cl.c); st[controllers.KeyStatusHealthy] != "false" {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	if err := cl.c.Create(ctx, generated("team", "during")); err != nil {
		t.Fatal(err)
	}
	m := waitReady(t, cl.c, "team", "during", metav1.ConditionFalse, v1alpha1.ReasonEncryptionFailed)
	if _, _, msg := readyReason(m); !strings.Contains(msg, "key provider is not available") {
		t.Fatalf("the condition says %q", msg)
	}
	if n := len(versionsOf(t, cl.c, "team", "during")); n != 0 {
		t.Fatalf("%d versions were written while the provider was down", n)
	}
	events := &corev1.EventList{}
	eventually(t, "Events about the outage", 20*time.Second, func() error {
		if err := cl.c.List(ctx, events, client.InNamespace("team")); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == v1alpha1.ReasonEncryptionFailed && e.InvolvedObject.Name == "during" {
				return nil
			}
		}
		return errors.New("no EncryptionFailed Event on team/during")
	})
	current := projections(t, cl.c, "team")
	delete(current, "team/during")
	equalProjections(t, before, current)

	// The plugin returns on the same socket (keys kept): everything recovers by itself.
	stopPlugin, err = kmsplugin.Start(pluginCtx, socket, keysFile)
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, cl.c, "team", "during", metav1.ConditionTrue, v1alpha1.ReasonReady)
	eventually(t, "the provider reported up", 20*time.Second, func() error {
		if st := keyStatus(t, cl.c); st[controllers.KeyStatusHealthy] != "true" {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})

	// A key rotation in the KMS: the custodian moves every version onto the new key.
	before = projections(t, cl.c, "team")
	if _, err := kmsplugin.AddKey(keysFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every version on the KMS's new key", 30*time.Second, func() error {
		keys := versionKeys(t, cl.c)
		if len(keys) != 1 || keys[kmsKey] != 0 {
			return fmt.Errorf("versions by key: %v", keys)
		}
		if st := keyStatus(t, cl.c); st[controllers.KeyStatusRemaining] != "0" {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	equalProjections(t, before, projections(t, cl.c, "team"))
}

func versionsOf(t *testing.T, c client.Client, ns, name string) []v1alpha1.SecretVersion {
	t.Helper()
	list := &v1alpha1.SecretVersionList{}
	if err := c.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []v1alpha1.SecretVersion
	for _, v := range list.Items {
		if v.Spec.ManagedSecretName == name {
			out = append(out, v)
		}
	}
	return out
}
