package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awsapi/wire"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/password"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
)

// The operations. Each maps to a Kubernetes verb on managedsecrets (or its value or rotation
// subresource), checked for the caller with a SubjectAccessReview (README, "AWS API").
var (
	accessValueRead  = Access{Verb: "get", Resource: "managedsecrets", Subresource: "value"}
	accessValueWrite = Access{Verb: "update", Resource: "managedsecrets", Subresource: "value"}
	accessRead       = Access{Verb: "get", Resource: "managedsecrets"}
	accessList       = Access{Verb: "list", Resource: "managedsecrets"}
	accessCreate     = Access{Verb: "create", Resource: "managedsecrets"}
	accessUpdate     = Access{Verb: "update", Resource: "managedsecrets"}
	accessDelete     = Access{Verb: "delete", Resource: "managedsecrets"}
	accessRotation   = Access{Verb: "update", Resource: "managedsecrets", Subresource: "rotation"}
)

func ts(t *metav1.Time) *wire.Timestamp {
	if t == nil {
		return nil
	}
	return wire.NewTimestamp(t.Time)
}

func (s *Server) getSecretValue(ctx context.Context, id Identity, in wire.GetSecretValueInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessValueRead, false)
	if err != nil {
		return nil, err
	}
	return s.value(ctx, m, deref(in.VersionID), deref(in.VersionStage))
}

// value reads one version of a secret, as GetSecretValue answers it, and records the day of the
// access (at most one write a day).
func (s *Server) value(ctx context.Context, m *v1alpha1.ManagedSecret, versionID, stage string) (*wire.GetSecretValueOutput, error) {
	sec, err := s.Store.Load(ctx, m)
	if err != nil {
		return nil, err
	}
	val, v, err := sec.Get(ctx, versionID, stage)
	if err != nil {
		return nil, err
	}
	out := &wire.GetSecretValueOutput{ARN: s.arn(m), Name: objects.AWSName(m), VersionID: v.Spec.VersionID,
		VersionStages: v.Spec.Stages, CreatedDate: wire.NewTimestamp(v.CreationTimestamp.Time)}
	if val.Binary {
		out.SecretBinary = val.Bytes
	} else {
		str := string(val.Bytes)
		out.SecretString = &str
		val.Clear()
	}
	s.accessed(ctx, m)
	return out, nil
}

// accessed sets status.lastAccessedDate to today when it is not already.
func (s *Server) accessed(ctx context.Context, m *v1alpha1.ManagedSecret) {
	day := metav1.NewTime(s.now().UTC().Truncate(24 * time.Hour))
	if m.Status.LastAccessedDate != nil && m.Status.LastAccessedDate.Equal(&day) {
		return
	}
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"lastAccessedDate": day}})
	_ = s.Direct.Status().Patch(ctx, m.DeepCopy(), client.RawPatch(types.MergePatchType, patch))
}

func (s *Server) batchGetSecretValue(ctx context.Context, id Identity, in wire.BatchGetSecretValueInput) (any, error) {
	out := wire.BatchGetSecretValueOutput{}
	ids := in.SecretIDList
	if in.Filters != nil {
		if err := s.allow(ctx, id, accessList, "", "secrets"); err != nil {
			return nil, err
		}
		all, err := s.listNamespace(ctx, id.Namespace)
		if err != nil {
			return nil, err
		}
		var fs []wire.SecretFacts
		for i := range all {
			fs = append(fs, facts(&all[i]))
		}
		page, next, err := wire.BatchGetPage(fs, in, s.pageKey(), id.User())
		if err != nil {
			return nil, err
		}
		out.NextToken = next
		for _, f := range page {
			ids = append(ids, f.Name)
		}
	}
	for _, secretID := range ids {
		m, err := s.resolve(ctx, id, secretID, accessValueRead, false)
		if err == nil {
			var v *wire.GetSecretValueOutput
			if v, err = s.value(ctx, m, "", ""); err == nil {
				out.SecretValues = append(out.SecretValues, wire.SecretValueEntry(*v))
				continue
			}
		}
		if awserr.CodeOf(err) == "" {
			return nil, err
		}
		out.Errors = append(out.Errors, wire.BatchError(secretID, err))
	}
	return out, nil
}

