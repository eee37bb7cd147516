package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
)

// figure is one row of the table. With a target, Ratio is Value/Target (to be >= 1 when Op is
// ">=", <= 1 when Op is "<="); a target of 0 has no ratio and is met by a value of 0. NA says why
// a figure could not be measured: it then has no value, and its target counts as not measured.
type figure struct {
	Key        string   `json:"key"`
	Name       string   `json:"name"`
	Value      float64  `json:"value"`
	Unit       string   `json:"unit"`
	Op         string   `json:"op,omitempty"`
	Target     *float64 `json:"target,omitempty"`
	TargetNote string   `json:"targetNote,omitempty"`
	Ratio      *float64 `json:"ratio,omitempty"`
	OK         *bool    `json:"ok,omitempty"`
	NA         string   `json:"na,omitempty"`
}

// notMeasured turns f into an n/a row saying why.
func notMeasured(f figure, why string) figure {
	f.Value, f.Ratio, f.OK, f.NA = 0, nil, nil, why
	return f
}

// targetKeys are the figures with a target that a run of every phase produces.
var targetKeys = []string{
	"throughput_n5000", "writes_per_secret_n1000", "writes_per_secret_n5000", "idle_writes_n1000", "idle_writes_n5000",
	"apiserver_cpu_ms_n1000", "apiserver_cpu_ms_n5000", "peak_rss_n5000", "rss_per_secret_n5000",
	"coldstart_synced_seconds", "coldstart_writes", "deprecated_rss_ratio", "rotation_writes",
}

func info(key, name string, value float64, unit string) figure {
	return figure{Key: key, Name: name, Value: value, Unit: unit}
}

func target(key, name string, value float64, unit, op string, t float64, note string) figure {
	f := figure{Key: key, Name: name, Value: value, Unit: unit, Op: op, Target: &t, TargetNote: note}
	var ok bool
	switch op {
	case ">=":
		ok = value >= t
	default:
		ok = value <= t
	}
	f.OK = &ok
	if t != 0 {
		r := value / t
		f.Ratio = &r
	}
	return f
}

