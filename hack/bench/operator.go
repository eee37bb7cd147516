package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// operator is the operator binary running as its own process against a cluster.
type operator struct {
	cmd        *exec.Cmd
	pid        int
	started    time.Time
	metricsURL string
	healthURL  string
	rss        *rssSampler
	exited     chan error
	log        *os.File
	cl         *cluster
	stopOnce   sync.Once
}

// startOperator runs the operator binary as users run it: its own process, the admin
// kubeconfig, the metrics and probe endpoints on free local ports, and the API off.
func startOperator(o *options, cl *cluster, logName string) (*operator, error) {
	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	probe, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--kubeconfig", cl.kubeconfig, "--namespace", operatorNamespace,
		"--metrics-bind-address", metrics, "--health-probe-bind-address", probe,
		"--workers", fmt.Sprint(o.workers), "--key-check-interval", o.keyCheckInterval.String()}
	args = append(args, o.operatorArgs...)
	logPath := filepath.Join(o.out, "logs", logName+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.manager, args...)
	cmd.Env = append(os.Environ(), o.operatorEnv...)
	cmd.Stdout, cmd.Stderr = log, log
	// The operator is part of this process tree but not of its terminal's process group, so a
	// Ctrl-C reaches the harness, which stops it in order.
	// It dies with the harness, should the harness die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	op := &operator{cmd: cmd, pid: cmd.Process.Pid, started: start, metricsURL: "http://" + metrics + "/metrics",
		healthURL: "http://" + probe + "/healthz", exited: make(chan error, 1), log: log, cl: cl}
	op.rss = newRSSSampler(op.pid)
	go func() { op.exited <- cmd.Wait() }()
	return op, nil
}

// stop sends SIGTERM and waits (killing it after 20 s); it may be called again.
func (op *operator) stop() { op.stopOnce.Do(op.terminate) }

func (op *operator) terminate() {
	if op.cmd.ProcessState == nil {
		_ = op.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-op.exited:
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: the operator exited with %v (see %s)\n", err, op.log.Name())
			}
		case <-time.After(20 * time.Second):
			_ = op.cmd.Process.Kill()
			err := <-op.exited
			fmt.Fprintf(os.Stderr, "bench: the operator did not stop in 20 s and was killed (%v)\n", err)
		}
	}
	op.rss.close()
	op.log.Close()
}

func (op *operator) alive() error {
	select {
	case err := <-op.exited:
		op.exited <- err
		return fmt.Errorf("the operator exited (%v); see %s", err, op.log.Name())
	default:
		return nil
	}
}

// snapshot is the operator's counters and the CPU of the three processes at one moment.
type snapshot struct {
	at                  time.Time
	m                   opMetrics
	opCPU, apiCPU, etcd float64
	// harness is this process's own CPU (its creates and watches), to show what it took.
	harness float64
}

func (op *operator) snapshot(ctx context.Context) (snapshot, error) {
	s := snapshot{at: time.Now()}
	samples, err := scrape(ctx, op.metricsURL)
	if err != nil {
		if aerr := op.alive(); aerr != nil {
			return s, aerr
		}
		return s, err
	}
	s.m = newOpMetrics(samples)
	s.opCPU, _ = cpuSeconds(op.pid)
	s.apiCPU, s.etcd = op.cl.cpu()
	s.harness, _ = cpuSeconds(os.Getpid())
	return s, nil
}

func (cl *cluster) cpu() (api, etcd float64) {
	api, _ = cpuSeconds(cl.apiserver)
	etcd, _ = cpuSeconds(cl.etcd)
	return api, etcd
}

// waitUp waits until the operator serves /metrics and /healthz.
func (op *operator) waitUp(ctx context.Context) (time.Duration, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := op.alive(); err != nil {
			return 0, err
		}
		if _, err := scrape(ctx, op.metricsURL); err == nil {
			if resp, err := http.Get(op.healthURL); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return time.Since(op.started), nil
				}
			}
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the operator did not serve /metrics and /healthz within 2 minutes")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitQuiet waits until the operator has made no write, finished no reconcile and held no queued
// work for quiet, and returns the snapshot taken when it last saw activity: the end of the work.
func (op *operator) waitQuiet(ctx context.Context, quiet, timeout time.Duration) (snapshot, error) {
	deadline := time.Now().Add(timeout)
	last, err := op.snapshot(ctx)
	if err != nil {
		return last, err
	}
	mark := last
	for {
		select {
		case <-ctx.Done():
			return mark, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		s, err := op.snapshot(ctx)
		if err != nil {
			return mark, err
		}
		if s.m.writes() != last.m.writes() || s.m.reconciles("") != last.m.reconciles("") || s.m.busy() {
			mark = s
		}
		last = s
		if time.Since(mark.at) >= quiet {
			return mark, nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "bench: the operator was still busy after %s (writes %.0f, reconciles %.0f); measuring anyway\n", timeout, s.m.writes(), s.m.reconciles(""))
			return s, nil
		}
	}
}

// waitSynced waits until the ManagedSecret controller has reconciled at least n ManagedSecrets
// since the process started and its queue is empty: every existing object seen once.
func (op *operator) waitSynced(ctx context.Context, n int, timeout time.Duration) (time.Duration, snapshot, error) {
	deadline := op.started.Add(timeout)
	for {
		s, err := op.snapshot(ctx)
		if err == nil && s.m.reconciles(managedSecretController) >= float64(n) && !s.m.busy() {
			return s.at.Sub(op.started), s, nil
		}
		if aerr := op.alive(); aerr != nil {
			return 0, s, aerr
		}
		if time.Now().After(deadline) {
			return 0, s, fmt.Errorf("not synced after %s: %.0f of %d ManagedSecrets reconciled", timeout, s.m.reconciles(managedSecretController), n)
		}
		select {
		case <-ctx.Done():
			return 0, s, ctx.Err()
		case <-time.After(250 * time.Millisecond): // each scrape costs the operator CPU
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
