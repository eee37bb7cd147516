// Command kube-secrets-manager runs the operator's manager, the rotation pods' `rotate` command,
// and, installed as kubectl-secrets_manager (or run as `kube-secrets-manager cli`), the
// `kubectl secrets-manager` plugin; installed as kubectl_complete-secrets_manager, it answers
// kubectl's completion requests for the plugin.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/kube-secrets-manager/kube-secrets-manager/controllers"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/cli"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/lazylog"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/memlimit"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotator"
)

func main() {
	args := os.Args[1:]
	if pluginArgs, ok := asPlugin(os.Args[0], args); ok {
		os.Exit(runCLI(pluginArgs))
	}
	if len(args) > 0 && args[0] == "cli" {
		os.Exit(runCLI(args[1:]))
	}
	if len(args) > 0 && args[0] == "rotate" {
		os.Exit(runRotate(args[1:]))
	}
	if len(args) > 0 && args[0] == "manager" {
		args = args[1:]
	}
	if err := runManager(args); err != nil {
		fmt.Fprintln(os.Stderr, "kube-secrets-manager:", err)
		os.Exit(1)
	}
}

// asPlugin says whether the executable's name makes it the kubectl plugin, and with which
// arguments: kubectl-secrets_manager is the plugin; kubectl_complete-secrets_manager, which
// kubectl runs to complete the plugin's arguments, is the plugin's completion request.
func asPlugin(argv0 string, args []string) ([]string, bool) {
	switch strings.TrimSuffix(filepath.Base(argv0), ".exe") {
	case cli.PluginName:
		return args, true
	case cli.CompletionHelperName:
		return append([]string{cli.CompleteCommand}, args...), true
	}
	return nil, false
}

