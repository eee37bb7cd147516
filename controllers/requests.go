package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/metrics"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// requestTTL bounds how long a request Secret lives: answered ones the plugin did not collect, and
// requests never confirmed on the ManagedSecret, are deleted after it.
const requestTTL = 2 * time.Minute

// serveRequests answers the plugin's request Secrets; it never stops the secret's other phases.
func (r *ManagedSecretReconciler) serveRequests(ctx context.Context, s *scope) *result {
	r.serveRequestsRefusing(ctx, s, nil)
	return nil
}

// serveRequestsRefusing answers request Secrets one by one, oldest first, refusing each with
// refuse when it is set. Only Secrets this ManagedSecret controls (owner reference and UID, not the
// label alone) are requests; others are never read or touched. A request Secret that cannot be
// answered (immutable, not Opaque, larger than a request can be) is deleted with a Warning Event;
// one that fails transiently is retried later (s.retry); neither stops the other requests.
// Requests that need confirmation (request.NeedsConfirmation) count only once the ManagedSecret
// carries it; it is consumed before the request runs.
func (r *ManagedSecretReconciler) serveRequestsRefusing(ctx context.Context, s *scope, refuse error) {
	metas, err := r.listSecretMeta(ctx, s.msec.Namespace,
		client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.msec.UID), v1alpha1.LabelRole: request.RoleRequest})
	if err != nil {
		s.retry = fmt.Errorf("listing request Secrets failed: %s", apiErrorSummary(err))
		return
	}
	sort.Slice(metas, func(a, b int) bool {
		ta, tb := metas[a].CreationTimestamp, metas[b].CreationTimestamp
		if ta.Equal(&tb) {
			return metas[a].Name < metas[b].Name
		}
		return ta.Before(&tb)
	})
	for i := range metas {
		if !isControlledBy(&metas[i], s.msec) {
			continue
		}
		if err := r.serveRequest(ctx, s, &metas[i], refuse); err != nil {
			log.FromContext(ctx).Info("a request will be retried", "request", metas[i].Name, "error", err.Error())
			s.retry = err
		}
	}
	if err := r.dropRequestAnnotations(ctx, s); err != nil {
		s.retry = fmt.Errorf("removing answered request confirmations failed: %s", apiErrorSummary(err))
	}
}

// wakeAt asks for a reconcile when a request of this age expires, so its TTL holds.
func (s *scope) wakeAt(age time.Duration) {
	if d := requestTTL - age + time.Second; d > 0 {
		s.wake = earliest(s.wake, d)
	}
}

// serveRequest answers one request Secret. Errors are transient API failures, already reduced to
// a message without object content.
func (r *ManagedSecretReconciler) serveRequest(ctx context.Context, s *scope, meta *metav1.PartialObjectMetadata, refuse error) error {
	age := s.now.Sub(meta.CreationTimestamp.Time)
	if _, answered := meta.Annotations[request.AnnotationResult]; answered {
		if age <= requestTTL {
			s.wakeAt(age)
			return nil
		}
		return r.deleteRequest(ctx, meta)
	}
	sec, err := r.readSecret(ctx, client.ObjectKeyFromObject(meta))
	if err != nil {
		return fmt.Errorf("reading request %s failed: %s", meta.Name, apiErrorSummary(err))
	}
	if sec == nil || sec.UID != meta.UID || !isControlledBy(sec, s.msec) {
		return nil
	}
	if _, answered := sec.Annotations[request.AnnotationResult]; answered {
		return nil // answered by a reconcile the cache has not caught up with: never twice
	}
	defer clear(sec.Data[request.KeyValue])
	if err := request.CheckShape(string(sec.Type), sec.Immutable != nil && *sec.Immutable, sec.Data, value.MaxLimit); err != nil {
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeWarning, v1alpha1.ReasonRequestRefused, "Request",
			"request Secret %s was deleted unanswered: %s", sec.Name, err)
		return r.deleteRequest(ctx, meta)
	}
	key := request.AnnotationPrefix + sec.Name
	confirmation, confirmed := s.msec.Annotations[key]
	var req request.Request
	var refused error
	switch {
	case json.Unmarshal(sec.Data[request.KeyRequest], &req) != nil:
		refused = awserr.New(awserr.InvalidRequest, "the request is not valid JSON")
	case req.Validate() != nil:
		refused = awserr.New(awserr.InvalidParameter, "%s", req.Validate())
	case req.NeedsConfirmation(s.sec.Holder(stages.Current)) && !confirmed:
		if age <= requestTTL {
			s.wakeAt(age)
			return nil // not confirmed on the ManagedSecret yet
		}
		refused = awserr.New(awserr.AccessDenied, "the request was never confirmed on the ManagedSecret (changing a secret, or reading a version other than AWSCURRENT, needs patch permission on it)")
	case confirmed && confirmation != request.Confirmation(req.Op, string(sec.UID), sec.ResourceVersion):
		refused = awserr.New(awserr.InvalidRequest, "the request Secret changed after it was confirmed; nothing was done")
	case refuse != nil:
		refused = refuse
	}
	if confirmed {
		// Consumed before anything runs: a request runs at most once.
		if err := r.consumeConfirmation(ctx, s, key); err != nil {
			return fmt.Errorf("consuming the confirmation of request %s failed: %s", sec.Name, apiErrorSummary(err))
		}
	}
	res, answer := resultOf(refused), store.Value{}
	if refused == nil {
		var err error
		if res, answer, err = r.execute(ctx, s, req, sec.Data[request.KeyValue]); err != nil {
			return fmt.Errorf("request %s (%s) failed: %s", sec.Name, req.Op, apiErrorSummary(err))
		}
	}
	defer answer.Clear()
	if err := r.answer(ctx, sec, res, answer.Bytes); err != nil {
		return fmt.Errorf("answering request %s failed: %s", sec.Name, apiErrorSummary(err))
	}
	observeAnswer(req.Op, res)
	s.wakeAt(age)
	return nil
}

