package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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

// Collect sends one set of series per secret. A scrape makes about ten series per secret, so
// each secret's series share one allocation: their label pairs (name and namespace are the prefix
// of the info series' sorted labels) and their gauges. client_golang's const metrics took six
// allocations a series, which at 10,000 secrets was most of a scrape's garbage.
func (c SecretCollector) Collect(ch chan<- prometheus.Metric) {
	c.List(func(s SecretState) {
		set := &secretSeries{}
		values := [...]*string{&s.Name, &s.Namespace, &s.Policy, &s.Strategy}
		for i := range set.pairs {
			set.pairs[i].Name, set.pairs[i].Value = &sortedInfoLabels[i], values[i]
			set.labels[i] = &set.pairs[i]
		}
		n := 0
		gauge := func(d *prometheus.Desc, v float64, labels []*dto.LabelPair) {
			g := &set.series[n]
			n++
			g.desc, g.labels, g.value = d, labels, v
			ch <- g
		}
		// Capacity 2: a wrapping registerer appending its labels must not write into the info
		// series' labels.
		secret := set.labels[:2:2]
		flag := func(d *prometheus.Desc, b bool) {
			v := 0.0
			if b {
				v = 1
			}
			gauge(d, v, secret)
		}
		stamp := func(d *prometheus.Desc, t *time.Time) {
			if t != nil {
				gauge(d, float64(t.Unix()), secret)
			}
		}
		gauge(infoDesc, 1, set.labels[:])
		flag(readyDesc, s.Ready)
		flag(overdueDesc, s.Overdue)
		flag(staleDesc, s.Stale)
		flag(rotationFailedDesc, s.RotationFailed)
		flag(decryptionDesc, !s.Decrypts)
		stamp(lastChangedDesc, s.LastChanged)
		stamp(lastRotatedDesc, s.LastRotated)
		stamp(nextRotationDesc, s.NextRotation)
		gauge(versionsDesc, float64(s.Versions), secret)
	})
}

// sortedInfoLabels are the info series' label names in the order the exposition wants (sorted);
// the other series have the first two.
var sortedInfoLabels = [...]string{"name", "namespace", "rotation_policy", "strategy"}

// secretSeries holds one secret's series for one scrape.
type secretSeries struct {
	pairs  [len(sortedInfoLabels)]dto.LabelPair
	labels [len(sortedInfoLabels)]*dto.LabelPair
	series [10]series
}

// series is one per-secret gauge; the registry reads it once, while it gathers.
type series struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
	gauge  dto.Gauge
}

func (g *series) Desc() *prometheus.Desc { return g.desc }

func (g *series) Write(out *dto.Metric) error {
	g.gauge.Value = &g.value
	out.Label, out.Gauge = g.labels, &g.gauge
	return nil
}
