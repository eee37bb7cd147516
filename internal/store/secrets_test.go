package store

import (
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

func TestRotationUnderWay(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	stamp := func(ago time.Duration) string { return now.Add(-ago).Format(time.RFC3339Nano) }
	cases := []struct {
		name string
		req  string
		st   *v1alpha1.RotationStatus
		want bool
	}{
		{"nothing asked", "", &v1alpha1.RotationStatus{}, false},
		{"asked, not handled yet", stamp(time.Second), &v1alpha1.RotationStatus{LastHandledRequest: stamp(time.Hour)}, true},
		{"asked and handled, no Job", stamp(time.Second), &v1alpha1.RotationStatus{LastHandledRequest: stamp(time.Second)}, false},
		{"a Job being served", "", &v1alpha1.RotationStatus{ActiveJobUID: "u"}, true},
		{"just attached, asked a moment ago", stamp(time.Second), nil, true},
		{"just attached, a request left from long ago", stamp(24 * time.Hour), nil, false},
		{"just attached, a stamp that is not a time", "soon", nil, false},
	}
	for _, c := range cases {
		m := &v1alpha1.ManagedSecret{}
		m.Annotations = map[string]string{v1alpha1.AnnotationRotateRequestedAt: c.req}
		m.Status.Rotation = c.st
		if got := rotationUnderWay(m, now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
