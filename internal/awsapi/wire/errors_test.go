package wire

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

func TestWriteError(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		typ    string
		body   string
	}{
		{"not found", awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound), 400, awserr.ResourceNotFound,
			`{"__type":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}`},
		{"wrapped", fmt.Errorf("get: %w", awserr.New(awserr.InvalidRequest, "%s", awserr.MsgMarkedForDeletion)), 400, awserr.InvalidRequest,
			`{"__type":"InvalidRequestException","Message":"You can't perform this operation on the secret because it was marked for deletion."}`},
		{"validation uses message", &awserr.Error{Code: ValidationException, Message: MsgInvalidName}, 400, ValidationException,
			`{"__type":"ValidationException","message":"Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"}`},
		{"throttling uses message", &awserr.Error{Code: ThrottlingException, Message: "Rate exceeded"}, 400, ThrottlingException,
			`{"__type":"ThrottlingException","message":"Rate exceeded"}`},
		{"serialization uses Message", &awserr.Error{Code: SerializationException, Message: msgStartOfStructure}, 400, SerializationException,
			`{"__type":"SerializationException","Message":"Start of structure or map found where not expected"}`},
		{"bare serialization", bareSerialization(), 400, SerializationException, `{"__type":"SerializationException"}`},
		{"unknown operation", &awserr.Error{Code: UnknownOperationException}, 400, UnknownOperationException, `{"__type":"UnknownOperationException"}`},
		{"access denied", &awserr.Error{Code: awserr.AccessDenied, Message: "denied"}, 400, awserr.AccessDenied, `{"__type":"AccessDeniedException","Message":"denied"}`},
		{"internal", &awserr.Error{Code: awserr.InternalServiceError, Message: MsgInternal}, 500, awserr.InternalServiceError,
			`{"__type":"InternalServiceError","Message":"An error occurred on the server side."}`},
		{"plain error hides its text", errors.New("etcd: password=hunter2 refused"), 500, awserr.InternalServiceError,
			`{"__type":"InternalServiceError","Message":"An error occurred on the server side."}`},
		{"error without code", &awserr.Error{Message: "x"}, 500, awserr.InternalServiceError,
			`{"__type":"InternalServiceError","Message":"An error occurred on the server side."}`},
		{"unavailable", &awserr.Error{Code: ServiceUnavailable, Message: "later"}, 503, ServiceUnavailable, `{"__type":"ServiceUnavailable","Message":"later"}`},
		{"no HTML escaping", &awserr.Error{Code: awserr.InvalidParameter, Message: `a <b> & "c"`}, 400, awserr.InvalidParameter,
			`{"__type":"InvalidParameterException","Message":"a <b> & \"c\""}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, c.err)
			if rec.Code != c.status {
				t.Errorf("status %d, want %d", rec.Code, c.status)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/x-amz-json-1.1" {
				t.Errorf("Content-Type %q", got)
			}
			if got := rec.Header().Get("X-Amzn-ErrorType"); got != c.typ {
				t.Errorf("X-Amzn-ErrorType %q, want %q", got, c.typ)
			}
			if got := rec.Body.String(); got != c.body {
				t.Errorf("body %s\nwant %s", got, c.body)
			}
			if got := rec.Header().Get("Content-Length"); got != fmt.Sprint(len(c.body)) {
				t.Errorf("Content-Length %q", got)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	for code, want := range map[string]int{
		awserr.ResourceNotFound: 400, awserr.AccessDenied: 400, ThrottlingException: 400, ValidationException: 400,
		awserr.InternalServiceError: 500, ServiceUnavailable: 503, "Anything": 400,
	} {
		if got := StatusOf(code); got != want {
			t.Errorf("StatusOf(%s) = %d, want %d", code, got, want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	created := time.UnixMilli(1523477145713)
	f := false
	cases := []struct {
		name string
		v    any
		body string
	}{
		{"nil", nil, `{}`},
		{"tag output", TagResourceOutput{}, `{}`},
		{"empty list", ListSecretsOutput{}, `{"SecretList":[]}`},
		{"empty versions", ListSecretVersionIDsOutput{ARN: "arn", Name: "n"}, `{"Versions":[],"ARN":"arn","Name":"n"}`},
		{"empty batch", BatchGetSecretValueOutput{}, `{"SecretValues":[],"Errors":[]}`},
		{"batch error", BatchGetSecretValueOutput{Errors: []APIError{BatchError("x", awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound))}},
			`{"SecretValues":[],"Errors":[{"SecretId":"x","ErrorCode":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}]}`},
		{"create without value", CreateSecretOutput{ARN: "arn", Name: "n"}, `{"ARN":"arn","Name":"n"}`},
		{"describe zero values AWS sends", DescribeSecretOutput{Name: "n", RotationEnabled: &f, Tags: []Tag{}, CreatedDate: NewTimestamp(created)},
			`{"Name":"n","RotationEnabled":false,"Tags":[],"CreatedDate":1523477145.713}`},
		{"describe absent members", DescribeSecretOutput{Name: "n", LastAccessedDate: NewTimestamp(time.Time{})}, `{"Name":"n"}`},
		{"secret string unescaped", GetSecretValueOutput{SecretString: ptr(`{"pw":"<&>"}`)}, `{"SecretString":"{\"pw\":\"<&>\"}"}`},
		{"secret binary base64", GetSecretValueOutput{SecretBinary: []byte{0xff, 0, 1}}, `{"SecretBinary":"/wAB"}`},
		{"deprecated version", ListSecretVersionIDsOutput{Versions: []SecretVersionsListEntry{{VersionID: versionA, CreatedDate: NewTimestamp(time.Unix(1700000000, 0))}}},
			`{"Versions":[{"VersionId":"` + versionA + `","CreatedDate":1700000000}]}`},
		{"validate policy false", ValidateResourcePolicyOutput{}, `{"PolicyValidationPassed":false}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteJSON(rec, c.v)
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ContentType {
				t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if got := rec.Body.String(); got != c.body {
				t.Fatalf("body %s\nwant %s", got, c.body)
			}
		})
	}
}

