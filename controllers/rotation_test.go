package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotator"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/schedule"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/testdb"
)

func policy(ns, name, strategy string, mutate ...func(*v1alpha1.RotationPolicySpec)) *v1alpha1.RotationPolicy {
	days := int32(30)
	p := &v1alpha1.RotationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.RotationPolicySpec{Strategy: strategy, Schedule: v1alpha1.RotationSchedule{EveryDays: &days, Window: "2h"}},
	}
	for _, m := range mutate {
		m(&p.Spec)
	}
	return p
}

// dbSecret imports credentials from a Secret, as a user adopting an existing database user would.
func dbSecret(t *testing.T, ns, name, engine string, u testdb.User, port int, policyName string) *v1alpha1.ManagedSecret {
	t.Helper()
	ctx := context.Background()
	src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-import", Annotations: importConsent(name)}, StringData: map[string]string{
		"engine": engine, "host": "127.0.0.1", "port": fmt.Sprint(port), "username": u.Name, "password": u.Password, "dbname": "postgres",
	}}
	if engine != "postgres" {
		delete(src.StringData, "dbname")
	}
	if err := k8s.Create(ctx, src); err != nil {
		t.Fatal(err)
	}
	m := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ManagedSecretSpec{FromSecret: &v1alpha1.LocalObjectReference{Name: src.Name}}}
	if policyName != "" {
		m.Spec.Rotation = &v1alpha1.RotationSpec{PolicyRef: v1alpha1.LocalObjectReference{Name: policyName}}
	}
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	return waitReady(t, ns, name, metav1.ConditionTrue, v1alpha1.ReasonReady)
}

func TestRotationCronJobAndSchedule(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "monthly", v1alpha1.StrategyPassword, func(s *v1alpha1.RotationPolicySpec) {
		attempts, timeout := int32(2), int64(120)
		s.Attempts = &attempts
		s.Pod = &v1alpha1.RotationPodSpec{TimeoutSeconds: &timeout, ServiceAccountName: "rotator", NodeSelector: map[string]string{"pool": "system"}}
	})); err != nil {
		t.Fatal(err)
	}
	m := rotated(ns, "app", "monthly")
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)
	cj := cronJobOf(t, ns, "app")
	m = getMsec(t, ns, "app")

	// nextRotationTime is exact: 30 days after the value was set, to the minute, and the CronJob
	// fires at exactly that minute.
	want := m.Status.LastChangedTime.Time.UTC().Add(30 * schedule.Day).Truncate(time.Minute)
	if m.Status.NextRotationTime == nil || !m.Status.NextRotationTime.Time.Equal(want) {
		t.Fatalf("nextRotationTime %v, want %v", m.Status.NextRotationTime, want)
	}
	if wantSched := fmt.Sprintf("%d %d %d %d *", want.Minute(), want.Hour(), want.Day(), int(want.Month())); cj.Spec.Schedule != wantSched || *cj.Spec.TimeZone != "Etc/UTC" {
		t.Fatalf("schedule %q %q, want %q", cj.Spec.Schedule, *cj.Spec.TimeZone, wantSched)
	}
	c := rotationCondition(m, v1alpha1.ConditionRotationScheduled)
	if c.Status != metav1.ConditionTrue || c.ObservedGeneration != m.Generation {
		t.Fatalf("RotationScheduled %+v", c)
	}
	spec := cj.Spec
	pod := spec.JobTemplate.Spec.Template.Spec
	ctr := pod.Containers[0]
	checks := map[string]bool{
		"concurrencyPolicy Forbid":           spec.ConcurrencyPolicy == batchv1.ForbidConcurrent,
		"starting deadline = window":         *spec.StartingDeadlineSeconds == 7200,
		"bounded history":                    *spec.SuccessfulJobsHistoryLimit == 3 && *spec.FailedJobsHistoryLimit == 3,
		"attempts":                           *spec.JobTemplate.Spec.BackoffLimit == 1,
		"timeout":                            *spec.JobTemplate.Spec.ActiveDeadlineSeconds == 120,
		"no API token":                       pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken,
		"service account":                    pod.ServiceAccountName == "rotator",
		"node selector":                      pod.NodeSelector["pool"] == "system",
		"non-root":                           *pod.SecurityContext.RunAsNonRoot && *ctr.SecurityContext.RunAsNonRoot,
		"read-only root":                     *ctr.SecurityContext.ReadOnlyRootFilesystem,
		"no privilege escalation":            !*ctr.SecurityContext.AllowPrivilegeEscalation,
		"the operator's own image, rotate":   ctr.Image == suiteOpts.RotationImage && ctr.Args[0] == "rotate",
		"material mounted read-only":         ctr.VolumeMounts[0].ReadOnly && ctr.VolumeMounts[0].MountPath == rotator.DefaultDir,
		"owned by the ManagedSecret":         metav1.GetControllerOf(cj) != nil && metav1.GetControllerOf(cj).UID == m.UID,
		"server-side applied":                hasFieldManager(cj.ManagedFields, FieldManager, metav1.ManagedFieldsOperationApply),
		"suspend follows the policy (false)": spec.Suspend != nil && !*spec.Suspend,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("CronJob: %s", what)
		}
	}

	// Suspending the policy suspends the CronJob and says so; nothing is deleted.
	p := &v1alpha1.RotationPolicy{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "monthly"}, p); err != nil {
		t.Fatal(err)
	}
	yes := true
	p.Spec.Suspend = &yes
	if err := k8s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "suspended", func() error {
		cj := cronJobOf(t, ns, "app")
		m := getMsec(t, ns, "app")
		if cj.Spec.Suspend == nil || !*cj.Spec.Suspend || rotationCondition(m, v1alpha1.ConditionRotationScheduled).Reason != v1alpha1.ReasonSuspended {
			return fmt.Errorf("not suspended yet")
		}
		return nil
	})
	// A rotate-now request while suspended is acknowledged but starts nothing.
	m = getMsec(t, ns, "app")
	m.Annotations = map[string]string{v1alpha1.AnnotationRotateRequestedAt: "while-suspended"}
	if err := k8s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "request handled", func() error {
		if got := getMsec(t, ns, "app"); got.Status.Rotation.LastHandledRequest != "while-suspended" {
			return fmt.Errorf("handled %q", got.Status.Rotation.LastHandledRequest)
		}
		return nil
	})
	jobs := &batchv1.JobList{}
	if err := k8s.List(ctx, jobs, client.InNamespace(ns)); err != nil || len(jobs.Items) != 0 {
		t.Fatalf("a suspended policy started %d Jobs (%v)", len(jobs.Items), err)
	}

	// Detaching the policy removes the CronJob and the rotation status.
	m = getMsec(t, ns, "app")
	m.Spec.Rotation = nil
	if err := k8s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CronJob removed", func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(cj), &batchv1.CronJob{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("CronJob still there: %v", err)
		}
		if got := getMsec(t, ns, "app"); got.Status.Rotation != nil || got.Status.NextRotationTime != nil {
			return fmt.Errorf("rotation status left: %+v", got.Status.Rotation)
		}
		return nil
	})
}

