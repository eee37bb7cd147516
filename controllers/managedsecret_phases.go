package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/password"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/summary"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

var errRetry = errors.New("transient failure, retrying with backoff")

var b64 = base64.StdEncoding

// scope carries what the phases find, in order.
type scope struct {
	msec   *v1alpha1.ManagedSecret
	before *v1alpha1.ManagedSecretStatus
	now    time.Time
	// versions is set by loadVersions.
	versions []v1alpha1.SecretVersion
	// rot is set by loadRotation when a RotationPolicy is attached.
	rot *rotationScope
	// deletionTime and deletionRequest are set while the secret is marked for deletion.
	deletionTime    *time.Time
	deletionRequest string
}

func (s *scope) versionFacts() []stages.Version {
	out := make([]stages.Version, 0, len(s.versions))
	for _, v := range s.versions {
		out = append(out, stages.Version{ID: v.Spec.VersionID, Created: v.CreationTimestamp.Time, Labels: v.Spec.Stages})
	}
	return out
}

// result of the phases: what Ready says, and how to retry.
type result struct {
	outcome      summary.Outcome
	requeueAfter time.Duration
	err          error
}

func failed(reason, message string) result {
	return result{outcome: summary.Outcome{Reason: reason, Message: message}}
}

// transient is a failure that retries with the controller's backoff. Its message never carries an
// API server's text, which could echo object content.
func transient(reason, what string, err error) result {
	msg := fmt.Sprintf("%s: %s", what, apiErrorSummary(err))
	return result{outcome: summary.Outcome{Reason: reason, Message: msg}, err: errors.New(msg)}
}

// waitFor is a failure that fixes itself when something appears: retried with a growing delay.
func (s *scope) waitFor(reason, message string) result {
	since := s.now
	if c := meta.FindStatusCondition(s.before.Conditions, v1alpha1.ConditionReady); c != nil && c.Reason == reason {
		since = c.LastTransitionTime.Time
	}
	res := failed(reason, message)
	res.requeueAfter = summary.Backoff(since, s.now, 2*time.Second, 5*time.Minute)
	return res
}

func (r *ManagedSecretReconciler) reconcilePhases(ctx context.Context, s *scope) result {
	if err := r.loadVersions(ctx, s); err != nil {
		return transient(v1alpha1.ReasonInvalidVersions, "listing versions failed", err)
	}
	if len(s.versions) == 0 && s.before.CurrentVersionID != "" {
		// The versions vanished after a value existed. Never invent a new value in their place:
		// consumers would silently get a different secret. Confirm with the API server first, in
		// case the cache is behind.
		list := &v1alpha1.SecretVersionList{}
		if err := r.APIReader.List(ctx, list, client.InNamespace(s.msec.Namespace),
			client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.msec.UID)}); err != nil {
			return transient(v1alpha1.ReasonInvalidVersions, "listing versions failed", err)
		}
		if len(list.Items) == 0 {
			return s.waitFor(v1alpha1.ReasonVersionsMissing, fmt.Sprintf("version %s and every other version of this secret are gone; the projected Secret keeps its last good data and no new value is generated", s.before.CurrentVersionID))
		}
		s.versions = list.Items
	}
	if err := r.completeMidFinish(ctx, s); err != nil {
		return transient(v1alpha1.ReasonInvalidVersions, "completing an interrupted label move failed", err)
	}
	if days, marked := s.msec.Annotations[request.AnnotationDeleteRequested]; marked {
		return r.pendingDeletion(ctx, s, days)
	}
	requests := r.serveRequests(ctx, s, nil)
	res := r.readyPhases(ctx, s)
	res.requeueAfter = earliest(res.requeueAfter, requests.wake)
	if res.err == nil && requests.err != nil {
		// Retried with backoff, without changing what Ready says about the secret.
		res.err = requests.err
	}
	return res
}

