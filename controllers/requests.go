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
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// requestTTL bounds how long a request Secret lives: answered ones the plugin did not collect, and
// mutating ones never confirmed on the ManagedSecret, are deleted after it.
const requestTTL = 2 * time.Minute

// processRequests answers the plugin's request Secrets, oldest first. Mutating requests count only
// when the ManagedSecret carries their confirmation (see request.AnnotationPrefix), which is
// consumed before the request runs. It returns when the next request Secret expires, so its TTL
// holds even when nothing else happens.
func (r *ManagedSecretReconciler) processRequests(ctx context.Context, s *scope, refuse error) (time.Duration, error) {
	list := &corev1.SecretList{}
	if err := r.List(ctx, list, client.InNamespace(s.msec.Namespace),
		client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.msec.UID), v1alpha1.LabelRole: request.RoleRequest}); err != nil {
		return 0, err
	}
	sort.Slice(list.Items, func(a, b int) bool {
		ta, tb := list.Items[a].CreationTimestamp, list.Items[b].CreationTimestamp
		if ta.Equal(&tb) {
			return list.Items[a].Name < list.Items[b].Name
		}
		return ta.Before(&tb)
	})
	var next time.Duration
	wakeAt := func(age time.Duration) {
		if d := requestTTL - age + time.Second; d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	for i := range list.Items {
		sec := &list.Items[i]
		age := s.now.Sub(sec.CreationTimestamp.Time)
		key := request.AnnotationPrefix + sec.Name
		if _, answered := sec.Annotations[request.AnnotationResult]; answered {
			if age > requestTTL {
				if err := r.Delete(ctx, sec, client.Preconditions{UID: &sec.UID}); err != nil && !apierrors.IsNotFound(err) {
					return 0, err
				}
			} else {
				wakeAt(age)
			}
			continue
		}
		var req request.Request
		res := request.Result{}
		var answer []byte
		confirmation, confirmed := s.msec.Annotations[key]
		switch {
		case json.Unmarshal(sec.Data[request.KeyRequest], &req) != nil:
			res.Error = "the request is not valid JSON"
		case req.Validate() != nil:
			res.Error = req.Validate().Error()
		case req.Mutating() && !confirmed:
			if age <= requestTTL {
				wakeAt(age)
				continue // not confirmed on the ManagedSecret yet
			}
			res.Error = "the request was never confirmed on the ManagedSecret"
		case req.Mutating() && confirmation != request.Confirmation(req.Op, string(sec.UID), sec.ResourceVersion):
			res.Error = "the request Secret changed after it was confirmed; nothing was done"
		case refuse != nil:
			res.Error = refuse.Error()
		}
		if confirmed {
			// Consumed before anything runs: a request runs at most once.
			if err := r.consumeConfirmation(ctx, s, key); err != nil {
				return 0, err
			}
		}
		if res.Error == "" {
			var err error
			answer, res, err = r.execute(ctx, s, req, sec.Data[request.KeyValue])
			if err != nil {
				return 0, err
			}
		}
		err := r.answer(ctx, sec, res, answer)
		clear(answer)
		if err != nil {
			return 0, err
		}
		wakeAt(age)
	}
	return next, r.dropRequestAnnotations(ctx, s)
}

// consumeConfirmation removes one request annotation from the ManagedSecret, with an optimistic
// lock so two reconciles cannot both act on it.
func (r *ManagedSecretReconciler) consumeConfirmation(ctx context.Context, s *scope, key string) error {
	orig := s.msec.DeepCopy()
	delete(s.msec.Annotations, key)
	return r.Patch(ctx, s.msec, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

// answer writes the result on the request Secret: the value of a get, and the removal of a put's
// value, in one patch.
func (r *ManagedSecretReconciler) answer(ctx context.Context, sec *corev1.Secret, res request.Result, val []byte) error {
	data := map[string]any{request.KeyValue: nil}
	if val != nil {
		data[request.KeyValue] = val
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{request.AnnotationResult: res.Encode()}},
		"data":     data,
	})
	if err != nil {
		return err
	}
	defer clear(patch)
	if err := r.Patch(ctx, sec, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// dropRequestAnnotations removes request annotations whose Secret is gone. The Secret watch and
// the ManagedSecret watch are separate streams, so the cache is not trusted: a GET confirms.
func (r *ManagedSecretReconciler) dropRequestAnnotations(ctx context.Context, s *scope) error {
	remove := map[string]any{}
	for k := range s.msec.Annotations {
		name, ok := strings.CutPrefix(k, request.AnnotationPrefix)
		if !ok {
			continue
		}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: name}, &corev1.Secret{})
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