// getResourcePolicy answers that the secret has no resource policy (RBAC decides access), with
// its ARN and name, as AWS answers for a secret without one; tools that read the policy on every
// refresh (Terraform's aws_secretsmanager_secret) work.
func (s *Server) getResourcePolicy(ctx context.Context, id Identity, in wire.GetResourcePolicyInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessRead, true)
	if err != nil {
		return nil, err
	}
	return wire.GetResourcePolicyOutput{ARN: s.arn(m), Name: objects.AWSName(m)}, nil
}

func (s *Server) describeSecret(ctx context.Context, id Identity, in wire.DescribeSecretInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessRead, true)
	if err != nil {
		return nil, err
	}
	sec, err := s.Store.Load(ctx, m)
	if err != nil {
		return nil, err
	}
	d := store.Describe(m, sec.Versions(), s.policy(ctx, m))
	out := wire.DescribeSecretOutput{ARN: s.arn(m), Name: objects.AWSName(m), Description: d.Description, KmsKeyID: d.KmsKeyID,
		RotationEnabled: d.RotationEnabled, VersionIDsToStages: d.VersionIDsToStages,
		LastRotatedDate: ts(m.Status.LastRotatedTime), LastChangedDate: ts(m.Status.LastChangedTime),
		LastAccessedDate: ts(m.Status.LastAccessedDate), DeletedDate: deletedDate(m),
		NextRotationDate: ts(m.Status.NextRotationTime), CreatedDate: wire.NewTimestamp(m.CreationTimestamp.Time)}
	out.Tags = wireTags(m.Spec.Tags)
	out.RotationLambdaARN, out.RotationRules = d.RotationPolicy, rotationRules(d.RotationRules)
	return out, nil
}

// rotationRules is the wire form of a policy's rules (nil without a policy).
func rotationRules(r *store.RotationRules) *wire.RotationRules {
	if r == nil {
		return nil
	}
	out := &wire.RotationRules{}
	if r.AutomaticallyAfterDays > 0 {
		days := int64(r.AutomaticallyAfterDays)
		out.AutomaticallyAfterDays = &days
	}
	if r.ScheduleExpression != "" {
		out.ScheduleExpression = &r.ScheduleExpression
	}
	if r.Duration != "" {
		out.Duration = &r.Duration
	}
	return out
}

func (s *Server) policy(ctx context.Context, m *v1alpha1.ManagedSecret) *v1alpha1.RotationPolicy {
	if m.Spec.Rotation == nil {
		return nil
	}
	p := &v1alpha1.RotationPolicy{}
	if err := s.Cache.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.Rotation.PolicyRef.Name}, p); err != nil {
		return nil
	}
	return p
}

