package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rollout"
)

// Rolling workloads (README, "Rolling workloads"). envtest has no kube-controller-manager: the
// tests play the Deployment, StatefulSet and DaemonSet controllers by writing the status a
// finished rollout has, and move the operator's clock past the coalesce window.

// How a pod template may use a Secret.
func envUsing(secret string) corev1.Container {
	return corev1.Container{Name: "app", Image: "registry.example/app:1", Env: []corev1.EnvVar{{Name: "DB_PASSWORD",
		ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "password"}}}}}
}

func envFromUsing(secret string) corev1.Container {
	return corev1.Container{Name: "sidecar", Image: "registry.example/sidecar:1", EnvFrom: []corev1.EnvFromSource{
		{Prefix: "TOKEN_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}
}

func plainContainer() corev1.Container {
	return corev1.Container{Name: "app", Image: "registry.example/app:1"}
}

func secretVolume(secret string) corev1.Volume {
	return corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}
}

func projectedVolume(secret string) corev1.Volume {
	return corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}}}
}

func podTemplate(name string, containers []corev1.Container, volumes ...corev1.Volume) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: containers, Volumes: volumes}}
}

func deployment(ns, name string, tmpl corev1.PodTemplateSpec) *appsv1.Deployment {
	one := int32(1)
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DeploymentSpec{
		Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: tmpl}}
}

func statefulSet(ns, name string, tmpl corev1.PodTemplateSpec) *appsv1.StatefulSet {
	one := int32(1)
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.StatefulSetSpec{
		Replicas: &one, ServiceName: name, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: tmpl}}
}

func daemonSet(ns, name string, tmpl corev1.PodTemplateSpec) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}, Template: tmpl}}
}

func rolloutOf(targets ...string) *v1alpha1.RolloutSpec {
	spec := &v1alpha1.RolloutSpec{}
	for _, t := range targets {
		kind, name, _ := strings.Cut(t, "/")
		spec.Targets = append(spec.Targets, v1alpha1.RolloutTarget{Kind: kind, Name: name})
	}
	return spec
}

func createAll(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

// templateOf reads a workload again and returns its generation and pod template annotations.
func templateOf(t *testing.T, obj client.Object) (int64, map[string]string) {
	t.Helper()
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Generation, o.Spec.Template.Annotations
	case *appsv1.StatefulSet:
		return o.Generation, o.Spec.Template.Annotations
	case *appsv1.DaemonSet:
		return o.Generation, o.Spec.Template.Annotations
	}
	t.Fatalf("not a workload: %T", obj)
	return 0, nil
}

// finishRollout writes the status the workload's controller writes once every replica runs the
// current pod template and is available.
func finishRollout(t *testing.T, obj client.Object) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "finish the rollout of "+obj.GetName(), func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			o.Status = appsv1.DeploymentStatus{ObservedGeneration: o.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
		case *appsv1.StatefulSet:
			rev := fmt.Sprintf("%s-%d", o.Name, o.Generation)
			o.Status = appsv1.StatefulSetStatus{ObservedGeneration: o.Generation, Replicas: 1, ReadyReplicas: 1, CurrentReplicas: 1, UpdatedReplicas: 1,
				AvailableReplicas: 1, CurrentRevision: rev, UpdateRevision: rev}
		case *appsv1.DaemonSet:
			o.Status = appsv1.DaemonSetStatus{ObservedGeneration: o.Generation, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
				UpdatedNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1}
		}
		return k8s.Status().Update(ctx, obj)
	})
}

// waitRolledOut waits for the RolledOut condition at the current generation and returns the
// ManagedSecret.
func waitRolledOut(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) *v1alpha1.ManagedSecret {
	t.Helper()
	var m *v1alpha1.ManagedSecret
	eventually(t, fmt.Sprintf("%s RolledOut=%s/%s", name, status, reason), func() error {
		m = getMsec(t, ns, name)
		c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRolledOut)
		if c == nil {
			return fmt.Errorf("no RolledOut condition: %+v", m.Status.Conditions)
		}
		if c.Status != status || c.Reason != reason || c.ObservedGeneration != m.Generation {
			return fmt.Errorf("RolledOut=%s/%s gen %d/%d: %s", c.Status, c.Reason, c.ObservedGeneration, m.Generation, c.Message)
		}
		return nil
	})
	return m
}