func TestRotationCronScheduleInTimeZone(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "weekly", v1alpha1.StrategyPassword, func(s *v1alpha1.RotationPolicySpec) {
		s.Schedule = v1alpha1.RotationSchedule{Cron: "0 3 * * 0", TimeZone: "Europe/Berlin", Window: "3h"}
	})); err != nil {
		t.Fatal(err)
	}
	m := rotated(ns, "app", "weekly")
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	cj := cronJobOf(t, ns, "app")
	if cj.Spec.Schedule != "0 3 * * 0" || *cj.Spec.TimeZone != "Europe/Berlin" || *cj.Spec.StartingDeadlineSeconds != 3*3600 {
		t.Fatalf("CronJob schedule %q %q %d", cj.Spec.Schedule, *cj.Spec.TimeZone, *cj.Spec.StartingDeadlineSeconds)
	}
	got := getMsec(t, ns, "app").Status.NextRotationTime.Time
	berlin, _ := time.LoadLocation("Europe/Berlin")
	local := got.In(berlin)
	if local.Weekday() != time.Sunday || local.Hour() != 3 || local.Minute() != 0 || !got.After(time.Now()) || got.After(time.Now().Add(8*24*time.Hour)) {
		t.Fatalf("nextRotationTime %s (%s in Berlin)", got, local)
	}
}

