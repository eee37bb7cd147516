// Command dev runs kube-secrets-manager on a local control plane, without root: etcd and
// kube-apiserver (built from source by hack/build-control-plane.sh) started through envtest, the
// CRDs installed, the operator binary running against it, and config/samples applied. It prints a
// kubeconfig and commands to try, runs until Ctrl-C, then stops everything and removes its files.
//
// With -smoke it exits 0 as soon as every sample ManagedSecret is Ready and the AWS API answers
// (used by CI); with -kms the keys are kept in the in-repo KMS v2 plugin.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/controllers"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/kmsplugin"
)

func main() {
	manager := flag.String("manager", "bin/kube-secrets-manager", "the operator binary to run")
	samples := flag.String("samples", "config/samples", "folder of manifests to apply")
	crds := flag.String("crds", "config/crd/bases", "folder of CRDs to install")
	smoke := flag.Bool("smoke", false, "exit once every sample ManagedSecret is Ready and the AWS API answers")
	bundle := flag.String("bundle", "dist/install.yaml", "install bundle whose secretsmanager-* ClusterRoles the API's callers are bound to")
	kms := flag.Bool("kms", false, "keep the key-encryption keys in the in-repo KMS v2 plugin (--key-provider=kmsv2) instead of the keyring Secret")
	flag.Parse()
	if err := run(*manager, *samples, *crds, *bundle, *smoke, *kms); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(managerBin, samplesDir, crdDir, bundle string, smoke, kms bool) error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set; run 'make dev', which builds kube-apiserver and etcd first")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tmp, err := os.MkdirTemp("", "kube-secrets-manager-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	env := &envtest.Environment{CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true}
	say("starting etcd and kube-apiserver")
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop() // it may have started etcd and kube-apiserver before failing
		return fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() {
		say("stopping the control plane")
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "dev: stopping the control plane:", err)
		}
	}()

	user, err := env.ControlPlane.AddUser(envtest.User{Name: "dev-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}

	c, err := client.New(cfg, client.Options{Scheme: controllers.Scheme()})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-secrets-manager"}}); err != nil {
		return err
	}

	probe, err := freePort()
	if err != nil {
		return err
	}
	apiAddr, err := freePort()
	if err != nil {
		return err
	}
	_, apiPort, _ := strings.Cut(apiAddr, ":")
	args := []string{"--kubeconfig", kubeconfig, "--namespace", "kube-secrets-manager",
		"--metrics-bind-address", "0", "--health-probe-bind-address", probe, "--api-bind-address", apiAddr, "--cluster-name", "local"}
	kmsNote := ""
	if kms {
		socket, keysFile := filepath.Join(tmp, "kms.sock"), filepath.Join(tmp, "kms-keys.json")
		stopPlugin, err := kmsplugin.Start(ctx, socket, keysFile)
		if err != nil {
			return fmt.Errorf("starting the KMS v2 plugin: %w", err)
		}
		defer stopPlugin()
		say("KMS v2 plugin serving on %s (keys in %s)", socket, keysFile)
		args = append(args, "--key-provider", "kmsv2", "--kms-socket", "unix://"+socket)
		kmsNote = fmt.Sprintf("\nThe keys are in the KMS v2 plugin (%s). Rotate them with:\n  go run ./hack/kms-plugin --keys-file %s --add-key\n", socket, keysFile)
	}
	say("starting the operator (%s)", managerBin)
	cmd := exec.Command(managerBin, args...)
	cmd.Stdout, cmd.Stderr = prefixed("operator | "), prefixed("operator | ")
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				if err != nil {
					say("the operator exited with %v", err)
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				say("the operator did not stop in 10 s and was killed (%v)", <-exited)
			}
		}
		say("operator stopped")
	}()

	names, err := applySamples(ctx, c, samplesDir)
	if err != nil {
		return err
	}
	say("applied %d objects from %s", len(names), samplesDir)
	api, err := setupAPIAccess(ctx, c, bundle, tmp, "https://localhost:"+apiPort)
	if err != nil {
		return fmt.Errorf("setting up the AWS API's access key: %w", err)
	}

	fmt.Printf(`
kube-secrets-manager is running on a local control plane.

  export KUBECONFIG=%s

Try:
  kubectl get secretsmanager                     # ManagedSecrets, SecretVersions, RotationPolicies
  kubectl get msec                               # Ready, current version id, age
  kubectl get secversions                        # versions with their staging labels
  kubectl describe msec orders-db                # conditions and Events
  kubectl get secret orders-db -o jsonpath='{.data.password}' | base64 -d; echo

The AWS Secrets Manager API, as default/dev-cli (secretsmanager-admin):
%s
  aws secretsmanager list-secrets
  aws secretsmanager get-secret-value --secret-id orders-db
%s
Press Ctrl-C to stop; everything started here is stopped and %s is removed.

`, kubeconfig, api.env(), kmsNote, tmp)

	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitSamplesReady(readyCtx, c, exited); err != nil {
		return err
	}
	say("every sample ManagedSecret is Ready")
	version, err := checkAPI(readyCtx, api, "orders-db")
	if err != nil {
		return err
	}
	say("the AWS API answered GetSecretValue for default/orders-db (version %s)", version)
	if kms {
		versions := &v1alpha1.SecretVersionList{}
		if err := c.List(readyCtx, versions); err != nil {
			return err
		}
		for _, v := range versions.Items {
			if !strings.HasPrefix(v.Spec.Payload.KeyID, "kmsv2:") {
				return fmt.Errorf("version %s/%s is wrapped with %s, not the KMS", v.Namespace, v.Name, v.Spec.Payload.KeyID)
			}
		}
		say("every version's data key is wrapped by the KMS v2 plugin")
	}
	if smoke {
		return nil
	}
	select {
	case <-ctx.Done():
		say("interrupted, cleaning up")
		return nil
	case err := <-exited:
		return fmt.Errorf("the operator exited: %v", err)
	}
}

// applySamples creates every object in the folder's YAML files, in the default namespace.
func applySamples(ctx context.Context, c client.Client, dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if obj.GetNamespace() == "" {
				obj.SetNamespace("default")
			}
			if err := c.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
				return nil, fmt.Errorf("%s: %s %s: %w", f, obj.GetKind(), obj.GetName(), err)
			}
			names = append(names, obj.GetKind()+"/"+obj.GetName())
		}
	}
	return names, nil
}

func waitSamplesReady(ctx context.Context, c client.Client, exited <-chan error) error {
	for {
		list := &v1alpha1.ManagedSecretList{}
		if err := c.List(ctx, list); err == nil {
			var waiting []string
			for _, m := range list.Items {
				cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
				if cond == nil || cond.Status != metav1.ConditionTrue {
					waiting = append(waiting, m.Name)
				}
			}
			if len(waiting) == 0 && len(list.Items) > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sample ManagedSecrets did not become Ready: %w", ctx.Err())
		case err := <-exited:
			return fmt.Errorf("the operator exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func say(format string, args ...any) {
	fmt.Printf("dev | "+format+"\n", args...)
}

func prefixed(prefix string) io.Writer {
	r, w := io.Pipe()
	go func() {
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64*1024), 1024*1024)
		for s.Scan() {
			fmt.Println(prefix + strings.TrimRight(s.Text(), "\n"))
		}
	}()
	return w
}
