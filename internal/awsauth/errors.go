package awsauth

import (
	"errors"
	"net/http"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// Error types of AWS's request authentication, as AWS JSON services (Secrets Manager among them)
// name them in __type. awserr does not define them; they are built into *awserr.Error values here.
const (
	MissingAuthenticationToken = "MissingAuthenticationTokenException"
	IncompleteSignature        = "IncompleteSignatureException"
	InvalidSignature           = "InvalidSignatureException"
	UnrecognizedClient         = "UnrecognizedClientException"
	ExpiredToken               = "ExpiredTokenException"
)

// Error codes of STS (Query protocol, <Error><Code>) that AssumeRoleWithWebIdentity returns.
// STS's expired-token code is the same string as ExpiredToken.
const (
	STSInvalidIdentityToken = "InvalidIdentityToken"
	STSExpiredToken         = "ExpiredTokenException"
	STSIDPRejectedClaim     = "IDPRejectedClaim"
	STSValidationError      = "ValidationError"
	STSInvalidAction        = "InvalidAction"
	STSAccessDenied         = "AccessDenied"
)

// Messages worded as AWS words them. None carries a secret, a token or a signature.
const (
	MsgMissingAuthenticationToken = "Missing Authentication Token"
	MsgUnrecognizedClient         = "The security token included in the request is invalid."
	MsgExpiredToken               = "The security token included in the request is expired"
	MsgSignatureMismatch          = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
)

// statuses holds the HTTP status AWS answers each error type with.
//
// Authentication failures follow Secrets Manager's "Common Errors" reference: everything is 400
// except MissingAuthenticationToken, which is documented as 403. (The Coral-based JSON services
// answer UnrecognizedClientException, InvalidSignatureException, IncompleteSignatureException and
// ExpiredTokenException with 400; the SDKs decide by __type, not by status, so either works.)
// STS codes follow the AssumeRoleWithWebIdentity reference: IDPRejectedClaim and AccessDenied are
// 403, the rest 400.
var statuses = map[string]int{
	MissingAuthenticationToken: http.StatusForbidden,
	IncompleteSignature:        http.StatusBadRequest,
	InvalidSignature:           http.StatusBadRequest,
	UnrecognizedClient:         http.StatusBadRequest,
	ExpiredToken:               http.StatusBadRequest, // also STSExpiredToken

	STSInvalidIdentityToken: http.StatusBadRequest,
	STSIDPRejectedClaim:     http.StatusForbidden,
	STSValidationError:      http.StatusBadRequest,
	STSInvalidAction:        http.StatusBadRequest,
	STSAccessDenied:         http.StatusForbidden,

	awserr.InternalServiceError: http.StatusInternalServerError,
}

// StatusOf is the HTTP status to answer err with: 200 for nil, AWS's status for the error types
// above, 400 for any other *awserr.Error (AWS's client errors, awserr's types included, are 400;
// InternalServiceError is 500), and 500 for an error that is not an *awserr.Error (a failing
// Lookup, a misconfiguration): those are the server's fault and their text should not be sent.
func StatusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var e *awserr.Error
	if !errors.As(err, &e) {
		return http.StatusInternalServerError
	}
	if s, ok := statuses[e.Code]; ok {
		return s
	}
	return http.StatusBadRequest
}

func newErr(code, msg string) *awserr.Error { return &awserr.Error{Code: code, Message: msg} }

func incomplete(msg string) *awserr.Error { return newErr(IncompleteSignature, msg) }

func invalidSig(msg string) *awserr.Error { return newErr(InvalidSignature, msg) }

func unrecognized() *awserr.Error { return newErr(UnrecognizedClient, MsgUnrecognizedClient) }

func expired() *awserr.Error { return newErr(ExpiredToken, MsgExpiredToken) }

// clean makes a client-supplied value safe to quote in a message: characters other than letters,
// digits and -_.:/ become '?', and it is cut to max bytes. Only non-secret values (an algorithm
// name, a scope element, an action) are ever quoted.
func clean(s string, max int) string {
	cut := false
	if len(s) > max {
		s, cut = s[:max], true
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == ':', c == '/':
		default:
			b[i] = '?'
		}
	}
	if cut {
		return string(b) + "..."
	}
	return string(b)
}
