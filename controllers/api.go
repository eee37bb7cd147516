package controllers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awsapi"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
)

// The API's own writes: creating a secret (CreateSecret) and its spec fields (UpdateSecret,
// TagResource, RotateSecret) for callers whose right was checked with a SubjectAccessReview.
// +kubebuilder:rbac:groups=kube-secrets-manager.io,resources=managedsecrets,verbs=create

// setupAPI adds the AWS-compatible API to the manager: it runs on every replica (reads from the
// replica's cache; writes are handed to the leader's reconcile).
func setupAPI(ctx context.Context, mgr manager.Manager, direct client.Client, r *ManagedSecretReconciler, o Options) (*awsapi.Certs, error) {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.AccessKey{}, awsapi.AccessKeyIndex, func(obj client.Object) []string {
		if id := obj.(*v1alpha1.AccessKey).Status.AccessKeyID; id != "" {
			return []string{id}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	arn := r.ARN
	if arn.Region == "" {
		arn.Region = r.ClusterName
	}
	svc := o.API.ServiceName
	certs := &awsapi.Certs{Client: direct, Keys: r.Keys, Namespace: o.Namespace, Secret: o.API.CertSecret, TrustBundle: o.API.TrustBundle,
		// localhost serves a port-forward and a development run; only holders of the CA trust it.
		DNSNames: []string{svc + "." + o.Namespace + ".svc", svc + "." + o.Namespace + ".svc.cluster.local", svc + "." + o.Namespace, svc, "localhost"}}
	srv := awsapi.NewServer(awsapi.Config{
		Cache: mgr.GetClient(), Direct: direct,
		Store: &store.Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Keys: r.Keys, Limit: o.ValueLimit, ARN: r.arn, Indexed: r.indexed},
		Keys:  r.Keys, Certs: certs, Authz: &awsapi.Authorizer{Client: direct},
		ARN: arn, TokenAudience: o.API.TokenAudience, Now: o.Clock, WallClock: o.API.WallClock,
	}, 30*time.Second)
	if err := mgr.AddReadyzCheck("api", func(*http.Request) error {
		_, err := certs.GetCertificate(nil)
		return err
	}); err != nil {
		return nil, err
	}
	return certs, mgr.Add(&apiRunnable{addr: o.API.Addr, handler: srv, certs: certs})
}

// apiRunnable serves the API on every replica, leader or not.
type apiRunnable struct {
	addr    string
	handler http.Handler
	certs   *awsapi.Certs
}

// NeedLeaderElection is false: every replica serves the API.
func (a *apiRunnable) NeedLeaderElection() bool { return false }

// Start loads the serving certificate (retrying until it can), serves until ctx ends and
// refreshes the certificate hourly (renewal and CA rotation, apitls.Plan).
func (a *apiRunnable) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("api")
	ctx = log.IntoContext(ctx, logger)
	for backoff := time.Second; ; backoff = min(2*backoff, time.Minute) {
		err := a.certs.Refresh(ctx)
		if err == nil {
			break
		}
		logger.Info("loading the API's certificate failed; retrying", "error", err.Error(), "in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
	go a.certs.Run(ctx, time.Hour)
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("the API cannot listen on %s: %w", a.addr, err)
	}
	srv := &http.Server{
		Handler:           a.handler,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: a.certs.GetCertificate},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// Requests in flight at shutdown finish under Shutdown's deadline.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	go func() { //nolint:gosec // G118: shutdown runs after ctx ended, under its own deadline
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logger.Info("serving the AWS Secrets Manager API", "address", ln.Addr().String())
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
