package awsauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=host,Signature=x",
		"AWS4-HMAC-SHA256 ",
		"AWS4-HMAC-SHA256 Credential=,,,=,=",
		"Bearer x",
		"",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=a;A, Signature=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if (a == nil) == (err == nil) {
			t.Fatalf("parseAuthorization(%q) = %v, %v", h, a, err)
		}
		if err != nil {
			if err.Code != IncompleteSignature {
				t.Fatalf("code %s", err.Code)
			}
			if a := strings.Index(h, "Signature="); a >= 0 && len(h)-a > 20 && strings.Contains(err.Message, h[a:]) {
				t.Fatalf("message %q echoes the signature", err.Message)
			}
			return
		}
		if a.AccessKeyID == "" || a.Date == "" || a.Region == "" || a.Service == "" || a.Terminator == "" ||
			a.Signature == "" || len(a.SignedHeaders) == 0 {
			t.Fatalf("accepted with an empty part: %+v", a)
		}
		for i, n := range a.SignedHeaders {
			if !isLowerToken(n) || (i > 0 && n <= a.SignedHeaders[i-1]) {
				t.Fatalf("accepted signed headers %q", a.SignedHeaders)
			}
		}
	})
}

// FuzzVerify feeds arbitrary Authorization, X-Amz-Date and query strings through Verify.
func FuzzVerify(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260304/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "20260304T050607Z", "a=b&c", "/")
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260304/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-length;host;x-amz-date;x-amz-security-token, Signature=00", "20260304T050607Z", "%zz", "/a/../b")
	f.Fuzz(func(t *testing.T, authz, date, query, path string) {
		r := httptest.NewRequest(http.MethodPost, "https://sm.example/", strings.NewReader("{}"))
		r.URL.RawQuery = query
		r.URL.Path = path
		r.Header.Set("Authorization", authz)
		r.Header.Set("X-Amz-Date", date)
		c, err := Verify(r, []byte("{}"), testOpts())
		if err == nil && c.AccessKeyID != testAKID {
			t.Fatalf("verified %+v", c)
		}
		if err != nil && StatusOf(err) != 400 && StatusOf(err) != 403 {
			t.Fatalf("status %d for %v", StatusOf(err), err)
		}
	})
}

func FuzzOpenSession(f *testing.F) {
	akid, _, token, err := IssueSession(testKey, testClaims())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(akid, token)
	f.Add(akid, token[:len(token)-1])
	f.Add("ASIAAAAAAAAAAAAAAAAA", "v1.")
	f.Add("", "")
	f.Add(akid, "v1.====")
	f.Fuzz(func(t *testing.T, akid, token string) {
		secret, c, err := OpenSession(testKey, akid, token, testNow)
		if err != nil {
			if StatusOf(err) != 400 {
				t.Fatalf("status %d for %v", StatusOf(err), err)
			}
			return
		}
		if len(secret) != secretKeyLen || c.Expiry.Before(testNow) {
			t.Fatalf("opened %d-char secret, claims %+v", len(secret), c)
		}
	})
}

func FuzzParseAssumeRoleWithWebIdentity(f *testing.F) {
	f.Add(string(assumeBody(nil)))
	f.Add("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&DurationSeconds=99999999999&PolicyArns.member.0.arn=x")
	f.Add("%")
	f.Fuzz(func(t *testing.T, body string) {
		in, err := ParseAssumeRoleWithWebIdentity([]byte(body))
		if err != nil {
			if StatusOf(err) != 400 {
				t.Fatalf("status %d for %v", StatusOf(err), err)
			}
			return
		}
		if in.DurationSeconds < 900 || in.DurationSeconds > 43200 || utf16Len(in.RoleSessionName) < 2 ||
			utf16Len(in.RoleARN) < 20 || utf16Len(in.WebIdentityToken) < 4 {
			t.Fatalf("accepted %+v", in)
		}
	})
}
