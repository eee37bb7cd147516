package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/accesskeys"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// Commands for the AWS-compatible API (README, "AWS API").

func (a *app) createAccessKeyCommand() *cobra.Command {
	var sa, description string
	cmd := &cobra.Command{
		Use:   "create-access-key NAME --service-account SA",
		Short: "Issue a static access key for the AWS API, acting as a ServiceAccount (like aws iam create-access-key)",
		Long: `Issue a static access key for the AWS-compatible API, for tools outside the cluster (the aws
CLI, CI jobs). The key acts as the ServiceAccount in this namespace: the API authorises every call
it signs as that ServiceAccount. Creating one takes the right to create the ServiceAccount's
tokens (serviceaccounts/token). The secret access key is encrypted to a key pair this command
makes and never exists in the cluster in plaintext; it is printed once. Delete the AccessKey (or
set spec.disabled) to revoke it.

Prints AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY lines (or the key as aws iam create-access-key
does with -o json|yaml).` + seeExitCodes,
		Args: oneName,
	}
	output := outputFlag(cmd, "environment lines")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if sa == "" {
			return usagef("--service-account is required: the ServiceAccount the key acts as")
		}
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, err := a.connect()
		if err != nil {
			return err
		}
		priv, pub, err := accesskeys.NewRecipient()
		if err != nil {
			return err
		}
		ak := &v1alpha1.AccessKey{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: name},
			Spec: v1alpha1.AccessKeySpec{ServiceAccountName: sa, RecipientPublicKey: pub, Description: description}}
		if err := s.c.Create(ctx, ak, client.FieldOwner(PluginName)); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return awserr.New(awserr.ResourceExists, "AccessKey %s already exists; its secret was handed out when it was made", name)
			}
			return s.kubeErr(err)
		}
		for ak.Status.Delivered == nil {
			select {
			case <-ctx.Done():
				return s.noAnswer()
			case <-time.After(100 * time.Millisecond):
			}
			if err := s.c.Get(ctx, client.ObjectKeyFromObject(ak), ak); err != nil {
				return s.kubeErr(err)
			}
		}
		secret, err := accesskeys.OpenDelivery(priv, ak.Status.AccessKeyID, ak.Status.Delivered)
		if err != nil {
			return err
		}
		if *output == "" {
			fmt.Fprintf(a.io.Out, "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", ak.Status.AccessKeyID, secret)
			return nil
		}
		return a.printData(*output, map[string]any{"AccessKey": map[string]any{"UserName": "system:serviceaccount:" + s.ns + ":" + sa,
			"AccessKeyId": ak.Status.AccessKeyID, "SecretAccessKey": secret, "Status": "Active", "CreateDate": ak.CreationTimestamp.UTC().Format(time.RFC3339)}})
	})
	cmd.Flags().StringVar(&sa, "service-account", "", "The ServiceAccount (in this namespace) the key acts as.")
	cmd.Flags().StringVar(&description, "description", "", "What the key is for.")
	return cmd
}