func runManager(args []string) error {
	o := controllers.DefaultOptions()
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "address of the metrics endpoint (0 disables it)")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", false, "serve the metrics over HTTPS, only to callers allowed to get the /metrics URL (TokenReview and SubjectAccessReview)")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "address of the health probes")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", "", "address serving Go's /debug/pprof for profiling (off when empty; never expose it)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "use leader election so only one replica reconciles")
	fs.StringVar(&o.Namespace, "namespace", envOr("POD_NAMESPACE", o.Namespace), "the operator's own namespace (holds the keyring and the leader lease)")
	fs.StringVar(&o.KeyringSecret, "keyring-secret", o.KeyringSecret, "name of the Secret holding the key-encryption keys")
	fs.StringVar(&o.KeyProvider, "key-provider", o.KeyProvider, "where the key-encryption keys live: local (the keyring Secret) or kmsv2 (a Kubernetes KMS v2 plugin)")
	fs.StringVar(&o.KMS.Socket, "kms-socket", "", "the KMS v2 plugin's endpoint, such as unix:///var/run/kmsplugin/socket.sock (with --key-provider=kmsv2)")
	fs.DurationVar(&o.KMS.Timeout, "kms-timeout", 3*time.Second, "how long one call to the KMS v2 plugin may take")
	fs.DurationVar(&o.KMS.CacheTTL, "kms-cache-ttl", time.Hour, "how long an unwrapped data key is kept in memory")
	fs.IntVar(&o.KMS.CacheSize, "kms-cache-size", 10000, "how many unwrapped data keys are kept in memory (negative: none)")
	fs.DurationVar(&o.KeyCheckInterval, "key-check-interval", time.Minute, "how often the leader checks the keys and re-wraps what is not on the primary key")
	fs.IntVar(&o.ValueLimit, "value-size-limit", o.ValueLimit, "largest secret value in bytes, 1 to 65536 (AWS's limit)")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "cluster name used in the ARN-like ids in status")
	fs.IntVar(&o.Workers, "workers", o.Workers, "ManagedSecrets reconciled in parallel")
	watch := fs.String("watch-namespaces", "", "comma-separated namespaces to reconcile (default: all)")
	fs.StringVar(&o.RotationImage, "rotation-image", o.RotationImage, "image of the built-in rotation pods (this operator's image)")
	images := fs.String("rotation-allowed-images", "", "comma-separated images (or path.Match patterns such as registry.example.com/rotators/*) RotationPolicies may run besides --rotation-image")
	accounts := fs.String("rotation-allowed-service-accounts", "", "comma-separated service accounts rotation pods may run as besides each namespace's default: NAME, NAMESPACE/NAME or *")
	fs.BoolVar(&o.RotationAllow.HostNetwork, "rotation-allow-host-network", false, "let RotationPolicies run rotation pods in the node's network")
	fs.BoolVar(&o.RotationAllow.Scheduling, "rotation-allow-scheduling", false, "let RotationPolicies set nodeSelector and tolerations on rotation pods")
	prefixes := fs.String("allow-target-metadata-prefixes", "", "comma-separated label/annotation prefixes (such as replicator.v1.mittwald.de/) that target labels and annotations may use although other controllers act on them")
	fs.StringVar(&o.API.Addr, "api-bind-address", "", "HTTPS address of the AWS Secrets Manager-compatible API, such as :8443 (empty: off)")
	fs.StringVar(&o.API.ServiceName, "api-service-name", "kube-secrets-manager-api", "the API's Service, named in its serving certificate")
	fs.StringVar(&o.API.TokenAudience, "api-token-audience", "kube-secrets-manager", "audience of the ServiceAccount tokens workloads exchange for credentials")
	fs.StringVar(&o.API.TrustBundle, "api-trust-bundle", "kube-secrets-manager-api-ca", "ClusterTrustBundle the API's CA is published in (empty: not published)")
	fs.StringVar(&o.API.CertSecret, "api-cert-secret", "kube-secrets-manager-api", "Secret (in --namespace) holding the API's CA, certificate and session key")
	fs.StringVar(&o.ARNPartition, "arn-partition", "", "partition of the ARNs in status and the API (default kubernetes)")
	fs.StringVar(&o.ARNRegion, "arn-region", "", "region of the ARNs (default: --cluster-name)")
	fs.StringVar(&o.ARNAccount, "arn-account", "", "account of the ARNs (default: the secret's namespace)")
	fs.DurationVar(&o.RolloutCoalesceWindow, "rollout-coalesce-window", o.RolloutCoalesceWindow, "how long a change of AWSCURRENT waits before the workloads of spec.rollout are restarted, so changes within it restart each workload once (0: at once)")
	kubeconfig := fs.String("kubeconfig", "", "path to a kubeconfig (default: $KUBECONFIG, then in-cluster)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctrl.SetLogger(lazylog.Wrap(zap.New(zap.UseFlagOptions(&zapOpts))))
	if limit := memlimit.Set(); limit > 0 {
		ctrl.Log.Info("Go memory limit set from the container's memory limit", "bytes", limit, "share", memlimit.Share)
	}
	if gc := memlimit.SetGCPercent(); gc > 0 {
		ctrl.Log.Info("Go garbage collection target set (GOGC overrides it)", "percent", gc)
	}
	o.WatchNamespaces = splitList(*watch)
	o.RotationAllow.Images = splitList(*images)
	o.RotationAllow.ServiceAccounts = splitList(*accounts)
	o.AllowedTargetPrefixes = splitList(*prefixes)
	if *kubeconfig != "" {
		if err := os.Setenv("KUBECONFIG", *kubeconfig); err != nil {
			return err
		}
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := controllers.NewManager(ctx, cfg, o)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// runCLI runs the plugin; Ctrl-C cancels it, and its deferred clean-up (deleting a request Secret
// that may hold a value) still runs.
func runCLI(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, args, cli.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
}

// runRotate is the entry point of rotation pods: setSecret and testSecret against the mounted
// material. It needs no Kubernetes API access.
func runRotate(args []string) int {
	fs := flag.NewFlagSet("rotate", flag.ContinueOnError)
	dir := fs.String("material", rotator.DefaultDir, "folder where the rotation material is mounted")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return rotator.ExitBadMaterial
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	return rotator.Run(ctx, *dir, os.Getenv("JOB_UID"), os.Stdout)
}
