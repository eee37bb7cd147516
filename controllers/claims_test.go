package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
)

// Every N days counts from the last change (a rotation, or a value put by hand, as in AWS), and
// the CronJob's one-minute schedule follows: otherwise "every 30 days" would silently become
// yearly. A missed rotation (a failed Job) is retried the same time the next day.
func TestEveryNDaysScheduleMoves(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	days := int32(30)
	if err := k8s.Create(ctx, policy(ns, "monthly", v1alpha1.StrategyPassword, func(s *v1alpha1.RotationPolicySpec) {
		s.Schedule = v1alpha1.RotationSchedule{EveryDays: &days}
	})); err != nil {
		t.Fatal(err)
	}
	createReady(t, rotated(ns, "app", "monthly"))
	// scheduledAt waits until status and CronJob agree on the next rotation, and returns it.
	scheduledAt := func(what string, want func(m *v1alpha1.ManagedSecret) time.Time) time.Time {
		t.Helper()
		var next time.Time
		eventually(t, what, func() error {
			m := getMsec(t, ns, "app")
			if m.Status.NextRotationTime == nil {
				return fmt.Errorf("no nextRotationTime")
			}
			next = m.Status.NextRotationTime.UTC()
			if w := want(m); !next.Equal(w) {
				return fmt.Errorf("nextRotationTime %s, want %s", next, w)
			}
			cj := &batchv1.CronJob{}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: cronJobName(m)}, cj); err != nil {
				return err
			}
			if s := fmt.Sprintf("%d %d %d %d *", next.Minute(), next.Hour(), next.Day(), int(next.Month())); cj.Spec.Schedule != s {
				return fmt.Errorf("CronJob schedule %q, want %q", cj.Spec.Schedule, s)
			}
			return nil
		})
		return next
	}
	thirtyDaysAfter := func(t *metav1.Time) time.Time { return t.UTC().Add(30 * 24 * time.Hour).Truncate(time.Minute) }
	// The value's own creation counts as a rotation.
	currentCreated := func(m *v1alpha1.ManagedSecret) *metav1.Time {
		for _, v := range m.Status.Versions {
			if v.VersionID == m.Status.CurrentVersionID {
				return v.CreatedTime
			}
		}
		return &metav1.Time{}
	}
	first := scheduledAt("first schedule", func(m *v1alpha1.ManagedSecret) time.Time { return thirtyDaysAfter(currentCreated(m)) })

	// A value put by hand counts as a rotation.
	suiteClock.advance(t, time.Minute) // so the new base is a different minute
	m := getMsec(t, ns, "app")
	putByRequest(t, k8s, m, "ksm-request-put", "aaaaaaaa-aaaa-bbbb-cccc-00000000000a", []byte(`{"password":"CANARY-put-moves-schedule"}`))
	afterPut := scheduledAt("schedule after a put", func(m *v1alpha1.ManagedSecret) time.Time {
		if m.Status.CurrentVersionID != "aaaaaaaa-aaaa-bbbb-cccc-00000000000a" {
			return time.Time{}
		}
		return thirtyDaysAfter(currentCreated(m))
	})
	// (It counts from the put's version, which scheduledAt checked; it may be the same minute as
	// the first value's, since versions carry the API server's clock.)
	_ = first

	// A rotation moves it to 30 days after the rotation.
	suiteClock.advance(t, time.Minute)
	before := getMsec(t, ns, "app")
	rotateOnce(t, ns, "app", "rot-1", 0)
	waitRotated(t, ns, "app", before.Status.CurrentVersionID)
	afterRotation := scheduledAt("schedule after a rotation", func(m *v1alpha1.ManagedSecret) time.Time { return thirtyDaysAfter(m.Status.LastRotatedTime) })
	if !afterRotation.After(afterPut) {
		t.Fatalf("the schedule did not move after a rotation: %s then %s", afterPut, afterRotation)
	}

	// A failed Job changes nothing by itself; once the due minute and its window have passed
	// without a rotation, the next attempt is the same time the next day.
	cj := cronJobOf(t, ns, "app")
	job := startJob(t, cj, "rot-2")
	material(t, ns, cj, job)
	finishJob(t, job, false)
	eventually(t, "RotationFailed", func() error {
		if c := rotationCondition(getMsec(t, ns, "app"), v1alpha1.ConditionRotationFailed); c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	scheduledAt("schedule after a failed Job", func(m *v1alpha1.ManagedSecret) time.Time { return afterRotation })
	suiteClock.advance(t, time.Until(afterRotation)+2*time.Hour)
	nudge(t, ns, "app")
	scheduledAt("schedule after a missed rotation", func(m *v1alpha1.ManagedSecret) time.Time { return afterRotation.Add(24 * time.Hour) })
}

// Every 500 days (AWS allows up to 1,000): the CronJob's one-minute schedule names a date without
// a year, so it would fire on that date within the next year; it stays suspended until the
// rotation is less than OneShotHorizon away, and the status says so.
func TestRotationMoreThanAYearAwayWaitsSuspended(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	days := int32(500)
	if err := k8s.Create(ctx, policy(ns, "rarely", v1alpha1.StrategyPassword, func(s *v1alpha1.RotationPolicySpec) {
		s.Schedule = v1alpha1.RotationSchedule{EveryDays: &days}
	})); err != nil {
		t.Fatal(err)
	}
	createReady(t, rotated(ns, "app", "rarely"))
	cronJob := func(suspended bool) func() error {
		return func() error {
			m := getMsec(t, ns, "app")
			if m.Status.NextRotationTime == nil {
				return fmt.Errorf("no nextRotationTime")
			}
			next := m.Status.NextRotationTime.UTC()
			if d := next.Sub(m.CreationTimestamp.Time); d < 499*24*time.Hour || d > 501*24*time.Hour {
				return fmt.Errorf("next rotation %s after the secret's creation, want 500 days", d)
			}
			cj := &batchv1.CronJob{}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: cronJobName(m)}, cj); err != nil {
				return err
			}
			if s := fmt.Sprintf("%d %d %d %d *", next.Minute(), next.Hour(), next.Day(), int(next.Month())); cj.Spec.Schedule != s {
				return fmt.Errorf("CronJob schedule %q, want %q", cj.Spec.Schedule, s)
			}
			if got := cj.Spec.Suspend != nil && *cj.Spec.Suspend; got != suspended {
				return fmt.Errorf("CronJob suspended %v, want %v", got, suspended)
			}
			c := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionRotationScheduled)
			if c == nil || c.Status != metav1.ConditionTrue || strings.Contains(c.Message, "stays suspended until") != suspended {
				return fmt.Errorf("RotationScheduled %+v", c)
			}
			return nil
		}
	}
	eventually(t, "a suspended CronJob naming the date 500 days ahead", cronJob(true))

	// 150 days later the rotation is 350 days away: the CronJob is let go.
	suiteClock.advance(t, 150*24*time.Hour)
	m := getMsec(t, ns, "app")
	patch := client.MergeFrom(m.DeepCopy())
	m.Annotations["example.com/touched"] = "yes" // a reconcile, as the operator's own wake-up would bring
	if err := k8s.Patch(ctx, m, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the CronJob let go, still naming the same date", cronJob(false))
}

