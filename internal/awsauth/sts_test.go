package awsauth

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

const testRoleARN = "arn:aws:iam::123456789012:role/billing"

func assumeBody(mod func(v url.Values)) []byte {
	v := url.Values{
		"Action":           {"AssumeRoleWithWebIdentity"},
		"Version":          {"2011-06-15"},
		"RoleArn":          {testRoleARN},
		"RoleSessionName":  {"1772600767000000000"},
		"WebIdentityToken": {"eyJhbGciOiJSUzI1NiJ9.payload.sig"},
	}
	if mod != nil {
		mod(v)
	}
	return []byte(v.Encode())
}

func TestParseAssumeRoleWithWebIdentity(t *testing.T) {
	in, err := ParseAssumeRoleWithWebIdentity(assumeBody(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := AssumeInput{RoleARN: testRoleARN, RoleSessionName: "1772600767000000000",
		WebIdentityToken: "eyJhbGciOiJSUzI1NiJ9.payload.sig", DurationSeconds: 3600}
	if !reflect.DeepEqual(in, want) {
		t.Fatalf("parsed %+v, want %+v", in, want)
	}

	in, err = ParseAssumeRoleWithWebIdentity(assumeBody(func(v url.Values) {
		v.Set("DurationSeconds", "900")
		v.Set("ProviderId", "kubernetes")
		v.Set("Policy", `{"Version":"2012-10-17"}`)
		v.Set("PolicyArns.member.2.arn", "arn:aws:iam::123456789012:policy/two")
		v.Set("PolicyArns.member.1.arn", "arn:aws:iam::123456789012:policy/one")
		v.Set("MinimumSessionTokenSize", "1")
	}))
	if err != nil {
		t.Fatal(err)
	}
	if in.DurationSeconds != 900 || in.ProviderID != "kubernetes" || in.Policy != `{"Version":"2012-10-17"}` ||
		!reflect.DeepEqual(in.PolicyARNs, []string{"arn:aws:iam::123456789012:policy/one", "arn:aws:iam::123456789012:policy/two"}) {
		t.Fatalf("parsed %+v", in)
	}
}

func TestParseAssumeRoleWithWebIdentityRefusals(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.payload.sig"
	for _, tc := range []struct {
		name string
		body []byte
		code string
		msg  string
	}{
		{"no action", assumeBody(func(v url.Values) { v.Del("Action") }), STSInvalidAction,
			"The action or operation requested is invalid. Verify that the action is typed correctly."},
		{"other action", assumeBody(func(v url.Values) { v.Set("Action", "GetCallerIdentity") }), STSInvalidAction,
			"Could not find operation GetCallerIdentity for version 2011-06-15"},
		{"no version", assumeBody(func(v url.Values) { v.Del("Version") }), STSInvalidAction,
			"Could not find operation AssumeRoleWithWebIdentity for version NO_VERSION_SPECIFIED"},
		{"other version", assumeBody(func(v url.Values) { v.Set("Version", "2011-06-16") }), STSInvalidAction,
			"Could not find operation AssumeRoleWithWebIdentity for version 2011-06-16"},
		{"bad encoding", []byte("Action=%zz"), STSValidationError, "not valid application/x-www-form-urlencoded"},
		{"repeated parameter", append(assumeBody(nil), "&RoleArn=arn:aws:iam::1:role/x"...), STSValidationError,
			"The parameter RoleArn appears more than once."},
		{"no role arn", assumeBody(func(v url.Values) { v.Del("RoleArn") }), STSValidationError,
			"1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"},
		{"short role arn", assumeBody(func(v url.Values) { v.Set("RoleArn", "arn:aws:iam") }), STSValidationError,
			"1 validation error detected: Value 'arn:aws:iam' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20"},
		{"long role arn", assumeBody(func(v url.Values) { v.Set("RoleArn", strings.Repeat("a", 2049)) }), STSValidationError,
			"at 'roleArn' failed to satisfy constraint: Member must have length less than or equal to 2048"},
		{"role arn control char", assumeBody(func(v url.Values) { v.Set("RoleArn", testRoleARN+"\x01") }), STSValidationError,
			"at 'roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern"},
		{"session name pattern", assumeBody(func(v url.Values) { v.Set("RoleSessionName", "a b") }), STSValidationError,
			`1 validation error detected: Value 'a b' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`},
		{"session name short", assumeBody(func(v url.Values) { v.Set("RoleSessionName", "a") }), STSValidationError,
			"Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"},
		{"session name long", assumeBody(func(v url.Values) { v.Set("RoleSessionName", strings.Repeat("a", 65)) }), STSValidationError,
			"at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64"},
		{"no token", assumeBody(func(v url.Values) { v.Del("WebIdentityToken") }), STSValidationError,
			"Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null"},
		{"short token", assumeBody(func(v url.Values) { v.Set("WebIdentityToken", "abc") }), STSValidationError,
			"Value '*** Sensitive Data Redacted ***' at 'webIdentityToken' failed to satisfy constraint: Member must have length greater than or equal to 4"},
		{"long token", assumeBody(func(v url.Values) { v.Set("WebIdentityToken", token+strings.Repeat("x", 20000)) }), STSValidationError,
			"Member must have length less than or equal to 20000"},
		{"duration short", assumeBody(func(v url.Values) { v.Set("DurationSeconds", "899") }), STSValidationError,
			"1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"},
		{"duration long", assumeBody(func(v url.Values) { v.Set("DurationSeconds", "43201") }), STSValidationError,
			"Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"},
		{"duration not a number", assumeBody(func(v url.Values) { v.Set("DurationSeconds", "1h") }), STSValidationError,
			"Value '1h' at 'durationSeconds' failed to satisfy constraint"},
		{"two errors", assumeBody(func(v url.Values) { v.Del("RoleArn"); v.Set("RoleSessionName", "a b") }), STSValidationError,
			"2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; Value 'a b' at 'roleSessionName'"},
		{"policy arn index", assumeBody(func(v url.Values) { v.Set("PolicyArns.member.x.arn", testRoleARN) }), STSValidationError,
			"PolicyArns.member.x.arn is not valid"},
		{"too many policy arns", assumeBody(func(v url.Values) {
			for i := 1; i <= 11; i++ {
				v.Set("PolicyArns.member."+strconv.Itoa(i)+".arn", testRoleARN)
			}
		}), STSValidationError, "at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAssumeRoleWithWebIdentity(tc.body)
			wantCode(t, err, tc.code, tc.msg)
			if strings.Contains(err.Error(), token) {
				t.Fatalf("error %q quotes the web identity token", err)
			}
			if StatusOf(err) != 400 {
				t.Fatalf("status %d", StatusOf(err))
			}
		})
	}
}

func TestWriteAssumeRoleResponse(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteAssumeRoleResponse(rec, AssumeOutput{
		AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "se<cret", SessionToken: "v1.tok",
		Expiration:                  time.Date(2026, 3, 4, 6, 6, 7, 900, time.FixedZone("x", 3600)),
		SubjectFromWebIdentityToken: "system:serviceaccount:team-a:billing",
		AssumedRoleARN:              "arn:aws:sts::123456789012:assumed-role/billing/s1",
		AssumedRoleID:               "AROAEXAMPLE:s1",
		Audience:                    "sts.amazonaws.com",
		Provider:                    "kubernetes",
		RequestID:                   "req-1",
	})
	want := `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">` +
		`<AssumeRoleWithWebIdentityResult>` +
		`<SubjectFromWebIdentityToken>system:serviceaccount:team-a:billing</SubjectFromWebIdentityToken>` +
		`<Audience>sts.amazonaws.com</Audience>` +
		`<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/billing/s1</Arn><AssumedRoleId>AROAEXAMPLE:s1</AssumedRoleId></AssumedRoleUser>` +
		`<Credentials><SessionToken>v1.tok</SessionToken><SecretAccessKey>se&lt;cret</SecretAccessKey><Expiration>2026-03-04T05:06:07Z</Expiration><AccessKeyId>ASIAEXAMPLE</AccessKeyId></Credentials>` +
		`<Provider>kubernetes</Provider>` +
		`</AssumeRoleWithWebIdentityResult>` +
		`<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>` +
		`</AssumeRoleWithWebIdentityResponse>`
	if got := rec.Body.String(); got != want {
		t.Fatalf("body\n%s\nwant\n%s", got, want)
	}
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/xml" || rec.Header().Get("X-Amzn-Requestid") != "req-1" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
}

func TestWriteSTSError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteSTSError(rec, 400, STSInvalidIdentityToken, "Token <invalid> & unknown", "req-2")
	want := `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">` +
		`<Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token &lt;invalid&gt; &amp; unknown</Message></Error>` +
		`<RequestId>req-2</RequestId></ErrorResponse>`
	if got := rec.Body.String(); got != want || rec.Code != 400 || rec.Header().Get("Content-Type") != "text/xml" {
		t.Fatalf("%d %v\n%s\nwant\n%s", rec.Code, rec.Header(), got, want)
	}

	rec = httptest.NewRecorder()
	WriteSTSErr(rec, newErr(STSIDPRejectedClaim, "no"), "r")
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "<Type>Sender</Type><Code>IDPRejectedClaim</Code><Message>no</Message>") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	WriteSTSErr(rec, errSecretLeak, "r")
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "hunter2") || !strings.Contains(rec.Body.String(), "<Type>Receiver</Type><Code>InternalFailure</Code>") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

