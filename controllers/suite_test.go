package controllers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
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

	"go.uber.org/zap/zapcore"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
)

// The suite runs the real manager (the same NewManager main uses) against a real kube-apiserver
// and etcd built from source. Every log line it writes is kept for the canary scan.
var (
	// testEnv is the running control plane (for adding users).
	testEnv *envtest.Environment
	// kubeconfigPath is a kubeconfig for an admin of the test cluster, as a user would have.
	kubeconfigPath string
	k8s            client.Client
	cfg            *rest.Config
	logs           = &syncBuffer{}
	suiteOpts      Options
	// suiteMgr is the running manager (its cache, for tests that look at what it holds).
	suiteMgr ctrl.Manager
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with 'make test', which builds kube-apiserver and etcd")
		os.Exit(1)
	}
	var out io.Writer = logs
	if os.Getenv("TEST_LOGS") != "" {
		out = io.MultiWriter(logs, os.Stderr)
	}
	// Debug level, so the canary scan covers every line the operator can write.
	ctrl.SetLogger(zap.New(zap.WriteTo(out), zap.UseDevMode(true), zap.Level(zapcore.Level(-5))))

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	testEnv = env
	var err error
	cfg, err = env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		// Start can fail after etcd and kube-apiserver are up (a CRD the server refuses): stop them.
		_ = env.Stop()
		os.Exit(1)
	}
	code := func() int {
		user, err := env.ControlPlane.AddUser(envtest.User{Name: "plugin-user", Groups: []string{"system:masters"}}, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		kc, err := user.KubeConfig()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		dir, err := os.MkdirTemp("", "ksm-test-kubeconfig-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		kubeconfigPath = filepath.Join(dir, "kubeconfig")
		if err := os.WriteFile(kubeconfigPath, kc, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		k8s, err = client.New(cfg, client.Options{Scheme: Scheme()})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		suiteOpts = DefaultOptions()
		// Metrics are served as the chart serves them: HTTPS, to allowed tokens only.
		suiteOpts.MetricsAddr, suiteOpts.MetricsSecure, suiteOpts.ProbeAddr = freeAddr(), true, "0"
		suiteOpts.Namespace = "kube-secrets-manager"
		suiteOpts.RotationImage = "kube-secrets-manager:test"
		suiteOpts.Clock = suiteClock.Now
		suiteOpts.KeyCheckInterval = 300 * time.Millisecond
		// What the suite's policies ask of rotation pods; everything else is refused (tested).
		suiteOpts.RotationAllow = rotation.Allow{Images: []string{"registry.example/rotators/*"}, ServiceAccounts: []string{"rotator"}, Scheduling: true}
		suiteOpts.API = APIOptions{Addr: freeAddr(), ServiceName: "kube-secrets-manager-api", TokenAudience: apiAudience,
			TrustBundle: "kube-secrets-manager-api-ca", CertSecret: "kube-secrets-manager-api", WallClock: apiWallClock.Now}
		if w := os.Getenv("KSM_WORKERS"); w != "" {
			fmt.Sscanf(w, "%d", &suiteOpts.Workers)
		}
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: suiteOpts.Namespace}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// The operator runs as the install bundle's ServiceAccount, with exactly the bundle's
		// RBAC, so every path the tests drive also proves the permissions suffice.
		if err := applyBundleRBAC(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "installing the bundle's RBAC:", err)
			return 1
		}
		mgr, err := NewManager(ctx, operatorConfig(cfg), suiteOpts)
		if err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
			return 1
		}
		suiteMgr = mgr
		done := make(chan error, 1)
		go func() { done <- mgr.Start(ctx) }()
		code := m.Run()
		if code == 0 {
			if err := scanAfterSuite(); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL:", err)
				code = 1
			}
		}
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped with:", err)
			return 1
		}
		return code
	}()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// operatorServiceAccount is the identity the bundle's RBAC binds.
const operatorServiceAccount = "system:serviceaccount:kube-secrets-manager:kube-secrets-manager"

// operatorConfig impersonates the operator's ServiceAccount, as the API server sees it in a cluster.
func operatorConfig(admin *rest.Config) *rest.Config {
	c := rest.CopyConfig(admin)
	c.Impersonate = rest.ImpersonationConfig{UserName: operatorServiceAccount,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-secrets-manager", "system:authenticated"}}
	return c
}

// bundleObjects reads dist/install.yaml (the chart rendered with its defaults, as users install it).
func bundleObjects() ([]*unstructured.Unstructured, error) {
	raw, err := os.ReadFile(filepath.Join("..", "dist", "install.yaml"))
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(string(raw), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
	return out, nil
}

// applyBundleRBAC installs the bundle's ServiceAccount, Roles, ClusterRoles and their bindings,
// and its admission policies.
func applyBundleRBAC(ctx context.Context) error {
	objs, err := bundleObjects()
	if err != nil {
		return err
	}
	n := 0
	for _, u := range objs {
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
			"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
				return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
			}
			n++
		}
	}
	if n < 7 {
		return fmt.Errorf("the bundle has only %d RBAC and admission objects; run 'make bundle'", n)
	}
	return nil
}

// suiteClock is the running operator's clock: the system clock plus an offset a test may set
// (and must reset) to see what happens days later.
var suiteClock movableClock

// apiWallClock is the clock the API checks signatures and sessions with.
var apiWallClock movableClock

type movableClock struct{ offset atomic.Int64 }

func (c *movableClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves the operator's clock forward by d until the test ends.
func (c *movableClock) advance(t *testing.T, d time.Duration) {
	t.Helper()
	c.offset.Add(int64(d))
	t.Cleanup(func() { c.offset.Add(-int64(d)) })
}

var nsCounter struct {
	sync.Mutex
	n int
}

// newNamespace gives each test its own namespace.
func newNamespace(t *testing.T) string {
	t.Helper()
	nsCounter.Lock()
	nsCounter.n++
	name := fmt.Sprintf("t%d-%s", nsCounter.n, strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	nsCounter.Unlock()
	if len(name) > 60 {
		name = strings.TrimRight(name[:60], "-")
	}
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// eventually polls cond every 50 ms until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if last = cond(); last == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within 20s: %v", what, last)
}

func getMsec(t *testing.T, ns, name string) *v1alpha1.ManagedSecret {
	t.Helper()
	m := &v1alpha1.ManagedSecret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitReady waits for Ready with the given status and reason at the current generation.
func waitReady(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) *v1alpha1.ManagedSecret {
	t.Helper()
	var m *v1alpha1.ManagedSecret
	eventually(t, fmt.Sprintf("%s/%s Ready=%s/%s", ns, name, status, reason), func() error {
		m = &v1alpha1.ManagedSecret{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, m); err != nil {
			return err
		}
		c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil {
			return fmt.Errorf("no Ready condition")
		}
		if c.Status != status || c.Reason != reason || c.ObservedGeneration != m.Generation || m.Status.ObservedGeneration != m.Generation {
			return fmt.Errorf("Ready=%s reason=%s gen=%d/%d: %s", c.Status, c.Reason, c.ObservedGeneration, m.Generation, c.Message)
		}
		return nil
	})
	return m
}

func versions(t *testing.T, ns string) []v1alpha1.SecretVersion {
	t.Helper()
	list := &v1alpha1.SecretVersionList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func secret(t *testing.T, ns, name string) (*corev1.Secret, error) {
	t.Helper()
	s := &corev1.Secret{}
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s)
	return s, err
}

func eventsFor(t *testing.T, ns string) []eventsv1.Event {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// freeAddr is a loopback address with a port free at the moment.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
