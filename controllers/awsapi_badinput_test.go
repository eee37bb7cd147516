package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// Bad input to the API: each gets an AWS-style error (the __type and message AWS answers with,
// the status the SDKs expect), and nothing is written.

// rawAPICall sends one Secrets Manager request, signed with creds at signedAt (zero: unsigned),
// and returns the status and the decoded error body.
func rawAPICall(t *testing.T, op string, body []byte, creds aws.Credentials, signedAt time.Time, tamper func(*http.Request)) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, apiEndpoint()+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager."+op)
	if !signedAt.IsZero() {
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "secretsmanager", apiRegion, signedAt); err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := apiHTTPClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s answered %d with a body that is not AWS JSON: %q", op, resp.StatusCode, raw)
		}
		if strings.Contains(string(raw), "null") {
			t.Fatalf("%s answered with a null member: %s", op, raw)
		}
	}
	return resp.StatusCode, out
}

func wantRaw(t *testing.T, what string, status int, body map[string]string, wantStatus int, wantType, wantMsg string) {
	t.Helper()
	// AWS's front end writes "message" for authentication errors; the service writes "Message".
	msg := body["Message"] + body["message"]
	if status != wantStatus || body["__type"] != wantType || !strings.Contains(msg, wantMsg) {
		t.Errorf("%s: answered %d %s %q; want %d %s containing %q", what, status, body["__type"], msg, wantStatus, wantType, wantMsg)
	}
}

func TestAPIBadInputIsRefusedAndWritesNothing(t *testing.T) {
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "ci", "secretsmanager-admin")
	id, secret := accessKeyFor(t, ns, "ci-key", "ci")
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
	now := time.Now()
	create := []byte(`{"Name":"bad-input","SecretString":"CANARY-api-bad-input-5e1","ClientRequestToken":"22222222-2222-4222-8222-222222222222"}`)

	status, body := rawAPICall(t, "CreateSecret", []byte(`{"Name":"bad-input",`), creds, now, nil)
	wantRaw(t, "malformed JSON", status, body, 400, "SerializationException", "")
	status, body = rawAPICall(t, "CreateSecret", []byte(`{"Name":"bad-input","SecretString":7}`), creds, now, nil)
	wantRaw(t, "a number for a string", status, body, 400, "SerializationException", "")
	status, body = rawAPICall(t, "CreateSecret", []byte(`{"Name":"bad input!"}`), creds, now, nil)
	wantRaw(t, "a name AWS does not allow", status, body, 400, "ValidationException", "name")
	status, body = rawAPICall(t, "CreateSecret", []byte(`{"Name":"bad-input","SecretString":"`+strings.Repeat("x", 65537)+`"}`), creds, now, nil)
	wantRaw(t, "a value over 65,536 bytes", status, body, 400, "ValidationException", "65536")
	status, _ = rawAPICall(t, "CreateSecret", []byte(`{"Name":"bad-input","SecretString":"`+strings.Repeat("x", 300*1024)+`"}`), creds, now, nil)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 300 KiB body answered %d, want 413", status)
	}
	status, body = rawAPICall(t, "CreateSecrets", create, creds, now, nil)
	wantRaw(t, "an unknown operation", status, body, 400, "UnknownOperationException", "")
	status, body = rawAPICall(t, "PutResourcePolicy", []byte(`{"SecretId":"bad-input","ResourcePolicy":"{}"}`), creds, now, nil)
	if status != 400 || body["__type"] == "" {
		t.Errorf("a resource-policy operation answered %d %v", status, body)
	}

	// Signatures: missing, tampered, for another secret key, too old (a replay past AWS's five
	// minutes), and a security token left unsigned.
	status, body = rawAPICall(t, "CreateSecret", create, creds, time.Time{}, nil)
	wantRaw(t, "an unsigned request", status, body, 403, "MissingAuthenticationTokenException", "")
	status, body = rawAPICall(t, "CreateSecret", create, creds, now, func(r *http.Request) {
		r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(create, []byte("CANARY-api"), []byte("CANARY-apx"), 1)))
	})
	wantRaw(t, "a body changed after signing", status, body, 400, "InvalidSignatureException", "")
	status, body = rawAPICall(t, "CreateSecret", create, aws.Credentials{AccessKeyID: id, SecretAccessKey: secret[1:] + "A"}, now, nil)
	wantRaw(t, "the wrong secret key", status, body, 400, "InvalidSignatureException", "does not match")
	status, body = rawAPICall(t, "CreateSecret", create, creds, now.Add(-10*time.Minute), nil)
	wantRaw(t, "a request signed ten minutes ago", status, body, 400, "InvalidSignatureException", "Signature expired")
	status, body = rawAPICall(t, "CreateSecret", create, creds, now.Add(10*time.Minute), nil)
	wantRaw(t, "a request signed ten minutes ahead", status, body, 400, "InvalidSignatureException", "Signature not yet current")
	status, body = rawAPICall(t, "CreateSecret", create, creds, now, func(r *http.Request) {
		r.Header.Set("X-Amz-Security-Token", "unsigned")
	})
	wantRaw(t, "an unsigned security token", status, body, 400, "IncompleteSignatureException", "")
	for _, h := range []string{"Authorization"} {
		status, body = rawAPICall(t, "CreateSecret", create, creds, now, func(r *http.Request) {
			r.Header.Set(h, strings.Replace(r.Header.Get(h), "Signature=", "Signature=0", 1))
		})
		wantRaw(t, "a mangled "+h, status, body, 400, "InvalidSignatureException", "")
	}

	// Nothing was written: no secret, no request Secret.
	list := &v1alpha1.ManagedSecretList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	secrets := &corev1.SecretList{}
	if err := k8s.List(context.Background(), secrets, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 || len(secrets.Items) != 0 {
		t.Fatalf("bad input wrote %d ManagedSecrets and %d Secrets", len(list.Items), len(secrets.Items))
	}
	// And the same request, well signed, works.
	if status, body := rawAPICall(t, "CreateSecret", create, creds, time.Now(), nil); status != 200 {
		t.Fatalf("the good request answered %d %v", status, body)
	}
}

