package wire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// fakeAPI is an httptest server that speaks the wire format with this package: it checks the
// protocol headers, decodes every request with ParseTarget and DecodeInput (answering their
// errors with WriteError), and answers with what the test's respond returns.
type fakeAPI struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	inputs  map[string]any
	respond func(op string, in any) (any, error)
}

func newFakeAPI(t *testing.T) (*fakeAPI, *secretsmanager.Client) {
	f := &fakeAPI{t: t, inputs: map[string]any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	client := secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
		BaseEndpoint: aws.String(f.srv.URL),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   f.srv.Client(),
	})
	return f, client
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("Content-Type") != ContentType ||
		!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") {
		f.t.Errorf("unexpected request %s %s %v", r.Method, r.URL, r.Header)
	}
	w.Header().Set("x-amzn-RequestId", "11111111-2222-3333-4444-555555555555")
	op, err := ParseTarget(r.Header.Get("X-Amz-Target"))
	if err != nil {
		WriteError(w, err)
		return
	}
	in, err := DecodeInput(op, body)
	if err != nil {
		WriteError(w, err)
		return
	}
	f.mu.Lock()
	f.inputs[op] = in
	f.mu.Unlock()
	out, err := f.respond(op, in)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, out)
}

func (f *fakeAPI) input(op string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inputs[op]
}

const testARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbC123"

func TestSDKDecodesDescribeSecret(t *testing.T) {
	f, client := newFakeAPI(t)
	created := time.UnixMilli(1523477145713).UTC()
	changed := time.Unix(1700000000, 0).UTC()
	no := false
	f.respond = func(op string, in any) (any, error) {
		if op != OpDescribeSecret || in.(*DescribeSecretInput).SecretID != "prod/db" {
			t.Errorf("%s %#v", op, in)
		}
		return DescribeSecretOutput{
			ARN: testARN, Name: "prod/db", Description: "the <main> & only",
			RotationEnabled: &no, RotationRules: &RotationRules{AutomaticallyAfterDays: ptr(int64(30)), Duration: ptr("3h")},
			CreatedDate: NewTimestamp(created), LastChangedDate: NewTimestamp(changed),
			Tags:               []Tag{{"env", "prod"}, {"empty", ""}},
			VersionIDsToStages: map[string][]string{versionA: {"AWSCURRENT"}, token36: {"AWSPREVIOUS"}},
		}, nil
	}
	out, err := client.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ARN) != testARN || aws.ToString(out.Name) != "prod/db" || aws.ToString(out.Description) != "the <main> & only" {
		t.Errorf("ARN/Name/Description: %v %v %v", aws.ToString(out.ARN), aws.ToString(out.Name), aws.ToString(out.Description))
	}
	if out.RotationEnabled == nil || *out.RotationEnabled {
		t.Errorf("RotationEnabled must be present and false: %v", out.RotationEnabled)
	}
	if out.RotationRules == nil || aws.ToInt64(out.RotationRules.AutomaticallyAfterDays) != 30 || aws.ToString(out.RotationRules.Duration) != "3h" || out.RotationRules.ScheduleExpression != nil {
		t.Errorf("RotationRules %+v", out.RotationRules)
	}
	if out.CreatedDate == nil || !out.CreatedDate.Equal(created) || out.LastChangedDate == nil || !out.LastChangedDate.Equal(changed) {
		t.Errorf("dates %v %v", out.CreatedDate, out.LastChangedDate)
	}
	if out.LastAccessedDate != nil || out.DeletedDate != nil || out.NextRotationDate != nil || out.KmsKeyId != nil {
		t.Errorf("absent members must stay nil: %v %v %v %v", out.LastAccessedDate, out.DeletedDate, out.NextRotationDate, out.KmsKeyId)
	}
	if len(out.Tags) != 2 || aws.ToString(out.Tags[0].Key) != "env" || aws.ToString(out.Tags[0].Value) != "prod" ||
		out.Tags[1].Value == nil || *out.Tags[1].Value != "" {
		t.Errorf("tags %+v", out.Tags)
	}
	if !reflect.DeepEqual(out.VersionIdsToStages, map[string][]string{versionA: {"AWSCURRENT"}, token36: {"AWSPREVIOUS"}}) {
		t.Errorf("VersionIdsToStages %v", out.VersionIdsToStages)
	}
}