func rolloutTarget(m *v1alpha1.ManagedSecret, kind, name string) v1alpha1.RolloutTargetStatus {
	if m.Status.Rollout != nil {
		for _, t := range m.Status.Rollout.Targets {
			if t.Kind == kind && t.Name == name {
				return t
			}
		}
	}
	return v1alpha1.RolloutTargetStatus{}
}

// putValue changes a secret's value through the plugin and returns the new AWSCURRENT version
// once the operator has projected it.
func putValue(t *testing.T, ns, name, user string) string {
	t.Helper()
	before := getMsec(t, ns, name).Status.CurrentVersionID
	args := []string{"put", name, "-f", "-"}
	stdin := fmt.Sprintf(`{"username":"orders","password":"%s"}`, remember(fmt.Sprintf("CANARY-rollout-%d", time.Now().UnixNano())))
	var code int
	var errOut string
	if user == "" {
		code, _, errOut = plugin(t, ns, stdin, args...)
	} else {
		code, _, errOut = pluginAs(t, user, ns, stdin, args...)
	}
	if code != 0 {
		t.Fatalf("put %s: %d %s", name, code, errOut)
	}
	var current string
	eventually(t, name+" projects the new value", func() error {
		m := getMsec(t, ns, name)
		if current = m.Status.CurrentVersionID; current == before {
			return fmt.Errorf("AWSCURRENT still %s", before)
		}
		if m.Status.Rollout == nil || m.Status.Rollout.VersionID != current {
			return fmt.Errorf("rollout status %+v", m.Status.Rollout)
		}
		return nil
	})
	return current
}

func countEvents(t *testing.T, ns, reason, contains string) int {
	t.Helper()
	n := 0
	for _, e := range eventsFor(t, ns) {
		if e.Reason == reason && strings.Contains(e.Note, contains) {
			n++
			if e.Series != nil {
				n += int(e.Series.Count) - 1
			}
		}
	}
	return n
}

