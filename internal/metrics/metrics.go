// Package metrics holds the operator's Prometheus metrics. Labels are bounded: namespace and name
// of a ManagedSecret (one series per secret), its policy and strategy, and fixed sets of
// operations, results, reasons and interfaces. No value, hash of a value or user-written text is
// ever a label.
package metrics

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// Namespace prefixes every metric.
const Namespace = "kube_secrets_manager"

// Interfaces a request or a value can come through.
const (
	InterfaceRequest = "request" // the plugin's request Secrets
	InterfaceAPI     = "api"     // the AWS Secrets Manager API
	InterfaceSource  = "source"  // a ManagedSecret's generate or fromSecret
)

// Results of a request.
const (
	ResultSuccess     = "success"
	ResultClientError = "client_error"
	ResultServerError = "server_error"
)

// Results of a rotation.
const (
	RotationSucceeded = "succeeded"
	RotationFailed    = "failed"
)

var (
	// Rotations counts finished rotation attempts (one per rotation Job) by outcome.
	Rotations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rotations_total",
		Help: "Finished rotation attempts by strategy, result (succeeded, failed) and reason (a condition reason).",
	}, []string{"strategy", "result", "reason"})
	// RotationDuration is the time from a rotation Job's creation to its end.
	RotationDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "rotation_duration_seconds",
		Help:    "Time from a rotation Job's creation to the rotation's end, by strategy.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"strategy"})
	// DecryptionFailures counts versions that did not decrypt (tampered, or sealed for another
	// secret or key).
	DecryptionFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "decryption_failures_total",
		Help: "Versions that failed to decrypt when read.",
	})
	// ValueSizeRefusals counts values refused for their size.
	ValueSizeRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "value_size_refusals_total",
		Help: "Values refused because they exceed the size limit, by interface (request, api, source).",
	}, []string{"interface"})
	// Requests counts answered requests.
	Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_total",
		Help: "Answered requests by interface (request, api), operation and result (success, client_error, server_error).",
	}, []string{"interface", "operation", "result"})
)

// Collectors are the metrics above, for registration.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{Rotations, RotationDuration, DecryptionFailures, ValueSizeRefusals, Requests}
}

// ResultOf classifies a request's error: AWS's client errors (a refusal the caller can act on)
// apart from the server's own failures.
func ResultOf(err error) string {
	switch code := awserr.CodeOf(err); {
	case err == nil:
		return ResultSuccess
	case code == "" || code == awserr.InternalServiceError:
		return ResultServerError
	default:
		return ResultClientError
	}
}

// ResultOfStatus classifies an HTTP answer.
func ResultOfStatus(code int) string {
	switch {
	case code < 400:
		return ResultSuccess
	case code < 500:
		return ResultClientError
	default:
		return ResultServerError
	}
}

// ObserveRequest counts one answered request and, when it was refused for the value's size, the
// refusal.
func ObserveRequest(iface, operation string, err error) {
	Requests.WithLabelValues(iface, operation, ResultOf(err)).Inc()
	if errors.Is(err, value.ErrTooBig) {
		ValueSizeRefusals.WithLabelValues(iface).Inc()
	}
}

// observed remembers the rotation Jobs already counted: a reconcile that runs again on a cache
// not yet showing its own status write sees the same Job end a second time.
var observed = struct {
	sync.Mutex
	jobs map[string]struct{}
}{}

// maxObserved bounds that memory; past it, it starts over.
const maxObserved = 10000

// ObserveRotation counts the rotation attempt of one Job (by UID, once) that started at started.
func ObserveRotation(jobUID, strategy, result, reason string, started, now time.Time) {
	observed.Lock()
	_, seen := observed.jobs[jobUID]
	if !seen {
		if observed.jobs == nil || len(observed.jobs) >= maxObserved {
			observed.jobs = map[string]struct{}{}
		}
		observed.jobs[jobUID] = struct{}{}
	}
	observed.Unlock()
	if seen {
		return
	}
	if strategy == "" {
		strategy = "unknown"
	}
	Rotations.WithLabelValues(strategy, result, reason).Inc()
	if !started.IsZero() && now.After(started) {
		RotationDuration.WithLabelValues(strategy).Observe(now.Sub(started).Seconds())
	}
}