// readyPhases make the first version if there is none, then rotate, decrypt and project.
func (r *ManagedSecretReconciler) readyPhases(ctx context.Context, s *scope) result {
	if len(s.versions) == 0 {
		if res, done := r.createFirstVersion(ctx, s); done {
			return res
		}
	}
	schedulable, err := r.loadRotation(ctx, s)
	if err != nil {
		return transient(v1alpha1.ReasonProjectionFailed, "reading the rotation state failed", err)
	}
	if s.rot != nil {
		if err := r.advanceRotation(ctx, s); err != nil {
			return transient(v1alpha1.ReasonInvalidVersions, "finishing the rotation failed", err)
		}
		if _, cancelled := s.msec.Annotations[request.AnnotationRotationCancelled]; cancelled {
			// Whether or not the policy can be scheduled, a cancelled rotation stops now.
			if err := r.cancelRotation(ctx, s); err != nil {
				return transient(v1alpha1.ReasonInvalidVersions, "cancelling the rotation failed", err)
			}
		}
	}
	current, err := currentVersion(s.versions)
	if err != nil {
		return failed(v1alpha1.ReasonInvalidVersions, err.Error())
	}
	plaintext, err := r.open(ctx, s.msec, current)
	if err != nil {
		res := s.waitFor(v1alpha1.ReasonDecryptionFailed, fmt.Sprintf("version %s: %s; the projected Secret keeps its last good data", current.Spec.VersionID, err))
		res.requeueAfter = max(res.requeueAfter, 30*time.Second)
		return res
	}
	defer clear(plaintext)
	data, err := value.Render(plaintext, targetKey(s.msec))
	if err != nil {
		return failed(v1alpha1.ReasonInvalidSource, err.Error())
	}
	if res, done := r.project(ctx, s, current.Spec.VersionID, data); done {
		return res
	}
	if err := r.removeStaleProjections(ctx, s); err != nil {
		return transient(v1alpha1.ReasonProjectionFailed, "removing a stale projected Secret failed", err)
	}
	if err := r.pruneVersions(ctx, s); err != nil {
		return transient(v1alpha1.ReasonInvalidVersions, "pruning deprecated versions failed", err)
	}
	ready := result{outcome: summary.Outcome{Ready: true, Reason: v1alpha1.ReasonReady,
		Message: fmt.Sprintf("version %s is projected into Secret %s", current.Spec.VersionID, targetName(s.msec))}}
	switch {
	case schedulable:
		requeue, err := r.scheduleRotation(ctx, s, plaintext)
		if err != nil {
			ready.err = fmt.Errorf("scheduling rotation failed: %s", apiErrorSummary(err))
		}
		ready.requeueAfter = requeue
	case s.msec.Spec.Rotation == nil:
		if err := r.removeRotation(ctx, s); err != nil {
			ready.err = fmt.Errorf("removing the rotation CronJob failed: %s", apiErrorSummary(err))
		}
	}
	return ready
}

// pendingDeletion is AWS's PendingDeletion state: the secret stays, with its deletion time, no
// rotation runs, every request but describe and restore is refused, and the projected Secret is
// left as it is (running workloads are not broken by a deletion that may still be undone). When
// the window ends the ManagedSecret is deleted, and its finalizer removes everything.
func (r *ManagedSecretReconciler) pendingDeletion(ctx context.Context, s *scope, daysText string) result {
	days, err := request.ParseRecoveryDays(daysText)
	note := ""
	if err != nil {
		days, note = request.DefaultRecoveryDays, fmt.Sprintf(" (the annotation's window is not valid: %s; %d days apply)", err, request.DefaultRecoveryDays)
	}
	// The window starts when the operator first sees this request (a new request after a restore
	// starts a new one); a date in the annotation would let a patch purge at once.
	at := s.now.Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Second)
	if s.before.DeletionTime != nil && s.before.DeletionRequest == daysText {
		at = s.before.DeletionTime.Time
	}
	s.deletionTime, s.deletionRequest = &at, daysText
	if !s.now.Before(at) {
		if err := r.Delete(ctx, s.msec, client.Preconditions{UID: &s.msec.UID}); err != nil && !apierrors.IsNotFound(err) {
			return transient(v1alpha1.ReasonPendingDeletion, "purging the secret failed", err)
		}
		return result{outcome: summary.Outcome{Reason: v1alpha1.ReasonPendingDeletion, Message: "the recovery window has ended; the secret is being purged"}}
	}
	requests := r.serveRequests(ctx, s, request.ErrMarkedForDeletion)
	if err := r.removeRotation(ctx, s); err != nil {
		return transient(v1alpha1.ReasonPendingDeletion, "removing the rotation CronJob failed", err)
	}
	return result{
		outcome: summary.Outcome{Reason: v1alpha1.ReasonPendingDeletion, Message: fmt.Sprintf(
			"marked for deletion; it is purged at %s unless restored with 'kubectl secrets-manager restore %s'%s",
			at.Format(time.RFC3339), s.msec.Name, note)},
		requeueAfter: earliest(at.Sub(s.now)+time.Second, requests.wake),
		err:          requests.err,
	}
}

