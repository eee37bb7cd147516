package controllers

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// The operator registers the managed-secret-uid index on its informers itself, with one key per
// object (objects.ManagedSecretUIDIndexers), instead of through controller-runtime's IndexField,
// which keys every object twice. This proves controller-runtime's cache reader still finds that
// index under the name and namespaced key it looks up: a list through it returns exactly one
// secret's objects in one namespace.
func TestCachedListsUseTheUIDIndex(t *testing.T) {
	ctx := context.Background()
	nsA, nsB := newNamespace(t), newNamespace(t)
	// other shares uid's index bucket (its first two characters): the list must still hold uid's only.
	uid := string(uuid.NewUUID())
	other := uid[:2] + string(uuid.NewUUID())[2:]
	for _, s := range []struct{ ns, name, owner string }{
		{nsA, "one", uid}, {nsA, "two", uid}, {nsA, "someone-else", other}, {nsB, "elsewhere", uid},
	} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name,
			Labels: map[string]string{v1alpha1.LabelManagedSecretUID: s.owner}}}
		if err := k8s.Create(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	r := &ManagedSecretReconciler{Client: suiteMgr.GetClient(), indexed: true}
	eventually(t, "the cached list through the index holds the secret's two Secrets", func() error {
		items, err := r.listSecretMeta(ctx, nsA, client.MatchingLabels{v1alpha1.LabelManagedSecretUID: uid})
		if err != nil {
			return err
		}
		var names []string
		for _, m := range items {
			names = append(names, m.Namespace+"/"+m.Name)
		}
		slices.Sort(names)
		if want := []string{nsA + "/one", nsA + "/two"}; !slices.Equal(names, want) {
			return fmt.Errorf("listed %v, want %v", names, want)
		}
		return nil
	})
}

// eachCached reads the same objects from a cluster-wide cache (through the informer's store) as
// from a cache of several namespaces (which has no single store and is listed).
func TestEachCachedWalksEveryCachedObject(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nsA, nsB, nsC := newNamespace(t), newNamespace(t), newNamespace(t)
	for _, ns := range []string{nsA, nsB, nsC} {
		if err := k8s.Create(ctx, generated(ns, "walked")); err != nil {
			t.Fatal(err)
		}
	}
	walk := func(c cache.Cache) []string {
		var seen []string
		if err := eachCached(ctx, c, &v1alpha1.ManagedSecret{}, &v1alpha1.ManagedSecretList{}, func(m *v1alpha1.ManagedSecret) {
			if m.Namespace == nsA || m.Namespace == nsB || m.Namespace == nsC {
				seen = append(seen, m.Namespace)
			}
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(seen)
		return seen
	}
	// Namespace names carry a counter (t98, t99, t100), so the wanted list is sorted like the walked one.
	all := []string{nsA, nsB, nsC}
	slices.Sort(all)
	eventually(t, "the cluster-wide cache's store holds the three", func() error {
		if got, want := walk(suiteMgr.GetCache()), all; !slices.Equal(got, want) {
			return fmt.Errorf("walked %v, want %v", got, want)
		}
		return nil
	})
	twoNamespaces, err := cache.New(cfg, cache.Options{Scheme: Scheme(), DefaultNamespaces: map[string]cache.Config{nsA: {}, nsB: {}}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = twoNamespaces.Start(ctx) }()
	if _, err := twoNamespaces.GetInformer(ctx, &v1alpha1.ManagedSecret{}); err != nil {
		t.Fatal(err)
	}
	if !twoNamespaces.WaitForCacheSync(ctx) {
		t.Fatal("the cache of two namespaces did not sync")
	}
	want := []string{nsA, nsB}
	slices.Sort(want)
	if got := walk(twoNamespaces); !slices.Equal(got, want) {
		t.Fatalf("walked %v in the cache of two namespaces, want %v", got, want)
	}
}
