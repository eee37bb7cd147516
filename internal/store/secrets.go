package store

import (
	"context"
	"encoding/json"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/schedule"
)

// AWS's secret-level operations (DescribeSecret, DeleteSecret, RestoreSecret, RotateSecret,
// CancelRotateSecret) on ManagedSecrets, with AWS's rules and errors. They act through the
// caller's client (the plugin's user, the API's authorised caller), so Kubernetes RBAC decides
// who may; they change only annotations the operator acts on, never a value.

// Lifecycle runs the secret-level operations with a client.
type Lifecycle struct {
	Client client.Client
	Now    func() time.Time
}

func (l Lifecycle) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Get reads a ManagedSecret: ResourceNotFoundException when there is none. Unless allowMarked,
// a secret marked for deletion is refused, as AWS refuses every operation on it but describe,
// restore and a forced delete.
func (l Lifecycle) Get(ctx context.Context, namespace, name string, allowMarked bool) (*v1alpha1.ManagedSecret, error) {
	m := &v1alpha1.ManagedSecret{}
	if err := l.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound)
		}
		return nil, err
	}
	if _, marked := m.Annotations[request.AnnotationDeleteRequested]; marked && !allowMarked {
		return nil, awserr.New(awserr.InvalidRequest, "%s", awserr.MsgMarkedForDeletion)
	}
	return m, nil
}

// DeleteOutput is DeleteSecret's answer.
type DeleteOutput struct {
	ARN          string
	Name         string
	DeletionDate time.Time
}

