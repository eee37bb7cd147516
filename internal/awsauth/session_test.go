package awsauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

func testClaims() Claims {
	return Claims{
		Namespace: "team-a", ServiceAccount: "billing", UID: "0b3c6c1e-8f0e-4d8e-9f55-7d2b0c1a2b3c",
		RoleARN: "arn:aws:iam::123456789012:role/billing", SessionName: "pod-1",
		Expiry: testNow.Add(time.Hour + 500*time.Millisecond),
	}
}

var (
	accessKeyRE = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)
	secretKeyRE = regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
)

func TestIssueOpenSession(t *testing.T) {
	c := testClaims()
	akid, secret, token, err := IssueSession(testKey, c)
	if err != nil {
		t.Fatal(err)
	}
	if !accessKeyRE.MatchString(akid) {
		t.Errorf("access key id %q is not ASIA + 16 base32 characters", akid)
	}
	if !secretKeyRE.MatchString(secret) {
		t.Errorf("secret access key %q is not 40 base64 characters", secret)
	}
	if !strings.HasPrefix(token, "v1.") {
		t.Errorf("session token %q lacks the version prefix", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, "v1."))
	if err != nil {
		t.Fatalf("session token is not base64url: %v", err)
	}
	for _, visible := range []string{secret, c.Namespace, c.ServiceAccount, c.UID} {
		if bytes.Contains(raw, []byte(visible)) || strings.Contains(token, visible) {
			t.Errorf("session token shows %q in the clear", visible)
		}
	}

	gotSecret, got, err := OpenSession(testKey, akid, token, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if gotSecret != secret {
		t.Errorf("opened secret differs")
	}
	want := c
	want.Expiry = c.Expiry.Truncate(time.Second).UTC()
	if got != want {
		t.Errorf("claims %+v, want %+v", got, want)
	}

	akid2, secret2, token2, err := IssueSession(testKey, c)
	if err != nil {
		t.Fatal(err)
	}
	if akid2 == akid || secret2 == secret || token2 == token {
		t.Error("two issued sessions share values")
	}
}

func TestOpenSessionRefusals(t *testing.T) {
	c := testClaims()
	akid, _, token, err := IssueSession(testKey, c)
	if err != nil {
		t.Fatal(err)
	}
	otherAKID, _, otherToken, err := IssueSession(testKey, c)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	otherKey := bytes.Repeat([]byte{0x43}, 32)
	for name, tc := range map[string]struct {
		key         []byte
		akid, token string
	}{
		"wrong key":             {otherKey, akid, token},
		"other session's key":   {testKey, otherAKID, token},
		"other session's token": {testKey, akid, otherToken},
		"tampered token":        {testKey, akid, flip(token, len(token)/2)},
		"tampered last byte":    {testKey, akid, flip(token, len(token)-1)},
		"truncated token":       {testKey, akid, token[:len(token)-4]},
		"short token":           {testKey, akid, "v1.AAAA"},
		"no version":            {testKey, akid, strings.TrimPrefix(token, "v1.")},
		"other version":         {testKey, akid, "v2." + strings.TrimPrefix(token, "v1.")},
		"not base64":            {testKey, akid, "v1.!!!!"},
		"empty token":           {testKey, akid, ""},
		"long-term key id":      {testKey, "AKIA" + akid[4:], token},
		"huge token":            {testKey, akid, "v1." + strings.Repeat("A", 10000)},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := OpenSession(tc.key, tc.akid, tc.token, testNow)
			wantCode(t, err, UnrecognizedClient, MsgUnrecognizedClient)
		})
	}

	_, _, err = OpenSession(testKey, akid, token, c.Expiry.Truncate(time.Second))
	wantCode(t, err, ExpiredToken, MsgExpiredToken)
	if _, _, err := OpenSession(testKey, akid, token, c.Expiry.Truncate(time.Second).Add(-time.Nanosecond)); err != nil {
		t.Fatalf("a nanosecond before expiry: %v", err)
	}
	// An expired but forged token is unrecognised, not expired.
	_, _, err = OpenSession(otherKey, akid, token, c.Expiry.Add(time.Hour))
	wantCode(t, err, UnrecognizedClient, MsgUnrecognizedClient)
}

