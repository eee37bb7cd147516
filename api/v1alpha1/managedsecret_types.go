package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ManagedSecretSpec is the intent for one secret: where its first value comes from, where it is
// projected, and how it is rotated. A value never appears here.
// +kubebuilder:validation:XValidation:rule="!(has(self.generate) && has(self.fromSecret))",message="set at most one value source: either generate or fromSecret, not both"
type ManagedSecretSpec struct {
	// description of the secret, up to 2048 characters.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Description string `json:"description,omitempty"`

	// tags follow AWS's tag rules: at most 50, unique keys of 1-128 characters that do not start
	// with "aws:", values of up to 256 characters.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MaxItems=50
	Tags []Tag `json:"tags,omitempty"`

	// kmsKeyRef names the key-encryption key for new versions; empty means the operator's default.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	KMSKeyRef string `json:"kmsKeyRef,omitempty"`

	// generate creates the first value: a JSON object of the fixed fields plus a random password.
	// +optional
	Generate *GenerateSource `json:"generate,omitempty"`

	// fromSecret imports an existing Secret's data, once, as the first value.
	// +optional
	FromSecret *LocalObjectReference `json:"fromSecret,omitempty"`

	// target describes the Kubernetes Secret the AWSCURRENT version is projected into.
	// +optional
	Target *TargetSpec `json:"target,omitempty"`

	// rotation attaches a RotationPolicy.
	// +optional
	Rotation *RotationSpec `json:"rotation,omitempty"`

	// rollout names workloads restarted (as by kubectl rollout restart) after AWSCURRENT moves.
	// +optional
	Rollout *RolloutSpec `json:"rollout,omitempty"`

	// recoveryWindowDays is how long a deleted secret can be restored, 7-30 days (default 30).
	// +optional
	// +kubebuilder:validation:Minimum=7
	// +kubebuilder:validation:Maximum=30
	RecoveryWindowDays *int32 `json:"recoveryWindowDays,omitempty"`
}

// Tag is an AWS-style tag.
type Tag struct {
	// key of the tag: 1-128 letters, digits, spaces and _ . : / = + - @, not starting with "aws:".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[\\\\p{L}\\\\p{Z}\\\\p{N}_.:/=+\\\\-@]+$')",message="tag keys may contain only letters, digits, spaces and _ . : / = + - @"
	// +kubebuilder:validation:XValidation:rule="!self.lowerAscii().startsWith('aws:')",message="tag keys starting with aws: are reserved"
	Key string `json:"key"`

	// value of the tag, up to 256 characters.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[\\\\p{L}\\\\p{Z}\\\\p{N}_.:/=+\\\\-@]*$')",message="tag values may contain only letters, digits, spaces and _ . : / = + - @"
	Value string `json:"value,omitempty"`
}

// GenerateSource describes a generated first value: a JSON object holding the fixed fields and a
// password made with GetRandomPassword's rules.
type GenerateSource struct {
	// fields are fixed, non-secret entries of the JSON value, such as engine, host, port, username
	// and dbname.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Fields map[string]string `json:"fields,omitempty"`

	// passwordKey is the JSON field that holds the generated password (default "password").
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PasswordKey string `json:"passwordKey,omitempty"`

	// passwordPolicy sets how the password is generated.
	// +optional
	PasswordPolicy *PasswordPolicy `json:"passwordPolicy,omitempty"`
}