// Delete is DeleteSecret: marks the secret for deletion after a recovery window (window days, 0
// for the secret's spec.recoveryWindowDays or AWS's 30), or deletes it at once when forced. A
// forced delete of a secret that does not exist succeeds, as AWS answers.
func (l Lifecycle) Delete(ctx context.Context, namespace, name string, window int, force bool) (DeleteOutput, error) {
	if window != 0 && (window < request.MinRecoveryDays || window > request.MaxRecoveryDays) {
		return DeleteOutput{}, awserr.New(awserr.InvalidParameter, "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
	}
	if force && window != 0 {
		return DeleteOutput{}, awserr.New(awserr.InvalidParameter, "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	now := l.now().UTC()
	m, err := l.Get(ctx, namespace, name, true)
	if force {
		if awserr.Is(err, awserr.ResourceNotFound) {
			return DeleteOutput{Name: name, DeletionDate: now}, nil
		}
		if err != nil {
			return DeleteOutput{}, err
		}
		if err := l.Client.Delete(ctx, m, client.Preconditions{UID: &m.UID}); err != nil && !apierrors.IsNotFound(err) {
			return DeleteOutput{}, err
		}
		return DeleteOutput{ARN: m.Status.ID, Name: name, DeletionDate: now}, nil
	}
	if err != nil {
		return DeleteOutput{}, err
	}
	if _, marked := m.Annotations[request.AnnotationDeleteRequested]; marked {
		return DeleteOutput{}, awserr.New(awserr.InvalidRequest, "You tried to perform the operation on a secret that's currently marked deleted.")
	}
	if window == 0 {
		window = request.DefaultRecoveryDays
		if m.Spec.RecoveryWindowDays != nil {
			window = int(*m.Spec.RecoveryWindowDays)
		}
	}
	stamp := now.Format(time.RFC3339Nano)
	if err := l.annotate(ctx, m, map[string]any{request.AnnotationDeleteRequested: request.DeleteRequest(window, stamp)}); err != nil {
		return DeleteOutput{}, err
	}
	return DeleteOutput{ARN: m.Status.ID, Name: name, DeletionDate: now.Add(time.Duration(window) * 24 * time.Hour)}, nil
}

// Restore is RestoreSecret: cancels a scheduled deletion; restoring a secret that is not marked
// is a successful no-op.
func (l Lifecycle) Restore(ctx context.Context, namespace, name string) (*v1alpha1.ManagedSecret, error) {
	m, err := l.Get(ctx, namespace, name, true)
	if err != nil {
		return nil, err
	}
	if _, marked := m.Annotations[request.AnnotationDeleteRequested]; !marked {
		return m, nil
	}
	return m, l.annotate(ctx, m, map[string]any{request.AnnotationDeleteRequested: nil})
}

// Rotate is RotateSecret: a rotation now (the rotate-requested-at annotation, which starts one
// Job), and scheduled rotation on again after a cancellation. versionID, when not "", is the id
// the rotation's pending version gets (AWS's ClientRequestToken), and the request is AWS's: a
// retry of the request already made (the same id) changes nothing, and while another request or
// a rotation Job is under way it is refused; the check and the write are one optimistic-locked
// step, so two requests at once cannot both be accepted. The plugin's rotate (versionID "")
// always asks. It returns the request's stamp.
func (l Lifecycle) Rotate(ctx context.Context, namespace, name, versionID string) (*v1alpha1.ManagedSecret, string, error) {
	for attempt := 0; ; attempt++ {
		m, err := l.Get(ctx, namespace, name, false)
		if err != nil {
			return nil, "", err
		}
		if m.Spec.Rotation == nil {
			return nil, "", awserr.New(awserr.InvalidRequest, "No rotation is configured for this secret: set spec.rotation.policyRef to a RotationPolicy first.")
		}
		if versionID != "" {
			if m.Annotations[v1alpha1.AnnotationRotateVersionID] == versionID {
				return m, m.Annotations[v1alpha1.AnnotationRotateRequestedAt], nil
			}
			if rotationUnderWay(m, l.now()) {
				return nil, "", awserr.New(awserr.InvalidRequest, "A previous rotation isn't complete. That rotation will be reattempted.")
			}
		}
		stamp := l.now().UTC().Format(time.RFC3339Nano)
		var id any // removed: a request without one must not reuse an earlier request's id
		if versionID != "" {
			id = versionID
		}
		ann := map[string]any{v1alpha1.AnnotationRotateRequestedAt: stamp, v1alpha1.AnnotationRotateVersionID: id,
			request.AnnotationRotationCancelled: nil}
		err = l.annotateAt(ctx, m, ann, m.ResourceVersion)
		if apierrors.IsConflict(err) && attempt < 3 {
			continue // the secret changed meanwhile: look again
		}
		return m, stamp, err
	}
}

// rotationUnderWay reports whether a rotate request awaits its Job, a rotation Job is being
// served, or one is held until the workloads run AWSCURRENT (alternating users). Before the
// operator reports any rotation (a policy just attached), a request counts while it is recent: an
// old one was left from rotation attached earlier.
func rotationUnderWay(m *v1alpha1.ManagedSecret, now time.Time) bool {
	req, st := m.Annotations[v1alpha1.AnnotationRotateRequestedAt], m.Status.Rotation
	if st == nil {
		at, err := time.Parse(time.RFC3339Nano, req)
		return err == nil && now.Sub(at) < unhandledRequestAge
	}
	// A cancellation deletes the held Job, and the condition may say AwaitingRollout until the
	// rotation is turned on again: then nothing is held.
	held := false
	if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRotating); c != nil {
		_, cancelled := m.Annotations[request.AnnotationRotationCancelled]
		held = c.Reason == v1alpha1.ReasonAwaitingRollout && !cancelled
	}
	return (req != "" && req != st.LastHandledRequest) || st.ActiveJobUID != "" || held
}

// unhandledRequestAge is how long a rotate request on a secret without rotation status is taken
// to be waiting for the operator.
const unhandledRequestAge = 10 * time.Minute

// EnableRotation turns scheduled rotation on again after a cancellation (RotateSecret with
// RotateImmediately false); a no-op when it is on.
func (l Lifecycle) EnableRotation(ctx context.Context, m *v1alpha1.ManagedSecret) error {
	if _, cancelled := m.Annotations[request.AnnotationRotationCancelled]; !cancelled {
		return nil
	}
	return l.annotate(ctx, m, map[string]any{request.AnnotationRotationCancelled: nil})
}

// CancelRotation is CancelRotateSecret: scheduled rotation off, a rotation in progress cancelled;
// the labels are untouched. A secret without rotation is refused, as AWS refuses it.
func (l Lifecycle) CancelRotation(ctx context.Context, namespace, name string) (*v1alpha1.ManagedSecret, error) {
	m, err := l.Get(ctx, namespace, name, false)
	if err != nil {
		return nil, err
	}
	if m.Spec.Rotation == nil {
		return nil, awserr.New(awserr.InvalidRequest, "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.")
	}
	return m, l.annotate(ctx, m, map[string]any{request.AnnotationRotationCancelled: "true"})
}

// annotate merge-patches annotations (nil removes one).
func (l Lifecycle) annotate(ctx context.Context, m *v1alpha1.ManagedSecret, ann map[string]any) error {
	return l.annotateAt(ctx, m, ann, "")
}

// annotateAt is annotate under an optimistic lock on resourceVersion (none when "").
func (l Lifecycle) annotateAt(ctx context.Context, m *v1alpha1.ManagedSecret, ann map[string]any, resourceVersion string) error {
	meta := map[string]any{"annotations": ann}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	return l.Client.Patch(ctx, m, client.RawPatch(types.MergePatchType, patch))
}

// Description is DescribeSecret's answer (plus where the secret lives in Kubernetes). Empty
// members are omitted, never printed as {} or null.
type Description struct {
	ARN                string              `json:"ARN,omitempty"`
	Name               string              `json:"Name"`
	Namespace          string              `json:"Namespace,omitempty"`
	Description        string              `json:"Description,omitempty"`
	KmsKeyID           string              `json:"KmsKeyId,omitempty"`
	RotationEnabled    *bool               `json:"RotationEnabled,omitempty"`
	RotationRules      *RotationRules      `json:"RotationRules,omitempty"`
	RotationPolicy     string              `json:"RotationPolicy,omitempty"`
	RotationStrategy   string              `json:"RotationStrategy,omitempty"`
	LastRotatedDate    *time.Time          `json:"LastRotatedDate,omitempty"`
	LastChangedDate    *time.Time          `json:"LastChangedDate,omitempty"`
	LastAccessedDate   *time.Time          `json:"LastAccessedDate,omitempty"`
	DeletedDate        *time.Time          `json:"DeletedDate,omitempty"`
	NextRotationDate   *time.Time          `json:"NextRotationDate,omitempty"`
	Tags               []Tag               `json:"Tags,omitempty"`
	VersionIDsToStages map[string][]string `json:"VersionIdsToStages,omitempty"`
	CreatedDate        *time.Time          `json:"CreatedDate,omitempty"`
	TargetSecretName   string              `json:"TargetSecretName,omitempty"`
}

// RotationRules are AWS's, with the Kubernetes cron form alongside when the policy uses it.
type RotationRules struct {
	AutomaticallyAfterDays int    `json:"AutomaticallyAfterDays,omitempty"`
	ScheduleExpression     string `json:"ScheduleExpression,omitempty"`
	Duration               string `json:"Duration,omitempty"`
	Cron                   string `json:"Cron,omitempty"`
	TimeZone               string `json:"TimeZone,omitempty"`
}

// Tag is AWS's Tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// Describe is DescribeSecret for a ManagedSecret, its versions' labels and its policy (nil when
// it has none or it is missing).
func Describe(m *v1alpha1.ManagedSecret, versions []v1alpha1.SecretVersion, policy *v1alpha1.RotationPolicy) Description {
	d := Description{ARN: m.Status.ID, Name: m.Name, Namespace: m.Namespace, Description: m.Spec.Description,
		KmsKeyID: m.Spec.KMSKeyRef, TargetSecretName: m.Status.TargetSecretName}
	created := m.CreationTimestamp.UTC()
	d.CreatedDate = &created
	// In the order the tags were first added (spec.tags keeps it), as AWS answers them.
	for _, t := range m.Spec.Tags {
		d.Tags = append(d.Tags, Tag{Key: t.Key, Value: t.Value})
	}
	for _, v := range versions {
		if len(v.Spec.Stages) > 0 {
			if d.VersionIDsToStages == nil {
				d.VersionIDsToStages = map[string][]string{}
			}
			d.VersionIDsToStages[v.Spec.VersionID] = v.Spec.Stages
		}
	}
	if rot := m.Spec.Rotation; rot != nil {
		_, cancelled := m.Annotations[request.AnnotationRotationCancelled]
		enabled := !cancelled
		d.RotationEnabled, d.RotationPolicy = &enabled, rot.PolicyRef.Name
		if policy != nil {
			d.RotationStrategy = policy.Spec.Strategy
			d.RotationRules = rulesOf(policy)
		}
	}
	st := m.Status
	d.LastRotatedDate, d.LastChangedDate, d.LastAccessedDate = utc(st.LastRotatedTime), utc(st.LastChangedTime), utc(st.LastAccessedDate)
	d.NextRotationDate, d.DeletedDate = utc(st.NextRotationTime), utc(st.DeletionTime)
	return d
}

func rulesOf(p *v1alpha1.RotationPolicy) *RotationRules {
	sch := p.Spec.Schedule
	r := &RotationRules{Duration: sch.Window, Cron: sch.Cron, TimeZone: sch.TimeZone, ScheduleExpression: sch.Expression}
	if sch.EveryDays != nil {
		r.AutomaticallyAfterDays = int(*sch.EveryDays)
	}
	spec := schedule.Spec{Cron: sch.Cron, Expression: sch.Expression, TimeZone: sch.TimeZone, Window: sch.Window}
	if sch.EveryDays != nil {
		spec.EveryDays = int(*sch.EveryDays)
	}
	if parsed, err := schedule.Parse(spec); err == nil {
		days, expr, dur := parsed.AWSRules()
		if days > 0 {
			r.AutomaticallyAfterDays = days
		}
		if expr != "" {
			r.ScheduleExpression = expr
		}
		if dur != "" {
			r.Duration = dur
		}
	}
	return r
}

func utc(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := t.UTC()
	return &v
}
