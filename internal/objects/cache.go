// Package objects builds and inspects the Kubernetes objects the operator writes and watches:
// names, labels, owner references, and what its caches keep of them. It is pure: no client calls.
package objects

import (
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// maxCachedAnnotation bounds an annotation value the caches keep. The operator's own annotations
// (version ids, digests, request results) are far shorter; anything longer is not ours.
const maxCachedAnnotation = 2048

// maxCachedActive bounds a CronJob's status.active in the cache (concurrencyPolicy Forbid keeps
// it at one).
const maxCachedActive = 8

// maxCachedMessage bounds a Job condition's message in the cache.
const maxCachedMessage = 256

// TrimForCache is the transform of the operator's Secret, Job and CronJob caches. Anyone who may
// create those objects can give them the operator's label, so what the caches hold must not grow
// with what a tenant writes: Secrets are cached as metadata only (see the manager's options), and
// here every object keeps only the operator's own labels and annotations, its controller owner
// reference, and for Jobs and CronJobs only the few status and spec fields the operator reads.
func TrimForCache(in any) (any, error) {
	switch o := in.(type) {
	case *metav1.PartialObjectMetadata:
		trimMeta(&o.ObjectMeta)
	case *corev1.Secret:
		trimMeta(&o.ObjectMeta)
		o.Data, o.StringData = nil, nil
	case *batchv1.Job:
		trimMeta(&o.ObjectMeta)
		o.Spec = batchv1.JobSpec{}
		conds := make([]batchv1.JobCondition, 0, len(o.Status.Conditions))
		for _, c := range o.Status.Conditions {
			if len(c.Message) > maxCachedMessage {
				c.Message = c.Message[:maxCachedMessage]
			}
			conds = append(conds, c)
		}
		o.Status = batchv1.JobStatus{Conditions: conds, Active: o.Status.Active, Succeeded: o.Status.Succeeded,
			Failed: o.Status.Failed, StartTime: o.Status.StartTime, CompletionTime: o.Status.CompletionTime}
	case *batchv1.CronJob:
		trimMeta(&o.ObjectMeta)
		o.Spec = batchv1.CronJobSpec{Suspend: o.Spec.Suspend}
		// status.active names the Jobs the CronJob controller started; only controllers write
		// status, and the operator serves only Jobs listed there (or that it made itself).
		active := o.Status.Active
		if len(active) > maxCachedActive {
			active = active[:maxCachedActive]
		}
		o.Status = batchv1.CronJobStatus{Active: active}
	case *v1alpha1.SecretVersion:
		// The payload is read with a GET when a version is opened (PayloadCached): the cache holds
		// what decides things (ids, labels, key id, binding), not every value ever written.
		trimDefault(o) // a version restored with kubectl apply carries its payload there too
		if p := o.Spec.Payload; p != nil {
			p.WrappedKey, p.Nonce, p.Ciphertext = "", "", ""
		}
		internVersion(o)
	default:
		return TrimDefault(in)
	}
	return in, nil
}

// lastApplied is kubectl's copy of the whole object from a client-side apply (Argo CD's default too).
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// TrimDefault is the transform of the other caches (ManagedSecrets, RotationPolicies, AccessKeys,
// workloads): managed fields and kubectl's last-applied copy of the object go (the operator reads
// neither, and the copy can double a cached object; the operator's patches are computed between
// two copies of the cached object, so they never touch what was trimmed), and repeated strings
// are shared (intern.go).
func TrimDefault(in any) (any, error) {
	m, ok := in.(metav1.Object)
	if !ok {
		return in, nil
	}
	trimDefault(m)
	switch o := in.(type) {
	case *v1alpha1.ManagedSecret:
		internManagedSecret(o)
	case interface{ GetObjectMeta() metav1.Object }:
		if meta, ok := o.GetObjectMeta().(*metav1.ObjectMeta); ok {
			internMeta(meta, "")
		}
	}
	return in, nil
}

func trimDefault(m metav1.Object) {
	m.SetManagedFields(nil)
	if ann := m.GetAnnotations(); ann != nil {
		if _, ok := ann[lastApplied]; ok {
			delete(ann, lastApplied)
			if len(ann) == 0 {
				m.SetAnnotations(nil)
			}
		}
	}
}

// PayloadCached reports whether a version carries its payload (false for a cached version, whose
// payload TrimForCache dropped).
func PayloadCached(v *v1alpha1.SecretVersion) bool {
	return v.Spec.Payload != nil && v.Spec.Payload.Ciphertext != ""
}

func trimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	m.Finalizers = nil
	m.Labels = keepOwn(m.Labels, 0)
	m.Annotations = keepOwn(m.Annotations, maxCachedAnnotation)
	var owners []metav1.OwnerReference
	if c := metav1.GetControllerOfNoCopy(m); c != nil {
		owners = []metav1.OwnerReference{*c}
	}
	m.OwnerReferences = owners
	internMeta(m, m.Labels[v1alpha1.LabelManagedSecretUID])
}

