package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/accesskeys"
)

// The AWS API's conformance suite: the real aws-sdk-go-v2 clients (secretsmanager, sts and
// stscreds' web identity provider, as an EKS pod uses them) against the suite's operator, which
// serves the API on a loopback port with its own CA (published as a ClusterTrustBundle, which is
// what the clients trust here).

const (
	apiAudience = "kube-secrets-manager"
	apiRegion   = "local"
	apiRoleARN  = "arn:aws:iam::123456789012:role/app"
)

var apiTrust struct {
	once sync.Once
	pool *x509.CertPool
	err  error
}

// apiHTTPClient trusts the API's CA as published in its ClusterTrustBundle.
func apiHTTPClient(t *testing.T) *http.Client {
	t.Helper()
	apiTrust.once.Do(func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctb := &certificatesv1.ClusterTrustBundle{}
			err := k8s.Get(context.Background(), types.NamespacedName{Name: suiteOpts.API.TrustBundle}, ctb)
			if err == nil {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM([]byte(ctb.Spec.TrustBundle)) {
					apiTrust.err = errors.New("the ClusterTrustBundle holds no certificate")
				}
				apiTrust.pool = pool
				return
			}
			if time.Now().After(deadline) {
				apiTrust.err = fmt.Errorf("the API's ClusterTrustBundle did not appear: %w", err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if apiTrust.err != nil {
		t.Fatal(apiTrust.err)
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: apiTrust.pool, MinVersion: tls.VersionTLS12}}}
}

// apiEndpoint is the API as a port-forward or a development run reaches it.
func apiEndpoint() string {
	_, port, _ := strings.Cut(suiteOpts.API.Addr, ":")
	return "https://localhost:" + port
}

// apiServiceAccount makes a ServiceAccount bound to the given ClusterRoles in ns.
func apiServiceAccount(t *testing.T, ns, name string, clusterRoles ...string) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
		t.Fatal(err)
	}
	for _, role := range clusterRoles {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-" + role},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}
		if err := k8s.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
	}
}

// saToken is a projected-style token of the ServiceAccount for the audience.
func saToken(t *testing.T, ns, name, audience string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}}}
	if err := k8s.SubResource("token").Create(context.Background(), sa, tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// webIdentityClient is a secretsmanager client with the credentials an EKS pod gets: stscreds'
// web identity provider exchanging the ServiceAccount's token at the API's STS.
func webIdentityClient(t *testing.T, ns, sa string) *secretsmanager.Client {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(saToken(t, ns, sa, apiAudience)), 0o600); err != nil {
		t.Fatal(err)
	}
	hc := apiHTTPClient(t)
	stsClient := sts.New(sts.Options{Region: apiRegion, BaseEndpoint: aws.String(apiEndpoint()), HTTPClient: hc})
	provider := stscreds.NewWebIdentityRoleProvider(stsClient, apiRoleARN, stscreds.IdentityTokenFile(tokenFile))
	return secretsmanager.New(secretsmanager.Options{Region: apiRegion, BaseEndpoint: aws.String(apiEndpoint()), HTTPClient: hc,
		Credentials: aws.NewCredentialsCache(provider), RetryMaxAttempts: 1})
}

// accessKeyFor issues a static access key acting as the ServiceAccount, as
// `kubectl secrets-manager create-access-key` does, and returns its id and secret.
func accessKeyFor(t *testing.T, ns, name, sa string) (string, string) {
	t.Helper()
	priv, pub, err := accesskeys.NewRecipient()
	if err != nil {
		t.Fatal(err)
	}
	ak := &v1alpha1.AccessKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AccessKeySpec{ServiceAccountName: sa, RecipientPublicKey: pub}}
	if err := k8s.Create(context.Background(), ak); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the access key is issued", func() error {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, ak); err != nil {
			return err
		}
		if ak.Status.Delivered == nil || ak.Status.AccessKeyID == "" {
			return errors.New("not issued yet")
		}
		return nil
	})
	secret, err := accesskeys.OpenDelivery(priv, ak.Status.AccessKeyID, ak.Status.Delivered)
	if err != nil {
		t.Fatal(err)
	}
	return ak.Status.AccessKeyID, secret
}

func staticClient(t *testing.T, id, secret string) *secretsmanager.Client {
	t.Helper()
	return secretsmanager.New(secretsmanager.Options{Region: apiRegion, BaseEndpoint: aws.String(apiEndpoint()), HTTPClient: apiHTTPClient(t),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1})
}

// wantAPIError asserts err is the AWS error code (and, when given, its message contains msg).
func wantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	if e := apiErrorIs(err, code, msg); e != nil {
		t.Fatal(e)
	}
}

// apiErrorIs is nil when err is the AWS error code (and, when given, its message contains msg),
// for polling.
func apiErrorIs(err error, code, msg string) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msg) {
		return fmt.Errorf("want %s %q, got %s: %s", code, msg, ae.ErrorCode(), ae.ErrorMessage())
	}
	return nil
}

