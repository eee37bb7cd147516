package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// ContentType is the AWS JSON 1.1 media type of every request and answer.
const ContentType = "application/x-amz-json-1.1"

// Error types that internal/awserr does not name: the protocol's own and the remaining Secrets
// Manager ones.
const (
	ValidationException                 = awserr.ValidationException
	SerializationException              = "SerializationException"
	UnknownOperationException           = "UnknownOperationException"
	InvalidNextTokenException           = "InvalidNextTokenException"
	PublicPolicyException               = "PublicPolicyException"
	ThrottlingException                 = "ThrottlingException"
	UnrecognizedClientException         = "UnrecognizedClientException"
	InvalidSignatureException           = "InvalidSignatureException"
	IncompleteSignatureException        = "IncompleteSignatureException"
	MissingAuthenticationTokenException = "MissingAuthenticationTokenException"
	ExpiredTokenException               = "ExpiredTokenException"
	ServiceUnavailable                  = "ServiceUnavailable"
)

// MsgInternal is the message of an error that is not an *awserr.Error: the model's own words
// for InternalServiceError, so nothing internal reaches a client.
const MsgInternal = "An error occurred on the server side."

// lowerCaseMessage lists the types whose body carries "message" rather than "Message". AWS sends
// "Message" for the errors of the Secrets Manager model (and for SerializationException and
// AccessDeniedException), and "message" for the request-validation, throttling and
// authentication errors its service framework raises before the operation runs. SDKs read
// either; raw clients see what AWS sends.
var lowerCaseMessage = map[string]bool{
	ValidationException:                 true,
	UnknownOperationException:           true,
	ThrottlingException:                 true,
	UnrecognizedClientException:         true,
	InvalidSignatureException:           true,
	IncompleteSignatureException:        true,
	MissingAuthenticationTokenException: true,
	ExpiredTokenException:               true,
}

// StatusOf is the HTTP status of an error type: 500 for InternalServiceError (the model's only
// server fault), 503 for ServiceUnavailable, and 400 for everything else —
// ResourceNotFoundException, AccessDeniedException and ThrottlingException included — as AWS
// JSON 1.1 answers errors without an httpError trait.
func StatusOf(code string) int {
	switch code {
	case awserr.InternalServiceError:
		return http.StatusInternalServerError
	case ServiceUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// ErrorBody is an error's JSON body: the plain type name (SDKs also accept a namespaced one) and
// the message, omitted when there is none (UnknownOperationException, and a body that is not
// JSON at all, as AWS answers them).
func ErrorBody(code, message string) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"__type":`)
	writeJSONString(&buf, code)
	if message != "" {
		if lowerCaseMessage[code] {
			buf.WriteString(`,"message":`)
		} else {
			buf.WriteString(`,"Message":`)
		}
		writeJSONString(&buf, message)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	buf.Truncate(buf.Len() - 1) // Encode's newline
}

// AsError is err as an *awserr.Error; any other error is an InternalServiceError with MsgInternal
// (its text, which may name internals, is not sent: log it).
func AsError(err error) *awserr.Error {
	var e *awserr.Error
	if errors.As(err, &e) && e.Code != "" {
		return e
	}
	return &awserr.Error{Code: awserr.InternalServiceError, Message: MsgInternal}
}

// WriteError answers an error: StatusOf its type, Content-Type application/x-amz-json-1.1,
// X-Amzn-ErrorType (which SDKs read before the body) and ErrorBody. The caller sets
// x-amzn-RequestId before calling.
func WriteError(w http.ResponseWriter, err error) {
	e := AsError(err)
	body := ErrorBody(e.Code, e.Message)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("X-Amzn-ErrorType", e.Code)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(StatusOf(e.Code))
	_, _ = w.Write(body)
}

// Marshal is an output as AWS sends it: members without a value omitted, "<", ">" and "&" not
// escaped; nil is {}.
func Marshal(v any) ([]byte, error) {
	if v == nil {
		return []byte("{}"), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// WriteJSON answers a success: 200, Content-Type application/x-amz-json-1.1 and Marshal(v). An
// output that cannot be encoded is answered with an InternalServiceError instead.
func WriteJSON(w http.ResponseWriter, v any) {
	body, err := Marshal(v)
	if err != nil {
		WriteError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// BatchError is one secret's failure for BatchGetSecretValue's Errors (an error that is not an
// *awserr.Error is reported as InternalServiceError).
func BatchError(secretID string, err error) APIError {
	e := AsError(err)
	return APIError{SecretID: secretID, ErrorCode: e.Code, Message: e.Message}
}