func TestAPIWebIdentityRefusals(t *testing.T) {
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "app", "secretsmanager-reader")
	ctx := context.Background()
	stsClient := sts.New(sts.Options{Region: apiRegion, BaseEndpoint: aws.String(apiEndpoint()), HTTPClient: apiHTTPClient(t), RetryMaxAttempts: 1})
	assume := func(token string) (*sts.AssumeRoleWithWebIdentityOutput, error) {
		return stsClient.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String(apiRoleARN),
			RoleSessionName: aws.String("session"), WebIdentityToken: aws.String(token), DurationSeconds: aws.Int32(900)})
	}

	_, err := assume(saToken(t, ns, "app", "https://kubernetes.default.svc"))
	wantAPIError(t, err, "InvalidIdentityToken", "audience")
	_, err = assume("not-a-token")
	wantAPIError(t, err, "InvalidIdentityToken", "")
	// A token of a ServiceAccount deleted since is refused (the TokenReview checks the object).
	apiServiceAccount(t, ns, "gone")
	gone := saToken(t, ns, "gone", apiAudience)
	if err := k8s.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gone"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted ServiceAccount's token is refused", func() error {
		_, err := assume(gone)
		if err == nil {
			return errors.New("accepted")
		}
		return nil
	})
	wantAPIError(t, func() error { _, err := assume(gone); return err }(), "InvalidIdentityToken", "")

	// Credentials expire: fifteen minutes later (on the API's clock) the session is refused with
	// ExpiredTokenException, though the request is freshly signed.
	out, err := assume(saToken(t, ns, "app", apiAudience))
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	creds := aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken)}
	if exp := aws.ToTime(c.Expiration); exp.Before(time.Now().Add(14*time.Minute)) || exp.After(time.Now().Add(16*time.Minute)) {
		t.Fatalf("the credentials expire at %s, not in fifteen minutes", exp)
	}
	sm := secretsmanager.New(secretsmanager.Options{Region: apiRegion, BaseEndpoint: aws.String(apiEndpoint()), HTTPClient: apiHTTPClient(t),
		Credentials: aws.NewCredentialsCache(staticProvider(creds)), RetryMaxAttempts: 1})
	_, err = sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err != nil {
		t.Fatalf("fresh session credentials were refused: %v", err)
	}
	apiWallClock.advance(t, 16*time.Minute)
	status, body := rawAPICall(t, "ListSecrets", []byte(`{}`), creds, time.Now().Add(16*time.Minute), nil)
	wantRaw(t, "expired session credentials", status, body, 400, "ExpiredTokenException", "expired")
	// A session token changed by one character does not open.
	bad := creds
	bad.SessionToken = creds.SessionToken[:len(creds.SessionToken)-2] + "AA"
	status, body = rawAPICall(t, "ListSecrets", []byte(`{}`), bad, time.Now().Add(16*time.Minute), nil)
	wantRaw(t, "a forged session token", status, body, 400, "UnrecognizedClientException", "")
}

type staticProvider aws.Credentials

func (p staticProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials(p), nil
}
