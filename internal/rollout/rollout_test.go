package rollout

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mt(t time.Time) *metav1.Time { v := metav1.NewTime(t); return &v }

func TestBegin(t *testing.T) {
	changedAt := t0.Add(1500 * time.Millisecond)
	cases := []struct {
		name        string
		prev        *v1alpha1.RolloutStatus
		current     string
		wantVersion string
		wantChanged *time.Time
	}{
		{name: "first projection: nothing changed", prev: nil, current: "v1", wantVersion: "v1"},
		{name: "rollout just configured", prev: &v1alpha1.RolloutStatus{}, current: "v1", wantVersion: "v1"},
		{name: "same version keeps its change time", prev: &v1alpha1.RolloutStatus{VersionID: "v2", ChangedTime: mt(t0)}, current: "v2",
			wantVersion: "v2", wantChanged: &t0},
		{name: "same version never changed", prev: &v1alpha1.RolloutStatus{VersionID: "v1"}, current: "v1", wantVersion: "v1"},
		{name: "moved: changed now, rounded up to the second", prev: &v1alpha1.RolloutStatus{VersionID: "v1"}, current: "v2",
			wantVersion: "v2", wantChanged: ptr(t0.Add(2 * time.Second))},
		{name: "moved again: the latest change counts", prev: &v1alpha1.RolloutStatus{VersionID: "v2", ChangedTime: mt(t0.Add(-time.Minute))}, current: "v3",
			wantVersion: "v3", wantChanged: ptr(t0.Add(2 * time.Second))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Begin(c.prev, c.current, changedAt)
			if got.VersionID != c.wantVersion {
				t.Errorf("version %q, want %q", got.VersionID, c.wantVersion)
			}
			switch {
			case c.wantChanged == nil && got.ChangedTime != nil:
				t.Errorf("changed %v, want none", got.ChangedTime)
			case c.wantChanged != nil && (got.ChangedTime == nil || !got.ChangedTime.Time.Equal(*c.wantChanged)):
				t.Errorf("changed %v, want %v", got.ChangedTime, c.wantChanged)
			}
			if len(got.Targets) != 0 {
				t.Errorf("targets are rebuilt, got %v", got.Targets)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCeilSecond(t *testing.T) {
	if got := CeilSecond(t0); !got.Equal(t0) {
		t.Errorf("a whole second stays: %v", got)
	}
	if got := CeilSecond(t0.Add(time.Nanosecond)); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("rounded up: %v", got)
	}
}

func TestPlan(t *testing.T) {
	window := 30 * time.Second
	changed := v1alpha1.RolloutStatus{VersionID: "v2", ChangedTime: mt(t0)}
	cases := []struct {
		name     string
		prev     *v1alpha1.RolloutTargetStatus
		st       v1alpha1.RolloutStatus
		now      time.Time
		want     Step
		wantWait time.Duration
	}{
		{name: "new target is read (validated)", prev: nil, st: changed, now: t0, want: Read},
		{name: "a problem is looked at again", prev: &v1alpha1.RolloutTargetStatus{VersionID: "v1", Reason: v1alpha1.ReasonTargetNotFound}, st: changed, now: t0, want: Read},
		{name: "runs the version: nothing read", prev: &v1alpha1.RolloutTargetStatus{VersionID: "v2", Finished: true}, st: changed, now: t0, want: Settled},
		{name: "restarted, not finished: read", prev: &v1alpha1.RolloutTargetStatus{VersionID: "v2"}, st: changed, now: t0, want: Read},
		{name: "older version inside the window: wait", prev: &v1alpha1.RolloutTargetStatus{VersionID: "v1", Finished: true}, st: changed,
			now: t0.Add(10 * time.Second), want: Wait, wantWait: 20 * time.Second},
		{name: "older version, window over: read", prev: &v1alpha1.RolloutTargetStatus{VersionID: "v1", Finished: true}, st: changed,
			now: t0.Add(window), want: Read},
		{name: "older version, no change time: read", prev: &v1alpha1.RolloutTargetStatus{VersionID: "v1", Finished: true},
			st: v1alpha1.RolloutStatus{VersionID: "v2"}, now: t0, want: Read},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, wait := Plan(c.prev, c.st, c.now, window)
			if got != c.want || wait != c.wantWait {
				t.Errorf("got %v %v, want %v %v", got, wait, c.want, c.wantWait)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	st := v1alpha1.RolloutStatus{VersionID: "v2", ChangedTime: mt(t0)}
	now := t0.Add(30*time.Second + 400*time.Millisecond)
	rolledBefore := &v1alpha1.RolloutTargetStatus{Kind: KindDeployment, Name: "web", VersionID: "v1", Finished: true}
	consuming := Workload{Found: true, Consumes: true, Progress: Progress{Done: true}}
	withRestart := func(at time.Time, done bool) Workload {
		w := consuming
		w.RestartedAt, w.Progress = &at, Progress{Done: done}
		return w
	}
	cases := []struct {
		name       string
		prev       *v1alpha1.RolloutTargetStatus
		w          Workload
		want       v1alpha1.RolloutTargetStatus
		wantAction Action
	}{
		{name: "first seen: recorded at the version, never restarted", prev: nil, w: consuming,
			want: v1alpha1.RolloutTargetStatus{VersionID: "v2", Finished: true}, wantAction: None},
		{name: "missing", prev: nil, w: Workload{},
			want: v1alpha1.RolloutTargetStatus{Reason: v1alpha1.ReasonTargetNotFound}, wantAction: Refused},
		{name: "not using the Secret: refused, whatever the version", prev: rolledBefore, w: Workload{Found: true},
			want: v1alpha1.RolloutTargetStatus{VersionID: "v1", Reason: v1alpha1.ReasonTargetNotConsuming}, wantAction: Refused},
		{name: "usable again: recorded at the version", prev: &v1alpha1.RolloutTargetStatus{VersionID: "v1", Reason: v1alpha1.ReasonTargetNotConsuming}, w: consuming,
			want: v1alpha1.RolloutTargetStatus{VersionID: "v2", Finished: true}, wantAction: None},
		{name: "older version, never restarted: restart now", prev: rolledBefore, w: consuming,
			want: v1alpha1.RolloutTargetStatus{VersionID: "v2", RestartedTime: mt(t0.Add(30 * time.Second))}, wantAction: Restart},
		{name: "restarted before the change: restart again", prev: rolledBefore, w: withRestart(t0.Add(-time.Second), true),
			want: v1alpha1.RolloutTargetStatus{VersionID: "v2", RestartedTime: mt(t0.Add(30 * time.Second))}, wantAction: Restart},
		{name: "restarted at the change's second: covered", prev: rolledBefore, w: withRestart(t0, false),
			want: v1alpha1.RolloutTargetStatus{VersionID: "v2", RestartedTime: mt(t0)}, wantAction: Coalesced},
		{name: "restarted after the change (another secret's restart): covered, finished", prev: rolledBefore, w: withRestart(t0.Add(20*time.Second), true),
			want: v1alpha1.RolloutTargetStatus{VersionID: "v2", RestartedTime: mt(t0.Add(20 * time.Second)), Finished: true}, wantAction: Coalesced},
		{name: "restarted for the version, still rolling", prev: &v1alpha1.RolloutTargetStatus{VersionID: "v2", RestartedTime: mt(t0.Add(30 * time.Second))},
			w:    Workload{Found: true, Consumes: true, Progress: Progress{Waiting: "0 of 1 updated replicas available"}},
			want: v1alpha1.RolloutTargetStatus{VersionID: "v2", RestartedTime: mt(t0.Add(30 * time.Second))}, wantAction: None},
		{name: "restarted for the version, finished", prev: &v1alpha1.RolloutTargetStatus{VersionID: "v2", RestartedTime: mt(t0.Add(30 * time.Second))}, w: consuming,
			want: v1alpha1.RolloutTargetStatus{VersionID: "v2", RestartedTime: mt(t0.Add(30 * time.Second)), Finished: true}, wantAction: None},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, action := Decide(KindDeployment, "web", c.prev, st, c.w, now)
			c.want.Kind, c.want.Name = KindDeployment, "web"
			if action != c.wantAction {
				t.Errorf("action %v, want %v", action, c.wantAction)
			}
			if got.VersionID != c.want.VersionID || got.Finished != c.want.Finished || got.Reason != c.want.Reason ||
				got.Kind != c.want.Kind || got.Name != c.want.Name || !sameTime(got.RestartedTime, c.want.RestartedTime) {
				t.Errorf("got %+v (restarted %v), want %+v (restarted %v)", got, got.RestartedTime, c.want, c.want.RestartedTime)
			}
		})
	}
}

func sameTime(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Time.Equal(b.Time)
}

func TestRestartedAt(t *testing.T) {
	if RestartedAt(nil) != nil || RestartedAt(map[string]string{AnnotationRestartedAt: "yesterday"}) != nil {
		t.Fatal("no time from a missing or malformed annotation")
	}
	// kubectl writes local time with an offset.
	got := RestartedAt(map[string]string{AnnotationRestartedAt: "2026-03-01T13:00:05+01:00"})
	if got == nil || !got.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("got %v", got)
	}
	if v := FormatRestartedAt(t0.Add(5*time.Second + 700*time.Millisecond)); v != "2026-03-01T12:00:05Z" {
		t.Fatalf("formatted %q", v)
	}
}

func TestConsumes(t *testing.T) {
	const s = "db"
	env := func(name string) corev1.Container {
		return corev1.Container{Name: "c", Env: []corev1.EnvVar{{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "password"}}}}}
	}
	cases := []struct {
		name string
		spec corev1.PodSpec
		want bool
	}{
		{name: "nothing", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}},
		{name: "env secretKeyRef", spec: corev1.PodSpec{Containers: []corev1.Container{env(s)}}, want: true},
		{name: "env secretKeyRef of another Secret", spec: corev1.PodSpec{Containers: []corev1.Container{env("other")}}},
		{name: "env from a ConfigMap of the same name", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "X",
			ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: s}, Key: "k"}}}}}}}},
		{name: "init container env", spec: corev1.PodSpec{InitContainers: []corev1.Container{env(s)}, Containers: []corev1.Container{{Name: "c"}}}, want: true},
		{name: "envFrom secretRef", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", EnvFrom: []corev1.EnvFromSource{
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s}}}}}}}, want: true},
		{name: "envFrom configMapRef", spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s}}}}}}}},
		{name: "secret volume", spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: s}}}}}, want: true},
		{name: "projected volume", spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t"}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: s}}}}}}}}}, want: true},
		{name: "projected volume of other sources", spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: s}}}}}}}}}},
	}
	for _, c := range cases {
		if got := Consumes(&c.spec, s); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDeploymentProgress(t *testing.T) {
	three := int32(3)
	d := func(gen, observed int64, replicas, updated, available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: &three},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated, AvailableReplicas: available, Conditions: conds}}
	}
	cases := []struct {
		name        string
		d           *appsv1.Deployment
		done, stall bool
		waiting     string
	}{
		{name: "template not observed", d: d(2, 1, 3, 3, 3), waiting: "not observed"},
		{name: "updating", d: d(2, 2, 4, 1, 3), waiting: "1 of 3 replicas updated"},
		{name: "old replicas left", d: d(2, 2, 4, 3, 3), waiting: "1 old replicas pending termination"},
		{name: "not available", d: d(2, 2, 3, 3, 2), waiting: "2 of 3 updated replicas available"},
		{name: "done", d: d(2, 2, 3, 3, 3), done: true},
		{name: "old pods terminating", d: func() *appsv1.Deployment {
			x := d(2, 2, 3, 3, 3)
			x.Status.TerminatingReplicas = ptr(int32(1))
			return x
		}(),
			waiting: "1 old pods still terminating"},
		{name: "none terminating", d: func() *appsv1.Deployment {
			x := d(2, 2, 3, 3, 3)
			x.Status.TerminatingReplicas = ptr(int32(0))
			return x
		}(), done: true},
		{name: "stalled", d: d(2, 2, 4, 1, 3, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}),
			stall: true, waiting: "deadline"},
	}
	for _, c := range cases {
		p := DeploymentProgress(c.d)
		if p.Done != c.done || p.Stalled != c.stall || !strings.Contains(p.Waiting, c.waiting) {
			t.Errorf("%s: %+v", c.name, p)
		}
	}
}