// must(call)(t) is call's result, the test failing on its error.
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestAPIValueLifecycleWithWebIdentity(t *testing.T) {
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "app", "secretsmanager-writer")
	sm := webIdentityClient(t, ns, "app")
	ctx := context.Background()
	const name = "prod/db+main@x.y=z_1-2"
	token1 := "11111111-1111-4111-8111-111111111111"

	created := must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(canaryPrefix + "api-first-value-3f9a"),
		ClientRequestToken: aws.String(token1), Description: aws.String("the database"), Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}))(t)
	if aws.ToString(created.VersionId) != token1 || aws.ToString(created.Name) != name ||
		!strings.HasPrefix(aws.ToString(created.ARN), "arn:kubernetes:secretsmanager:local:"+ns+":secret:"+name+"-") {
		t.Fatalf("CreateSecret answered %+v", created)
	}
	// The same request again (an SDK retry) is the same success; another value under the token is not.
	again := must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(canaryPrefix + "api-first-value-3f9a"), ClientRequestToken: aws.String(token1)}))(t)
	if aws.ToString(again.VersionId) != token1 {
		t.Fatalf("the retried CreateSecret answered version %s", aws.ToString(again.VersionId))
	}
	_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("other"), ClientRequestToken: aws.String(token1)})
	wantAPIError(t, err, "ResourceExistsException", "")
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("other")})
	wantAPIError(t, err, "ResourceExistsException", "already exists")

	// The secret is an ordinary ManagedSecret of the caller's namespace, with a valid object name.
	list := &v1alpha1.ManagedSecretList{}
	if err := k8s.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	var found *v1alpha1.ManagedSecret
	for i := range list.Items {
		if list.Items[i].Namespace == ns {
			found = &list.Items[i]
		}
	}
	if found == nil || found.Annotations[v1alpha1.AnnotationAWSName] != name || found.Spec.Description != "the database" {
		t.Fatalf("the ManagedSecret made for %q: %+v", name, found)
	}

	got := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}))(t)
	if aws.ToString(got.SecretString) != canaryPrefix+"api-first-value-3f9a" || aws.ToString(got.VersionId) != token1 || !slices.Equal(got.VersionStages, []string{"AWSCURRENT"}) || got.SecretBinary != nil {
		t.Fatalf("GetSecretValue answered %q %s %v", aws.ToString(got.SecretString), aws.ToString(got.VersionId), got.VersionStages)
	}
	// By full ARN and by the ARN without its random suffix (a partial ARN), as AWS resolves them.
	arn := aws.ToString(created.ARN)
	for _, id := range []string{arn, arn[:len(arn)-7]} {
		if g := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}))(t); aws.ToString(g.ARN) != arn {
			t.Fatalf("GetSecretValue(%s) answered ARN %s", id, aws.ToString(g.ARN))
		}
	}

	put := must(sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(canaryPrefix + "api-second-value-77c1")}))(t)
	if !slices.Equal(put.VersionStages, []string{"AWSCURRENT"}) || aws.ToString(put.VersionId) == "" {
		t.Fatalf("PutSecretValue answered %+v", put)
	}
	prev := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("AWSPREVIOUS")}))(t)
	if aws.ToString(prev.SecretString) != canaryPrefix+"api-first-value-3f9a" || aws.ToString(prev.VersionId) != token1 {
		t.Fatalf("AWSPREVIOUS is %s", aws.ToString(prev.VersionId))
	}
	// A version staged AWSPENDING by PutSecretValue does not become current.
	pending := must(sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(canaryPrefix + "api-pending-9d0e"),
		VersionStages: []string{"AWSPENDING"}}))(t)
	cur := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}))(t)
	if aws.ToString(cur.VersionId) != aws.ToString(put.VersionId) {
		t.Fatalf("AWSCURRENT moved to %s on a PutSecretValue staged AWSPENDING", aws.ToString(cur.VersionId))
	}
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(token1), VersionStage: aws.String("AWSCURRENT")})
	wantAPIError(t, err, "InvalidRequestException", "not associated")

	// Moving AWSCURRENT back to the first version: AWSPREVIOUS follows the old current, as AWS moves it.
	must(sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(token1), RemoveFromVersionId: put.VersionId}))(t)
	_, err = sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: put.VersionId})
	wantAPIError(t, err, "InvalidParameterException", "")
	versions := must(sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name)}))(t)
	stages := map[string][]string{}
	for _, v := range versions.Versions {
		stages[aws.ToString(v.VersionId)] = v.VersionStages
	}
	if !slices.Equal(stages[token1], []string{"AWSCURRENT"}) || !slices.Equal(stages[aws.ToString(put.VersionId)], []string{"AWSPREVIOUS"}) ||
		!slices.Equal(stages[aws.ToString(pending.VersionId)], []string{"AWSPENDING"}) || len(stages) != 3 {
		t.Fatalf("ListSecretVersionIds: %v", stages)
	}
	// The projected Secret follows AWSCURRENT whichever interface moved it.
	eventually(t, "the projection follows AWSCURRENT", func() error {
		sec := &corev1.Secret{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: found.Name}, sec); err != nil {
			return err
		}
		if string(sec.Data["value"]) != canaryPrefix+"api-first-value-3f9a" && !strings.Contains(fmt.Sprint(sec.Data), canaryPrefix+"api-first-value-3f9a") {
			return errors.New("the projection does not hold the current value")
		}
		return nil
	})

	// The first change took the projected Secret into server-side apply, with an Event.
	eventually(t, "the projected Secret server-side applied, with an Event", func() error {
		sec := &corev1.Secret{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: found.Name}, sec); err != nil {
			return err
		}
		if !hasFieldManager(sec.ManagedFields, FieldManager, metav1.ManagedFieldsOperationApply) {
			return fmt.Errorf("managed fields %+v", sec.ManagedFields)
		}
		for _, e := range eventsFor(t, ns) {
			if e.Reason == v1alpha1.ReasonSecretProjected {
				return nil
			}
		}
		return errors.New("no SecretProjected Event")
	})
	d := must(sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}))(t)
	if aws.ToString(d.Description) != "the database" || len(d.VersionIdsToStages) != 3 || len(d.Tags) != 1 || d.CreatedDate == nil || d.LastChangedDate == nil || d.DeletedDate != nil {
		t.Fatalf("DescribeSecret: %+v", d)
	}
	eventually(t, "LastAccessedDate is set by a read", func() error {
		d := must(sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}))(t)
		if d.LastAccessedDate == nil {
			return errors.New("no LastAccessedDate")
		}
		return nil
	})

	// UpdateSecret: the description, and a value (a new version that becomes AWSCURRENT).
	upd := must(sm.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String(name), Description: aws.String("moved"), SecretString: aws.String(canaryPrefix + "api-third-4b2b")}))(t)
	if aws.ToString(upd.VersionId) == "" {
		t.Fatal("UpdateSecret with a value answered no version")
	}
	if g := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}))(t); aws.ToString(g.SecretString) != canaryPrefix+"api-third-4b2b" {
		t.Fatal("UpdateSecret's value is not current")
	}
}