func resultOf(err error) request.Result {
	if err == nil {
		return request.Result{OK: true}
	}
	return request.Result{Code: awserr.CodeOf(err), Error: errMessage(err)}
}

// observeAnswer counts an answered request; an operation the protocol does not know is counted
// as "invalid" (the label never carries what a request Secret says).
func observeAnswer(op string, res request.Result) {
	switch op {
	case request.OpGet, request.OpPut, request.OpUpdateStage, request.OpRollback:
	default:
		op = "invalid"
	}
	var err error
	if !res.OK {
		err = awserr.New(res.Code, "")
	}
	metrics.Requests.WithLabelValues(metrics.InterfaceRequest, op, metrics.ResultOf(err)).Inc()
}

// execute performs one request through the store. Refusals (AWS errors) go into the Result; other
// errors are API failures to retry.
func (r *ManagedSecretReconciler) execute(ctx context.Context, s *scope, req request.Request, val []byte) (request.Result, store.Value, error) {
	refusedOr := func(err error) (request.Result, store.Value, error) {
		if errors.Is(err, value.ErrTooBig) {
			metrics.ValueSizeRefusals.WithLabelValues(metrics.InterfaceRequest).Inc()
		}
		if awserr.CodeOf(err) != "" {
			return resultOf(err), store.Value{}, nil
		}
		return request.Result{}, store.Value{}, err
	}
	switch req.Op {
	case request.OpGet:
		got, v, err := s.sec.Get(ctx, req.VersionID, req.Stage)
		if err != nil {
			return refusedOr(err)
		}
		s.accessed = true
		return request.Result{OK: true, VersionID: v.Spec.VersionID, Stages: v.Spec.Stages, Binary: got.Binary}, got, nil
	case request.OpPut:
		out, err := s.sec.Put(ctx, store.PutInput{Token: req.ClientRequestToken, Value: store.Value{Bytes: val, Binary: req.Binary}, Stages: req.Stages})
		if err != nil {
			return refusedOr(err)
		}
		if out.Created {
			r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonVersionCreated, "PutSecretValue",
				"created version %s with stages %s", out.VersionID, strings.Join(out.Stages, ","))
		}
		return request.Result{OK: true, VersionID: out.VersionID, Stages: out.Stages}, store.Value{}, nil
	case request.OpUpdateStage, request.OpRollback:
		label, to, from := req.Stage, req.MoveTo, req.RemoveFrom
		var err error
		if req.Op == request.OpRollback {
			label, from = stages.Current, s.sec.Holder(stages.Current)
			to, err = s.sec.Rollback(ctx)
		} else {
			err = s.sec.UpdateStage(ctx, label, to, from)
		}
		if err != nil {
			return refusedOr(err)
		}
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, "StageMoved", "UpdateSecretVersionStage",
			"staging label %s moved to version %q from version %q", label, to, from)
		return request.Result{OK: true, VersionID: to, Stages: s.sec.Labels()[to]}, store.Value{}, nil
	}
	return resultOf(awserr.New(awserr.InvalidParameter, "unknown operation %q", req.Op)), store.Value{}, nil
}

// deleteRequest deletes a request Secret, with a UID precondition.
func (r *ManagedSecretReconciler) deleteRequest(ctx context.Context, meta *metav1.PartialObjectMetadata) error {
	if err := r.Delete(ctx, meta, client.Preconditions{UID: &meta.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting request %s failed: %s", meta.Name, apiErrorSummary(err))
	}
	return nil
}

// consumeConfirmation removes one request annotation from the ManagedSecret, with an optimistic
// lock so two reconciles cannot both act on it.
func (r *ManagedSecretReconciler) consumeConfirmation(ctx context.Context, s *scope, key string) error {
	orig := s.msec.DeepCopy()
	delete(s.msec.Annotations, key)
	return r.Patch(ctx, s.msec, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

// answer writes the result on the request Secret: the value of a get, and the removal of a put's
// value, in one patch, conditional on the Secret being unchanged since it was read (a request
// changed meanwhile is read again on the next pass).
func (r *ManagedSecretReconciler) answer(ctx context.Context, sec *corev1.Secret, res request.Result, val []byte) error {
	data := map[string]any{request.KeyValue: nil}
	if val != nil {
		data[request.KeyValue] = val
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{request.AnnotationResult: res.Encode()}, "resourceVersion": sec.ResourceVersion},
		"data":     data,
	})
	if err != nil {
		return err
	}
	defer clear(patch)
	if err := r.Patch(ctx, sec, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	return nil
}

// dropRequestAnnotations removes request confirmations whose Secret is gone. The Secret watch and
// the ManagedSecret watch are separate streams: a confirmation whose Secret is missing from the
// cache is confirmed gone with a GET before it is removed.
func (r *ManagedSecretReconciler) dropRequestAnnotations(ctx context.Context, s *scope) error {
	remove := map[string]any{}
	for k := range s.msec.Annotations {
		name, ok := strings.CutPrefix(k, request.AnnotationPrefix)
		if !ok {
			continue
		}
		gone, err := r.secretGone(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: name})
		if err != nil {
			return err
		}
		if gone {
			remove[k] = nil
		}
	}
	if len(remove) == 0 {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": remove}})
	return r.Patch(ctx, s.msec, client.RawPatch(types.MergePatchType, patch))
}
