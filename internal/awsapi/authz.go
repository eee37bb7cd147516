package awsapi

import (
	"context"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// Identity is who signed a request: a ServiceAccount, through a static access key or a web
// identity session. Its namespace is the only one it reaches: the namespace comes from the
// identity, never from a secret's name.
type Identity struct {
	Namespace      string
	ServiceAccount string
	UID            string // the ServiceAccount's UID a session or an access key was issued to ("" unknown)
	// RoleARN and SessionName are a session's AssumeRoleWithWebIdentity parameters.
	RoleARN, SessionName string
}

// User is the identity's Kubernetes user name.
func (i Identity) User() string {
	return "system:serviceaccount:" + i.Namespace + ":" + i.ServiceAccount
}

// Groups are the identity's Kubernetes groups.
func (i Identity) Groups() []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + i.Namespace, "system:authenticated"}
}

// Access is a Kubernetes verb on a resource of this API group: what one operation needs.
type Access struct {
	Verb        string
	Resource    string
	Subresource string
}

// Authorizer answers with SubjectAccessReviews, remembering each answer for a short while.
type Authorizer struct {
	Client client.Client
	// TTL is how long an answer is reused (default 10 s).
	TTL time.Duration
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]decision
	live  map[string]decision // ServiceAccounts found (or not) by serviceAccountLive
}

type decision struct {
	allowed bool
	until   time.Time
}

// maxDecisions bounds the cache; past it, the cache starts over.
const maxDecisions = 10000

// Allowed reports whether the identity may do a on the named object (name "" for a list or
// create) in its namespace.
func (a *Authorizer) Allowed(ctx context.Context, id Identity, acc Access, name string) (bool, error) {
	now := a.now()
	key := strings.Join([]string{id.User(), id.UID, acc.Verb, acc.Resource, acc.Subresource, id.Namespace, name}, "\x00")
	if allowed, ok := a.get(&a.cache, key, now); ok {
		return allowed, nil
	}
	live, err := a.Live(ctx, id)
	if err != nil {
		return false, err
	}
	if !live {
		a.remember(key, false, now)
		return false, nil
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: id.User(), UID: id.UID, Groups: id.Groups(),
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: id.Namespace, Verb: acc.Verb,
			Group: v1alpha1.GroupVersion.Group, Resource: acc.Resource, Subresource: acc.Subresource, Name: name},
	}}
	if err := a.Client.Create(ctx, sar); err != nil {
		return false, err
	}
	a.remember(key, sar.Status.Allowed, now)
	return sar.Status.Allowed, nil
}

func (a *Authorizer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// get is the answer *m holds for key, if it is still fresh (m is read under a.mu: put replaces it).
func (a *Authorizer) get(m *map[string]decision, key string, now time.Time) (yes, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, found := (*m)[key]
	return d.allowed, found && now.Before(d.until)
}

func (a *Authorizer) remember(key string, allowed bool, now time.Time) {
	a.mu.Lock()
	a.cache = a.put(a.cache, key, allowed, now)
	a.mu.Unlock()
}

// put records an answer for the TTL in m (made, or started over when full), under a.mu.
func (a *Authorizer) put(m map[string]decision, key string, yes bool, now time.Time) map[string]decision {
	ttl := a.TTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	if m == nil || len(m) >= maxDecisions {
		m = map[string]decision{}
	}
	m[key] = decision{allowed: yes, until: now.Add(ttl)}
	return m
}

// Live reports whether the identity's ServiceAccount still exists (serviceAccountLive), reusing
// a yes for the TTL, so that requests naming many secrets cost one lookup. A no is not reused
// (the decision cache keeps the refusal itself): a ServiceAccount made again is seen at once.
func (a *Authorizer) Live(ctx context.Context, id Identity) (bool, error) {
	now := a.now()
	key := strings.Join([]string{id.Namespace, id.ServiceAccount, id.UID}, "\x00")
	if live, ok := a.get(&a.live, key, now); ok {
		return live, nil
	}
	live, err := a.serviceAccountLive(ctx, id)
	if err != nil {
		return false, err
	}
	if live {
		a.mu.Lock()
		a.live = a.put(a.live, key, true, now)
		a.mu.Unlock()
	}
	return live, nil
}

// serviceAccountLive reports whether the identity's ServiceAccount still exists, and (when the
// identity names its UID) the very one the credentials were issued to: credentials of a deleted
// (or deleted and re-created) ServiceAccount are refused, as Kubernetes refuses its tokens and
// AWS refuses a deleted role's sessions, whatever RoleBindings still name it.
func (a *Authorizer) serviceAccountLive(ctx context.Context, id Identity) (bool, error) {
	sa, err := objects.GetMeta(ctx, a.Client, objects.ServiceAccountGVK, types.NamespacedName{Namespace: id.Namespace, Name: id.ServiceAccount})
	if err != nil || sa == nil {
		return false, err
	}
	return sa.DeletionTimestamp.IsZero() && (id.UID == "" || string(sa.UID) == id.UID), nil
}
