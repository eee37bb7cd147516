package controllers

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// requestTTL bounds how long a request Secret lives: answered ones the plugin did not collect, and
// requests never confirmed on the ManagedSecret, are deleted after it.
const requestTTL = 2 * time.Minute

// requestOutcome is what serving the requests leaves for the rest of the reconcile: when to look
// again (a TTL to enforce) and a transient failure to retry with backoff. Neither stops the other
// phases: one request that cannot be answered never blocks the secret.
type requestOutcome struct {
	wake time.Duration
	err  error
}

func (o *requestOutcome) wakeAt(age time.Duration) {
	if d := requestTTL - age + time.Second; d > 0 && (o.wake == 0 || d < o.wake) {
		o.wake = d
	}
}

// serveRequests answers the plugin's request Secrets one by one, oldest first. Only Secrets this
// ManagedSecret controls (owner reference and UID, not the label alone) are requests; others are
// never read or touched. A request Secret that cannot be answered (immutable, not Opaque, larger
// than a request can be) is deleted with a Warning Event; one that fails transiently is retried
// later; neither stops the other requests or the secret's other phases. Requests that need
// confirmation (request.NeedsConfirmation) count only once the ManagedSecret carries it; it is
// consumed before the request runs.
func (r *ManagedSecretReconciler) serveRequests(ctx context.Context, s *scope, refuse error) requestOutcome {
	var out requestOutcome
	metas, err := r.listSecretMeta(ctx, s.msec.Namespace,
		client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.msec.UID), v1alpha1.LabelRole: request.RoleRequest})
	if err != nil {
		out.err = fmt.Errorf("listing request Secrets failed: %s", apiErrorSummary(err))
		return out
	}
	sort.Slice(metas, func(a, b int) bool {
		ta, tb := metas[a].CreationTimestamp, metas[b].CreationTimestamp
		if ta.Equal(&tb) {
			return metas[a].Name < metas[b].Name
		}
		return ta.Before(&tb)
	})
	for i := range metas {
		meta := &metas[i]
		if !isControlledBy(meta, s.msec) {
			continue
		}
		if err := r.serveRequest(ctx, s, meta, refuse, &out); err != nil {
			log.FromContext(ctx).Info("a request will be retried", "request", meta.Name, "error", err.Error())
			out.err = err
		}
	}
	if err := r.dropRequestAnnotations(ctx, s); err != nil {
		out.err = fmt.Errorf("removing answered request confirmations failed: %s", apiErrorSummary(err))
	}
	return out
}

