package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/controllers"
)

// operatorUser is the identity the operator process runs as (system:masters, as an admin runs
// it); the audit policy selects its requests by this name.
const operatorUser = "ksm-operator"

// operatorNamespace holds the keyring.
const operatorNamespace = "kube-secrets-manager"

// cluster is one fresh envtest control plane, the harness's client and its watches.
type cluster struct {
	env        *envtest.Environment
	cfg        *rest.Config
	c          client.Client
	kubeconfig string
	dir        string
	apiserver  int
	etcd       int
	auditLog   string
	track      *tracker
	stopCache  context.CancelFunc
}

// startCluster starts etcd and kube-apiserver with the CRDs installed, the operator's namespace
// and the benchmark namespaces created, and a watch on ManagedSecrets and the operator's Secrets.
func startCluster(ctx context.Context, o *options, phase string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "ksm-bench-"+phase+"-")
	if err != nil {
		return nil, err
	}
	cl := &cluster{dir: dir}
	cl.env = &envtest.Environment{CRDDirectoryPaths: []string{o.crds}, ErrorIfCRDPathMissing: true}
	if o.audit {
		policy := filepath.Join(dir, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
			return nil, err
		}
		cl.auditLog = filepath.Join(o.out, "logs", phase+"-audit.log")
		_ = os.Remove(cl.auditLog)
		cl.env.ControlPlane.GetAPIServer().Configure().
			Set("audit-policy-file", policy).
			Set("audit-log-path", cl.auditLog).
			Set("audit-log-format", "json").
			Set("audit-log-mode", "blocking").
			Set("audit-log-maxsize", "0")
	}
	cfg, err := cl.env.Start()
	if err != nil {
		_ = cl.env.Stop()
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	cl.cfg = rest.CopyConfig(cfg)
	// The harness is the load: no client-side rate limit.
	cl.cfg.QPS, cl.cfg.Burst = -1, -1
	cl.cfg.UserAgent = "ksm-bench"
	ok := false
	defer func() {
		if !ok {
			cl.stop()
		}
	}()
	user, err := cl.env.ControlPlane.AddUser(envtest.User{Name: operatorUser, Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		return nil, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	cl.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cl.kubeconfig, kc, 0o600); err != nil {
		return nil, err
	}
	if cl.c, err = client.New(cl.cfg, client.Options{Scheme: controllers.Scheme()}); err != nil {
		return nil, err
	}
	for _, ns := range append([]string{operatorNamespace}, benchNamespaces()...) {
		if err := cl.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, err
		}
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	api, etcd := childrenRunning(filepath.Join(assets, "kube-apiserver")), childrenRunning(filepath.Join(assets, "etcd"))
	if len(api) != 1 || len(etcd) != 1 {
		return nil, fmt.Errorf("expected one kube-apiserver and one etcd child of this process under %s, found %v and %v", assets, api, etcd)
	}
	cl.apiserver, cl.etcd = api[0], etcd[0]
	if err := cl.startTracker(ctx); err != nil {
		return nil, err
	}
	ok = true
	return cl, nil
}

// auditPolicy records every request the operator makes (metadata only), nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: ["` + operatorUser + `"]
- level: None
`

func (cl *cluster) stop() {
	if cl.stopCache != nil {
		cl.stopCache()
	}
	if cl.env != nil {
		if err := cl.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: stopping the control plane:", err)
		}
	}
	_ = os.RemoveAll(cl.dir)
}

// benchNamespaces are the namespaces the objects are spread over.
func benchNamespaces() []string {
	out := make([]string, 10)
	for i := range out {
		out[i] = fmt.Sprintf("bench-%d", i)
	}
	return out
}

func nsOf(i int) string { return fmt.Sprintf("bench-%d", i%10) }

// tracker records, per ManagedSecret (namespace/name), when the harness created it, when its
// projected Secret first appeared and when it was first Ready, from watches; and when the
// operator wrote its key status ConfigMap (a periodic write, whatever the number of secrets,
// that the per-secret write counts leave out).
type tracker struct {
	cache cache.Cache

	mu        sync.Mutex
	created   map[string]time.Time
	projected map[string]time.Time
	ready     map[string]time.Time
	keyWrites []time.Time
	changed   chan struct{}
}

func (cl *cluster) startTracker(ctx context.Context) error {
	roles, err := labels.NewRequirement(v1alpha1.LabelRole, selection.In, []string{v1alpha1.RoleProjection, v1alpha1.RoleRotationMaterial})
	if err != nil {
		return err
	}
	c, err := cache.New(cl.cfg, cache.Options{
		Scheme: controllers.Scheme(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.NewSelector().Add(*roles)},
			&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{operatorNamespace: {}},
				Field: fields.OneTermEqualSelector("metadata.name", controllers.KeyStatusConfigMap)},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return err
	}
	t := &tracker{cache: c, created: map[string]time.Time{}, projected: map[string]time.Time{}, ready: map[string]time.Time{}, changed: make(chan struct{})}
	msecs, err := c.GetInformer(ctx, &v1alpha1.ManagedSecret{})
	if err != nil {
		return err
	}
	onMsec := func(obj any) {
		m, ok := obj.(*v1alpha1.ManagedSecret)
		if !ok {
			return
		}
		now := time.Now()
		t.mu.Lock()
		if cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady); cond != nil && cond.Status == metav1.ConditionTrue {
			if _, seen := t.ready[key(m.Namespace, m.Name)]; !seen {
				t.ready[key(m.Namespace, m.Name)] = now
			}
		}
		t.notifyLocked()
		t.mu.Unlock()
	}
	if _, err := msecs.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: onMsec, UpdateFunc: func(_, obj any) { onMsec(obj) }}); err != nil {
		return err
	}
	secrets, err := c.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return err
	}
	onSecret := func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return
		}
		now := time.Now()
		t.mu.Lock()
		if s.Labels[v1alpha1.LabelRole] == v1alpha1.RoleProjection {
			// The projected Secret is named after its ManagedSecret (no target.name here).
			if _, seen := t.projected[key(s.Namespace, s.Name)]; !seen {
				t.projected[key(s.Namespace, s.Name)] = now
			}
		}
		t.notifyLocked()
		t.mu.Unlock()
	}
	if _, err := secrets.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: onSecret, UpdateFunc: func(_, obj any) { onSecret(obj) }}); err != nil {
		return err
	}
	// Every new resourceVersion of the key status ConfigMap is one write by the operator (no one
	// else writes it, and it patches only when something changed).
	onKeyStatus := func() {
		now := time.Now()
		t.mu.Lock()
		t.keyWrites = append(t.keyWrites, now)
		t.mu.Unlock()
	}
	keyStatus, err := c.GetInformer(ctx, &corev1.ConfigMap{})
	if err != nil {
		return err
	}
	if _, err := keyStatus.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { onKeyStatus() },
		UpdateFunc: func(oldObj, obj any) {
			o, ok1 := oldObj.(*corev1.ConfigMap)
			n, ok2 := obj.(*corev1.ConfigMap)
			if ok1 && ok2 && o.ResourceVersion != n.ResourceVersion {
				onKeyStatus()
			}
		},
	}); err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	cl.stopCache = cancel
	go func() {
		if err := c.Start(cctx); err != nil {
			fmt.Fprintln(os.Stderr, "bench: watch:", err)
		}
	}()
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	if !c.WaitForCacheSync(syncCtx) {
		return errors.New("the harness's watches did not sync")
	}
	cl.track = t
	return nil
}

func key(ns, name string) string { return ns + "/" + name }

func (t *tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// keyWritesSince counts the operator's writes of the key status ConfigMap seen after from.
func (t *tracker) keyWritesSince(from time.Time) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, at := range t.keyWrites {
		if at.After(from) {
			n++
		}
	}
	return float64(n)
}

func (t *tracker) markCreated(k string, at time.Time) {
	t.mu.Lock()
	t.created[k] = at
	t.mu.Unlock()
}

// wait calls cond (under no lock) whenever the watches see a change, until it returns true.
func (t *tracker) wait(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.After(timeout)
	for {
		t.mu.Lock()
		ch := t.changed
		t.mu.Unlock()
		done, progress := cond()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("%s: not done after %s (%s)", what, timeout, progress)
		case <-ch:
			// Re-check at most ten times a second: cond may walk every tracked object, and a
			// harness spinning on it would take CPU from the API server it measures. The times
			// are taken by the watch handlers, not here.
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		case <-time.After(time.Second):
		}
	}
}

// progress counts, among the created keys, those projected and Ready, and the latest times.
func (t *tracker) progress() (projected, ready int, lastProjected, lastReady time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.created {
		if at, ok := t.projected[k]; ok {
			projected++
			if at.After(lastProjected) {
				lastProjected = at
			}
		}
		if at, ok := t.ready[k]; ok {
			ready++
			if at.After(lastReady) {
				lastReady = at
			}
		}
	}
	return projected, ready, lastProjected, lastReady
}

// latencies are, for every created key, the time from its create to its projected Secret
// (or, with ready, to its first Ready status).
func (t *tracker) latencies(ready bool) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := t.projected
	if ready {
		seen = t.ready
	}
	out := make([]time.Duration, 0, len(t.created))
	for k, c := range t.created {
		if at, ok := seen[k]; ok {
			out = append(out, at.Sub(c))
		}
	}
	return out
}