func (s *Server) listSecrets(ctx context.Context, id Identity, in wire.ListSecretsInput) (any, error) {
	if err := s.allow(ctx, id, accessList, "", "secrets"); err != nil {
		return nil, err
	}
	all, err := s.listNamespace(ctx, id.Namespace)
	if err != nil {
		return nil, err
	}
	byName := map[string]*v1alpha1.ManagedSecret{}
	var fs []wire.SecretFacts
	for i := range all {
		f := facts(&all[i])
		byName[f.Name] = &all[i]
		fs = append(fs, f)
	}
	page, next, err := wire.ListSecretsPage(fs, in, s.pageKey(), id.User())
	if err != nil {
		return nil, err
	}
	out := wire.ListSecretsOutput{NextToken: next}
	for _, f := range page {
		m := byName[f.Name]
		e := wire.SecretListEntry{ARN: s.arn(m), Name: f.Name, Description: f.Description, KmsKeyID: m.Spec.KMSKeyRef, Tags: f.Tags,
			LastChangedDate: ts(m.Status.LastChangedTime), LastAccessedDate: ts(m.Status.LastAccessedDate),
			LastRotatedDate: ts(m.Status.LastRotatedTime), NextRotationDate: ts(m.Status.NextRotationTime),
			DeletedDate: deletedDate(m), CreatedDate: wire.NewTimestamp(m.CreationTimestamp.Time)}
		if m.Spec.Rotation != nil {
			_, cancelled := m.Annotations[request.AnnotationRotationCancelled]
			enabled := !cancelled
			e.RotationEnabled = &enabled
			// ListSecrets carries DescribeSecret's rotation fields, as AWS's does.
			d := store.Describe(m, nil, s.policy(ctx, m))
			e.RotationLambdaARN, e.RotationRules = d.RotationPolicy, rotationRules(d.RotationRules)
		}
		for _, v := range m.Status.Versions {
			if e.SecretVersionsToStages == nil {
				e.SecretVersionsToStages = map[string][]string{}
			}
			e.SecretVersionsToStages[v.VersionID] = v.Stages
		}
		out.SecretList = append(out.SecretList, e)
	}
	return out, nil
}

func (s *Server) listSecretVersionIDs(ctx context.Context, id Identity, in wire.ListSecretVersionIDsInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessRead, false)
	if err != nil {
		return nil, err
	}
	sec, err := s.Store.Load(ctx, m)
	if err != nil {
		return nil, err
	}
	if in.IncludeDeprecated != nil && *in.IncludeDeprecated {
		if err := sec.WithDeprecated(ctx); err != nil {
			return nil, err
		}
	}
	keys := map[string]string{}
	var vs []wire.VersionFacts
	for _, v := range sec.Versions() {
		vs = append(vs, wire.VersionFacts{VersionID: v.Spec.VersionID, Stages: v.Spec.Stages, CreatedDate: v.CreationTimestamp.Time})
		if v.Spec.Payload != nil {
			keys[v.Spec.VersionID] = v.Spec.Payload.KeyID
		}
	}
	page, next, err := wire.ListVersionsPage(vs, in, s.pageKey(), id.User()+"\x00"+string(m.UID))
	if err != nil {
		return nil, err
	}
	out := wire.ListSecretVersionIDsOutput{ARN: s.arn(m), Name: objects.AWSName(m), NextToken: next}
	for _, v := range page {
		e := wire.SecretVersionsListEntry{VersionID: v.VersionID, VersionStages: v.Stages, CreatedDate: wire.NewTimestamp(v.CreatedDate)}
		if k := keys[v.VersionID]; k != "" {
			e.KmsKeyIDs = []string{k}
		}
		out.Versions = append(out.Versions, e)
	}
	return out, nil
}

// valueOf is a SecretString or SecretBinary as the store holds it.
func valueOf(str *string, bin []byte) ([]byte, bool) {
	if bin != nil {
		return bin, true
	}
	if str != nil {
		return []byte(*str), false
	}
	return nil, false
}

func (s *Server) createSecret(ctx context.Context, id Identity, in wire.CreateSecretInput) (any, error) {
	if err := s.allow(ctx, id, accessCreate, wire.ObjectName(in.Name), in.Name); err != nil {
		return nil, err
	}
	val, binary := valueOf(in.SecretString, in.SecretBinary)
	if val != nil {
		if err := s.allow(ctx, id, accessValueWrite, wire.ObjectName(in.Name), in.Name); err != nil {
			return nil, err
		}
	}
	token := deref(in.ClientRequestToken)
	if existing, err := s.lookup(ctx, id.Namespace, in.Name); err != nil {
		return nil, err
	} else if existing != nil {
		return s.createExisting(ctx, existing, token, val, binary)
	}
	m := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace, Name: wire.ObjectName(in.Name)},
		Spec: v1alpha1.ManagedSecretSpec{Description: deref(in.Description), KMSKeyRef: deref(in.KmsKeyID)}}
	if m.Name != in.Name {
		m.Annotations = map[string]string{v1alpha1.AnnotationAWSName: in.Name}
	}
	tags, err := mergeTags(nil, in.Tags)
	if err != nil {
		return nil, err
	}
	m.Spec.Tags = tags
	if err := s.Direct.Create(ctx, m, client.FieldOwner("kube-secrets-manager-api")); err != nil {
		return nil, kubeErr(err)
	}
	s.settle(ctx, m)
	out := wire.CreateSecretOutput{ARN: s.arn(m), Name: in.Name}
	if val == nil {
		return out, nil
	}
	if token == "" {
		token = uuid.NewString()
	}
	res, err := s.writer.do(ctx, m, request.Request{Op: request.OpPut, ClientRequestToken: token, Binary: binary}, val)
	if err != nil {
		return nil, err
	}
	out.VersionID = res.VersionID
	return out, nil
}