func TestAPIBinaryValuesAndBatchGet(t *testing.T) {
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "app", "secretsmanager-writer")
	sm := webIdentityClient(t, ns, "app")
	ctx := context.Background()
	bin := []byte{0, 1, 2, 0xff, 0xfe, 'c', 'a', 'n'}
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("blob"), SecretBinary: bin}))(t)
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("text"), SecretString: aws.String(canaryPrefix + "api-batch-text")}))(t)
	got := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("blob")}))(t)
	if string(got.SecretBinary) != string(bin) || got.SecretString != nil {
		t.Fatalf("binary value came back as %v / %v", got.SecretBinary, got.SecretString)
	}
	batch := must(sm.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"blob", "text", "missing"}}))(t)
	if len(batch.SecretValues) != 2 || len(batch.Errors) != 1 || aws.ToString(batch.Errors[0].ErrorCode) != "ResourceNotFoundException" || aws.ToString(batch.Errors[0].SecretId) != "missing" {
		t.Fatalf("BatchGetSecretValue: %d values, errors %+v", len(batch.SecretValues), batch.Errors)
	}
	byFilter := must(sm.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{"te"}}}}))(t)
	if len(byFilter.SecretValues) != 1 || aws.ToString(byFilter.SecretValues[0].SecretString) != canaryPrefix+"api-batch-text" {
		t.Fatalf("BatchGetSecretValue by filter: %+v", byFilter.SecretValues)
	}
	_, err := sm.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"blob"}, Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{"b"}}}})
	wantAPIError(t, err, "InvalidParameterException", "")
}