// Several secrets used by one workload change within the coalesce window: each workload that
// uses them (by env secretKeyRef, envFrom, a secret volume, a projected volume) is restarted once,
// with the annotation kubectl rollout restart sets and the operator's field manager, and only
// after the window; the first projection restarts nothing; status records the version each
// workload rolled to and when its rollout finished. No informer on workloads is started.
func TestRolloutRestartsEachConsumingWorkloadOnce(t *testing.T) {
	ns := newNamespace(t)
	web := deployment(ns, "web", podTemplate("web", []corev1.Container{envUsing("db"), envFromUsing("token")}))
	sts := statefulSet(ns, "cache", podTemplate("cache", []corev1.Container{plainContainer()}, secretVolume("db")))
	agent := daemonSet(ns, "agent", podTemplate("agent", []corev1.Container{plainContainer()}, projectedVolume("db")))
	createAll(t, web, sts, agent)
	db := generated(ns, "db")
	db.Spec.Rollout = rolloutOf("Deployment/web", "StatefulSet/cache", "DaemonSet/agent")
	token := generated(ns, "token")
	token.Spec.Rollout = rolloutOf("Deployment/web")
	createReady(t, db)
	createReady(t, token)

	// The first projection: every workload started with this value; nothing is restarted.
	for _, name := range []string{"db", "token"} {
		m := waitRolledOut(t, ns, name, metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
		if m.Status.Rollout.VersionID != m.Status.CurrentVersionID || m.Status.Rollout.ChangedTime != nil {
			t.Fatalf("%s: rollout status %+v", name, m.Status.Rollout)
		}
		for _, tg := range m.Status.Rollout.Targets {
			if tg.VersionID != m.Status.CurrentVersionID || !tg.Finished || tg.RestartedTime != nil || tg.Reason != "" {
				t.Fatalf("%s: target %+v after the first projection", name, tg)
			}
		}
	}
	for _, w := range []client.Object{web, sts, agent} {
		if gen, ann := templateOf(t, w); gen != 1 || ann[rollout.AnnotationRestartedAt] != "" {
			t.Fatalf("%s restarted by a first projection: generation %d, %v", w.GetName(), gen, ann)
		}
	}

	// Both values change; nothing restarts inside the window.
	dbVersion := putValue(t, ns, "db", "")
	tokenVersion := putValue(t, ns, "token", "")
	waitRolledOut(t, ns, "db", metav1.ConditionFalse, v1alpha1.ReasonRolloutWaiting)
	waitRolledOut(t, ns, "token", metav1.ConditionFalse, v1alpha1.ReasonRolloutWaiting)
	time.Sleep(time.Second)
	for _, w := range []client.Object{web, sts, agent} {
		if gen, _ := templateOf(t, w); gen != 1 {
			t.Fatalf("%s restarted inside the coalesce window", w.GetName())
		}
	}

	// The window passes: one restart per workload, whichever secret comes first.
	suiteClock.advance(t, rollout.DefaultWindow+time.Second)
	nudge(t, ns, "db")
	nudge(t, ns, "token")
	dbm := waitRolledOut(t, ns, "db", metav1.ConditionFalse, v1alpha1.ReasonRolloutInProgress)
	tokm := waitRolledOut(t, ns, "token", metav1.ConditionFalse, v1alpha1.ReasonRolloutInProgress)
	for _, w := range []client.Object{web, sts, agent} {
		gen, ann := templateOf(t, w)
		if gen != 2 || ann[rollout.AnnotationRestartedAt] == "" {
			t.Fatalf("%s: generation %d, annotations %v; want one restart", w.GetName(), gen, ann)
		}
		tg := rolloutTarget(dbm, kindOf(w), w.GetName())
		if tg.VersionID != dbVersion || tg.RestartedTime == nil || tg.Finished ||
			rollout.FormatRestartedAt(tg.RestartedTime.Time) != ann[rollout.AnnotationRestartedAt] {
			t.Fatalf("db's status of %s: %+v, annotation %s", w.GetName(), tg, ann[rollout.AnnotationRestartedAt])
		}
	}
	webForToken := rolloutTarget(tokm, "Deployment", "web")
	if webForToken.VersionID != tokenVersion || webForToken.RestartedTime == nil ||
		!webForToken.RestartedTime.Equal(rolloutTarget(dbm, "Deployment", "web").RestartedTime) {
		t.Fatalf("token's status of web %+v: the same restart covers both", webForToken)
	}
	if n := countEvents(t, ns, v1alpha1.ReasonWorkloadRestarted, "Deployment web"); n != 1 {
		t.Fatalf("%d restart Events for web, want 1", n)
	}
	waitEvent(t, ns, v1alpha1.ReasonRestartCoalesced, "Deployment web was restarted at")
	// The restart is the operator's: its field manager owns the annotation.
	_, _ = templateOf(t, web)
	if !hasFieldManager(web.ManagedFields, FieldManager, metav1.ManagedFieldsOperationUpdate) {
		t.Fatalf("no managed-fields entry of %s on the Deployment: %+v", FieldManager, web.ManagedFields)
	}

	// The workloads' controllers finish; the rollouts are recorded as finished.
	for _, w := range []client.Object{web, sts, agent} {
		finishRollout(t, w)
	}
	nudge(t, ns, "db")
	nudge(t, ns, "token")
	dbm = waitRolledOut(t, ns, "db", metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	waitRolledOut(t, ns, "token", metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	for _, tg := range dbm.Status.Rollout.Targets {
		if !tg.Finished || tg.VersionID != dbVersion {
			t.Fatalf("after the rollouts: %+v", tg)
		}
	}
	for _, w := range []client.Object{web, sts, agent} {
		if gen, _ := templateOf(t, w); gen != 2 {
			t.Fatalf("%s restarted again (generation %d)", w.GetName(), gen)
		}
	}

	// Targets are read with GETs: the operator's cache holds no workloads (a read of one fails,
	// as the manager refuses to start an informer on first use).
	err := suiteMgr.GetCache().Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "web"}, &appsv1.Deployment{})
	var notCached *cache.ErrResourceNotCached
	if !errors.As(err, &notCached) {
		t.Fatalf("the operator's cache answered a Deployment read with %v; it must hold no workload informer", err)
	}
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *appsv1.Deployment:
		return rollout.KindDeployment
	case *appsv1.StatefulSet:
		return rollout.KindStatefulSet
	case *appsv1.DaemonSet:
		return rollout.KindDaemonSet
	}
	return ""
}

