//go:build unix

package controllers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/accesskeys"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/apitls"
)

// BenchmarkAPIGetSecretValue prints GetSecretValue's throughput and latency through the API
// (SigV4 verification, the SubjectAccessReview cache, cache reads, envelope decryption, JSON) next
// to a bare Go HTTPS handler answering a fixed body of the same shape, measured in the same run by
// the same load generator: KSM_BENCH_CONCURRENCY goroutines (default 16) sharing one aws-sdk-go-v2
// secretsmanager client with a static access key (every request SigV4-signed by the SDK) over
// keep-alive HTTP/1.1, for KSM_BENCH_SECONDS (default 5) against each, after a second of warm-up,
// in alternating one-second rounds. Both servers serve the API's own certificate; the load
// generator runs on the same CPUs as the servers (and the kube-apiserver), so its own cost, the
// same on both sides, weighs on both figures. It prints figures and asserts no timing. Run it
// with `make bench`.
//
// For a profile, add -cpuprofile: the load generator's goroutines carry the pprof label "load"
// (api or bare) and the bare server's the label "server", so the API server's own samples (and the
// runtime's) are those without a label: go tool pprof -tagignore . controllers.test cpu.out.
func BenchmarkAPIGetSecretValue(b *testing.B) {
	conc := envInt("KSM_BENCH_CONCURRENCY", 16)
	dur := time.Duration(envInt("KSM_BENCH_SECONDS", 5)) * time.Second
	ctx := context.Background()

	pool := benchTrustPool(b)
	ns := fmt.Sprintf("bench-api-%d", time.Now().UnixNano()%1e9)
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	benchServiceAccount(b, ns, "app", "secretsmanager-reader", "secretsmanager-writer")
	keyID, keySecret := benchAccessKey(b, ns, "bench", "app")
	creds := credentials.NewStaticCredentialsProvider(keyID, keySecret, "")

	// The secret, created through the API (the same token again is the same success, so a call
	// made before the API is up can be retried).
	const name, value = "bench/db", `{"username":"app","password":"Zq8t-4mWv_P2xLr9cB7nK3sH6yJd5gFe"}`
	setup := benchSMClient(apiEndpoint(), benchTransport(pool, conc), creds)
	benchPoll(b, "the secret is created through the API", time.Minute, func() error {
		_, err := setup.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value),
			ClientRequestToken: aws.String("0b5e0d4e-7a4c-4f4e-9d59-2a3e8a1c6b10")})
		return err
	})
	var got *secretsmanager.GetSecretValueOutput
	benchPoll(b, "the secret's value is served", time.Minute, func() error {
		var err error
		got, err = setup.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		if err == nil && aws.ToString(got.SecretString) != value {
			err = errors.New("GetSecretValue answered another value")
		}
		return err
	})
	// The first read of the day records it (a status patch); wait until the cache has seen it, so
	// the measured reads are all plain reads.
	benchPoll(b, "the access day is recorded", 30*time.Second, func() error {
		list := &v1alpha1.ManagedSecretList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(list.Items) != 1 || list.Items[0].Status.LastAccessedDate == nil {
			return errors.New("not yet")
		}
		return nil
	})

	// The bare handler: the API's answer as fixed bytes, served with the API's certificate and
	// server settings.
	body, err := json.Marshal(map[string]any{"ARN": aws.ToString(got.ARN), "Name": aws.ToString(got.Name), "VersionId": aws.ToString(got.VersionId),
		"SecretString": value, "VersionStages": got.VersionStages, "CreatedDate": float64(aws.ToTime(got.CreatedDate).UnixMilli()) / 1000})
	if err != nil {
		b.Fatal(err)
	}
	bodyLen := strconv.Itoa(len(body))
	bare := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Content-Type", "application/x-amz-json-1.1")
		h.Set("Content-Length", bodyLen)
		_, _ = w.Write(body)
	}))
	bare.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{benchServingCert(b)}}
	bare.Config.ReadHeaderTimeout, bare.Config.ReadTimeout, bare.Config.WriteTimeout = 10*time.Second, 30*time.Second, 60*time.Second
	bare.Config.IdleTimeout, bare.Config.MaxHeaderBytes = 2*time.Minute, 64<<10
	pprof.Do(ctx, pprof.Labels("server", "bare"), func(context.Context) { bare.StartTLS() })
	defer bare.Close()
	_, barePort, _ := net.SplitHostPort(bare.Listener.Addr().String())

	for iter := 0; iter < b.N; iter++ {
		apiSM := benchSMClient(apiEndpoint(), benchTransport(pool, conc), creds)
		bareSM := benchSMClient("https://localhost:"+barePort, benchTransport(pool, conc), creds)
		_ = benchLoad(b, "api", apiSM, name, value, conc, time.Second)
		_ = benchLoad(b, "bare", bareSM, name, value, conc, time.Second)
		// One-second rounds, alternating (ABBA), so what else the machine runs meanwhile weighs on
		// both sides alike; each round's ratio is taken against its neighbour.
		var api, base loadResult
		var ratios []float64
		for round := 0; round < int(dur/time.Second); round++ {
			var a, r loadResult
			if round%2 == 0 {
				a = benchLoad(b, "api", apiSM, name, value, conc, time.Second)
				r = benchLoad(b, "bare", bareSM, name, value, conc, time.Second)
			} else {
				r = benchLoad(b, "bare", bareSM, name, value, conc, time.Second)
				a = benchLoad(b, "api", apiSM, name, value, conc, time.Second)
			}
			ratios = append(ratios, a.perSecond()/r.perSecond())
			api.add(a)
			base.add(r)
		}
		slices.Sort(ratios)
		ratio := api.perSecond() / base.perSecond()
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(api.perSecond(), "api-req/s")
		b.ReportMetric(base.perSecond(), "bare-req/s")
		b.ReportMetric(ratio, "api/bare")
		fmt.Printf("GetSecretValue, %d goroutines on one SDK client (SigV4, static key, HTTPS keep-alive HTTP/1.1), %d alternating 1 s rounds each, GOMAXPROCS %d:\n",
			conc, len(ratios), runtime.GOMAXPROCS(0))
		fmt.Printf("  API (SigV4, SAR cache, cache reads, envelope, JSON): %s\n", api)
		fmt.Printf("  bare Go HTTPS handler (fixed %d-byte body):           %s\n", len(body), base)
		fmt.Printf("  (CPU/req is the whole process's: the load generator's share is the same on both sides)\n")
		fmt.Printf("  ratio API/bare: %.2fx (target >= 0.5x); per round %.2f-%.2f, median %.2f\n",
			ratio, ratios[0], ratios[len(ratios)-1], ratios[len(ratios)/2])
	}
}

