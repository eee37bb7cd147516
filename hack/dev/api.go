package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/accesskeys"
)

// The AWS API in a development run: the bundle's secretsmanager-* ClusterRoles, a ServiceAccount
// default/dev-cli bound to secretsmanager-admin, a static access key acting as it, and the API's
// CA in a file, so the aws CLI (or any SDK) works against the local operator.

const trustBundle = "kube-secrets-manager-api-ca"

type apiAccess struct {
	endpoint, caFile, keyID, secret string
}

func (a apiAccess) env() string {
	return fmt.Sprintf(`  export AWS_ENDPOINT_URL=%s AWS_CA_BUNDLE=%s AWS_REGION=local
  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s`, a.endpoint, a.caFile, a.keyID, a.secret)
}

func setupAPIAccess(ctx context.Context, c client.Client, bundle, tmp, endpoint string) (apiAccess, error) {
	if err := applyAPIRoles(ctx, c, bundle); err != nil {
		return apiAccess{}, err
	}
	if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "dev-cli"}}); err != nil {
		return apiAccess{}, err
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "dev-cli-admin"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "secretsmanager-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "default", Name: "dev-cli"}}}
	if err := c.Create(ctx, rb); err != nil {
		return apiAccess{}, err
	}
	priv, pub, err := accesskeys.NewRecipient()
	if err != nil {
		return apiAccess{}, err
	}
	ak := &v1alpha1.AccessKey{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "dev-cli"},
		Spec: v1alpha1.AccessKeySpec{ServiceAccountName: "dev-cli", RecipientPublicKey: pub, Description: "make dev"}}
	if err := c.Create(ctx, ak); err != nil {
		return apiAccess{}, err
	}
	a := apiAccess{endpoint: endpoint, caFile: filepath.Join(tmp, "api-ca.crt")}
	err = poll(ctx, "the access key to be issued and the API's CA to be published", func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(ak), ak); err != nil {
			return false, err
		}
		ctb := &certificatesv1.ClusterTrustBundle{}
		if err := c.Get(ctx, types.NamespacedName{Name: trustBundle}, ctb); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		if ak.Status.Delivered == nil {
			return false, nil
		}
		return true, os.WriteFile(a.caFile, []byte(ctb.Spec.TrustBundle), 0o600)
	})
	if err != nil {
		return apiAccess{}, err
	}
	a.keyID = ak.Status.AccessKeyID
	if a.secret, err = accesskeys.OpenDelivery(priv, a.keyID, ak.Status.Delivered); err != nil {
		return apiAccess{}, err
	}
	return a, nil
}

// applyAPIRoles creates the bundle's secretsmanager-* ClusterRoles.
func applyAPIRoles(ctx context.Context, c client.Client, bundle string) error {
	raw, err := os.ReadFile(bundle)
	if err != nil {
		return err
	}
	n := 0
	for _, doc := range strings.Split(string(raw), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			return err
		}
		if u.GetKind() == "ClusterRole" && strings.HasPrefix(u.GetName(), "secretsmanager-") {
			if err := c.Create(ctx, u); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%s has no secretsmanager-* ClusterRoles; run 'make bundle'", bundle)
	}
	return nil
}

// checkAPI reads a sample's value through the API with the AWS SDK, as the aws CLI would.
func checkAPI(ctx context.Context, a apiAccess, secretID string) (string, error) {
	pem, err := os.ReadFile(a.caFile)
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return "", errors.New("the API's CA file holds no certificate")
	}
	sm := secretsmanager.New(secretsmanager.Options{Region: "local", BaseEndpoint: aws.String(a.endpoint),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}},
		Credentials: credentials.NewStaticCredentialsProvider(a.keyID, a.secret, "")})
	var version string
	err = poll(ctx, "the AWS API to answer GetSecretValue", func() (bool, error) {
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
		if err != nil {
			return false, nil
		}
		version = aws.ToString(out.VersionId)
		return true, nil
	})
	return version, err
}

func poll(ctx context.Context, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
