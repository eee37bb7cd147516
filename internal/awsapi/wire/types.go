package wire

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Struct tags: `json` is the member's name on the wire (AWS's capitalisation, as in the API
// model); `aws` holds the model's constraints, checked by Decode (see schema.go):
//
//	required        the member must be present and not null
//	len=MIN:MAX     length of a string (characters), list (entries) or blob (bytes); either bound may be empty
//	bytes           a string's length is counted in UTF-8 bytes, not characters
//	range=MIN:MAX   value of a number
//	enum=NAME       value in a named set (enums in schema.go)
//	pattern=NAME    full match of a named pattern (patterns in schema.go)
//	sensitive       never echoed in a message
//	id / name       a SecretId (§1.2) / a new secret's Name: the character check after shape validation
//	each.X          constraint X on every entry of a list of strings
//
// Members whose presence matters are pointers (or nil-able slices: an empty list given is
// non-nil, and the inputs' slices are omitzero so it stays present when re-encoded); a JSON null
// is an absent member. Outputs carry only members that have a value (omitempty on pointers,
// strings and slices); a zero that AWS does send is sent when the pointer is set (RotationEnabled
// false) or the slice is non-nil (Tags, omitzero: [] after all tags were removed).

// Timestamp is a time on the wire: epoch seconds as a JSON number, with milliseconds as a fraction
// when there are any (1523477145.713), as AWS sends them.
type Timestamp struct{ time.Time }

// NewTimestamp is t as a *Timestamp, or nil (the member is omitted) for the zero time.
func NewTimestamp(t time.Time) *Timestamp {
	if t.IsZero() {
		return nil
	}
	return &Timestamp{t}
}

// MarshalJSON writes epoch seconds, truncated to the millisecond.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(t.UnixMilli())/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads epoch seconds (any JSON number, 1.523477145713E9 included).
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("timestamp: not epoch seconds")
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)).UTC()
	return nil
}

// Tag is a secret's tag. Both members are always sent; Value may be "".
type Tag struct {
	Key   string `json:"Key" aws:"required,len=1:128"`
	Value string `json:"Value" aws:"len=0:256"`
}

// Filter is a ListSecrets / BatchGetSecretValue filter. A missing Key or Values is refused with
// InvalidParameterException after shape validation, as AWS does, so both are pointers / nil-able.
type Filter struct {
	Key    *string  `json:"Key,omitempty" aws:"enum=filterKey"`
	Values []string `json:"Values,omitzero" aws:"len=1:10,each.len=:512,each.pattern=filterValue"`
}

// RotationRules are AWS's rotation rules (input of RotateSecret, output of DescribeSecret and
// ListSecrets). AutomaticallyAfterDays' range (1-1000) is RotateSecret's service check
// (InvalidParameterException, RotateSecretInput.CheckRotation), not a shape constraint.
type RotationRules struct {
	AutomaticallyAfterDays *int64  `json:"AutomaticallyAfterDays,omitempty"`
	Duration               *string `json:"Duration,omitempty" aws:"len=2:3,pattern=duration"`
	ScheduleExpression     *string `json:"ScheduleExpression,omitempty" aws:"len=1:256,pattern=schedule"`
}

// ExternalSecretRotationMetadataItem is a key/value pair for managed external secrets (stored and
// echoed only).
type ExternalSecretRotationMetadataItem struct {
	Key   *string `json:"Key,omitempty" aws:"len=1:256"`
	Value *string `json:"Value,omitempty" aws:"len=1:2048"`
}

// ReplicaRegion is a region to replicate to (CreateSecret's AddReplicaRegions).
type ReplicaRegion struct {
	Region   *string `json:"Region,omitempty" aws:"len=1:128,pattern=region"`
	KmsKeyID *string `json:"KmsKeyId,omitempty" aws:"len=0:2048"`
}

// ReplicationStatus is a replica's state.
type ReplicationStatus struct {
	Region           string     `json:"Region,omitempty"`
	KmsKeyID         string     `json:"KmsKeyId,omitempty"`
	Status           string     `json:"Status,omitempty"`
	StatusMessage    string     `json:"StatusMessage,omitempty"`
	LastAccessedDate *Timestamp `json:"LastAccessedDate,omitempty"`
}

// APIError is one secret's failure in BatchGetSecretValue's Errors.
type APIError struct {
	SecretID  string `json:"SecretId,omitempty"`
	ErrorCode string `json:"ErrorCode,omitempty"`
	Message   string `json:"Message,omitempty"`
}