func (a *app) endpointCommand() *cobra.Command {
	var sa, operatorNS, audience, trustBundle string
	var port int
	cmd := &cobra.Command{
		Use:   "endpoint [--service-account SA] [--operator-namespace NS] [--audience AUD] [--trust-bundle NAME]",
		Short: "Print what a pod needs to reach the AWS API with an unmodified AWS SDK",
		Long: `Print the environment, volumes and mounts a pod needs to call the AWS-compatible API with an
unmodified AWS SDK, the way EKS pods use IAM roles for service accounts: a projected
ServiceAccount token with the API's audience (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN), the
endpoint, and the API's CA from its ClusterTrustBundle (AWS_CA_BUNDLE).

The endpoint is given three times: AWS_ENDPOINT_URL for every service, and
AWS_ENDPOINT_URL_SECRETS_MANAGER and AWS_ENDPOINT_URL_STS for each service the pod uses. Some
SDKs (aws-sdk-go-v2's config v1.33 among them) do not apply AWS_ENDPOINT_URL to the STS client
their web-identity credential provider makes, so without the per-service variables the pod would
exchange its token with AWS's STS instead of the API.

--audience and --trust-bundle must be the operator's --api-token-audience and --api-trust-bundle
(the chart's api.tokenAudience and api.trustBundleName); the defaults are the operator's. An
empty --trust-bundle (the operator does not publish its CA) leaves the CA to you. Only the
namespace (-n, else the kubeconfig context's) is taken from the kubeconfig; nothing is read from
the cluster.`,
		Example: `  kubectl secrets-manager endpoint -n payments --service-account api
  kubectl secrets-manager endpoint --operator-namespace secrets --audience my-aud --trust-bundle my-ca`,
		Args: noArgs,
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, _ []string) error {
		if sa == "" {
			sa = "default"
		}
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			return usagef("--service-account %q is not a valid ServiceAccount name", sa)
		}
		if err := checkNamespaceFlag("--operator-namespace", operatorNS); err != nil {
			return err
		}
		if strings.TrimSpace(audience) == "" || strings.ContainsAny(audience, " \t\n") {
			return usagef("--audience must be the operator's token audience (--api-token-audience), without spaces")
		}
		if strings.ContainsAny(trustBundle, " \t\n") {
			return usagef("--trust-bundle must be a ClusterTrustBundle name")
		}
		if port < 1 || port > 65535 {
			return usagef("--port must be 1 to 65535")
		}
		ns, _, err := a.flags.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return fmt.Errorf("reading the kubeconfig: %w", err)
		}
		return writeEndpoint(a.io.Out, endpointSettings{Namespace: ns, ServiceAccount: sa,
			URL: fmt.Sprintf("https://kube-secrets-manager-api.%s.svc:%d", operatorNS, port), Audience: audience, TrustBundle: trustBundle})
	})
	f := cmd.Flags()
	f.StringVar(&sa, "service-account", "", "The pod's ServiceAccount (default: default).")
	f.StringVar(&operatorNS, "operator-namespace", defaultOperatorNamespace, "The namespace the operator runs in.")
	f.StringVar(&audience, "audience", "kube-secrets-manager", "The pod's token's audience: the operator's --api-token-audience.")
	f.StringVar(&trustBundle, "trust-bundle", "kube-secrets-manager-api-ca", "The ClusterTrustBundle of the API's CA: the operator's --api-trust-bundle (empty: none).")
	f.IntVar(&port, "port", 8443, "The API's Service port.")
	return cmd
}

// endpointSettings fill endpointTemplate.
type endpointSettings struct {
	Namespace, ServiceAccount, URL, Audience, TrustBundle string
}

// writeEndpoint prints a pod's settings for the API.
func writeEndpoint(out io.Writer, e endpointSettings) error {
	return endpointTemplate.Execute(out, e)
}

// yamlScalar is s as a YAML scalar, quoted only when YAML needs it.
func yamlScalar(s string) string {
	b, err := yaml.Marshal(s)
	if err != nil {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// endpointTemplate is the pod spec fragment endpoint prints. Every endpoint variable is set: some
// SDKs ignore AWS_ENDPOINT_URL for the STS client of their web-identity provider.
var endpointTemplate = template.Must(template.New("endpoint").Funcs(template.FuncMap{"scalar": yamlScalar}).Parse(strings.TrimLeft(`
# In namespace {{.Namespace}}, ServiceAccount {{.ServiceAccount}}: add to the pod spec.
env:
  - name: AWS_ENDPOINT_URL
    value: {{.URL}}
  - name: AWS_ENDPOINT_URL_SECRETS_MANAGER
    value: {{.URL}}
  - name: AWS_ENDPOINT_URL_STS
    value: {{.URL}}
  - name: AWS_REGION
    value: us-east-1
  - name: AWS_ROLE_ARN
    value: arn:aws:iam::{{.Namespace}}:role/{{.ServiceAccount}}
  - name: AWS_WEB_IDENTITY_TOKEN_FILE
    value: /var/run/secrets/kube-secrets-manager/token
{{- if .TrustBundle}}
  - name: AWS_CA_BUNDLE
    value: /var/run/secrets/kube-secrets-manager/ca.crt
{{- else}}
  # The operator publishes no ClusterTrustBundle (--trust-bundle ""): give the pod the API's CA
  # (the ca.crt of its certificate Secret) and point AWS_CA_BUNDLE at it.
{{- end}}
volumeMounts:
  - name: kube-secrets-manager
    mountPath: /var/run/secrets/kube-secrets-manager
    readOnly: true
volumes:
  - name: kube-secrets-manager
    projected:
      sources:
        - serviceAccountToken:
            audience: {{scalar .Audience}}
            expirationSeconds: 3600
            path: token
{{- if .TrustBundle}}
        - clusterTrustBundle:
            name: {{scalar .TrustBundle}}
            path: ca.crt
{{- end}}
`, "\n")))