// TargetSpec describes the projected Secret.
// +kubebuilder:validation:XValidation:rule="!has(self.type) || (self.type != 'kubernetes.io/service-account-token' && self.type != 'bootstrap.kubernetes.io/token')",message="target.type may not be kubernetes.io/service-account-token or bootstrap.kubernetes.io/token: those Secrets grant cluster credentials"
type TargetSpec struct {
	// name of the projected Secret (default: the ManagedSecret's name). It must be a valid Secret
	// name, and no Secret of that name may exist unless this ManagedSecret created it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="target.name must be a valid Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	Name string `json:"name,omitempty"`

	// type of the projected Secret (default Opaque).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Type string `json:"type,omitempty"`

	// labels added to the projected Secret.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations added to the projected Secret.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// key, when set, puts the whole value under this one key instead of one key per top-level JSON
	// field. A value that is not a JSON object always goes under one key (default "value").
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`

	// includePrevious, when true, also projects the AWSPREVIOUS value: each of its keys again with
	// the suffix ".previous" (password and password.previous), so an application can accept both
	// during a rotation. Without an AWSPREVIOUS version only the current keys are projected.
	// +optional
	IncludePrevious *bool `json:"includePrevious,omitempty"`
}

// RotationSpec attaches a RotationPolicy.
type RotationSpec struct {
	// policyRef names a RotationPolicy in the same namespace.
	// +required
	PolicyRef LocalObjectReference `json:"policyRef"`
}

// VersionSummary is one version and its staging labels, as in DescribeSecret's VersionIdsToStages.
type VersionSummary struct {
	// versionId of the version.
	VersionID string `json:"versionId"`
	// stages attached to the version.
	// +optional
	// +listType=atomic
	Stages []string `json:"stages,omitempty"`
	// createdTime of the version.
	// +optional
	CreatedTime *metav1.Time `json:"createdTime,omitempty"`
}

// ManagedSecretStatus is everything the operator knows about a ManagedSecret. It never holds a
// value or a hash of one.
type ManagedSecretStatus struct {
	// conditions: Ready, and more as rotation and deletion arrive.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// id is a stable, ARN-like identifier with a random 6-character suffix; a re-created
	// ManagedSecret of the same name gets a new one.
	// +optional
	ID string `json:"id,omitempty"`

	// currentVersionId holds AWSCURRENT.
	// +optional
	CurrentVersionID string `json:"currentVersionId,omitempty"`
	// pendingVersionId holds AWSPENDING.
	// +optional
	PendingVersionID string `json:"pendingVersionId,omitempty"`
	// previousVersionId holds AWSPREVIOUS.
	// +optional
	PreviousVersionID string `json:"previousVersionId,omitempty"`

	// versions lists the labelled versions, newest first (at most 20, as at most 20 labels exist).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Versions []VersionSummary `json:"versions,omitempty"`

	// targetSecretName is the Secret the value is projected into.
	// +optional
	TargetSecretName string `json:"targetSecretName,omitempty"`

	// lastChangedTime is when the value or its labels last changed.
	// +optional
	LastChangedTime *metav1.Time `json:"lastChangedTime,omitempty"`
	// lastAccessedDate is the day (00:00 UTC) a value was last read through the plugin or the
	// AWS API, as AWS's LastAccessedDate; written at most once a day.
	// +optional
	LastAccessedDate *metav1.Time `json:"lastAccessedDate,omitempty"`
	// lastRotatedTime is when a rotation last completed.
	// +optional
	LastRotatedTime *metav1.Time `json:"lastRotatedTime,omitempty"`
	// nextRotationTime is when the next rotation is due.
	// +optional
	NextRotationTime *metav1.Time `json:"nextRotationTime,omitempty"`
	// deletionTime is when a secret marked for deletion is purged.
	// +optional
	DeletionTime *metav1.Time `json:"deletionTime,omitempty"`
	// deletionRequest is the deletion request deletionTime was computed for.
	// +optional
	DeletionRequest string `json:"deletionRequest,omitempty"`

	// rotation is the state of scheduled rotation, when a RotationPolicy is attached.
	// +optional
	Rotation *RotationStatus `json:"rotation,omitempty"`

	// rollout is the state of the workloads spec.rollout names, when it names any.
	// +optional
	Rollout *RolloutStatus `json:"rollout,omitempty"`

	// projection records what the projected Secret was last written from or checked against
	// (resourceVersions, never a value), so that a restarted operator trusts an unchanged
	// projection without reading the Secret or decrypting the version again.
	// +optional
	Projection *ProjectionStatus `json:"projection,omitempty"`
}

// ProjectionStatus ties the projected Secret to the AWSCURRENT version it holds: while both
// resourceVersions and the ManagedSecret's generation are unchanged, nobody has changed either.
type ProjectionStatus struct {
	// secretResourceVersion is the projected Secret's resourceVersion.
	// +optional
	SecretResourceVersion string `json:"secretResourceVersion,omitempty"`
	// versionResourceVersion is the AWSCURRENT SecretVersion's resourceVersion.
	// +optional
	VersionResourceVersion string `json:"versionResourceVersion,omitempty"`
	// generation is the ManagedSecret's generation.
	// +optional
	Generation int64 `json:"generation,omitempty"`
}

// RotationStatus is the rotation bookkeeping of a ManagedSecret.
type RotationStatus struct {
	// policyName is the attached RotationPolicy.
	// +optional
	PolicyName string `json:"policyName,omitempty"`
	// cronJobName is the CronJob that starts rotation Jobs.
	// +optional
	CronJobName string `json:"cronJobName,omitempty"`
	// activeJobName is the Job whose rotation is in progress.
	// +optional
	ActiveJobName string `json:"activeJobName,omitempty"`
	// activeJobUID is that Job's UID; the rotation material is bound to it.
	// +optional
	ActiveJobUID string `json:"activeJobUid,omitempty"`
	// activeVersionId is the pending version the active Job sets and tests; only it is promoted.
	// +optional
	ActiveVersionID string `json:"activeVersionId,omitempty"`
	// failedAttempts counts the failed Jobs for the current pending version.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`
	// lastHandledRequest is the last value of the rotate-requested-at annotation acted on.
	// +optional
	LastHandledRequest string `json:"lastHandledRequest,omitempty"`
}

// RolloutSpec names the workloads restarted after AWSCURRENT moves, so that pods reading the
// projected Secret once (environment variables, a file read at start) get the new value.
type RolloutSpec struct {
	// targets are Deployments, StatefulSets and DaemonSets in this ManagedSecret's namespace, at
	// most 20. Only a workload whose pod template uses the projected Secret (env secretKeyRef,
	// envFrom secretRef, a secret volume or a projected volume's secret source) is restarted.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Targets []RolloutTarget `json:"targets,omitempty"`
}

