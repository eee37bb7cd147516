package awsauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

const (
	e2eRegion   = "us-east-1"
	e2eSAToken  = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZha2UifQ.fake-projected-sa-token.sig"
	e2eRoleARN  = "arn:aws:iam::123456789012:role/billing-reader"
	e2eSecretID = "team-a/billing/db"
)

// fakeAPI is a cluster-side endpoint in miniature: STS AssumeRoleWithWebIdentity (Query protocol,
// unsigned) trading a known ServiceAccount token for session credentials, and Secrets Manager
// GetSecretValue (JSON 1.1, SigV4) answering only requests signed with those credentials.
type fakeAPI struct {
	key []byte

	mu       sync.Mutex
	callers  []Caller
	claims   []Claims
	stsCalls int
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if r.Header.Get("X-Amz-Target") != "" {
		f.secretsManager(w, r, body)
		return
	}
	f.sts(w, r, body)
}

func (f *fakeAPI) sts(w http.ResponseWriter, r *http.Request, body []byte) {
	const reqID = "5b1d2c3e-0000-4000-8000-000000000001"
	f.mu.Lock()
	f.stsCalls++
	f.mu.Unlock()
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		WriteSTSError(w, 400, STSInvalidAction, "expected a Query protocol POST", reqID)
		return
	}
	if r.Header.Get("Authorization") != "" {
		// The SDK sends AssumeRoleWithWebIdentity anonymously; a signature here means the test
		// is not exercising what it thinks it is.
		WriteSTSError(w, 400, STSInvalidAction, "unexpected Authorization header", reqID)
		return
	}
	in, err := ParseAssumeRoleWithWebIdentity(body)
	if err != nil {
		WriteSTSErr(w, err, reqID)
		return
	}
	if in.WebIdentityToken != e2eSAToken {
		WriteSTSError(w, 400, STSInvalidIdentityToken, "The web identity token is not valid.", reqID)
		return
	}
	if in.RoleARN != e2eRoleARN {
		WriteSTSError(w, 403, STSAccessDenied, "Not authorized to perform sts:AssumeRoleWithWebIdentity", reqID)
		return
	}
	c := Claims{
		Namespace: "team-a", ServiceAccount: "billing", UID: "6f1e2d3c-0000-4000-8000-00000000abcd",
		RoleARN: in.RoleARN, SessionName: in.RoleSessionName,
		Expiry: time.Now().Add(time.Duration(in.DurationSeconds) * time.Second),
	}
	akid, secret, token, err := IssueSession(f.key, c)
	if err != nil {
		WriteSTSErr(w, err, reqID)
		return
	}
	WriteAssumeRoleResponse(w, AssumeOutput{
		AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token, Expiration: c.Expiry,
		SubjectFromWebIdentityToken: "system:serviceaccount:team-a:billing",
		AssumedRoleARN:              AssumedRoleARN(in.RoleARN, in.RoleSessionName),
		AssumedRoleID:               "AROAFAKEROLEID:" + in.RoleSessionName,
		Audience:                    "sts.amazonaws.com",
		Provider:                    "kubernetes.default.svc",
		RequestID:                   reqID,
	})
}