// createExisting answers CreateSecret for a name in use: the same token and value is a success
// (AWS's idempotency), anything else ResourceExistsException (or, pending deletion, AWS's
// InvalidRequestException).
func (s *Server) createExisting(ctx context.Context, m *v1alpha1.ManagedSecret, token string, val []byte, binary bool) (any, error) {
	if _, marked := m.Annotations[request.AnnotationDeleteRequested]; marked {
		return nil, awserr.New(awserr.InvalidRequest, "You can't create this secret because a secret with this name is already scheduled for deletion.")
	}
	exists := awserr.New(awserr.ResourceExists, "The operation failed because the secret %s already exists.", objects.AWSName(m))
	if token == "" || val == nil {
		return nil, exists
	}
	sec, err := s.Store.Load(ctx, m)
	if err != nil {
		return nil, err
	}
	v, err := sec.Find(ctx, token)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, exists
	}
	got, err := sec.Open(ctx, v)
	if err != nil {
		return nil, err
	}
	same := got.Binary == binary && string(got.Bytes) == string(val)
	got.Clear()
	if !same {
		return nil, awserr.New(awserr.ResourceExists, "You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", token, s.arn(m))
	}
	return wire.CreateSecretOutput{ARN: s.arn(m), Name: objects.AWSName(m), VersionID: token}, nil
}

func (s *Server) putSecretValue(ctx context.Context, id Identity, in wire.PutSecretValueInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessValueWrite, false)
	if err != nil {
		return nil, err
	}
	val, binary := valueOf(in.SecretString, in.SecretBinary)
	token := deref(in.ClientRequestToken)
	if err := store.CheckToken(token); err != nil {
		return nil, err
	}
	res, err := s.writer.do(ctx, m, request.Request{Op: request.OpPut, ClientRequestToken: token, Stages: in.VersionStages, Binary: binary}, val)
	if err != nil {
		return nil, err
	}
	return wire.PutSecretValueOutput{ARN: s.arn(m), Name: objects.AWSName(m), VersionID: res.VersionID, VersionStages: res.Stages}, nil
}

func (s *Server) updateSecret(ctx context.Context, id Identity, in wire.UpdateSecretInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessUpdate, false)
	if err != nil {
		return nil, err
	}
	val, binary := valueOf(in.SecretString, in.SecretBinary)
	if val != nil {
		if err := s.allow(ctx, id, accessValueWrite, m.Name, in.SecretID); err != nil {
			return nil, err
		}
	}
	spec := map[string]any{}
	if in.Description != nil {
		spec["description"] = *in.Description
	}
	if in.KmsKeyID != nil {
		spec["kmsKeyRef"] = *in.KmsKeyID
	}
	if len(spec) > 0 {
		patch, _ := json.Marshal(map[string]any{"spec": spec})
		if err := s.Direct.Patch(ctx, m, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("kube-secrets-manager-api")); err != nil {
			return nil, kubeErr(err)
		}
		s.settle(ctx, m)
	}
	out := wire.UpdateSecretOutput{ARN: s.arn(m), Name: objects.AWSName(m)}
	if val == nil {
		return out, nil
	}
	token := deref(in.ClientRequestToken)
	if token == "" {
		token = uuid.NewString()
	}
	res, err := s.writer.do(ctx, m, request.Request{Op: request.OpPut, ClientRequestToken: token, Binary: binary}, val)
	if err != nil {
		return nil, err
	}
	out.VersionID = res.VersionID
	return out, nil
}

