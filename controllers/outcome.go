package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/summary"
)

// The outcomes of a phase. A phase returns nil to let the reconcile go on, or a *result that ends
// it and says what Ready is: failed (the user must change something; no retry until they do),
// waitFor (something may appear; retried on a growing delay) or transient (an API failure; retried
// with the controller's backoff). refusal is a rotation that cannot start, reported in
// RotationFailed while Ready stays as it is.

type result struct {
	outcome      summary.Outcome
	requeueAfter time.Duration
	err          error
}

var errRetry = errors.New("transient failure, retrying with backoff")

func failed(reason, message string) *result {
	return &result{outcome: summary.Outcome{Reason: reason, Message: message}}
}

// transient is a failure that retries with the controller's backoff. Its message never carries an
// API server's text, which could echo object content.
func transient(reason, what string, err error) *result {
	msg := fmt.Sprintf("%s: %s", what, apiErrorSummary(err))
	return &result{outcome: summary.Outcome{Reason: reason, Message: msg}, err: errors.New(msg)}
}

// waitFor is a failure that fixes itself when something appears: retried with a growing delay
// (from 2 s up to 5 min, by how long it has lasted).
func (s *scope) waitFor(reason, message string) *result {
	since := s.now
	if c := meta.FindStatusCondition(s.before.Conditions, v1alpha1.ConditionReady); c != nil && c.Reason == reason {
		since = c.LastTransitionTime.Time
	}
	res := failed(reason, message)
	res.requeueAfter = summary.Backoff(since, s.now, 2*time.Second, 5*time.Minute)
	return res
}

// refusal is a rotation that cannot start for a reason the user must fix; it becomes the
// RotationFailed condition and is looked at again in 30 s.
type refusal struct{ reason, msg string }

func (e refusal) Error() string { return e.msg }

// earliest is the smaller of two requeue delays, where 0 means none.
func earliest(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// apiErrorSummary describes an API error by its status reason and code only: the server's message
// can quote the object it refused, and that object may hold a value.
func apiErrorSummary(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		st := status.Status()
		return fmt.Sprintf("the API server answered %s (%d)", st.Reason, st.Code)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "the request timed out"
	}
	return "the request to the API server failed"
}
