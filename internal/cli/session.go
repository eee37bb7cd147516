package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
)

// scheme is built on first use: the plugin shares the manager's executable, whose heap it would
// otherwise grow by a scheme it never uses.
var scheme = sync.OnceValue(func() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
})

// session is one command's connection to the cluster, in the namespace kubectl would use.
type session struct {
	c       client.Client
	ns      string
	timeout time.Duration
}

// connect builds a client from kubectl's connection flags (--kubeconfig, --context, --as,
// --token, --server, ...); the namespace is -n, else the kubeconfig context's, as in kubectl.
func (a *app) connect() (*session, error) {
	loader := a.flags.ToRawKubeConfigLoader()
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	// kubectl's way with API warnings: "Warning: ..." on stderr.
	cfg.WarningHandler = rest.NewWarningWriter(a.io.Err, rest.WarningWriterOptions{Deduplicate: true})
	cfg.WarningHandlerWithContext = nil
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, err
	}
	return &session{c: c, ns: ns, timeout: a.timeout}, nil
}

// open connects and reads the ManagedSecret. A secret marked for deletion is refused, as AWS
// refuses every operation but DescribeSecret, RestoreSecret and a forced DeleteSecret, unless
// allowMarked.
func (a *app) open(ctx context.Context, name string, allowMarked bool) (*session, *v1alpha1.ManagedSecret, error) {
	s, err := a.connect()
	if err != nil {
		return nil, nil, err
	}
	msec, err := s.managedSecret(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if _, marked := msec.Annotations[request.AnnotationDeleteRequested]; marked && !allowMarked {
		return nil, nil, awserr.New(awserr.InvalidRequest, "%s", awserr.MsgMarkedForDeletion)
	}
	return s, msec, nil
}

func (s *session) managedSecret(ctx context.Context, name string) (*v1alpha1.ManagedSecret, error) {
	msec := &v1alpha1.ManagedSecret{}
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: name}, msec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound)
		}
		return nil, s.kubeErr(err)
	}
	return msec, nil
}

// lifecycle runs AWS's secret-level operations as the user.
func (s *session) lifecycle() store.Lifecycle { return store.Lifecycle{Client: s.c} }

// kubeErr gives a Kubernetes API refusal the AWS type scripts can tell apart: Forbidden is
// AccessDeniedException. A missing CRD is said plainly.
func (s *session) kubeErr(err error) error {
	switch {
	case awserr.CodeOf(err) != "":
		return err
	case apierrors.IsForbidden(err):
		return awserr.New(awserr.AccessDenied, "%s", oneLine(err.Error()))
	case meta.IsNoMatchError(err):
		return fmt.Errorf("the cluster does not serve ManagedSecrets (is kube-secrets-manager installed?): %w", err)
	}
	return err
}

// roundTrip writes a request Secret, confirms it on the ManagedSecret when it changes the secret
// or reads a version other than AWSCURRENT, waits for the operator's answer, and deletes the
// request (also when the context is cancelled).
func (s *session) roundTrip(ctx context.Context, msec *v1alpha1.ManagedSecret, req request.Request, val []byte) (request.Result, []byte, error) {
	reqJSON, _ := json.Marshal(req)
	no, yes := false, true
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "ksm-request-" + randomSuffix(), Namespace: msec.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelManagedSecretUID: string(msec.UID),
				v1alpha1.LabelRole:             request.RoleRequest,
				v1alpha1.LabelManagedBy:        v1alpha1.ManagedByValue,
			},
			// Owned by the ManagedSecret, so the operator is told about it and it goes with it.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ManagedSecret",
				Name: msec.Name, UID: msec.UID, Controller: &yes, BlockOwnerDeletion: &no}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{request.KeyRequest: reqJSON},
	}
	if val != nil {
		sec.Data[request.KeyValue] = val
	}
	if err := s.c.Create(ctx, sec, client.FieldOwner(PluginName)); err != nil {
		// Only the reason: an admission webhook's message could quote the Secret, and so the value.
		if apierrors.IsForbidden(err) {
			return request.Result{}, nil, awserr.New(awserr.AccessDenied, "creating the request Secret failed: %s", apiReason(err))
		}
		return request.Result{}, nil, fmt.Errorf("creating the request Secret failed: %s", apiReason(err))
	}
	defer func() {
		cleanup, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.c.Delete(cleanup, sec)
	}()
	if req.Mutating() || req.ReadsOtherVersion() {
		// Changing a secret, or reading a version other than AWSCURRENT, counts only once the
		// ManagedSecret confirms the request (patch permission on it).
		confirm := request.Confirmation(req.Op, string(sec.UID), sec.ResourceVersion)
		if err := s.annotate(ctx, msec, map[string]any{request.AnnotationPrefix + sec.Name: confirm}); err != nil {
			return request.Result{}, nil, err
		}
	}
	for {
		got := &corev1.Secret{}
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(sec), got); err != nil {
			if ctx.Err() != nil {
				return request.Result{}, nil, s.noAnswer()
			}
			if apierrors.IsNotFound(err) {
				return request.Result{}, nil, fmt.Errorf("the request Secret %s was deleted unanswered (the operator deletes requests it cannot answer; see the ManagedSecret's Events)", sec.Name)
			}
			return request.Result{}, nil, fmt.Errorf("waiting for the operator's answer: %w", s.kubeErr(err))
		}
		if ans, ok := got.Annotations[request.AnnotationResult]; ok {
			res, err := request.DecodeResult(ans)
			if err != nil {
				return res, nil, err
			}
			if !res.OK {
				if res.Code != "" {
					return res, nil, &awserr.Error{Code: res.Code, Message: res.Error}
				}
				return res, nil, errors.New(res.Error)
			}
			return res, got.Data[request.KeyValue], nil
		}
		select {
		case <-ctx.Done():
			return request.Result{}, nil, s.noAnswer()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *session) noAnswer() error {
	return fmt.Errorf("the operator did not answer within %s (--timeout); is it running?", s.timeout)
}

