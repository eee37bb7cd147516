package awsauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

const (
	testAKID   = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testToken  = "FwoGZXIvYXdzEXAMPLETOKEN"
)

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func staticLookup(akid, token string) (string, error) {
	if akid == testAKID {
		return testSecret, nil
	}
	return "", nil
}

func testOpts() VerifyOptions {
	return VerifyOptions{
		Now:     func() time.Time { return testNow },
		Service: "secretsmanager",
		Regions: []string{"us-east-1"},
		Lookup:  staticLookup,
	}
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var testCreds = aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}

func signReq(t *testing.T, req *http.Request, body []byte, creds aws.Credentials, service, region string, at time.Time) {
	t.Helper()
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hashHex(body), service, region, at); err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
}

// jsonReq builds a POST like the secretsmanager client sends (JSON 1.1, X-Amz-Target).
func jsonReq(t *testing.T, base string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	req.Header.Set("Amz-Sdk-Invocation-Id", "7f1d5c1e-1d5c-4b6e-9a57-1c2b3d4e5f60")
	req.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0 os/linux")
	return req
}

// wire is an httptest server whose handler runs Verify on each request it receives, so requests
// are checked as they arrive over HTTP (Host and Content-Length as the server sees them).
type wire struct {
	srv  *httptest.Server
	opts VerifyOptions
	got  chan wireResult
}

type wireResult struct {
	caller Caller
	err    error
}

func newWire(t *testing.T, opts VerifyOptions) *wire {
	t.Helper()
	w := &wire{opts: opts, got: make(chan wireResult, 1)}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.got <- wireResult{err: err}
			return
		}
		c, err := Verify(r, body, w.opts)
		w.got <- wireResult{c, err}
		rw.WriteHeader(StatusOf(err))
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *wire) do(t *testing.T, req *http.Request) (Caller, error) {
	t.Helper()
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("sending: %v", err)
	}
	resp.Body.Close()
	res := <-w.got
	if want := StatusOf(res.err); resp.StatusCode != want {
		t.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	return res.caller, res.err
}

func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	var e *awserr.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *awserr.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code %s (%s), want %s", e.Code, e.Message, code)
	}
	if !strings.Contains(e.Message, msgPart) {
		t.Fatalf("message %q does not contain %q", e.Message, msgPart)
	}
	if strings.Contains(e.Message, testSecret) || strings.Contains(e.Message, testToken) {
		t.Fatalf("message %q leaks a secret", e.Message)
	}
}