func writeJSONError(w http.ResponseWriter, err error) {
	code, msg := awserr.CodeOf(err), ""
	var e *awserr.Error
	if errors.As(err, &e) {
		msg = e.Message
	} else {
		code, msg = awserr.InternalServiceError, "internal error"
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(StatusOf(err))
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func (f *fakeAPI) secretsManager(w http.ResponseWriter, r *http.Request, body []byte) {
	caller, claims, err := VerifySession(r, body, VerifyOptions{Service: "secretsmanager", Regions: []string{e2eRegion}}, f.key)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	f.mu.Lock()
	f.callers = append(f.callers, caller)
	f.claims = append(f.claims, claims)
	f.mu.Unlock()

	var in struct {
		SecretID string `json:"SecretId"`
	}
	if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || json.Unmarshal(body, &in) != nil {
		writeJSONError(w, awserr.New(awserr.InvalidRequest, "unsupported"))
		return
	}
	if in.SecretID != e2eSecretID {
		writeJSONError(w, awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ARN":           "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + e2eSecretID + "-AbCdEf",
		"Name":          e2eSecretID,
		"SecretString":  fmt.Sprintf("for %s/%s", claims.Namespace, claims.ServiceAccount),
		"VersionId":     "00000000-0000-4000-8000-000000000001",
		"VersionStages": []string{"AWSCURRENT"},
		"CreatedDate":   1.7726e9,
	})
}

func newFakeAPI(t *testing.T) (*fakeAPI, *httptest.Server) {
	t.Helper()
	f := &fakeAPI{key: []byte("0123456789abcdef0123456789abcdef-e2e")}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func writeTokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func apiCode(t *testing.T, err error) (code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

// TestSDKWebIdentityChain drives the SDK's IRSA chain against this package: stscreds'
// WebIdentityRoleProvider reads a token file and calls the real STS client, whose response
// feeds the real Secrets Manager client, whose signed GetSecretValue is verified with the
// issued session credentials.
func TestSDKWebIdentityChain(t *testing.T) {
	f, srv := newFakeAPI(t)
	stsClient := sts.New(sts.Options{Region: e2eRegion, BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client()})
	provider := stscreds.NewWebIdentityRoleProvider(stsClient, e2eRoleARN, stscreds.IdentityTokenFile(writeTokenFile(t, e2eSAToken)),
		func(o *stscreds.WebIdentityRoleOptions) { o.Duration = 15 * time.Minute })

	creds, err := provider.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if !accessKeyRE.MatchString(creds.AccessKeyID) || !secretKeyRE.MatchString(creds.SecretAccessKey) || !strings.HasPrefix(creds.SessionToken, "v1.") {
		t.Fatalf("credentials %q / %d-char secret / token %.8q...", creds.AccessKeyID, len(creds.SecretAccessKey), creds.SessionToken)
	}
	if d := time.Until(creds.Expires); !creds.CanExpire || d < 14*time.Minute || d > 15*time.Minute {
		t.Fatalf("expires in %v (can expire %v), want about 15m", d, creds.CanExpire)
	}
	if creds.AccountID != "123456789012" {
		t.Fatalf("account id %q (from the AssumedRoleUser ARN)", creds.AccountID)
	}

	sm := secretsmanager.New(secretsmanager.Options{
		Region: e2eRegion, BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client(),
		Credentials: aws.NewCredentialsCache(provider),
	})
	out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(e2eSecretID)})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if aws.ToString(out.SecretString) != "for team-a/billing" || aws.ToString(out.Name) != e2eSecretID {
		t.Fatalf("GetSecretValue returned %q for %q", aws.ToString(out.SecretString), aws.ToString(out.Name))
	}
	f.mu.Lock()
	callers, claims, stsCalls := f.callers, f.claims, f.stsCalls
	f.mu.Unlock()
	if len(callers) != 1 || callers[0].Service != "secretsmanager" || callers[0].Region != e2eRegion ||
		!accessKeyRE.MatchString(callers[0].AccessKeyID) || callers[0].SessionToken == "" ||
		claims[0].RoleARN != e2eRoleARN || claims[0].Namespace != "team-a" {
		t.Fatalf("callers %+v claims %+v", callers, claims)
	}
	if stsCalls != 2 { // our Retrieve, then the cache's own
		t.Fatalf("%d STS calls", stsCalls)
	}

	_, err = sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("nope")})
	if code, _ := apiCode(t, err); code != awserr.ResourceNotFound {
		t.Fatalf("missing secret: %v", err)
	}
}

// TestSDKDefaultConfigIRSA is the same chain as a pod sees it: config.LoadDefaultConfig with
// AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN set (what EKS's IRSA webhook injects).
func TestSDKDefaultConfigIRSA(t *testing.T) {
	_, srv := newFakeAPI(t)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_WEB_IDENTITY_TOKEN_FILE": writeTokenFile(t, e2eSAToken),
		"AWS_ROLE_ARN":                e2eRoleARN,
		"AWS_ROLE_SESSION_NAME":       "irsa-test",
		"AWS_REGION":                  e2eRegion,
		// Service-specific endpoints: config v1.33 builds the web identity STS client before
		// it resolves the global AWS_ENDPOINT_URL, so that one alone would send STS to AWS.
		"AWS_ENDPOINT_URL_STS":                   srv.URL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER":       srv.URL,
		"AWS_ENDPOINT_URL":                       "",
		"AWS_CONFIG_FILE":                        filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":            filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_ACCESS_KEY_ID":                      "",
		"AWS_SECRET_ACCESS_KEY":                  "",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_PROFILE":                            "",
		"AWS_CA_BUNDLE":                          "", // the test server's CA comes with its own client
		"AWS_DEFAULT_PROFILE":                    "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(context.Background(),
		&secretsmanager.GetSecretValueInput{SecretId: aws.String(e2eSecretID)})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if aws.ToString(out.SecretString) != "for team-a/billing" {
		t.Fatalf("SecretString %q", aws.ToString(out.SecretString))
	}
}