func TestAPIListSecretsFiltersAndPages(t *testing.T) {
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "app", "secretsmanager-writer")
	sm := webIdentityClient(t, ns, "app")
	ctx := context.Background()
	for i, n := range []string{"app/a", "app/b", "app/c", "db/main", "db/replica"} {
		team := "web"
		if strings.HasPrefix(n, "db/") {
			team = "data"
		}
		must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(n), SecretString: aws.String(fmt.Sprint("v", i)),
			Description: aws.String("secret of " + team), Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String(team)}}}))(t)
	}
	names := func(in *secretsmanager.ListSecretsInput) []string {
		t.Helper()
		var out []string
		p := secretsmanager.NewListSecretsPaginator(sm, in)
		pages := 0
		for p.HasMorePages() {
			page := must(p.NextPage(ctx))(t)
			pages++
			for _, e := range page.SecretList {
				out = append(out, aws.ToString(e.Name))
			}
		}
		if in.MaxResults != nil && pages < len(out)/int(*in.MaxResults) {
			t.Fatalf("%d results in %d pages of %d", len(out), pages, *in.MaxResults)
		}
		return out
	}
	eventually(t, "the cache holds every secret", func() error {
		if n := names(&secretsmanager.ListSecretsInput{}); len(n) != 5 {
			return fmt.Errorf("listed %v", n)
		}
		return nil
	})
	all := names(&secretsmanager.ListSecretsInput{MaxResults: aws.Int32(2), SortOrder: smtypes.SortOrderTypeAsc})
	if len(all) != 5 {
		t.Fatalf("paged through %v", all)
	}
	for _, c := range []struct {
		filters []smtypes.Filter
		want    []string
	}{
		{[]smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{"db/"}}}, []string{"db/main", "db/replica"}},
		{[]smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{"!db/"}}}, []string{"app/a", "app/b", "app/c"}},
		{[]smtypes.Filter{{Key: smtypes.FilterNameStringTypeTagValue, Values: []string{"data"}}}, []string{"db/main", "db/replica"}},
		{[]smtypes.Filter{{Key: smtypes.FilterNameStringTypeTagKey, Values: []string{"team"}}, {Key: smtypes.FilterNameStringTypeName, Values: []string{"app/c"}}}, []string{"app/c"}},
		{[]smtypes.Filter{{Key: smtypes.FilterNameStringTypeDescription, Values: []string{"secret of web"}}}, []string{"app/a", "app/b", "app/c"}},
		{[]smtypes.Filter{{Key: smtypes.FilterNameStringTypeAll, Values: []string{"replica"}}}, []string{"db/replica"}},
	} {
		got := names(&secretsmanager.ListSecretsInput{Filters: c.filters, MaxResults: aws.Int32(1)})
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("filters %+v: got %v, want %v", c.filters, got, c.want)
		}
	}
	// A pagination token is opaque and bound to its caller and query.
	first := must(sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1)}))(t)
	_, err := sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1), NextToken: aws.String(aws.ToString(first.NextToken) + "x")})
	wantAPIError(t, err, "InvalidNextTokenException", "")
	_, err = sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: []smtypes.Filter{{Key: "owner", Values: []string{"x"}}}})
	if err == nil {
		t.Fatal("an unknown filter key was accepted")
	}
}

func TestAPIDeleteRestoreAndTags(t *testing.T) {
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "admin", "secretsmanager-admin")
	sm := webIdentityClient(t, ns, "admin")
	ctx := context.Background()
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("svc"), SecretString: aws.String(canaryPrefix + "api-del-1")}))(t)

	must(sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("svc"), Tags: []smtypes.Tag{{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("owner"), Value: aws.String("me")}}}))(t)
	must(sm.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String("svc"), TagKeys: []string{"owner"}}))(t)
	_, err := sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("svc"), Tags: []smtypes.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}})
	wantAPIError(t, err, "InvalidParameterException", "")
	d := must(sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc")}))(t)
	if len(d.Tags) != 1 || aws.ToString(d.Tags[0].Key) != "env" || aws.ToString(d.Tags[0].Value) != "prod" {
		t.Fatalf("tags after tag and untag: %+v", d.Tags)
	}
	// Tags keep the order they were first added in, a new value taking the key's place, as AWS.
	must(sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("svc"), Tags: []smtypes.Tag{{Key: aws.String("cost-center"), Value: aws.String("42")}}}))(t)
	must(sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("svc"), Tags: []smtypes.Tag{{Key: aws.String("env"), Value: aws.String("staging")}}}))(t)
	d = must(sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc")}))(t)
	var order []string
	for _, tag := range d.Tags {
		order = append(order, aws.ToString(tag.Key)+"="+aws.ToString(tag.Value))
	}
	if !slices.Equal(order, []string{"env=staging", "cost-center=42"}) {
		t.Fatalf("tags in the order %v", order)
	}
	// Once every tag is removed, Tags is [] (present), as AWS answers; a secret never tagged has none.
	must(sm.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String("svc"), TagKeys: []string{"env", "cost-center"}}))(t)
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("untagged"), SecretString: aws.String(canaryPrefix + "api-del-2")}))(t)
	for name, want := range map[string]string{"svc": `"Tags":[]`, "untagged": ""} {
		raw := rawDescribe(t, sm, name)
		if (want != "") != strings.Contains(raw, `"Tags":[]`) || (want == "" && strings.Contains(raw, `"Tags"`)) {
			t.Fatalf("DescribeSecret of %s answered %s", name, raw)
		}
	}

	_, err = sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("svc"), RecoveryWindowInDays: aws.Int64(3)})
	wantAPIError(t, err, "InvalidParameterException", "")
	_, err = sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("svc"), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)})
	wantAPIError(t, err, "InvalidParameterException", "")

	before := time.Now()
	del := must(sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("svc"), RecoveryWindowInDays: aws.Int64(7)}))(t)
	if dd := aws.ToTime(del.DeletionDate); dd.Before(before.Add(7*24*time.Hour-time.Minute)) || dd.After(time.Now().Add(7*24*time.Hour+time.Minute)) {
		t.Fatalf("DeletionDate %s is not seven days away", dd)
	}
	eventually(t, "reads of a secret pending deletion are refused", func() error {
		_, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
		return apiErrorIs(err, "InvalidRequestException", "")
	})
	if d := must(sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc")}))(t); d.DeletedDate == nil {
		t.Fatal("DescribeSecret of a secret pending deletion has no DeletedDate")
	}
	_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("svc"), SecretString: aws.String("x")})
	wantAPIError(t, err, "InvalidRequestException", "")
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("svc"), SecretString: aws.String("x")})
	wantAPIError(t, err, "InvalidRequestException", "scheduled for deletion")

	must(sm.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("svc")}))(t)
	eventually(t, "a restored secret reads again", func() error {
		g, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("svc")})
		if err != nil {
			return err
		}
		if aws.ToString(g.SecretString) != canaryPrefix+"api-del-1" {
			return errors.New("another value")
		}
		return nil
	})

	must(sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("svc"), ForceDeleteWithoutRecovery: aws.Bool(true)}))(t)
	eventually(t, "a forced delete removes the secret", func() error {
		_, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("svc")})
		return apiErrorIs(err, "ResourceNotFoundException", "")
	})
	// A forced delete of a secret that does not exist succeeds, as AWS answers: the name as given,
	// an ARN, and now as the deletion date.
	gone := must(sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("never-was"), ForceDeleteWithoutRecovery: aws.Bool(true)}))(t)
	if aws.ToString(gone.Name) != "never-was" || !strings.HasPrefix(aws.ToString(gone.ARN), "arn:kubernetes:secretsmanager:"+apiRegion+":"+ns+":secret:never-was-") ||
		gone.DeletionDate == nil || time.Since(*gone.DeletionDate) > time.Minute {
		t.Fatalf("DeleteSecret of a missing secret answered %s %s %v", aws.ToString(gone.Name), aws.ToString(gone.ARN), gone.DeletionDate)
	}
}

