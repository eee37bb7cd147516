// Package store is the one implementation of AWS Secrets Manager's version rules: it owns a
// ManagedSecret's SecretVersions (load, seal, open, put with ClientRequestToken idempotency, get by
// id or stage, stage moves, rotation's pending version and finish, crash-safe label writes,
// pruning, deletion). The reconciler, the plugin's request channel and the AWS-compatible API all
// call it; nothing else reads or writes SecretVersions. Failures are *awserr.Error with AWS's types
// and messages, and never carry a value.
//
// One writer per secret: every write happens inside that secret's reconcile on the leading
// replica (controller-runtime runs one reconcile per key at a time, and leader election one
// reconciler), and every label write is a patch with an optimistic lock, so a deposed leader
// still finishing a write fails instead of interleaving.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/metrics"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// FieldManager owns every field the store writes.
const FieldManager = "kube-secrets-manager"

// Annotations on versions while their labels change; a change a crash interrupts is resumed
// from them (CompleteInterrupted).
const (
	// AnnotationTakingCurrent marks a version while AWSCURRENT moves to it.
	AnnotationTakingCurrent = "kube-secrets-manager.io/taking-current"
	// AnnotationIntendedStages records the labels a version is to end with (a put's new version,
	// a stage move's target) until the change is complete.
	AnnotationIntendedStages = "kube-secrets-manager.io/intended-stages"
)

// Store reads and writes SecretVersions.
type Store struct {
	// Client reads from the cache and writes.
	Client client.Client
	// APIReader reads what the cache may not have yet.
	APIReader client.Reader
	Keys      envelope.KeyProvider
	// Limit is the largest value in bytes (at most value.MaxLimit).
	Limit int
	// ARN names a secret in messages, as AWS's do.
	ARN func(*v1alpha1.ManagedSecret) string
	// Indexed says the cache behind Client indexes versions by objects.IndexManagedSecretUID
	// (false for a client without that index, such as a test's fake client).
	Indexed bool

	prunes pruneBook
}

// Secret is one ManagedSecret's versions, loaded once for one reconcile or one call: the labelled
// ones, and deprecated ones only as operations read them (deprecated.go).
type Secret struct {
	st       *Store
	owner    *v1alpha1.ManagedSecret
	versions []v1alpha1.SecretVersion
	// allLoaded: every deprecated version is in versions too (WithDeprecated).
	allLoaded bool
}

// Value is a secret value and its kind (AWS's SecretString or SecretBinary).
type Value struct {
	Bytes  []byte
	Binary bool
}

// Clear overwrites the value's bytes.
func (v Value) Clear() { clear(v.Bytes) }

// Load reads the owner's versions but the deprecated ones from the cache.
func (st *Store) Load(ctx context.Context, owner *v1alpha1.ManagedSecret) (*Secret, error) {
	return st.load(ctx, st.Client, owner)
}

// LoadFresh reads the owner's versions but the deprecated ones from the API server.
func (st *Store) LoadFresh(ctx context.Context, owner *v1alpha1.ManagedSecret) (*Secret, error) {
	return st.load(ctx, st.APIReader, owner)
}

func (st *Store) load(ctx context.Context, r client.Reader, owner *v1alpha1.ManagedSecret) (*Secret, error) {
	opts := objects.ListOfManagedSecret(owner.Namespace, string(owner.UID), NotDeprecated(), st.Indexed && r == client.Reader(st.Client))
	list := &v1alpha1.SecretVersionList{}
	if err := r.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	s := &Secret{st: st, owner: owner}
	own := list.Items[:0]
	for i := range list.Items {
		if s.owns(&list.Items[i]) {
			own = append(own, list.Items[i])
		}
	}
	s.versions = own
	return s, nil
}

// Owner is the ManagedSecret.
func (s *Secret) Owner() *v1alpha1.ManagedSecret { return s.owner }

// Versions are the versions as loaded (and as changed since): the labelled ones, and deprecated
// ones read since (all of them after WithDeprecated).
func (s *Secret) Versions() []v1alpha1.SecretVersion { return s.versions }

// Empty reports whether the secret has no version.
func (s *Secret) Empty() bool { return len(s.versions) == 0 }

// Facts are the versions' ids, creation times and labels.
func (s *Secret) Facts() []stages.Version {
	out := make([]stages.Version, 0, len(s.versions))
	for _, v := range s.versions {
		out = append(out, stages.Version{ID: v.Spec.VersionID, Created: v.CreationTimestamp.Time, Labels: v.Spec.Stages})
	}
	return out
}

