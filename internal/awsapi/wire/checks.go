package wire

import (
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// Messages of the service checks, worded as AWS (or, where AWS's is unknown, moto) words them.
const (
	MsgInvalidName         = "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
	MsgTokenRequired       = "You must provide a ClientRequestToken value. We recommend a UUID-type value."
	MsgBothValues          = "You can't specify both a binary secret value and a string secret value in the same secret."
	MsgNoValue             = "You must provide either SecretString or SecretBinary."
	MsgRecoveryWindow      = "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
	MsgForceWithWindow     = "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
	MsgBatchEitherOr       = "Either 'SecretIdList' or 'Filters' must be provided, but not both."
	MsgBatchMaxResults     = "'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided."
	MsgInvalidFilterKey    = "Invalid filter key"
	MsgInvalidFilterValues = "Invalid filter values for key: " // + the key
	MsgInvalidNextToken    = "The NextToken value is invalid."
	MsgTokenLength         = "ClientRequestToken must be 32-64 characters long."
	MsgLambdaARNLength     = "RotationLambdaARN must <= 2048 characters long."
	MsgAfterDaysRange      = "RotationRules.AutomaticallyAfterDays must be within 1-1000."
	MsgDaysAndSchedule     = "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules."
)

// Recovery window bounds of DeleteSecret.
const (
	MinRecoveryWindowInDays = 7
	MaxRecoveryWindowInDays = 30
)

func invalidParameter(msg string) error {
	return &awserr.Error{Code: awserr.InvalidParameter, Message: msg}
}

func invalidRequest(msg string) error {
	return &awserr.Error{Code: awserr.InvalidRequest, Message: msg}
}

func invalidName() error { return &awserr.Error{Code: ValidationException, Message: MsgInvalidName} }

func hasToken(t *string) bool { return t != nil && *t != "" }

// The checks below run in Decode after shape validation: AWS makes them before it looks the secret
// up. A token is required only by a call that creates a version (§1.7); SDKs always send one.

func (in *CreateSecretInput) check() error {
	hasValue := in.SecretString != nil || in.SecretBinary != nil
	if in.SecretString != nil && in.SecretBinary != nil {
		return invalidParameter(MsgBothValues)
	}
	if hasValue && !hasToken(in.ClientRequestToken) {
		return invalidRequest(MsgTokenRequired)
	}
	return nil
}

func (in *PutSecretValueInput) check() error {
	if in.SecretString == nil && in.SecretBinary == nil {
		return invalidRequest(MsgNoValue)
	}
	if in.SecretString != nil && in.SecretBinary != nil {
		return invalidParameter(MsgBothValues)
	}
	if !hasToken(in.ClientRequestToken) {
		return invalidRequest(MsgTokenRequired)
	}
	return nil
}

func (in *UpdateSecretInput) check() error {
	if in.SecretString != nil && in.SecretBinary != nil {
		return invalidParameter(MsgBothValues)
	}
	if (in.SecretString != nil || in.SecretBinary != nil) && !hasToken(in.ClientRequestToken) {
		return invalidRequest(MsgTokenRequired)
	}
	return nil
}

func (in *DeleteSecretInput) check() error {
	if w := in.RecoveryWindowInDays; w != nil && (*w < MinRecoveryWindowInDays || *w > MaxRecoveryWindowInDays) {
		return invalidParameter(MsgRecoveryWindow)
	}
	if in.RecoveryWindowInDays != nil && in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery {
		return invalidParameter(MsgForceWithWindow)
	}
	return nil
}

func (in *BatchGetSecretValueInput) check() error {
	// Neither is refused as well: the model documents that one of them must be included.
	if (in.SecretIDList != nil) == (in.Filters != nil) {
		return invalidParameter(MsgBatchEitherOr)
	}
	if in.MaxResults != nil && in.Filters == nil {
		return invalidParameter(MsgBatchMaxResults)
	}
	return checkFilters(in.Filters)
}

func (in *ListSecretsInput) check() error { return checkFilters(in.Filters) }

func checkFilters(filters []Filter) error {
	for _, f := range filters {
		if f.Key == nil {
			return invalidParameter(MsgInvalidFilterKey)
		}
		if f.Values == nil {
			return invalidParameter(MsgInvalidFilterValues + *f.Key)
		}
	}
	return nil
}

func (in *RotateSecretInput) check() error { return in.CheckToken() }

// CheckToken is RotateSecret's token check, made before the lookup (Decode makes it): none →
// InvalidParameterException MsgTokenRequired; not 32-64 characters → InvalidParameterException
// MsgTokenLength.
func (in RotateSecretInput) CheckToken() error {
	if in.ClientRequestToken == nil {
		return invalidParameter(MsgTokenRequired)
	}
	if n := length(*in.ClientRequestToken, false); n < 32 || n > 64 {
		return invalidParameter(MsgTokenLength)
	}
	return nil
}

// CheckRotation is RotateSecret's parameter check that AWS makes after the lookup and the
// pending-deletion check: RotationLambdaARN over 2048 characters, AutomaticallyAfterDays outside
// 1-1000, and both AutomaticallyAfterDays and ScheduleExpression → InvalidParameterException.
// The schedule's own rules (cron and rate syntax, Duration windows) are the caller's.
func (in RotateSecretInput) CheckRotation() error {
	if in.RotationLambdaARN != nil && length(*in.RotationLambdaARN, false) > 2048 {
		return invalidParameter(MsgLambdaARNLength)
	}
	if r := in.RotationRules; r != nil {
		if d := r.AutomaticallyAfterDays; d != nil && (*d < 1 || *d > 1000) {
			return invalidParameter(MsgAfterDaysRange)
		}
		if r.AutomaticallyAfterDays != nil && r.ScheduleExpression != nil {
			return invalidParameter(MsgDaysAndSchedule)
		}
	}
	return nil
}