func TestAPIRotationOperationsAndPasswords(t *testing.T) {
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "app", "secretsmanager-writer")
	sm := webIdentityClient(t, ns, "app")
	ctx := context.Background()
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("plain"), SecretString: aws.String(canaryPrefix + "api-rot-1")}))(t)
	_, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("plain")})
	wantAPIError(t, err, "InvalidRequestException", "")
	_, err = sm.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("plain")})
	wantAPIError(t, err, "InvalidRequestException", "")
	_, err = sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("plain"), RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}})
	wantAPIError(t, err, "InvalidParameterException", "RotationPolicy")

	pw := must(sm.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(40), ExcludePunctuation: aws.Bool(true)}))(t)
	if p := aws.ToString(pw.RandomPassword); len(p) != 40 || strings.ContainsAny(p, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") {
		t.Fatalf("GetRandomPassword answered %d characters", len(p))
	}
	_, err = sm.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(5000)})
	if err == nil {
		t.Fatal("a 5000-character password was generated")
	}
	_, err = sm.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(3), RequireEachIncludedType: aws.Bool(true)})
	wantAPIError(t, err, "InvalidParameterException", "Password length is too short based on the required types.")
}

func TestAPIAuthorizationFollowsRBAC(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	apiServiceAccount(t, ns, "writer", "secretsmanager-writer")
	apiServiceAccount(t, ns, "reader", "secretsmanager-reader")
	apiServiceAccount(t, ns, "nobody")
	apiServiceAccount(t, other, "writer", "secretsmanager-writer")
	ctx := context.Background()
	writer, reader, nobody := webIdentityClient(t, ns, "writer"), webIdentityClient(t, ns, "reader"), webIdentityClient(t, ns, "nobody")
	created := must(writer.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("shared"), SecretString: aws.String(canaryPrefix + "api-authz-1")}))(t)

	eventually(t, "the reader reads", func() error {
		_, err := reader.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("shared")})
		return err
	})
	_, err := reader.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("shared"), SecretString: aws.String("x")})
	wantAPIError(t, err, "AccessDeniedException", "not authorized")
	_, err = reader.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("shared")})
	wantAPIError(t, err, "AccessDeniedException", "")
	// A caller without rights learns nothing: an existing and a missing secret answer alike.
	_, errExisting := nobody.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("shared")})
	_, errMissing := nobody.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
	wantAPIError(t, errExisting, "AccessDeniedException", "")
	wantAPIError(t, errMissing, "AccessDeniedException", "")
	var aeExisting, aeMissing smithy.APIError
	errors.As(errExisting, &aeExisting)
	errors.As(errMissing, &aeMissing)
	if strings.ReplaceAll(aeExisting.ErrorMessage(), "shared", "X") != strings.ReplaceAll(aeMissing.ErrorMessage(), "missing", "X") {
		t.Fatalf("the refusals differ:\n%v\n%v", errExisting, errMissing)
	}
	_, err = nobody.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	wantAPIError(t, err, "AccessDeniedException", "")
	_, err = nobody.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String("shared")})
	wantAPIError(t, err, "AccessDeniedException", "")
	if p := must(reader.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String("shared")}))(t); aws.ToString(p.ARN) != aws.ToString(created.ARN) || p.ResourcePolicy != nil {
		t.Fatalf("GetResourcePolicy answered %+v", p)
	}

	// Another namespace's writer reaches nothing here, by name or by ARN.
	outsider := webIdentityClient(t, other, "writer")
	for _, id := range []string{"shared", aws.ToString(created.ARN)} {
		_, err := outsider.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		wantAPIError(t, err, "ResourceNotFoundException", "")
	}
	if l := must(outsider.ListSecrets(ctx, &secretsmanager.ListSecretsInput{}))(t); len(l.SecretList) != 0 {
		t.Fatalf("another namespace listed %d secrets", len(l.SecretList))
	}
}