// Labels are the versions' staging labels.
func (s *Secret) Labels() stages.Set { return stages.FromVersions(s.Facts()) }

// Version returns the loaded version with the id, or nil (Find also reads a deprecated one).
func (s *Secret) Version(id string) *v1alpha1.SecretVersion {
	for i := range s.versions {
		if s.versions[i].Spec.VersionID == id {
			return &s.versions[i]
		}
	}
	return nil
}

// Holder is the id of the version holding a label, or "".
func (s *Secret) Holder(label string) string { return s.Labels().Holder(label) }

// ErrInvalidVersions says the versions break the staging-label rules.
var ErrInvalidVersions = errors.New("the versions break the staging-label rules")

// Current is the AWSCURRENT version, checking the label rules first.
func (s *Secret) Current() (*v1alpha1.SecretVersion, error) {
	if err := s.Labels().Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidVersions, err)
	}
	if v := s.Version(s.Holder(stages.Current)); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("%w: %w", ErrInvalidVersions, stages.ErrNoCurrent)
}

// Open decrypts a version. A version that fails authentication returns AWS's DecryptionFailure,
// whatever the cause.
func (s *Secret) Open(ctx context.Context, v *v1alpha1.SecretVersion) (Value, error) {
	if v != nil && !objects.PayloadCached(v) && v.Spec.Payload != nil {
		full, err := s.st.fullVersion(ctx, v)
		if err != nil {
			return Value{}, err
		}
		v = full
	}
	sealed, ok := objects.Sealed(v)
	if !ok || v.Spec.ManagedSecretName != s.owner.Name {
		return Value{}, decryptionFailure(v.Spec.VersionID)
	}
	b := objects.Binding(s.owner, v)
	plain, err := envelope.Open(ctx, s.st.Keys, b, sealed)
	if err != nil {
		return Value{}, openFailure(v.Spec.VersionID, err)
	}
	return Value{Bytes: plain, Binary: b.Binary}, nil
}

// decryptionFailure is AWS's DecryptionFailure for a version, counted in the metrics.
func decryptionFailure(id string) error {
	metrics.DecryptionFailures.Inc()
	return awserr.New(awserr.DecryptionFailure, "Secrets Manager can't decrypt version %s: %s", id, envelope.ErrDecrypt)
}

// Get is GetSecretValue: the version with the id, or holding the stage (AWSCURRENT by default).
func (s *Secret) Get(ctx context.Context, versionID, stage string) (Value, *v1alpha1.SecretVersion, error) {
	var v *v1alpha1.SecretVersion
	if versionID != "" {
		var err error
		if v, err = s.Find(ctx, versionID); err != nil {
			return Value{}, nil, err
		}
		if v == nil {
			return Value{}, nil, awserr.New(awserr.ResourceNotFound, "Secrets Manager can't find the specified secret value for VersionId: %s", versionID)
		}
		if stage != "" && !slices.Contains(v.Spec.Stages, stage) {
			return Value{}, nil, awserr.New(awserr.InvalidRequest, "You provided a VersionStage that is not associated to the provided VersionId.")
		}
	} else {
		if stage == "" {
			stage = stages.Current
		}
		if v = s.Version(s.Holder(stage)); v == nil {
			return Value{}, nil, awserr.New(awserr.ResourceNotFound, "Secrets Manager can't find the specified secret value for staging label: %s", stage)
		}
	}
	val, err := s.Open(ctx, v)
	return val, v, err
}

// PutInput is PutSecretValue's input.
type PutInput struct {
	// Token is the ClientRequestToken: the new version's id.
	Token  string
	Value  Value
	Stages []string
}

// PutOutput is PutSecretValue's output.
type PutOutput struct {
	VersionID string
	Stages    []string
	// Created is false when the token named an existing version with the same value.
	Created bool
}

