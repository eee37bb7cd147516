package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/controllers"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotator"
)

// quietFor is how long the operator must be idle (no write, no reconcile, no queued work) for a
// batch of work to count as finished.
const quietFor = 3 * time.Second

// ceilingResult is the raw API server's create rate for plain Secrets.
type ceilingResult struct {
	N                    int     `json:"n"`
	Clients              int     `json:"clients"`
	Seconds              float64 `json:"seconds"`
	Rate                 float64 `json:"ratePerSecond"`
	APIServerCPUPerObjMs float64 `json:"apiserverCpuPerObjectMs"`
	EtcdCPUPerObjMs      float64 `json:"etcdCpuPerObjectMs"`
}

func runCeiling(ctx context.Context, o *options) (*ceilingResult, error) {
	n := o.scaled(5000)
	cl, err := startCluster(ctx, o, "ceiling")
	if err != nil {
		return nil, err
	}
	defer cl.stop()
	api0, etcd0 := cl.cpu()
	start := time.Now()
	if err := forEach(ctx, n, o.clients, func(ctx context.Context, i int) error { return create(ctx, cl.c, plainSecret(i, 0)) }); err != nil {
		return nil, err
	}
	el := time.Since(start)
	api1, etcd1 := cl.cpu()
	return &ceilingResult{N: n, Clients: o.clients, Seconds: el.Seconds(), Rate: float64(n) / el.Seconds(),
		APIServerCPUPerObjMs: (api1 - api0) * 1000 / float64(n), EtcdCPUPerObjMs: (etcd1 - etcd0) * 1000 / float64(n)}, nil
}

// loadResult is N new ManagedSecrets created while the operator runs, then an idle period.
type loadResult struct {
	N                int     `json:"n"`
	Clients          int     `json:"clients"`
	OperatorUpSec    float64 `json:"operatorUpSeconds"`
	CreateSeconds    float64 `json:"createSeconds"`
	ProjectedSeconds float64 `json:"projectedSeconds"`
	ReadySeconds     float64 `json:"readySeconds"`
	SettledSeconds   float64 `json:"settledSeconds"`
	// Rate is N over the time from the first create until all were Ready (0 when not measured);
	// ProjectedRate is N over the time until the last projected Secret appeared.
	Rate          float64     `json:"ratePerSecond"`
	ProjectedRate float64     `json:"projectedPerSecond"`
	Latency       percentiles `json:"createToProjected"`
	ReadyLatency  percentiles `json:"createToReady"`
	// Writes and the request counts run from the first create until the operator settled.
	// Writes leaves out the key status ConfigMap's, KeyStatusWrites, which also counts the pass
	// that then counted the whole batch (Requests include them).
	KeyStatusWrites float64 `json:"keyStatusWrites"`
	Writes          float64 `json:"writes"`
	WritesPerObj    float64 `json:"writesPerSecret"`
	RequestsPerObj  float64 `json:"requestsPerSecret"`
	// Requests are rest_client_requests_total by "METHOD CODE"; Reconciles by "controller result".
	Requests       map[string]float64 `json:"requests"`
	Reconciles     map[string]float64 `json:"reconciles"`
	OperatorCPU    float64            `json:"operatorCpuSeconds"`
	APIServerCPU   float64            `json:"apiserverCpuSeconds"`
	EtcdCPU        float64            `json:"etcdCpuSeconds"`
	OperatorCPUMs  float64            `json:"operatorCpuPerSecretMs"`
	APIServerCPUMs float64            `json:"apiserverCpuPerSecretMs"`
	EtcdCPUMs      float64            `json:"etcdCpuPerSecretMs"`
	// HarnessCPUMs is this process's CPU per secret over the same span (creates, watches).
	HarnessCPUMs float64 `json:"harnessCpuPerSecretMs"`
	// APIServerIdleCPUMsPerSec is the API server's CPU per second during the idle period: the
	// part of APIServerCPUMs that is not the secrets' is about this times SettledSeconds / N.
	APIServerIdleCPUMsPerSec float64            `json:"apiserverIdleCpuMsPerSecond"`
	IdleSeconds              float64            `json:"idleSeconds"`
	IdleWrites               float64            `json:"idleWrites"`
	IdleRequests             map[string]float64 `json:"idleRequests"`
	IdleRSSMiB               float64            `json:"idleRssMiB"`
	PeakRSSMiB               float64            `json:"peakRssMiB"`
	HWMMiB                   float64            `json:"vmHwmMiB"`
	SteadyRSSMiB             float64            `json:"steadyRssMiB"`
	RSSPerObjKiB             float64            `json:"rssPerSecretKiB"`
	// The Go heap live at the operator's last GC (go_gc_heap_live_bytes; 0: not exported):
	// RSS also holds the binary's pages, freed heap not yet returned and GC headroom.
	IdleHeapMiB   float64            `json:"idleHeapLiveMiB"`
	SteadyHeapMiB float64            `json:"steadyHeapLiveMiB"`
	HeapPerObjKiB float64            `json:"heapLivePerSecretKiB"`
	Audit         map[string]float64 `json:"audit,omitempty"`
	IdleAudit     map[string]float64 `json:"idleAudit,omitempty"`
}