// earliest is the smaller of two requeue delays, where 0 means none.
func earliest(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

func (r *ManagedSecretReconciler) loadVersions(ctx context.Context, s *scope) error {
	list := &v1alpha1.SecretVersionList{}
	if err := r.List(ctx, list, client.InNamespace(s.msec.Namespace),
		client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.msec.UID)}); err != nil {
		return err
	}
	s.versions = list.Items
	return nil
}

// createFirstVersion makes the AWSCURRENT version from generate or fromSecret. Its version id is
// the ManagedSecret's UID, so a retry after a crash finds the same version instead of adding one.
func (r *ManagedSecretReconciler) createFirstVersion(ctx context.Context, s *scope) (result, bool) {
	spec := s.msec.Spec
	var plaintext []byte
	switch {
	case spec.Generate != nil:
		pw, err := password.FromSpec(spec.Generate.PasswordPolicy).Generate()
		if err != nil {
			return failed(v1alpha1.ReasonInvalidPolicy, "generate.passwordPolicy: "+err.Error()), true
		}
		plaintext, err = value.Generated(spec.Generate.Fields, spec.Generate.PasswordKey, pw)
		if err != nil {
			return failed(v1alpha1.ReasonInvalidSource, err.Error()), true
		}
	case spec.FromSecret != nil:
		src := &corev1.Secret{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.msec.Namespace, Name: spec.FromSecret.Name}, src)
		if apierrors.IsNotFound(err) {
			return s.waitFor(v1alpha1.ReasonSourceNotFound, fmt.Sprintf("Secret %s/%s named in fromSecret does not exist; retrying until it appears", s.msec.Namespace, spec.FromSecret.Name)), true
		}
		if err != nil {
			return transient(v1alpha1.ReasonSourceNotFound, "reading the fromSecret source failed", err), true
		}
		if src.Type == corev1.SecretTypeServiceAccountToken || src.Type == corev1.SecretTypeBootstrapToken {
			return failed(v1alpha1.ReasonInvalidSource, fmt.Sprintf("Secret %s is of type %s, which is never imported", spec.FromSecret.Name, src.Type)), true
		}
		if s.msec.Namespace == r.KeyringNamespace && spec.FromSecret.Name == r.KeyringSecret {
			return failed(v1alpha1.ReasonInvalidSource, "the operator's keyring is never imported"), true
		}
		if !objects.ImportAllowed(src.Annotations, s.msec.Name) {
			// The source is not watched; retry slowly so consent given later is picked up.
			clear(src.Data)
			return s.waitFor(v1alpha1.ReasonSourceNotAllowed, fmt.Sprintf("Secret %s does not consent to being imported: its owner must add the annotation %s listing %q", spec.FromSecret.Name, v1alpha1.AnnotationImportAllowedFor, s.msec.Name)), true
		}
		plaintext, err = value.FromSecretData(src.Data)
		if err != nil {
			// The source is not watched; retry slowly so a fixed source is picked up.
			return s.waitFor(v1alpha1.ReasonInvalidSource, fmt.Sprintf("Secret %s: %s", spec.FromSecret.Name, err)), true
		}
	default:
		return failed(v1alpha1.ReasonAwaitingValue, "the secret has no value yet; put one with 'kubectl secrets-manager put'"), true
	}
	defer clear(plaintext)
	if err := value.CheckSize(plaintext, r.ValueLimit); err != nil {
		res := failed(v1alpha1.ReasonValueTooLarge, err.Error()+"; no version was written")
		if spec.FromSecret != nil {
			res = s.waitFor(v1alpha1.ReasonValueTooLarge, err.Error()+"; no version was written")
		}
		return res, true
	}
	versionID := string(s.msec.UID)
	sv, err := r.sealVersion(ctx, s.msec, versionID, []string{stages.Current}, plaintext)
	if err != nil {
		return failed(v1alpha1.ReasonEncryptionFailed, "encrypting the value failed: "+err.Error()), true
	}
	err = r.Create(ctx, sv, client.FieldOwner(FieldManager))
	if apierrors.IsAlreadyExists(err) {
		// An earlier attempt created it and the cache has not caught up: use the stored one.
		err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(sv), sv)
		if err == nil {
			s.versions = append(s.versions, *sv)
			return result{}, false
		}
	}
	if err != nil {
		return transient(v1alpha1.ReasonEncryptionFailed, "creating the first version failed", err), true
	}
	r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonVersionCreated, "CreateVersion",
		"created version %s with stage AWSCURRENT", versionID)
	s.versions = append(s.versions, *sv)
	return result{}, false
}