// Put is PutSecretValue: a new version with the token as its id, labelled AWSCURRENT unless
// stages says otherwise (the first version always gets AWSCURRENT); each label it takes leaves
// the version that held it, and AWSPREVIOUS follows AWSCURRENT. The same token with the same value
// is a no-op; with another value it is refused.
func (s *Secret) Put(ctx context.Context, in PutInput) (PutOutput, error) {
	if err := s.checkValue(in.Value); err != nil {
		return PutOutput{}, err
	}
	if err := CheckToken(in.Token); err != nil {
		return PutOutput{}, err
	}
	// A version the token names is found in the cache; one that is not cached (deprecated, or
	// too new) is found when the create collides with it, so a new token costs no read.
	if v := s.Version(in.Token); v != nil {
		return s.samePut(ctx, v, in)
	}
	labels := in.Stages
	if len(labels) == 0 {
		labels = []string{stages.Current}
	}
	if s.Empty() && !slices.Contains(labels, stages.Current) {
		labels = append(slices.Clone(labels), stages.Current)
	}
	final, err := s.Labels().Put(in.Token, labels)
	if err != nil {
		return PutOutput{}, labelError(err)
	}
	if err := s.createAndLabel(ctx, in.Token, in.Value, final); apierrors.IsAlreadyExists(err) {
		// The create is the first write: nothing moved. The token names a version after all.
		v, err := s.Find(ctx, in.Token)
		if err != nil {
			return PutOutput{}, err
		}
		if v == nil { // another id whose object name collides (the name carries a digest)
			return PutOutput{}, awserr.New(awserr.ResourceExists, "You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", in.Token, s.arn())
		}
		return s.samePut(ctx, v, in)
	} else if err != nil {
		return PutOutput{}, err
	}
	return PutOutput{VersionID: in.Token, Stages: final[in.Token], Created: true}, nil
}

// samePut answers a PutSecretValue whose token names version v: with the same value a no-op
// (AWS's idempotency), with another ResourceExistsException.
func (s *Secret) samePut(ctx context.Context, v *v1alpha1.SecretVersion, in PutInput) (PutOutput, error) {
	existing, err := s.Open(ctx, v)
	if err != nil {
		return PutOutput{}, err
	}
	same := existing.Binary == in.Value.Binary && bytes.Equal(existing.Bytes, in.Value.Bytes)
	existing.Clear()
	if !same {
		return PutOutput{}, awserr.New(awserr.ResourceExists, "You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", in.Token, s.arn())
	}
	return PutOutput{VersionID: in.Token, Stages: v.Spec.Stages}, nil
}

// CreatePending is rotation's createSecret: a new version holding only AWSPENDING, with a fresh
// id. AWSPENDING leaves whatever version held it, as PutSecretValue does (also when that version
// holds AWSCURRENT).
// id is the version's id (a rotate request's ClientRequestToken), or "" for a new UUID.
func (s *Secret) CreatePending(ctx context.Context, val Value, id string) (string, error) {
	if err := s.checkValue(val); err != nil {
		return "", err
	}
	if id == "" {
		id = uuid.NewString()
	}
	final, err := s.Labels().Put(id, []string{stages.Pending})
	if err != nil {
		return "", labelError(err)
	}
	return id, s.createAndLabel(ctx, id, val, final)
}

// CreateFirst makes the first version (AWSCURRENT) of a secret whose value comes from its spec.
// Its id is the ManagedSecret's UID, so a retry after a crash finds it instead of adding another.
// It reports whether it created the version.
func (s *Secret) CreateFirst(ctx context.Context, val Value) (bool, error) {
	if err := s.checkValue(val); err != nil {
		return false, err
	}
	id := string(s.owner.UID)
	sv, err := s.seal(ctx, id, []string{stages.Current}, val, nil)
	if err != nil {
		return false, err
	}
	err = s.st.Client.Create(ctx, sv, client.FieldOwner(FieldManager))
	if apierrors.IsAlreadyExists(err) {
		// An earlier attempt created it and the cache has not caught up: use the stored one.
		if err := s.st.APIReader.Get(ctx, client.ObjectKeyFromObject(sv), sv); err != nil {
			return false, err
		}
		s.versions = append(s.versions, *sv)
		return false, nil
	}
	if err != nil {
		return false, createError(err)
	}
	s.versions = append(s.versions, *sv)
	return true, nil
}

