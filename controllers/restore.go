package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// A restore from a backup (README, "Keys": backup and restore) brings back a ManagedSecret under a
// new UID, with its stable id (the annotation kube-secrets-manager.io/secret-id, the UID it was
// created with) and its versions, labelled and owned for that old UID. Versions bound with binding
// v2 name the stable id, not the UID, so they open; the operator adopts what a restore brought
// back for this secret: same namespace and name, labelled for its stable id, and owned by the
// ManagedSecret of that old UID and the same name, or by nothing (a restore that strips owner
// references). Nothing else is ever adopted: an object another live ManagedSecret controls is
// not, whatever id this one carries (the annotation is only as trustworthy as whoever may patch
// it; the chart's admission policy also keeps it from being changed).

// restored reports whether the ManagedSecret came back from a backup.
func restored(msec *v1alpha1.ManagedSecret) bool {
	return objects.SecretID(msec) != string(msec.UID)
}

// adoptableByRestore reports whether an object a restore brought back belongs to msec.
func adoptableByRestore(obj metav1.Object, msec *v1alpha1.ManagedSecret) bool {
	id := objects.SecretID(msec)
	if !restored(msec) || obj.GetNamespace() != msec.Namespace || obj.GetLabels()[v1alpha1.LabelManagedSecretUID] != id {
		return false
	}
	c := metav1.GetControllerOfNoCopy(obj)
	return c == nil || (string(c.UID) == id && c.Kind == "ManagedSecret" && c.Name == msec.Name)
}

// adopt relabels and re-owns an object for msec, under its resourceVersion.
func (r *ManagedSecretReconciler) adopt(ctx context.Context, obj client.Object, msec *v1alpha1.ManagedSecret) error {
	orig, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return nil
	}
	labels := obj.GetLabels()
	labels[v1alpha1.LabelManagedSecretUID] = string(msec.UID)
	obj.SetLabels(labels)
	obj.SetOwnerReferences([]metav1.OwnerReference{objects.OwnerRef(msec)})
	return r.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

// adoptRestoredVersions adopts the versions a restore brought back; it returns how many. It reads
// the cache on every reconcile of a restored secret, the API server when it has no version. The
// cache holds no deprecated version (labelled kube-secrets-manager.io/deprecated), so those are
// always asked of the API server; the watch never sees them arrive, and the secret's next
// reconcile adopts them.
func (r *ManagedSecretReconciler) adoptRestoredVersions(ctx context.Context, fromCache, lookDeprecated bool, msec *v1alpha1.ManagedSecret) (int, error) {
	sel := client.MatchingLabels{v1alpha1.LabelManagedSecretUID: objects.SecretID(msec)}
	reader, opts := r.APIReader, []client.ListOption{client.InNamespace(msec.Namespace), sel}
	if fromCache {
		reader, opts = r.Client, r.cachedList(msec.Namespace, sel)
	}
	list := &v1alpha1.SecretVersionList{}
	if err := reader.List(ctx, list, opts...); err != nil {
		return 0, err
	}
	if fromCache && lookDeprecated {
		deprecated := &v1alpha1.SecretVersionList{}
		sel[v1alpha1.LabelDeprecated] = v1alpha1.DeprecatedValue
		if err := r.APIReader.List(ctx, deprecated, client.InNamespace(msec.Namespace), sel); err != nil {
			return 0, err
		}
		list.Items = append(list.Items, deprecated.Items...)
	}
	n := 0
	for i := range list.Items {
		v := &list.Items[i]
		if v.Spec.ManagedSecretName != msec.Name || !adoptableByRestore(v, msec) {
			continue
		}
		if err := r.adopt(ctx, v, msec); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// orphanVersion passes versions whose controller is not a ManagedSecret the cache could know by
// that owner: none at all, or labelled for another UID than its controller's.
func orphanVersion(obj client.Object) bool {
	c := metav1.GetControllerOfNoCopy(obj)
	return c == nil || string(c.UID) != obj.GetLabels()[v1alpha1.LabelManagedSecretUID] || c.Name != obj.(*v1alpha1.SecretVersion).Spec.ManagedSecretName
}

// restoredVersionToManagedSecret wakes the ManagedSecret a version names.
func restoredVersionToManagedSecret(_ context.Context, obj client.Object) []reconcile.Request {
	v, ok := obj.(*v1alpha1.SecretVersion)
	if !ok || v.Spec.ManagedSecretName == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: v.Namespace, Name: v.Spec.ManagedSecretName}}}
}