// ---- GetSecretValue ----

// GetSecretValueInput is GetSecretValue's request.
type GetSecretValueInput struct {
	SecretID     string  `json:"SecretId" aws:"required,len=1:2048,id"`
	VersionID    *string `json:"VersionId,omitempty" aws:"len=32:64"`
	VersionStage *string `json:"VersionStage,omitempty" aws:"len=1:256"`
}

// GetSecretValueOutput is GetSecretValue's answer: CreatedDate is the version's.
type GetSecretValueOutput struct {
	ARN           string     `json:"ARN,omitempty"`
	Name          string     `json:"Name,omitempty"`
	VersionID     string     `json:"VersionId,omitempty"`
	SecretBinary  []byte     `json:"SecretBinary,omitempty"`
	SecretString  *string    `json:"SecretString,omitempty"`
	VersionStages []string   `json:"VersionStages,omitempty"`
	CreatedDate   *Timestamp `json:"CreatedDate,omitempty"`
}

// SecretValueEntry is one secret's value in BatchGetSecretValue (GetSecretValue's shape).
type SecretValueEntry GetSecretValueOutput

// ---- BatchGetSecretValue ----

// BatchGetSecretValueInput is BatchGetSecretValue's request: SecretIdList or Filters, not both;
// MaxResults only with Filters (checked by Decode, InvalidParameterException).
type BatchGetSecretValueInput struct {
	SecretIDList []string `json:"SecretIdList,omitzero" aws:"len=1:20,each.len=1:2048,each.id"`
	Filters      []Filter `json:"Filters,omitzero" aws:"len=:10"`
	MaxResults   *int32   `json:"MaxResults,omitempty" aws:"range=1:20"`
	NextToken    *string  `json:"NextToken,omitempty" aws:"len=1:4096"`
}

// BatchGetSecretValueOutput is BatchGetSecretValue's answer. SecretValues and Errors are always
// sent, [] when empty.
type BatchGetSecretValueOutput struct {
	SecretValues []SecretValueEntry `json:"SecretValues"`
	NextToken    *string            `json:"NextToken,omitempty"`
	Errors       []APIError         `json:"Errors"`
}

// MarshalJSON sends empty lists as [], never null.
func (o BatchGetSecretValueOutput) MarshalJSON() ([]byte, error) {
	type plain BatchGetSecretValueOutput
	if o.SecretValues == nil {
		o.SecretValues = []SecretValueEntry{}
	}
	if o.Errors == nil {
		o.Errors = []APIError{}
	}
	return json.Marshal(plain(o))
}

// ---- DescribeSecret ----

// DescribeSecretInput is DescribeSecret's request.
type DescribeSecretInput struct {
	SecretID string `json:"SecretId" aws:"required,len=1:2048,id"`
}

// DescribeSecretOutput is DescribeSecret's answer. Tags: nil is omitted (never tagged), an empty
// non-nil slice is sent as [] (tags added, then all removed), as AWS does.
type DescribeSecretOutput struct {
	ARN                            string                               `json:"ARN,omitempty"`
	Name                           string                               `json:"Name,omitempty"`
	Type                           string                               `json:"Type,omitempty"`
	Description                    string                               `json:"Description,omitempty"`
	KmsKeyID                       string                               `json:"KmsKeyId,omitempty"`
	RotationEnabled                *bool                                `json:"RotationEnabled,omitempty"`
	RotationLambdaARN              string                               `json:"RotationLambdaARN,omitempty"`
	RotationRules                  *RotationRules                       `json:"RotationRules,omitempty"`
	ExternalSecretRotationMetadata []ExternalSecretRotationMetadataItem `json:"ExternalSecretRotationMetadata,omitempty"`
	ExternalSecretRotationRoleArn  string                               `json:"ExternalSecretRotationRoleArn,omitempty"`
	LastRotatedDate                *Timestamp                           `json:"LastRotatedDate,omitempty"`
	LastChangedDate                *Timestamp                           `json:"LastChangedDate,omitempty"`
	LastAccessedDate               *Timestamp                           `json:"LastAccessedDate,omitempty"`
	DeletedDate                    *Timestamp                           `json:"DeletedDate,omitempty"`
	NextRotationDate               *Timestamp                           `json:"NextRotationDate,omitempty"`
	Tags                           []Tag                                `json:"Tags,omitzero"`
	VersionIDsToStages             map[string][]string                  `json:"VersionIdsToStages,omitempty"`
	OwningService                  string                               `json:"OwningService,omitempty"`
	CreatedDate                    *Timestamp                           `json:"CreatedDate,omitempty"`
	PrimaryRegion                  string                               `json:"PrimaryRegion,omitempty"`
	ReplicationStatus              []ReplicationStatus                  `json:"ReplicationStatus,omitempty"`
}