func TestAPIStaticAccessKeys(t *testing.T) {
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "ci", "secretsmanager-writer")
	id, secret := accessKeyFor(t, ns, "ci-key", "ci")
	sm := staticClient(t, id, secret)
	ctx := context.Background()
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("from-ci"), SecretString: aws.String(canaryPrefix + "api-static-1")}))(t)
	if g := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("from-ci")}))(t); aws.ToString(g.SecretString) != canaryPrefix+"api-static-1" {
		t.Fatal("the value read back differs")
	}
	// A wrong secret is a signature mismatch; an unknown key id is unrecognised.
	_, err := staticClient(t, id, secret+"x").GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("from-ci")})
	wantAPIError(t, err, "InvalidSignatureException", "")
	_, err = staticClient(t, "AKIAAAAAAAAAAAAAAAAA", secret).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("from-ci")})
	wantAPIError(t, err, "UnrecognizedClientException", "")

	// Disabling the AccessKey revokes it.
	ak := &v1alpha1.AccessKey{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "ci-key"}, ak); err != nil {
		t.Fatal(err)
	}
	ak.Spec.Disabled = true
	if err := k8s.Update(ctx, ak); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a disabled key is refused", func() error {
		_, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("from-ci")})
		return apiErrorIs(err, "UnrecognizedClientException", "")
	})
}

// STS GetCallerIdentity (what `aws sts get-caller-identity` and Terraform's provider call first)
// answers who signed the request: a web-identity session is its assumed role, as
// AssumeRoleWithWebIdentity answered; a static access key is its ServiceAccount, in the account of
// the secrets' ARNs. An unsigned call, or one signed with a wrong secret, is refused.
func TestSTSGetCallerIdentity(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	apiServiceAccount(t, ns, "app")
	apiServiceAccount(t, ns, "ci")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(saToken(t, ns, "app", apiAudience)), 0o600); err != nil {
		t.Fatal(err)
	}
	hc := apiHTTPClient(t)
	stsFor := func(creds aws.CredentialsProvider) *sts.Client {
		return sts.New(sts.Options{Region: apiRegion, BaseEndpoint: aws.String(apiEndpoint()), HTTPClient: hc, Credentials: creds, RetryMaxAttempts: 1})
	}
	session := stscreds.NewWebIdentityRoleProvider(stsFor(nil), apiRoleARN, stscreds.IdentityTokenFile(tokenFile), func(o *stscreds.WebIdentityRoleOptions) {
		o.RoleSessionName = "deploy-42"
	})
	who := must(stsFor(aws.NewCredentialsCache(session)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(who.Arn) != "arn:aws:sts::123456789012:assumed-role/app/deploy-42" || aws.ToString(who.Account) != "123456789012" ||
		!strings.HasPrefix(aws.ToString(who.UserId), "AROA") || !strings.HasSuffix(aws.ToString(who.UserId), ":deploy-42") {
		t.Fatalf("GetCallerIdentity of a session answered %s %s %s", aws.ToString(who.Arn), aws.ToString(who.Account), aws.ToString(who.UserId))
	}

	id, secret := accessKeyFor(t, ns, "ci-key", "ci")
	who = must(stsFor(credentials.NewStaticCredentialsProvider(id, secret, "")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if aws.ToString(who.Arn) != "arn:kubernetes:iam::"+ns+":user/ci" || aws.ToString(who.Account) != ns || !strings.HasPrefix(aws.ToString(who.UserId), "AIDA") {
		t.Fatalf("GetCallerIdentity of an access key answered %s %s %s", aws.ToString(who.Arn), aws.ToString(who.Account), aws.ToString(who.UserId))
	}
	if _, err := stsFor(credentials.NewStaticCredentialsProvider(id, secret+"x", "")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	if _, err := stsFor(aws.AnonymousCredentials{}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
		t.Fatal("an unsigned call was answered")
	}
	// The key of a ServiceAccount that is gone answers for nobody.
	if err := k8s.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ci"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "GetCallerIdentity refused once the ServiceAccount is gone", func() error {
		_, err := stsFor(credentials.NewStaticCredentialsProvider(id, secret, "")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		return apiErrorIs(err, "InvalidClientTokenId", "")
	})
}

// Credentials end with their ServiceAccount, whatever RoleBindings still name it: a web-identity
// session of a deleted ServiceAccount is refused, and stays refused when one of the same name is
// made again (the session was issued to the old UID); so is a static access key acting as a
// deleted ServiceAccount. The attacker holds credentials taken from a pod before the
// ServiceAccount was deleted.
func TestAPICredentialsEndWithTheirServiceAccount(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	apiServiceAccount(t, ns, "app", "secretsmanager-writer")
	apiServiceAccount(t, ns, "ci", "secretsmanager-writer")
	session := webIdentityClient(t, ns, "app")
	id, secret := accessKeyFor(t, ns, "ci-key", "ci")
	static := staticClient(t, id, secret)
	must(session.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("db"), SecretString: aws.String(canaryPrefix + "api-sa-gone-1")}))(t)
	for _, c := range []*secretsmanager.Client{session, static} {
		must(c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")}))(t)
	}

	deleteSA := func(name string) {
		t.Helper()
		if err := k8s.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(c *secretsmanager.Client, secretID string) func() error {
		return func() error {
			_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
			return apiErrorIs(err, "AccessDeniedException", "")
		}
	}
	deleteSA("app")
	deleteSA("ci")
	eventually(t, "the session of a deleted ServiceAccount refused", refused(session, "db"))
	eventually(t, "the access key of a deleted ServiceAccount refused", refused(static, "db"))

	// The same name again: the old session is still refused (asked about another name, which no
	// earlier answer covers), while a session of the new ServiceAccount works.
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}); err != nil {
		t.Fatal(err)
	}
	if err := refused(session, "missing")(); err != nil {
		t.Fatalf("the old session after its ServiceAccount was made again: %v", err)
	}
	_, err := webIdentityClient(t, ns, "app").GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
	wantAPIError(t, err, "ResourceNotFoundException", "")
	if g := must(webIdentityClient(t, ns, "app").GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")}))(t); aws.ToString(g.SecretString) != canaryPrefix+"api-sa-gone-1" {
		t.Fatal("the new ServiceAccount's session read another value")
	}
	// An access key is bound to the ServiceAccount it was issued for, too: one made again under
	// the same name does not revive it.
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ci"}}); err != nil {
		t.Fatal(err)
	}
	if err := refused(static, "missing")(); err != nil {
		t.Fatalf("the old access key after its ServiceAccount was made again: %v", err)
	}
}