func TestStatefulSetProgress(t *testing.T) {
	two, one := int32(2), int32(1)
	ss := func(observed int64, ready, updated int32, cur, upd string, mutate ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: appsv1.StatefulSetSpec{Replicas: &two},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: observed, ReadyReplicas: ready, UpdatedReplicas: updated, CurrentRevision: cur, UpdateRevision: upd}}
		for _, m := range mutate {
			m(s)
		}
		return s
	}
	onDelete := func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType }
	partition := func(s *appsv1.StatefulSet) {
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: &one}
	}
	cases := []struct {
		name    string
		s       *appsv1.StatefulSet
		done    bool
		waiting string
	}{
		{name: "not observed", s: ss(1, 2, 2, "a", "a"), waiting: "not observed"},
		{name: "not ready", s: ss(2, 1, 1, "a", "b"), waiting: "1 of 2 replicas ready"},
		{name: "revisions differ", s: ss(2, 2, 1, "a", "b"), waiting: "1 of 2 replicas updated"},
		{name: "done", s: ss(2, 2, 2, "b", "b"), done: true},
		{name: "on delete says so", s: ss(2, 2, 0, "a", "b", onDelete), waiting: "OnDelete"},
		{name: "partition: the replicas above it", s: ss(2, 2, 1, "a", "b", partition), done: true},
		{name: "partition: not yet", s: ss(2, 2, 0, "a", "b", partition), waiting: "above the partition"},
	}
	for _, c := range cases {
		p := StatefulSetProgress(c.s)
		if p.Done != c.done || !strings.Contains(p.Waiting, c.waiting) {
			t.Errorf("%s: %+v", c.name, p)
		}
	}
}