// ---- ListSecrets ----

// ListSecretsInput is ListSecrets' request.
type ListSecretsInput struct {
	IncludePlannedDeletion *bool    `json:"IncludePlannedDeletion,omitempty"`
	MaxResults             *int32   `json:"MaxResults,omitempty" aws:"range=1:100"`
	NextToken              *string  `json:"NextToken,omitempty" aws:"len=1:4096"`
	Filters                []Filter `json:"Filters,omitzero" aws:"len=:10"`
	SortOrder              *string  `json:"SortOrder,omitempty" aws:"enum=sortOrder"`
	SortBy                 *string  `json:"SortBy,omitempty" aws:"enum=sortBy"`
}

// SecretListEntry is one secret in ListSecrets: DescribeSecret's members, with the versions under
// SecretVersionsToStages.
type SecretListEntry struct {
	ARN                            string                               `json:"ARN,omitempty"`
	Name                           string                               `json:"Name,omitempty"`
	Type                           string                               `json:"Type,omitempty"`
	Description                    string                               `json:"Description,omitempty"`
	KmsKeyID                       string                               `json:"KmsKeyId,omitempty"`
	RotationEnabled                *bool                                `json:"RotationEnabled,omitempty"`
	RotationLambdaARN              string                               `json:"RotationLambdaARN,omitempty"`
	RotationRules                  *RotationRules                       `json:"RotationRules,omitempty"`
	ExternalSecretRotationMetadata []ExternalSecretRotationMetadataItem `json:"ExternalSecretRotationMetadata,omitempty"`
	ExternalSecretRotationRoleArn  string                               `json:"ExternalSecretRotationRoleArn,omitempty"`
	LastRotatedDate                *Timestamp                           `json:"LastRotatedDate,omitempty"`
	LastChangedDate                *Timestamp                           `json:"LastChangedDate,omitempty"`
	LastAccessedDate               *Timestamp                           `json:"LastAccessedDate,omitempty"`
	DeletedDate                    *Timestamp                           `json:"DeletedDate,omitempty"`
	NextRotationDate               *Timestamp                           `json:"NextRotationDate,omitempty"`
	Tags                           []Tag                                `json:"Tags,omitzero"`
	SecretVersionsToStages         map[string][]string                  `json:"SecretVersionsToStages,omitempty"`
	OwningService                  string                               `json:"OwningService,omitempty"`
	CreatedDate                    *Timestamp                           `json:"CreatedDate,omitempty"`
	PrimaryRegion                  string                               `json:"PrimaryRegion,omitempty"`
}

// ListSecretsOutput is ListSecrets' answer. SecretList is always sent, [] when empty.
type ListSecretsOutput struct {
	SecretList []SecretListEntry `json:"SecretList"`
	NextToken  *string           `json:"NextToken,omitempty"`
}

// MarshalJSON sends an empty list as [], never null.
func (o ListSecretsOutput) MarshalJSON() ([]byte, error) {
	type plain ListSecretsOutput
	if o.SecretList == nil {
		o.SecretList = []SecretListEntry{}
	}
	return json.Marshal(plain(o))
}

// ---- ListSecretVersionIds ----

// ListSecretVersionIDsInput is ListSecretVersionIds' request.
type ListSecretVersionIDsInput struct {
	SecretID          string  `json:"SecretId" aws:"required,len=1:2048,id"`
	MaxResults        *int32  `json:"MaxResults,omitempty" aws:"range=1:100"`
	NextToken         *string `json:"NextToken,omitempty" aws:"len=1:4096"`
	IncludeDeprecated *bool   `json:"IncludeDeprecated,omitempty"`
}

// SecretVersionsListEntry is one version; VersionStages is omitted for a deprecated version.
type SecretVersionsListEntry struct {
	VersionID        string     `json:"VersionId,omitempty"`
	VersionStages    []string   `json:"VersionStages,omitempty"`
	LastAccessedDate *Timestamp `json:"LastAccessedDate,omitempty"`
	CreatedDate      *Timestamp `json:"CreatedDate,omitempty"`
	KmsKeyIDs        []string   `json:"KmsKeyIds,omitempty"`
}

