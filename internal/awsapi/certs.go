package awsapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/apitls"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
)

// keySessionKey holds the key that seals web-identity session tokens, itself sealed with the key
// provider (so every replica can open it and nothing in the Secret is usable alone).
const keySessionKey = "session-key.sealed"

// Certs keeps the API's serving certificate and session key in a Secret of the operator's
// namespace, shared by every replica: it makes them on first start, renews the certificate and
// rotates the CA (apitls.Plan), publishes the trust bundle as a ClusterTrustBundle, and reloads
// what another replica wrote.
type Certs struct {
	// Client must read from the API server (the Secret carries no label the cache selects).
	Client    client.Client
	Keys      envelope.KeyProvider
	Namespace string
	Secret    string
	// TrustBundle names the ClusterTrustBundle workloads mount ("" skips publishing).
	TrustBundle string
	DNSNames    []string
	Now         func() time.Time

	mu         sync.RWMutex
	cert       *tls.Certificate
	sessionKey []byte
}

func (c *Certs) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Refresh brings the Secret up to date and loads it.
func (c *Certs) Refresh(ctx context.Context) error {
	sec := &corev1.Secret{}
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Secret}
	err := c.Client.Get(ctx, key, sec)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	exists := err == nil
	data, changed, err := apitls.Plan(sec.Data, c.DNSNames, c.now())
	if err != nil {
		return err
	}
	if _, ok := data[keySessionKey]; !ok {
		if data[keySessionKey], err = c.newSessionKey(ctx); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		if err := c.write(ctx, sec, exists, data); err != nil {
			return err
		}
	}
	cert, err := apitls.Certificate(data)
	if err != nil {
		return err
	}
	sk, err := c.openSessionKey(ctx, data[keySessionKey])
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cert, c.sessionKey = cert, sk
	c.mu.Unlock()
	return c.publish(ctx, data[apitls.KeyTrustBundle])
}

// write stores the material: created when absent, else updated under the resourceVersion read,
// so two replicas renewing at once cannot both win (the loser reloads the winner's).
func (c *Certs) write(ctx context.Context, sec *corev1.Secret, exists bool, data map[string][]byte) error {
	if !exists {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Secret,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}}, Type: corev1.SecretTypeOpaque, Data: data}
		err := c.Client.Create(ctx, sec)
		if apierrors.IsAlreadyExists(err) {
			return errRetryLater
		}
		return err
	}
	sec.Data = data
	err := c.Client.Update(ctx, sec)
	if apierrors.IsConflict(err) {
		return errRetryLater
	}
	return err
}

var errRetryLater = errors.New("another replica wrote the API's certificate at the same moment; reloading")

func (c *Certs) newSessionKey(ctx context.Context) ([]byte, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	defer clear(raw)
	s, err := envelope.Seal(ctx, c.Keys, "", c.sessionBinding(), raw)
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

func (c *Certs) openSessionKey(ctx context.Context, sealed []byte) ([]byte, error) {
	var s envelope.Sealed
	if err := json.Unmarshal(sealed, &s); err != nil {
		return nil, fmt.Errorf("the API's session key in Secret %s/%s is not valid", c.Namespace, c.Secret)
	}
	return envelope.Open(ctx, c.Keys, c.sessionBinding(), s)
}

func (c *Certs) sessionBinding() envelope.Binding {
	return envelope.Binding{Namespace: c.Namespace, Name: c.Secret, SecretID: "api", VersionID: "session-key", Format: envelope.FormatV2}
}

// publish keeps the ClusterTrustBundle in step with the trust bundle.
func (c *Certs) publish(ctx context.Context, bundle []byte) error {
	if c.TrustBundle == "" {
		return nil
	}
	ctb := &certificatesv1.ClusterTrustBundle{}
	err := c.Client.Get(ctx, types.NamespacedName{Name: c.TrustBundle}, ctb)
	switch {
	case apierrors.IsNotFound(err):
		ctb = &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: c.TrustBundle,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
			Spec: certificatesv1.ClusterTrustBundleSpec{TrustBundle: string(bundle)}}
		err = c.Client.Create(ctx, ctb)
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	case err != nil:
		return err
	case ctb.Spec.TrustBundle == string(bundle):
		return nil
	}
	ctb.Spec.TrustBundle = string(bundle)
	return c.Client.Update(ctx, ctb)
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (c *Certs) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.cert == nil {
		return nil, errors.New("the API's certificate is not loaded yet")
	}
	return c.cert, nil
}

// SessionKey is the key that seals session tokens.
func (c *Certs) SessionKey() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.sessionKey
}

// Run refreshes every interval until ctx ends; a failure is logged and retried.
func (c *Certs) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Refresh(ctx); err != nil {
				log.FromContext(ctx).Info("refreshing the API's certificate failed; retrying", "error", err.Error())
			}
		}
	}
}

// SessionKeyID is the key-encryption key the stored session key is wrapped with ("" when there
// is none yet).
func (c *Certs) SessionKeyID(ctx context.Context) (string, error) {
	sec := &corev1.Secret{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Secret}, sec); err != nil {
		return "", client.IgnoreNotFound(err)
	}
	var s envelope.Sealed
	if err := json.Unmarshal(sec.Data[keySessionKey], &s); err != nil {
		return "", nil
	}
	return s.KeyID, nil
}

// RewrapSessionKey moves the stored session key's data key to keyRef ("" for the primary key),
// under the Secret's resourceVersion.
func (c *Certs) RewrapSessionKey(ctx context.Context, keyRef string) error {
	sec := &corev1.Secret{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Secret}, sec); err != nil {
		return client.IgnoreNotFound(err)
	}
	var s envelope.Sealed
	if err := json.Unmarshal(sec.Data[keySessionKey], &s); err != nil {
		return fmt.Errorf("the API's session key in Secret %s/%s is not valid", c.Namespace, c.Secret)
	}
	next, err := envelope.Rewrap(ctx, c.Keys, keyRef, c.sessionBinding(), s)
	if err != nil {
		return err
	}
	if sec.Data[keySessionKey], err = json.Marshal(next); err != nil {
		return err
	}
	return c.Client.Update(ctx, sec)
}