// The keyring is created once and reused: on a restart, by a second replica starting at the same
// moment, and never replaced when it is corrupted or lost while versions exist (fail closed).
func TestKeyringIsReusedAndFailsClosed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	// Versions exist only in this namespace's own secrets, none yet.
	store := KeyringStore{Client: k8s, Namespace: ns, Name: "ring", VersionNamespaces: []string{ns}}
	var wg sync.WaitGroup
	rings := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range rings {
		wg.Add(1)
		go func(i int) { // two replicas starting at once
			defer wg.Done()
			r, err := store.LoadOrCreate(ctx)
			if err == nil {
				rings[i], err = r.Marshal()
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || string(rings[0]) != string(rings[1]) {
		t.Fatalf("two replicas got different keyrings: %v %v", errs[0], errs[1])
	}
	restarted, err := store.LoadOrCreate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := restarted.Marshal(); string(again) != string(rings[0]) {
		t.Fatal("a restart made a new keyring")
	}

	// Corrupted: loading fails, and the manager does not start with a new key in its place.
	corrupt := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "corrupt"}, Data: map[string][]byte{keyring.DataKey: []byte(`{"primary":"key-1","keys":[{"id":"key-1","material":"c2hvcnQ="}]}`)}}
	if err := k8s.Create(ctx, corrupt); err != nil {
		t.Fatal(err)
	}
	o := suiteOpts
	o.Namespace, o.KeyringSecret = ns, "corrupt"
	if _, err := NewManager(ctx, operatorConfig(cfg), o); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Fatalf("a corrupted keyring: %v", err)
	}
	kept := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(corrupt), kept); err != nil || kept.ResourceVersion != corrupt.ResourceVersion {
		t.Fatalf("the corrupted keyring was replaced: %v", err)
	}

	// Lost while versions exist: refused, and no new keyring is made.
	createReady(t, generated(ns, "app"))
	lost := KeyringStore{Client: k8s, Namespace: ns, Name: "lost", VersionNamespaces: []string{ns}}
	if _, err := lost.LoadOrCreate(ctx); err == nil || !strings.Contains(err.Error(), "restore the keyring") {
		t.Fatalf("a lost keyring: %v", err)
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "lost"}, &corev1.Secret{}); err == nil {
		t.Fatal("a new keyring was made in place of a lost one")
	}
}
