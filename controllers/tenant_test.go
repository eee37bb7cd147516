package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
)

// The tenant boundary (README, "Threat model"): each test plays the attacker as a restricted,
// impersonated user holding only the rights named, and asserts on what they could read, write or
// stop.

// tenantClient is a client for a user who holds only the given rules in the namespace.
func tenantClient(t *testing.T, ns, user string, rules ...rbacv1.PolicyRule) client.Client {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}
	for _, o := range []client.Object{role, binding} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitForGrant(t, ns, rbacv1.UserKind, user, rules)
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	cl, err := client.New(c, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func rule(group, resource string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
}

const ksmGroup = "kube-secrets-manager.io"

// requestSecret is a request Secret as the plugin writes it, controlled by the ManagedSecret.
func requestSecret(m *v1alpha1.ManagedSecret, name string, req request.Request, val []byte) *corev1.Secret {
	yes := true
	reqJSON, _ := json.Marshal(req)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: name, Labels: map[string]string{
			v1alpha1.LabelManagedSecretUID: string(m.UID), v1alpha1.LabelRole: request.RoleRequest},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ManagedSecret", Name: m.Name, UID: m.UID, Controller: &yes}}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{request.KeyRequest: reqJSON},
	}
	if val != nil {
		sec.Data[request.KeyValue] = val
		rememberData(map[string][]byte{"value": val})
	}
	return sec
}

// putByRequest puts value into m with a request Secret that c creates and confirms, as the plugin
// does, and fails the test unless the operator answers with success. It returns the request.
func putByRequest(t *testing.T, c client.Client, m *v1alpha1.ManagedSecret, name, token string, value []byte) *corev1.Secret {
	t.Helper()
	put := requestSecret(m, name, request.Request{Op: request.OpPut, ClientRequestToken: token}, value)
	if err := c.Create(context.Background(), put); err != nil {
		t.Fatal(err)
	}
	confirmRequest(t, c, m, put, request.OpPut)
	if res, _ := answerOf(t, put); !res.OK {
		t.Fatalf("put %s: %+v", name, res)
	}
	return put
}

// confirmRequest writes the request's confirmation on the ManagedSecret, as the plugin does.
func confirmRequest(t *testing.T, c client.Client, m *v1alpha1.ManagedSecret, sec *corev1.Secret, op string) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		request.AnnotationPrefix + sec.Name: request.Confirmation(op, string(sec.UID), sec.ResourceVersion)}}})
	if err := c.Patch(context.Background(), &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name}},
		client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// answerOf waits for the operator's answer on a request Secret.
func answerOf(t *testing.T, sec *corev1.Secret) (request.Result, []byte) {
	t.Helper()
	var res request.Result
	var val []byte
	eventually(t, "the answer to "+sec.Name, func() error {
		got := &corev1.Secret{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(sec), got); err != nil {
			return err
		}
		ans, ok := got.Annotations[request.AnnotationResult]
		if !ok {
			return fmt.Errorf("not answered yet")
		}
		var err error
		res, err = request.DecodeResult(ans)
		val = got.Data[request.KeyValue]
		rememberData(map[string][]byte{"value": val})
		return err
	})
	return res, val
}

func waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	eventually(t, obj.GetName()+" deleted", func() error {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("still there")
	})
}

func waitEvent(t *testing.T, ns, reason, contains string) {
	t.Helper()
	eventually(t, "Event "+reason, func() error {
		list := eventsFor(t, ns)
		for _, e := range list {
			if e.Reason == reason && strings.Contains(e.Note, contains) {
				return nil
			}
		}
		return fmt.Errorf("no %s Event mentioning %q among %d", reason, contains, len(list))
	})
}