// loadResult is what the load generator measured: every call's latency, the time taken and the
// CPU time the whole process (load generator, server, runtime) used meanwhile.
type loadResult struct {
	lats    []time.Duration
	elapsed time.Duration
	cpu     time.Duration
}

func (r *loadResult) add(o loadResult) {
	r.lats = append(r.lats, o.lats...)
	r.elapsed += o.elapsed
	r.cpu += o.cpu
}

func (r loadResult) perSecond() float64 { return float64(len(r.lats)) / r.elapsed.Seconds() }

func (r loadResult) String() string {
	all := slices.Sorted(slices.Values(r.lats))
	p50, p99 := all[len(all)*50/100], all[len(all)*99/100]
	return fmt.Sprintf("%7.0f req/s  p50 %-9s p99 %-9s CPU/req %-7s (%d requests in %s)", r.perSecond(), p50.Round(time.Microsecond),
		p99.Round(time.Microsecond), (r.cpu / time.Duration(len(all))).Round(time.Microsecond), len(all), r.elapsed.Round(time.Millisecond))
}

// benchLoad calls GetSecretValue from conc goroutines until d has passed, timing each call; any
// failed call or wrong value fails the benchmark (a fast error must not count as a fast read).
func benchLoad(b *testing.B, label string, sm *secretsmanager.Client, secretID, want string, conc int, d time.Duration) loadResult {
	b.Helper()
	lats := make([][]time.Duration, conc)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	cpu0 := processCPU(b)
	start := time.Now()
	deadline := start.Add(d)
	pprof.Do(context.Background(), pprof.Labels("load", label), func(ctx context.Context) {
		for g := range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)}
				own := make([]time.Duration, 0, 1<<12)
				for {
					t0 := time.Now()
					if !t0.Before(deadline) {
						break
					}
					out, err := sm.GetSecretValue(ctx, in)
					lat := time.Since(t0)
					if err == nil && aws.ToString(out.SecretString) != want {
						err = errors.New("GetSecretValue answered another value")
					}
					if err != nil {
						errOnce.Do(func() { firstErr = err })
						break
					}
					own = append(own, lat)
				}
				lats[g] = own
			}()
		}
		wg.Wait()
	})
	elapsed := time.Since(start)
	cpu := processCPU(b) - cpu0
	if firstErr != nil {
		b.Fatalf("%s: %v", label, firstErr)
	}
	all := slices.Concat(lats...)
	if len(all) == 0 {
		b.Fatalf("%s: no call completed", label)
	}
	return loadResult{lats: all, elapsed: elapsed, cpu: cpu}
}

