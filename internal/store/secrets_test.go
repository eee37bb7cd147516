package store

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
)

func TestRotationUnderWay(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	stamp := func(ago time.Duration) string { return now.Add(-ago).Format(time.RFC3339Nano) }
	cases := []struct {
		name      string
		req       string
		st        *v1alpha1.RotationStatus
		want      bool
		held      bool // the Rotating condition says AwaitingRollout
		cancelled bool
	}{
		{"nothing asked", "", &v1alpha1.RotationStatus{}, false, false, false},
		{"asked, not handled yet", stamp(time.Second), &v1alpha1.RotationStatus{LastHandledRequest: stamp(time.Hour)}, true, false, false},
		{"asked and handled, no Job", stamp(time.Second), &v1alpha1.RotationStatus{LastHandledRequest: stamp(time.Second)}, false, false, false},
		{"a Job being served", "", &v1alpha1.RotationStatus{ActiveJobUID: "u"}, true, false, false},
		{"just attached, asked a moment ago", stamp(time.Second), nil, true, false, false},
		{"just attached, a request left from long ago", stamp(24 * time.Hour), nil, false, false, false},
		{"just attached, a stamp that is not a time", "soon", nil, false, false, false},
		{"a Job held until the workloads run AWSCURRENT", "", &v1alpha1.RotationStatus{}, true, true, false},
		{"held, then cancelled (the held Job is gone)", "", &v1alpha1.RotationStatus{}, false, true, true},
	}
	for _, c := range cases {
		m := &v1alpha1.ManagedSecret{}
		m.Annotations = map[string]string{v1alpha1.AnnotationRotateRequestedAt: c.req}
		if c.cancelled {
			m.Annotations[request.AnnotationRotationCancelled] = "true"
		}
		m.Status.Rotation = c.st
		if c.held {
			m.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionRotating, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonAwaitingRollout}}
		}
		if got := rotationUnderWay(m, now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
