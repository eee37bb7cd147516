package controllers

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
)

// KeyringStore keeps the local keyring in a Secret in the operator's namespace.
type KeyringStore struct {
	// Client must read from the API server, not a cache: the keyring Secret carries no label the
	// cache selects, and it is read before the cache starts.
	Client    client.Client
	Namespace string
	Name      string
	// VersionNamespaces are where versions may exist (empty: all namespaces).
	VersionNamespaces []string
}

// Load reads the keyring.
func (k KeyringStore) Load(ctx context.Context) (*keyring.Keyring, error) {
	sec := &corev1.Secret{}
	if err := k.Client.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, sec); err != nil {
		return nil, err
	}
	ring, err := keyring.Parse(sec.Data[keyring.DataKey])
	if err != nil {
		return nil, fmt.Errorf("keyring Secret %s/%s: %w", k.Namespace, k.Name, err)
	}
	return ring, nil
}

// LoadOrCreate reads the keyring, creating it with a fresh primary key on first start.
func (k KeyringStore) LoadOrCreate(ctx context.Context) (*keyring.Keyring, error) {
	ring, err := k.Load(ctx)
	if !apierrors.IsNotFound(err) {
		return ring, err
	}
	// A missing keyring while versions exist means it was lost: making a new one would reuse key
	// ids and leave every version unreadable without saying why.
	existing := &v1alpha1.SecretVersionList{}
	namespaces := k.VersionNamespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		if err := k.Client.List(ctx, existing, client.InNamespace(ns), client.Limit(1)); err != nil {
			return nil, fmt.Errorf("checking for existing versions: %w", err)
		}
		if len(existing.Items) > 0 {
			break
		}
	}
	if len(existing.Items) > 0 {
		return nil, fmt.Errorf("the keyring Secret %s/%s is missing but encrypted versions exist (for example %s/%s); restore the keyring from a backup instead of starting with a new one",
			k.Namespace, k.Name, existing.Items[0].Namespace, existing.Items[0].Name)
	}
	ring, err = keyring.New(time.Now())
	if err != nil {
		return nil, err
	}
	data, err := ring.Marshal()
	if err != nil {
		return nil, err
	}
	immutable := false
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: k.Name, Namespace: k.Namespace,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
			Annotations: map[string]string{
				"kube-secrets-manager.io/description": keyringDescription,
			},
		},
		Immutable: &immutable,
		Type:      corev1.SecretTypeOpaque,
		Data:      map[string][]byte{keyring.DataKey: data},
	}
	err = k.Client.Create(ctx, sec, client.FieldOwner(FieldManager))
	if apierrors.IsAlreadyExists(err) {
		// Another replica created it first.
		return k.Load(ctx)
	}
	if err != nil {
		return nil, err
	}
	return ring, nil
}

// Write stores ring: over the stored keyring only when ring is its successor (keyring.Successor),
// so a keyring someone replaced is never overwritten; recreated when the Secret is missing.
func (k KeyringStore) Write(ctx context.Context, ring *keyring.Keyring, annotations map[string]string) error {
	data, err := ring.Marshal()
	if err != nil {
		return err
	}
	sec := &corev1.Secret{}
	err = k.Client.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, sec)
	if apierrors.IsNotFound(err) {
		immutable := false
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: k.Name, Namespace: k.Namespace,
				Labels:      map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
				Annotations: map[string]string{"kube-secrets-manager.io/description": keyringDescription}},
			Immutable: &immutable, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{keyring.DataKey: data}}
		maps.Copy(sec.Annotations, annotations)
		return k.Client.Create(ctx, sec, client.FieldOwner(FieldManager))
	}
	if err != nil {
		return err
	}
	stored, err := keyring.Parse(sec.Data[keyring.DataKey])
	if err != nil {
		return err
	}
	if err := keyring.Successor(stored, ring); err != nil {
		return err
	}
	sec.Data = map[string][]byte{keyring.DataKey: data}
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	maps.Copy(sec.Annotations, annotations)
	return k.Client.Update(ctx, sec, client.FieldOwner(FieldManager))
}

// AnnotationRotatedFor records, on the keyring Secret, the rotation request a key was added for:
// written with the key itself, so a crash right after never adds a second key for one request.
const AnnotationRotatedFor = "kube-secrets-manager.io/rotated-for-request"

// RotatedFor is the request the newest key was added for.
func (k KeyringStore) RotatedFor(ctx context.Context) (string, error) {
	sec := &corev1.Secret{}
	if err := k.Client.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, sec); err != nil {
		return "", err
	}
	return sec.Annotations[AnnotationRotatedFor], nil
}

const keyringDescription = "Key-encryption keys of kube-secrets-manager. Losing this Secret makes every stored version unreadable: back it up."
