// Package leader runs two replicas of the operator against one real API server with leader
// election on: exactly one reconciles, and when it stops the other takes over.
package leader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/controllers"
)

func TestTwoReplicasOneLeaderAndTakeover(t *testing.T) {
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
	admin, err := client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range []string{"kube-secrets-manager", "apps"} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	type replica struct {
		name    string
		elected <-chan struct{}
		stop    context.CancelFunc
		done    chan error
	}
	start := func(name string) *replica {
		o := controllers.DefaultOptions()
		o.MetricsAddr, o.ProbeAddr = "0", "0"
		o.LeaderElect = true
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
		mctx, cancel := context.WithCancel(ctx)
		o.SkipNameValidation = true // two managers in one test process
		mgr, err := controllers.NewManager(mctx, cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{name: name, elected: mgr.Elected(), stop: cancel, done: make(chan error, 1)}
		go func() {
			err := mgr.Start(mctx)
			r.done <- err
			close(r.done)
		}()
		t.Cleanup(func() { cancel(); <-r.done })
		return r
	}
	isElected := func(r *replica) bool {
		select {
		case <-r.elected:
			return true
		default:
			return false
		}
	}
	waitFor := func(what string, cond func() error) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := cond()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ready := func(name string) func() error {
		return func() error {
			m := &v1alpha1.ManagedSecret{}
			if err := admin.Get(ctx, client.ObjectKey{Namespace: "apps", Name: name}, m); err != nil {
				return err
			}
			if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("not Ready: %+v", m.Status.Conditions)
			}
			return nil
		}
	}
	create := func(name string) {
		if err := admin.Create(ctx, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name},
			Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{}}}); err != nil {
			t.Fatal(err)
		}
	}

	a := start("a")
	waitFor("replica a elected", func() error {
		if !isElected(a) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	b := start("b")
	create("first")
	waitFor("first Ready", ready("first"))
	lease := &coordinationv1.Lease{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "kube-secrets-manager", Name: "kube-secrets-manager.io"}, lease); err != nil {
		t.Fatal(err)
	}
	holder := *lease.Spec.HolderIdentity
	if isElected(b) {
		t.Fatal("both replicas lead")
	}

	// The leader stops (a rollout, a crash): the other takes over and reconciles.
	a.stop()
	if err := <-a.done; err != nil {
		t.Fatalf("replica a stopped with: %v", err)
	}
	waitFor("replica b elected", func() error {
		if !isElected(b) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	create("second")
	waitFor("second Ready", ready("second"))
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "kube-secrets-manager", Name: "kube-secrets-manager.io"}, lease); err != nil {
		t.Fatal(err)
	}
	if *lease.Spec.HolderIdentity == holder {
		t.Fatalf("the lease is still held by %s", holder)
	}
}