// ListSecretVersionIDsOutput is ListSecretVersionIds' answer. Versions is always sent.
type ListSecretVersionIDsOutput struct {
	Versions  []SecretVersionsListEntry `json:"Versions"`
	NextToken *string                   `json:"NextToken,omitempty"`
	ARN       string                    `json:"ARN,omitempty"`
	Name      string                    `json:"Name,omitempty"`
}

// MarshalJSON sends an empty list as [], never null.
func (o ListSecretVersionIDsOutput) MarshalJSON() ([]byte, error) {
	type plain ListSecretVersionIDsOutput
	if o.Versions == nil {
		o.Versions = []SecretVersionsListEntry{}
	}
	return json.Marshal(plain(o))
}

// ---- CreateSecret ----

// CreateSecretInput is CreateSecret's request.
type CreateSecretInput struct {
	Name                        string          `json:"Name" aws:"required,len=1:512,name"`
	ClientRequestToken          *string         `json:"ClientRequestToken,omitempty" aws:"len=32:64"`
	Description                 *string         `json:"Description,omitempty" aws:"len=:2048"`
	KmsKeyID                    *string         `json:"KmsKeyId,omitempty" aws:"len=0:2048"`
	SecretBinary                []byte          `json:"SecretBinary,omitzero" aws:"len=1:65536,sensitive"`
	SecretString                *string         `json:"SecretString,omitempty" aws:"len=1:65536,bytes,sensitive"`
	Tags                        []Tag           `json:"Tags,omitzero"`
	AddReplicaRegions           []ReplicaRegion `json:"AddReplicaRegions,omitzero" aws:"len=1:"`
	ForceOverwriteReplicaSecret *bool           `json:"ForceOverwriteReplicaSecret,omitempty"`
	Type                        *string         `json:"Type,omitempty" aws:"len=0:256"`
}

// CreateSecretOutput is CreateSecret's answer; VersionId only when a value was given.
type CreateSecretOutput struct {
	ARN               string              `json:"ARN,omitempty"`
	Name              string              `json:"Name,omitempty"`
	VersionID         string              `json:"VersionId,omitempty"`
	ReplicationStatus []ReplicationStatus `json:"ReplicationStatus,omitempty"`
}

// ---- PutSecretValue ----

// PutSecretValueInput is PutSecretValue's request.
type PutSecretValueInput struct {
	SecretID           string   `json:"SecretId" aws:"required,len=1:2048,id"`
	ClientRequestToken *string  `json:"ClientRequestToken,omitempty" aws:"len=32:64"`
	SecretBinary       []byte   `json:"SecretBinary,omitzero" aws:"len=1:65536,sensitive"`
	SecretString       *string  `json:"SecretString,omitempty" aws:"len=1:65536,bytes,sensitive"`
	VersionStages      []string `json:"VersionStages,omitzero" aws:"len=1:20,each.len=1:256"`
	RotationToken      *string  `json:"RotationToken,omitempty" aws:"len=36:256,pattern=rotationToken,sensitive"`
}

// PutSecretValueOutput is PutSecretValue's answer: the version's labels after the call.
type PutSecretValueOutput struct {
	ARN           string   `json:"ARN,omitempty"`
	Name          string   `json:"Name,omitempty"`
	VersionID     string   `json:"VersionId,omitempty"`
	VersionStages []string `json:"VersionStages,omitempty"`
}

// ---- UpdateSecret ----

// UpdateSecretInput is UpdateSecret's request. Description and KmsKeyId are pointers: absent
// leaves them, "" clears them (KmsKeyId "" is the default key again).
type UpdateSecretInput struct {
	SecretID           string  `json:"SecretId" aws:"required,len=1:2048,id"`
	ClientRequestToken *string `json:"ClientRequestToken,omitempty" aws:"len=32:64"`
	Description        *string `json:"Description,omitempty" aws:"len=:2048"`
	KmsKeyID           *string `json:"KmsKeyId,omitempty" aws:"len=0:2048"`
	SecretBinary       []byte  `json:"SecretBinary,omitzero" aws:"len=1:65536,sensitive"`
	SecretString       *string `json:"SecretString,omitempty" aws:"len=1:65536,bytes,sensitive"`
	Type               *string `json:"Type,omitempty" aws:"len=0:256"`
}

