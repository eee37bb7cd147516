package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awsapi"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/kmsv2"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/metrics"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/metricsauth"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rollout"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// Options configure the manager; main binds them to flags.
type Options struct {
	MetricsAddr string
	// MetricsSecure serves the metrics over HTTPS to callers the API server authenticates and
	// authorizes (get on the /metrics non-resource URL).
	MetricsSecure bool
	ProbeAddr     string
	// PprofAddr serves Go's /debug/pprof (empty or "0": off), for profiling memory and CPU.
	PprofAddr     string
	LeaderElect   bool
	Namespace     string
	KeyringSecret string
	ValueLimit    int
	ClusterName   string
	Workers       int
	// WatchNamespaces restricts the operator to these namespaces (default: all).
	WatchNamespaces []string
	RotationImage   string
	// RotationAllow bounds what RotationPolicies may ask of rotation pods.
	RotationAllow rotation.Allow
	// AllowedTargetPrefixes lets target labels and annotations use these control prefixes
	// (objects.ControlPrefixes), such as a replication add-on's.
	AllowedTargetPrefixes []string
	// Clock tells the time (nil: the system clock); tests move it.
	Clock func() time.Time
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election (zero: the defaults).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// SkipNameValidation lets one process run several managers (tests of replicas).
	SkipNameValidation bool
	// KeyProvider is "local" (the keyring Secret, default) or "kmsv2" (a KMS v2 plugin at KMS).
	KeyProvider string
	KMS         KMSOptions
	// KeyCheckInterval is how often the leader checks the keys and re-wraps (default 1 min).
	KeyCheckInterval time.Duration
	// API configures the AWS-compatible API (off when Addr is empty).
	API APIOptions
	// ARNPartition, ARNRegion and ARNAccount shape the ARN-like ids (defaults: "kubernetes",
	// the cluster name, the secret's namespace).
	ARNPartition, ARNRegion, ARNAccount string
	// RolloutCoalesceWindow is how long a change of AWSCURRENT waits before the workloads of
	// spec.rollout are restarted, so changes close together restart each workload once (0: none).
	RolloutCoalesceWindow time.Duration
}

// APIOptions configure the AWS-compatible API.
type APIOptions struct {
	// Addr is the HTTPS listen address ("" turns the API off).
	Addr string
	// ServiceName is the API's Service, whose DNS names the serving certificate carries.
	ServiceName string
	// TokenAudience is the audience web-identity tokens must carry.
	TokenAudience string
	// TrustBundle names the ClusterTrustBundle the CA is published in ("" skips publishing).
	TrustBundle string
	// CertSecret holds the CA, serving certificate and session key in the operator's namespace.
	CertSecret string
	// WallClock checks signatures and sessions (nil: the system clock); tests move it.
	WallClock func() time.Time
}

// KMSOptions configure the kmsv2 key provider.
type KMSOptions struct {
	// Socket is the plugin's endpoint (unix:///path or a path).
	Socket   string
	Timeout  time.Duration
	CacheTTL time.Duration
	// CacheSize bounds the unwrapped data keys kept (negative: none).
	CacheSize int
}

// KeyStatusConfigMap reports where the keys stand and takes rotation and retirement requests.
const KeyStatusConfigMap = "kube-secrets-manager-keys"

// DefaultOptions are the flag defaults.
func DefaultOptions() Options {
	return Options{
		MetricsAddr: ":8080", ProbeAddr: ":8081", Namespace: "kube-secrets-manager",
		KeyringSecret: "kube-secrets-manager-keyring", ValueLimit: value.DefaultLimit,
		ClusterName: "local", Workers: 8, RotationImage: "kube-secrets-manager:latest", KeyProvider: KeyProviderLocal,
		RolloutCoalesceWindow: rollout.DefaultWindow,
	}
}