// serveRequest answers one request Secret. Errors are transient API failures, already reduced to
// a message without object content.
func (r *ManagedSecretReconciler) serveRequest(ctx context.Context, s *scope, meta *metav1.PartialObjectMetadata, refuse error, out *requestOutcome) error {
	age := s.now.Sub(meta.CreationTimestamp.Time)
	if _, answered := meta.Annotations[request.AnnotationResult]; answered {
		if age <= requestTTL {
			out.wakeAt(age)
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
	if err := request.CheckShape(string(sec.Type), sec.Immutable != nil && *sec.Immutable, sec.Data, value.MaxLimit); err != nil {
		defer clear(sec.Data[request.KeyValue])
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeWarning, v1alpha1.ReasonRequestRefused, "Request",
			"request Secret %s was deleted unanswered: %s", sec.Name, err)
		return r.deleteRequest(ctx, meta)
	}
	val := sec.Data[request.KeyValue]
	defer clear(val)
	key := request.AnnotationPrefix + sec.Name
	confirmation, confirmed := s.msec.Annotations[key]
	var req request.Request
	res := request.Result{}
	switch {
	case json.Unmarshal(sec.Data[request.KeyRequest], &req) != nil:
		res.Error = "the request is not valid JSON"
	case req.Validate() != nil:
		res.Error = req.Validate().Error()
	case req.NeedsConfirmation(stages.FromVersions(s.versionFacts()).Holder(stages.Current)) && !confirmed:
		if age <= requestTTL {
			out.wakeAt(age)
			return nil // not confirmed on the ManagedSecret yet
		}
		res.Error = "the request was never confirmed on the ManagedSecret (changing a secret, or reading a version other than AWSCURRENT, needs patch permission on it)"
	case confirmed && confirmation != request.Confirmation(req.Op, string(sec.UID), sec.ResourceVersion):
		res.Error = "the request Secret changed after it was confirmed; nothing was done"
	case refuse != nil:
		res.Error = refuse.Error()
	}
	if confirmed {
		// Consumed before anything runs: a request runs at most once.
		if err := r.consumeConfirmation(ctx, s, key); err != nil {
			return fmt.Errorf("consuming the confirmation of request %s failed: %s", sec.Name, apiErrorSummary(err))
		}
	}
	var answer []byte
	if res.Error == "" {
		var err error
		answer, res, err = r.execute(ctx, s, req, val)
		if err != nil {
			return fmt.Errorf("request %s (%s) failed: %s", sec.Name, req.Op, apiErrorSummary(err))
		}
	}
	err = r.answer(ctx, sec, res, answer)
	clear(answer)
	if err != nil {
		return fmt.Errorf("answering request %s failed: %s", sec.Name, apiErrorSummary(err))
	}
	out.wakeAt(age)
	return nil
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
		key := types.NamespacedName{Namespace: s.msec.Namespace, Name: name}
		if err := r.Get(ctx, key, secretMetaObject()); err == nil {
			continue
		} else if !apierrors.IsNotFound(err) {
			return err
		}
		err := r.APIReader.Get(ctx, key, secretMetaObject())
		if apierrors.IsNotFound(err) {
			remove[k] = nil
		} else if err != nil {
			return err
		}
	}
	if len(remove) == 0 {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": remove}})
	return r.Patch(ctx, s.msec, client.RawPatch(types.MergePatchType, patch))
}

// execute performs one request with AWS's rules. Errors it returns are API failures to retry;
// refusals go into the Result.
func (r *ManagedSecretReconciler) execute(ctx context.Context, s *scope, req request.Request, val []byte) ([]byte, request.Result, error) {
	set := stages.FromVersions(s.versionFacts())
	fail := func(format string, args ...any) ([]byte, request.Result, error) {
		return nil, request.Result{Error: fmt.Sprintf(format, args...)}, nil
	}
	arn := stableID(r.ClusterName, s.msec)
	switch req.Op {
	case request.OpGet:
		id := req.VersionID
		if id == "" {
			stage := req.Stage
			if stage == "" {
				stage = stages.Current
			}
			if id = set.Holder(stage); id == "" {
				return fail("Secrets Manager can't find the specified secret value for staging label: %s", stage)
			}
		}
		v := s.version(id)
		if v == nil || (req.Stage != "" && !contains(set[id], req.Stage)) {
			return fail("Secrets Manager can't find the specified secret value for VersionId: %s", id)
		}
		plain, err := r.open(ctx, s.msec, v)
		if err != nil {
			return fail("version %s: %s", id, err)
		}
		return plain, request.Result{OK: true, VersionID: id, Stages: set[id]}, nil

	case request.OpPut:
		if err := value.CheckSize(val, r.ValueLimit); err != nil {
			return fail("%s", err)
		}
		if v := s.version(req.ClientRequestToken); v != nil {
			existing, err := r.open(ctx, s.msec, v)
			if err != nil {
				return fail("version %s: %s", v.Spec.VersionID, err)
			}
			same := bytes.Equal(existing, val)
			clear(existing)
			if !same {
				return fail("You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", req.ClientRequestToken, arn)
			}
			return nil, request.Result{OK: true, VersionID: v.Spec.VersionID, Stages: set[v.Spec.VersionID]}, nil
		}
		final, err := set.Put(req.ClientRequestToken, req.Stages)
		if err != nil {
			return fail("%s", err)
		}
		sv, err := r.sealVersion(ctx, s.msec, req.ClientRequestToken, nil, val)
		if err != nil {
			return nil, request.Result{}, err
		}
		// Born with its intended labels recorded, so a crash before they are written is resumed.
		sv.Annotations = map[string]string{AnnotationIntendedStages: strings.Join(final[req.ClientRequestToken], ",")}
		if err := r.Create(ctx, sv, client.FieldOwner(FieldManager)); err != nil {
			return nil, request.Result{}, err
		}
		s.versions = append(s.versions, *sv)
		from := set.Clone()
		from[req.ClientRequestToken] = nil
		if err := r.writeStages(ctx, s, from, final, gainer(final, req.ClientRequestToken), req.ClientRequestToken); err != nil {
			return nil, request.Result{}, err
		}
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonVersionCreated, "PutSecretValue",
			"created version %s with stages %s", req.ClientRequestToken, strings.Join(final[req.ClientRequestToken], ","))
		return nil, request.Result{OK: true, VersionID: req.ClientRequestToken, Stages: final[req.ClientRequestToken]}, nil

	case request.OpUpdateStage, request.OpRollback:
		label, to, from := req.Stage, req.MoveTo, req.RemoveFrom
		if req.Op == request.OpRollback {
			label, to, from = stages.Current, set.Holder(stages.Previous), set.Holder(stages.Current)
			if to == "" {
				return fail("there is no AWSPREVIOUS version to roll back to")
			}
		}
		final, err := set.Move(label, to, from)
		if err != nil {
			return fail("%s", err)
		}
		gaining := ""
		if label == stages.Current {
			gaining = to
		}
		if err := r.writeStages(ctx, s, set, final, gaining, to); err != nil {
			return nil, request.Result{}, err
		}
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, "StageMoved", "UpdateSecretVersionStage",
			"staging label %s moved to version %q from version %q", label, to, from)
		return nil, request.Result{OK: true, VersionID: to, Stages: final[to]}, nil
	}
	return fail("unknown operation %q", req.Op)
}

// gainer is id when it gains AWSCURRENT in final.
func gainer(final stages.Set, id string) string {
	if contains(final[id], stages.Current) {
		return id
	}
	return ""
}