func TestSDKDecodesSecretValues(t *testing.T) {
	f, client := newFakeAPI(t)
	bin := []byte{0, 0xff, '<', '&', '>', 0x80, '\n'}
	created := time.Unix(1700000123, 456_000_000).UTC()
	f.respond = func(op string, in any) (any, error) {
		switch op {
		case OpGetSecretValue:
			if in.(*GetSecretValueInput).VersionStage != nil {
				return GetSecretValueOutput{ARN: testARN, Name: "prod/db", VersionID: versionA, SecretString: ptr("{\"password\":\"p<&>w\u2028\"}"),
					VersionStages: []string{"AWSPREVIOUS"}, CreatedDate: NewTimestamp(created)}, nil
			}
			return GetSecretValueOutput{ARN: testARN, Name: "prod/db", VersionID: versionA, SecretBinary: bin,
				VersionStages: []string{"AWSCURRENT"}, CreatedDate: NewTimestamp(created)}, nil
		case OpBatchGetSecretValue:
			return BatchGetSecretValueOutput{
				SecretValues: []SecretValueEntry{{ARN: testARN, Name: "prod/db", VersionID: versionA, SecretBinary: bin, CreatedDate: NewTimestamp(created)}},
				Errors:       []APIError{BatchError("gone", awserr.New(awserr.ResourceNotFound, "%s", awserr.MsgSecretNotFound))},
			}, nil
		}
		return nil, errors.New("unexpected")
	}
	out, err := client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(testARN)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.SecretBinary, bin) || out.SecretString != nil || aws.ToString(out.VersionId) != versionA ||
		!reflect.DeepEqual(out.VersionStages, []string{"AWSCURRENT"}) || out.CreatedDate == nil || !out.CreatedDate.Equal(created) {
		t.Errorf("GetSecretValue binary: %v %v %v %v %v", out.SecretBinary, out.SecretString, aws.ToString(out.VersionId), out.VersionStages, out.CreatedDate)
	}
	if got := f.input(OpGetSecretValue).(*GetSecretValueInput); got.SecretID != testARN || got.VersionID != nil {
		t.Errorf("request decoded as %#v", got)
	}

	out, err = client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db"), VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.SecretString) != "{\"password\":\"p<&>w\u2028\"}" || out.SecretBinary != nil {
		t.Errorf("GetSecretValue string: %q %v", aws.ToString(out.SecretString), out.SecretBinary)
	}

	batch, err := client.BatchGetSecretValue(context.Background(), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"prod/db", "gone"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.SecretValues) != 1 || !bytes.Equal(batch.SecretValues[0].SecretBinary, bin) || len(batch.Errors) != 1 ||
		aws.ToString(batch.Errors[0].SecretId) != "gone" || aws.ToString(batch.Errors[0].ErrorCode) != awserr.ResourceNotFound ||
		aws.ToString(batch.Errors[0].Message) != awserr.MsgSecretNotFound || batch.NextToken != nil {
		t.Errorf("batch %+v", batch)
	}
}