func (s *Server) updateSecretVersionStage(ctx context.Context, id Identity, in wire.UpdateSecretVersionStageInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessValueWrite, false)
	if err != nil {
		return nil, err
	}
	_, err = s.writer.do(ctx, m, request.Request{Op: request.OpUpdateStage, Stage: in.VersionStage,
		MoveTo: deref(in.MoveToVersionID), RemoveFrom: deref(in.RemoveFromVersionID)}, nil)
	if err != nil {
		return nil, err
	}
	return wire.UpdateSecretVersionStageOutput{ARN: s.arn(m), Name: objects.AWSName(m)}, nil
}

func (s *Server) deleteSecret(ctx context.Context, id Identity, in wire.DeleteSecretInput) (any, error) {
	force := in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery
	window := 0
	if in.RecoveryWindowInDays != nil {
		window = int(*in.RecoveryWindowInDays)
	}
	m, err := s.resolve(ctx, id, in.SecretID, accessDelete, true)
	if force && awserr.Is(err, awserr.ResourceNotFound) {
		// A forced delete of a secret that does not exist succeeds, as AWS answers: the name as
		// given, and an ARN (the one given, or one shaped like a new secret's).
		arn := in.SecretID
		if !strings.HasPrefix(arn, "arn:") {
			arn = objects.ARN(s.ARN, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: id.Namespace,
				Annotations: map[string]string{v1alpha1.AnnotationAWSName: in.SecretID, v1alpha1.AnnotationSecretID: uuid.NewString()}}})
		}
		return wire.DeleteSecretOutput{ARN: arn, Name: in.SecretID, DeletionDate: wire.NewTimestamp(s.now())}, nil
	}
	if err != nil {
		return nil, err
	}
	out, err := store.Lifecycle{Client: s.Direct, Now: s.Now}.Delete(ctx, m.Namespace, m.Name, window, force)
	if err != nil {
		return nil, err
	}
	return wire.DeleteSecretOutput{ARN: s.arn(m), Name: objects.AWSName(m), DeletionDate: wire.NewTimestamp(out.DeletionDate)}, nil
}

func (s *Server) restoreSecret(ctx context.Context, id Identity, in wire.RestoreSecretInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessUpdate, true)
	if err != nil {
		return nil, err
	}
	if _, err := (store.Lifecycle{Client: s.Direct, Now: s.Now}).Restore(ctx, m.Namespace, m.Name); err != nil {
		return nil, err
	}
	return wire.RestoreSecretOutput{ARN: s.arn(m), Name: objects.AWSName(m)}, nil
}

func (s *Server) tagResource(ctx context.Context, id Identity, in wire.TagResourceInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessUpdate, false)
	if err != nil {
		return nil, err
	}
	tags, err := mergeTags(m.Spec.Tags, in.Tags)
	if err != nil {
		return nil, err
	}
	return wire.TagResourceOutput{}, s.setTags(ctx, m, tags)
}

func (s *Server) untagResource(ctx context.Context, id Identity, in wire.UntagResourceInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessUpdate, false)
	if err != nil {
		return nil, err
	}
	var tags []v1alpha1.Tag
	for _, t := range m.Spec.Tags {
		if !slices.Contains(in.TagKeys, t.Key) {
			tags = append(tags, t)
		}
	}
	return wire.UntagResourceOutput{}, s.setTags(ctx, m, tags)
}

