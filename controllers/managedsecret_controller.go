// Package controllers holds the thin reconcilers; decisions live in internal/.
package controllers

import (
	"context"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/readyourwrites"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/summary"
)

// FieldManager is the server-side apply field manager of everything the operator generates.
const FieldManager = store.FieldManager

// ManagedSecretReconciler turns ManagedSecrets into encrypted SecretVersions and projects the
// AWSCURRENT version into a Secret.
type ManagedSecretReconciler struct {
	client.Client
	// APIReader reads single objects the cache does not hold (a fromSecret source, a possibly
	// conflicting target) with a GET, never a LIST or WATCH.
	APIReader   client.Reader
	Recorder    events.EventRecorder
	Keys        envelope.KeyProvider
	ValueLimit  int
	ClusterName string
	// ARN shapes the ARN-like ids (partition, region, account).
	ARN objects.ARNParts
	// KeyringNamespace and KeyringSecret name the keyring, which is never imported.
	KeyringNamespace string
	KeyringSecret    string
	// RotationImage runs the built-in rotation strategies (the operator's own image).
	RotationImage string
	// RotationAllow bounds what RotationPolicies may ask of rotation pods.
	RotationAllow rotation.Allow
	// TargetPrefixes are control prefixes target labels and annotations may use anyway.
	TargetPrefixes []string
	Workers        int
	Now            func() time.Time

	// RolloutWindow is how long a change of AWSCURRENT waits before the workloads are restarted,
	// so that changes close together cause one restart (0: the default; negative: none).
	RolloutWindow time.Duration
	// rolloutWarned remembers the reason last warned about per rollout target.
	rolloutWarned sync.Map

	// verified remembers which Secret resourceVersions hold what the operator wrote.
	verified verifiedSecrets
	// written remembers the operator's last write to each ManagedSecret.
	written readyourwrites.Tracker
	// store is the one implementation of the version rules (made on first use).
	store     *store.Store
	storeOnce sync.Once
	// indexed: the client's cache indexes versions, Secrets and Jobs by objects.IndexManagedSecretUID
	// (set by SetupWithManager; a reconciler run by hand against the API server has no index).
	indexed bool
}

// Permissions (each line is explained in the README, "Permissions"):
// +kubebuilder:rbac:groups=kube-secrets-manager.io,resources=managedsecrets,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=kube-secrets-manager.io,resources=managedsecrets/status,verbs=patch
// +kubebuilder:rbac:groups=kube-secrets-manager.io,resources=managedsecrets/finalizers,verbs=update
// +kubebuilder:rbac:groups=kube-secrets-manager.io,resources=secretversions,verbs=get;list;watch;create;patch;delete;deletecollection
// +kubebuilder:rbac:groups=kube-secrets-manager.io,resources=rotationpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs the phases of one ManagedSecret and patches its status once.
func (r *ManagedSecretReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	msec := &v1alpha1.ManagedSecret{}
	if err := r.Get(ctx, req.NamespacedName, msec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.written.Behind(req.NamespacedName, msec.ResourceVersion) {
		// Our own last write has not reached the cache: working from the older object would
		// only end in a conflict (and repeat Events), so wait for it.
		return ctrl.Result{RequeueAfter: 50 * time.Millisecond}, nil
	}
	read := msec.ResourceVersion
	defer func() {
		r.written.Record(req.NamespacedName, msec.ResourceVersion, read, !msec.DeletionTimestamp.IsZero())
	}()
	r.Store()
	if !msec.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, msec)
	}
	if retry, err := r.claim(ctx, msec); retry || err != nil {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, err
	}
	s := &scope{msec: msec, before: msec.Status.DeepCopy(), now: r.now()}
	defer s.current.Clear()
	res := r.runPhases(ctx, s)
	if retry, err := r.patchStatus(ctx, s, res); retry || err != nil {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, err
	}
	r.announce(msec, s.before, res.outcome)
	if res.err != nil {
		log.FromContext(ctx).Info("reconcile will be retried", "reason", res.outcome.Reason, "error", res.err.Error())
		return ctrl.Result{}, errRetry
	}
	return ctrl.Result{RequeueAfter: res.requeueAfter}, nil
}

// Store is the reconciler's store (made on first use); the key custodian shares it, so that what
// it learns about deprecated versions reaches the reconciles (store.Store.PruneDue).
func (r *ManagedSecretReconciler) Store() *store.Store {
	r.storeOnce.Do(func() {
		r.store = &store.Store{Client: r.Client, APIReader: r.APIReader, Keys: r.Keys, Limit: r.ValueLimit, ARN: r.arn, Indexed: r.indexed}
	})
	return r.store
}

