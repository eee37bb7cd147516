package objects

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ServiceAccountGVK is the ServiceAccount kind, for metadata reads.
var ServiceAccountGVK = corev1.SchemeGroupVersion.WithKind("ServiceAccount")

// GetMeta reads one object's metadata (a metadata-only GET through r, with no informer behind it);
// nil when there is no such object.
func GetMeta(ctx context.Context, r client.Reader, gvk schema.GroupVersionKind, key types.NamespacedName) (*metav1.PartialObjectMetadata, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	if err := r.Get(ctx, key, m); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return m, nil
}