func TestVerifyJSONPostOverTheWire(t *testing.T) {
	w := newWire(t, testOpts())
	body := []byte(`{"SecretId":"prod/db"}`)
	req := jsonReq(t, w.srv.URL, body)
	signReq(t, req, body, testCreds, "secretsmanager", "us-east-1", testNow)
	if !strings.Contains(req.Header.Get("Authorization"), "content-length;content-type;host;x-amz-date;x-amz-target") {
		t.Fatalf("the SDK did not sign the headers this test expects: %s", req.Header.Get("Authorization"))
	}
	c, err := w.do(t, req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := Caller{AccessKeyID: testAKID, Region: "us-east-1", Service: "secretsmanager"}
	if c != want {
		t.Fatalf("caller %+v, want %+v", c, want)
	}
}

func TestVerifyJSONPostInProcess(t *testing.T) {
	body := []byte(`{"SecretId":"prod/db"}`)
	req := jsonReq(t, "https://secretsmanager.us-east-1.amazonaws.com", body)
	signReq(t, req, body, testCreds, "secretsmanager", "us-east-1", testNow)
	if _, err := Verify(req, body, testOpts()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The same request with one byte of body changed must not pass.
	if _, err := Verify(req, []byte(`{"SecretId":"prod/dc"}`), testOpts()); err == nil {
		t.Fatal("tampered body verified")
	}
}

func TestVerifyQueryGET(t *testing.T) {
	opts := testOpts()
	opts.Service = "sts"
	w := newWire(t, opts)
	req, err := http.NewRequest(http.MethodGet, w.srv.URL+"/a%20b/c!d?Version=2011-06-15&Action=GetCallerIdentity&b=x%20y&a=%2F&a=-&plus=1%2B1&space=a+b&empty=&bare", nil)
	if err != nil {
		t.Fatal(err)
	}
	signReq(t, req, nil, testCreds, "sts", "us-east-1", testNow)
	c, err := w.do(t, req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Service != "sts" || c.AccessKeyID != testAKID {
		t.Fatalf("caller %+v", c)
	}
}

// A client that sends its query in its own order (the SDK rewrites it canonically) must still
// verify: the server sorts after encoding.
func TestVerifyQueryUnsortedOnTheWire(t *testing.T) {
	w := newWire(t, testOpts())
	raw := "z=1&Action=List&a=b%2Fc&a=b-c&k=%7E~&sp=a%20b"
	req, err := http.NewRequest(http.MethodGet, w.srv.URL+"/?"+raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	signed := req.Clone(context.Background())
	signReq(t, signed, nil, testCreds, "secretsmanager", "us-east-1", testNow)
	if signed.URL.RawQuery == raw {
		t.Fatal("expected the signer to rewrite the query canonically")
	}
	req.Header = signed.Header
	if req.URL.RawQuery != raw {
		t.Fatal("request query changed")
	}
	if _, err := w.do(t, req); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyHeaderCanonicalisation(t *testing.T) {
	w := newWire(t, testOpts())
	body := []byte(`{}`)
	req := jsonReq(t, w.srv.URL, body)
	req.Header.Set("X-Amz-Meta-Spaces", "  a   b    c  ")
	req.Header.Add("X-Amz-Meta-Multi", "one")
	req.Header.Add("X-Amz-Meta-Multi", "  two  three ")
	signReq(t, req, body, testCreds, "secretsmanager", "us-east-1", testNow)
	if !strings.Contains(req.Header.Get("Authorization"), "x-amz-meta-multi;x-amz-meta-spaces") {
		t.Fatalf("headers not signed: %s", req.Header.Get("Authorization"))
	}
	if _, err := w.do(t, req); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	r.Header.Add("X-A", "  a   b    c  ")
	r.Header.Add("X-B", "one")
	r.Header.Add("X-B", "two  three")
	got := canonicalHeaders(r, []string{"host", "x-a", "x-b", "x-missing"})
	want := "host:example.com\nx-a:a b c\nx-b:one,two three\nx-missing:\n"
	if got != want {
		t.Fatalf("canonical headers %q, want %q", got, want)
	}
}

// The Go SDK signs the path as sent; botocore (and the SigV4 suite) sign it normalised. Both
// must verify, against the path the server actually received.
func TestVerifyPathForms(t *testing.T) {
	w := newWire(t, testOpts())
	const odd = "/a/./b//c/../d"

	req, _ := http.NewRequest(http.MethodGet, w.srv.URL+odd, nil)
	signReq(t, req, nil, testCreds, "secretsmanager", "us-east-1", testNow)
	if _, err := w.do(t, req); err != nil {
		t.Fatalf("as-sent form: %v", err)
	}

	norm, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/a/b/d", nil)
	signReq(t, norm, nil, testCreds, "secretsmanager", "us-east-1", testNow)
	req, _ = http.NewRequest(http.MethodGet, w.srv.URL+odd, nil)
	req.Header = norm.Header
	if _, err := w.do(t, req); err != nil {
		t.Fatalf("normalised form: %v", err)
	}

	// A signature over another path is still refused.
	other, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/a/b/e", nil)
	signReq(t, other, nil, testCreds, "secretsmanager", "us-east-1", testNow)
	req, _ = http.NewRequest(http.MethodGet, w.srv.URL+odd, nil)
	req.Header = other.Header
	_, err := w.do(t, req)
	wantCode(t, err, InvalidSignature, MsgSignatureMismatch)
}

func TestRemoveDotSegments(t *testing.T) {
	for in, want := range map[string]string{
		"/":                         "/",
		"":                          "/",
		"//":                        "/",
		"/./":                       "/",
		"/example/..":               "/",
		"/example1/example2/../..":  "/",
		"/example/.":                "/example",
		"/example/./":               "/example/",
		"/a//b/":                    "/a/b/",
		"/a/b/../../../c":           "/c",
		"/%2E%2E/x":                 "/%2E%2E/x", // encoded dots are not dot segments
		"/a/b/c/./../../g":          "/a/g",
		"/mid/content=5/../6":       "/mid/6",
		"/secretsmanager-endpoint/": "/secretsmanager-endpoint/",
	} {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}

// Vectors from AWS's documentation and SigV4 test suite, independent of the SDK's signer.
func TestVerifyAWSVectors(t *testing.T) {
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	opts := func(service string) VerifyOptions {
		return VerifyOptions{Now: func() time.Time { return at }, Service: service, Lookup: staticLookup}
	}
	t.Run("iam ListUsers", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
		r.Host = "iam.amazonaws.com"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		r.Header.Set("X-Amz-Date", "20150830T123600Z")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
		if _, err := Verify(r, nil, opts("iam")); err != nil {
			t.Fatal(err)
		}
	})
	for _, path := range []string{"/", "/example1/example2/../..", "/example/..", "//", "/./"} {
		t.Run("get-vanilla "+path, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://example.amazonaws.com"+path, nil)
			r.Host = "example.amazonaws.com"
			r.Header.Set("X-Amz-Date", "20150830T123600Z")
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
			if _, err := Verify(r, nil, opts("service")); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("get-vanilla wrong path", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "https://example.amazonaws.com/x", nil)
		r.Host = "example.amazonaws.com"
		r.Header.Set("X-Amz-Date", "20150830T123600Z")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
		_, err := Verify(r, nil, opts("service"))
		wantCode(t, err, InvalidSignature, MsgSignatureMismatch)
	})
}

func TestVerifySessionTokenSigned(t *testing.T) {
	opts := testOpts()
	var sawToken string
	opts.Lookup = func(akid, token string) (string, error) {
		sawToken = token
		return staticLookup(akid, token)
	}
	w := newWire(t, opts)
	body := []byte(`{}`)
	req := jsonReq(t, w.srv.URL, body)
	creds := testCreds
	creds.SessionToken = testToken
	signReq(t, req, body, creds, "secretsmanager", "us-east-1", testNow)
	c, err := w.do(t, req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.SessionToken != testToken || sawToken != testToken {
		t.Fatalf("session token: caller %q, lookup saw %q", c.SessionToken, sawToken)
	}
}

func TestVerifyContentSha256(t *testing.T) {
	w := newWire(t, testOpts())
	body := []byte(`{"SecretId":"x"}`)

	req := jsonReq(t, w.srv.URL, body)
	req.Header.Set("X-Amz-Content-Sha256", hashHex(body))
	signReq(t, req, body, testCreds, "secretsmanager", "us-east-1", testNow)
	if _, err := w.do(t, req); err != nil {
		t.Fatalf("correct x-amz-content-sha256: %v", err)
	}

	req = jsonReq(t, w.srv.URL, body)
	req.Header.Set("X-Amz-Content-Sha256", hashHex([]byte("other")))
	signReq(t, req, body, testCreds, "secretsmanager", "us-east-1", testNow)
	_, err := w.do(t, req)
	wantCode(t, err, InvalidSignature, "x-amz-content-sha256' header does not match")

	req = jsonReq(t, w.srv.URL, body)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(context.Background(), testCreds, req, "UNSIGNED-PAYLOAD", "secretsmanager", "us-east-1", testNow); err != nil {
		t.Fatal(err)
	}
	_, err = w.do(t, req)
	wantCode(t, err, InvalidSignature, "requires a signed payload")
}

// TestVerifyRefusals signs a valid request, spoils one thing, sends it, and checks the error type.
func TestVerifyRefusals(t *testing.T) {
	body := []byte(`{"SecretId":"prod/db"}`)
	type tc struct {
		name   string
		creds  aws.Credentials
		svc    string
		region string
		at     time.Time
		after  func(r *http.Request) *http.Request // applied after signing
		code   string
		msg    string
		status int
	}
	replaceAuth := func(old, new string) func(r *http.Request) *http.Request {
		return func(r *http.Request) *http.Request {
			h := r.Header.Get("Authorization")
			if !strings.Contains(h, old) {
				panic("test setup: " + old + " not in " + h)
			}
			r.Header.Set("Authorization", strings.Replace(h, old, new, 1))
			return r
		}
	}
	cases := []tc{
		{name: "no authorization", after: func(r *http.Request) *http.Request { r.Header.Del("Authorization"); return r },
			code: MissingAuthenticationToken, msg: MsgMissingAuthenticationToken, status: 403},
		{name: "empty authorization", after: func(r *http.Request) *http.Request { r.Header.Set("Authorization", " "); return r },
			code: MissingAuthenticationToken, msg: MsgMissingAuthenticationToken, status: 403},
		{name: "two authorization headers", after: func(r *http.Request) *http.Request {
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
			return r
		}, code: IncompleteSignature, msg: "more than one 'Authorization'", status: 400},
		{name: "other scheme", after: func(r *http.Request) *http.Request { r.Header.Set("Authorization", "Bearer abc.def"); return r },
			code: IncompleteSignature, msg: "Unsupported AWS 'algorithm': 'Bearer'", status: 400},
		{name: "unsupported algorithm", after: replaceAuth("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA512 "),
			code: IncompleteSignature, msg: "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'", status: 400},
		{name: "no signature", after: replaceAuth(", Signature=", ", Sig="),
			code: IncompleteSignature, msg: "requires 'Signature' parameter", status: 400},
		{name: "no credential", after: replaceAuth("Credential=", "Cred="),
			code: IncompleteSignature, msg: "requires 'Credential' parameter", status: 400},
		{name: "short credential", after: replaceAuth("/aws4_request", ""),
			code: IncompleteSignature, msg: "5 slash-delimited", status: 400},
		{name: "unsorted signed headers", after: replaceAuth("content-length;content-type", "content-type;content-length"),
			code: IncompleteSignature, msg: "sorted", status: 400},
		{name: "host not signed", after: replaceAuth(";host;", ";"),
			code: IncompleteSignature, msg: "'Host'", status: 400},
		{name: "x-amz-date not signed", after: replaceAuth(";x-amz-date;", ";"),
			code: IncompleteSignature, msg: "'X-Amz-Date' must be a 'SignedHeader'", status: 400},
		{name: "x-amz-date missing", after: func(r *http.Request) *http.Request { r.Header.Del("X-Amz-Date"); return r },
			code: IncompleteSignature, msg: "'X-Amz-Date' header", status: 400},
		{name: "x-amz-date malformed", after: func(r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Date", testNow.Format(time.RFC3339))
			return r
		}, code: IncompleteSignature, msg: "ISO 8601 basic format", status: 400},
		{name: "bad terminator", after: replaceAuth("/aws4_request", "/aws5_request"),
			code: InvalidSignature, msg: "valid terminator: 'aws4_request', not 'aws5_request'", status: 400},
		{name: "scope date differs", after: replaceAuth("/20260304/", "/20260303/"),
			code: InvalidSignature, msg: "'20260303' != '20260304', from '20260304T050607Z'", status: 400},
		{name: "wrong region", region: "eu-west-1",
			code: InvalidSignature, msg: "Credential should be scoped to a valid region, not 'eu-west-1'.", status: 400},
		{name: "wrong service", svc: "sts",
			code: InvalidSignature, msg: "Credential should be scoped to correct service: 'secretsmanager'.", status: 400},
		{name: "signed too long ago", at: testNow.Add(-5*time.Minute - time.Second),
			code: InvalidSignature, msg: "Signature expired: 20260304T050106Z is now earlier than 20260304T050107Z (20260304T050607Z - 5 min.)", status: 400},
		{name: "signed in the future", at: testNow.Add(5*time.Minute + time.Second),
			code: InvalidSignature, msg: "Signature not yet current: 20260304T051108Z is still later than 20260304T051107Z (20260304T050607Z + 5 min.)", status: 400},
		{name: "unknown access key", creds: aws.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: testSecret},
			code: UnrecognizedClient, msg: MsgUnrecognizedClient, status: 400},
		{name: "wrong secret", creds: aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: "not-the-secret"},
			code: InvalidSignature, msg: MsgSignatureMismatch, status: 400},
		{name: "session token header not signed", after: func(r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Security-Token", testToken)
			return r
		}, code: IncompleteSignature, msg: "'X-Amz-Security-Token' must be a 'SignedHeader'", status: 400},
		{name: "tampered header", after: func(r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Target", "secretsmanager.DeleteSecret")
			return r
		}, code: InvalidSignature, msg: MsgSignatureMismatch, status: 400},
		{name: "tampered body", after: func(r *http.Request) *http.Request {
			evil := []byte(`{"SecretId":"prod/dx"}`)
			r.Body = io.NopCloser(bytes.NewReader(evil))
			r.ContentLength = int64(len(evil))
			return r
		}, code: InvalidSignature, msg: MsgSignatureMismatch, status: 400},
		{name: "tampered query", after: func(r *http.Request) *http.Request { r.URL.RawQuery = "x=1"; return r },
			code: InvalidSignature, msg: MsgSignatureMismatch, status: 400},
		{name: "tampered path", after: func(r *http.Request) *http.Request { r.URL.Path = "/other"; return r },
			code: InvalidSignature, msg: MsgSignatureMismatch, status: 400},
		{name: "tampered method", after: func(r *http.Request) *http.Request { r.Method = http.MethodPut; return r },
			code: InvalidSignature, msg: MsgSignatureMismatch, status: 400},
		{name: "tampered signature", after: func(r *http.Request) *http.Request {
			h := r.Header.Get("Authorization")
			i := strings.Index(h, "Signature=") + len("Signature=")
			c := byte('0')
			if h[i] == '0' {
				c = '1'
			}
			r.Header.Set("Authorization", h[:i]+string(c)+h[i+1:])
			return r
		}, code: InvalidSignature, msg: MsgSignatureMismatch, status: 400},
	}
	w := newWire(t, testOpts())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			creds, svc, region, at := c.creds, c.svc, c.region, c.at
			if creds.AccessKeyID == "" {
				creds = testCreds
			}
			if svc == "" {
				svc = "secretsmanager"
			}
			if region == "" {
				region = "us-east-1"
			}
			if at.IsZero() {
				at = testNow
			}
			req := jsonReq(t, w.srv.URL, body)
			signReq(t, req, body, creds, svc, region, at)
			sig := req.Header.Get("Authorization")
			sig = sig[strings.Index(sig, "Signature=")+len("Signature="):]
			if c.after != nil {
				req = c.after(req)
			}
			_, err := w.do(t, req)
			wantCode(t, err, c.code, c.msg)
			if strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), creds.SecretAccessKey) {
				t.Fatalf("error %q echoes the signature or the secret", err)
			}
			if got := StatusOf(err); got != c.status {
				t.Fatalf("StatusOf = %d, want %d", got, c.status)
			}
		})
	}
}