// 1. Request Secrets the operator cannot answer, written by someone who may only create Secrets,
// never block the ManagedSecret: a rotation in flight finishes, other requests are answered, the
// projection follows, and the bad requests are deleted.
func TestBadRequestsNeverBlockTheSecret(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	m := createReady(t, rotated(ns, "victim", "pw"))
	attacker := tenantClient(t, ns, "attacker", rule("", "secrets", "create"))

	// A rotation is in flight: its Job has set and tested the pending value.
	cj := cronJobOf(t, ns, "victim")
	job := startJob(t, cj, "rot-1")
	dir, _ := material(t, ns, cj, job)
	if code, out := runPod(t, dir, job); code != 0 {
		t.Fatal(out)
	}

	yes := true
	immutable := requestSecret(m, "ksm-request-frozen", request.Request{Op: request.OpGet}, nil)
	immutable.Immutable = &yes
	padded := requestSecret(m, "ksm-request-padded", request.Request{Op: request.OpPut, ClientRequestToken: "33333333-aaaa-bbbb-cccc-000000000003"},
		bytes.Repeat([]byte("x"), 1000*1000))
	typed := requestSecret(m, "ksm-request-typed", request.Request{Op: request.OpGet}, nil)
	typed.Type = "kubernetes.io/basic-auth"
	typed.Data["username"] = []byte("x")
	for _, bad := range []*corev1.Secret{immutable, padded, typed} {
		if err := attacker.Create(ctx, bad); err != nil {
			t.Fatalf("the attacker's %s: %v", bad.Name, err)
		}
	}

	finishJob(t, job, true)
	afterRotation := waitRotated(t, ns, "victim", m.Status.CurrentVersionID)

	// A legitimate put after the bad requests is answered and projected.
	putByRequest(t, k8s, m, "ksm-request-legit", "44444444-aaaa-bbbb-cccc-000000000004", []byte(`{"password":"CANARY-after-bad-requests"}`))
	eventually(t, "projection follows the put", func() error {
		if v := projectedValue(t, ns, "victim")["password"]; v != "CANARY-after-bad-requests" {
			return fmt.Errorf("projected %q", v)
		}
		return nil
	})
	for _, bad := range []*corev1.Secret{immutable, padded, typed} {
		waitGone(t, bad)
	}
	// Similar Events on one object are merged into a series, which keeps the first note.
	waitEvent(t, ns, v1alpha1.ReasonRequestRefused, "deleted unanswered")
	// The projected Secret is written before the status that names the new AWSCURRENT, and the
	// status from before the put was Ready too: wait for the move rather than the first Ready.
	eventually(t, "status names the put's version as AWSCURRENT", func() error {
		if final := getMsec(t, ns, "victim"); final.Status.CurrentVersionID == afterRotation.Status.CurrentVersionID {
			return fmt.Errorf("AWSCURRENT did not move to the put's version")
		}
		return nil
	})
	waitReady(t, ns, "victim", metav1.ConditionTrue, v1alpha1.ReasonReady)
}