func TestWriteJSONUnencodable(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, map[string]any{"x": func() {}})
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "InternalServiceError") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestTimestamp(t *testing.T) {
	cases := []struct {
		t    time.Time
		json string
	}{
		{time.UnixMilli(1523477145713), "1523477145.713"},
		{time.Unix(1523477145, 0), "1523477145"},
		{time.Unix(1523477145, 700_000_000), "1523477145.7"},
		{time.Unix(1523477145, 10_000_000), "1523477145.01"},
		{time.Unix(1523477145, 999_999_999), "1523477145.999"}, // truncated to the millisecond
		{time.UnixMilli(-1500), "-1.5"},
	}
	for _, c := range cases {
		b, err := Timestamp{c.t}.MarshalJSON()
		if err != nil || string(b) != c.json {
			t.Errorf("%v → %s, %v; want %s", c.t, b, err, c.json)
		}
		var back Timestamp
		if err := back.UnmarshalJSON(b); err != nil || !back.Equal(c.t.Truncate(time.Millisecond)) {
			t.Errorf("%s back: %v, %v", b, back.Time, err)
		}
	}
	var ts Timestamp
	if err := ts.UnmarshalJSON([]byte("1.523477145713E9")); err != nil || ts.UnixMilli() != 1523477145713 {
		t.Errorf("scientific notation: %v %v", ts.Time, err)
	}
	if err := ts.UnmarshalJSON([]byte(`"2020-01-01"`)); err == nil {
		t.Error("a string is not a timestamp")
	}
	if NewTimestamp(time.Time{}) != nil || NewTimestamp(time.Unix(1, 0)) == nil {
		t.Error("NewTimestamp: nil exactly for the zero time")
	}
}

func TestParseTarget(t *testing.T) {
	for target, want := range map[string]string{
		"secretsmanager.GetSecretValue":           OpGetSecretValue,
		"secretsmanager.ListSecrets":              OpListSecrets,
		"secretsmanager.PutResourcePolicy":        OpPutResourcePolicy,
		"secretsmanager.ReplicateSecretToRegions": OpReplicateSecretToRegions,
	} {
		op, err := ParseTarget(target)
		if err != nil || op != want {
			t.Errorf("ParseTarget(%q) = %q, %v", target, op, err)
		}
	}
	for _, target := range []string{"", "GetSecretValue", "secretsmanager.getSecretValue", "secretsmanager.Frobnicate",
		"SecretsManager.GetSecretValue", "kms.GetSecretValue", "secretsmanager."} {
		_, err := ParseTarget(target)
		var e *awserr.Error
		if !errors.As(err, &e) || e.Code != UnknownOperationException || e.Message != "" {
			t.Errorf("ParseTarget(%q) = %v, want UnknownOperationException without message", target, err)
		}
	}
	if !Supported(OpGetRandomPassword) || !Supported(OpUpdateSecretVersionStage) || !Supported(OpGetResourcePolicy) || Supported(OpPutResourcePolicy) || Supported(OpStopReplicationToReplica) {
		t.Error("Supported")
	}
	n := 0
	for op := range supported {
		if modelled[op] {
			t.Errorf("%s both supported and unsupported", op)
		}
		n++
	}
	if n+len(modelled) != 23 {
		t.Errorf("%d operations, the model has 23", n+len(modelled))
	}
	e := Unsupported(OpPutResourcePolicy)
	if e.Code != awserr.InvalidRequest || !strings.HasPrefix(e.Message, "PutResourcePolicy is not supported") {
		t.Errorf("Unsupported = %v", e)
	}
}

func TestAsError(t *testing.T) {
	orig := awserr.New(awserr.LimitExceeded, "too many")
	if AsError(fmt.Errorf("x: %w", orig)) != orig {
		t.Error("AsError must unwrap")
	}
	if e := AsError(errors.New("boom")); e.Code != awserr.InternalServiceError || e.Message != MsgInternal {
		t.Errorf("AsError(plain) = %v", e)
	}
	if e := BatchError("s", errors.New("boom")); e.ErrorCode != awserr.InternalServiceError || e.SecretID != "s" || e.Message != MsgInternal {
		t.Errorf("BatchError = %+v", e)
	}
}