func runLoad(ctx context.Context, o *options, phase string, n int) (*loadResult, error) {
	cl, err := startCluster(ctx, o, phase)
	if err != nil {
		return nil, err
	}
	defer cl.stop()
	op, err := startOperator(o, cl, phase+"-operator")
	if err != nil {
		return nil, err
	}
	defer op.stop()
	up, err := op.waitUp(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := op.waitQuiet(ctx, quietFor, time.Minute); err != nil {
		return nil, err
	}
	r := &loadResult{N: n, Clients: o.clients, OperatorUpSec: up.Seconds()}
	r.IdleRSSMiB = mib(op.rss.average(2 * time.Second))
	before, err := op.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	say("%s: creating %d ManagedSecrets with %d clients", phase, n, o.clients)
	start, err := createManagedSecrets(ctx, cl, n, o.clients, "")
	if err != nil {
		return nil, err
	}
	r.CreateSeconds = time.Since(start).Seconds()
	lastProjected, lastReady, err := waitAllReady(ctx, cl, op, n, o.timeout)
	if err != nil {
		return nil, err
	}
	settled, err := op.waitQuiet(ctx, quietFor, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	r.ProjectedSeconds = lastProjected.Sub(start).Seconds()
	r.ReadySeconds = lastReady.Sub(start).Seconds()
	r.SettledSeconds = settled.at.Sub(start).Seconds()
	r.Rate = per(float64(n), max(r.ReadySeconds, r.ProjectedSeconds))
	r.ProjectedRate = per(float64(n), r.ProjectedSeconds)
	r.Latency = percentilesOf(cl.track.latencies(false))
	r.ReadyLatency = percentilesOf(cl.track.latencies(true))
	r.OperatorCPU, r.APIServerCPU, r.EtcdCPU = settled.opCPU-before.opCPU, settled.apiCPU-before.apiCPU, settled.etcd-before.etcd
	r.OperatorCPUMs, r.APIServerCPUMs, r.EtcdCPUMs = r.OperatorCPU*1000/float64(n), r.APIServerCPU*1000/float64(n), r.EtcdCPU*1000/float64(n)
	r.HarnessCPUMs = (settled.harness - before.harness) * 1000 / float64(n)
	// The periodic key pass (every --key-check-interval) rewrites the key status ConfigMap when
	// its counts changed: one write per pass, whatever N, counted apart. (No write came after
	// settled, and the watch has seen those before it: waitQuiet waited 3 s more.)
	d := settled.m.minus(before.m)
	r.Requests, r.Reconciles = d.Requests, d.Reconciles
	r.Writes = d.writes() - cl.track.keyWritesSince(before.at)
	r.WritesPerObj = r.Writes / float64(n)
	r.RequestsPerObj = d.requests() / float64(n)
	// Wait for the pass that counts the whole batch, so that the idle period below starts from a
	// steady state.
	if err := waitKeysCurrent(ctx, cl, n, o.keyCheckInterval+30*time.Second); err != nil {
		say("%s: %v", phase, err)
	}
	if _, err := op.waitQuiet(ctx, quietFor, time.Minute); err != nil {
		return nil, err
	}
	r.KeyStatusWrites = cl.track.keyWritesSince(before.at)
	say("%s: %d Ready in %.1f s (%.0f/s), settled after %.1f s; %.2f writes per secret; idle for %s", phase, n, r.ReadySeconds, r.Rate, r.SettledSeconds, r.WritesPerObj, o.idle)

	idleStart, err := op.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, o.idle); err != nil {
		return nil, err
	}
	idleEnd, err := op.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	idle := idleEnd.m.minus(idleStart.m)
	r.IdleSeconds = idleEnd.at.Sub(idleStart.at).Seconds()
	r.IdleWrites, r.IdleRequests = idle.writes(), idle.Requests
	r.APIServerIdleCPUMsPerSec = per((idleEnd.apiCPU-idleStart.apiCPU)*1000, r.IdleSeconds)
	r.IdleHeapMiB, r.SteadyHeapMiB = before.m.HeapLive/(1<<20), idleEnd.m.HeapLive/(1<<20)
	r.HeapPerObjKiB = (r.SteadyHeapMiB - r.IdleHeapMiB) * 1024 / float64(n)
	r.SteadyRSSMiB = mib(op.rss.average(2 * time.Second))
	r.PeakRSSMiB = mib(op.rss.peakKiB())
	_, hwm, _ := memKiB(op.pid)
	r.HWMMiB = mib(hwm)
	r.RSSPerObjKiB = (r.SteadyRSSMiB - r.IdleRSSMiB) * 1024 / float64(n)
	if cl.auditLog != "" {
		r.Audit = summarizeAudit(cl.auditLog, before.at, settled.at)
		r.IdleAudit = summarizeAudit(cl.auditLog, idleStart.at, idleEnd.at)
	}
	return r, nil
}

// coldStartResult is the operator restarted over N existing Ready ManagedSecrets.
type coldStartResult struct {
	N             int     `json:"n"`
	CreateSeconds float64 `json:"createToAllReadySeconds"`
	CreateRate    float64 `json:"createRatePerSecond"`
	// SyncedSeconds is the time from the restarted process's start until every ManagedSecret
	// was reconciled once and the queues were empty; Synced is false when that took over
	// coldLimit. The window, whose writes and requests are counted, runs until then and at
	// least -cold-window.
	SyncedSeconds float64            `json:"syncedSeconds"`
	Synced        bool               `json:"synced"`
	UpSeconds     float64            `json:"metricsUpSeconds"`
	WindowSeconds float64            `json:"windowSeconds"`
	Writes        float64            `json:"writesInWindow"`
	Requests      map[string]float64 `json:"requestsInWindow"`
	Reconciles    map[string]float64 `json:"reconcilesInWindow"`
	OperatorCPU   float64            `json:"operatorCpuSecondsInWindow"`
	APIServerCPU  float64            `json:"apiserverCpuSecondsInWindow"`
	PeakRSSMiB    float64            `json:"peakRssMiB"`
	HWMMiB        float64            `json:"vmHwmMiB"`
	SteadyRSSMiB  float64            `json:"steadyRssMiB"`
	BuiltRSSMiB   float64            `json:"rssAfterCreatingMiB"`
	Audit         map[string]float64 `json:"audit,omitempty"`
}

// populate creates n ManagedSecrets with an operator running and waits until all are Ready and
// the operator is idle; it returns how long that took.
func populate(ctx context.Context, o *options, cl *cluster, phase string, n int, policy string) (time.Duration, *operator, error) {
	op, err := startOperator(o, cl, phase+"-operator")
	if err != nil {
		return 0, nil, err
	}
	if _, err := op.waitUp(ctx); err != nil {
		return 0, op, err
	}
	say("%s: creating %d ManagedSecrets", phase, n)
	start, err := createManagedSecrets(ctx, cl, n, o.clients, policy)
	if err != nil {
		return 0, op, err
	}
	if _, _, err := waitAllReady(ctx, cl, op, n, o.timeout); err != nil {
		return 0, op, err
	}
	el := time.Since(start)
	if _, err := op.waitQuiet(ctx, quietFor, 5*time.Minute); err != nil {
		return 0, op, err
	}
	return el, op, nil
}

// coldLimit is how long the harness waits for a restarted operator to reconcile everything.
const coldLimit = 10 * time.Minute

func runColdStart(ctx context.Context, o *options) (*coldStartResult, error) {
	const phase = "coldstart"
	n := o.scaled(10000)
	cl, err := startCluster(ctx, o, phase)
	if err != nil {
		return nil, err
	}
	defer cl.stop()
	el, first, err := populate(ctx, o, cl, phase, n, "")
	if first != nil {
		defer first.stop()
	}
	if err != nil {
		return nil, err
	}
	r := &coldStartResult{N: n, CreateSeconds: el.Seconds(), CreateRate: per(float64(n), el.Seconds())}
	if err := waitKeysCurrent(ctx, cl, n, o.keyCheckInterval+30*time.Second); err != nil {
		say("%s: %v; the restarted operator may write it", phase, err)
	}
	r.BuiltRSSMiB = mib(first.rss.average(2 * time.Second))
	first.stop()
	say("%s: %d Ready in %.1f s (%.0f/s); restarting the operator", phase, n, el.Seconds(), r.CreateRate)

	op, err := startOperator(o, cl, phase+"-operator-restarted")
	if err != nil {
		return nil, err
	}
	defer op.stop()
	api0, _ := cl.cpu()
	var window snapshot
	for {
		s, err := op.snapshot(ctx)
		since := time.Since(op.started)
		if err == nil {
			if r.UpSeconds == 0 {
				r.UpSeconds = s.at.Sub(op.started).Seconds()
			}
			if !r.Synced && s.m.reconciles(managedSecretController) >= float64(n) && !s.m.busy() {
				r.Synced, r.SyncedSeconds = true, s.at.Sub(op.started).Seconds()
			}
		} else if aerr := op.alive(); aerr != nil {
			return nil, aerr
		}
		if err == nil && since >= o.coldWindow && (r.Synced || since > coldLimit) {
			// The window runs until every ManagedSecret was reconciled once, and at least
			// -cold-window (a failed scrape is retried).
			window = s
			break
		}
		if since > coldLimit {
			return nil, fmt.Errorf("no metrics from the restarted operator after %s: %v", coldLimit, err)
		}
		// Each scrape costs the operator CPU: four a second are enough.
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if !r.Synced {
		r.SyncedSeconds = time.Since(op.started).Seconds()
	}
	r.WindowSeconds = window.at.Sub(op.started).Seconds()
	// The counters started at zero with the process.
	r.Writes, r.Requests, r.Reconciles = window.m.writes(), window.m.Requests, window.m.Reconciles
	r.OperatorCPU, r.APIServerCPU = window.opCPU, window.apiCPU-api0
	r.SteadyRSSMiB = mib(op.rss.average(2 * time.Second))
	r.PeakRSSMiB = mib(op.rss.peakKiB())
	_, hwm, _ := memKiB(op.pid)
	r.HWMMiB = mib(hwm)
	if cl.auditLog != "" {
		r.Audit = summarizeAudit(cl.auditLog, op.started, window.at)
	}
	say("%s: synced after %.1f s; %.0f writes in the first %.0f s", phase, r.SyncedSeconds, r.Writes, r.WindowSeconds)
	return r, nil
}

// waitKeysCurrent waits until the operator's key status ConfigMap counts at least versions
// sealed objects, i.e. its periodic key pass (every --key-check-interval) has seen the whole set,
// as it has long before any real restart. A restart right after the set was created would
// otherwise find the counts stale and write them once: the harness's timing, not a cold start's.
func waitKeysCurrent(ctx context.Context, cl *cluster, versions int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		counted := 0
		cm := &corev1.ConfigMap{}
		err := cl.c.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: controllers.KeyStatusConfigMap}, cm)
		if err == nil {
			usage := map[string]int{}
			if json.Unmarshal([]byte(cm.Data[controllers.KeyStatusUsage]), &usage) == nil {
				for _, c := range usage {
					counted += c
				}
			}
		}
		if counted >= versions {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s the key status counts %d of %d versions (%v)", timeout, counted, versions, err)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// memCase is the operator's memory after a restart over existing objects.
type memCase struct {
	SyncedSeconds float64 `json:"syncedSeconds"`
	SteadyRSSMiB  float64 `json:"steadyRssMiB"`
	PeakRSSMiB    float64 `json:"peakRssMiB"`
	HWMMiB        float64 `json:"vmHwmMiB"`
	// HeapLiveMiB is go_gc_heap_live_bytes after the settle period (0: not exported).
	HeapLiveMiB float64            `json:"heapLiveMiB"`
	Writes      float64            `json:"writes"`
	Requests    map[string]float64 `json:"requests"`
}

// deprecatedResult compares the operator's memory over N secrets with one version each and with
// 100 deprecated versions each.
type deprecatedResult struct {
	Secrets           int     `json:"secrets"`
	VersionsPerSecret int     `json:"deprecatedVersionsPerSecret"`
	VersionSeconds    float64 `json:"versionCreateSeconds"`
	One               memCase `json:"oneVersion"`
	Many              memCase `json:"manyVersions"`
	Ratio             float64 `json:"steadyRssRatio"`
	PeakRatio         float64 `json:"peakRssRatio"`
	HeapRatio         float64 `json:"heapLiveRatio"`
}

func restartAndMeasure(ctx context.Context, o *options, cl *cluster, name string, n int) (memCase, error) {
	var mc memCase
	op, err := startOperator(o, cl, name)
	if err != nil {
		return mc, err
	}
	defer op.stop()
	synced, _, err := op.waitSynced(ctx, n, 10*time.Minute)
	if err != nil {
		return mc, err
	}
	if _, err := op.waitQuiet(ctx, quietFor, 5*time.Minute); err != nil {
		return mc, err
	}
	if err := sleep(ctx, o.settle); err != nil {
		return mc, err
	}
	s, err := op.snapshot(ctx)
	if err != nil {
		return mc, err
	}
	mc.SyncedSeconds = synced.Seconds()
	mc.SteadyRSSMiB = mib(op.rss.average(3 * time.Second))
	mc.PeakRSSMiB = mib(op.rss.peakKiB())
	_, hwm, _ := memKiB(op.pid)
	mc.HWMMiB = mib(hwm)
	mc.HeapLiveMiB = s.m.HeapLive / (1 << 20)
	mc.Writes, mc.Requests = s.m.writes(), s.m.Requests
	return mc, nil
}

func runDeprecated(ctx context.Context, o *options) (*deprecatedResult, error) {
	const phase = "deprecated"
	n := o.scaled(1000)
	r := &deprecatedResult{Secrets: n, VersionsPerSecret: o.deprecatedVersions}
	cl, err := startCluster(ctx, o, phase)
	if err != nil {
		return nil, err
	}
	defer cl.stop()
	_, first, err := populate(ctx, o, cl, phase, n, "")
	if first != nil {
		defer first.stop()
	}
	if err != nil {
		return nil, err
	}
	first.stop()
	if r.One, err = restartAndMeasure(ctx, o, cl, phase+"-operator-1version", n); err != nil {
		return nil, err
	}
	say("%s: one version each: %.1f MiB steady; adding %d deprecated versions to each of %d secrets (operator stopped)", phase, r.One.SteadyRSSMiB, o.deprecatedVersions, n)
	start := time.Now()
	if err := addDeprecatedVersions(ctx, cl, o, o.deprecatedVersions); err != nil {
		return nil, err
	}
	r.VersionSeconds = time.Since(start).Seconds()
	if r.Many, err = restartAndMeasure(ctx, o, cl, phase+"-operator-many-versions", n); err != nil {
		return nil, err
	}
	r.Ratio = per(r.Many.SteadyRSSMiB, r.One.SteadyRSSMiB)
	r.PeakRatio = per(r.Many.PeakRSSMiB, r.One.PeakRSSMiB)
	r.HeapRatio = per(r.Many.HeapLiveMiB, r.One.HeapLiveMiB)
	say("%s: %d deprecated versions each: %.1f MiB steady (x%.2f)", phase, o.deprecatedVersions, r.Many.SteadyRSSMiB, r.Ratio)
	return r, nil
}

// addDeprecatedVersions writes per versions with no staging label to every ManagedSecret, as
// the store seals them (a fresh data key, wrapped with the keyring's primary key and bound to the
// secret and version id), directly through the API while the operator is stopped.
func addDeprecatedVersions(ctx context.Context, cl *cluster, o *options, per int) error {
	ringSecret := &corev1.Secret{}
	if err := cl.c.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: controllers.DefaultOptions().KeyringSecret}, ringSecret); err != nil {
		return fmt.Errorf("reading the keyring: %w", err)
	}
	ring, err := keyring.Parse(ringSecret.Data[keyring.DataKey])
	if err != nil {
		return err
	}
	keys := keyring.NewProvider(ring, nil)
	list := &v1alpha1.ManagedSecretList{}
	if err := cl.c.List(ctx, list); err != nil {
		return err
	}
	owners := list.Items
	value := []byte(`{"password":"deprecated-value-0123456789abcdef","url":"x","username":"u"}`)
	return forEach(ctx, len(owners)*per, o.clients, func(ctx context.Context, i int) error {
		owner := &owners[i/per]
		// A retry must not add a second version: the id is derived from the owner and the index.
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/%d", owner.UID, i%per)).String()
		sealed, err := envelope.Seal(ctx, keys, owner.Spec.KMSKeyRef, objects.NewBinding(owner, id, false), value)
		if err != nil {
			return err
		}
		return create(ctx, cl.c, objects.SecretVersion(owner, id, nil, sealed, false, nil))
	})
}

