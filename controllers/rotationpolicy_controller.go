package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/schedule"
)

// RotationPolicyReconciler reports whether a RotationPolicy is usable: the checks admission cannot
// make (the cron expression and time zone as the CronJob controller parses them, and a window no
// longer than the interval of any cron expression).
type RotationPolicyReconciler struct {
	client.Client
	// Allow and RotationImage are the operator's bounds on rotation pods.
	Allow         rotation.Allow
	RotationImage string
}

// +kubebuilder:rbac:groups=kube-secrets-manager.io,resources=rotationpolicies/status,verbs=patch

// Reconcile validates the policy and patches its status once.
func (r *RotationPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &v1alpha1.RotationPolicy{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonScheduled,
		Message: "the schedule is valid", ObservedGeneration: p.Generation, LastTransitionTime: metav1.NewTime(time.Now().UTC().Truncate(time.Second))}
	if _, err := schedule.Parse(scheduleSpec(p)); err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalidSchedule, err.Error()
	} else if err := r.Allow.Admit(p.Namespace, p.Spec, r.RotationImage); err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonPolicyNotAllowed, err.Error()
	} else if p.Spec.Suspend != nil && *p.Spec.Suspend {
		cond.Reason, cond.Message = v1alpha1.ReasonSuspended, "the schedule is valid; rotations are suspended"
	}
	st := *p.Status.DeepCopy()
	st.ObservedGeneration = p.Generation
	meta.SetStatusCondition(&st.Conditions, cond)
	if equality.Semantic.DeepEqual(st, p.Status) {
		return ctrl.Result{}, nil
	}
	orig := p.DeepCopy()
	p.Status = st
	err := r.Status().Patch(ctx, p, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	return ctrl.Result{}, err
}

// SetupWithManager registers the controller.
func (r *RotationPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.RotationPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