var errSecretLeak = &leakErr{}

type leakErr struct{}

func (*leakErr) Error() string { return "db password hunter2 rejected" }

func TestAssumedRoleARN(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:iam::123456789012:role/billing":          "arn:aws:sts::123456789012:assumed-role/billing/s",
		"arn:aws-cn:iam::123456789012:role/path/to/Thing": "arn:aws-cn:sts::123456789012:assumed-role/Thing/s",
		"arn:aws:iam::123456789012:user/bob":              "",
		"arn:aws:s3:::bucket":                             "",
		"arn:aws:iam::123456789012:role/":                 "",
		"arn:aws:iam::123456789012:role/path/":            "",
		"nonsense":                                        "",
	} {
		if got := AssumedRoleARN(in, "s"); got != want {
			t.Errorf("AssumedRoleARN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGetCallerIdentityRequests(t *testing.T) {
	cases := []struct {
		name, body, action, code string
	}{
		{"the SDK's body", "Action=GetCallerIdentity&Version=2011-06-15", ActionGetCallerIdentity, ""},
		{"another version", "Action=GetCallerIdentity&Version=2010-01-01", ActionGetCallerIdentity, STSInvalidAction},
		{"no version", "Action=GetCallerIdentity", ActionGetCallerIdentity, STSInvalidAction},
		{"a repeated parameter", "Action=GetCallerIdentity&Version=2011-06-15&Version=2011-06-15", ActionGetCallerIdentity, STSValidationError},
		{"another action", "Action=AssumeRoleWithWebIdentity&Version=2011-06-15", "AssumeRoleWithWebIdentity", STSInvalidAction},
		{"not a form", "Action=%zz", "", STSValidationError},
	}
	for _, c := range cases {
		if got := STSAction([]byte(c.body)); got != c.action {
			t.Errorf("%s: action %q, want %q", c.name, got, c.action)
		}
		err := ParseGetCallerIdentity([]byte(c.body))
		var e *awserr.Error
		switch {
		case c.code == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.code != "" && (!errors.As(err, &e) || e.Code != c.code):
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
}