func TestDaemonSetProgress(t *testing.T) {
	ds := func(observed int64, desired, updated, available int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Status: appsv1.DaemonSetStatus{ObservedGeneration: observed,
			DesiredNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberAvailable: available}}
	}
	cases := []struct {
		name    string
		d       *appsv1.DaemonSet
		done    bool
		waiting string
	}{
		{name: "not observed", d: ds(2, 3, 3, 3), waiting: "not observed"},
		{name: "updating", d: ds(3, 3, 1, 3), waiting: "1 of 3 pods updated"},
		{name: "not available", d: ds(3, 3, 3, 2), waiting: "2 of 3 updated pods available"},
		{name: "done", d: ds(3, 3, 3, 3), done: true},
	}
	for _, c := range cases {
		p := DaemonSetProgress(c.d)
		if p.Done != c.done || !strings.Contains(p.Waiting, c.waiting) {
			t.Errorf("%s: %+v", c.name, p)
		}
	}
}

func TestSummaryAndUnrolled(t *testing.T) {
	window := 30 * time.Second
	target := func(kind, name, version string, finished bool, reason string) v1alpha1.RolloutTargetStatus {
		return v1alpha1.RolloutTargetStatus{Kind: kind, Name: name, VersionID: version, Finished: finished, Reason: reason}
	}
	cases := []struct {
		name         string
		st           v1alpha1.RolloutStatus
		waiting      map[string]string
		stalled      map[string]bool
		wantTrue     bool
		wantReason   string
		wantMessage  []string
		wantUnrolled []string
	}{
		{name: "started with the version", st: v1alpha1.RolloutStatus{VersionID: "v1", Targets: []v1alpha1.RolloutTargetStatus{
			target(KindDeployment, "web", "v1", true, ""), target(KindStatefulSet, "cache", "v1", true, "")}},
			wantTrue: true, wantReason: v1alpha1.ReasonRolledOut, wantMessage: []string{"Deployment web, StatefulSet cache started with version v1"}},
		{name: "rolled out", st: v1alpha1.RolloutStatus{VersionID: "v2", ChangedTime: mt(t0), Targets: []v1alpha1.RolloutTargetStatus{target(KindDeployment, "web", "v2", true, "")}},
			wantTrue: true, wantReason: v1alpha1.ReasonRolledOut, wantMessage: []string{"rolled out to version v2"}},
		{name: "waiting for the window", st: v1alpha1.RolloutStatus{VersionID: "v2", ChangedTime: mt(t0), Targets: []v1alpha1.RolloutTargetStatus{target(KindDeployment, "web", "v1", true, "")}},
			wantReason: v1alpha1.ReasonRolloutWaiting, wantMessage: []string{"restart at 2026-03-01T12:00:30Z", "Deployment web"}, wantUnrolled: []string{"Deployment web"}},
		{name: "in progress", st: v1alpha1.RolloutStatus{VersionID: "v2", ChangedTime: mt(t0), Targets: []v1alpha1.RolloutTargetStatus{target(KindDaemonSet, "agent", "v2", false, "")}},
			waiting:    map[string]string{"DaemonSet/agent": "1 of 3 pods updated"},
			wantReason: v1alpha1.ReasonRolloutInProgress, wantMessage: []string{"rolling out version v2: DaemonSet agent (1 of 3 pods updated)"}, wantUnrolled: []string{"DaemonSet agent"}},
		{name: "stalled", st: v1alpha1.RolloutStatus{VersionID: "v2", ChangedTime: mt(t0), Targets: []v1alpha1.RolloutTargetStatus{target(KindDeployment, "web", "v2", false, "")}},
			waiting: map[string]string{"Deployment/web": "its progress deadline was exceeded"}, stalled: map[string]bool{"Deployment/web": true},
			wantReason: v1alpha1.ReasonRolloutStalled, wantMessage: []string{"rollout stalled"}, wantUnrolled: []string{"Deployment web"}},
		{name: "a target that does not use the Secret outranks the rest and holds nothing", st: v1alpha1.RolloutStatus{VersionID: "v2", ChangedTime: mt(t0), Targets: []v1alpha1.RolloutTargetStatus{
			target(KindDeployment, "victim", "v1", false, v1alpha1.ReasonTargetNotConsuming), target(KindDeployment, "gone", "", false, v1alpha1.ReasonTargetNotFound),
			target(KindDeployment, "web", "v2", true, "")}},
			wantReason: v1alpha1.ReasonTargetNotConsuming, wantMessage: []string{"does not use Secret db", "Deployment victim", "not found in this namespace: Deployment gone"}},
		{name: "missing", st: v1alpha1.RolloutStatus{VersionID: "v2", Targets: []v1alpha1.RolloutTargetStatus{target(KindStatefulSet, "gone", "", false, v1alpha1.ReasonTargetNotFound)}},
			wantReason: v1alpha1.ReasonTargetNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Summary(c.st, "db", window, c.waiting, c.stalled)
			if got.True != c.wantTrue || got.Reason != c.wantReason {
				t.Errorf("got %+v", got)
			}
			for _, m := range c.wantMessage {
				if !strings.Contains(got.Message, m) {
					t.Errorf("message %q lacks %q", got.Message, m)
				}
			}
			if u := Unrolled(c.st); strings.Join(u, ",") != strings.Join(c.wantUnrolled, ",") {
				t.Errorf("unrolled %v, want %v", u, c.wantUnrolled)
			}
		})
	}
}