// A secret made with YAML is rotated through the API: RotateSecret attaches a RotationPolicy
// and starts a rotation (the four steps run in the rotation pod), the SDK sees the new
// AWSCURRENT, and CancelRotateSecret turns rotation off, as DescribeSecret reports.
func TestAPIRotateSecretRunsARotation(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	apiServiceAccount(t, ns, "ops", "secretsmanager-writer")
	sm := webIdentityClient(t, ns, "ops")
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	m := createReady(t, generated(ns, "app"))
	before := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app")}))(t)

	// A function (policy) that does not exist, or that the operator does not allow:
	// AccessDeniedException, and nothing is persisted. A suspended one starts nothing.
	if err := k8s.Create(ctx, policy(ns, "hostnet", v1alpha1.StrategyPassword, func(s *v1alpha1.RotationPolicySpec) {
		s.Pod = &v1alpha1.RotationPodSpec{HostNetwork: true}
	})); err != nil {
		t.Fatal(err)
	}
	yes := true
	if err := k8s.Create(ctx, policy(ns, "paused", v1alpha1.StrategyPassword, func(s *v1alpha1.RotationPolicySpec) { s.Suspend = &yes })); err != nil {
		t.Fatal(err)
	}
	_, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("app"), RotationLambdaARN: aws.String("arn:aws:lambda:local:1:function:missing")})
	wantAPIError(t, err, "AccessDeniedException", "cannot invoke the specified Lambda function")
	eventually(t, "a policy the operator refuses is not invoked", func() error {
		_, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("app"), RotationLambdaARN: aws.String("hostnet")})
		return apiErrorIs(err, "AccessDeniedException", "")
	})
	_, err = sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("app"), RotationLambdaARN: aws.String("paused")})
	wantAPIError(t, err, "InvalidRequestException", "suspended")
	if got := getMsec(t, ns, "app"); got.Spec.Rotation != nil {
		t.Fatalf("a refused RotateSecret attached %+v", got.Spec.Rotation)
	}

	// The new pending version gets the ClientRequestToken as its id, as in AWS; the SDK's retry of
	// the same call starts nothing more.
	const token = "77777777-aaaa-bbbb-cccc-000000000007"
	for range 2 {
		out := must(sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("app"), RotationLambdaARN: aws.String("pw"), ClientRequestToken: aws.String(token)}))(t)
		if aws.ToString(out.VersionId) != token {
			t.Fatalf("RotateSecret answered VersionId %q, want the token", aws.ToString(out.VersionId))
		}
	}
	if got := getMsec(t, ns, "app"); got.Spec.Rotation == nil || got.Spec.Rotation.PolicyRef.Name != "pw" {
		t.Fatalf("RotateSecret did not attach the policy: %+v", got.Spec.Rotation)
	}
	// A second caller (another token) while that request waits for its Job is refused: one
	// rotation at a time, and no answer names a version that will never exist.
	_, err = sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("app"), ClientRequestToken: aws.String("88888888-aaaa-bbbb-cccc-000000000008")})
	wantAPIError(t, err, "InvalidRequestException", "previous rotation isn't complete")
	d := must(sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app")}))(t)
	if !aws.ToBool(d.RotationEnabled) || d.RotationRules == nil || aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 30 {
		t.Fatalf("DescribeSecret after RotateSecret: enabled %v, rules %+v", aws.ToBool(d.RotationEnabled), d.RotationRules)
	}
	// ListSecrets carries the same rotation fields.
	eventually(t, "ListSecrets shows the rotation", func() error {
		l, err := sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
		if err != nil || len(l.SecretList) != 1 {
			return fmt.Errorf("%v, %d secrets", err, len(l.SecretList))
		}
		e := l.SecretList[0]
		if !aws.ToBool(e.RotationEnabled) || aws.ToString(e.RotationLambdaARN) != aws.ToString(d.RotationLambdaARN) || e.RotationRules == nil || aws.ToInt64(e.RotationRules.AutomaticallyAfterDays) != 30 {
			return fmt.Errorf("entry: enabled %v, function %q, rules %+v", aws.ToBool(e.RotationEnabled), aws.ToString(e.RotationLambdaARN), e.RotationRules)
		}
		return nil
	})
	var job *batchv1.Job
	eventually(t, "a rotation Job", func() error {
		jobs := &batchv1.JobList{}
		if err := k8s.List(ctx, jobs, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(jobs.Items) != 1 {
			return fmt.Errorf("%d Jobs", len(jobs.Items))
		}
		job = &jobs.Items[0]
		return nil
	})
	dir, req := material(t, ns, cronJobOf(t, ns, "app"), job)
	if req.ClientRequestToken != token {
		t.Fatalf("the rotation's pending version is %s, want the token", req.ClientRequestToken)
	}
	// Another RotateSecret while this one is under way is refused, as AWS refuses it.
	eventually(t, "a second rotation refused", func() error {
		_, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("app")})
		return apiErrorIs(err, "InvalidRequestException", "previous rotation isn't complete")
	})
	if code, out := runPod(t, dir, job); code != 0 {
		t.Fatalf("rotate: %d %s", code, out)
	}
	finishJob(t, job, true)
	waitRotated(t, ns, "app", m.Status.CurrentVersionID)
	after := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app")}))(t)
	if aws.ToString(after.VersionId) != token || aws.ToString(after.SecretString) == aws.ToString(before.SecretString) {
		t.Fatalf("the SDK sees version %s after the rotation, want %s with a new value", aws.ToString(after.VersionId), token)
	}
	prev := must(sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app"), VersionStage: aws.String("AWSPREVIOUS")}))(t)
	if aws.ToString(prev.VersionId) != aws.ToString(before.VersionId) {
		t.Fatalf("AWSPREVIOUS is %s, want the version before the rotation", aws.ToString(prev.VersionId))
	}
	if d := must(sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app")}))(t); d.LastRotatedDate == nil {
		t.Fatal("no LastRotatedDate after a rotation")
	}

	must(sm.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("app")}))(t)
	rotationEnabled := func(want bool) func() error {
		return func() error {
			d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app")})
			if err != nil {
				return err
			}
			if aws.ToBool(d.RotationEnabled) != want {
				return fmt.Errorf("RotationEnabled is %v", aws.ToBool(d.RotationEnabled))
			}
			return nil
		}
	}
	eventually(t, "rotation is off", rotationEnabled(false))
	// RotateSecret without rotating now turns scheduled rotation on again, and starts no Job.
	out := must(sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("app"), RotateImmediately: aws.Bool(false)}))(t)
	if out.VersionId != nil {
		t.Fatalf("RotateSecret without rotating answered VersionId %s", aws.ToString(out.VersionId))
	}
	eventually(t, "rotation is on again", rotationEnabled(true))
	jobs := &batchv1.JobList{}
	if err := k8s.List(ctx, jobs, client.InNamespace(ns)); err != nil || len(jobs.Items) != 1 {
		t.Fatalf("%d Jobs (%v) after RotateSecret without rotating", len(jobs.Items), err)
	}
}

// rawDescribe is DescribeSecret's JSON answer as the API sent it (the SDK's types cannot tell an
// absent list from an empty one), signed with sm's credentials.
func rawDescribe(t *testing.T, sm *secretsmanager.Client, name string) string {
	t.Helper()
	ctx := context.Background()
	creds, err := sm.Options().Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"SecretId": name})
	req, err := http.NewRequest(http.MethodPost, apiEndpoint()+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.DescribeSecret")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", apiRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := apiHTTPClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DescribeSecret %s: %d %s", name, resp.StatusCode, raw)
	}
	return string(raw)
}