// setTags writes spec.tags (a merge patch of that field alone; admission checks AWS's tag rules).
func (s *Server) setTags(ctx context.Context, m *v1alpha1.ManagedSecret, tags []v1alpha1.Tag) error {
	list := []map[string]string{}
	for _, t := range tags {
		list = append(list, map[string]string{"key": t.Key, "value": t.Value})
	}
	// An empty list, not null: a secret whose tags were all removed answers Tags: [], one never
	// tagged none, as AWS answers them.
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"tags": list}})
	if err := s.Direct.Patch(ctx, m, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("kube-secrets-manager-api")); err != nil {
		return kubeErr(err)
	}
	s.settle(ctx, m)
	return nil
}

// mergeTags adds tags (replacing the value of a key already there) with AWS's rules: at most 50,
// none starting with aws:.
func mergeTags(have []v1alpha1.Tag, add []wire.Tag) ([]v1alpha1.Tag, error) {
	out := slices.Clone(have)
	for _, t := range add {
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return nil, awserr.New(awserr.InvalidParameter, "Invalid tag key: tag keys starting with aws: are reserved.")
		}
		i := slices.IndexFunc(out, func(x v1alpha1.Tag) bool { return x.Key == t.Key })
		if i >= 0 {
			out[i].Value = t.Value
			continue
		}
		out = append(out, v1alpha1.Tag{Key: t.Key, Value: t.Value})
	}
	if len(out) > 50 {
		return nil, awserr.New(awserr.InvalidParameter, "Number of tags exceeds the limit of 50.")
	}
	return out, nil
}

// rotateSecret follows AWS's RotateSecret (reference §2.10, §3.3): RotationLambdaARN names the
// RotationPolicy (by its last segment); a rotation already under way is refused unless this is a
// retry of the call that started it (same ClientRequestToken); a policy that does not exist is
// AccessDeniedException and nothing is persisted; the rotation started now gives its pending
// version the token as id, which the answer's VersionId names. RotateImmediately false turns
// scheduled rotation on (again, after CancelRotateSecret) without rotating.
func (s *Server) rotateSecret(ctx context.Context, id Identity, in wire.RotateSecretInput) (any, error) {
	if err := in.CheckToken(); err != nil {
		return nil, err
	}
	m, err := s.resolve(ctx, id, in.SecretID, accessRotation, false)
	if err != nil {
		return nil, err
	}
	if err := in.CheckRotation(); err != nil {
		return nil, err
	}
	if in.RotationRules != nil {
		return nil, awserr.New(awserr.InvalidParameter, "RotationRules are set on the RotationPolicy the secret names (spec.rotation.policyRef), which many secrets may share; pass RotationLambdaARN with the policy's name to attach one")
	}
	policyName := ""
	if m.Spec.Rotation != nil {
		policyName = m.Spec.Rotation.PolicyRef.Name
	}
	if arn := deref(in.RotationLambdaARN); arn != "" {
		policyName = arn[strings.LastIndexAny(arn, ":/")+1:]
	}
	if policyName == "" {
		return nil, awserr.New(awserr.InvalidRequest, "No Lambda rotation function ARN is associated with this secret.")
	}
	token := deref(in.ClientRequestToken)
	immediately := in.RotateImmediatelyOrDefault()
	out := wire.RotateSecretOutput{ARN: s.arn(m), Name: objects.AWSName(m)}
	if immediately {
		out.VersionID = token
	}
	sec, err := s.Store.Load(ctx, m)
	if err != nil {
		return nil, err
	}
	if pending := sec.Holder(stages.Pending); pending != "" && pending != sec.Holder(stages.Current) {
		if pending == token {
			return out, nil // a retry of the call that started this rotation
		}
		return nil, awserr.New(awserr.InvalidRequest, "A previous rotation isn't complete. That rotation will be reattempted.")
	}
	if immediately {
		done, err := sec.Find(ctx, token) // deprecated versions included
		if err != nil {
			return nil, err
		}
		if done != nil {
			return out, nil // a retry of a call whose rotation already ran: no second rotation
		}
	}
	// A policy that does not exist, or that the operator refuses (pod settings it does not allow,
	// an invalid schedule), cannot run: AWS's answer for a function it cannot invoke, and nothing
	// is persisted.
	pol := &v1alpha1.RotationPolicy{}
	err = s.Cache.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: policyName}, pol)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	ready := meta.FindStatusCondition(pol.Status.Conditions, v1alpha1.ConditionReady)
	if err != nil || (ready != nil && ready.Status == metav1.ConditionFalse && ready.ObservedGeneration == pol.Generation) {
		return nil, awserr.New(awserr.AccessDenied, "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.")
	}
	if immediately && pol.Spec.Suspend != nil && *pol.Spec.Suspend {
		return nil, awserr.New(awserr.InvalidRequest, "RotationPolicy %s is suspended: no rotation starts until it is resumed.", policyName)
	}
	if m.Spec.Rotation == nil || m.Spec.Rotation.PolicyRef.Name != policyName {
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"rotation": map[string]any{"policyRef": map[string]string{"name": policyName}}}})
		if err := s.Direct.Patch(ctx, m, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("kube-secrets-manager-api")); err != nil {
			return nil, kubeErr(err)
		}
		s.settle(ctx, m)
		m.Spec.Rotation = &v1alpha1.RotationSpec{PolicyRef: v1alpha1.LocalObjectReference{Name: policyName}}
	}
	lc := store.Lifecycle{Client: s.Direct, Now: s.Now}
	if immediately {
		_, _, err = lc.Rotate(ctx, m.Namespace, m.Name, token)
	} else {
		err = lc.EnableRotation(ctx, m)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Server) cancelRotateSecret(ctx context.Context, id Identity, in wire.CancelRotateSecretInput) (any, error) {
	m, err := s.resolve(ctx, id, in.SecretID, accessRotation, false)
	if err != nil {
		return nil, err
	}
	if _, err := (store.Lifecycle{Client: s.Direct, Now: s.Now}).CancelRotation(ctx, m.Namespace, m.Name); err != nil {
		return nil, err
	}
	return wire.CancelRotateSecretOutput{ARN: s.arn(m), Name: objects.AWSName(m), VersionID: m.Status.PendingVersionID}, nil
}

