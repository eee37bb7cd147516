package store

import (
	"context"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
)

// Deprecated versions (no staging label; AWS keeps up to 100 per secret) carry
// v1alpha1.LabelDeprecated and are not in the operator's cache: a Secret holds the labelled ones,
// and reads a deprecated one from the API server only when an operation names it (find: one GET,
// the object name derives from the id) or needs them all (WithDeprecated: one LIST). Pruning
// counts them with a metadata-only LIST, and only when they may have changed (prunes).

// NotDeprecated selects the versions the cache holds.
func NotDeprecated() labels.Selector {
	req, err := labels.NewRequirement(v1alpha1.LabelDeprecated, selection.NotEquals, []string{v1alpha1.DeprecatedValue})
	if err != nil {
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

func (s *Secret) owns(v *v1alpha1.SecretVersion) bool {
	// Only versions this ManagedSecret controls are its own: a label proves nothing.
	return objects.IsControlledBy(v, s.owner) && v.Spec.ManagedSecretName == s.owner.Name
}

func (s *Secret) deprecatedSelector() client.ListOption {
	return client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.owner.UID), v1alpha1.LabelDeprecated: v1alpha1.DeprecatedValue}
}

// WithDeprecated adds the secret's deprecated versions to Versions (once).
func (s *Secret) WithDeprecated(ctx context.Context) error {
	if s.allLoaded {
		return nil
	}
	list := &v1alpha1.SecretVersionList{}
	if err := s.st.APIReader.List(ctx, list, client.InNamespace(s.owner.Namespace), s.deprecatedSelector()); err != nil {
		return err
	}
	for i := range list.Items {
		if v := &list.Items[i]; s.owns(v) && s.Version(v.Spec.VersionID) == nil {
			s.versions = append(s.versions, *v)
		}
	}
	s.allLoaded = true
	return nil
}

// Find is Version for any version, deprecated ones included: one not loaded is read from the API
// server by its object name. It returns nil when the secret has no such version.
func (s *Secret) Find(ctx context.Context, id string) (*v1alpha1.SecretVersion, error) {
	if v := s.Version(id); v != nil || s.allLoaded {
		return v, nil
	}
	v := &v1alpha1.SecretVersion{}
	err := s.st.APIReader.Get(ctx, types.NamespacedName{Namespace: s.owner.Namespace, Name: objects.VersionObjectName(s.owner.Name, id)}, v)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The name carries a digest of the id: another id could share it.
	if !s.owns(v) || v.Spec.VersionID != id {
		return nil, nil
	}
	s.versions = append(s.versions, *v)
	return &s.versions[len(s.versions)-1], nil
}

// deprecatedMeta lists the secret's deprecated versions as metadata (ids are in the spec, so
// the object name stands in for them: pruning needs only names and creation times).
func (s *Secret) deprecatedMeta(ctx context.Context) ([]metav1.PartialObjectMetadata, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("SecretVersionList"))
	if err := s.st.APIReader.List(ctx, list, client.InNamespace(s.owner.Namespace), s.deprecatedSelector()); err != nil {
		return nil, err
	}
	own := list.Items[:0]
	for _, m := range list.Items {
		if objects.IsControlledBy(&m, s.owner) {
			own = append(own, m)
		}
	}
	return own, nil
}

// Prune deletes deprecated versions beyond AWS's cap of 100, never one under 24 hours old, and
// returns how many it deleted. It counts them only when due (prunes), so a reconcile does not
// list them each time.
func (s *Secret) Prune(ctx context.Context, now time.Time) (int, error) {
	if !s.st.prunes.isDue(s.owner.UID, now) {
		return 0, nil
	}
	metas, err := s.deprecatedMeta(ctx)
	if err != nil {
		return 0, err
	}
	facts := make([]stages.Version, 0, len(metas))
	byName := make(map[string]*metav1.PartialObjectMetadata, len(metas))
	for i := range metas {
		m := &metas[i]
		facts = append(facts, stages.Version{ID: m.Name, Created: m.CreationTimestamp.Time})
		byName[m.Name] = m
	}
	prune := stages.Prunable(facts, stages.DeprecatedCap, now)
	for _, name := range prune {
		m := byName[name]
		m.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("SecretVersion"))
		if err := s.st.Client.Delete(ctx, m, client.Preconditions{UID: &m.UID}); err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
		delete(byName, name)
	}
	kept := s.versions[:0]
	for _, v := range s.versions {
		if !objects.IsMarkedDeprecated(&v) || byName[v.Name] != nil {
			kept = append(kept, v)
		}
	}
	s.versions = kept
	// What is left over the cap is too young: look again when the oldest of it turns 24 hours.
	var next time.Time
	if excess := len(byName) - stages.DeprecatedCap; excess > 0 {
		left := make([]time.Time, 0, len(byName))
		for _, m := range byName {
			left = append(left, m.CreationTimestamp.Time)
		}
		sort.Slice(left, func(i, j int) bool { return left[i].Before(left[j]) })
		next = left[0].Add(stages.MinPruneAge)
	}
	s.st.prunes.checked(s.owner.UID, next)
	return len(prune), nil
}

// pruneBook remembers which secrets' deprecated versions need counting, and from when: a secret
// is due when one of its versions is deprecated, when the key custodian's reading of all
// deprecated versions finds it over the cap (PruneDue), or when an excess too young to prune has
// aged. A secret not in the book is not due, so a restart does not list every secret's versions
// (AWS, too, removes the excess lazily).
type pruneBook struct {
	mu   sync.Mutex
	next map[types.UID]time.Time
}

func (b *pruneBook) isDue(uid types.UID, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	next, ok := b.next[uid]
	return ok && !now.Before(next)
}

// due makes a secret due now.
func (b *pruneBook) due(uid types.UID) { b.checked(uid, time.Unix(1, 0)) }

// checked records a count: due again at next, or (zero) not until something changes.
func (b *pruneBook) checked(uid types.UID, next time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if next.IsZero() {
		delete(b.next, uid)
		return
	}
	if b.next == nil {
		b.next = map[types.UID]time.Time{}
	}
	b.next[uid] = next
}

// PruneDue makes the secret with this UID count (and prune) its deprecated versions at its next
// reconcile.
func (st *Store) PruneDue(uid types.UID) { st.prunes.due(uid) }