// processCPU is the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchTransport is the load generator's transport: keep-alive HTTP/1.1 with an idle connection
// for every goroutine, trusting the API's CA.
func benchTransport(pool *x509.CertPool, conc int) *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns: 2 * conc, MaxIdleConnsPerHost: 2 * conc, IdleConnTimeout: 90 * time.Second}
}

func benchSMClient(endpoint string, tr *http.Transport, creds aws.CredentialsProvider) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{Region: apiRegion, BaseEndpoint: aws.String(endpoint),
		HTTPClient: &http.Client{Timeout: 60 * time.Second, Transport: tr}, Credentials: creds, RetryMaxAttempts: 1})
}

// benchTrustPool is the API's CA as its ClusterTrustBundle publishes it.
func benchTrustPool(b *testing.B) *x509.CertPool {
	b.Helper()
	pool := x509.NewCertPool()
	benchPoll(b, "the API's ClusterTrustBundle is published", time.Minute, func() error {
		ctb := &certificatesv1.ClusterTrustBundle{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Name: suiteOpts.API.TrustBundle}, ctb); err != nil {
			return err
		}
		if !pool.AppendCertsFromPEM([]byte(ctb.Spec.TrustBundle)) {
			return errors.New("the ClusterTrustBundle holds no certificate")
		}
		return nil
	})
	return pool
}

// benchServingCert is the API's serving certificate, from its Secret.
func benchServingCert(b *testing.B) tls.Certificate {
	b.Helper()
	sec := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: suiteOpts.Namespace, Name: suiteOpts.API.CertSecret}, sec); err != nil {
		b.Fatal(err)
	}
	cert, err := apitls.Certificate(sec.Data)
	if err != nil {
		b.Fatal(err)
	}
	return *cert
}

// benchServiceAccount is apiServiceAccount for a benchmark.
func benchServiceAccount(b *testing.B, ns, name string, clusterRoles ...string) {
	b.Helper()
	ctx := context.Background()
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
		b.Fatal(err)
	}
	for _, role := range clusterRoles {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-" + role},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}
		if err := k8s.Create(ctx, rb); err != nil {
			b.Fatal(err)
		}
	}
}

// benchAccessKey is accessKeyFor for a benchmark.
func benchAccessKey(b *testing.B, ns, name, sa string) (string, string) {
	b.Helper()
	priv, pub, err := accesskeys.NewRecipient()
	if err != nil {
		b.Fatal(err)
	}
	ak := &v1alpha1.AccessKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AccessKeySpec{ServiceAccountName: sa, RecipientPublicKey: pub}}
	if err := k8s.Create(context.Background(), ak); err != nil {
		b.Fatal(err)
	}
	benchPoll(b, "the access key is issued", time.Minute, func() error {
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
		b.Fatal(err)
	}
	return ak.Status.AccessKeyID, secret
}

// benchPoll polls cond every 100 ms until it returns nil, failing after within.
func benchPoll(b *testing.B, what string, within time.Duration, cond func() error) {
	b.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not within %s: %s", what, within, strings.TrimSpace(err.Error()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
