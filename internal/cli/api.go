package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	var sa, operatorNS string
	var port int
	cmd := &cobra.Command{
		Use:   "endpoint [--service-account SA]",
		Short: "Print what a pod needs to reach the AWS API with an unmodified AWS SDK",
		Long: `Print the environment, volumes and mounts a pod needs to call the AWS-compatible API with an
unmodified AWS SDK, the way EKS pods use IAM roles for service accounts: a projected
ServiceAccount token with the API's audience (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN), the
endpoint (AWS_ENDPOINT_URL), and the API's CA from its ClusterTrustBundle (AWS_CA_BUNDLE).`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		s, err := a.connect()
		if err != nil {
			return err
		}
		if sa == "" {
			sa = "default"
		}
		url := fmt.Sprintf("https://kube-secrets-manager-api.%s.svc:%d", operatorNS, port)
		fmt.Fprintf(a.io.Out, strings.TrimLeft(endpointTemplate, "\n"), s.ns, sa, url, url, s.ns, sa)
		return nil
	}
	cmd.Flags().StringVar(&sa, "service-account", "", "The pod's ServiceAccount (default: default).")
	cmd.Flags().StringVar(&operatorNS, "operator-namespace", "kube-secrets-manager", "The namespace the operator runs in.")
	cmd.Flags().IntVar(&port, "port", 8443, "The API's Service port.")
	return cmd
}

const endpointTemplate = `
# In namespace %s, ServiceAccount %s: add to the pod spec.
env:
  - name: AWS_ENDPOINT_URL
    value: %s
  - name: AWS_ENDPOINT_URL_STS
    value: %s
  - name: AWS_REGION
    value: us-east-1
  - name: AWS_ROLE_ARN
    value: arn:aws:iam::%s:role/%s
  - name: AWS_WEB_IDENTITY_TOKEN_FILE
    value: /var/run/secrets/kube-secrets-manager/token
  - name: AWS_CA_BUNDLE
    value: /var/run/secrets/kube-secrets-manager/ca.crt
volumeMounts:
  - name: kube-secrets-manager
    mountPath: /var/run/secrets/kube-secrets-manager
    readOnly: true
volumes:
  - name: kube-secrets-manager
    projected:
      sources:
        - serviceAccountToken:
            audience: kube-secrets-manager
            expirationSeconds: 3600
            path: token
        - clusterTrustBundle:
            name: kube-secrets-manager-api-ca
            path: ca.crt
`