func figures(res *results, o *options) []figure {
	var out []figure
	n := thousands
	if c := res.Ceiling; c != nil {
		out = append(out, info("ceiling_rate", fmt.Sprintf("Plain Secret creates, %d clients, N=%s (API-server ceiling)", c.Clients, n(c.N)), c.Rate, "/s"),
			info("ceiling_apiserver_cpu_ms", "API-server CPU per plain Secret create", c.APIServerCPUPerObjMs, "ms"))
	}
	for _, lr := range []struct {
		key string
		r   *loadResult
	}{{"n1000", res.N1000}, {"n5000", res.N5000}} {
		r := lr.r
		if r == nil {
			continue
		}
		at := fmt.Sprintf("N=%s", n(r.N))
		rateName := fmt.Sprintf("New ManagedSecrets, first create to all Ready, %s (%d clients)", at, r.Clients)
		var rate figure
		switch {
		case lr.key != "n5000":
			rate = info("throughput_"+lr.key, rateName, r.Rate, "/s")
		case res.Ceiling != nil && res.Ceiling.Rate > 0:
			rate = target("throughput_"+lr.key, rateName, r.Rate, "/s", ">=", 0.8*res.Ceiling.Rate/4, fmt.Sprintf("0.8 × ceiling %.0f/s ÷ 4", res.Ceiling.Rate))
		default:
			rate = info("throughput_"+lr.key, rateName, r.Rate, "/s")
			rate.TargetNote = "0.8 × ceiling ÷ 4: needs the ceiling phase in the same run"
		}
		if r.Rate == 0 {
			rate = notMeasured(rate, "no time between the first create and the last Ready")
		}
		out = append(out, rate)
		out = append(out,
			info("latency_p50_"+lr.key, "Create to projected Secret, p50, "+at, r.Latency.P50/1000, "s"),
			info("latency_p99_"+lr.key, "Create to projected Secret, p99, "+at, r.Latency.P99/1000, "s"),
			target("writes_per_secret_"+lr.key, "API writes per new ManagedSecret (Events included), "+at, r.WritesPerObj, "", "<=", 4, ""),
			info("requests_per_secret_"+lr.key, "API requests (all verbs) per new ManagedSecret, "+at, r.RequestsPerObj, ""),
			info("key_status_writes_"+lr.key, "Writes of the key status ConfigMap by the periodic key pass (not per secret; left out above), "+at, r.KeyStatusWrites, ""),
			target("idle_writes_"+lr.key, fmt.Sprintf("Writes in %.0f s idle after all Ready, %s", r.IdleSeconds, at), r.IdleWrites, "", "<=", 0, ""),
			target("apiserver_cpu_ms_"+lr.key, "API-server CPU per new secret, "+at, r.APIServerCPUMs, "ms", "<=", 5, ""),
			info("operator_cpu_ms_"+lr.key, "Operator CPU per new secret, "+at, r.OperatorCPUMs, "ms"),
			info("etcd_cpu_ms_"+lr.key, "etcd CPU per new secret, "+at, r.EtcdCPUMs, "ms"),
		)
		if lr.key == "n5000" {
			out = append(out,
				info("idle_rss_"+lr.key, "Operator RSS idle (no ManagedSecrets)", r.IdleRSSMiB, "MiB"),
				target("peak_rss_"+lr.key, fmt.Sprintf("Operator peak RSS, %s (VmHWM %.1f MiB)", at, r.HWMMiB), r.PeakRSSMiB, "MiB", "<=", 100, ""),
				info("steady_rss_"+lr.key, "Operator RSS steady, "+at, r.SteadyRSSMiB, "MiB"),
				target("rss_per_secret_"+lr.key, "RSS per secret, (steady − idle)/N, "+at, r.RSSPerObjKiB, "KiB", "<=", 10, ""))
			heap := info("heap_per_secret_"+lr.key, fmt.Sprintf("Go heap live per secret, (steady − idle)/N (%.1f → %.1f MiB), %s", r.IdleHeapMiB, r.SteadyHeapMiB, at), r.HeapPerObjKiB, "KiB")
			if r.IdleHeapMiB == 0 || r.SteadyHeapMiB == 0 {
				heap = notMeasured(heap, "the operator exported no go_gc_heap_live_bytes")
			}
			out = append(out, heap)
		} else {
			out = append(out, info("peak_rss_"+lr.key, "Operator peak RSS, "+at, r.PeakRSSMiB, "MiB"))
		}
	}
	if c := res.ColdStart; c != nil {
		at := "N=" + n(c.N)
		notSynced := ""
		if !c.Synced {
			notSynced = fmt.Sprintf(" (not synced when the harness stopped waiting, %s)", coldLimit)
		}
		out = append(out,
			info("coldstart_create_rate", "Rate creating the cold-start set, "+at, c.CreateRate, "/s"),
			target("coldstart_synced_seconds", "Cold start: restart to every ManagedSecret reconciled once, "+at+notSynced, c.SyncedSeconds, "s", "<=", o.coldWindow.Seconds(), ""),
			target("coldstart_writes", fmt.Sprintf("Cold start: writes from the restart until synced (%.0f s), %s", c.WindowSeconds, at), c.Writes, "", "<=", 0, ""),
			info("coldstart_peak_rss", "Cold start: operator peak RSS, "+at, c.PeakRSSMiB, "MiB"),
			info("coldstart_steady_rss", "Cold start: operator RSS after the window, "+at, c.SteadyRSSMiB, "MiB"))
	}
	if d := res.Deprecated; d != nil {
		ratio := target("deprecated_rss_ratio", fmt.Sprintf("RSS, %s secrets × %d deprecated versions vs × 1 version (%.1f vs %.1f MiB)", n(d.Secrets), d.VersionsPerSecret, d.Many.SteadyRSSMiB, d.One.SteadyRSSMiB),
			d.Ratio, "×", "<=", 1.10, "")
		if d.One.SteadyRSSMiB == 0 {
			ratio = notMeasured(ratio, "no RSS reading with one version")
		}
		heap := info("deprecated_heap_ratio", fmt.Sprintf("Go heap live, the same (%.1f vs %.1f MiB)", d.Many.HeapLiveMiB, d.One.HeapLiveMiB), d.HeapRatio, "×")
		if d.One.HeapLiveMiB == 0 || d.Many.HeapLiveMiB == 0 {
			heap = notMeasured(heap, "the operator exported no go_gc_heap_live_bytes")
		}
		out = append(out, ratio,
			info("deprecated_peak_ratio", fmt.Sprintf("Peak RSS, the same (%.1f vs %.1f MiB)", d.Many.PeakRSSMiB, d.One.PeakRSSMiB), d.PeakRatio, "×"),
			heap)
	}
	if u := res.Unrelated; u != nil {
		out = append(out, info("unrelated_rss_delta", fmt.Sprintf("RSS change after %s unrelated %d KiB Secrets (%.1f → %.1f MiB)", n(u.N), u.SizeBytes/1024, u.BeforeMiB, u.AfterMiB), u.DeltaMiB, "MiB"))
	}
	if r := res.Rotation; r != nil {
		at := "N=" + n(r.N)
		out = append(out,
			target("rotation_writes", "API writes per rotation (strategy password), "+at, r.WritesPerRot, "", "<=", 10, ""),
			info("rotation_key_status_writes", "Writes of the key status ConfigMap by the periodic key pass meanwhile (left out above)", r.KeyStatusWrites, ""),
			info("rotation_rate", fmt.Sprintf("Rotations per second (%d at a time), %s", o.clients, at), r.Rate, "/s"),
			info("rotation_latency_p50", "Rotation, Job created to rotated, p50", r.Latency.P50/1000, "s"),
			info("rotation_operator_cpu_ms", "Operator CPU per rotation", r.OperatorCPUMs, "ms"),
			info("rotation_apiserver_cpu_ms", "API-server CPU per rotation", r.APIServerCPUMs, "ms"))
	}
	return out
}