// Requests the SDK builds pass Decode, and decode to what was sent.
func TestSDKRequestsDecode(t *testing.T) {
	f, client := newFakeAPI(t)
	f.respond = func(op string, in any) (any, error) {
		switch op {
		case OpCreateSecret:
			return CreateSecretOutput{ARN: testARN, Name: "prod/db", VersionID: *in.(*CreateSecretInput).ClientRequestToken}, nil
		case OpListSecrets:
			return ListSecretsOutput{}, nil
		case OpDeleteSecret:
			return DeleteSecretOutput{ARN: testARN, Name: "prod/db", DeletionDate: NewTimestamp(time.Unix(1700000000, 0))}, nil
		case OpTagResource:
			return TagResourceOutput{}, nil
		}
		return struct{}{}, nil
	}
	ctx := context.Background()
	bin := []byte("binary\x00value")
	cs, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("prod/db"), SecretBinary: bin,
		Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}, Description: aws.String("")})
	if err != nil {
		t.Fatal(err)
	}
	in := f.input(OpCreateSecret).(*CreateSecretInput)
	if !bytes.Equal(in.SecretBinary, bin) || in.ClientRequestToken == nil || len(*in.ClientRequestToken) != 36 ||
		!reflect.DeepEqual(in.Tags, []Tag{{"env", "prod"}}) || in.Description == nil || *in.Description != "" {
		t.Errorf("CreateSecret decoded as %v", in)
	}
	if aws.ToString(cs.VersionId) != *in.ClientRequestToken || aws.ToString(cs.ARN) != testARN {
		t.Errorf("CreateSecret answer %+v", cs)
	}

	ls, err := client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(5), SortOrder: types.SortOrderTypeDesc,
		Filters: []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"!env"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.SecretList) != 0 || ls.NextToken != nil {
		t.Errorf("ListSecrets answer %+v", ls)
	}
	li := f.input(OpListSecrets).(*ListSecretsInput)
	if *li.MaxResults != 5 || *li.SortOrder != SortOrderDesc || *li.Filters[0].Key != FilterTagKey || li.Filters[0].Values[0] != "!env" {
		t.Errorf("ListSecrets decoded as %+v", li)
	}

	ds, err := client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("prod/db"), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	if ds.DeletionDate == nil || ds.DeletionDate.Unix() != 1700000000 {
		t.Errorf("DeletionDate %v", ds.DeletionDate)
	}
	if di := f.input(OpDeleteSecret).(*DeleteSecretInput); *di.RecoveryWindowInDays != 7 || di.ForceDeleteWithoutRecovery != nil {
		t.Errorf("DeleteSecret decoded as %+v", di)
	}

	if _, err := client.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("prod/db"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("")}}}); err != nil {
		t.Fatal(err)
	}
	calls := []func() error{
		func() error {
			_, err := client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("prod/db"), SecretString: aws.String("v"), VersionStages: []string{"AWSPENDING"}})
			return err
		},
		func() error {
			_, err := client.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("prod/db"), SecretString: aws.String("v"), KmsKeyId: aws.String("")})
			return err
		},
		func() error {
			_, err := client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("prod/db"), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(versionA), RemoveFromVersionId: aws.String(token36 + "x")})
			return err
		},
		func() error {
			_, err := client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("prod/db"), RotationRules: &types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)"), Duration: aws.String("2h")}, RotateImmediately: aws.Bool(false)})
			return err
		},
		func() error {
			_, err := client.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("prod/db")})
			return err
		},
		func() error {
			_, err := client.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(testARN)})
			return err
		},
		func() error {
			_, err := client.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String("prod/db"), TagKeys: []string{"k"}})
			return err
		},
		func() error {
			_, err := client.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("prod/db"), IncludeDeprecated: aws.Bool(true)})
			return err
		},
		func() error {
			_, err := client.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(20), ExcludePunctuation: aws.Bool(true)})
			return err
		},
		func() error {
			_, err := client.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"prod"}}}, MaxResults: aws.Int32(20)})
			return err
		},
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if pi := f.input(OpPutSecretValue).(*PutSecretValueInput); pi.ClientRequestToken == nil || *pi.SecretString != "v" || pi.VersionStages[0] != "AWSPENDING" {
		t.Errorf("PutSecretValue decoded as %v", pi)
	}
	if ri := f.input(OpRotateSecret).(*RotateSecretInput); ri.ClientRequestToken == nil || *ri.RotationRules.ScheduleExpression != "rate(10 days)" || ri.RotateImmediatelyOrDefault() {
		t.Errorf("RotateSecret decoded as %+v", ri)
	}
	if ui := f.input(OpUpdateSecret).(*UpdateSecretInput); ui.KmsKeyID == nil || *ui.KmsKeyID != "" {
		t.Errorf("UpdateSecret decoded as %v", ui)
	}
}