// UpdateSecretOutput is UpdateSecret's answer; VersionId only when a version was created.
type UpdateSecretOutput struct {
	ARN       string `json:"ARN,omitempty"`
	Name      string `json:"Name,omitempty"`
	VersionID string `json:"VersionId,omitempty"`
}

// ---- UpdateSecretVersionStage ----

// UpdateSecretVersionStageInput is UpdateSecretVersionStage's request.
type UpdateSecretVersionStageInput struct {
	SecretID            string  `json:"SecretId" aws:"required,len=1:2048,id"`
	VersionStage        string  `json:"VersionStage" aws:"required,len=1:256"`
	RemoveFromVersionID *string `json:"RemoveFromVersionId,omitempty" aws:"len=32:64"`
	MoveToVersionID     *string `json:"MoveToVersionId,omitempty" aws:"len=32:64"`
}

// UpdateSecretVersionStageOutput is UpdateSecretVersionStage's answer.
type UpdateSecretVersionStageOutput struct {
	ARN  string `json:"ARN,omitempty"`
	Name string `json:"Name,omitempty"`
}

// ---- DeleteSecret ----

// DeleteSecretInput is DeleteSecret's request. Decode refuses a RecoveryWindowInDays outside
// 7-30 and one given with ForceDeleteWithoutRecovery=true (InvalidParameterException).
type DeleteSecretInput struct {
	SecretID                   string `json:"SecretId" aws:"required,len=1:2048,id"`
	RecoveryWindowInDays       *int64 `json:"RecoveryWindowInDays,omitempty"`
	ForceDeleteWithoutRecovery *bool  `json:"ForceDeleteWithoutRecovery,omitempty"`
}

// DeleteSecretOutput is DeleteSecret's answer.
type DeleteSecretOutput struct {
	ARN          string     `json:"ARN,omitempty"`
	Name         string     `json:"Name,omitempty"`
	DeletionDate *Timestamp `json:"DeletionDate,omitempty"`
}

// ---- RestoreSecret ----

// RestoreSecretInput is RestoreSecret's request.
type RestoreSecretInput struct {
	SecretID string `json:"SecretId" aws:"required,len=1:2048,id"`
}

// RestoreSecretOutput is RestoreSecret's answer.
type RestoreSecretOutput struct {
	ARN  string `json:"ARN,omitempty"`
	Name string `json:"Name,omitempty"`
}

// ---- TagResource / UntagResource ----

// TagResourceInput is TagResource's request.
type TagResourceInput struct {
	SecretID string `json:"SecretId" aws:"required,len=1:2048,id"`
	Tags     []Tag  `json:"Tags" aws:"required"`
}

// TagResourceOutput is TagResource's answer: {}.
type TagResourceOutput struct{}

// UntagResourceInput is UntagResource's request.
type UntagResourceInput struct {
	SecretID string   `json:"SecretId" aws:"required,len=1:2048,id"`
	TagKeys  []string `json:"TagKeys" aws:"required,each.len=1:128"`
}

// UntagResourceOutput is UntagResource's answer: {}.
type UntagResourceOutput struct{}

// ---- RotateSecret / CancelRotateSecret ----

// RotateSecretInput is RotateSecret's request. ClientRequestToken's presence and length are
// checked by Decode with RotateSecret's InvalidParameterException messages, before the lookup;
// RotationLambdaARN's length and the rules by CheckRotation, after the lookup (AWS's order).
type RotateSecretInput struct {
	SecretID                       string                               `json:"SecretId" aws:"required,len=1:2048,id"`
	ClientRequestToken             *string                              `json:"ClientRequestToken,omitempty"`
	RotationLambdaARN              *string                              `json:"RotationLambdaARN,omitempty"`
	RotationRules                  *RotationRules                       `json:"RotationRules,omitempty"`
	ExternalSecretRotationMetadata []ExternalSecretRotationMetadataItem `json:"ExternalSecretRotationMetadata,omitzero"`
	ExternalSecretRotationRoleArn  *string                              `json:"ExternalSecretRotationRoleArn,omitempty" aws:"len=20:2048"`
	RotateImmediately              *bool                                `json:"RotateImmediately,omitempty"`
}

// RotateImmediatelyOrDefault is RotateImmediately, true when absent (AWS's default).
func (in RotateSecretInput) RotateImmediatelyOrDefault() bool {
	return in.RotateImmediately == nil || *in.RotateImmediately
}

