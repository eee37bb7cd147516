package summary

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func TestStatus(t *testing.T) {
	vs := []stages.Version{
		{ID: "v1", Created: t0, Labels: []string{stages.Previous}},
		{ID: "v2", Created: t0.Add(time.Hour), Labels: []string{stages.Current}},
		{ID: "v0", Created: t0.Add(-time.Hour)},
		{ID: "v3", Created: t0.Add(2 * time.Hour), Labels: []string{stages.Pending}},
	}
	now := t0.Add(3 * time.Hour)
	st := Status(Input{Generation: 4, Versions: vs, TargetName: "db", Now: now,
		Outcome: Outcome{Ready: true, Reason: v1alpha1.ReasonReady, Message: "ok"}})

	if st.CurrentVersionID != "v2" || st.PreviousVersionID != "v1" || st.PendingVersionID != "v3" {
		t.Fatalf("ids: %+v", st)
	}
	if len(st.Versions) != 3 || st.Versions[0].VersionID != "v3" || st.Versions[2].VersionID != "v1" {
		t.Fatalf("versions must be labelled ones, newest first: %+v", st.Versions)
	}
	if st.ObservedGeneration != 4 || st.TargetSecretName != "db" || st.LastChangedTime == nil || !st.LastChangedTime.Time.Equal(now) {
		t.Fatalf("status: %+v", st)
	}
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != 4 {
		t.Fatalf("ready: %+v", c)
	}

	// Nothing changed: an identical status, so the reconciler writes nothing.
	again := Status(Input{Generation: 4, Previous: st, Versions: vs, TargetName: "db", Now: now.Add(time.Hour),
		Outcome: Outcome{Ready: true, Reason: v1alpha1.ReasonReady, Message: "ok"}})
	if !equalStatus(st, again) {
		t.Fatalf("idle reconcile changed status:\n%+v\n%+v", st, again)
	}

	// A failure keeps the version facts and flips Ready with a new transition time.
	failed := Status(Input{Generation: 4, Previous: st, Versions: vs, TargetName: "db", Now: now.Add(time.Hour),
		Outcome: Outcome{Reason: v1alpha1.ReasonDecryptionFailed, Message: "x"}})
	c = meta.FindStatusCondition(failed.Conditions, v1alpha1.ConditionReady)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonDecryptionFailed || !c.LastTransitionTime.Time.Equal(now.Add(time.Hour)) {
		t.Fatalf("failed: %+v", c)
	}
	if failed.LastChangedTime.Time != st.LastChangedTime.Time {
		t.Fatal("lastChangedTime moved without a change")
	}
}

// AWS's LastChangedDate moves on every change, not only the value's; LastAccessedDate is a day.
func TestLastChangedAndAccessed(t *testing.T) {
	vs := []stages.Version{{ID: "v1", Created: t0, Labels: []string{stages.Current}}}
	ready := Outcome{Ready: true, Reason: v1alpha1.ReasonReady}
	st := Status(Input{Generation: 1, Versions: vs, Outcome: ready, Now: t0})
	if st.LastChangedTime == nil || !st.LastChangedTime.Time.Equal(t0) {
		t.Fatalf("the first value: %v", st.LastChangedTime)
	}
	later := t0.Add(time.Hour)
	tests := []struct {
		name  string
		in    Input
		moved bool
	}{
		{"nothing", Input{Generation: 1, Previous: st, Versions: vs, Outcome: ready, Now: later}, false},
		{"a new generation (description, tags, key, rotation)", Input{Generation: 2, Previous: st, Versions: vs, Outcome: ready, Now: later}, true},
		{"a label moved", Input{Generation: 1, Previous: st, Versions: []stages.Version{{ID: "v1", Created: t0, Labels: []string{stages.Current, "CUSTOM"}}}, Outcome: ready, Now: later}, true},
		{"deletion or rotation turned off", Input{Generation: 1, Previous: st, Versions: vs, Outcome: ready, Changed: true, Now: later}, true},
		{"a read", Input{Generation: 1, Previous: st, Versions: vs, Outcome: ready, Accessed: true, Now: later}, false},
	}
	for _, tt := range tests {
		got := Status(tt.in)
		if moved := !got.LastChangedTime.Time.Equal(st.LastChangedTime.Time); moved != tt.moved {
			t.Errorf("%s: lastChangedTime moved=%v", tt.name, moved)
		}
	}
	read := Status(Input{Generation: 1, Previous: st, Versions: vs, Outcome: ready, Accessed: true, Now: later.Add(30 * time.Minute)})
	if read.LastAccessedDate == nil || !read.LastAccessedDate.Time.Equal(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("lastAccessedDate %v", read.LastAccessedDate)
	}
	again := Status(Input{Generation: 1, Previous: read, Versions: vs, Outcome: ready, Accessed: true, Now: later.Add(2 * time.Hour)})
	if !equalStatus(read, again) {
		t.Fatal("a second read on the same day changed the status (a write)")
	}
}

func TestListedIsBounded(t *testing.T) {
	var vs []stages.Version
	for i := 0; i < 30; i++ {
		vs = append(vs, stages.Version{ID: string(rune('a' + i)), Created: t0.Add(time.Duration(i) * time.Minute), Labels: []string{"l"}})
	}
	if got := listed(vs); len(got) != MaxListedVersions {
		t.Fatalf("listed %d", len(got))
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		lasted, want time.Duration
	}{
		{0, 2 * time.Second},
		{10 * time.Second, 10 * time.Second},
		{time.Hour, 5 * time.Minute},
	}
	for _, tt := range tests {
		if got := Backoff(t0, t0.Add(tt.lasted), 2*time.Second, 5*time.Minute); got != tt.want {
			t.Errorf("Backoff after %v = %v, want %v", tt.lasted, got, tt.want)
		}
	}
}

// equalStatus is the comparison the reconciler makes before it writes.
func equalStatus(a, b v1alpha1.ManagedSecretStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}

func TestStatusKeepsVersionFactsWhenVersionsVanish(t *testing.T) {
	vs := []stages.Version{{ID: "v1", Created: t0, Labels: []string{stages.Current}}}
	st := Status(Input{Generation: 1, Versions: vs, Now: t0, Outcome: Outcome{Ready: true, Reason: v1alpha1.ReasonReady}})
	gone := Status(Input{Generation: 1, Previous: st, Versions: nil, Now: t0.Add(time.Hour),
		Outcome: Outcome{Reason: v1alpha1.ReasonVersionsMissing}})
	if gone.CurrentVersionID != "v1" || len(gone.Versions) != 1 || !gone.LastChangedTime.Equal(st.LastChangedTime) {
		t.Fatalf("version facts were dropped: %+v", gone)
	}
}