// At exactly MaxSkew either way the signature is still current.
func TestVerifySkewBoundaries(t *testing.T) {
	body := []byte(`{}`)
	for _, d := range []time.Duration{-5 * time.Minute, 5 * time.Minute, -4 * time.Minute} {
		req := jsonReq(t, "https://sm.example", body)
		signReq(t, req, body, testCreds, "secretsmanager", "us-east-1", testNow.Add(d))
		if _, err := Verify(req, body, testOpts()); err != nil {
			t.Errorf("signed %v from now: %v", d, err)
		}
	}
	opts := testOpts()
	opts.MaxSkew = 30 * time.Second
	req := jsonReq(t, "https://sm.example", body)
	signReq(t, req, body, testCreds, "secretsmanager", "us-east-1", testNow.Add(-31*time.Second))
	_, err := Verify(req, body, opts)
	wantCode(t, err, InvalidSignature, "(20260304T050607Z - 30s.)")
}

func TestVerifyRegionsEmptyAcceptsAny(t *testing.T) {
	opts := testOpts()
	opts.Regions = nil
	body := []byte(`{}`)
	req := jsonReq(t, "https://sm.example", body)
	signReq(t, req, body, testCreds, "secretsmanager", "ap-south-2", testNow)
	c, err := Verify(req, body, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "ap-south-2" {
		t.Fatalf("region %q", c.Region)
	}
}

func TestVerifyLookupErrors(t *testing.T) {
	body := []byte(`{}`)
	req := jsonReq(t, "https://sm.example", body)
	signReq(t, req, body, testCreds, "secretsmanager", "us-east-1", testNow)

	opts := testOpts()
	backendDown := errors.New("backend down")
	opts.Lookup = func(string, string) (string, error) { return "", backendDown }
	_, err := Verify(req, body, opts)
	if !errors.Is(err, backendDown) || awserr.CodeOf(err) != "" || StatusOf(err) != 500 {
		t.Fatalf("lookup failure: %v (status %d)", err, StatusOf(err))
	}

	opts.Lookup = func(string, string) (string, error) { return "", expired() }
	_, err = Verify(req, body, opts)
	wantCode(t, err, ExpiredToken, MsgExpiredToken)

	if _, err := Verify(req, body, VerifyOptions{Lookup: staticLookup}); err == nil || awserr.CodeOf(err) != "" {
		t.Fatalf("missing Service: %v", err)
	}
	if _, err := Verify(req, body, VerifyOptions{Service: "secretsmanager"}); err == nil || awserr.CodeOf(err) != "" {
		t.Fatalf("missing Lookup: %v", err)
	}
}

func TestParseAuthorization(t *testing.T) {
	a, err := parseAuthorization("AWS4-HMAC-SHA256 Credential=AKID/20260304/us-east-1/secretsmanager/aws4_request,SignedHeaders=host;x-amz-date,  Signature=abc, Extra=1")
	if err != nil {
		t.Fatal(err)
	}
	want := authorization{AccessKeyID: "AKID", Date: "20260304", Region: "us-east-1", Service: "secretsmanager",
		Terminator: "aws4_request", SignedHeaders: []string{"host", "x-amz-date"}, Signature: "abc"}
	if a.AccessKeyID != want.AccessKeyID || a.Date != want.Date || a.Region != want.Region || a.Service != want.Service ||
		a.Terminator != want.Terminator || strings.Join(a.SignedHeaders, ";") != "host;x-amz-date" || a.Signature != want.Signature {
		t.Fatalf("parsed %+v", a)
	}
	for _, bad := range []string{
		"",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 Credential=AKID/20260304/us-east-1/s/aws4_request, SignedHeaders=host, Signature=a, Signature=b",
		"AWS4-HMAC-SHA256 Credential=AKID//us-east-1/s/aws4_request, SignedHeaders=host, Signature=a",
		"AWS4-HMAC-SHA256 Credential=AKID/20260304/us-east-1/s/aws4_request, SignedHeaders=Host, Signature=a",
		"AWS4-HMAC-SHA256 Credential=AKID/20260304/us-east-1/s/aws4_request, SignedHeaders=host;;x, Signature=a",
		"AWS4-HMAC-SHA256 Credential=AKID/20260304/us-east-1/s/aws4_request, SignedHeaders=authorization;host, Signature=a",
		"AWS4-HMAC-SHA256 Credential=AKID/20260304/us-east-1/s/aws4_request, SignedHeaders, Signature=a",
	} {
		if _, err := parseAuthorization(bad); err == nil || err.Code != IncompleteSignature {
			t.Errorf("parseAuthorization(%q) = %v, want IncompleteSignatureException", bad, err)
		}
	}
}

func TestCanonicalQueryString(t *testing.T) {
	got, err := canonicalQueryString("b=2&a=b-c&a=b%2Fc&sp=a+b&t=%7E&e=&bare&&u=%C3%A9")
	if err != nil {
		t.Fatal(err)
	}
	// Sorted after encoding: "b%2Fc" < "b-c" because '%' < '-'.
	want := "a=b%2Fc&a=b-c&b=2&bare=&e=&sp=a%20b&t=~&u=%C3%A9"
	if got != want {
		t.Fatalf("canonical query %q, want %q", got, want)
	}
	if _, err := canonicalQueryString("a=%zz"); err == nil || err.Code != IncompleteSignature {
		t.Fatalf("bad escape: %v", err)
	}
}

func TestStatusOf(t *testing.T) {
	for err, want := range map[error]int{
		nil:                                       200,
		newErr(MissingAuthenticationToken, ""):    403,
		newErr(IncompleteSignature, ""):           400,
		newErr(InvalidSignature, ""):              400,
		newErr(UnrecognizedClient, ""):            400,
		newErr(ExpiredToken, ""):                  400,
		newErr(STSInvalidIdentityToken, ""):       400,
		newErr(STSIDPRejectedClaim, ""):           403,
		newErr(STSValidationError, ""):            400,
		newErr(STSInvalidAction, ""):              400,
		newErr(STSAccessDenied, ""):               403,
		newErr(awserr.ResourceNotFound, ""):       400,
		newErr(awserr.InternalServiceError, ""):   500,
		errors.New("plain"):                       500,
		errors.Join(newErr(InvalidSignature, "")): 400,
	} {
		if got := StatusOf(err); got != want {
			t.Errorf("StatusOf(%v) = %d, want %d", err, got, want)
		}
	}
}
