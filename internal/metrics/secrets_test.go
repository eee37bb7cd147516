package metrics

import (
	"bytes"
	"compress/gzip"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeOf serves one scrape of the per-secret series of states after reg's metrics, as the
// metrics endpoint does, with the request's headers; it returns the answer and its body,
// decompressed when gzip was used.
func scrapeOf(t *testing.T, reg *prometheus.Registry, states []SecretState, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	listed := 0
	h := SecretSeries{List: func(yield func(SecretState)) {
		listed++
		for _, s := range states {
			yield(s)
		}
	}}.Wrap("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body := rec.Body.Bytes()
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	if path != "/metrics" && listed != 0 {
		t.Fatalf("%s listed the secrets", path)
	}
	return resp, string(body)
}

// parsed is a scrape's body as metric families; it fails the test when the body is not a valid
// text exposition (a family written twice is not).
func parsed(t *testing.T, body string) prometheus.Gatherer {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v\n%s", err, body)
	}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return slices.SortedFunc(maps.Values(families), func(a, b *dto.MetricFamily) int {
			return strings.Compare(a.GetName(), b.GetName())
		}), nil
	})
}

func registryWithACounter() *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "kube_secrets_manager_decryption_failures_total", Help: "Versions that failed to decrypt when read."})
	c.Add(3)
	reg.MustRegister(c)
	return reg
}

const counterExposition = `
# HELP kube_secrets_manager_decryption_failures_total Versions that failed to decrypt when read.
# TYPE kube_secrets_manager_decryption_failures_total counter
kube_secrets_manager_decryption_failures_total 3
`

// The per-secret series as a scrape shows them, after the registry's metrics: each secret's own
// labels on each of its series, the info series with its policy and strategy, and no timestamp
// series where there is no time.
func TestSecretSeriesExposition(t *testing.T) {
	changed := time.Unix(1700000000, 0)
	next := time.Unix(1700086400, 0)
	states := []SecretState{
		{Namespace: "team-a", Name: "db", Policy: "weekly", Strategy: "postgres-single-user", Ready: true,
			Overdue: true, Decrypts: true, LastChanged: &changed, NextRotation: &next, Versions: 2},
		{Namespace: "team-b", Name: "api-key", Stale: true, RotationFailed: true, Decrypts: false, Versions: 1},
	}
	reg := registryWithACounter()
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
	for _, header := range []http.Header{{}, {"Accept": {"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"}}} {
		resp, body := scrapeOf(t, reg, states, "/metrics", header)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("answer %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		// Twice (two scrapes), the series are the same: nothing of one scrape leaks into the next.
		if err := testutil.GatherAndCompare(parsed(t, body), strings.NewReader(counterExposition+want)); err != nil {
			t.Fatal(err)
		}
	}
}

// Compressed when the client accepts gzip (Prometheus does), plain otherwise.
func TestSecretSeriesGzip(t *testing.T) {
	states := []SecretState{{Namespace: "team-a", Name: "db", Ready: true, Decrypts: true, Versions: 1}}
	reg := registryWithACounter()
	for _, enc := range []string{"gzip", "deflate, gzip;q=0.5", ""} {
		resp, body := scrapeOf(t, reg, states, "/metrics", http.Header{"Accept-Encoding": {enc}})
		if zipped := resp.Header.Get("Content-Encoding") == "gzip"; zipped != strings.Contains(enc, "gzip") {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", enc, resp.Header.Get("Content-Encoding"))
		}
		want := counterExposition + `
# HELP kube_secrets_manager_secret_ready 1 when the secret's Ready condition is True.
# TYPE kube_secrets_manager_secret_ready gauge
kube_secrets_manager_secret_ready{name="db",namespace="team-a"} 1
`
		if err := testutil.GatherAndCompare(parsed(t, body), strings.NewReader(want), "kube_secrets_manager_decryption_failures_total", "kube_secrets_manager_secret_ready"); err != nil {
			t.Fatal(err)
		}
	}
}

// A failed gather is answered as the registry's handler answers it, with no series after it;
// other paths are the wrapped handler's own, and no secret is listed for them.
func TestSecretSeriesOnlyOnAGoodMetricsAnswer(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(badCollector{})
	states := []SecretState{{Namespace: "team-a", Name: "db", Decrypts: true}}
	resp, body := scrapeOf(t, reg, states, "/metrics", nil)
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "kube_secrets_manager_secret_") {
		t.Fatalf("a failed gather: %d\n%s", resp.StatusCode, body)
	}
	resp, body = scrapeOf(t, registryWithACounter(), states, "/other", nil)
	if strings.Contains(body, "kube_secrets_manager_secret_") {
		t.Fatalf("another path: %d\n%s", resp.StatusCode, body)
	}
}

// Without secrets (or on a replica that is not the leader) there are no per-secret families.
func TestSecretSeriesWithoutSecrets(t *testing.T) {
	_, body := scrapeOf(t, registryWithACounter(), nil, "/metrics", nil)
	if err := testutil.GatherAndCompare(parsed(t, body), strings.NewReader(counterExposition)); err != nil {
		t.Fatal(err)
	}
}

// Label values are escaped as the text format wants (Kubernetes names never need it; the writer
// does not rely on that).
func TestSecretSeriesEscapesLabelValues(t *testing.T) {
	odd := "a\"b\\c\nd"
	_, body := scrapeOf(t, prometheus.NewPedanticRegistry(), []SecretState{{Namespace: "ns", Name: odd, Policy: odd, Decrypts: true}}, "/metrics", nil)
	families, err := parsed(t, body).Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "name" && l.GetValue() != odd {
					t.Fatalf("%s: name %q, want %q", f.GetName(), l.GetValue(), odd)
				}
				found = found || l.GetName() == "rotation_policy" && l.GetValue() == odd
			}
		}
	}
	if !found {
		t.Fatalf("no info series with the policy\n%s", body)
	}
}

type badCollector struct{}

func (badCollector) Describe(chan<- *prometheus.Desc) {}

func (badCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("bad", "bad", nil, nil), io.ErrUnexpectedEOF)
}

// A client that refuses gzip with any spelling of a zero q-value gets the plain text; "*" accepts
// gzip unless gzip itself is refused.
func TestAcceptsGzipReadsQValues(t *testing.T) {
	for _, c := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"identity, gzip;q=0.5", true},
		{"gzip;q=1.0", true},
		{"gzip;q=0", false},
		{"gzip; q=0", false},
		{"gzip;q=0.0", false},
		{"gzip;q=0.000", false},
		{"gzip;Q=0", false},
		{"deflate, br", false},
		{"*", true},
		{"*;q=0", false},
		{"*, gzip;q=0", false},
		{"gzip;q=0, *", false},
		{"identity;q=0, *;q=0.1", true},
	} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if c.header != "" {
			r.Header.Set("Accept-Encoding", c.header)
		}
		if got := acceptsGzip(r); got != c.want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", c.header, got, c.want)
		}
	}
}