func TestRotationPolicyMissingThenCreated(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := rotated(ns, "app", "later")
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "PolicyNotFound", func() error {
		c := rotationCondition(getMsec(t, ns, "app"), v1alpha1.ConditionRotationScheduled)
		if c.Reason != v1alpha1.ReasonPolicyNotFound || !strings.Contains(c.Message, "later") {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	if err := k8s.Create(ctx, policy(ns, "later", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	waitScheduled(t, ns, "app")
}

func TestRotationScheduleAdmissionCannotCheck(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	// Twice a day, two hours apart, with a 3h window: only the operator can see the overlap.
	if err := k8s.Create(ctx, policy(ns, "overlap", v1alpha1.StrategyPassword, func(s *v1alpha1.RotationPolicySpec) {
		s.Schedule = v1alpha1.RotationSchedule{Cron: "0 1,3 * * *", Window: "3h"}
	})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "policy Ready=False", func() error {
		p := &v1alpha1.RotationPolicy{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "overlap"}, p); err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "longer than the 2h0m0s") {
				return nil
			}
		}
		return fmt.Errorf("%+v", p.Status)
	})
	m := rotated(ns, "app", "overlap")
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, "InvalidSchedule", func() error {
		if c := rotationCondition(getMsec(t, ns, "app"), v1alpha1.ConditionRotationScheduled); c.Reason != v1alpha1.ReasonInvalidSchedule {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
}

func TestPasswordRotationEndToEnd(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	m := rotated(ns, "app", "pw")
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	first := waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)
	before := projectedValue(t, ns, "app")

	cj := cronJobOf(t, ns, "app")
	job := startJob(t, cj, "rot-1")
	dir, req := material(t, ns, cj, job)
	// createSecret: an AWSPENDING version exists, AWSCURRENT untouched, Rotating=True (the
	// material is written before the status, so wait for the status).
	eventually(t, "status after createSecret", func() error {
		mid := getMsec(t, ns, "app")
		if mid.Status.PendingVersionID == "" || mid.Status.PendingVersionID != req.ClientRequestToken || mid.Status.CurrentVersionID != first.Status.CurrentVersionID {
			return fmt.Errorf("after createSecret: %+v (request %+v)", mid.Status, req)
		}
		if c := rotationCondition(mid, v1alpha1.ConditionRotating); c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Rotating %+v", c)
		}
		return nil
	})
	var pending map[string]string
	if err := json.Unmarshal(readFile(t, dir, "pending.json"), &pending); err != nil {
		t.Fatal(err)
	}
	if pending["password"] == before["password"] || pending["username"] != before["username"] || pending["host"] != before["host"] {
		t.Fatal("the pending value must carry the fields and a new password")
	}
	if code, out := runPod(t, dir, job); code != 0 {
		t.Fatalf("rotate: %d %s", code, out)
	}
	finishJob(t, job, true)
	after := waitRotated(t, ns, "app", first.Status.CurrentVersionID)

	// finishSecret: AWSCURRENT moved, AWSPREVIOUS followed, AWSPENDING gone; the Secret follows.
	if after.Status.CurrentVersionID != req.ClientRequestToken || after.Status.PreviousVersionID != first.Status.CurrentVersionID {
		t.Fatalf("labels after finish: %+v", after.Status)
	}
	if got := projectedValue(t, ns, "app"); got["password"] != pending["password"] {
		t.Fatal("the projected Secret does not hold the rotated password")
	}
	if c := rotationCondition(after, v1alpha1.ConditionRotationFailed); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonRotationSucceeded {
		t.Fatalf("RotationFailed %+v", c)
	}
	if after.Status.NextRotationTime == nil || !after.Status.NextRotationTime.Time.Equal(after.Status.LastRotatedTime.Time.Add(30*schedule.Day).Truncate(time.Minute)) {
		t.Fatalf("next %v after rotation at %v", after.Status.NextRotationTime, after.Status.LastRotatedTime)
	}
	eventually(t, "material deleted", func() error {
		name := cj.Spec.JobTemplate.Spec.Template.Spec.Volumes[0].Secret.SecretName
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("material still there: %v", err)
		}
		return nil
	})
	labels := map[string][]string{}
	for _, v := range versions(t, ns) {
		labels[v.Spec.VersionID] = v.Spec.Stages
	}
	if len(labels) != 2 || strings.Join(labels[req.ClientRequestToken], ",") != stages.Current || strings.Join(labels[first.Status.CurrentVersionID], ",") != stages.Previous {
		t.Fatalf("versions %v", labels)
	}
}

