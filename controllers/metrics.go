package controllers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/metrics"
)

// secretSource is where the per-secret series are read from: the elected manager's cache. One
// process may run several managers (tests of replicas); the last elected one answers.
var secretSource atomic.Pointer[cache.Cache]

var registerOnce sync.Once

// registerMetrics adds the operator's metrics to controller-runtime's registry (served on the
// metrics endpoint) once per process; the per-secret series are written after them by
// metricsOptions' handler.
func registerMetrics() {
	registerOnce.Do(func() {
		for _, c := range metrics.Collectors() {
			if err := crmetrics.Registry.Register(c); err != nil {
				var already prometheus.AlreadyRegisteredError
				if !errors.As(err, &already) {
					panic(err)
				}
			}
		}
	})
}

// exportSecretsWhenElected makes the elected manager the source of the per-secret series, so
// replicas that do not reconcile do not export a second, possibly older, copy.
type exportSecretsWhenElected struct{ cache cache.Cache }

func (e exportSecretsWhenElected) NeedLeaderElection() bool { return true }

func (e exportSecretsWhenElected) Start(ctx context.Context) error {
	c := e.cache
	secretSource.Store(&c)
	<-ctx.Done()
	secretSource.CompareAndSwap(&c, nil)
	return nil
}

// listSecretStates reads every ManagedSecret, its policy's strategy and its number of versions
// from the cache, without copying the cached objects. The cache holds no deprecated version, so
// the count is of the labelled ones: counting the others would cost a LIST per secret per scrape.
func listSecretStates(yield func(metrics.SecretState)) {
	src := secretSource.Load()
	if src == nil {
		return
	}
	c, ctx := *src, context.Background()
	failed := func(err error) {
		log.Log.WithName("metrics").Info("listing for the per-secret metrics failed", "error", err.Error())
	}
	type key struct{ ns, name string }
	strategy := map[key]string{}
	if err := eachCached(ctx, c, &v1alpha1.RotationPolicy{}, &v1alpha1.RotationPolicyList{}, func(p *v1alpha1.RotationPolicy) {
		strategy[key{p.Namespace, p.Name}] = p.Spec.Strategy
	}); err != nil {
		failed(err)
		return
	}
	count := map[key]int{}
	if err := eachCached(ctx, c, &v1alpha1.SecretVersion{}, &v1alpha1.SecretVersionList{}, func(v *v1alpha1.SecretVersion) {
		count[key{v.Namespace, v.Spec.ManagedSecretName}]++
	}); err != nil {
		failed(err)
		return
	}
	if err := eachCached(ctx, c, &v1alpha1.ManagedSecret{}, &v1alpha1.ManagedSecretList{}, func(m *v1alpha1.ManagedSecret) {
		var s string
		if m.Spec.Rotation != nil {
			s = strategy[key{m.Namespace, m.Spec.Rotation.PolicyRef.Name}]
		}
		yield(metrics.StateOf(m, s, count[key{m.Namespace, m.Name}]))
	}); err != nil {
		failed(err)
	}
}

// eachCached calls fn with every cached object of obj's kind (list is its list type), read-only.
// It walks the informer's store instead of listing, since a typed List copies every object into
// the list: at 10,000 secrets those copies were a third of a scrape's garbage. A cache of several
// namespaces has no single store; it is listed (without deep copies).
func eachCached[T client.Object](ctx context.Context, c cache.Cache, obj T, list client.ObjectList, fn func(T)) error {
	informer, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	if s, ok := informer.(interface{ GetStore() toolscache.Store }); ok {
		for _, o := range s.GetStore().List() {
			if t, ok := o.(T); ok {
				fn(t)
			}
		}
		return nil
	}
	if err := c.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	return apimeta.EachListItem(list, func(o runtime.Object) error {
		if t, ok := o.(T); ok {
			fn(t)
		}
		return nil
	})
}
