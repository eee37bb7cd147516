package metrics

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// secretFamily is one per-secret metric: value reports a secret's sample (false: none).
type secretFamily struct {
	name, help string
	info       bool // labelled with the policy and strategy too
	value      func(s *SecretState) (float64, bool)
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func stamp(t *time.Time) (float64, bool) {
	if t == nil {
		return 0, false
	}
	return float64(t.Unix()), true
}

// secretFamilies in the order of their names, as a registry would write them.
var secretFamilies = []secretFamily{
	{name: "decryption_failing", help: "1 when the current version does not decrypt.",
		value: func(s *SecretState) (float64, bool) { return flag(!s.Decrypts), true }},
	{name: "info", help: "One series per ManagedSecret with its rotation policy and strategy (empty without a policy).", info: true,
		value: func(*SecretState) (float64, bool) { return 1, true }},
	{name: "last_changed_timestamp_seconds", help: "When the value or its staging labels last changed (AWS's LastChangedDate).",
		value: func(s *SecretState) (float64, bool) { return stamp(s.LastChanged) }},
	{name: "last_rotated_timestamp_seconds", help: "When a rotation last completed (absent before the first).",
		value: func(s *SecretState) (float64, bool) { return stamp(s.LastRotated) }},
	{name: "next_rotation_timestamp_seconds", help: "When the next rotation is due (absent without a schedule).",
		value: func(s *SecretState) (float64, bool) { return stamp(s.NextRotation) }},
	{name: "ready", help: "1 when the secret's Ready condition is True.",
		value: func(s *SecretState) (float64, bool) { return flag(s.Ready), true }},
	{name: "rotation_failed", help: "1 when the last rotation attempt failed.",
		value: func(s *SecretState) (float64, bool) { return flag(s.RotationFailed), true }},
	{name: "rotation_overdue", help: "1 when a scheduled rotation did not complete within its window.",
		value: func(s *SecretState) (float64, bool) { return flag(s.Overdue), true }},
	{name: "stale", help: "1 when the current value is older than the policy's maxAgeDays.",
		value: func(s *SecretState) (float64, bool) { return flag(s.Stale), true }},
	{name: "versions", help: "Versions of the secret holding a staging label, or with a label change under way; deprecated versions (up to AWS's 100) are not in the operator's cache and not counted.",
		value: func(s *SecretState) (float64, bool) { return float64(s.Versions), true }},
}

// WriteSecretSeries writes the per-secret series of states in Prometheus's text format (0.0.4),
// a family at a time, sorted by name and namespace. Families without a sample are left out.
func WriteSecretSeries(w io.Writer, states []SecretState) error {
	slices.SortFunc(states, func(a, b SecretState) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Namespace, b.Namespace))
	})
	bw := bufio.NewWriterSize(w, 32<<10)
	line := make([]byte, 0, 256)
	for _, f := range secretFamilies {
		name := prometheus.BuildFQName(Namespace, "secret", f.name)
		started := false
		for i := range states {
			s := &states[i]
			v, ok := f.value(s)
			if !ok {
				continue
			}
			if !started {
				started = true
				fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s gauge\n", name, escapeHelp(f.help), name)
			}
			line = append(line[:0], name...)
			line = appendLabel(append(line, '{'), "name", s.Name)
			line = appendLabel(append(line, ','), "namespace", s.Namespace)
			if f.info {
				line = appendLabel(append(line, ','), "rotation_policy", s.Policy)
				line = appendLabel(append(line, ','), "strategy", s.Strategy)
			}
			line = strconv.AppendFloat(append(line, '}', ' '), v, 'g', -1, 64)
			if _, err := bw.Write(append(line, '\n')); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

func appendLabel(b []byte, name, value string) []byte {
	b = append(append(b, name...), '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// textFormat is what the wrapped handler is asked for: the per-secret series follow in it.
const textFormat = "text/plain;version=0.0.4"

// SecretSeries serves the per-secret series on a metrics endpoint, after the registry's. They are
// written straight from the cache instead of being gathered: gathering built about ten metric
// objects per secret for every scrape (about 20 MiB at 5,000 secrets, which the garbage collector
// then counted as live when it ran during a scrape), while writing them costs one small record
// per secret.
type SecretSeries struct {
	// List yields the secrets' states, read-only, on each scrape.
	List func(yield func(SecretState))
}

// Wrap returns a handler that answers path with next's exposition, asked for in the text format
// and uncompressed, followed by the per-secret series, gzip-compressed when the client accepts
// it; other paths, and answers other than 200, are next's own.
func (s SecretSeries) Wrap(path string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			next.ServeHTTP(w, r)
			return
		}
		inner := r.Clone(r.Context())
		inner.Header.Set("Accept", textFormat)
		inner.Header.Del("Accept-Encoding")
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		next.ServeHTTP(rec, inner)
		if rec.code != http.StatusOK {
			maps.Copy(w.Header(), rec.header)
			w.WriteHeader(rec.code)
			_, _ = w.Write(rec.body.Bytes())
			return
		}
		var states []SecretState
		s.List(func(st SecretState) { states = append(states, st) })
		maps.Copy(w.Header(), rec.header)
		w.Header().Del("Content-Length")
		var out io.Writer = w
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzipWriters.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				_ = gz.Close()
				gzipWriters.Put(gz)
			}()
			out = gz
		}
		w.WriteHeader(http.StatusOK)
		if _, err := out.Write(rec.body.Bytes()); err != nil {
			return
		}
		_ = WriteSecretSeries(out, states)
	})
}

// recorder keeps the wrapped handler's answer (the registry's exposition: small).
type recorder struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// gzipWriters compress at the fastest level: the exposition repeats itself, so it shrinks about
// as much, with a third of the default level's buffers.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// acceptsGzip reads Accept-Encoding as RFC 9110 does: gzip (or x-gzip) is acceptable with a
// q-value above zero ("q=0", "q=0.0" and "q=0.000" refuse it), and so is "*" unless gzip is named.
func acceptsGzip(r *http.Request) bool {
	named, wildcard := false, false
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		accepted := qualityAboveZero(params)
		switch coding {
		case "gzip", "x-gzip":
			if accepted {
				return true
			}
			named = true
		case "*":
			wildcard = wildcard || accepted
		}
	}
	return wildcard && !named
}

// qualityAboveZero reports whether an Accept-Encoding entry's parameters leave its q-value above
// zero; no q means 1, and a q that is not a number is ignored as the RFC's grammar allows only
// numbers there.
func qualityAboveZero(params string) bool {
	for _, p := range strings.Split(params, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		return err != nil || q > 0
	}
	return true
}