// annotate merge-patches annotations on the ManagedSecret (nil removes one).
func (s *session) annotate(ctx context.Context, msec *v1alpha1.ManagedSecret, ann map[string]any) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err := s.c.Patch(ctx, msec, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(PluginName)); err != nil {
		if apierrors.IsNotFound(err) {
			return awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound)
		}
		return s.kubeErr(err)
	}
	return nil
}

// listVersions lists the secret's versions, newest first.
func (s *session) listVersions(ctx context.Context, msec *v1alpha1.ManagedSecret) ([]v1alpha1.SecretVersion, error) {
	list := &v1alpha1.SecretVersionList{}
	if err := s.c.List(ctx, list, client.InNamespace(msec.Namespace), client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(msec.UID)}); err != nil {
		return nil, s.kubeErr(err)
	}
	sort.SliceStable(list.Items, func(a, b int) bool {
		return list.Items[a].CreationTimestamp.After(list.Items[b].CreationTimestamp.Time)
	})
	return list.Items, nil
}

// description is what DescribeSecret shows.
type description struct {
	msec     *v1alpha1.ManagedSecret
	versions []v1alpha1.SecretVersion
	// policy is the rotation policy, when there is one and it could be read.
	policy *v1alpha1.RotationPolicy
}

func (s *session) describe(ctx context.Context, msec *v1alpha1.ManagedSecret) (*description, error) {
	vs, err := s.listVersions(ctx, msec)
	if err != nil {
		return nil, err
	}
	d := &description{msec: msec, versions: vs}
	if rot := msec.Spec.Rotation; rot != nil {
		p := &v1alpha1.RotationPolicy{}
		if err := s.c.Get(ctx, types.NamespacedName{Namespace: msec.Namespace, Name: rot.PolicyRef.Name}, p); err == nil {
			d.policy = p
		}
	}
	return d, nil
}

func (d *description) rotationEnabled() bool {
	_, cancelled := d.msec.Annotations[request.AnnotationRotationCancelled]
	return d.msec.Spec.Rotation != nil && !cancelled
}

// dates are DescribeSecret's dates; DeletedDate is "pending" while the operator has not yet
// seen a deletion request.
func (d *description) dates() map[string]string {
	m := d.msec
	out := map[string]string{}
	for key, t := range map[string]*metav1.Time{"LastChangedDate": m.Status.LastChangedTime, "LastRotatedDate": m.Status.LastRotatedTime,
		"NextRotationDate": m.Status.NextRotationTime, "DeletedDate": m.Status.DeletionTime} {
		if t != nil {
			out[key] = t.UTC().Format(time.RFC3339)
		}
	}
	if _, marked := m.Annotations[request.AnnotationDeleteRequested]; marked && m.Status.DeletionTime == nil {
		out["DeletedDate"] = "pending"
	}
	return out
}

func apiReason(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return fmt.Sprintf("the API server answered %s (%d)", status.Status().Reason, status.Status().Code)
	}
	return "the request to the API server failed"
}

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomSuffix() string {
	b := make([]byte, 10)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(suffixAlphabet))))
		b[i] = suffixAlphabet[n.Int64()]
	}
	return string(b)
}