func getRandomPassword(in wire.GetRandomPasswordInput) (any, error) {
	p := password.Policy{ExcludeCharacters: deref(in.ExcludeCharacters), ExcludeNumbers: boolOf(in.ExcludeNumbers),
		ExcludePunctuation: boolOf(in.ExcludePunctuation), ExcludeUppercase: boolOf(in.ExcludeUppercase),
		ExcludeLowercase: boolOf(in.ExcludeLowercase), IncludeSpace: boolOf(in.IncludeSpace), RequireEachIncludedType: in.RequireEachIncludedType}
	if in.PasswordLength != nil {
		n := int(*in.PasswordLength)
		p.Length = &n
	}
	pw, err := p.Generate()
	if errors.Is(err, password.ErrTooShort) {
		return nil, awserr.New(awserr.InvalidParameter, "Password length is too short based on the required types.") // AWS's words
	}
	if err != nil {
		return nil, awserr.New(awserr.InvalidParameter, "%s", err)
	}
	return wire.GetRandomPasswordOutput{RandomPassword: pw}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func boolOf(b *bool) bool { return b != nil && *b }

// deletedDate is when a secret marked for deletion is purged: from the mark itself, so the call
// after DeleteSecret sees it before the reconcile writes status.deletionTime.
func deletedDate(m *v1alpha1.ManagedSecret) *wire.Timestamp {
	mark, ok := m.Annotations[request.AnnotationDeleteRequested]
	if !ok {
		return nil
	}
	days, err := request.ParseRecoveryDays(mark)
	_, stamp, _ := strings.Cut(mark, "/")
	at, perr := time.Parse(time.RFC3339Nano, stamp)
	if err != nil || perr != nil {
		return ts(m.Status.DeletionTime)
	}
	return wire.NewTimestamp(at.Add(time.Duration(days) * 24 * time.Hour))
}