// cachedList is the options of a cached list in namespace of the objects labels select; when the
// labels name a ManagedSecret, the list goes through the index of its objects (not when the
// reconciler reads the API server directly: its label selector does the selecting then).
func (r *ManagedSecretReconciler) cachedList(namespace string, labels client.MatchingLabels) []client.ListOption {
	return objects.ListOfManagedSecret(namespace, labels[v1alpha1.LabelManagedSecretUID], k8slabels.SelectorFromSet(k8slabels.Set(labels)), r.indexed)
}

// claim adds the finalizer and the stable secret id in one merge patch (touching no spec field,
// so the operator owns none), with an optimistic lock. retry is true after a conflict.
func (r *ManagedSecretReconciler) claim(ctx context.Context, msec *v1alpha1.ManagedSecret) (bool, error) {
	hasID := msec.Annotations[v1alpha1.AnnotationSecretID] != ""
	if controllerutil.ContainsFinalizer(msec, v1alpha1.Finalizer) && hasID {
		return false, nil
	}
	orig := msec.DeepCopy()
	controllerutil.AddFinalizer(msec, v1alpha1.Finalizer)
	if !hasID {
		if msec.Annotations == nil {
			msec.Annotations = map[string]string{}
		}
		msec.Annotations[v1alpha1.AnnotationSecretID] = string(msec.UID)
	}
	patch, err := claimPatch(orig, msec)
	if err != nil {
		return false, err
	}
	err = r.Patch(ctx, msec, patch)
	if apierrors.IsConflict(err) {
		return true, nil
	}
	return false, err
}

// patchStatus computes the status from what the phases found and patches it once, only when it
// changed, under an optimistic lock (a reconcile that read a stale ManagedSecret gets a conflict
// and a quick retry, instead of writing a status computed from old facts).
func (r *ManagedSecretReconciler) patchStatus(ctx context.Context, s *scope, res *result) (bool, error) {
	in := summary.Input{
		Generation: s.msec.Generation, Previous: *s.before, Versions: s.versionFacts(),
		TargetName: targetName(s.msec), Outcome: res.outcome, DeletionTime: s.deletionTime,
		DeletionRequest: s.deletionRequest, Changed: s.changed, Accessed: s.accessed, Now: s.now,
	}
	if s.rot != nil {
		in.Rotation = &s.rot.update
	}
	status := summary.Status(in)
	status.ID = r.arn(s.msec)
	r.applyRollout(s, &status)
	// The projection proof rides along with a status that changes anyway; alone it is not worth
	// a write (a restart without it reads that Secret once more).
	status.Projection = s.before.Projection
	if equality.Semantic.DeepEqual(*s.before, status) {
		return false, nil
	}
	if s.proof != nil {
		status.Projection = s.proof
	}
	// The base is the status as last read or returned by a write in this reconcile, as
	// MergeFrom's would be; the new status replaces it whole, so a shallow copy keeps it intact.
	base := s.msec.Status
	s.msec.Status = status
	patch, err := statusPatch(&base, s.msec)
	if err != nil {
		return false, err
	}
	err = r.Status().Patch(ctx, s.msec, patch)
	if apierrors.IsConflict(err) {
		return true, nil
	}
	if err == nil && s.proof != nil {
		// status.projection holds the proof now: memory need not repeat it for every secret.
		r.verified.forget(s.proofSecret)
	}
	return false, client.IgnoreNotFound(err)
}

func (r *ManagedSecretReconciler) arn(msec *v1alpha1.ManagedSecret) string {
	p := r.ARN
	if p.Region == "" {
		p.Region = r.ClusterName
	}
	return objects.ARN(p, msec)
}