// The access key id is bound as associated data: a sealed payload naming key B, sealed with A's
// associated data, does not open for B.
func TestSessionAssociatedData(t *testing.T) {
	aead, err := sessionAEAD(testKey)
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "ASIAAAAAAAAAAAAAAAAA", "ASIABBBBBBBBBBBBBBBB"
	plain, _ := json.Marshal(session{AccessKeyID: b, SecretKey: strings.Repeat("s", 40), Expiry: testNow.Add(time.Hour).Unix()})
	nonce := make([]byte, aead.NonceSize())
	seal := func(aadKey string) string {
		return "v1." + base64.RawURLEncoding.EncodeToString(aead.Seal(append([]byte{}, nonce...), nonce, plain, []byte(sessionAAD+aadKey)))
	}
	if _, _, err := OpenSession(testKey, b, seal(b), testNow); err != nil {
		t.Fatalf("control: %v", err)
	}
	_, _, err = OpenSession(testKey, b, seal(a), testNow)
	wantCode(t, err, UnrecognizedClient, MsgUnrecognizedClient)

	// And the sealed id must match too: a payload naming A sealed under B's associated data.
	plain, _ = json.Marshal(session{AccessKeyID: a, SecretKey: strings.Repeat("s", 40), Expiry: testNow.Add(time.Hour).Unix()})
	_, _, err = OpenSession(testKey, b, seal(b), testNow)
	wantCode(t, err, UnrecognizedClient, MsgUnrecognizedClient)
}

func TestSessionKeyAndClaimsChecks(t *testing.T) {
	if _, _, _, err := IssueSession(make([]byte, 31), testClaims()); err == nil || awserr.CodeOf(err) != "" {
		t.Errorf("short key: %v", err)
	}
	if _, _, _, err := IssueSession(testKey, Claims{Namespace: "x"}); err == nil {
		t.Error("claims without expiry were accepted")
	}
	c := testClaims()
	c.RoleARN = strings.Repeat("r", 9000)
	if _, _, _, err := IssueSession(testKey, c); err == nil {
		t.Error("oversized claims were accepted")
	}
	if _, _, err := OpenSession(make([]byte, 8), "ASIAAAAAAAAAAAAAAAAA", "v1.x", testNow); err == nil || awserr.CodeOf(err) != "" {
		t.Errorf("short key on open: %v", err)
	}
}

func TestSessionLookup(t *testing.T) {
	akid, secret, token, err := IssueSession(testKey, testClaims())
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return testNow }

	l := SessionLookup(testKey, now, nil)
	if got, err := l(akid, token); err != nil || got != secret {
		t.Fatalf("session: %q, %v", got, err)
	}
	_, err = l(testAKID, "")
	wantCode(t, err, UnrecognizedClient, MsgUnrecognizedClient)

	l = SessionLookup(testKey, now, staticLookup)
	if got, err := l(testAKID, ""); err != nil || got != testSecret {
		t.Fatalf("long-term fallback: %q, %v", got, err)
	}
	_, err = SessionLookup(testKey, func() time.Time { return testNow.Add(2 * time.Hour) }, nil)(akid, token)
	wantCode(t, err, ExpiredToken, MsgExpiredToken)
}

func TestVerifySession(t *testing.T) {
	c := testClaims()
	akid, secret, token, err := IssueSession(testKey, c)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"SecretId":"x"}`)
	req := jsonReq(t, "https://sm.example", body)
	creds := testCreds
	creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken = akid, secret, token
	signReq(t, req, body, creds, "secretsmanager", "us-east-1", testNow)

	caller, got, err := VerifySession(req, body, testOpts(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	if caller.AccessKeyID != akid || caller.SessionToken != token || got.Namespace != c.Namespace || got.ServiceAccount != c.ServiceAccount {
		t.Fatalf("caller %+v claims %+v", caller, got)
	}

	opts := testOpts()
	opts.Now = func() time.Time { return c.Expiry.Add(time.Second) }
	opts.MaxSkew = 2 * time.Hour
	_, _, err = VerifySession(req, body, opts, testKey)
	wantCode(t, err, ExpiredToken, MsgExpiredToken)

	_, _, err = VerifySession(req, body, testOpts(), bytes.Repeat([]byte{1}, 32))
	wantCode(t, err, UnrecognizedClient, MsgUnrecognizedClient)

	// Long-term keys are not sessions.
	req = jsonReq(t, "https://sm.example", body)
	signReq(t, req, body, testCreds, "secretsmanager", "us-east-1", testNow)
	_, _, err = VerifySession(req, body, testOpts(), testKey)
	wantCode(t, err, UnrecognizedClient, MsgUnrecognizedClient)
}