// UpdateStage is UpdateSecretVersionStage, with AWS's checks in AWS's order.
func (s *Secret) UpdateStage(ctx context.Context, label, moveTo, removeFrom string) error {
	if len(label) == 0 || len(label) > stages.MaxLabelLength {
		return awserr.New(awserr.InvalidParameter, "%s", stages.ErrInvalidLabel)
	}
	for _, id := range []string{removeFrom, moveTo} {
		if id != "" {
			if _, err := s.Find(ctx, id); err != nil {
				return err
			}
		}
	}
	set := s.Labels()
	if removeFrom != "" {
		if s.Version(removeFrom) == nil {
			return awserr.New(awserr.InvalidParameter, "Not a valid version: %s", removeFrom)
		}
		if !slices.Contains(set[removeFrom], label) {
			return awserr.New(awserr.InvalidParameter, "Version stage %s not found in version %s", label, removeFrom)
		}
	}
	if moveTo != "" && s.Version(moveTo) == nil {
		return awserr.New(awserr.InvalidParameter, "Not a valid version: %s", moveTo)
	}
	if moveTo == "" && removeFrom == "" {
		return awserr.New(awserr.InvalidParameter, "%s", stages.ErrNothingToMove)
	}
	if holder := set.Holder(label); moveTo != "" && holder != "" && holder != moveTo && holder != removeFrom {
		return awserr.New(awserr.InvalidParameter, "The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", label, holder)
	}
	final, err := set.Move(label, moveTo, removeFrom)
	if err != nil {
		return labelError(err)
	}
	gaining := ""
	if label == stages.Current {
		gaining = moveTo
	}
	return s.writeStages(ctx, set, final, gaining, moveTo)
}

// Rollback moves AWSCURRENT back to the AWSPREVIOUS version (AWSPREVIOUS follows).
func (s *Secret) Rollback(ctx context.Context) (string, error) {
	to, from := s.Holder(stages.Previous), s.Holder(stages.Current)
	if to == "" {
		return "", awserr.New(awserr.InvalidRequest, "there is no AWSPREVIOUS version to roll back to")
	}
	return to, s.UpdateStage(ctx, stages.Current, to, from)
}

// UnfinishedPending is the version holding AWSPENDING without AWSCURRENT, if any: a rotation in
// progress, or one that failed, which the next attempt reuses.
func (s *Secret) UnfinishedPending() string { return stages.UnfinishedPending(s.Facts()) }

// Finish is rotation's finishSecret: AWSCURRENT moves to the pending version, AWSPREVIOUS
// follows, AWSPENDING goes.
func (s *Secret) Finish(ctx context.Context, pendingID string) error {
	set := s.Labels()
	final, err := set.Finish(pendingID)
	if err != nil {
		return labelError(err)
	}
	// No intent is recorded: the mark on the pending version suffices for Recover, and the
	// finish takes two writes (three with an AWSPREVIOUS to drop).
	return s.writeStages(ctx, set, final, pendingID, "")
}

// DeleteAll deletes every version of the secret and reports how many the API server still has.
func (s *Secret) DeleteAll(ctx context.Context) (int, error) {
	sel := client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(s.owner.UID)}
	if err := s.st.Client.DeleteAllOf(ctx, &v1alpha1.SecretVersion{}, client.InNamespace(s.owner.Namespace), sel); err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	left := &metav1.PartialObjectMetadataList{}
	left.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("SecretVersionList"))
	if err := s.st.APIReader.List(ctx, left, client.InNamespace(s.owner.Namespace), sel); err != nil {
		return 0, err
	}
	s.versions = nil
	s.st.prunes.checked(s.owner.UID, time.Time{}) // forgotten
	return len(left.Items), nil
}

// CheckToken enforces AWS's ClientRequestToken rules.
func CheckToken(t string) error {
	if t == "" {
		return awserr.New(awserr.InvalidRequest, "You must provide a ClientRequestToken value. We recommend a UUID-type value.")
	}
	if len(t) < 32 || len(t) > 64 {
		return awserr.New(awserr.InvalidParameter, "ClientRequestToken must be 32-64 characters long.")
	}
	return nil
}

func (s *Secret) checkValue(v Value) error {
	if len(v.Bytes) == 0 {
		return awserr.New(awserr.InvalidRequest, "You must provide either SecretString or SecretBinary.")
	}
	limit := s.st.Limit
	if limit <= 0 || limit > value.MaxLimit {
		limit = value.MaxLimit
	}
	if err := value.CheckSize(v.Bytes, limit); err != nil {
		return value.MarkTooBig(awserr.New(awserr.InvalidParameter, "%s; nothing was written", err))
	}
	return nil
}

