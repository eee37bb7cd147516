package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
)

type discardRecorder struct{}

func (discardRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...interface{}) {
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
	return &ManagedSecretReconciler{Client: k8s, APIReader: k8s, Recorder: discardRecorder{}, Keys: testKeys(t),
		ValueLimit: suiteOpts.ValueLimit, ClusterName: suiteOpts.ClusterName}
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
