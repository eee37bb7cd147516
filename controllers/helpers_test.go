package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// countingRecorder counts the Events a hand-run reconciler emits (each is a write).
type countingRecorder struct {
	mu      sync.Mutex
	reasons []string
}

func (c *countingRecorder) Eventf(_ runtime.Object, _ runtime.Object, _, reason, _, _ string, _ ...interface{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reasons = append(c.reasons, reason)
}

func (c *countingRecorder) emitted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reasons...)
}

// testKeys reads the keyring the running operator created.
func testKeys(t *testing.T) envelope.KeyProvider {
	t.Helper()
	store := KeyringStore{Client: k8s, Namespace: suiteOpts.Namespace, Name: suiteOpts.KeyringSecret}
	ring, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keyring.NewProvider(ring, nil)
}

func restClientFor() (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = nil
	c.APIPath = "/apis"
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return rest.UnversionedRESTClientFor(c)
}

func readFileErr(dir, name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }

// testReconciler is a reconciler run by hand against the API server (no cache), as a restart or
// resync would run it, with the running operator's keys.
func testReconciler(t *testing.T) *ManagedSecretReconciler {
	t.Helper()
	return &ManagedSecretReconciler{Client: k8s, APIReader: k8s, Recorder: &countingRecorder{}, Keys: testKeys(t),
		ValueLimit: suiteOpts.ValueLimit, ClusterName: suiteOpts.ClusterName, RotationImage: suiteOpts.RotationImage,
		RotationAllow: suiteOpts.RotationAllow, KeyringNamespace: suiteOpts.Namespace, KeyringSecret: suiteOpts.KeyringSecret}
}

// rotated is a generated ManagedSecret whose rotation uses the named policy.
func rotated(ns, name, policyName string) *v1alpha1.ManagedSecret {
	m := generated(ns, name)
	m.Spec.Rotation = &v1alpha1.RotationSpec{PolicyRef: v1alpha1.LocalObjectReference{Name: policyName}}
	return m
}

// createReady creates a ManagedSecret and waits until it is Ready.
func createReady(t *testing.T, m *v1alpha1.ManagedSecret) *v1alpha1.ManagedSecret {
	t.Helper()
	if err := k8s.Create(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return waitReady(t, m.Namespace, m.Name, metav1.ConditionTrue, v1alpha1.ReasonReady)
}

// waitScheduled waits until the ManagedSecret's rotation is scheduled.
func waitScheduled(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, name+" RotationScheduled", func() error {
		if c := rotationCondition(getMsec(t, ns, name), v1alpha1.ConditionRotationScheduled); c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
}

// importConsent is the annotation with which a source Secret's owner lets the named ManagedSecret
// import it.
func importConsent(managedSecret string) map[string]string {
	return map[string]string{v1alpha1.AnnotationImportAllowedFor: managedSecret}
}

// superuserFor gives a superuser ManagedSecret's consent to a RotationPolicy borrowing it.
func superuserFor(t *testing.T, ns, msecName, policy string) {
	t.Helper()
	patchAnnotations(t, ns, msecName, map[string]any{v1alpha1.AnnotationSuperuserFor: policy})
}

// nudge makes the running operator reconcile a ManagedSecret now (an annotation change passes its
// event filter), instead of waiting for a slowly growing retry delay: sources the operator does not
// watch (a fromSecret Secret, a foreign target) are looked at again only on a schedule.
func nudge(t *testing.T, ns, name string) {
	t.Helper()
	patchAnnotations(t, ns, name, map[string]any{"test.kube-secrets-manager.io/nudge": time.Now().Format(time.RFC3339Nano)})
}

func patchAnnotations(t *testing.T, ns, name string, ann map[string]any) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	m := &v1alpha1.ManagedSecret{}
	m.Namespace, m.Name = ns, name
	if err := k8s.Patch(context.Background(), m, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// sealVersion builds a version object as the store would (format 2 binding, a String value), for
// tests that plant versions by hand.
func (r *ManagedSecretReconciler) sealVersion(ctx context.Context, m *v1alpha1.ManagedSecret, id string, labels []string, plaintext []byte) (*v1alpha1.SecretVersion, error) {
	sealed, err := envelope.Seal(ctx, r.Keys, m.Spec.KMSKeyRef, objects.NewBinding(m, id, false), plaintext)
	if err != nil {
		return nil, err
	}
	return objects.SecretVersion(m, id, labels, sealed, false, nil), nil
}