// sealVersion encrypts plaintext into a new SecretVersion object owned by msec.
func (r *ManagedSecretReconciler) sealVersion(ctx context.Context, msec *v1alpha1.ManagedSecret, versionID string, labels []string, plaintext []byte) (*v1alpha1.SecretVersion, error) {
	sealed, err := envelope.Seal(ctx, r.Keys, msec.Spec.KMSKeyRef, binding(msec, versionID), plaintext)
	if err != nil {
		return nil, err
	}
	return &v1alpha1.SecretVersion{
		ObjectMeta: metav1.ObjectMeta{
			Name:      versionObjectName(msec.Name, versionID),
			Namespace: msec.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelManagedSecretUID: string(msec.UID),
				v1alpha1.LabelManagedBy:        v1alpha1.ManagedByValue,
			},
			OwnerReferences: []metav1.OwnerReference{ownerRef(msec)},
		},
		Spec: v1alpha1.SecretVersionSpec{
			ManagedSecretName: msec.Name,
			VersionID:         versionID,
			Stages:            labels,
			Payload: &v1alpha1.EncryptedPayload{
				Algorithm: sealed.Algorithm, KeyID: sealed.KeyID,
				WrappedKey: b64.EncodeToString(sealed.WrappedKey),
				Nonce:      b64.EncodeToString(sealed.Nonce),
				Ciphertext: b64.EncodeToString(sealed.Ciphertext),
			},
		},
	}, nil
}

func (r *ManagedSecretReconciler) open(ctx context.Context, msec *v1alpha1.ManagedSecret, v *v1alpha1.SecretVersion) ([]byte, error) {
	p := v.Spec.Payload
	if p == nil || v.Spec.ManagedSecretName != msec.Name {
		return nil, envelope.ErrDecrypt
	}
	wrapped, err1 := b64.DecodeString(p.WrappedKey)
	nonce, err2 := b64.DecodeString(p.Nonce)
	ct, err3 := b64.DecodeString(p.Ciphertext)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, envelope.ErrDecrypt
	}
	return envelope.Open(ctx, r.Keys, binding(msec, v.Spec.VersionID), envelope.Sealed{
		Algorithm: p.Algorithm, KeyID: p.KeyID, WrappedKey: wrapped, Nonce: nonce, Ciphertext: ct,
	})
}

