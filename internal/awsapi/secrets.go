package awsapi

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awsapi/wire"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
)

// How the API finds secrets and checks callers: a SecretId (a name, a full or a partial ARN) is
// resolved in the caller's namespace only; the caller's right is checked before whether the
// secret exists is said, so a secret the caller may not see answers as one that does not exist
// would for an allowed caller: AccessDeniedException either way.

func (s *Server) arn(m *v1alpha1.ManagedSecret) string { return objects.ARN(s.ARN, m) }

// lookup returns the ManagedSecret with an AWS name in the namespace, or nil.
func (s *Server) lookup(ctx context.Context, namespace, awsName string) (*v1alpha1.ManagedSecret, error) {
	if wire.ValidName(awsName) != nil {
		return nil, nil
	}
	m := &v1alpha1.ManagedSecret{}
	err := s.Cache.Get(ctx, types.NamespacedName{Namespace: namespace, Name: wire.ObjectName(awsName)}, m)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if objects.AWSName(m) != awsName || !m.DeletionTimestamp.IsZero() {
		return nil, nil
	}
	return m, nil
}

// resolve finds the secret a SecretId names in the caller's namespace, after checking the
// caller may do acc on it. allowMarked lets a secret pending deletion through (describe, restore,
// delete).
func (s *Server) resolve(ctx context.Context, id Identity, secretID string, acc Access, allowMarked bool) (*v1alpha1.ManagedSecret, error) {
	ref, err := wire.ParseSecretID(secretID)
	if err != nil {
		return nil, err
	}
	var found *v1alpha1.ManagedSecret
	name, ok := ref.Resolve(func(awsName string) (string, bool) {
		m, err := s.lookup(ctx, id.Namespace, awsName)
		if err != nil || m == nil {
			return "", false
		}
		found = m
		return s.arn(m), true
	})
	objName := wire.ObjectName(ref.Resource)
	if ok {
		objName = wire.ObjectName(name)
	}
	allowed, err := s.Authz.Allowed(ctx, id, acc, objName)
	if err != nil {
		return nil, err
	}
	if !allowed {
		return nil, accessDenied(id, acc, secretID)
	}
	if !ok || found == nil {
		return nil, awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound)
	}
	if _, marked := found.Annotations[request.AnnotationDeleteRequested]; marked && !allowMarked {
		return nil, awserr.New(awserr.InvalidRequest, "%s", awserr.MsgMarkedForDeletion)
	}
	return found, nil
}

func accessDenied(id Identity, acc Access, secretID string) error {
	what := acc.Resource
	if acc.Subresource != "" {
		what += "/" + acc.Subresource
	}
	return awserr.New(awserr.AccessDenied, "User: %s is not authorized to perform: %s on resource: %s (Kubernetes: %s %s in namespace %s)",
		id.User(), acc.Verb, secretID, acc.Verb, what, id.Namespace)
}

// allow checks an access that names no one secret (a list, a create).
func (s *Server) allow(ctx context.Context, id Identity, acc Access, name, what string) error {
	ok, err := s.Authz.Allowed(ctx, id, acc, name)
	if err != nil {
		return err
	}
	if !ok {
		return accessDenied(id, acc, what)
	}
	return nil
}

// wireTags are a secret's tags as AWS answers them: in the order they were first added, [] once
// they were all removed (spec.tags is then an empty list), absent if never tagged.
func wireTags(tags []v1alpha1.Tag) []wire.Tag {
	if tags == nil {
		return nil
	}
	out := make([]wire.Tag, 0, len(tags))
	for _, t := range tags {
		out = append(out, wire.Tag{Key: t.Key, Value: t.Value})
	}
	return out
}

// facts are what ListSecrets filters and sorts on.
func facts(m *v1alpha1.ManagedSecret) wire.SecretFacts {
	f := wire.SecretFacts{Name: objects.AWSName(m), Description: m.Spec.Description, CreatedDate: m.CreationTimestamp.Time}
	f.Tags = wireTags(m.Spec.Tags)
	if t := m.Status.LastChangedTime; t != nil {
		f.LastChangedDate = t.Time
	}
	if t := m.Status.LastAccessedDate; t != nil {
		f.LastAccessedDate = t.Time
	}
	_, f.PlannedDeletion = m.Annotations[request.AnnotationDeleteRequested]
	return f
}

// listNamespace lists the ManagedSecrets of a namespace (from the cache).
func (s *Server) listNamespace(ctx context.Context, namespace string) ([]v1alpha1.ManagedSecret, error) {
	list := &v1alpha1.ManagedSecretList{}
	if err := s.Cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	out := list.Items[:0]
	for _, m := range list.Items {
		if m.DeletionTimestamp.IsZero() {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// settle waits (briefly) until this replica's cache holds the ManagedSecret's spec as written, so a
// caller reads its own write from the next call, as AWS's callers expect of one endpoint.
func (s *Server) settle(ctx context.Context, written *v1alpha1.ManagedSecret) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for {
		m := &v1alpha1.ManagedSecret{}
		if err := s.Cache.Get(ctx, client.ObjectKeyFromObject(written), m); err == nil && m.Generation >= written.Generation {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
