package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/metrics"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/password"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/summary"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// Reasons of Ready owned by these phases, besides the API's.
const (
	reasonVersionsUnreadable = "VersionsUnreadable"
	reasonLabelMoveFailed    = "LabelMoveFailed"
)

// A ManagedSecret restored less than restoredLookWindow ago looks for restored deprecated versions
// to adopt at least every restoredLookAgain; later, at its reconciles.
const (
	restoredLookWindow = 10 * time.Minute
	restoredLookAgain  = 10 * time.Second
)

// loadVersions reads the versions. When every version vanished after a value existed, no new
// value is ever invented in their place (consumers would silently get a different secret); the
// API server confirms first, in case the cache is behind.
func (r *ManagedSecretReconciler) loadVersions(ctx context.Context, s *scope) *result {
	sec, err := r.store.Load(ctx, s.msec)
	if err != nil {
		return transient(reasonVersionsUnreadable, "listing versions failed", err)
	}
	if restored(s.msec) {
		// Every reconcile of a restored secret looks (in the cache) for versions still to adopt:
		// a restore may bring them back one by one; with none at all, the API server is asked.
		recent := s.now.Sub(s.msec.CreationTimestamp.Time) < restoredLookWindow
		adopted, err := r.adoptRestoredVersions(ctx, !sec.Empty(), recent, s.msec)
		if err != nil {
			return transient(reasonVersionsUnreadable, "adopting restored versions failed", err)
		}
		if adopted > 0 || sec.Empty() {
			if sec, err = r.store.LoadFresh(ctx, s.msec); err != nil {
				return transient(reasonVersionsUnreadable, "listing versions failed", err)
			}
		}
		if adopted > 0 {
			r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, "VersionsAdopted", "Restore", "adopted %d versions restored from a backup", adopted)
			r.store.PruneDue(s.msec.UID) // a backup may hold more deprecated versions than AWS keeps
		}
		// No watch sees a restored deprecated version arrive (the cache leaves them out): a
		// secret restored a short while ago looks again on its own (and only then asks the API
		// server for them: an old restore costs no LIST per reconcile).
		if recent {
			s.wake = earliest(s.wake, restoredLookAgain)
		}
		if sec.Empty() {
			s.sec = sec
			return s.waitFor(v1alpha1.ReasonVersionsMissing, fmt.Sprintf("this ManagedSecret was restored (its secret id %s is not its UID) and none of its versions is here: restore its SecretVersions and they are adopted, or remove the annotation %s to start with a new value",
				objects.SecretID(s.msec), v1alpha1.AnnotationSecretID))
		}
	}
	if sec.Empty() && s.before.CurrentVersionID != "" {
		if sec, err = r.store.LoadFresh(ctx, s.msec); err != nil {
			return transient(reasonVersionsUnreadable, "listing versions failed", err)
		}
		if sec.Empty() {
			s.sec = sec
			return s.waitFor(v1alpha1.ReasonVersionsMissing, fmt.Sprintf("version %s and every other version of this secret are gone; the projected Secret keeps its last good data and no new value is generated", s.before.CurrentVersionID))
		}
	}
	s.sec = sec
	return nil
}

// completeInterrupted completes a label change a crash or an API error cut short.
func (r *ManagedSecretReconciler) completeInterrupted(ctx context.Context, s *scope) *result {
	if err := s.sec.CompleteInterrupted(ctx); err != nil {
		return transient(reasonLabelMoveFailed, "completing an interrupted label move failed", err)
	}
	return nil
}

