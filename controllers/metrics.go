package controllers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/metrics"
)

// secretSource is where the per-secret series are read from: the elected manager's cache. One
// process may run several managers (tests of replicas); the last elected one answers.
var secretSource atomic.Pointer[client.Reader]

var registerOnce sync.Once

// registerMetrics adds the operator's metrics to controller-runtime's registry (served on the
// metrics endpoint) once per process.
func registerMetrics() {
	registerOnce.Do(func() {
		cs := append(metrics.Collectors(), metrics.SecretCollector{List: listSecretStates})
		for _, c := range cs {
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
type exportSecretsWhenElected struct{ reader client.Reader }

func (e exportSecretsWhenElected) NeedLeaderElection() bool { return true }

func (e exportSecretsWhenElected) Start(ctx context.Context) error {
	r := e.reader
	secretSource.Store(&r)
	<-ctx.Done()
	secretSource.CompareAndSwap(&r, nil)
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
	r, ctx := *src, context.Background()
	var secrets v1alpha1.ManagedSecretList
	var policies v1alpha1.RotationPolicyList
	var versions v1alpha1.SecretVersionList
	for _, l := range []client.ObjectList{&secrets, &policies, &versions} {
		if err := r.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			log.Log.WithName("metrics").Info("listing for the per-secret metrics failed", "error", err.Error())
			return
		}
	}
	type key struct{ ns, name string }
	strategy := make(map[key]string, len(policies.Items))
	for i := range policies.Items {
		p := &policies.Items[i]
		strategy[key{p.Namespace, p.Name}] = p.Spec.Strategy
	}
	count := make(map[key]int, len(secrets.Items))
	for i := range versions.Items {
		v := &versions.Items[i]
		count[key{v.Namespace, v.Spec.ManagedSecretName}]++
	}
	for i := range secrets.Items {
		m := &secrets.Items[i]
		var s string
		if m.Spec.Rotation != nil {
			s = strategy[key{m.Namespace, m.Spec.Rotation.PolicyRef.Name}]
		}
		yield(metrics.StateOf(m, s, count[key{m.Namespace, m.Name}]))
	}
}