// The tenant boundary: someone who may create and change ManagedSecrets, but not restart
// workloads, names a Deployment that does not use their Secret as a rollout target. The operator,
// which may patch every Deployment, never restarts it: RolledOut=False (TargetNotConsuming) and a
// Warning Event say why. A Deployment that does use their Secret, named in the same list, is
// restarted, so the decision was reached.
func TestRolloutNeverRestartsWorkloadsThatDoNotUseTheSecret(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	victim := deployment(ns, "victim", podTemplate("victim", []corev1.Container{envUsing("payments-db")}, secretVolume("payments-tls")))
	own := deployment(ns, "own", podTemplate("own", []corev1.Container{envUsing("evil")}))
	createAll(t, victim, own)
	attacker := tenantClient(t, ns, "mallory",
		rule(ksmGroup, "managedsecrets", "create", "get", "patch"), rule("", "secrets", "create", "get", "delete"))

	// The attacker cannot restart the victim themselves.
	restart := []byte(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}`)
	if err := attacker.Patch(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim"}},
		client.RawPatch(types.StrategicMergePatchType, restart)); !apierrors.IsForbidden(err) {
		t.Fatalf("the attacker's own restart of the victim: %v, want Forbidden", err)
	}

	evil := generated(ns, "evil")
	evil.Spec.Rollout = rolloutOf("Deployment/victim", "Deployment/own")
	if err := attacker.Create(ctx, evil); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "evil", metav1.ConditionTrue, v1alpha1.ReasonReady)
	m := waitRolledOut(t, ns, "evil", metav1.ConditionFalse, v1alpha1.ReasonTargetNotConsuming)
	if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRolledOut); !strings.Contains(c.Message, "Deployment victim") ||
		!strings.Contains(c.Message, "does not use Secret evil") {
		t.Fatalf("condition message %q", c.Message)
	}
	waitEvent(t, ns, v1alpha1.ReasonTargetNotConsuming, "Deployment victim is not restarted")

	// A new value from the attacker, and the window passes.
	version := putValue(t, ns, "evil", "mallory")
	suiteClock.advance(t, rollout.DefaultWindow+time.Second)
	nudge(t, ns, "evil")
	eventually(t, "the Deployment using the Secret is restarted", func() error {
		if _, ann := templateOf(t, own); ann[rollout.AnnotationRestartedAt] == "" {
			return fmt.Errorf("own not restarted yet")
		}
		if tg := rolloutTarget(getMsec(t, ns, "evil"), "Deployment", "own"); tg.VersionID != version {
			return fmt.Errorf("status of own: %+v", tg)
		}
		return nil
	})
	if gen, ann := templateOf(t, victim); gen != 1 || ann[rollout.AnnotationRestartedAt] != "" {
		t.Fatalf("the victim was restarted through the attacker's ManagedSecret: generation %d, %v", gen, ann)
	}
	for _, mf := range victim.ManagedFields {
		if mf.Manager == FieldManager {
			t.Fatalf("the operator wrote to the victim: %s", mf.FieldsV1.GetRawString())
		}
	}
	m = waitRolledOut(t, ns, "evil", metav1.ConditionFalse, v1alpha1.ReasonTargetNotConsuming)
	if tg := rolloutTarget(m, "Deployment", "victim"); tg.Reason != v1alpha1.ReasonTargetNotConsuming || tg.VersionID == version {
		t.Fatalf("status of the victim: %+v", tg)
	}
	// Warned once, not on every look.
	if n := countEvents(t, ns, v1alpha1.ReasonTargetNotConsuming, "Deployment victim"); n != 1 {
		t.Fatalf("%d TargetNotConsuming Events, want 1", n)
	}
}

// A target that does not exist is reported, restarts nothing, and is taken up (at the version of
// the moment, without a restart) once it appears.
func TestRolloutTargetNotFoundThenCreated(t *testing.T) {
	ns := newNamespace(t)
	m := generated(ns, "db")
	m.Spec.Rollout = rolloutOf("StatefulSet/later")
	createReady(t, m)
	waitRolledOut(t, ns, "db", metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound)
	waitEvent(t, ns, v1alpha1.ReasonTargetNotFound, "StatefulSet later does not exist")
	later := statefulSet(ns, "later", podTemplate("later", []corev1.Container{envUsing("db")}))
	createAll(t, later)
	nudge(t, ns, "db")
	got := waitRolledOut(t, ns, "db", metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	if tg := rolloutTarget(got, "StatefulSet", "later"); tg.VersionID != got.Status.CurrentVersionID || !tg.Finished || tg.RestartedTime != nil {
		t.Fatalf("status of the new target: %+v", tg)
	}
	if gen, _ := templateOf(t, later); gen != 1 {
		t.Fatal("a workload that appeared was restarted")
	}

	// Removing the rollout removes its status and condition.
	patch := []byte(`{"spec":{"rollout":null}}`)
	if err := k8s.Patch(context.Background(), getMsec(t, ns, "db"), client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rollout status removed", func() error {
		m := getMsec(t, ns, "db")
		if m.Status.Rollout != nil || meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRolledOut) != nil {
			return fmt.Errorf("still %+v", m.Status.Rollout)
		}
		return nil
	})
}

// Alternating users: the next rotation would set a new password for the user AWSPREVIOUS holds,
// which pods not yet rolled may still use. A rotation Job that arrives while the rollout to
// AWSCURRENT is unfinished is not served (no material, Rotating=False AwaitingRollout) until the
// workloads run AWSCURRENT; AWSPREVIOUS keeps its version meanwhile.
func TestAlternatingRotationWaitsForTheRollout(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createReady(t, generated(ns, "pg-admin"))
	superuserFor(t, ns, "pg-admin", "alt")
	if err := k8s.Create(ctx, policy(ns, "alt", v1alpha1.StrategyPostgreSQLAlternatingUsers, func(s *v1alpha1.RotationPolicySpec) {
		s.SuperuserSecretRef = &v1alpha1.LocalObjectReference{Name: "pg-admin"}
	})); err != nil {
		t.Fatal(err)
	}
	web := deployment(ns, "web", podTemplate("web", []corev1.Container{envUsing("app")}))
	createAll(t, web)
	app := rotated(ns, "app", "alt")
	app.Spec.Rollout = rolloutOf("Deployment/web")
	v1 := createReady(t, app).Status.CurrentVersionID
	waitScheduled(t, ns, "app")
	waitRolledOut(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonRolledOut)

	// The first rotation is not held: the workloads run AWSCURRENT.
	cj := cronJobOf(t, ns, "app")
	job1 := startJob(t, cj, "rot-1")
	material(t, ns, cj, job1)
	finishJob(t, job1, true)
	v2 := waitRotated(t, ns, "app", v1).Status.CurrentVersionID

	// The next Job arrives before the workloads run v2.
	job2 := startJob(t, cj, "rot-2")
	awaiting := func(what string) {
		t.Helper()
		eventually(t, what, func() error {
			m := getMsec(t, ns, "app")
			c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRotating)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonAwaitingRollout || !strings.Contains(c.Message, "Deployment web") {
				return fmt.Errorf("Rotating %+v", c)
			}
			if m.Status.Rotation.ActiveJobName != "" || m.Status.PreviousVersionID != v1 || m.Status.CurrentVersionID != v2 {
				return fmt.Errorf("rotation %+v, previous %s", m.Status.Rotation, m.Status.PreviousVersionID)
			}
			return nil
		})
		if _, err := secret(t, ns, cj.Spec.JobTemplate.Spec.Template.Spec.Volumes[0].Secret.SecretName); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: the held Job got its material (%v)", what, err)
		}
	}
	awaiting("the second rotation waits inside the coalesce window")

	suiteClock.advance(t, rollout.DefaultWindow+time.Second)
	nudge(t, ns, "app")
	waitRolledOut(t, ns, "app", metav1.ConditionFalse, v1alpha1.ReasonRolloutInProgress)
	awaiting("the second rotation waits while the Deployment rolls out")

	// The Deployment finishes rolling out v2: the held Job is served.
	finishRollout(t, web)
	nudge(t, ns, "app")
	material(t, ns, cj, job2)
	waitRolledOut(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonRolledOut)
	m := getMsec(t, ns, "app")
	if c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRotating); c.Status != metav1.ConditionTrue || m.Status.Rotation.ActiveJobName != "rot-2" {
		t.Fatalf("Rotating %+v, rotation %+v", c, m.Status.Rotation)
	}
}

// Single user: the old password stops working when the rotation finishes, whatever the pods
// do, so nothing is gained by holding the next rotation; it is served at once.
func TestSingleUserRotationIsNotHeldByTheRollout(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "single", v1alpha1.StrategyPostgreSQLSingleUser)); err != nil {
		t.Fatal(err)
	}
	createAll(t, deployment(ns, "web", podTemplate("web", []corev1.Container{envUsing("app")})))
	app := rotated(ns, "app", "single")
	app.Spec.Rollout = rolloutOf("Deployment/web")
	v1 := createReady(t, app).Status.CurrentVersionID
	waitScheduled(t, ns, "app")
	cj := cronJobOf(t, ns, "app")
	job1 := startJob(t, cj, "rot-1")
	material(t, ns, cj, job1)
	finishJob(t, job1, true)
	waitRotated(t, ns, "app", v1)
	job2 := startJob(t, cj, "rot-2")
	material(t, ns, cj, job2)
	waitRolledOut(t, ns, "app", metav1.ConditionFalse, v1alpha1.ReasonRolloutWaiting)
}

// spec.rollout is checked by the API server, with messages that say what to fix.
func TestRolloutTargetsAreValidated(t *testing.T) {
	ns := newNamespace(t)
	many := "targets: ["
	for i := range 21 {
		many += fmt.Sprintf("{kind: Deployment, name: w%d},", i)
	}
	many += "]"
	cases := []struct{ name, rollout, want string }{
		{"unknown kind", "targets: [{kind: CronJob, name: nightly}]", "rollout target kind must be Deployment, StatefulSet or DaemonSet"},
		{"lower-case kind", "targets: [{kind: deployment, name: web}]", "rollout target kind must be Deployment, StatefulSet or DaemonSet"},
		{"bad name", "targets: [{kind: Deployment, name: Web_1}]", "rollout target name must be a valid workload name"},
		{"no name", "targets: [{kind: Deployment}]", "Required value"},
		{"duplicate", "targets: [{kind: Deployment, name: web}, {kind: Deployment, name: web}]", "Duplicate value"},
		{"too many", many, "must have at most 20 items"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := &unstructured.Unstructured{}
			manifest := "apiVersion: kube-secrets-manager.io/v1alpha1\nkind: ManagedSecret\nspec:\n  rollout:\n    " + c.rollout
			if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
				t.Fatal(err)
			}
			obj.SetNamespace(ns)
			obj.SetName("bad")
			err := k8s.Create(context.Background(), obj, client.FieldValidation(metav1.FieldValidationStrict))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v does not say %q", err, c.want)
			}
		})
	}
	// The same name under two kinds is two targets.
	ok := generated(ns, "ok")
	ok.Spec.Rollout = rolloutOf("Deployment/web", "StatefulSet/web", "DaemonSet/web")
	if err := k8s.Create(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
}

// The operator may get and patch workloads (to restart them), nothing more: no list or watch (no
// informer), no update, create or delete.
func TestRolloutPermissions(t *testing.T) {
	ctx := context.Background()
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:kube-secrets-manager", "system:authenticated"}
	for _, resource := range []string{"deployments", "statefulsets", "daemonsets"} {
		for verb, want := range map[string]bool{"get": true, "patch": true, "list": false, "watch": false, "update": false, "create": false, "delete": false} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: operatorServiceAccount, Groups: groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "team-a", Verb: verb, Group: "apps", Resource: resource}}}
			if err := k8s.Create(ctx, sar); err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed != want {
				t.Errorf("the operator may %s %s: %v, want %v", verb, resource, sar.Status.Allowed, want)
			}
		}
	}
}
