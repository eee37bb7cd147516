package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

var decodeCodes = map[string]bool{
	SerializationException: true, ValidationException: true, awserr.InvalidParameter: true, awserr.InvalidRequest: true,
}

func fuzzDecode[T any](t *testing.T, body []byte) {
	v, err := Decode[T](body)
	if err != nil {
		var e *awserr.Error
		if !errors.As(err, &e) || !decodeCodes[e.Code] {
			t.Fatalf("%T: error %v is not a decoding error", v, err)
		}
		if !reflect.ValueOf(v).IsZero() {
			t.Fatalf("%T: a value with an error: %#v", v, v)
		}
		checkNoSecretEchoed(t, body, e.Message)
		return
	}
	// What decoded re-encodes to the same input.
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T: %v", v, err)
	}
	w, err := Decode[T](again)
	if err != nil {
		t.Fatalf("%T: %s decoded, its encoding %s does not: %v", v, body, again, err)
	}
	if !reflect.DeepEqual(v, w) {
		t.Fatalf("%T: %#v re-decodes as %#v", v, v, w)
	}
}

// checkNoSecretEchoed: a SecretString of the body appears in the message only if it also appears
// elsewhere in the body (e.g. as the SecretId) or in the fixed wording.
func checkNoSecretEchoed(t *testing.T, body []byte, msg string) {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return
	}
	for _, key := range []string{"SecretString", "SecretBinary", "RotationToken"} {
		s, ok := m[key].(string)
		if !ok || len(s) < 6 || !strings.Contains(msg, s) {
			continue
		}
		enc, _ := json.Marshal(s)
		if bytes.Count(body, enc[1:len(enc)-1]) < 2 && !strings.Contains(msgTemplates, s) {
			t.Fatalf("%s %q is echoed in %q", key, s, msg)
		}
	}
}

const msgTemplates = MsgInvalidName + MsgTokenRequired + MsgBothValues + MsgNoValue + MsgRecoveryWindow + MsgForceWithWindow +
	MsgBatchEitherOr + MsgBatchMaxResults + MsgInvalidFilterKey + MsgInvalidFilterValues + MsgTokenLength +
	" validation errors detected: Value at '' failed to satisfy constraint: Member must have length greater than or equal to less than or equal to" +
	" secretString secretBinary rotationToken Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\-]+$ Value null Member must not be null"

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{}`, `null`, `{"SecretId":"a"}`, `{"Name":"prod/db","SecretString":"v","ClientRequestToken":"` + token36 + `"}`,
		`{"SecretId":"a","SecretBinary":"AAE=","ClientRequestToken":"` + token36 + `","VersionStages":["AWSCURRENT"]}`,
		`{"Filters":[{"Key":"name","Values":["!a","b"]}],"MaxResults":5,"SortBy":"name","SortOrder":"desc"}`,
		`{"SecretId":"a","ClientRequestToken":"` + token36 + `","RotationRules":{"AutomaticallyAfterDays":3,"Duration":"2h"}}`,
		`{"SecretIdList":["a","b"]}`, `{"SecretId":"a","RecoveryWindowInDays":7.5}`, `{"SecretId":"a","TagKeys":["k",null]}`,
		`{"SecretId":5}`, `[`, `{"Tags":[{"Key":"k"}],"Name":"n"}`, `{"IncludePlannedDeletion":"yes"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzDecode[CreateSecretInput](t, body)
		fuzzDecode[PutSecretValueInput](t, body)
		fuzzDecode[UpdateSecretInput](t, body)
		fuzzDecode[GetSecretValueInput](t, body)
		fuzzDecode[ListSecretsInput](t, body)
		fuzzDecode[BatchGetSecretValueInput](t, body)
		fuzzDecode[RotateSecretInput](t, body)
		fuzzDecode[DeleteSecretInput](t, body)
		fuzzDecode[UntagResourceInput](t, body)
		fuzzDecode[TagResourceInput](t, body)
		fuzzDecode[GetRandomPasswordInput](t, body)
	})
}

func FuzzDecodeToken(f *testing.F) {
	f.Add(EncodeToken(tokenKey, PageState{Binding: "b", After: []string{"x", "y"}}))
	f.Add(EncodeToken(tokenKey, PageState{Binding: "", Offset: 3}))
	f.Add("")
	f.Add("eyJ2IjoxfQ")
	f.Fuzz(func(t *testing.T, token string) {
		st, err := DecodeToken(tokenKey, token)
		if err != nil {
			var e *awserr.Error
			if !errors.As(err, &e) || e.Code != InvalidNextTokenException || e.Message != MsgInvalidNextToken {
				t.Fatalf("DecodeToken(%q): %v", token, err)
			}
			return
		}
		back, err := DecodeToken(tokenKey, EncodeToken(tokenKey, st))
		if err != nil || !reflect.DeepEqual(back, st) {
			t.Fatalf("%+v re-encoded: %+v, %v", st, back, err)
		}
		if _, err := DecodeTokenFor(tokenKey, token, st.Binding+"x"); awserr.CodeOf(err) != InvalidNextTokenException {
			t.Fatalf("another binding accepted: %v", err)
		}
	})
}

func FuzzObjectName(f *testing.F) {
	for _, s := range []string{"prod", "Prod/DB", "a--b", "a.b", "-", "///", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := ObjectName(name)
		if !isDNS1123Subdomain(got) || len(got) > MaxObjectNameLength {
			t.Fatalf("ObjectName(%q) = %q", name, got)
		}
		if (got == name) != (isDNS1123Subdomain(name) && !strings.Contains(name, "--")) {
			t.Fatalf("ObjectName(%q) = %q: kept when it must not be, or the reverse", name, got)
		}
		if got != name && (!derivedName.MatchString(got) || ObjectName(got) == got) {
			t.Fatalf("ObjectName(%q) = %q is not a derived name", name, got)
		}
	})
}