func thousands(v int) string {
	s := fmt.Sprint(v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func formatValue(v float64, unit string) string {
	var num string
	switch {
	case math.IsInf(v, 0) || math.IsNaN(v):
		num = fmt.Sprint(v)
	case v == math.Trunc(v) && math.Abs(v) >= 1 || v == 0:
		num = fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		num = fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		num = fmt.Sprintf("%.1f", v)
	default:
		num = fmt.Sprintf("%.2f", v)
	}
	return withUnit(num, unit)
}

func withUnit(num, unit string) string {
	switch unit {
	case "":
		return num
	case "/s", "×":
		return num + unit
	default:
		return num + " " + unit
	}
}

func renderTable(res *results) string {
	var b strings.Builder
	scale := ""
	if res.Meta.Scale != 1 {
		scale = fmt.Sprintf(" — KSM_BENCH_SCALE=%g: the targets are defined at scale 1", res.Meta.Scale)
	}
	fmt.Fprintf(&b, "kube-secrets-manager benchmark, %s, %d CPUs, load average %s at the start%s\n\n", res.Meta.Started.Format("2006-01-02 15:04 MST"), res.Meta.CPUs, res.LoadAvg["start"], scale)
	b.WriteString("| figure | value | target | ratio |\n|---|---|---|---|\n")
	for _, f := range res.Figures {
		tgt, ratio := "–", "–"
		value := formatValue(f.Value, f.Unit)
		if f.Target != nil && f.Value != *f.Target && value == formatValue(*f.Target, f.Unit) {
			// A difference from the target too small for the usual digits.
			value = withUnit(fmt.Sprintf("%.4f", f.Value), f.Unit)
		}
		if f.NA != "" {
			value = "n/a (" + f.NA + ")"
		}
		if f.Target != nil {
			sign := "≤"
			if f.Op == ">=" {
				sign = "≥"
			}
			tgt = sign + " " + formatValue(*f.Target, f.Unit)
			if f.TargetNote != "" {
				tgt += " (" + f.TargetNote + ")"
			}
			if f.Ratio != nil {
				ratio = fmt.Sprintf("%.2f", *f.Ratio)
			}
			switch {
			case f.NA != "":
			case f.OK != nil && !*f.OK:
				ratio += " ✗"
			default:
				ratio += " ✓"
			}
		} else if f.TargetNote != "" {
			tgt = "(" + f.TargetNote + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.Name, value, tgt, ratio)
	}
	if len(res.Errors) > 0 {
		b.WriteString("\nFailed phases:\n")
		for _, p := range sortedKeys(res.Errors) {
			fmt.Fprintf(&b, "- %s: %s\n", p, res.Errors[p])
		}
	}
	return b.String()
}

// breakdown lists where the operator's requests went, per secret.
func breakdown(res *results) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("Operator requests (rest_client_requests_total, METHOD CODE):")
	for _, lr := range []*loadResult{res.N1000, res.N5000} {
		if lr == nil {
			continue
		}
		per := float64(lr.N)
		line("- %d new ManagedSecrets: %s", lr.N, describe(lr.Requests, per))
		line("  CPU per secret: operator %.1f ms, API server %.1f ms (of which idle baseline ~%.1f ms: %.0f ms/s while idle), etcd %.1f ms, this harness %.1f ms",
			lr.OperatorCPUMs, lr.APIServerCPUMs, lr.APIServerIdleCPUMsPerSec*lr.SettledSeconds/per, lr.APIServerIdleCPUMsPerSec, lr.EtcdCPUMs, lr.HarnessCPUMs)
		line("  reconciles: %s", describe(lr.Reconciles, per))
		line("  idle %.0f s: %s", lr.IdleSeconds, describe(lr.IdleRequests, 0))
		if lr.Audit != nil {
			line("  by resource (audit): %s", describe(lr.Audit, per))
			line("  idle, by resource (audit): %s", describe(lr.IdleAudit, 0))
		}
	}
	if c := res.ColdStart; c != nil {
		line("- cold start over %d, until synced (%.0f s): %s", c.N, c.WindowSeconds, describe(c.Requests, float64(c.N)))
		line("  reconciles: %s", describe(c.Reconciles, float64(c.N)))
		if c.Audit != nil {
			line("  by resource (audit): %s", describe(c.Audit, float64(c.N)))
		}
	}
	if d := res.Deprecated; d != nil {
		line("- restart over %d secrets × 1 version: %s", d.Secrets, describe(d.One.Requests, 0))
		line("- restart over %d secrets × %d deprecated versions: %s", d.Secrets, d.VersionsPerSecret, describe(d.Many.Requests, 0))
	}
	if u := res.Unrelated; u != nil {
		line("- while %d unrelated Secrets appeared: %s", u.N, describe(u.Requests, 0))
	}
	if r := res.Rotation; r != nil {
		line("- %d rotations: %s", r.N, describe(r.Requests, float64(r.N)))
		line("  reconciles: %s", describe(r.Reconciles, float64(r.N)))
		if r.Audit != nil {
			line("  by resource (audit): %s", describe(r.Audit, float64(r.N)))
		}
	}
	return b.String()
}

// check is `bench check [-allow-missing] FILE`: it exits 1 when a figure misses its target or a
// target was not measured (unless -allow-missing), 2 when the file cannot be read.
func check(args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	allowMissing := fs.Bool("allow-missing", false, "pass when some targets were not measured (a run of only some phases)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := "bin/bench/results.json"
	if fs.NArg() > 0 {
		path = fs.Arg(0)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench check:", err)
		return 2
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		fmt.Fprintf(os.Stderr, "bench check: %s: %v\n", path, err)
		return 2
	}
	if res.Meta.Scale != 1 {
		fmt.Printf("note: measured at KSM_BENCH_SCALE=%g; the targets are defined at scale 1\n", res.Meta.Scale)
	}
	failed := 0
	seen, na := map[string]bool{}, map[string]string{}
	for _, f := range res.Figures {
		if f.Target != nil && f.NA != "" {
			na[f.Key] = " (n/a: " + f.NA + ")"
		}
		if f.Target == nil || f.NA != "" {
			continue
		}
		seen[f.Key] = true
		ok := f.Op == ">=" && f.Value >= *f.Target || f.Op != ">=" && f.Value <= *f.Target
		status := "ok    "
		if !ok {
			status = "MISSED"
			failed++
		}
		ratio := "–"
		if *f.Target != 0 {
			ratio = fmt.Sprintf("%.2f", f.Value / *f.Target)
		}
		fmt.Printf("%s %-26s %s %s %s (ratio %s)  %s\n", status, f.Key, formatValue(f.Value, f.Unit), f.Op, formatValue(*f.Target, f.Unit), ratio, f.Name)
	}
	missing := 0
	for _, k := range targetKeys {
		if !seen[k] {
			missing++
			fmt.Printf("%s %-26s not measured%s\n", map[bool]string{true: "skip  ", false: "MISSING"}[*allowMissing], k, na[k])
		}
	}
	for p, e := range res.Errors {
		fmt.Printf("FAILED phase %s: %s\n", p, e)
	}
	switch {
	case failed > 0:
		fmt.Printf("%d target(s) missed\n", failed)
		return 1
	case missing > 0 && !*allowMissing:
		fmt.Printf("%d target(s) not measured (run every phase, or pass -allow-missing)\n", missing)
		return 1
	case len(res.Errors) > 0:
		return 1
	}
	fmt.Println("every measured target met")
	return 0
}