// ensureFirstVersion makes the AWSCURRENT version from generate or fromSecret when there is none.
func (r *ManagedSecretReconciler) ensureFirstVersion(ctx context.Context, s *scope) *result {
	if !s.sec.Empty() {
		return nil
	}
	spec := s.msec.Spec
	var plaintext []byte
	switch {
	case spec.Generate != nil:
		pw, err := password.FromSpec(spec.Generate.PasswordPolicy).Generate()
		if err != nil {
			return failed(v1alpha1.ReasonInvalidPolicy, "generate.passwordPolicy: "+err.Error())
		}
		if plaintext, err = value.Generated(spec.Generate.Fields, spec.Generate.PasswordKey, pw); err != nil {
			return failed(v1alpha1.ReasonInvalidSource, err.Error())
		}
	case spec.FromSecret != nil:
		var res *result
		if plaintext, res = r.importSource(ctx, s); res != nil {
			return res
		}
	default:
		return failed(v1alpha1.ReasonAwaitingValue, "the secret has no value yet; put one with 'kubectl secrets-manager put'")
	}
	defer clear(plaintext)
	if err := value.CheckSize(plaintext, r.ValueLimit); err != nil {
		if c := meta.FindStatusCondition(s.before.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != v1alpha1.ReasonValueTooLarge {
			metrics.ValueSizeRefusals.WithLabelValues(metrics.InterfaceSource).Inc() // once per refusal, not per retry
		}
		if spec.FromSecret != nil {
			return s.waitFor(v1alpha1.ReasonValueTooLarge, err.Error()+"; no version was written")
		}
		return failed(v1alpha1.ReasonValueTooLarge, err.Error()+"; no version was written")
	}
	_, err := s.sec.CreateFirst(ctx, store.Value{Bytes: plaintext})
	switch {
	case awserr.Is(err, awserr.EncryptionFailure):
		msg := "encrypting the value failed: " + envelope.ErrUnavailable.Error() + "; nothing was written, and it is retried"
		return &result{outcome: summary.Outcome{Reason: v1alpha1.ReasonEncryptionFailed, Message: msg}, err: errors.New(msg)}
	case awserr.CodeOf(err) != "":
		return failed(v1alpha1.ReasonEncryptionFailed, err.Error())
	case err != nil:
		return transient(v1alpha1.ReasonEncryptionFailed, "creating the first version failed", err)
	}
	// The first version is in the status (Ready, versions, lastChangedTime); no Event, so a new
	// secret costs four writes: the finalizer, the version, the projected Secret and the status.
	return nil
}

// importSource reads the fromSecret source, once, with the owner's consent.
func (r *ManagedSecretReconciler) importSource(ctx context.Context, s *scope) ([]byte, *result) {
	name := s.msec.Spec.FromSecret.Name
	src := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: name}, src)
	switch {
	case apierrors.IsNotFound(err):
		return nil, s.waitFor(v1alpha1.ReasonSourceNotFound, fmt.Sprintf("Secret %s/%s named in fromSecret does not exist; retrying until it appears", s.msec.Namespace, name))
	case err != nil:
		return nil, transient(v1alpha1.ReasonSourceNotFound, "reading the fromSecret source failed", err)
	}
	defer clear(src.Data)
	switch {
	case src.Type == corev1.SecretTypeServiceAccountToken || src.Type == corev1.SecretTypeBootstrapToken:
		return nil, failed(v1alpha1.ReasonInvalidSource, fmt.Sprintf("Secret %s is of type %s, which is never imported", name, src.Type))
	case s.msec.Namespace == r.KeyringNamespace && name == r.KeyringSecret:
		return nil, failed(v1alpha1.ReasonInvalidSource, "the operator's keyring is never imported")
	case !objects.ImportAllowed(src.Annotations, s.msec.Name):
		// The source is not watched; retry slowly so consent given later is picked up.
		return nil, s.waitFor(v1alpha1.ReasonSourceNotAllowed, fmt.Sprintf("Secret %s does not consent to being imported: its owner must add the annotation %s listing %q", name, v1alpha1.AnnotationImportAllowedFor, s.msec.Name))
	}
	plaintext, err := value.FromSecretData(src.Data)
	if err != nil {
		return nil, s.waitFor(v1alpha1.ReasonInvalidSource, fmt.Sprintf("Secret %s: %s", name, err))
	}
	return plaintext, nil
}

// openCurrent decrypts the AWSCURRENT version.
func (r *ManagedSecretReconciler) openCurrent(ctx context.Context, s *scope) *result {
	v, err := s.sec.Current()
	if err != nil {
		return failed(v1alpha1.ReasonInvalidVersions, err.Error())
	}
	s.currentID, s.currentCreated = v.Spec.VersionID, v.CreationTimestamp.Time
	if s.current, err = s.sec.Open(ctx, v); err != nil {
		if envelope.IsUnavailable(err) {
			return s.waitFor(v1alpha1.ReasonKeyProviderUnavailable, fmt.Sprintf("version %s cannot be opened: %s; the projected Secret keeps its last good data", s.currentID, envelope.ErrUnavailable))
		}
		res := s.waitFor(v1alpha1.ReasonDecryptionFailed, fmt.Sprintf("version %s: %s; the projected Secret keeps its last good data", s.currentID, errMessage(err)))
		res.requeueAfter = max(res.requeueAfter, 30*time.Second)
		return res
	}
	return nil
}

// tidy removes projections left under an earlier target name, labels deprecated versions an
// older operator left unlabelled (once each; the cache then drops them), and prunes deprecated
// versions. None of it stops the secret.
func (r *ManagedSecretReconciler) tidy(ctx context.Context, s *scope) *result {
	if err := r.removeStaleProjections(ctx, s); err != nil {
		s.retry = fmt.Errorf("removing a stale projected Secret failed: %s", apiErrorSummary(err))
	}
	if _, err := s.sec.MarkDeprecated(ctx); err != nil {
		s.retry = fmt.Errorf("labelling deprecated versions failed: %s", apiErrorSummary(err))
	}
	n, err := s.sec.Prune(ctx, s.now)
	if err != nil {
		s.retry = fmt.Errorf("pruning deprecated versions failed: %s", apiErrorSummary(err))
	}
	if n > 0 {
		r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonVersionsPruned, "Prune",
			"pruned %d deprecated versions older than 24 hours", n)
	}
	return nil
}

// errMessage is an error's message without its AWS type prefix (for conditions).
func errMessage(err error) string {
	var e *awserr.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
