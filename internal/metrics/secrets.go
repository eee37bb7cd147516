package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// SecretState is what the per-secret series show of one ManagedSecret.
type SecretState struct {
	Namespace, Name, Policy, Strategy               string
	Ready, Overdue, Stale, RotationFailed, Decrypts bool
	LastChanged, LastRotated, NextRotation          *time.Time
	Versions                                        int
}

// StateOf reads a ManagedSecret's status. strategy is its policy's strategy ("" without one);
// versions the number of its versions.
func StateOf(m *v1alpha1.ManagedSecret, strategy string, versions int) SecretState {
	st := &m.Status
	isTrue := func(typ string) bool { return meta.IsStatusConditionTrue(st.Conditions, typ) }
	s := SecretState{
		Namespace: m.Namespace, Name: m.Name, Strategy: strategy, Versions: versions,
		Ready:          isTrue(v1alpha1.ConditionReady),
		Overdue:        isTrue(v1alpha1.ConditionRotationOverdue),
		Stale:          isTrue(v1alpha1.ConditionStale),
		RotationFailed: isTrue(v1alpha1.ConditionRotationFailed),
		Decrypts:       true,
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c != nil && c.Reason == v1alpha1.ReasonDecryptionFailed {
		s.Decrypts = false
	}
	if m.Spec.Rotation != nil {
		s.Policy = m.Spec.Rotation.PolicyRef.Name
	}
	if st.LastChangedTime != nil {
		s.LastChanged = &st.LastChangedTime.Time
	}
	if st.LastRotatedTime != nil {
		s.LastRotated = &st.LastRotatedTime.Time
	}
	if st.NextRotationTime != nil {
		s.NextRotation = &st.NextRotationTime.Time
	}
	return s
}

var secretLabels = []string{"namespace", "name"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "secret", name), help, labels, nil)
}

var (
	infoDesc           = desc("info", "One series per ManagedSecret with its rotation policy and strategy (empty without a policy).", "namespace", "name", "rotation_policy", "strategy")
	readyDesc          = desc("ready", "1 when the secret's Ready condition is True.", secretLabels...)
	lastChangedDesc    = desc("last_changed_timestamp_seconds", "When the value or its staging labels last changed (AWS's LastChangedDate).", secretLabels...)
	lastRotatedDesc    = desc("last_rotated_timestamp_seconds", "When a rotation last completed (absent before the first).", secretLabels...)
	nextRotationDesc   = desc("next_rotation_timestamp_seconds", "When the next rotation is due (absent without a schedule).", secretLabels...)
	versionsDesc       = desc("versions", "Versions of the secret holding a staging label, or with a label change under way; deprecated versions (up to AWS's 100) are not in the operator's cache and not counted.", secretLabels...)
	overdueDesc        = desc("rotation_overdue", "1 when a scheduled rotation did not complete within its window.", secretLabels...)
	staleDesc          = desc("stale", "1 when the current value is older than the policy's maxAgeDays.", secretLabels...)
	rotationFailedDesc = desc("rotation_failed", "1 when the last rotation attempt failed.", secretLabels...)
	decryptionDesc     = desc("decryption_failing", "1 when the current version does not decrypt.", secretLabels...)
)

// SecretCollector exports the per-secret series from the states List yields at each scrape, so the
// series always describe the secrets that exist (a deleted secret's series disappear).
type SecretCollector struct {
	List func(yield func(SecretState))
}

// Describe sends the descriptors.
func (c SecretCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{infoDesc, readyDesc, lastChangedDesc, lastRotatedDesc, nextRotationDesc, versionsDesc, overdueDesc, staleDesc, rotationFailedDesc, decryptionDesc} {
		ch <- d
	}
}

// Collect sends one set of series per secret.
func (c SecretCollector) Collect(ch chan<- prometheus.Metric) {
	c.List(func(s SecretState) {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		flag := func(d *prometheus.Desc, b bool) {
			v := 0.0
			if b {
				v = 1
			}
			gauge(d, v, s.Namespace, s.Name)
		}
		stamp := func(d *prometheus.Desc, t *time.Time) {
			if t != nil {
				gauge(d, float64(t.Unix()), s.Namespace, s.Name)
			}
		}
		gauge(infoDesc, 1, s.Namespace, s.Name, s.Policy, s.Strategy)
		flag(readyDesc, s.Ready)
		flag(overdueDesc, s.Overdue)
		flag(staleDesc, s.Stale)
		flag(rotationFailedDesc, s.RotationFailed)
		flag(decryptionDesc, !s.Decrypts)
		stamp(lastChangedDesc, s.LastChanged)
		stamp(lastRotatedDesc, s.LastRotated)
		stamp(nextRotationDesc, s.NextRotation)
		gauge(versionsDesc, float64(s.Versions), s.Namespace, s.Name)
	})
}
