package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/accesskeys"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// AccessKeyReconciler issues static access keys for the AWS-compatible API: an id, a secret
// sealed with the keyring (to verify signatures), and the secret encrypted to its creator's public
// key (to hand it over without a plaintext copy in the cluster). An issued key is never changed.
type AccessKeyReconciler struct {
	client.Client
	// APIReader reads the ServiceAccount's metadata (no informer on ServiceAccounts).
	APIReader client.Reader
	Keys      envelope.KeyProvider
	Now       func() time.Time
}

// +kubebuilder:rbac:groups=kube-secrets-manager.io,resources=accesskeys,verbs=get;list;watch
// +kubebuilder:rbac:groups=kube-secrets-manager.io,resources=accesskeys/status,verbs=patch

// Reconcile issues the key once and reports whether it is active.
func (r *AccessKeyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ak := &v1alpha1.AccessKey{}
	if err := r.Get(ctx, req.NamespacedName, ak); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	st := *ak.Status.DeepCopy()
	st.ObservedGeneration = ak.Generation
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Active",
		Message: "the key is active", ObservedGeneration: ak.Generation, LastTransitionTime: metav1.NewTime(now.UTC().Truncate(time.Second))}
	if st.AccessKeyID == "" {
		if err := r.issue(ctx, ak, &st, now); err != nil {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "IssueFailed", err.Error()
			meta.SetStatusCondition(&st.Conditions, cond)
			return ctrl.Result{}, r.patch(ctx, ak, st)
		}
	}
	if ak.Spec.Disabled {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Disabled", "the key is disabled (spec.disabled); calls signed with it are refused"
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	return ctrl.Result{}, r.patch(ctx, ak, st)
}

func (r *AccessKeyReconciler) issue(ctx context.Context, ak *v1alpha1.AccessKey, st *v1alpha1.AccessKeyStatus, now time.Time) error {
	id, err := accesskeys.NewID()
	if err != nil {
		return err
	}
	secret, err := accesskeys.NewSecret()
	if err != nil {
		return err
	}
	sealed, err := accesskeys.Seal(ctx, r.Keys, ak.Namespace, ak.Name, id, secret)
	if err != nil {
		return err
	}
	st.AccessKeyID, st.SealedSecret = id, sealed
	if ak.Spec.RecipientPublicKey != "" {
		if st.Delivered, err = accesskeys.Deliver(ak.Spec.RecipientPublicKey, id, secret); err != nil {
			st.AccessKeyID, st.SealedSecret = "", nil
			return err
		}
	}
	created := metav1.NewTime(now.UTC().Truncate(time.Second))
	st.CreatedTime = &created
	st.ServiceAccountUID = r.serviceAccountUID(ctx, ak)
	return nil
}

// serviceAccountUID is the UID of the key's ServiceAccount, or "" when it cannot be read (it does
// not exist yet, or the AWS API's read right is not installed): then the key is bound to the name.
func (r *AccessKeyReconciler) serviceAccountUID(ctx context.Context, ak *v1alpha1.AccessKey) string {
	if r.APIReader == nil {
		return ""
	}
	sa, err := objects.GetMeta(ctx, r.APIReader, objects.ServiceAccountGVK, types.NamespacedName{Namespace: ak.Namespace, Name: ak.Spec.ServiceAccountName})
	if err != nil || sa == nil {
		return ""
	}
	return string(sa.UID)
}

// patch writes the status when it changed, with an optimistic lock: two replicas never issue two
// keys for one AccessKey.
func (r *AccessKeyReconciler) patch(ctx context.Context, ak *v1alpha1.AccessKey, st v1alpha1.AccessKeyStatus) error {
	if equality.Semantic.DeepEqual(ak.Status, st) {
		return nil
	}
	orig := ak.DeepCopy()
	ak.Status = st
	err := r.Status().Patch(ctx, ak, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // reconciled again on the change that conflicted
	}
	return err
}

// SetupWithManager registers the controller.
func (r *AccessKeyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.AccessKey{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
