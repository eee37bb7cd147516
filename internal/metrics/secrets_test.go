package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The per-secret series as a scrape shows them: each secret's own labels on each of its series,
// the info series with its policy and strategy, and no timestamp series where there is no time.
func TestSecretCollectorExposition(t *testing.T) {
	changed := time.Unix(1700000000, 0)
	next := time.Unix(1700086400, 0)
	states := []SecretState{
		{Namespace: "team-a", Name: "db", Policy: "weekly", Strategy: "postgres-single-user", Ready: true,
			Overdue: true, Decrypts: true, LastChanged: &changed, NextRotation: &next, Versions: 2},
		{Namespace: "team-b", Name: "api-key", Stale: true, RotationFailed: true, Decrypts: false, Versions: 1},
	}
	c := SecretCollector{List: func(yield func(SecretState)) {
		for _, s := range states {
			yield(s)
		}
	}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP kube_secrets_manager_secret_decryption_failing 1 when the current version does not decrypt.
# TYPE kube_secrets_manager_secret_decryption_failing gauge
kube_secrets_manager_secret_decryption_failing{name="api-key",namespace="team-b"} 1
kube_secrets_manager_secret_decryption_failing{name="db",namespace="team-a"} 0
# HELP kube_secrets_manager_secret_info One series per ManagedSecret with its rotation policy and strategy (empty without a policy).
# TYPE kube_secrets_manager_secret_info gauge
kube_secrets_manager_secret_info{name="api-key",namespace="team-b",rotation_policy="",strategy=""} 1
kube_secrets_manager_secret_info{name="db",namespace="team-a",rotation_policy="weekly",strategy="postgres-single-user"} 1
# HELP kube_secrets_manager_secret_last_changed_timestamp_seconds When the value or its staging labels last changed (AWS's LastChangedDate).
# TYPE kube_secrets_manager_secret_last_changed_timestamp_seconds gauge
kube_secrets_manager_secret_last_changed_timestamp_seconds{name="db",namespace="team-a"} 1.7e+09
# HELP kube_secrets_manager_secret_next_rotation_timestamp_seconds When the next rotation is due (absent without a schedule).
# TYPE kube_secrets_manager_secret_next_rotation_timestamp_seconds gauge
kube_secrets_manager_secret_next_rotation_timestamp_seconds{name="db",namespace="team-a"} 1.7000864e+09
# HELP kube_secrets_manager_secret_ready 1 when the secret's Ready condition is True.
# TYPE kube_secrets_manager_secret_ready gauge
kube_secrets_manager_secret_ready{name="api-key",namespace="team-b"} 0
kube_secrets_manager_secret_ready{name="db",namespace="team-a"} 1
# HELP kube_secrets_manager_secret_rotation_failed 1 when the last rotation attempt failed.
# TYPE kube_secrets_manager_secret_rotation_failed gauge
kube_secrets_manager_secret_rotation_failed{name="api-key",namespace="team-b"} 1
kube_secrets_manager_secret_rotation_failed{name="db",namespace="team-a"} 0
# HELP kube_secrets_manager_secret_rotation_overdue 1 when a scheduled rotation did not complete within its window.
# TYPE kube_secrets_manager_secret_rotation_overdue gauge
kube_secrets_manager_secret_rotation_overdue{name="api-key",namespace="team-b"} 0
kube_secrets_manager_secret_rotation_overdue{name="db",namespace="team-a"} 1
# HELP kube_secrets_manager_secret_stale 1 when the current value is older than the policy's maxAgeDays.
# TYPE kube_secrets_manager_secret_stale gauge
kube_secrets_manager_secret_stale{name="api-key",namespace="team-b"} 1
kube_secrets_manager_secret_stale{name="db",namespace="team-a"} 0
# HELP kube_secrets_manager_secret_versions Versions of the secret holding a staging label, or with a label change under way; deprecated versions (up to AWS's 100) are not in the operator's cache and not counted.
# TYPE kube_secrets_manager_secret_versions gauge
kube_secrets_manager_secret_versions{name="api-key",namespace="team-b"} 1
kube_secrets_manager_secret_versions{name="db",namespace="team-a"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	// Gathered twice (two scrapes), the series are the same: nothing of one scrape leaks into the next.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// Under a registerer that adds its own labels (a wrapper appends them to each series' label pairs,
// which a secret's series share), every series carries them and keeps its own.
func TestSecretCollectorUnderAWrappingRegisterer(t *testing.T) {
	c := SecretCollector{List: func(yield func(SecretState)) {
		yield(SecretState{Namespace: "team-a", Name: "db", Policy: "weekly", Strategy: "password", Ready: true, Decrypts: true, Versions: 1})
	}}
	reg := prometheus.NewPedanticRegistry()
	prometheus.WrapRegistererWith(prometheus.Labels{"replica": "a"}, reg).MustRegister(c)
	want := `
# HELP kube_secrets_manager_secret_info One series per ManagedSecret with its rotation policy and strategy (empty without a policy).
# TYPE kube_secrets_manager_secret_info gauge
kube_secrets_manager_secret_info{name="db",namespace="team-a",replica="a",rotation_policy="weekly",strategy="password"} 1
# HELP kube_secrets_manager_secret_ready 1 when the secret's Ready condition is True.
# TYPE kube_secrets_manager_secret_ready gauge
kube_secrets_manager_secret_ready{name="db",namespace="team-a",replica="a"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kube_secrets_manager_secret_info", "kube_secrets_manager_secret_ready"); err != nil {
		t.Fatal(err)
	}
}
