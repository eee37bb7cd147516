// Command bench measures the operator at scale, as users run it: a fresh envtest control plane
// (kube-apiserver and etcd from KUBEBUILDER_ASSETS, the CRDs from config/crd/bases) per phase,
// and the operator binary (bin/kube-secrets-manager, `make build`) as its own process with the
// admin's kubeconfig. It samples the operator's RSS every 100 ms (/proc/PID/status VmRSS, and
// VmHWM), the CPU of the operator, kube-apiserver, etcd and itself (/proc/PID/stat), reads the
// operator's /metrics for its API requests (rest_client_requests_total; writes are POST, PUT,
// PATCH and DELETE, Events included), its work queues and its live Go heap
// (go_gc_heap_live_bytes), and times each ManagedSecret from its create to its projected Secret
// and to Ready with a watch. With -audit the API server also logs the operator's requests, which
// are then counted by verb and resource.
//
// Phases (-phases, default all; each on its own control plane):
//
//	ceiling     N plain Secret creates with 8 clients: the API server's own rate
//	n1000       1,000 new ManagedSecrets (10 namespaces, 8 clients), then 30 s idle once the
//	            operator's periodic key pass has counted them
//	n5000       the same with 5,000
//	coldstart   the operator restarted over 10,000 Ready ManagedSecrets: time until every one
//	            was reconciled once, and its writes in the first 60 s
//	deprecated  RSS over 1,000 secrets with 100 deprecated versions each vs one version each
//	unrelated   RSS before and after 10,000 unrelated 10 KiB Secrets appear
//	rotation    one rotation (strategy password) of each of 1,000 secrets, the CronJob and Job
//	            controllers and the pod played by the harness: writes per rotation
//
// KSM_BENCH_SCALE (or -scale) multiplies every N, for quick runs. It prints a markdown table
// (figure, value, target, ratio = value/target) and writes the figures as JSON
// (-out/results.json); it asserts nothing: `bench check FILE` (make bench-check) exits non-zero
// when a target is missed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

var allPhases = []string{"ceiling", "n1000", "n5000", "coldstart", "deprecated", "unrelated", "rotation"}

type options struct {
	manager            string
	crds               string
	out                string
	scale              float64
	clients            int
	workers            int
	idle               time.Duration
	settle             time.Duration
	coldWindow         time.Duration
	timeout            time.Duration
	keyCheckInterval   time.Duration
	deprecatedVersions int
	audit              bool
	operatorArgs       []string
	operatorEnv        []string
	phases             map[string]bool
}

// scaled is n times the scale, at least 10.
func (o *options) scaled(n int) int {
	return max(10, int(float64(n)*o.scale+0.5))
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(check(os.Args[2:]))
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.manager, "manager", "bin/kube-secrets-manager", "the operator binary (make build)")
	fs.StringVar(&o.crds, "crds", "config/crd/bases", "folder of CRDs to install")
	fs.StringVar(&o.out, "out", "bin/bench", "folder for results.json and the logs")
	scale := 1.0
	if v := os.Getenv("KSM_BENCH_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return nil, fmt.Errorf("KSM_BENCH_SCALE=%q is not a positive number", v)
		}
		scale = f
	}
	fs.Float64Var(&o.scale, "scale", scale, "multiply every N (default $KSM_BENCH_SCALE or 1)")
	fs.IntVar(&o.clients, "clients", 8, "concurrent creating clients")
	fs.IntVar(&o.workers, "workers", 8, "the operator's --workers")
	fs.DurationVar(&o.idle, "idle", 30*time.Second, "idle period after all are Ready, whose writes are counted")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "wait before a steady-state RSS reading")
	fs.DurationVar(&o.coldWindow, "cold-window", 60*time.Second, "window after a restart whose writes are counted")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "longest wait for a batch to become Ready")
	fs.DurationVar(&o.keyCheckInterval, "key-check-interval", time.Minute, "the operator's --key-check-interval")
	fs.IntVar(&o.deprecatedVersions, "deprecated-versions", 100, "deprecated versions per secret in the deprecated phase")
	fs.BoolVar(&o.audit, "audit", false, "log the operator's requests in the API server's audit log and count them by verb and resource (costs API-server CPU)")
	extra := fs.String("operator-args", "", "extra flags for the operator, space-separated")
	env := fs.String("operator-env", "", "extra environment of the operator alone (not the API server's or etcd's), space-separated NAME=VALUE, e.g. GOMEMLIMIT=460MiB as the chart's 512Mi limit sets it")
	phases := fs.String("phases", strings.Join(allPhases, ","), "comma-separated phases: "+strings.Join(allPhases, ", "))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.operatorArgs = strings.Fields(*extra)
	o.operatorEnv = strings.Fields(*env)
	o.phases = map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		known := false
		for _, q := range allPhases {
			known = known || p == q
		}
		if !known {
			return nil, fmt.Errorf("unknown phase %q (known: %s)", p, strings.Join(allPhases, ", "))
		}
		o.phases[p] = true
	}
	if o.scale <= 0 || o.clients < 1 || o.workers < 1 {
		return nil, errors.New("-scale, -clients and -workers must be positive")
	}
	return o, nil
}