// RotateSecretOutput is RotateSecret's answer.
type RotateSecretOutput struct {
	ARN       string `json:"ARN,omitempty"`
	Name      string `json:"Name,omitempty"`
	VersionID string `json:"VersionId,omitempty"`
}

// CancelRotateSecretInput is CancelRotateSecret's request.
type CancelRotateSecretInput struct {
	SecretID string `json:"SecretId" aws:"required,len=1:2048,id"`
}

// CancelRotateSecretOutput is CancelRotateSecret's answer; VersionId is the cancelled rotation's.
type CancelRotateSecretOutput struct {
	ARN       string `json:"ARN,omitempty"`
	Name      string `json:"Name,omitempty"`
	VersionID string `json:"VersionId,omitempty"`
}

// ---- GetRandomPassword ----

// GetRandomPasswordInput is GetRandomPassword's request; nil members take AWS's defaults
// (PasswordLength 32, RequireEachIncludedType true, the others false).
type GetRandomPasswordInput struct {
	PasswordLength          *int64  `json:"PasswordLength,omitempty" aws:"range=1:4096"`
	ExcludeCharacters       *string `json:"ExcludeCharacters,omitempty" aws:"len=0:4096"`
	ExcludeNumbers          *bool   `json:"ExcludeNumbers,omitempty"`
	ExcludePunctuation      *bool   `json:"ExcludePunctuation,omitempty"`
	ExcludeUppercase        *bool   `json:"ExcludeUppercase,omitempty"`
	ExcludeLowercase        *bool   `json:"ExcludeLowercase,omitempty"`
	IncludeSpace            *bool   `json:"IncludeSpace,omitempty"`
	RequireEachIncludedType *bool   `json:"RequireEachIncludedType,omitempty"`
}

// GetRandomPasswordOutput is GetRandomPassword's answer.
type GetRandomPasswordOutput struct {
	RandomPassword string `json:"RandomPassword,omitempty"`
}

// ---- Resource policies (answered with Unsupported; shapes for validation and completeness) ----

// GetResourcePolicyInput is GetResourcePolicy's request.
type GetResourcePolicyInput struct {
	SecretID string `json:"SecretId" aws:"required,len=1:2048,id"`
}

// GetResourcePolicyOutput is GetResourcePolicy's answer; ResourcePolicy is absent without a policy.
type GetResourcePolicyOutput struct {
	ARN            string `json:"ARN,omitempty"`
	Name           string `json:"Name,omitempty"`
	ResourcePolicy string `json:"ResourcePolicy,omitempty"`
}

// PutResourcePolicyInput is PutResourcePolicy's request.
type PutResourcePolicyInput struct {
	SecretID          string `json:"SecretId" aws:"required,len=1:2048,id"`
	ResourcePolicy    string `json:"ResourcePolicy" aws:"required,len=1:20480"`
	BlockPublicPolicy *bool  `json:"BlockPublicPolicy,omitempty"`
}

// PutResourcePolicyOutput is PutResourcePolicy's answer.
type PutResourcePolicyOutput struct {
	ARN  string `json:"ARN,omitempty"`
	Name string `json:"Name,omitempty"`
}

// DeleteResourcePolicyInput is DeleteResourcePolicy's request.
type DeleteResourcePolicyInput struct {
	SecretID string `json:"SecretId" aws:"required,len=1:2048,id"`
}

// DeleteResourcePolicyOutput is DeleteResourcePolicy's answer.
type DeleteResourcePolicyOutput struct {
	ARN  string `json:"ARN,omitempty"`
	Name string `json:"Name,omitempty"`
}

// ValidateResourcePolicyInput is ValidateResourcePolicy's request (SecretId is optional).
type ValidateResourcePolicyInput struct {
	SecretID       *string `json:"SecretId,omitempty" aws:"len=1:2048,id"`
	ResourcePolicy string  `json:"ResourcePolicy" aws:"required,len=1:20480"`
}

// ValidationErrorsEntry is one finding of ValidateResourcePolicy.
type ValidationErrorsEntry struct {
	CheckName    string `json:"CheckName,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

// ValidateResourcePolicyOutput is ValidateResourcePolicy's answer.
type ValidateResourcePolicyOutput struct {
	PolicyValidationPassed bool                    `json:"PolicyValidationPassed"`
	ValidationErrors       []ValidationErrorsEntry `json:"ValidationErrors,omitempty"`
}