// RolloutTarget is one workload in the ManagedSecret's namespace.
type RolloutTarget struct {
	// kind of the workload: Deployment, StatefulSet or DaemonSet (group apps).
	// +required
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self in ['Deployment', 'StatefulSet', 'DaemonSet']",message="rollout target kind must be Deployment, StatefulSet or DaemonSet"
	Kind string `json:"kind"`

	// name of the workload, in the ManagedSecret's namespace.
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="rollout target name must be a valid workload name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	Name string `json:"name"`
}

// RolloutStatus is where the workloads of spec.rollout stand.
type RolloutStatus struct {
	// versionId is the AWSCURRENT version the workloads are to run with.
	// +optional
	VersionID string `json:"versionId,omitempty"`
	// changedTime is when that version was first seen projected (rounded up to the second);
	// restarts wait for the coalesce window from it, and a restart at or after it counts.
	// Empty when the workloads started with that version (nothing had to be rolled).
	// +optional
	ChangedTime *metav1.Time `json:"changedTime,omitempty"`
	// targets is the state of each workload.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Targets []RolloutTargetStatus `json:"targets,omitempty"`
}

// RolloutTargetStatus is where one workload stands.
type RolloutTargetStatus struct {
	// kind of the workload.
	Kind string `json:"kind"`
	// name of the workload.
	Name string `json:"name"`
	// versionId is the version the workload last rolled to, or the one current when it was first
	// seen (it started with that value, so nothing had to be rolled).
	// +optional
	VersionID string `json:"versionId,omitempty"`
	// restartedTime is when the rollout to versionId started (the workload's
	// kubectl.kubernetes.io/restartedAt), whoever restarted it; empty when it was not restarted.
	// +optional
	RestartedTime *metav1.Time `json:"restartedTime,omitempty"`
	// finished is true when that rollout finished, as kubectl rollout status sees it: the restarted
	// pod template observed, every replica updated and available, no old replica left.
	// +optional
	Finished bool `json:"finished,omitempty"`
	// reason is why the workload is not rolled: TargetNotFound or TargetNotConsuming (empty when
	// it is rolled).
	// +optional
	Reason string `json:"reason,omitempty"`
}

// The RolledOut condition, its reasons, and the Events of rolling workloads.
const (
	// ConditionRolledOut is True when every workload of spec.rollout runs AWSCURRENT.
	ConditionRolledOut = "RolledOut"
	// ReasonRolledOut: every target runs AWSCURRENT (rolled to it, or started with it).
	ReasonRolledOut = "RolledOut"
	// ReasonRolloutWaiting: AWSCURRENT moved; the restarts wait for the coalesce window.
	ReasonRolloutWaiting = "CoalesceWindow"
	// ReasonRolloutInProgress: targets were restarted and their rollouts are not finished.
	ReasonRolloutInProgress = "RolloutInProgress"
	// ReasonRolloutStalled: a Deployment's rollout exceeded its progress deadline.
	ReasonRolloutStalled = "RolloutStalled"
	// ReasonTargetNotFound: a target does not exist; nothing is restarted for it.
	ReasonTargetNotFound = "TargetNotFound"
	// ReasonTargetNotConsuming: a target's pod template does not use the projected Secret; it is
	// never restarted (the ManagedSecret's author may not restart workloads that do not use it).
	ReasonTargetNotConsuming = "TargetNotConsuming"
	// ReasonWorkloadRestarted is the Event of a restart.
	ReasonWorkloadRestarted = "WorkloadRestarted"
	// ReasonRestartCoalesced is the Event of a change a restart after it already covered.
	ReasonRestartCoalesced = "RestartCoalesced"
	// ReasonAwaitingRollout is the Rotating condition's reason while an alternating-users
	// rotation waits for the workloads to run AWSCURRENT.
	ReasonAwaitingRollout = "AwaitingRollout"
)

// ManagedSecret is a secret kept as encrypted, versioned records with AWS's staging labels, whose
// AWSCURRENT version is projected into a Kubernetes Secret.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=msec,categories=secretsmanager
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Current",type=string,JSONPath=`.status.currentVersionId`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.targetSecretName`,priority=1
// +kubebuilder:printcolumn:name="Changed",type=date,JSONPath=`.status.lastChangedTime`,priority=1
// +kubebuilder:printcolumn:name="Rotated",type=date,JSONPath=`.status.lastRotatedTime`,priority=1
// +kubebuilder:printcolumn:name="Next Rotation",type=string,JSONPath=`.status.nextRotationTime`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ManagedSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec ManagedSecretSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status ManagedSecretStatus `json:"status,omitempty"`
}

// ManagedSecretList is a list of ManagedSecrets.
// +kubebuilder:object:root=true
type ManagedSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ManagedSecret `json:"items"`
}

func init() {
	register(&ManagedSecret{}, &ManagedSecretList{})
}
