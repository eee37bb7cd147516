package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads a /metrics endpoint.
func scrape(ctx context.Context, url string) ([]sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics parses the Prometheus text format well enough for counters and gauges.
func parseMetrics(r io.Reader) ([]sample, error) {
	var out []sample
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		smp := sample{labels: map[string]string{}}
		var rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			smp.name = line[:i]
			parseLabels(line[i+1:j], smp.labels)
			rest = strings.TrimSpace(line[j+1:])
		} else {
			name, value, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			smp.name, rest = name, strings.TrimSpace(value)
		}
		if f := strings.Fields(rest); len(f) > 0 {
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			smp.value = v
			out = append(out, smp)
		}
	}
	return out, s.Err()
}

func parseLabels(s string, into map[string]string) {
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return
		}
		key := strings.TrimSpace(s[:eq])
		var val strings.Builder
		i := eq + 2
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			if c == '"' {
				break
			}
			val.WriteByte(c)
		}
		into[key] = val.String()
		s = strings.TrimLeft(s[min(i+1, len(s)):], ", ")
	}
}

// managedSecretController is the controller (and work queue) name of the ManagedSecret reconciler.
const managedSecretController = "managedsecret"

// opMetrics is what the harness reads from the operator's /metrics.
type opMetrics struct {
	// Requests counts rest_client_requests_total by "METHOD CODE".
	Requests map[string]float64 `json:"requests"`
	// Reconciles counts controller_runtime_reconcile_total by "controller result".
	Reconciles map[string]float64 `json:"reconciles"`
	// Depth is workqueue_depth by queue; Active is controller_runtime_active_workers by controller.
	Depth  map[string]float64 `json:"-"`
	Active map[string]float64 `json:"-"`
	// HeapLive is go_gc_heap_live_bytes: the Go heap the last GC found reachable (0 when the
	// operator does not export it).
	HeapLive float64 `json:"-"`
}

func newOpMetrics(samples []sample) opMetrics {
	m := opMetrics{Requests: map[string]float64{}, Reconciles: map[string]float64{}, Depth: map[string]float64{}, Active: map[string]float64{}}
	for _, s := range samples {
		switch s.name {
		case "rest_client_requests_total":
			m.Requests[s.labels["method"]+" "+s.labels["code"]] += s.value
		case "controller_runtime_reconcile_total":
			m.Reconciles[s.labels["controller"]+" "+s.labels["result"]] += s.value
		case "workqueue_depth":
			m.Depth[s.labels["name"]] += s.value
		case "controller_runtime_active_workers":
			m.Active[s.labels["controller"]] += s.value
		case "go_gc_heap_live_bytes":
			m.HeapLive = s.value
		}
	}
	return m
}

var writeMethods = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// writes is POST+PUT+PATCH+DELETE, whatever the response code (a refused write still costs).
func (m opMetrics) writes() float64 {
	var n float64
	for k, v := range m.Requests {
		method, _, _ := strings.Cut(k, " ")
		if writeMethods[method] {
			n += v
		}
	}
	return n
}

func (m opMetrics) requests() float64 {
	var n float64
	for _, v := range m.Requests {
		n += v
	}
	return n
}

// reconciles of one controller ("" for all).
func (m opMetrics) reconciles(controller string) float64 {
	var n float64
	for k, v := range m.Reconciles {
		if c, _, _ := strings.Cut(k, " "); controller == "" || c == controller {
			n += v
		}
	}
	return n
}

// busy reports whether a queue holds work or a worker is reconciling.
func (m opMetrics) busy() bool {
	for _, v := range m.Depth {
		if v > 0 {
			return true
		}
	}
	for _, v := range m.Active {
		if v > 0 {
			return true
		}
	}
	return false
}

// minus is the counter difference m - before.
func (m opMetrics) minus(before opMetrics) opMetrics {
	return opMetrics{Requests: diff(m.Requests, before.Requests), Reconciles: diff(m.Reconciles, before.Reconciles), Depth: m.Depth, Active: m.Active, HeapLive: m.HeapLive}
}

func diff(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// describe lists the counters, largest first, optionally divided by per.
func describe(m map[string]float64, per float64) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		if per > 0 {
			fmt.Fprintf(&b, "%s %.0f (%.2f/secret)", k, m[k], m[k]/per)
		} else {
			fmt.Fprintf(&b, "%s %.0f", k, m[k])
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}
