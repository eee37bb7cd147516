package v1alpha1

// Labels and annotations the operator sets; all use the kube-secrets-manager.io/ prefix.
const (
	// LabelManagedSecretUID marks every object the operator writes for a ManagedSecret (its
	// SecretVersions, projected Secret and rotation material). The operator's cache selects Secrets
	// on this label, so it never lists or watches Secrets it does not own.
	LabelManagedSecretUID = "kube-secrets-manager.io/managed-secret-uid"

	// LabelManagedBy is set on generated objects to say who writes them.
	LabelManagedBy = "app.kubernetes.io/managed-by"

	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "kube-secrets-manager"

	// Finalizer lets the operator remove versions and projected Secrets before a ManagedSecret goes.
	Finalizer = "kube-secrets-manager.io/finalizer"

	// LabelDeprecated marks a SecretVersion with no staging label and no label change under way
	// (AWS's deprecated versions, up to 100 per secret). The operator's cache leaves these out and
	// reads them from the API server when an operation names one, so its memory does not grow with
	// them.
	LabelDeprecated = "kube-secrets-manager.io/deprecated"
	// DeprecatedValue is the value of LabelDeprecated.
	DeprecatedValue = "true"

	// LabelRole tells the operator's Secrets apart: "projection" or "rotation-material".
	LabelRole = "kube-secrets-manager.io/role"
	// RoleProjection marks the projected Secret.
	RoleProjection = "projection"
	// RoleRotationMaterial marks the short-lived Secret a rotation pod mounts.
	RoleRotationMaterial = "rotation-material"

	// AnnotationManagedSecretName on rotation CronJobs and Jobs names their ManagedSecret.
	AnnotationManagedSecretName = "kube-secrets-manager.io/managed-secret-name"

	// AnnotationRotateRequestedAt asks for a rotation now; any new value is a new request (Argo CD
	// resource actions and `kubectl annotate` can set it). status.rotation.lastHandledRequest echoes
	// the value once handled.
	AnnotationRotateRequestedAt = "kube-secrets-manager.io/rotate-requested-at"

	// AnnotationRotateVersionID, set with a rotate request (RotateSecret's ClientRequestToken), is
	// the id the rotation's pending version gets, as AWS gives it the token; without it (or when
	// that id is taken) the pending version gets a new UUID.
	AnnotationRotateVersionID = "kube-secrets-manager.io/rotate-version-id"

	// AnnotationSecretID on a ManagedSecret is its stable id, set by the operator when it first
	// sees the secret (the UID of that moment): versions are bound to it, and the ARN's suffix is
	// drawn from it, so both survive a backup and restore that gives the object a new UID.
	AnnotationSecretID = "kube-secrets-manager.io/secret-id"

	// AnnotationAWSName on a ManagedSecret made through the AWS API is its AWS name, which may
	// hold characters (upper case, /, +, =, @, _) an object name cannot.
	AnnotationAWSName = "kube-secrets-manager.io/aws-name"

	// AnnotationImportAllowedFor on a Secret is its owner's consent to being imported: a
	// comma-separated list of the ManagedSecrets (in the Secret's namespace) whose fromSecret may
	// read it. The operator reads sources with its own rights, so without this consent anyone who
	// may create a ManagedSecret could copy any Secret of the namespace.
	AnnotationImportAllowedFor = "kube-secrets-manager.io/import-allowed-for"

	// AnnotationSuperuserFor on a ManagedSecret lets RotationPolicies borrow its credentials as
	// their superuserSecretRef: a comma-separated list of policy names in the same namespace.
	AnnotationSuperuserFor = "kube-secrets-manager.io/superuser-for-policies"
)

// AWS's staging labels.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// Condition types.
const (
	// ConditionReady is True when the AWSCURRENT version is decrypted and projected.
	ConditionReady = "Ready"
	// ConditionRotationScheduled is True when a RotationPolicy is attached, valid and its CronJob
	// is in place.
	ConditionRotationScheduled = "RotationScheduled"
	// ConditionRotating is True while a rotation Job is in progress.
	ConditionRotating = "Rotating"
	// ConditionRotationFailed is True when the last rotation attempt failed.
	ConditionRotationFailed = "RotationFailed"
	// ConditionRotationOverdue is True when a scheduled rotation did not complete within its
	// window (AWS's missed rotation): now is past the due time plus the window, and the value has
	// not changed since.
	ConditionRotationOverdue = "RotationOverdue"
	// ConditionStale is True when the current value is older than the policy's maxAgeDays.
	ConditionStale = "Stale"
)

