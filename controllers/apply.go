package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// How the operator reads and writes objects other than its own kinds. The Secret cache holds
// metadata only (see managerOptions): Secrets' metadata comes from it, their data from a GET when
// it is needed.

var secretGVK = corev1.SchemeGroupVersion.WithKind("Secret")

func secretMetaObject() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(secretGVK)
	return m
}

// listSecretMeta lists the cached metadata of the operator's labelled Secrets in a namespace; when
// the labels name a ManagedSecret, through the index of its objects.
func (r *ManagedSecretReconciler) listSecretMeta(ctx context.Context, namespace string, labels client.MatchingLabels) ([]metav1.PartialObjectMetadata, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.List(ctx, list, r.cachedList(namespace, labels)...); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// collidedWith reads, from the API server, the metadata of the object a create found under its
// name. The cache holds only the operator's labelled objects, so a collision is with someone
// else's object or with the operator's own the cache has not seen yet; nil when it is gone again.
func (r *ManagedSecretReconciler) collidedWith(ctx context.Context, gvk schema.GroupVersionKind, key types.NamespacedName) (*metav1.PartialObjectMetadata, error) {
	return objects.GetMeta(ctx, r.APIReader, gvk, key)
}

// cachedSecretMeta returns a Secret's metadata when the cache holds it (the Secret carries the
// operator's label), nil otherwise.
func (r *ManagedSecretReconciler) cachedSecretMeta(ctx context.Context, key types.NamespacedName) (*metav1.PartialObjectMetadata, error) {
	m := secretMetaObject()
	if err := r.Get(ctx, key, m); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return m, nil
}

// secretGone reports whether a Secret does not exist, trusting the cache only when it has it.
func (r *ManagedSecretReconciler) secretGone(ctx context.Context, key types.NamespacedName) (bool, error) {
	if err := r.Get(ctx, key, secretMetaObject()); err == nil {
		return false, nil
	} else if !apierrors.IsNotFound(err) {
		return false, err
	}
	err := r.APIReader.Get(ctx, key, secretMetaObject())
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

// readSecret reads a whole Secret with a GET; nil when there is none.
func (r *ManagedSecretReconciler) readSecret(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	sec := &corev1.Secret{}
	err := r.APIReader.Get(ctx, key, sec)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return sec, nil
}

// verifiedSecrets remembers, per projected Secret UID, the proof of what it holds: the Secret's
// resourceVersion whose data the operator wrote or compared last, the AWSCURRENT version's
// resourceVersion it was rendered from, and the ManagedSecret's generation. While the cache shows
// the same, the projection is known to be what the operator put there and neither a GET nor a
// decryption is needed; any change by anyone moves a resourceVersion. The proof is kept here only
// until a status write carries it to status.projection (which a restarted operator reads too), so
// memory holds only the proofs no status change has written yet, not one per secret.
type verifiedSecrets struct{ m sync.Map }

func (v *verifiedSecrets) ok(uid types.UID, resourceVersion string) bool {
	p, found := v.m.Load(uid)
	return found && p.(v1alpha1.ProjectionStatus).SecretResourceVersion == resourceVersion
}

func (v *verifiedSecrets) get(uid types.UID) (v1alpha1.ProjectionStatus, bool) {
	p, found := v.m.Load(uid)
	if !found {
		return v1alpha1.ProjectionStatus{}, false
	}
	return p.(v1alpha1.ProjectionStatus), true
}

func (v *verifiedSecrets) set(uid types.UID, p v1alpha1.ProjectionStatus) {
	if uid != "" && p.SecretResourceVersion != "" {
		v.m.Store(uid, p)
	}
}

func (v *verifiedSecrets) forget(uid types.UID) { v.m.Delete(uid) }

// deleteIfControlled deletes an object only when this ManagedSecret controls it, with a UID
// precondition, so an object of the same name someone else made is never touched.
func (r *ManagedSecretReconciler) deleteIfControlled(ctx context.Context, obj client.Object, owner types.UID, opts ...client.DeleteOption) error {
	if c := metav1.GetControllerOf(obj); c == nil || c.UID != owner {
		return nil
	}
	uid := obj.GetUID()
	opts = append(opts, client.Preconditions{UID: &uid})
	if err := r.Delete(ctx, obj, opts...); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// upgradeToApply converts the operator's create-time (Update) field ownership into Apply
// ownership, so later applies can remove what the desired object no longer has; it does nothing
// when there is none.
func (r *ManagedSecretReconciler) upgradeToApply(ctx context.Context, obj client.Object) error {
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(obj, sets.New(FieldManager), FieldManager)
	if err != nil || patch == nil {
		return err
	}
	return r.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, patch))
}

// invalidCauses lists the fields an Invalid error names, without the values it may quote.
func invalidCauses(err error) string {
	var fields []string
	if status, ok := err.(apierrors.APIStatus); ok && status.Status().Details != nil {
		for _, c := range status.Status().Details.Causes {
			fields = append(fields, fmt.Sprintf("%s (%s)", c.Field, c.Type))
		}
	}
	if len(fields) == 0 {
		return "the API server refused it"
	}
	return "invalid " + strings.Join(fields, ", ")
}

// Short names for the object helpers the controller uses everywhere.

func targetName(msec *v1alpha1.ManagedSecret) string   { return objects.TargetName(msec) }
func cronJobName(msec *v1alpha1.ManagedSecret) string  { return objects.CronJobName(msec) }
func materialName(msec *v1alpha1.ManagedSecret) string { return objects.MaterialName(msec) }
func isControlledBy(obj metav1.Object, msec *v1alpha1.ManagedSecret) bool {
	return objects.IsControlledBy(obj, msec)
}