// keepOwn keeps the entries under the operator's prefixes (and its managed-by label), dropping
// values longer than limit when limit > 0. A map with nothing to drop (the usual case: the
// operator's own objects) is kept as decoded, not copied: a copy per cached object was a tenth of
// the operator's live heap.
func keepOwn(in map[string]string, limit int) map[string]string {
	keep := func(k, v string) bool { return IsOwnKey(k) && (limit <= 0 || len(v) <= limit) }
	all := true
	for k, v := range in {
		if !keep(k, v) {
			all = false
			break
		}
	}
	if all {
		if len(in) == 0 {
			return nil
		}
		return in
	}
	var out map[string]string
	for k, v := range in {
		if !keep(k, v) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// IsOwnKey reports whether a label or annotation key is one the operator sets.
func IsOwnKey(k string) bool {
	if k == v1alpha1.LabelManagedBy {
		return true
	}
	prefix, _, found := strings.Cut(k, "/")
	group := v1alpha1.GroupVersion.Group
	return found && (prefix == group || strings.HasSuffix(prefix, "."+group))
}

// IndexManagedSecretUID indexes the cached versions, Secrets' metadata and Jobs by their
// managed-secret-uid label. Listing one secret's objects through it reads just them; a label
// selector alone tests every cached object of the namespace, which made listing cost the operator
// a sixth of its CPU at 500 secrets per namespace and grew with the namespace.
const IndexManagedSecretUID = "managedSecretUID"

// uidBucketLen is how much of a ManagedSecret's uid keys the index. Keying by the whole uid made
// one index set per secret (about 0.55 KiB per secret at 5,000, a twentieth of the operator's
// memory); a bucket of two hex digits is one of 256 sets per namespace, and the exact uid is
// required by the label selector every list through the index carries (ListOfManagedSecret), which
// controller-runtime's cache reader applies to the bucket's objects before it copies any.
const uidBucketLen = 2

func uidBucket(uid string) string {
	if len(uid) > uidBucketLen {
		return uid[:uidBucketLen]
	}
	return uid
}

// ManagedSecretUIDIndexers is IndexManagedSecretUID as an informer's indexer, under the index
// name and key controller-runtime's cache reader looks up for a list with client.InNamespace and
// OfManagedSecret ("field:<index>", "<namespace>/<bucket>"). Its IndexField would key every object
// a second time under "all namespaces", doubling the index; the operator lists one secret's
// objects only in its own namespace. The controllers' test TestCachedListsUseTheUIDIndex fails if
// controller-runtime changes that key format.
func ManagedSecretUIDIndexers() toolscache.Indexers {
	return toolscache.Indexers{"field:" + IndexManagedSecretUID: func(obj any) ([]string, error) {
		o, ok := obj.(metav1.Object)
		if !ok {
			return nil, fmt.Errorf("cannot index %T by its managed-secret uid: not an object", obj)
		}
		if uid := o.GetLabels()[v1alpha1.LabelManagedSecretUID]; uid != "" {
			return []string{o.GetNamespace() + "/" + uidBucket(uid)}, nil
		}
		return nil, nil
	}}
}

// OfManagedSecret selects, through IndexManagedSecretUID, the cached objects whose uid shares
// uid's bucket: a superset of the secret's objects, narrowed by ListOfManagedSecret's selector.
func OfManagedSecret(uid string) client.MatchingFields {
	return client.MatchingFields{IndexManagedSecretUID: uidBucket(uid)}
}

// ListOfManagedSecret is the options of a list, in namespace, of the objects selector picks among
// those of the ManagedSecret with uid (the selector is narrowed to that uid here); through
// IndexManagedSecretUID when the reader's cache has it (indexed). The index keys objects under
// their namespace and a bucket of their uid, so such a list always names the namespace and
// requires the exact uid: every list through the index is built here.
func ListOfManagedSecret(namespace, uid string, selector labels.Selector, indexed bool) []client.ListOption {
	if v, ok := selector.RequiresExactMatch(v1alpha1.LabelManagedSecretUID); uid != "" && (!ok || v != uid) {
		req, err := labels.NewRequirement(v1alpha1.LabelManagedSecretUID, selection.Equals, []string{uid})
		if err != nil {
			// Not a label value (the API server's uids always are): select nothing, in the cache
			// and at the API server alike, rather than a bucket of someone else's objects.
			return []client.ListOption{client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selectsNothing()}}
		}
		selector = selector.Add(*req)
	}
	opts := []client.ListOption{client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selector}}
	if indexed && uid != "" {
		opts = append(opts, OfManagedSecret(uid))
	}
	return opts
}

// selectsNothing is a selector no object matches ("k,!k"); labels.Nothing renders as the empty
// selector, which an API server reads as everything.
func selectsNothing() labels.Selector {
	has, _ := labels.NewRequirement(v1alpha1.LabelManagedSecretUID, selection.Exists, nil)
	hasNot, _ := labels.NewRequirement(v1alpha1.LabelManagedSecretUID, selection.DoesNotExist, nil)
	return labels.NewSelector().Add(*has, *hasNot)
}