// unrelatedResult is the operator's memory before and after N Secrets it does not own appear.
type unrelatedResult struct {
	N          int                `json:"n"`
	SizeBytes  int                `json:"sizeBytes"`
	BeforeMiB  float64            `json:"rssBeforeMiB"`
	AfterMiB   float64            `json:"rssAfterMiB"`
	DeltaMiB   float64            `json:"rssDeltaMiB"`
	PeakMiB    float64            `json:"peakRssMiB"`
	Writes     float64            `json:"writes"`
	Requests   map[string]float64 `json:"requests"`
	CreateSecs float64            `json:"createSeconds"`
}

func runUnrelated(ctx context.Context, o *options) (*unrelatedResult, error) {
	const phase = "unrelated"
	const size = 10 * 1024
	n := o.scaled(10000)
	cl, err := startCluster(ctx, o, phase)
	if err != nil {
		return nil, err
	}
	defer cl.stop()
	op, err := startOperator(o, cl, phase+"-operator")
	if err != nil {
		return nil, err
	}
	defer op.stop()
	if _, err := op.waitUp(ctx); err != nil {
		return nil, err
	}
	if _, err := op.waitQuiet(ctx, quietFor, time.Minute); err != nil {
		return nil, err
	}
	if err := sleep(ctx, o.settle); err != nil {
		return nil, err
	}
	r := &unrelatedResult{N: n, SizeBytes: size}
	r.BeforeMiB = mib(op.rss.average(3 * time.Second))
	before, err := op.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	say("%s: creating %d unrelated %d KiB Secrets", phase, n, size/1024)
	start := time.Now()
	if err := forEach(ctx, n, o.clients, func(ctx context.Context, i int) error { return create(ctx, cl.c, plainSecret(i, size)) }); err != nil {
		return nil, err
	}
	r.CreateSecs = time.Since(start).Seconds()
	if _, err := op.waitQuiet(ctx, quietFor, time.Minute); err != nil {
		return nil, err
	}
	if err := sleep(ctx, o.settle); err != nil {
		return nil, err
	}
	r.AfterMiB = mib(op.rss.average(3 * time.Second))
	after, err := op.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	r.DeltaMiB = r.AfterMiB - r.BeforeMiB
	r.PeakMiB = mib(op.rss.peakKiB())
	d := after.m.minus(before.m)
	r.Writes, r.Requests = d.writes(), d.Requests
	return r, nil
}