// results is what results.json holds.
type results struct {
	Meta       runMeta            `json:"meta"`
	Figures    []figure           `json:"figures"`
	Ceiling    *ceilingResult     `json:"ceiling,omitempty"`
	N1000      *loadResult        `json:"n1000,omitempty"`
	N5000      *loadResult        `json:"n5000,omitempty"`
	ColdStart  *coldStartResult   `json:"coldstart,omitempty"`
	Deprecated *deprecatedResult  `json:"deprecated,omitempty"`
	Unrelated  *unrelatedResult   `json:"unrelated,omitempty"`
	Rotation   *rotationResult    `json:"rotation,omitempty"`
	Errors     map[string]string  `json:"errors,omitempty"`
	Seconds    map[string]float64 `json:"phaseSeconds"`
	// LoadAvg is /proc/loadavg when each phase ended: other work on the machine skews the rates.
	LoadAvg map[string]string `json:"loadAvg"`
}

type runMeta struct {
	Started  time.Time `json:"started"`
	Scale    float64   `json:"scale"`
	Phases   []string  `json:"phases"`
	CPUs     int       `json:"cpus"`
	Manager  string    `json:"manager"`
	Assets   string    `json:"assets"`
	Clients  int       `json:"clients"`
	Workers  int       `json:"workers"`
	Audit    bool      `json:"audit"`
	Revision string    `json:"revision,omitempty"`
}

func run(o *options) error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set; run 'make bench', which builds kube-apiserver and etcd first")
	}
	if _, err := os.Stat(o.manager); err != nil {
		return fmt.Errorf("the operator binary: %w (run 'make build')", err)
	}
	manager, err := filepath.Abs(o.manager)
	if err != nil {
		return err
	}
	o.manager = manager
	if err := os.MkdirAll(filepath.Join(o.out, "logs"), 0o755); err != nil {
		return err
	}
	// envtest and the harness's watches log through controller-runtime; only errors matter here.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res := &results{Errors: map[string]string{}, Seconds: map[string]float64{}, LoadAvg: map[string]string{"start": loadAvg()}}
	res.Meta = runMeta{Started: time.Now().UTC(), Scale: o.scale, CPUs: runtime.NumCPU(), Manager: o.manager,
		Assets: os.Getenv("KUBEBUILDER_ASSETS"), Clients: o.clients, Workers: o.workers, Audit: o.audit, Revision: revision()}
	for _, p := range allPhases {
		if !o.phases[p] {
			continue
		}
		res.Meta.Phases = append(res.Meta.Phases, p)
		say("phase %s", p)
		start := time.Now()
		var err error
		switch p {
		case "ceiling":
			res.Ceiling, err = runCeiling(ctx, o)
		case "n1000":
			res.N1000, err = runLoad(ctx, o, p, o.scaled(1000))
		case "n5000":
			res.N5000, err = runLoad(ctx, o, p, o.scaled(5000))
		case "coldstart":
			res.ColdStart, err = runColdStart(ctx, o)
		case "deprecated":
			res.Deprecated, err = runDeprecated(ctx, o)
		case "unrelated":
			res.Unrelated, err = runUnrelated(ctx, o)
		case "rotation":
			res.Rotation, err = runRotation(ctx, o)
		}
		res.Seconds[p] = time.Since(start).Seconds()
		res.LoadAvg[p] = loadAvg()
		if err != nil {
			res.Errors[p] = err.Error()
			fmt.Fprintf(os.Stderr, "bench: phase %s failed: %v\n", p, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	res.Figures = figures(res, o)
	table := renderTable(res)
	fmt.Println()
	fmt.Print(table)
	fmt.Println()
	fmt.Print(breakdown(res))
	path := filepath.Join(o.out, "results.json")
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.md"), []byte(table), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s (check the targets with: make bench-check); operator logs in %s\n", path, filepath.Join(o.out, "logs"))
	if len(res.Errors) > 0 {
		return fmt.Errorf("%d phase(s) failed: %s", len(res.Errors), strings.Join(sortedKeys(res.Errors), ", "))
	}
	return ctx.Err()
}

// revision is the VCS revision the harness was built from, when the build recorded it.
func revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, modified := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" && modified {
		rev += " (modified)"
	}
	return rev
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func say(format string, args ...any) {
	fmt.Printf("%s bench | %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