func (s *Secret) arn() string {
	if s.st.ARN != nil {
		return s.st.ARN(s.owner)
	}
	return s.owner.Namespace + "/" + s.owner.Name
}

// seal encrypts a value into a new version object with the given labels and annotations.
func (s *Secret) seal(ctx context.Context, id string, labels []string, val Value, annotations map[string]string) (*v1alpha1.SecretVersion, error) {
	sealed, err := envelope.Seal(ctx, s.st.Keys, s.owner.Spec.KMSKeyRef, objects.NewBinding(s.owner, id, val.Binary), val.Bytes)
	if err != nil {
		// The provider's own error stays out of the message (a plugin's text is not ours to vet).
		return nil, &EncryptionError{Err: err}
	}
	return objects.SecretVersion(s.owner, id, labels, sealed, val.Binary, annotations), nil
}

// createAndLabel creates a version and moves the labels to final with a crash-safe plan. When no
// other version's labels change, the version is born with its final labels (one write).
// Otherwise it is born with the plan's first step (when that step is its own) and its intended
// labels recorded, so an interruption at any later point is resumed by CompleteInterrupted.
func (s *Secret) createAndLabel(ctx context.Context, id string, val Value, final stages.Set) error {
	from := s.Labels()
	from[id] = nil
	gaining := ""
	if slices.Contains(final[id], stages.Current) {
		gaining = id
	}
	plan := stages.WritePlan(from, final, gaining)
	mark := s.nextMark()
	var labels []string
	annotations := map[string]string{}
	if len(plan) > 0 && plan[0].ID == id {
		labels = plan[0].Labels
		if plan[0].Marked {
			annotations[AnnotationTakingCurrent] = mark
		}
		plan = plan[1:]
	}
	alone := true
	for _, w := range plan {
		alone = alone && w.ID == id
	}
	if alone {
		labels, annotations = final[id], nil
	} else {
		annotations[AnnotationIntendedStages] = strings.Join(final[id], ",")
	}
	sv, err := s.seal(ctx, id, labels, val, annotations)
	if err != nil {
		return err
	}
	if err := s.st.Client.Create(ctx, sv, client.FieldOwner(FieldManager)); err != nil {
		return createError(err)
	}
	s.versions = append(s.versions, *sv)
	if alone {
		return nil
	}
	clear := ""
	for i, w := range plan {
		var note *string
		if i == len(plan)-1 && w.ID == id {
			note = &clear // the intent goes with the new version's last write
		}
		if err := s.patchStages(ctx, w.ID, w.Labels, markIf(w.Marked, mark), note); err != nil {
			return err
		}
	}
	return s.clearIntent(ctx, s.Version(id))
}

func createError(err error) error {
	if apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err) {
		// The API server refused the object (a value over what the schema holds, say): not a
		// failure to retry.
		return awserr.New(awserr.InvalidParameter, "the version could not be stored: the API server refused it")
	}
	return err
}

func labelError(err error) error {
	switch {
	case errors.Is(err, stages.ErrTooManyLabels):
		return awserr.New(awserr.LimitExceeded, "%s", err)
	case errors.Is(err, stages.ErrVersionExists):
		return awserr.New(awserr.ResourceExists, "%s", err)
	default:
		return awserr.New(awserr.InvalidParameter, "%s", err)
	}
}

// EncryptionError is a key provider's failure to wrap a data key: AWS's EncryptionFailure. Err is
// the provider's error, for logs.
type EncryptionError struct{ Err error }

func (e *EncryptionError) Error() string {
	return awserr.EncryptionFailure + ": Secrets Manager can't encrypt the value: the key provider is not available"
}

// Unwrap exposes the AWS error type.
func (e *EncryptionError) Unwrap() error {
	return awserr.New(awserr.EncryptionFailure, "Secrets Manager can't encrypt the value: the key provider is not available")
}

// fullVersion reads a version with its payload (the cache keeps versions without it), checking it
// is still the same object.
func (st *Store) fullVersion(ctx context.Context, v *v1alpha1.SecretVersion) (*v1alpha1.SecretVersion, error) {
	full := &v1alpha1.SecretVersion{}
	if err := st.APIReader.Get(ctx, client.ObjectKeyFromObject(v), full); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, decryptionFailure(v.Spec.VersionID)
		}
		return nil, err
	}
	if full.UID != v.UID {
		return nil, decryptionFailure(v.Spec.VersionID)
	}
	return full, nil
}