// A rotation Job that fails leaves AWSCURRENT where it was and the pending version for the next
// attempt (as AWS does); the next Job finishes the rotation with that version, and the conditions
// say so.
func TestFailedRotationThenSuccessfulOne(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, rotated(ns, "app", "pw")); err != nil {
		t.Fatal(err)
	}
	first := waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)

	cj := cronJobOf(t, ns, "app")
	failing := startJob(t, cj, "rot-fails")
	_, req := material(t, ns, cj, failing)
	finishJob(t, failing, false)
	eventually(t, "the failure in status", func() error {
		m := getMsec(t, ns, "app")
		if c := rotationCondition(m, v1alpha1.ConditionRotationFailed); c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonJobFailed {
			return fmt.Errorf("RotationFailed %+v", c)
		}
		if m.Status.CurrentVersionID != first.Status.CurrentVersionID || m.Status.PendingVersionID != req.ClientRequestToken {
			return fmt.Errorf("after the failure: current %s pending %s", m.Status.CurrentVersionID, m.Status.PendingVersionID)
		}
		return nil
	})

	rotateOnce(t, ns, "app", "rot-succeeds", 0)
	after := waitRotated(t, ns, "app", first.Status.CurrentVersionID)
	if after.Status.CurrentVersionID != req.ClientRequestToken {
		t.Fatalf("AWSCURRENT is %s, not the pending version %s the failed Job left", after.Status.CurrentVersionID, req.ClientRequestToken)
	}
	if c := rotationCondition(after, v1alpha1.ConditionRotationFailed); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonRotationSucceeded {
		t.Fatalf("RotationFailed %+v", c)
	}
	if c := rotationCondition(after, v1alpha1.ConditionRotating); c.Status != metav1.ConditionFalse {
		t.Fatalf("Rotating %+v", c)
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := readFileErr(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A finishSecret interrupted half-way (the pending version already holds AWSCURRENT while the old
// one still does too) is completed on the next reconcile, and the projection follows.
func TestInterruptedFinishIsCompleted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := generated(ns, "half")
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	m = waitReady(t, ns, "half", metav1.ConditionTrue, v1alpha1.ReasonReady)
	old := m.Status.CurrentVersionID

	// Write the state a crash between the first and second label write leaves behind.
	r := testReconciler(t)
	sv, err := r.sealVersion(ctx, m, "11111111-2222-3333-4444-555555555555", []string{stages.Current, stages.Pending}, []byte(`{"password":"after-the-crash"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, sv); err != nil {
		t.Fatal(err)
	}
	eventually(t, "finish completed", func() error {
		labels := map[string]string{}
		for _, v := range versions(t, ns) {
			labels[v.Spec.VersionID] = strings.Join(v.Spec.Stages, ",")
		}
		if labels[sv.Spec.VersionID] != stages.Current || labels[old] != stages.Previous {
			return fmt.Errorf("labels %v", labels)
		}
		if got := projectedValue(t, ns, "half"); got["password"] != "after-the-crash" {
			return fmt.Errorf("projection not updated")
		}
		return nil
	})
}

// A put interrupted after its version was created (labels not yet written) is resumed from the
// intent recorded on the version, and the projection follows.
func TestInterruptedPutIsCompleted(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	m := createReady(t, generated(ns, "halfput"))
	r := testReconciler(t)
	sv, err := r.sealVersion(ctx, m, "66666666-aaaa-bbbb-cccc-000000000006", nil, []byte(`{"password":"resumed"}`))
	if err != nil {
		t.Fatal(err)
	}
	sv.Annotations = map[string]string{store.AnnotationIntendedStages: stages.Current}
	// As the store writes it: a version with a label change under way is not labelled deprecated.
	delete(sv.Labels, v1alpha1.LabelDeprecated)
	if err := k8s.Create(ctx, sv); err != nil {
		t.Fatal(err)
	}
	eventually(t, "put resumed", func() error {
		labels := map[string]string{}
		intentLeft := false
		for _, v := range versions(t, ns) {
			labels[v.Spec.VersionID] = strings.Join(v.Spec.Stages, ",")
			_, has := v.Annotations[store.AnnotationIntendedStages]
			intentLeft = intentLeft || has
		}
		if labels[sv.Spec.VersionID] != stages.Current || labels[m.Status.CurrentVersionID] != stages.Previous || intentLeft {
			return fmt.Errorf("labels %v, intent left %v", labels, intentLeft)
		}
		if projectedValue(t, ns, "halfput")["password"] != "resumed" {
			return fmt.Errorf("projection not updated")
		}
		return nil
	})
}