// rotationResult is one rotation of each of N ManagedSecrets, the CronJob controller, the Job
// controller and the pod played by the harness.
type rotationResult struct {
	N       int         `json:"n"`
	Seconds float64     `json:"seconds"`
	Rate    float64     `json:"rotationsPerSecond"`
	Latency percentiles `json:"jobCreateToRotated"`
	// Writes leaves out KeyStatusWrites, the periodic key pass's (Requests include them).
	Writes          float64            `json:"writes"`
	KeyStatusWrites float64            `json:"keyStatusWrites"`
	WritesPerRot    float64            `json:"writesPerRotation"`
	Requests        map[string]float64 `json:"requests"`
	Reconciles      map[string]float64 `json:"reconciles"`
	OperatorCPUMs   float64            `json:"operatorCpuPerRotationMs"`
	APIServerCPUMs  float64            `json:"apiserverCpuPerRotationMs"`
	SetupWrites     float64            `json:"writesPerSecretWithPolicy"`
	Audit           map[string]float64 `json:"audit,omitempty"`
}

const benchPolicy = "bench-rotation"

func runRotation(ctx context.Context, o *options) (*rotationResult, error) {
	const phase = "rotation"
	n := o.scaled(1000)
	cl, err := startCluster(ctx, o, phase)
	if err != nil {
		return nil, err
	}
	defer cl.stop()
	days := int32(30)
	for _, ns := range benchNamespaces() {
		p := &v1alpha1.RotationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: benchPolicy},
			Spec: v1alpha1.RotationPolicySpec{Strategy: v1alpha1.StrategyPassword, Schedule: v1alpha1.RotationSchedule{EveryDays: &days, Window: "2h"}}}
		if err := cl.c.Create(ctx, p); err != nil {
			return nil, err
		}
	}
	op, err := startOperator(o, cl, phase+"-operator")
	if err != nil {
		return nil, err
	}
	defer op.stop()
	if _, err := op.waitUp(ctx); err != nil {
		return nil, err
	}
	if _, err := op.waitQuiet(ctx, quietFor, time.Minute); err != nil {
		return nil, err
	}
	setup, err := op.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	say("%s: creating %d ManagedSecrets with RotationPolicy %s (strategy password)", phase, n, benchPolicy)
	if _, err := createManagedSecrets(ctx, cl, n, o.clients, benchPolicy); err != nil {
		return nil, err
	}
	if _, _, err := waitAllReady(ctx, cl, op, n, o.timeout); err != nil {
		return nil, err
	}
	if err := cl.track.wait(ctx, o.timeout, "rotation CronJobs in status", func() (bool, string) {
		scheduled := 0
		for i := 0; i < n; i++ {
			m := &v1alpha1.ManagedSecret{}
			if err := cl.track.cache.Get(ctx, types.NamespacedName{Namespace: nsOf(i), Name: msecName(i)}, m); err == nil &&
				m.Status.Rotation != nil && m.Status.Rotation.CronJobName != "" {
				scheduled++
			}
		}
		return scheduled == n, fmt.Sprintf("%d of %d", scheduled, n)
	}); err != nil {
		return nil, err
	}
	before, err := op.waitQuiet(ctx, quietFor, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	r := &rotationResult{N: n, SetupWrites: before.m.minus(setup.m).writes() / float64(n)}
	say("%s: rotating each of %d secrets once (%d at a time)", phase, n, o.clients)
	lat := make([]time.Duration, n)
	start := time.Now()
	if err := forEach(ctx, n, o.clients, func(ctx context.Context, i int) error {
		d, err := rotateOnce(ctx, cl, i)
		lat[i] = d
		return err
	}); err != nil {
		return nil, err
	}
	r.Seconds = time.Since(start).Seconds()
	r.Rate = per(float64(n), r.Seconds)
	r.Latency = percentilesOf(lat)
	settled, err := op.waitQuiet(ctx, quietFor, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	d := settled.m.minus(before.m)
	r.KeyStatusWrites = cl.track.keyWritesSince(before.at)
	r.Writes, r.Requests, r.Reconciles = d.writes()-r.KeyStatusWrites, d.Requests, d.Reconciles
	r.WritesPerRot = r.Writes / float64(n)
	r.OperatorCPUMs = (settled.opCPU - before.opCPU) * 1000 / float64(n)
	r.APIServerCPUMs = (settled.apiCPU - before.apiCPU) * 1000 / float64(n)
	if cl.auditLog != "" {
		r.Audit = summarizeAudit(cl.auditLog, before.at, settled.at)
	}
	say("%s: %d rotations in %.1f s; %.2f writes per rotation", phase, n, r.Seconds, r.WritesPerRot)
	return r, nil
}

// rotateOnce plays one scheduled rotation as a cluster would: the CronJob controller creates a
// Job and lists it in status.active, the kubelet mounts the material the operator projected and
// runs the pod (rotator.Run, what `kube-secrets-manager rotate` runs), and the Job controller
// records the pod's success; it returns when the operator has finished the rotation.
func rotateOnce(ctx context.Context, cl *cluster, i int) (time.Duration, error) {
	nn := types.NamespacedName{Namespace: nsOf(i), Name: msecName(i)}
	m := &v1alpha1.ManagedSecret{}
	if err := cl.track.cache.Get(ctx, nn, m); err != nil {
		return 0, err
	}
	if m.Status.Rotation == nil || m.Status.Rotation.CronJobName == "" {
		return 0, errors.New("no rotation CronJob in status")
	}
	previous := m.Status.CurrentVersionID
	cj := &batchv1.CronJob{}
	if err := cl.c.Get(ctx, types.NamespacedName{Namespace: nn.Namespace, Name: m.Status.Rotation.CronJobName}, cj); err != nil {
		return 0, err
	}
	material := ""
	for _, v := range cj.Spec.JobTemplate.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			material = v.Secret.SecretName
		}
	}
	if material == "" {
		return 0, errors.New("the CronJob mounts no material Secret")
	}
	start := time.Now()
	yes := true
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: cj.Name + "-bench", Namespace: cj.Namespace,
			Labels: cj.Spec.JobTemplate.Labels, Annotations: cj.Spec.JobTemplate.Annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: &yes}},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
	if err := cl.c.Create(ctx, job); err != nil {
		return 0, err
	}
	if err := updateStatus(ctx, cl.c, cj, func() {
		cj.Status.Active = append(cj.Status.Active, corev1.ObjectReference{APIVersion: "batch/v1", Kind: "Job",
			Namespace: job.Namespace, Name: job.Name, UID: job.UID, ResourceVersion: job.ResourceVersion})
		now := metav1.Now()
		cj.Status.LastScheduleTime = &now
	}); err != nil {
		return 0, fmt.Errorf("listing the Job in the CronJob's status: %w", err)
	}
	sec := &corev1.Secret{}
	if err := cl.track.wait(ctx, 5*time.Minute, "rotation material for "+job.Name, func() (bool, string) {
		if err := cl.track.cache.Get(ctx, types.NamespacedName{Namespace: nn.Namespace, Name: material}, sec); err != nil {
			return false, err.Error()
		}
		req, err := parseRequest(sec.Data[rotation.FileRequest])
		return err == nil && req.JobUID == string(job.UID), "material for Job " + req.JobUID
	}); err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "ksm-bench-material-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	for k, v := range sec.Data {
		if err := os.WriteFile(filepath.Join(dir, k), v, 0o400); err != nil {
			return 0, err
		}
	}
	var out bytes.Buffer
	if code := rotator.Run(ctx, dir, string(job.UID), &out); code != rotator.ExitOK {
		return 0, fmt.Errorf("rotate exited %d: %s", code, out.String())
	}
	if err := updateStatus(ctx, cl.c, job, func() {
		now := metav1.Now()
		started := metav1.NewTime(now.Add(-time.Second))
		job.Status.StartTime, job.Status.CompletionTime = &started, &now
		job.Status.Active, job.Status.Succeeded = 0, 1
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: "CompletionsReached"},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: "CompletionsReached"},
		}
	}); err != nil {
		return 0, fmt.Errorf("completing the Job: %w", err)
	}
	// The CronJob controller then drops the finished Job from status.active.
	if err := updateStatus(ctx, cl.c, cj, func() {
		active := cj.Status.Active[:0]
		for _, ref := range cj.Status.Active {
			if ref.UID != job.UID {
				active = append(active, ref)
			}
		}
		cj.Status.Active = active
		now := metav1.Now()
		cj.Status.LastSuccessfulTime = &now
	}); err != nil {
		return 0, fmt.Errorf("updating the CronJob's status: %w", err)
	}
	err = cl.track.wait(ctx, 5*time.Minute, "rotation of "+nn.String(), func() (bool, string) {
		m := &v1alpha1.ManagedSecret{}
		if err := cl.track.cache.Get(ctx, nn, m); err != nil {
			return false, err.Error()
		}
		done := m.Status.LastRotatedTime != nil && m.Status.CurrentVersionID != previous && m.Status.PendingVersionID == "" &&
			m.Status.Rotation != nil && m.Status.Rotation.ActiveJobUID == ""
		return done, fmt.Sprintf("current %s, pending %q, rotation %+v", m.Status.CurrentVersionID, m.Status.PendingVersionID, m.Status.Rotation)
	})
	return time.Since(start), err
}

// updateStatus re-reads obj, applies change and writes its status, retrying on conflicts.
func updateStatus(ctx context.Context, c client.Client, obj client.Object, change func()) error {
	for attempt := 0; ; attempt++ {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		err := c.Status().Update(ctx, obj)
		if err == nil || !apierrors.IsConflict(err) || attempt >= 20 {
			return err
		}
	}
}

func parseRequest(data []byte) (rotation.Request, error) {
	var r rotation.Request
	err := json.Unmarshal(data, &r)
	return r, err
}

// per is a/b, or 0 when b is 0 (JSON has no infinity; the table shows such a figure as n/a).
func per(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