// 2. Reading a version other than AWSCURRENT needs the confirmation on the ManagedSecret that
// changes need; reading AWSCURRENT needs no more than reading the projected Secret.
func TestReadingOtherVersionsNeedsConfirmation(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "app"))
	first := projectedValue(t, ns, "app")["password"]
	putByRequest(t, k8s, m, "ksm-request-second", "55555555-aaaa-bbbb-cccc-000000000005", []byte(`{"password":"CANARY-second"}`))
	eventually(t, "status shows the previous version", func() error {
		if m = getMsec(t, ns, "app"); m.Status.PreviousVersionID == "" {
			return fmt.Errorf("no previous version in status yet")
		}
		return nil
	})

	reader := tenantClient(t, ns, "reader", rule("", "secrets", "create", "get", "delete"), rule(ksmGroup, "managedsecrets", "get"))
	current := requestSecret(m, "ksm-request-current", request.Request{Op: request.OpGet}, nil)
	if err := reader.Create(ctx, current); err != nil {
		t.Fatal(err)
	}
	if res, val := answerOf(t, current); !res.OK || !strings.Contains(string(val), "CANARY-second") {
		t.Fatalf("reading AWSCURRENT with Secret rights: %+v", res)
	}

	for _, req := range []request.Request{{Op: request.OpGet, Stage: v1alpha1.StagePrevious}, {Op: request.OpGet, VersionID: m.Status.PreviousVersionID}} {
		sneaky := requestSecret(m, "ksm-request-sneaky-"+fmt.Sprint(len(req.Stage)), req, nil)
		if err := reader.Create(ctx, sneaky); err != nil {
			t.Fatal(err)
		}
		// The reader cannot confirm it (no patch on the ManagedSecret).
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
			request.AnnotationPrefix + sneaky.Name: request.Confirmation(req.Op, string(sneaky.UID), sneaky.ResourceVersion)}}})
		if err := reader.Patch(ctx, m.DeepCopy(), client.RawPatch(types.MergePatchType, patch)); !apierrors.IsForbidden(err) {
			t.Fatalf("the reader could confirm: %v", err)
		}
		// However often the secret is reconciled, and after the request's time to live, the
		// request gets no value.
		r := testReconciler(t)
		key := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "app"}}
		if _, err := r.Reconcile(ctx, key); err != nil {
			t.Fatal(err)
		}
		got := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(sneaky), got); err != nil {
			t.Fatal(err)
		}
		if _, answered := got.Annotations[request.AnnotationResult]; answered || len(got.Data[request.KeyValue]) > 0 {
			t.Fatalf("an unconfirmed read of another version was answered: %v", got.Annotations)
		}
		r.Now = func() time.Time { return time.Now().Add(requestTTL + time.Minute) }
		if _, err := r.Reconcile(ctx, key); err != nil {
			t.Fatal(err)
		}
		res, val := answerOf(t, sneaky)
		if res.OK || len(val) != 0 || !strings.Contains(res.Error, "confirmed") {
			t.Fatalf("an unconfirmed read of another version: %+v (value %d bytes)", res, len(val))
		}
	}

	// With the confirmation (patch on the ManagedSecret), the previous version is read.
	writer := tenantClient(t, ns, "writer", rule("", "secrets", "create", "get", "delete"), rule(ksmGroup, "managedsecrets", "get", "patch"))
	legit := requestSecret(m, "ksm-request-previous", request.Request{Op: request.OpGet, Stage: v1alpha1.StagePrevious}, nil)
	if err := writer.Create(ctx, legit); err != nil {
		t.Fatal(err)
	}
	confirmRequest(t, writer, m, legit, request.OpGet)
	res, val := answerOf(t, legit)
	var previous map[string]string
	if err := json.Unmarshal(val, &previous); !res.OK || err != nil || previous["password"] != first {
		t.Fatalf("a confirmed read of AWSPREVIOUS: %+v", res)
	}
}

// 3. Secrets and Jobs carrying the operator's label, made by anyone in any namespace, do not grow
// its memory: Secrets are cached as metadata only, and every cached object is trimmed.
func TestForgedLabelsDoNotFillTheOperatorsMemory(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	attacker := tenantClient(t, ns, "flooder", rule("", "secrets", "create", "deletecollection"), rule("batch", "jobs", "create", "deletecollection"))
	t.Cleanup(func() {
		_ = k8s.DeleteAllOf(context.Background(), &corev1.Secret{}, client.InNamespace(ns))
		_ = k8s.DeleteAllOf(context.Background(), &batchv1.Job{}, client.InNamespace(ns))
	})
	yes := true
	owner := []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ManagedSecret", Name: "ghost", UID: "00000000-0000-0000-0000-00000000dead", Controller: &yes}}
	forged := map[string]string{v1alpha1.LabelManagedSecretUID: "00000000-0000-0000-0000-00000000dead", v1alpha1.LabelRole: v1alpha1.RoleProjection, v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}
	heapBefore := liveHeap()
	const secrets, jobs = 300, 40
	for i := 0; i < secrets; i++ {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("flood-%03d", i), Labels: forged, OwnerReferences: owner,
			Annotations: map[string]string{"kube-secrets-manager.io/padding": strings.Repeat("p", 100*1024)}},
			Data: map[string][]byte{"blob": bytes.Repeat([]byte{byte(i)}, 900*1024)}}
		if err := attacker.Create(ctx, sec); err != nil {
			t.Fatalf("creating %s: %v", sec.Name, err)
		}
	}
	for i := 0; i < jobs; i++ {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("flood-%03d", i), Labels: forged,
			Annotations: map[string]string{"padding": strings.Repeat("p", 200*1024)}},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "c", Image: "x", Args: []string{strings.Repeat("a", 200*1024)}}}}}}}
		if err := attacker.Create(ctx, job); err != nil {
			t.Fatalf("creating Job %s: %v", job.Name, err)
		}
	}
	// The operator's informers have seen every one of them.
	eventually(t, "the operator's caches hold the forged objects", func() error {
		metas := &metav1.PartialObjectMetadataList{}
		metas.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
		if err := suiteMgr.GetCache().List(ctx, metas, client.InNamespace(ns)); err != nil {
			return err
		}
		jl := &batchv1.JobList{}
		if err := suiteMgr.GetCache().List(ctx, jl, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(metas.Items) != secrets || len(jl.Items) != jobs {
			return fmt.Errorf("%d Secrets and %d Jobs cached", len(metas.Items), len(jl.Items))
		}
		return nil
	})
	grown := liveHeap() - heapBefore
	t.Logf("live heap grew by %.1f MiB for %d forged 1 MiB Secrets and %d forged Jobs", float64(grown)/(1<<20), secrets, jobs)
	if grown > 10<<20 {
		t.Fatalf("the operator's live heap grew by %.1f MiB for objects it does not own", float64(grown)/(1<<20))
	}
}