// Reasons of the RotationOverdue and Stale conditions.
const (
	ReasonRotationMissed = "RotationMissed"
	ReasonOnSchedule     = "OnSchedule"
	ReasonValueTooOld    = "ValueTooOld"
	ReasonValueFresh     = "ValueFresh"
	ReasonNoMaxAge       = "NoMaxAge"
)

// Reasons of the rotation conditions.
const (
	ReasonScheduled         = "Scheduled"
	ReasonSuspended         = "Suspended"
	ReasonPolicyNotFound    = "PolicyNotFound"
	ReasonInvalidSchedule   = "InvalidSchedule"
	ReasonNoValueToRotate   = "NoValueToRotate"
	ReasonRotationStarted   = "RotationStarted"
	ReasonIdle              = "Idle"
	ReasonRotationSucceeded = "RotationSucceeded"
	ReasonJobFailed         = "RotationJobFailed"
	ReasonCreateFailed      = "CreateSecretFailed"
	ReasonSuperuserMissing  = "SuperuserNotReady"
	ReasonJobStoodDown      = "ConcurrentJobRemoved"
	ReasonRotateRequested   = "RotateRequested"
	ReasonRotationCancelled = "RotationCancelled"
	// ReasonPolicyNotAllowed: the policy asks for pod settings the operator does not allow.
	ReasonPolicyNotAllowed = "PolicyNotAllowed"
	// ReasonSuperuserNotAllowed: the superuser ManagedSecret does not name the policy in its
	// superuser-for-policies annotation.
	ReasonSuperuserNotAllowed = "SuperuserNotAllowed"
	// ReasonObjectConflict: an object of the name the operator needs (a CronJob or the rotation
	// material Secret) exists and is not controlled by this ManagedSecret; it is left alone.
	ReasonObjectConflict = "ObjectConflict"
)

// Reasons of the Ready condition.
const (
	ReasonReady            = "Projected"
	ReasonAwaitingValue    = "AwaitingValue"
	ReasonSourceNotFound   = "SourceNotFound"
	ReasonSourceNotAllowed = "SourceNotAllowed"
	ReasonInvalidSource    = "InvalidSource"
	ReasonValueTooLarge    = "ValueTooLarge"
	ReasonInvalidPolicy    = "InvalidPasswordPolicy"
	ReasonTargetConflict   = "TargetConflict"
	ReasonDecryptionFailed = "DecryptionFailed"
	// ReasonKeyProviderUnavailable: the key provider (a KMS plugin) did not answer; nothing is
	// written, the projected Secret keeps its data, and the operator retries.
	ReasonKeyProviderUnavailable = "KeyProviderUnavailable"
	ReasonInvalidVersions        = "InvalidVersions"
	ReasonVersionsMissing        = "VersionsMissing"
	ReasonEncryptionFailed       = "EncryptionFailed"
	ReasonProjectionFailed       = "ProjectionFailed"
	ReasonInvalidTarget          = "InvalidTarget"
	ReasonPendingDeletion        = "PendingDeletion"
	ReasonVersionCreated         = "VersionCreated"
	ReasonSecretProjected        = "SecretProjected"
	ReasonVersionsPruned         = "VersionsPruned"
	ReasonOrphanedProjection     = "StaleProjectionRemoved"
	ReasonRequestRefused         = "RequestRefused"
)

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// name of the object, in the same namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// PasswordPolicy holds the parameters of AWS's GetRandomPassword. Unset fields take AWS's defaults:
// length 32, nothing excluded, no space, and at least one character of each included type.
type PasswordPolicy struct {
	// passwordLength is the number of characters, 1 to 4096 (default 32).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4096
	PasswordLength *int32 `json:"passwordLength,omitempty"`

	// excludeCharacters lists characters never to use.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	ExcludeCharacters string `json:"excludeCharacters,omitempty"`

	// excludeNumbers leaves out 0-9.
	// +optional
	ExcludeNumbers bool `json:"excludeNumbers,omitempty"`

	// excludePunctuation leaves out the 32 punctuation characters !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
	// +optional
	ExcludePunctuation bool `json:"excludePunctuation,omitempty"`

	// excludeUppercase leaves out A-Z.
	// +optional
	ExcludeUppercase bool `json:"excludeUppercase,omitempty"`

	// excludeLowercase leaves out a-z.
	// +optional
	ExcludeLowercase bool `json:"excludeLowercase,omitempty"`

	// includeSpace adds the space character to the pool.
	// +optional
	IncludeSpace bool `json:"includeSpace,omitempty"`

	// requireEachIncludedType requires at least one character of each included type (default true).
	// +optional
	RequireEachIncludedType *bool `json:"requireEachIncludedType,omitempty"`
}