func TestSDKErrors(t *testing.T) {
	f, client := newFakeAPI(t)
	var answer error
	f.respond = func(string, any) (any, error) { return nil, answer }
	msg := "the message <&>"
	cases := []struct {
		code   string
		status int
		typed  any // pointer to a nil pointer of the typed error
	}{
		{awserr.ResourceNotFound, 400, new(*types.ResourceNotFoundException)},
		{awserr.InvalidParameter, 400, new(*types.InvalidParameterException)},
		{awserr.InvalidRequest, 400, new(*types.InvalidRequestException)},
		{awserr.ResourceExists, 400, new(*types.ResourceExistsException)},
		{awserr.LimitExceeded, 400, new(*types.LimitExceededException)},
		{awserr.PreconditionNotMet, 400, new(*types.PreconditionNotMetException)},
		{awserr.MalformedPolicyDocument, 400, new(*types.MalformedPolicyDocumentException)},
		{awserr.DecryptionFailure, 400, new(*types.DecryptionFailure)},
		{awserr.EncryptionFailure, 400, new(*types.EncryptionFailure)},
		{InvalidNextTokenException, 400, new(*types.InvalidNextTokenException)},
		{PublicPolicyException, 400, new(*types.PublicPolicyException)},
		{awserr.InternalServiceError, 500, new(*types.InternalServiceError)},
	}
	for _, c := range cases {
		answer = &awserr.Error{Code: c.code, Message: msg}
		_, err := client.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("x")})
		if !errors.As(err, c.typed) {
			t.Errorf("%s: %T %v is not %T", c.code, err, err, c.typed)
			continue
		}
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != c.code || api.ErrorMessage() != msg {
			t.Errorf("%s: code %q message %q", c.code, api.ErrorCode(), api.ErrorMessage())
		}
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != c.status || re.ServiceRequestID() != "11111111-2222-3333-4444-555555555555" {
			t.Errorf("%s: HTTP %v", c.code, err)
		}
	}

	// Errors outside the model reach the SDK as generic API errors with code and message.
	generic := []struct {
		err        error
		code, msg  string
		status     int
		requestErr func() error
	}{
		{&awserr.Error{Code: ValidationException, Message: "1 validation error detected: x"}, ValidationException, "1 validation error detected: x", 400, nil},
		{&awserr.Error{Code: awserr.AccessDenied, Message: "no"}, awserr.AccessDenied, "no", 400, nil},
		{errors.New("internal detail"), awserr.InternalServiceError, MsgInternal, 500, nil},
		{nil, ValidationException, MsgInvalidName, 400, func() error {
			_, err := client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("my secret")})
			return err
		}},
		{nil, awserr.InvalidParameter, MsgRecoveryWindow, 400, func() error {
			_, err := client.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String("x"), RecoveryWindowInDays: aws.Int64(3)})
			return err
		}},
		{nil, ValidationException, "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1", 400, func() error {
			_, err := client.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(0)})
			return err
		}},
	}
	for _, g := range generic {
		answer = g.err
		var err error
		if g.requestErr != nil {
			err = g.requestErr()
		} else {
			_, err = client.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("x")})
		}
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != g.code || api.ErrorMessage() != g.msg {
			t.Errorf("%v: got %v, want %s %q", g.err, err, g.code, g.msg)
		}
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != g.status {
			t.Errorf("%v: HTTP status of %v", g.err, err)
		}
	}
}

