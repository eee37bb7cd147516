package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/summary"
)

// scope carries what the phases find, in order.
type scope struct {
	msec   *v1alpha1.ManagedSecret
	before *v1alpha1.ManagedSecretStatus
	now    time.Time
	// sec is the secret's versions (loadVersions).
	sec *store.Secret
	// current is the AWSCURRENT version's id and value (openCurrentUnlessProjected; the value
	// only when currentOpen, see currentValue).
	currentID      string
	currentCreated time.Time
	current        store.Value
	currentOpen    bool
	// rotated marks a rotation finished in this reconcile (its Event also stands for the
	// projection of the new value).
	rotated bool
	// proof is what the projected Secret (uid proofSecret) was proven to hold (projection.go).
	proof       *v1alpha1.ProjectionStatus
	proofSecret types.UID
	// rot is set by loadRotation when a RotationPolicy is attached; schedulable when it can run.
	rot         *rotationScope
	schedulable bool
	// rollout is what rolloutWorkloads found, when spec.rollout names targets (rollout.go).
	rollout *rolloutState
	// deletionTime and deletionRequest are set while the secret is marked for deletion.
	deletionTime    *time.Time
	deletionRequest string
	// changed marks a change AWS counts in LastChangedDate that is not a label move (those are
	// seen in the versions): deletion, restore, rotation turned on or off.
	changed bool
	// accessed marks a read of a value (a get request).
	accessed bool
	// wake and retry are what must not stop the secret: when to look again (a request's time to
	// live), and a transient failure to retry with backoff once the phases are done.
	wake  time.Duration
	retry error
}

// phase is one step of a reconcile: nil to go on, or the result that ends it.
type phase func(ctx context.Context, s *scope) *result

// phases is the reconcile, in order; read it to know what happens.
func (r *ManagedSecretReconciler) phases() []phase {
	return []phase{
		r.loadVersions,               // the VersionsMissing guard
		r.completeInterrupted,        // a label move a crash cut short
		r.pendingDeletion,            // AWS's PendingDeletion: requests refused, purge when the window ends
		r.serveRequests,              // put, get, update-stage, rollback; never blocks the rest
		r.ensureFirstVersion,         // generate | fromSecret | AwaitingValue
		r.loadRotation,               // the policy, its bounds, the trusted Jobs
		r.finishRotation,             // finishSecret | RotationFailed | cancel
		r.openCurrentUnlessProjected, // decrypt AWSCURRENT, unless the projection is proven
		r.project,                    // the projected Secret
		r.tidy,                       // stale projections, deprecated versions
		r.rolloutWorkloads,           // restart the workloads spec.rollout names after AWSCURRENT moved
		r.scheduleRotation,           // CronJob, rotate-now, createSecret and its material
	}
}

// runPhases runs the phases until one ends the reconcile; when none does, the secret is Ready.
func (r *ManagedSecretReconciler) runPhases(ctx context.Context, s *scope) *result {
	for _, p := range r.phases() {
		if res := p(ctx, s); res != nil {
			return s.finish(res)
		}
	}
	return s.finish(&result{outcome: summary.Outcome{Ready: true, Reason: v1alpha1.ReasonReady,
		Message: "version " + s.currentID + " is projected into Secret " + targetName(s.msec)}})
}

// finish folds what must not stop the secret into the result.
func (s *scope) finish(res *result) *result {
	res.requeueAfter = earliest(res.requeueAfter, s.wake)
	if res.err == nil && s.retry != nil {
		res.err = s.retry
	}
	return res
}

// versionFacts are the versions' facts, for status.
func (s *scope) versionFacts() []stages.Version {
	if s.sec == nil {
		return nil
	}
	return s.sec.Facts()
}
