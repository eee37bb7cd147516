// Package awserr holds AWS Secrets Manager's error types, shared by the secret store, the kubectl
// plugin and the AWS-compatible API, so a script (or an SDK) can tell failures apart the way it
// does against AWS. Messages never carry a secret value.
package awserr

import (
	"errors"
	"fmt"
)

// AWS's error type names (the API's __type and the plugin's error prefix).
const (
	ResourceNotFound        = "ResourceNotFoundException"
	InvalidRequest          = "InvalidRequestException"
	InvalidParameter        = "InvalidParameterException"
	ResourceExists          = "ResourceExistsException"
	LimitExceeded           = "LimitExceededException"
	DecryptionFailure       = "DecryptionFailure"
	EncryptionFailure       = "EncryptionFailure"
	InternalServiceError    = "InternalServiceError"
	PreconditionNotMet      = "PreconditionNotMetException"
	MalformedPolicyDocument = "MalformedPolicyDocumentException"
	AccessDenied            = "AccessDeniedException"
	ValidationException     = "ValidationException"
)

// Error is a failure with AWS's type and message.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an Error with a formatted message.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the AWS type of err, or "" when it is not an *Error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Is reports whether err is an *Error of the given type.
func Is(err error, code string) bool { return CodeOf(err) == code }

// Exit codes of the plugin, one per class, so scripts can tell failures apart. 0 is success,
// 1 any other failure (including the cluster refusing a request), 2 bad arguments.
var exitCodes = map[string]int{
	ResourceNotFound:     3,
	InvalidRequest:       4,
	InvalidParameter:     5,
	ResourceExists:       6,
	LimitExceeded:        7,
	DecryptionFailure:    8,
	EncryptionFailure:    8,
	PreconditionNotMet:   9,
	AccessDenied:         10,
	InternalServiceError: 1,
}

// ExitCode is the plugin's exit code for an error of the given type (1 when it has none).
func ExitCode(code string) int {
	if n, ok := exitCodes[code]; ok {
		return n
	}
	return 1
}

// Well-known messages, worded as AWS words them.
const (
	MsgMarkedForDeletion = "You can't perform this operation on the secret because it was marked for deletion."
	MsgSecretNotFound    = "Secrets Manager can't find the specified secret."
)
