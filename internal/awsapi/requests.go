package awsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
)

// Writes go through the secret's reconcile on the leading replica, the one writer of its
// versions: the API (on any replica) hands a write over as a request Secret, exactly as the
// plugin does, confirms it on the ManagedSecret (the caller's right to write was checked first),
// and waits for the answer. Reads are served by any replica from its cache.

// writer hands writes to the leader.
type writer struct {
	Client  client.Client
	Reader  client.Reader
	Timeout time.Duration
	Poll    time.Duration
}

// do sends one request and returns the operator's answer: a refusal as an *awserr.Error.
func (w writer) do(ctx context.Context, msec *v1alpha1.ManagedSecret, req request.Request, val []byte) (request.Result, error) {
	timeout, poll := w.Timeout, w.Poll
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if poll == 0 {
		poll = 25 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	reqJSON, _ := json.Marshal(req)
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	yes, no := true, false
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "ksm-request-api-" + hex.EncodeToString(suffix), Namespace: msec.Namespace,
			Labels: map[string]string{v1alpha1.LabelManagedSecretUID: string(msec.UID), v1alpha1.LabelRole: request.RoleRequest,
				v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ManagedSecret",
				Name: msec.Name, UID: msec.UID, Controller: &yes, BlockOwnerDeletion: &no}}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{request.KeyRequest: reqJSON},
	}
	if val != nil {
		sec.Data[request.KeyValue] = val
	}
	if err := w.Client.Create(ctx, sec); err != nil {
		return request.Result{}, fmt.Errorf("creating the request failed: %s", reason(err))
	}
	defer func() {
		cleanup, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Client.Delete(cleanup, sec, client.Preconditions{UID: &sec.UID})
	}()
	confirm := request.Confirmation(req.Op, string(sec.UID), sec.ResourceVersion)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{request.AnnotationPrefix + sec.Name: confirm}}})
	if err := w.Client.Patch(ctx, msec, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return request.Result{}, awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound)
		}
		return request.Result{}, fmt.Errorf("confirming the request failed: %s", reason(err))
	}
	for {
		got := &corev1.Secret{}
		if err := w.Reader.Get(ctx, client.ObjectKeyFromObject(sec), got); err != nil {
			if ctx.Err() != nil {
				return request.Result{}, awserr.New(awserr.InternalServiceError, "the operator did not answer in time; the change may still happen")
			}
			return request.Result{}, fmt.Errorf("waiting for the answer failed: %s", reason(err))
		}
		if ans, ok := got.Annotations[request.AnnotationResult]; ok {
			res, err := request.DecodeResult(ans)
			clear(got.Data[request.KeyValue])
			if err != nil {
				return res, err
			}
			if !res.OK {
				code := res.Code
				if code == "" {
					code = awserr.InvalidRequest
				}
				return res, &awserr.Error{Code: code, Message: res.Error}
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			return request.Result{}, awserr.New(awserr.InternalServiceError, "the operator did not answer in time; the change may still happen")
		case <-time.After(poll):
		}
	}
}

// reason is an API error's status reason and code only (its message could quote the object).
func reason(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		return fmt.Sprintf("the API server answered %s (%d)", s.Status().Reason, s.Status().Code)
	}
	return "the request to the API server failed"
}

// kubeErr turns an API error of a write into an AWS error where one fits.
func kubeErr(err error) error {
	switch {
	case apierrors.IsInvalid(err):
		return awserr.New(awserr.InvalidParameter, "the secret could not be stored: %s", reason(err))
	case apierrors.IsAlreadyExists(err):
		return awserr.New(awserr.ResourceExists, "The operation failed because the secret already exists.")
	case apierrors.IsNotFound(err):
		return awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound)
	case apierrors.IsConflict(err):
		return awserr.New(awserr.InternalServiceError, "the secret changed at the same moment; try again")
	}
	return err
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
