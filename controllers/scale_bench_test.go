package controllers

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// BenchmarkManagedSecretsToReady creates KSM_BENCH_N ManagedSecrets (default 1000) next to
// KSM_BENCH_UNRELATED unrelated Secrets (default 2000) and prints how fast they become Ready and
// how much heap the process (operator and test client) holds afterwards. It prints figures and
// asserts no timing. Run it with `go test ./controllers -run ^$ -bench BenchmarkManagedSecretsToReady` (make bench runs hack/bench).
func BenchmarkManagedSecretsToReady(b *testing.B) {
	n := envInt("KSM_BENCH_N", 1000)
	unrelated := envInt("KSM_BENCH_UNRELATED", 2000)
	ctx := context.Background()
	for iter := 0; iter < b.N; iter++ {
		ns := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano()%1e6, iter)
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		parallel(b, unrelated, func(i int) error {
			return k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("unrelated-%d", i)},
				StringData: map[string]string{"k": "unrelated value"}})
		})
		heapBefore := heapMiB()
		start := time.Now()
		parallel(b, n, func(i int) error {
			return k8s.Create(ctx, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s-%d", i)},
				Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{Fields: map[string]string{"username": "u"}}}})
		})
		created := time.Since(start)
		for {
			list := &v1alpha1.ManagedSecretList{}
			if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
			ready := 0
			for _, m := range list.Items {
				if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
					ready++
				}
			}
			if ready == n {
				break
			}
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("only %d of %d Ready after 10 minutes", ready, n)
			}
			// Poll gently: listing every object is work for the same API server.
			time.Sleep(time.Second)
		}
		elapsed := time.Since(start)
		heapAfter := heapMiB()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "ready/s")
		b.ReportMetric(heapAfter, "heap-MiB")
		fmt.Printf("%d ManagedSecrets (beside %d unrelated Secrets): created in %s, all Ready in %s (%.0f/s); heap %.1f MiB before, %.1f MiB after\n",
			n, unrelated, created.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), heapBefore, heapAfter)
	}
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func heapMiB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

// parallel runs f for 0..n-1 on 16 workers.
func parallel(b *testing.B, n int, f func(int) error) {
	var wg sync.WaitGroup
	jobs := make(chan int)
	errs := make(chan error, 1)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := f(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}