func liveHeap() int64 {
	var ms runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// 3b. A Job that carries the operator's label and even names the rotation CronJob as its
// controller is not served unless the CronJob controller (or the operator) started it: no
// pending version is made and no material is written for it.
func TestForgedJobIsNeverServed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	createReady(t, rotated(ns, "victim", "pw"))
	cj := cronJobOf(t, ns, "victim")
	attacker := tenantClient(t, ns, "jobber", rule("batch", "jobs", "create"), rule("batch", "cronjobs", "get"))
	seen := &batchv1.CronJob{}
	if err := attacker.Get(ctx, client.ObjectKeyFromObject(cj), seen); err != nil {
		t.Fatal(err)
	}
	yes := true
	forged := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forged",
		Labels: seen.Spec.JobTemplate.Labels, Annotations: seen.Spec.JobTemplate.Annotations,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: seen.Name, UID: seen.UID, Controller: &yes}}},
		Spec: *seen.Spec.JobTemplate.Spec.DeepCopy()}
	if err := attacker.Create(ctx, forged); err != nil {
		t.Fatal(err)
	}
	r := testReconciler(t)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "victim"}}); err != nil {
		t.Fatal(err)
	}
	m := getMsec(t, ns, "victim")
	if m.Status.PendingVersionID != "" || (m.Status.Rotation != nil && m.Status.Rotation.ActiveJobUID != "") {
		t.Fatalf("the forged Job was served: %+v", m.Status.Rotation)
	}
	if _, err := secret(t, ns, materialName(m)); !apierrors.IsNotFound(err) {
		t.Fatalf("rotation material exists for a forged Job: %v", err)
	}
	for _, v := range versions(t, ns) {
		if len(v.Spec.Stages) == 1 && v.Spec.Stages[0] == v1alpha1.StagePending {
			t.Fatal("a pending version was made for a forged Job")
		}
	}
	// The same Job shape, started by the CronJob controller, is served.
	job := startJob(t, cj, "rot-1")
	if _, req := material(t, ns, cj, job); req.JobUID != string(job.UID) {
		t.Fatal("the real Job was not served")
	}
}