// An unknown X-Amz-Target and a body that is not JSON, as a raw client would send them.
func TestRawProtocolErrors(t *testing.T) {
	f, _ := newFakeAPI(t)
	f.respond = func(string, any) (any, error) { return struct{}{}, nil }
	post := func(target, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", ContentType)
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/secretsmanager/aws4_request")
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("secretsmanager.Nope", "{}"); code != 400 || body != `{"__type":"UnknownOperationException"}` {
		t.Errorf("unknown operation: %d %s", code, body)
	}
	if code, body := post("secretsmanager.GetSecretValue", "{"); code != 400 || body != `{"__type":"SerializationException"}` {
		t.Errorf("malformed: %d %s", code, body)
	}
	if code, body := post("secretsmanager.GetSecretValue", `{"SecretId":{}}`); code != 400 ||
		body != `{"__type":"SerializationException","Message":"Start of structure or map found where not expected"}` {
		t.Errorf("wrong type: %d %s", code, body)
	}
	if code, body := post("secretsmanager.GetSecretValue", `{}`); code != 400 ||
		body != `{"__type":"ValidationException","message":"1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null"}` {
		t.Errorf("missing member: %d %s", code, body)
	}
	if code, body := post("secretsmanager.PutResourcePolicy", `{"SecretId":"a","ResourcePolicy":"{}"}`); code != 200 || body != `{}` {
		t.Errorf("policy operations decode: %d %s", code, body)
	}
}

// The member names of this package's shapes are the SDK's (the API model's), so a typo in a JSON
// tag cannot go unnoticed.
func TestMemberNamesMatchTheModel(t *testing.T) {
	pairs := []struct{ ours, sdk any }{
		{GetSecretValueInput{}, secretsmanager.GetSecretValueInput{}}, {GetSecretValueOutput{}, secretsmanager.GetSecretValueOutput{}},
		{BatchGetSecretValueInput{}, secretsmanager.BatchGetSecretValueInput{}}, {BatchGetSecretValueOutput{}, secretsmanager.BatchGetSecretValueOutput{}},
		{SecretValueEntry{}, types.SecretValueEntry{}}, {APIError{}, types.APIErrorType{}},
		{DescribeSecretInput{}, secretsmanager.DescribeSecretInput{}}, {DescribeSecretOutput{}, secretsmanager.DescribeSecretOutput{}},
		{ListSecretsInput{}, secretsmanager.ListSecretsInput{}}, {ListSecretsOutput{}, secretsmanager.ListSecretsOutput{}},
		{SecretListEntry{}, types.SecretListEntry{}}, {Filter{}, types.Filter{}}, {Tag{}, types.Tag{}},
		{RotationRules{}, types.RotationRulesType{}}, {ReplicaRegion{}, types.ReplicaRegionType{}},
		{ReplicationStatus{}, types.ReplicationStatusType{}}, {ExternalSecretRotationMetadataItem{}, types.ExternalSecretRotationMetadataItem{}},
		{ListSecretVersionIDsInput{}, secretsmanager.ListSecretVersionIdsInput{}}, {ListSecretVersionIDsOutput{}, secretsmanager.ListSecretVersionIdsOutput{}},
		{SecretVersionsListEntry{}, types.SecretVersionsListEntry{}},
		{CreateSecretInput{}, secretsmanager.CreateSecretInput{}}, {CreateSecretOutput{}, secretsmanager.CreateSecretOutput{}},
		{PutSecretValueInput{}, secretsmanager.PutSecretValueInput{}}, {PutSecretValueOutput{}, secretsmanager.PutSecretValueOutput{}},
		{UpdateSecretInput{}, secretsmanager.UpdateSecretInput{}}, {UpdateSecretOutput{}, secretsmanager.UpdateSecretOutput{}},
		{UpdateSecretVersionStageInput{}, secretsmanager.UpdateSecretVersionStageInput{}}, {UpdateSecretVersionStageOutput{}, secretsmanager.UpdateSecretVersionStageOutput{}},
		{DeleteSecretInput{}, secretsmanager.DeleteSecretInput{}}, {DeleteSecretOutput{}, secretsmanager.DeleteSecretOutput{}},
		{RestoreSecretInput{}, secretsmanager.RestoreSecretInput{}}, {RestoreSecretOutput{}, secretsmanager.RestoreSecretOutput{}},
		{TagResourceInput{}, secretsmanager.TagResourceInput{}}, {TagResourceOutput{}, secretsmanager.TagResourceOutput{}},
		{UntagResourceInput{}, secretsmanager.UntagResourceInput{}}, {UntagResourceOutput{}, secretsmanager.UntagResourceOutput{}},
		{RotateSecretInput{}, secretsmanager.RotateSecretInput{}}, {RotateSecretOutput{}, secretsmanager.RotateSecretOutput{}},
		{CancelRotateSecretInput{}, secretsmanager.CancelRotateSecretInput{}}, {CancelRotateSecretOutput{}, secretsmanager.CancelRotateSecretOutput{}},
		{GetRandomPasswordInput{}, secretsmanager.GetRandomPasswordInput{}}, {GetRandomPasswordOutput{}, secretsmanager.GetRandomPasswordOutput{}},
		{GetResourcePolicyInput{}, secretsmanager.GetResourcePolicyInput{}}, {GetResourcePolicyOutput{}, secretsmanager.GetResourcePolicyOutput{}},
		{PutResourcePolicyInput{}, secretsmanager.PutResourcePolicyInput{}}, {PutResourcePolicyOutput{}, secretsmanager.PutResourcePolicyOutput{}},
		{DeleteResourcePolicyInput{}, secretsmanager.DeleteResourcePolicyInput{}}, {DeleteResourcePolicyOutput{}, secretsmanager.DeleteResourcePolicyOutput{}},
		{ValidateResourcePolicyInput{}, secretsmanager.ValidateResourcePolicyInput{}}, {ValidateResourcePolicyOutput{}, secretsmanager.ValidateResourcePolicyOutput{}},
		{ValidationErrorsEntry{}, types.ValidationErrorsEntry{}},
	}
	for _, p := range pairs {
		var ours, sdk []string
		ot := reflect.TypeOf(p.ours)
		for i := 0; i < ot.NumField(); i++ {
			key, _, _ := strings.Cut(ot.Field(i).Tag.Get("json"), ",")
			ours = append(ours, key)
		}
		st := reflect.TypeOf(p.sdk)
		for i := 0; i < st.NumField(); i++ {
			if f := st.Field(i); f.IsExported() && f.Name != "ResultMetadata" {
				sdk = append(sdk, f.Name)
			}
		}
		sort.Strings(ours)
		sort.Strings(sdk)
		if !reflect.DeepEqual(ours, sdk) {
			t.Errorf("%s: members %q, the model's %q", ot.Name(), ours, sdk)
		}
	}
}
