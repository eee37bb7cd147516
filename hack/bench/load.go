package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// forEach runs f for 0..n-1 on the given number of concurrent clients, retrying a failed call
// a few times (an overloaded API server may time out), and stops at the first lasting error.
func forEach(ctx context.Context, n, clients int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					if err = f(ctx, i); err == nil || ctx.Err() != nil {
						break
					}
					time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("item %d: %w", i, err); cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// create creates obj; one that already exists (a retry after a timeout that did create it) is
// fine.
func create(ctx context.Context, c client.Client, obj client.Object) error {
	err := c.Create(ctx, obj)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func msecName(i int) string { return fmt.Sprintf("ms-%05d", i) }

// managedSecret is the benchmark's ManagedSecret: a generated value with two fixed fields.
func managedSecret(i int, policy string) *v1alpha1.ManagedSecret {
	m := &v1alpha1.ManagedSecret{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsOf(i), Name: msecName(i)},
		Spec:       v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{Fields: map[string]string{"username": "u", "url": "x"}}},
	}
	if policy != "" {
		m.Spec.Rotation = &v1alpha1.RotationSpec{PolicyRef: v1alpha1.LocalObjectReference{Name: policy}}
	}
	return m
}

// createManagedSecrets creates n ManagedSecrets with the harness's clients, recording each
// create's start time in the tracker, and returns when the first create started.
func createManagedSecrets(ctx context.Context, cl *cluster, n, clients int, policy string) (time.Time, error) {
	start := time.Now()
	err := forEach(ctx, n, clients, func(ctx context.Context, i int) error {
		m := managedSecret(i, policy)
		cl.track.markCreated(key(m.Namespace, m.Name), time.Now())
		return create(ctx, cl.c, m)
	})
	return start, err
}

// waitAllReady waits until every created ManagedSecret has its projected Secret and is Ready.
func waitAllReady(ctx context.Context, cl *cluster, op *operator, n int, timeout time.Duration) (lastProjected, lastReady time.Time, err error) {
	err = cl.track.wait(ctx, timeout, fmt.Sprintf("%d ManagedSecrets projected and Ready", n), func() (bool, string) {
		p, r, lp, lr := cl.track.progress()
		lastProjected, lastReady = lp, lr
		if op != nil {
			if err := op.alive(); err != nil {
				return true, ""
			}
		}
		return p >= n && r >= n, fmt.Sprintf("%d projected, %d Ready", p, r)
	})
	if err == nil && op != nil {
		err = op.alive()
	}
	return lastProjected, lastReady, err
}

func plainSecret(i int, size int) *corev1.Secret {
	data := map[string][]byte{"username": []byte("u"), "url": []byte("x"), "password": []byte(fmt.Sprintf("p-%032d", i))}
	if size > 0 {
		blob := make([]byte, size)
		for j := range blob {
			blob[j] = byte('a' + (i+j)%26)
		}
		data = map[string][]byte{"blob": blob}
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsOf(i), Name: fmt.Sprintf("plain-%05d", i)}, Data: data}
}

// percentiles of latencies in milliseconds (nearest rank).
type percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

func percentilesOf(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		i = max(0, min(i, len(ds)-1))
		return float64(ds[i].Microseconds()) / 1000
	}
	return percentiles{N: len(ds), P50: rank(0.50), P99: rank(0.99), Max: rank(1)}
}