func TestSDKSTSErrors(t *testing.T) {
	_, srv := newFakeAPI(t)
	stsClient := sts.New(sts.Options{Region: e2eRegion, BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client(), RetryMaxAttempts: 1})
	call := func(token, role, session string) error {
		_, err := stsClient.AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(role), RoleSessionName: aws.String(session), WebIdentityToken: aws.String(token),
		})
		return err
	}
	code, msg := apiCode(t, call("not-the-token", e2eRoleARN, "s1"))
	if code != STSInvalidIdentityToken || msg != "The web identity token is not valid." {
		t.Fatalf("bad token: %s %q", code, msg)
	}
	code, msg = apiCode(t, call(e2eSAToken, "arn:aws:iam::123456789012:role/other", "s1"))
	if code != STSAccessDenied || msg != "Not authorized to perform sts:AssumeRoleWithWebIdentity" {
		t.Fatalf("other role: %s %q", code, msg)
	}
	code, msg = apiCode(t, call(e2eSAToken, e2eRoleARN, "bad name"))
	if code != STSValidationError || !strings.HasPrefix(msg, "1 validation error detected: Value 'bad name' at 'roleSessionName'") {
		t.Fatalf("bad session name: %s %q", code, msg)
	}
	var re interface{ ServiceRequestID() string }
	if !errors.As(call("x-x-x", e2eRoleARN, "s1"), &re) || re.ServiceRequestID() != "5b1d2c3e-0000-4000-8000-000000000001" {
		t.Fatal("the SDK did not read the request id")
	}
}

func TestSDKSecretsManagerAuthErrors(t *testing.T) {
	f, srv := newFakeAPI(t)
	get := func(creds aws.CredentialsProvider, region string) error {
		sm := secretsmanager.New(secretsmanager.Options{
			Region: region, BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client(),
			Credentials: creds, RetryMaxAttempts: 1,
		})
		_, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(e2eSecretID)})
		return err
	}

	code, msg := apiCode(t, get(credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "secret", ""), e2eRegion))
	if code != UnrecognizedClient || msg != MsgUnrecognizedClient {
		t.Fatalf("long-term key: %s %q", code, msg)
	}

	akid, secret, token, err := IssueSession(f.key, Claims{Namespace: "team-a", ServiceAccount: "billing", Expiry: time.Now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	code, msg = apiCode(t, get(credentials.NewStaticCredentialsProvider(akid, secret, token), e2eRegion))
	if code != ExpiredToken || msg != MsgExpiredToken {
		t.Fatalf("expired session: %s %q", code, msg)
	}

	akid, secret, token, err = IssueSession(f.key, Claims{Namespace: "team-a", ServiceAccount: "billing", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	code, msg = apiCode(t, get(credentials.NewStaticCredentialsProvider(akid, secret+"x", token), e2eRegion))
	if code != InvalidSignature || msg != MsgSignatureMismatch {
		t.Fatalf("wrong secret: %s %q", code, msg)
	}
	code, msg = apiCode(t, get(credentials.NewStaticCredentialsProvider(akid, secret, token), "eu-west-1"))
	if code != InvalidSignature || msg != "Credential should be scoped to a valid region, not 'eu-west-1'." {
		t.Fatalf("wrong region: %s %q", code, msg)
	}
	if err := get(credentials.NewStaticCredentialsProvider(akid, secret, token), e2eRegion); err != nil {
		t.Fatalf("control: %v", err)
	}
	code, msg = apiCode(t, get(aws.AnonymousCredentials{}, e2eRegion))
	if code != MissingAuthenticationToken || msg != MsgMissingAuthenticationToken {
		t.Fatalf("anonymous: %s %q", code, msg)
	}
}
