package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/summary"
)

// pendingDeletion is AWS's PendingDeletion state: the secret stays, with its deletion time, no
// rotation runs, every request is refused, and the projected Secret is left as it is (running
// workloads are not broken by a deletion that may still be undone). When the window ends the
// ManagedSecret is deleted, and its finalizer removes everything.
func (r *ManagedSecretReconciler) pendingDeletion(ctx context.Context, s *scope) *result {
	daysText, marked := s.msec.Annotations[request.AnnotationDeleteRequested]
	if !marked {
		s.changed = s.changed || s.before.DeletionRequest != ""
		return nil
	}
	days, err := request.ParseRecoveryDays(daysText)
	note := ""
	if err != nil {
		days, note = request.DefaultRecoveryDays, fmt.Sprintf(" (the annotation's window is not valid: %s; %d days apply)", err, request.DefaultRecoveryDays)
	}
	// The window starts when the operator first sees this request (a new request after a restore
	// starts a new one); a date in the annotation would let a patch purge at once.
	at := s.now.Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Second)
	if s.before.DeletionTime != nil && s.before.DeletionRequest == daysText {
		at = s.before.DeletionTime.Time
	}
	s.changed = s.changed || s.before.DeletionRequest != daysText
	s.deletionTime, s.deletionRequest = &at, daysText
	if !s.now.Before(at) {
		if err := r.Delete(ctx, s.msec, client.Preconditions{UID: &s.msec.UID}); err != nil && !apierrors.IsNotFound(err) {
			return transient(v1alpha1.ReasonPendingDeletion, "purging the secret failed", err)
		}
		return &result{outcome: summary.Outcome{Reason: v1alpha1.ReasonPendingDeletion, Message: "the recovery window has ended; the secret is being purged"}}
	}
	r.serveRequestsRefusing(ctx, s, awserr.New(awserr.InvalidRequest, "%s", awserr.MsgMarkedForDeletion))
	if err := r.removeRotation(ctx, s); err != nil {
		return transient(v1alpha1.ReasonPendingDeletion, "removing the rotation CronJob failed", err)
	}
	return &result{
		outcome: summary.Outcome{Reason: v1alpha1.ReasonPendingDeletion, Message: fmt.Sprintf(
			"marked for deletion; it is purged at %s unless restored with 'kubectl secrets-manager restore %s'%s",
			at.Format(time.RFC3339), s.msec.Name, note)},
		requeueAfter: at.Sub(s.now) + time.Second,
	}
}