// 4. fromSecret is not a confused deputy: someone who may create ManagedSecrets but not read
// Secrets cannot copy a Secret without its owner's consent, nor give the projected Secret labels
// that other controllers act on.
func TestFromSecretIsNotAConfusedDeputy(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	victim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-root"}, Data: map[string][]byte{"password": []byte("CANARY-db-root")}}
	if err := k8s.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	attacker := tenantClient(t, ns, "copier", rule(ksmGroup, "managedsecrets", "create", "get"))
	if err := attacker.Get(ctx, client.ObjectKeyFromObject(victim), &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the attacker may read Secrets, so the test proves nothing: %v", err)
	}
	steal := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "steal"},
		Spec: v1alpha1.ManagedSecretSpec{FromSecret: &v1alpha1.LocalObjectReference{Name: "db-root"}, Target: &v1alpha1.TargetSpec{Name: "stolen"}}}
	if err := attacker.Create(ctx, steal); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "steal", metav1.ConditionFalse, v1alpha1.ReasonSourceNotAllowed)
	if _, err := secret(t, ns, "stolen"); !apierrors.IsNotFound(err) {
		t.Fatalf("the Secret was copied without consent: %v", err)
	}
	if n := len(versions(t, ns)); n != 0 {
		t.Fatalf("%d versions made from a Secret that did not consent", n)
	}

	export := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "export"},
		Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{}, Target: &v1alpha1.TargetSpec{
			Annotations: map[string]string{"replicator.v1.mittwald.de/replicate-to": "*"}}}}
	if err := attacker.Create(ctx, export); err != nil {
		t.Fatal(err)
	}
	got := waitReady(t, ns, "export", metav1.ConditionFalse, v1alpha1.ReasonInvalidTarget)
	if !strings.Contains(readyOf(got).Message, "replicator.v1.mittwald.de/replicate-to") {
		t.Fatalf("the message does not name the key: %s", readyOf(got).Message)
	}
	if _, err := secret(t, ns, "export"); !apierrors.IsNotFound(err) {
		t.Fatalf("a Secret with a replication annotation was projected: %v", err)
	}
	// The recommended app.kubernetes.io/ labels are fine.
	fine := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fine"},
		Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{}, Target: &v1alpha1.TargetSpec{
			Labels: map[string]string{"app.kubernetes.io/part-of": "shop"}}}}
	if err := attacker.Create(ctx, fine); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "fine", metav1.ConditionTrue, v1alpha1.ReasonReady)
}