// Scheme holds every type the operator reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// NewManager loads (or creates) the keyring and returns a manager with the controllers registered.
func NewManager(ctx context.Context, cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if o.ValueLimit < 1 || o.ValueLimit > value.MaxLimit {
		return nil, fmt.Errorf("the value size limit must be between 1 and %d bytes (AWS's limit, which the SecretVersion schema is sized for)", value.MaxLimit)
	}
	scheme := Scheme()
	// Every write the operator makes (finalizer, status, request confirmations) is attributed to
	// its field manager, whatever the binary is called.
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = FieldManager
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ringStore := KeyringStore{Client: direct, Namespace: o.Namespace, Name: o.KeyringSecret, VersionNamespaces: o.WatchNamespaces}
	keys, local, err := keyProvider(ctx, o, ringStore)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, managerOptions(scheme, o))
	if err != nil {
		return nil, err
	}
	r := &ManagedSecretReconciler{
		Client:           mgr.GetClient(),
		APIReader:        mgr.GetAPIReader(),
		Recorder:         mgr.GetEventRecorder("kube-secrets-manager"),
		Keys:             keys,
		ValueLimit:       o.ValueLimit,
		ClusterName:      o.ClusterName,
		KeyringNamespace: o.Namespace,
		KeyringSecret:    o.KeyringSecret,
		RotationImage:    o.RotationImage,
		RotationAllow:    o.RotationAllow,
		TargetPrefixes:   o.AllowedTargetPrefixes,
		Workers:          o.Workers,
		Now:              o.Clock,
		ARN:              objects.ARNParts{Partition: o.ARNPartition, Region: o.ARNRegion, Account: o.ARNAccount},
		RolloutWindow:    rolloutWindowOption(o.RolloutCoalesceWindow),
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := (&RotationPolicyReconciler{Client: mgr.GetClient(), Allow: o.RotationAllow, RotationImage: o.RotationImage}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := (&AccessKeyReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Keys: r.Keys, Now: o.Clock}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	var certs *awsapi.Certs
	if o.API.Addr != "" {
		if certs, err = setupAPI(ctx, mgr, direct, r, o); err != nil {
			return nil, err
		}
	}
	interval := o.KeyCheckInterval
	if interval <= 0 {
		interval = time.Minute
	}
	if err := mgr.Add(&KeyCustodian{Cache: mgr.GetClient(), Direct: direct, Keys: r.Keys,
		Store: r.Store(), Ring: ringOf(local, ringStore), Local: local,
		Certs: certs, Recorder: r.Recorder, Namespace: o.Namespace, Namespaces: o.WatchNamespaces, Name: KeyStatusConfigMap, Provider: o.KeyProvider, Interval: interval, Now: o.Clock}); err != nil {
		return nil, err
	}
	registerMetrics()
	if err := mgr.Add(exportSecretsWhenElected{cache: mgr.GetCache()}); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	ctrl.Log.WithName("setup").Info("manager configured", "namespace", o.Namespace, "keyProvider", o.KeyProvider)
	return mgr, nil
}

// metricsOptions serves the metrics, the per-secret series after the registry's, with
// MetricsSecure behind the API server's authentication and authorization (a TokenReview and a
// SubjectAccessReview per token, as controller-runtime's filter; a self-signed certificate).
func metricsOptions(o Options) metricsserver.Options {
	perSecret := metrics.SecretSeries{List: listSecretStates}
	return metricsserver.Options{
		BindAddress:   o.MetricsAddr,
		SecureServing: o.MetricsSecure,
		// The filter wraps the /metrics handler: the per-secret series are written there after
		// the registry's, and with MetricsSecure the caller is checked first.
		FilterProvider: func(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
			var auth metricsserver.Filter
			if o.MetricsSecure {
				var err error
				if auth, err = metricsauth.FilterProvider(cfg, httpClient); err != nil {
					return nil, err
				}
			}
			return func(log logr.Logger, next http.Handler) (http.Handler, error) {
				next = perSecret.Wrap(metricsPath, next)
				if auth == nil {
					return next, nil
				}
				return auth(log, next)
			}, nil
		},
	}
}

// metricsPath is where controller-runtime serves the metrics.
const metricsPath = "/metrics"

// managerOptions configures the cache to hold only what the operator owns: Secrets, Jobs and
// CronJobs are listed and watched only with the operator's label, never cluster-wide, and a read
// of a type without an informer fails instead of silently starting a cluster-wide one. Anyone who
// may create Secrets can set that label, so Secrets are cached as metadata only (the controller
// watches them with OnlyMetadata, and data is read with a GET when needed), and every cached
// object is trimmed to what the operator reads (objects.TrimForCache): memory does not grow with
// what tenants write.
func managerOptions(scheme *runtime.Scheme, o Options) ctrl.Options {
	owned, err := labels.NewRequirement(v1alpha1.LabelManagedSecretUID, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	// The priority queue is off: External Secrets Operator saw reconciles stall with it at scale.
	noPriorityQueue := false
	opts := ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.ProbeAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "kube-secrets-manager.io",
		LeaderElectionNamespace: o.Namespace,
		// A stopping replica hands the lease over at once instead of letting it expire.
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}:   {Label: labels.NewSelector().Add(*owned), Transform: objects.TrimForCache},
				&batchv1.Job{}:     {Label: labels.NewSelector().Add(*owned), Transform: objects.TrimForCache},
				&batchv1.CronJob{}: {Label: labels.NewSelector().Add(*owned), Transform: objects.TrimForCache},
				// Versions are cached without their payloads (read with a GET when opened), and
				// deprecated ones not at all (the store reads them when an operation names one):
				// memory does not grow with the up to 100 per secret AWS keeps.
				&v1alpha1.SecretVersion{}: {Label: store.NotDeprecated(), Transform: objects.TrimForCache},
			},
			DefaultTransform:            objects.TrimDefault,
			ReaderFailOnMissingInformer: true,
		},
		Controller: config.Controller{UsePriorityQueue: &noPriorityQueue, SkipNameValidation: &o.SkipNameValidation},
	}
	if o.LeaseDuration > 0 {
		opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = &o.LeaseDuration, &o.RenewDeadline, &o.RetryPeriod
	}
	if len(o.WatchNamespaces) > 0 {
		opts.Cache.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.WatchNamespaces {
			opts.Cache.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// Key providers.
const (
	KeyProviderLocal = "local"
	KeyProviderKMSv2 = "kmsv2"
)

// keyProvider builds the provider the options name. With kmsv2, a keyring Secret left from the
// local provider is read (never created) so its versions stay readable while they are re-wrapped
// onto the KMS key; the local provider is returned only when it is the primary one.
func keyProvider(ctx context.Context, o Options, ringStore KeyringStore) (envelope.KeyProvider, *keyring.Provider, error) {
	loadCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	switch o.KeyProvider {
	case KeyProviderLocal, "":
		ring, err := ringStore.LoadOrCreate(loadCtx)
		if err != nil {
			return nil, nil, fmt.Errorf("loading the keyring from Secret %s/%s: %w", o.Namespace, o.KeyringSecret, err)
		}
		local := keyring.NewProvider(ring, ringStore.Load)
		return local, local, nil
	case KeyProviderKMSv2:
		if o.KMS.Socket == "" {
			return nil, nil, errors.New("--kms-socket is required with --key-provider=kmsv2")
		}
		kms, err := kmsv2.New(o.KMS.Socket, kmsv2.Options{Timeout: o.KMS.Timeout, CacheTTL: o.KMS.CacheTTL, CacheSize: o.KMS.CacheSize})
		if err != nil {
			return nil, nil, err
		}
		m := envelope.Migrating{New: kms, NewOwns: func(id string) bool { _, ok := kmsv2.PluginKeyID(id); return ok }}
		ring, err := ringStore.Load(loadCtx)
		switch {
		case err == nil:
			m.Old = keyring.NewProvider(ring, ringStore.Load)
		case !apierrors.IsNotFound(err):
			return nil, nil, fmt.Errorf("reading the keyring Secret %s/%s left by the local provider: %w", o.Namespace, o.KeyringSecret, err)
		}
		return m, nil, nil
	}
	return nil, nil, fmt.Errorf("--key-provider must be %s or %s, not %q", KeyProviderLocal, KeyProviderKMSv2, o.KeyProvider)
}

// ringOf is the keyring Secret the custodian looks after: only the local provider's.
func ringOf(local *keyring.Provider, s KeyringStore) *KeyringStore {
	if local == nil {
		return nil
	}
	return &s
}