// pruneVersions deletes deprecated versions beyond AWS's cap, never one under 24 hours old.
func (r *ManagedSecretReconciler) pruneVersions(ctx context.Context, s *scope) error {
	prune := stages.Prunable(s.versionFacts(), stages.DeprecatedCap, s.now)
	if len(prune) == 0 {
		return nil
	}
	doomed := map[string]bool{}
	for _, id := range prune {
		doomed[id] = true
	}
	kept := s.versions[:0]
	for i := range s.versions {
		v := &s.versions[i]
		if !doomed[v.Spec.VersionID] {
			kept = append(kept, *v)
			continue
		}
		if err := r.Delete(ctx, v, client.Preconditions{UID: &v.UID}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	s.versions = kept
	r.Recorder.Eventf(s.msec, nil, corev1.EventTypeNormal, v1alpha1.ReasonVersionsPruned, "Prune",
		"pruned %d deprecated versions older than 24 hours", len(prune))
	return nil
}

// deleteOwned deletes the ManagedSecret's versions and projected Secrets and reports how many are
// still visible. Deleting explicitly (not only through garbage collection) leaves nothing behind
// even where no garbage collector runs.
func (r *ManagedSecretReconciler) deleteOwned(ctx context.Context, msec *v1alpha1.ManagedSecret) (int, error) {
	sel := client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(msec.UID)}
	if err := r.DeleteAllOf(ctx, &v1alpha1.SecretVersion{}, client.InNamespace(msec.Namespace), sel); err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	secrets, err := r.listSecretMeta(ctx, msec.Namespace, sel)
	if err != nil {
		return 0, err
	}
	remaining := 0
	for i := range secrets {
		sec := &secrets[i]
		if !isControlledBy(sec, msec) {
			continue
		}
		remaining++
		if err := r.deleteIfControlled(ctx, sec, msec.UID); err != nil {
			return 0, err
		}
		r.verified.forget(sec.UID)
	}
	versions := &v1alpha1.SecretVersionList{}
	if err := r.APIReader.List(ctx, versions, client.InNamespace(msec.Namespace), sel); err != nil {
		return 0, err
	}
	return remaining + len(versions.Items), nil
}

func currentVersion(vs []v1alpha1.SecretVersion) (*v1alpha1.SecretVersion, error) {
	facts := make([]stages.Version, 0, len(vs))
	for _, v := range vs {
		facts = append(facts, stages.Version{ID: v.Spec.VersionID, Labels: v.Spec.Stages})
	}
	set := stages.FromVersions(facts)
	if err := set.Validate(); err != nil {
		return nil, fmt.Errorf("the versions break the staging-label rules: %w", err)
	}
	id := set.Holder(stages.Current)
	for i := range vs {
		if vs[i].Spec.VersionID == id {
			return &vs[i], nil
		}
	}
	return nil, stages.ErrNoCurrent
}

func binding(msec *v1alpha1.ManagedSecret, versionID string) envelope.Binding {
	return envelope.Binding{Namespace: msec.Namespace, Name: msec.Name, UID: string(msec.UID), VersionID: versionID}
}

// versionObjectName is deterministic, so creating the same version twice collides instead of
// duplicating. Version ids may hold characters a name cannot, so the name carries a digest of it.
func versionObjectName(msecName, versionID string) string {
	sum := sha256.Sum256([]byte(versionID))
	prefix := msecName
	if len(prefix) > 240 {
		prefix = strings.TrimRight(prefix[:240], ".-")
	}
	return prefix + "-" + hex.EncodeToString(sum[:])[:12]
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// stableID is an ARN-like id ending in 6 characters drawn from the ManagedSecret's UID, so it is
// the same on every reconcile and new when a secret of the same name is created again, as AWS's
// random suffix is.
func stableID(cluster string, msec *v1alpha1.ManagedSecret) string {
	sum := sha256.Sum256([]byte(msec.UID))
	suffix := make([]byte, 6)
	for i := range suffix {
		suffix[i] = idAlphabet[int(sum[i])%len(idAlphabet)]
	}
	return fmt.Sprintf("arn:kubernetes:secretsmanager:%s:%s:secret:%s-%s", cluster, msec.Namespace, msec.Name, suffix)
}

// apiErrorSummary describes an API error by its status reason and code only: the server's message
// can quote the object it refused, and that object may hold a value.
func apiErrorSummary(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		st := status.Status()
		return fmt.Sprintf("the API server answered %s (%d)", st.Reason, st.Code)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "the request timed out"
	}
	return "the request to the API server failed"
}

// deletionPredicate passes updates that start a deletion.
type deletionPredicate struct{ predicate.Funcs }

func (deletionPredicate) Update(e event.UpdateEvent) bool {
	return e.ObjectNew.GetDeletionTimestamp() != nil
}