// 5. A RotationPolicy is not a way to run pods with the operator's rights, nor to read another
// ManagedSecret's credentials.
func TestRotationPolicyCannotBorrowTheOperator(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	author := tenantClient(t, ns, "author", rule(ksmGroup, "rotationpolicies", "create", "get"), rule(ksmGroup, "managedsecrets", "create", "get", "patch"))
	timeout := int64(60)
	refused := map[string]func(*v1alpha1.RotationPolicySpec){
		"hostnet": func(s *v1alpha1.RotationPolicySpec) { s.Pod = &v1alpha1.RotationPodSpec{HostNetwork: true} },
		"miner": func(s *v1alpha1.RotationPolicySpec) {
			s.Strategy = v1alpha1.StrategyCustom
			s.Pod = &v1alpha1.RotationPodSpec{Image: "docker.io/evil/miner:latest"}
		},
		"admin-sa": func(s *v1alpha1.RotationPolicySpec) {
			s.Pod = &v1alpha1.RotationPodSpec{ServiceAccountName: "cluster-admin"}
		},
	}
	for name, mutate := range refused {
		if err := author.Create(ctx, policy(ns, name, v1alpha1.StrategyPassword, mutate)); err != nil {
			t.Fatal(err)
		}
		if err := author.Create(ctx, rotated(ns, "uses-"+name, name)); err != nil {
			t.Fatal(err)
		}
	}
	allowed := policy(ns, "allowed", v1alpha1.StrategyCustom, func(s *v1alpha1.RotationPolicySpec) {
		s.Pod = &v1alpha1.RotationPodSpec{Image: "registry.example/rotators/pg:1.0", ServiceAccountName: "rotator", TimeoutSeconds: &timeout}
	})
	if err := author.Create(ctx, allowed); err != nil {
		t.Fatal(err)
	}
	createReady(t, rotated(ns, "uses-allowed", "allowed"))
	waitScheduled(t, ns, "uses-allowed")
	// The custom rotation contract's pod: the policy's image with its own entrypoint, the Job's
	// UID in JOB_UID, the material mounted read-only, the allowed service account, no token.
	custom := cronJobOf(t, ns, "uses-allowed").Spec.JobTemplate.Spec.Template.Spec
	ctr := custom.Containers[0]
	if ctr.Image != "registry.example/rotators/pg:1.0" || len(ctr.Args) != 0 || len(ctr.Command) != 0 ||
		len(ctr.Env) != 1 || ctr.Env[0].Name != "JOB_UID" || ctr.Env[0].ValueFrom == nil ||
		len(ctr.VolumeMounts) != 1 || ctr.VolumeMounts[0].MountPath != "/var/run/kube-secrets-manager/rotation" || !ctr.VolumeMounts[0].ReadOnly ||
		custom.ServiceAccountName != "rotator" || custom.AutomountServiceAccountToken == nil || *custom.AutomountServiceAccountToken || custom.HostNetwork {
		t.Fatalf("the custom rotation pod: %+v", custom)
	}
	for name := range refused {
		eventually(t, "policy "+name+" refused", func() error {
			p := &v1alpha1.RotationPolicy{}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, p); err != nil {
				return err
			}
			for _, c := range p.Status.Conditions {
				if c.Type == v1alpha1.ConditionReady && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonPolicyNotAllowed {
					return nil
				}
			}
			return fmt.Errorf("%+v", p.Status.Conditions)
		})
		eventually(t, "uses-"+name+" not scheduled", func() error {
			c := rotationCondition(getMsec(t, ns, "uses-"+name), v1alpha1.ConditionRotationScheduled)
			if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonPolicyNotAllowed {
				return fmt.Errorf("%+v", c)
			}
			return nil
		})
		m := getMsec(t, ns, "uses-"+name)
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: cronJobName(m)}, &batchv1.CronJob{}); !apierrors.IsNotFound(err) {
			t.Errorf("a CronJob exists for the refused policy %s: %v", name, err)
		}
	}

	// The superuser's credentials are lent only to the policies it names.
	admin := createReady(t, &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-admin"},
		Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{Fields: map[string]string{
			"engine": "postgres", "host": "127.0.0.1", "username": "postgres"}}}})
	if err := author.Create(ctx, policy(ns, "alt", v1alpha1.StrategyPostgreSQLAlternatingUsers, func(s *v1alpha1.RotationPolicySpec) {
		s.SuperuserSecretRef = &v1alpha1.LocalObjectReference{Name: admin.Name}
	})); err != nil {
		t.Fatal(err)
	}
	app := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: v1alpha1.ManagedSecretSpec{Generate: &v1alpha1.GenerateSource{Fields: map[string]string{
			"engine": "postgres", "host": "127.0.0.1", "username": "app"}},
			Rotation: &v1alpha1.RotationSpec{PolicyRef: v1alpha1.LocalObjectReference{Name: "alt"}}}}
	if err := author.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	waitScheduled(t, ns, "app")
	cj := cronJobOf(t, ns, "app")
	startJob(t, cj, "rot-1")
	eventually(t, "rotation refused for want of consent", func() error {
		c := rotationCondition(getMsec(t, ns, "app"), v1alpha1.ConditionRotationFailed)
		if c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonSuperuserNotAllowed {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	if sec, err := secret(t, ns, materialName(getMsec(t, ns, "app"))); err == nil && len(sec.Data[rotation.FileSuperuser]) > 0 {
		t.Fatal("the superuser's credentials reached the rotation material without its consent")
	}
	superuserFor(t, ns, "db-admin", "alt")
	nudge(t, ns, "app") // a refused rotation is retried every 30 s; no need to wait for it
	eventually(t, "material with the superuser once it consents", func() error {
		sec, err := secret(t, ns, materialName(getMsec(t, ns, "app")))
		if err != nil {
			return err
		}
		if len(sec.Data[rotation.FileSuperuser]) == 0 {
			return fmt.Errorf("no superuser.json yet")
		}
		return nil
	})
}

// 6. The operator never writes into, nor deletes, a CronJob or Secret of a name it needs that it
// does not control.
func TestForeignObjectsUnderOurNamesAreLeftAlone(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	m := createReady(t, generated(ns, "victim"))
	squatter := tenantClient(t, ns, "squatter", rule("", "secrets", "create"), rule("batch", "cronjobs", "create"), rule(ksmGroup, "managedsecrets", "get"))
	foreignCJ := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cronJobName(m)},
		Spec: batchv1.CronJobSpec{Schedule: "0 0 1 1 *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "mine"}}}}}}}}
	foreignMaterial := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: materialName(m)}, Data: map[string][]byte{"mine": []byte("keep")}}
	for _, o := range []client.Object{foreignCJ, foreignMaterial} {
		if err := squatter.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	patch := []byte(`{"spec":{"rotation":{"policyRef":{"name":"pw"}}}}`)
	if err := k8s.Patch(ctx, m.DeepCopy(), client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the CronJob conflict reported", func() error {
		c := rotationCondition(getMsec(t, ns, "victim"), v1alpha1.ConditionRotationFailed)
		if c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonObjectConflict {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	unchanged := func(o client.Object, rv string) {
		t.Helper()
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatalf("%s was deleted: %v", o.GetName(), err)
		}
		if o.GetResourceVersion() != rv {
			t.Fatalf("%s was changed", o.GetName())
		}
	}
	unchanged(&batchv1.CronJob{ObjectMeta: foreignCJ.ObjectMeta}, foreignCJ.ResourceVersion)

	// Without the CronJob conflict, rotation starts, but the material's name is taken: refused,
	// and the foreign Secret is untouched, also when rotation is detached again.
	if err := k8s.Delete(ctx, foreignCJ); err != nil {
		t.Fatal(err)
	}
	nudge(t, ns, "victim")
	cj := cronJobOf(t, ns, "victim")
	eventually(t, "the operator's own CronJob", func() error {
		fresh := &batchv1.CronJob{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(cj), fresh); err != nil {
			return err
		}
		if !isControlledBy(fresh, m) {
			return fmt.Errorf("not ours yet")
		}
		cj = fresh
		return nil
	})
	startJob(t, cj, "rot-1")
	eventually(t, "the material conflict reported", func() error {
		c := rotationCondition(getMsec(t, ns, "victim"), v1alpha1.ConditionRotationFailed)
		if c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonObjectConflict || !strings.Contains(c.Message, materialName(m)) {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	unchanged(&corev1.Secret{ObjectMeta: foreignMaterial.ObjectMeta}, foreignMaterial.ResourceVersion)
	detach := []byte(`{"spec":{"rotation":null}}`)
	if err := k8s.Patch(ctx, m.DeepCopy(), client.RawPatch(types.MergePatchType, detach)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rotation detached", func() error {
		if st := getMsec(t, ns, "victim").Status; st.Rotation != nil || st.ObservedGeneration != getMsec(t, ns, "victim").Generation {
			return fmt.Errorf("still rotating")
		}
		return nil
	})
	unchanged(&corev1.Secret{ObjectMeta: foreignMaterial.ObjectMeta}, foreignMaterial.ResourceVersion)
}

// Someone who may patch one ManagedSecret (RBAC resourceNames) cannot reach another through the
// stable id: pointing their secret's id at the victim's (and their target at the victim's
// projected Secret) would have made their secret look restored and adopt the victim's Secret,
// overwriting it with their value. The id cannot be changed once set (removing it, to start a
// restored secret over with a new value, still works), and the operator adopts only objects a
// ManagedSecret of the same name left behind.
func TestStableIDCannotBorrowAnotherSecret(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	victim := createReady(t, generated(ns, "victim"))
	mine := createReady(t, generated(ns, "mine"))
	t.Cleanup(func() {
		// The borrowed id leaves versions no key pass can open (they are bound to the old one):
		// they go with their secret, so that later tests can retire keys.
		if err := k8s.Delete(context.Background(), mine.DeepCopy()); err != nil {
			t.Error(err)
		}
		waitGone(t, mine.DeepCopy())
	})
	projected := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: targetName(victim)}, projected); err != nil {
		t.Fatal(err)
	}
	mallory := tenantClient(t, ns, "mallory", rbacv1.PolicyRule{APIGroups: []string{ksmGroup}, Resources: []string{"managedsecrets"},
		ResourceNames: []string{"mine"}, Verbs: []string{"get", "patch"}}, rule("", "secrets", "create"))
	borrow := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}},"spec":{"target":{"name":%q}}}`, v1alpha1.AnnotationSecretID, victim.UID, targetName(victim))
	err := mallory.Patch(ctx, mine.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(borrow)))
	if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "secret-id") {
		t.Fatalf("pointing the stable id at another secret: %v", err)
	}
	// Removing the id is allowed (the operator sets it to the UID again); setting another then is not.
	drop := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, v1alpha1.AnnotationSecretID)
	if err := mallory.Patch(ctx, mine.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(drop))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the id set to the UID again", func() error {
		if m := getMsec(t, ns, "mine"); m.Annotations[v1alpha1.AnnotationSecretID] != string(m.UID) {
			return fmt.Errorf("secret id %q", m.Annotations[v1alpha1.AnnotationSecretID])
		}
		return nil
	})
	if err := mallory.Patch(ctx, mine.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(borrow))); err == nil || !apierrors.IsInvalid(err) {
		t.Fatalf("pointing the stable id at another secret after removing it: %v", err)
	}

	// Where the chart's admission policies are not installed the patch goes through; the operator
	// still adopts nothing another live ManagedSecret controls, also once a value put after the
	// change (sealed for the borrowed id) makes the secret ready to project.
	withoutAdmissionPolicy(t, "kube-secrets-manager-secret-id")
	eventually(t, "the patch accepted without the policy", func() error {
		return mallory.Patch(ctx, getMsec(t, ns, "mine"), client.RawPatch(types.MergePatchType, []byte(borrow)))
	})
	m := getMsec(t, ns, "mine")
	putByRequest(t, mallory, m, "ksm-request-borrow", "66666666-aaaa-bbbb-cccc-000000000006", []byte(`{"password":"CANARY-borrowed"}`))
	eventually(t, "the victim's Secret refused as a target", func() error {
		c := meta.FindStatusCondition(getMsec(t, ns, "mine").Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Reason != v1alpha1.ReasonTargetConflict {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	after := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(projected), after); err != nil {
		t.Fatal(err)
	}
	if !isControlledBy(after, victim) || after.ResourceVersion != projected.ResourceVersion {
		t.Fatal("the victim's projected Secret was changed")
	}
}

// withoutAdmissionPolicy removes the binding of one of the bundle's admission policies until the
// test ends (as in a cluster installed without them), then puts it back.
func withoutAdmissionPolicy(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	if err := k8s.Get(ctx, types.NamespacedName{Name: name}, binding); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		restored := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: binding.Labels}, Spec: binding.Spec}
		if err := k8s.Create(ctx, restored); err != nil {
			t.Errorf("putting back %s: %v", name, err)
		}
	})
}

// 7. One value limit, AWS's, holds everywhere: the manager refuses a larger one, a request over it
// is refused without a write, and a value of exactly the limit is stored.
func TestOneValueLimitEverywhere(t *testing.T) {
	ctx := context.Background()
	o := suiteOpts
	o.ValueLimit = 512 * 1024
	if _, err := NewManager(ctx, cfg, o); err == nil || !strings.Contains(err.Error(), "65536") {
		t.Fatalf("a value limit the versions cannot hold was accepted: %v", err)
	}
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "app"))
	over := requestSecret(m, "ksm-request-over", request.Request{Op: request.OpPut, ClientRequestToken: "66666666-aaaa-bbbb-cccc-000000000006"}, bytes.Repeat([]byte("o"), 70000))
	if err := k8s.Create(ctx, over); err != nil {
		t.Fatal(err)
	}
	confirmRequest(t, k8s, m, over, request.OpPut)
	waitGone(t, over)
	waitEvent(t, ns, v1alpha1.ReasonRequestRefused, over.Name)
	exact := requestSecret(m, "ksm-request-exact", request.Request{Op: request.OpPut, ClientRequestToken: "77777777-aaaa-bbbb-cccc-000000000007"}, bytes.Repeat([]byte("e"), 65536))
	if err := k8s.Create(ctx, exact); err != nil {
		t.Fatal(err)
	}
	confirmRequest(t, k8s, m, exact, request.OpPut)
	if res, _ := answerOf(t, exact); !res.OK {
		t.Fatalf("a value of exactly 65536 bytes: %+v", res)
	}
	if n := len(versions(t, ns)); n != 2 {
		t.Fatalf("want the first version and the 65536-byte one, have %d", n)
	}
	waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)
}

// 8. A policy's CA bundle reaches the rotation pod's material as ca.crt.
func TestRotationMaterialCarriesTheCABundle(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	const ca = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword, func(s *v1alpha1.RotationPolicySpec) {
		s.TLS = &v1alpha1.RotationTLS{CABundle: ca}
	})); err != nil {
		t.Fatal(err)
	}
	createReady(t, rotated(ns, "app", "pw"))
	cj := cronJobOf(t, ns, "app")
	job := startJob(t, cj, "rot-1")
	dir, _ := material(t, ns, cj, job)
	if got := string(readFile(t, dir, rotation.FileCABundle)); got != ca {
		t.Fatalf("ca.crt = %q", got)
	}
}