// finalize removes what the ManagedSecret produced, then lets it go. Deleting explicitly (not
// only through garbage collection) leaves nothing behind even where no garbage collector runs.
func (r *ManagedSecretReconciler) finalize(ctx context.Context, msec *v1alpha1.ManagedSecret) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(msec, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	sec, err := r.store.Load(ctx, msec)
	if err != nil {
		return ctrl.Result{}, err
	}
	remaining, err := sec.DeleteAll(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	secrets, err := r.listSecretMeta(ctx, msec.Namespace, client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(msec.UID)})
	if err != nil {
		return ctrl.Result{}, err
	}
	for i := range secrets {
		if !isControlledBy(&secrets[i], msec) {
			continue
		}
		remaining++
		if err := r.deleteIfControlled(ctx, &secrets[i], msec.UID); err != nil {
			return ctrl.Result{}, err
		}
		r.verified.forget(secrets[i].UID)
	}
	if remaining > 0 {
		// Something (another finalizer, say) holds an object back: look again, less and less often.
		return ctrl.Result{RequeueAfter: summary.Backoff(msec.DeletionTimestamp.Time, r.now(), time.Second, 5*time.Minute)}, nil
	}
	orig := msec.DeepCopy()
	controllerutil.RemoveFinalizer(msec, v1alpha1.Finalizer)
	if err := r.Patch(ctx, msec, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// announce emits an Event when the Ready condition changes reason (a failure, or the recovery from
// one), so failures are visible once, not on every retry.
func (r *ManagedSecretReconciler) announce(msec *v1alpha1.ManagedSecret, before *v1alpha1.ManagedSecretStatus, o summary.Outcome) {
	var prev *metav1.Condition
	for i := range before.Conditions {
		if before.Conditions[i].Type == v1alpha1.ConditionReady {
			prev = &before.Conditions[i]
		}
	}
	if prev != nil && prev.Reason == o.Reason {
		return
	}
	if prev == nil && o.Ready {
		// The first projection already has its SecretProjected Event; one write less per secret.
		return
	}
	eventType := corev1.EventTypeNormal
	if !o.Ready {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(msec, nil, eventType, o.Reason, "Reconcile", "%s", o.Message)
}

func (r *ManagedSecretReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// jobToManagedSecret maps a rotation Job (made by our CronJob, or by rotate-now) to its
// ManagedSecret through the annotation the Job template carries; the reconcile decides whether
// the Job is trusted.
func jobToManagedSecret(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetAnnotations()[v1alpha1.AnnotationManagedSecretName]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// policyIndex indexes ManagedSecrets by the RotationPolicy they reference.
const policyIndex = "spec.rotation.policyRef.name"

func (r *ManagedSecretReconciler) policyToManagedSecrets(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.ManagedSecretList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{policyIndex: o.GetName()}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, m := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: m.Name}})
	}
	return out
}

// SetupWithManager registers the controller: it reacts to spec changes, annotation changes and
// deletion of ManagedSecrets, and to changes of the objects it owns (Secrets as metadata only).
func (r *ManagedSecretReconciler) SetupWithManager(mgr ctrl.Manager) error {
	workers := r.Workers
	if workers <= 0 {
		workers = 4
	}
	// One secret's versions, Secrets and Jobs are listed through this index (see
	// objects.IndexManagedSecretUID); the AWS API's store uses it too.
	for _, obj := range []client.Object{&v1alpha1.SecretVersion{}, secretMetaObject(), &batchv1.Job{}} {
		informer, err := mgr.GetCache().GetInformer(context.Background(), obj, cache.BlockUntilSynced(false))
		if err != nil {
			return err
		}
		if err := informer.AddIndexers(objects.ManagedSecretUIDIndexers()); err != nil {
			return err
		}
	}
	r.indexed = true
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ManagedSecret{}, policyIndex, func(o client.Object) []string {
		if rot := o.(*v1alpha1.ManagedSecret).Spec.Rotation; rot != nil {
			return []string{rot.PolicyRef.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ManagedSecret{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{},
			deletionPredicate{},
		))).
		Watches(&v1alpha1.SecretVersion{}, handler.EnqueueRequestsFromMapFunc(controllingManagedSecret)).
		// A version a restore brought back is owned by no live object (or by the old UID): it
		// wakes the ManagedSecret of its name, which adopts it (restore.go).
		Watches(&v1alpha1.SecretVersion{}, handler.EnqueueRequestsFromMapFunc(restoredVersionToManagedSecret), builder.WithPredicates(predicate.NewPredicateFuncs(orphanVersion))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(controllingManagedSecret), builder.OnlyMetadata).
		Watches(&batchv1.CronJob{}, handler.EnqueueRequestsFromMapFunc(controllingManagedSecret)).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(jobToManagedSecret)).
		Watches(&v1alpha1.RotationPolicy{}, handler.EnqueueRequestsFromMapFunc(r.policyToManagedSecrets)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// controllingManagedSecret wakes the ManagedSecret that controls an object (versions, projected
// and material Secrets, CronJobs). It does what Owns' handler does without asking the REST mapper,
// on every event, whether the owner's kind is namespaced (a ManagedSecret always is): those
// lookups made about a sixteenth of the operator's allocations while secrets were created.
func controllingManagedSecret(_ context.Context, o client.Object) []reconcile.Request {
	name, ok := objects.ControllingManagedSecret(o)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// deletionPredicate passes updates that start a deletion.
type deletionPredicate struct{ predicate.Funcs }

func (deletionPredicate) Update(e event.UpdateEvent) bool {
	return e.ObjectNew.GetDeletionTimestamp() != nil
}
