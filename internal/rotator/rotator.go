// Package rotator is the `rotate` command that runs inside rotation pods: it reads the material the
// operator mounted, then performs setSecret and testSecret for the strategy. It has no Kubernetes
// API access and needs none. It prints step names and outcomes, never a value.
package rotator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/dbrotate"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
)

// Exit codes and the material folder are the rotation contract's (internal/rotation).
const (
	ExitOK          = rotation.ExitOK
	ExitStepFailed  = rotation.ExitStepFailed
	ExitBadMaterial = rotation.ExitBadMaterial
	ExitWrongJob    = rotation.ExitWrongJob
)

// DefaultDir is where rotation pods mount the material.
const DefaultDir = rotation.MaterialDir

// Step is one database step; strategies implement it.
type strategy interface {
	Set(ctx context.Context, m dbrotate.Material) error
	Test(ctx context.Context, m dbrotate.Material) error
}

// Run performs the pod's steps and returns the exit code.
func Run(ctx context.Context, dir, jobUID string, out io.Writer) int {
	req, err := readRequest(dir)
	if err != nil {
		fmt.Fprintln(out, "rotate:", err)
		return ExitBadMaterial
	}
	if jobUID != "" && req.JobUID != jobUID {
		fmt.Fprintln(out, "rotate: the mounted material belongs to another rotation Job; this Job stands down")
		return ExitWrongJob
	}
	fmt.Fprintf(out, "rotate: secret %s, pending version %s, strategy %s\n", req.SecretID, req.ClientRequestToken, req.Strategy)
	s, defaultPort, err := strategyFor(req.Strategy)
	if err != nil {
		fmt.Fprintln(out, "rotate:", err)
		return ExitBadMaterial
	}
	if s == nil {
		// password: no external system; the operator already made the value with the policy.
		if _, err := os.Stat(filepath.Join(dir, rotation.FilePending)); err != nil {
			fmt.Fprintln(out, "rotate: the pending value is missing")
			return ExitBadMaterial
		}
		fmt.Fprintln(out, "rotate: setSecret: nothing to do for the password strategy")
		fmt.Fprintln(out, "rotate: testSecret: the pending value is present")
		return ExitOK
	}
	m, err := readMaterial(dir, defaultPort)
	if err != nil {
		fmt.Fprintln(out, "rotate:", err)
		return ExitBadMaterial
	}
	if m.CABundle != nil {
		fmt.Fprintf(out, "rotate: %s is present: it verifies the database's TLS certificate whenever TLS is used\n", rotation.FileCABundle)
	}
	if err := s.Set(ctx, m); err != nil {
		fmt.Fprintln(out, "rotate: setSecret failed:", err)
		return ExitStepFailed
	}
	fmt.Fprintln(out, "rotate: setSecret: the database accepts the pending credentials")
	if err := s.Test(ctx, m); err != nil {
		fmt.Fprintln(out, "rotate: testSecret failed:", err)
		return ExitStepFailed
	}
	fmt.Fprintln(out, "rotate: testSecret: logged in with the pending credentials")
	return ExitOK
}

func strategyFor(name string) (strategy, int, error) {
	switch name {
	case v1alpha1.StrategyPassword:
		return nil, 0, nil
	case v1alpha1.StrategyPostgreSQLSingleUser:
		return dbrotate.PostgreSQL{}, 5432, nil
	case v1alpha1.StrategyPostgreSQLAlternatingUsers:
		return dbrotate.PostgreSQL{Alternating: true}, 5432, nil
	case v1alpha1.StrategyMySQLSingleUser:
		return dbrotate.MySQL{}, 3306, nil
	case v1alpha1.StrategyMySQLAlternatingUsers:
		return dbrotate.MySQL{Alternating: true}, 3306, nil
	}
	return nil, 0, fmt.Errorf("strategy %q is not built into this image (custom strategies bring their own image)", name)
}

func readRequest(dir string) (rotation.Request, error) {
	var req rotation.Request
	data, err := os.ReadFile(filepath.Join(dir, rotation.FileRequest))
	if err != nil {
		return req, fmt.Errorf("reading %s: %w", rotation.FileRequest, errors.Unwrap(err))
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return req, fmt.Errorf("%s is not valid JSON", rotation.FileRequest)
	}
	if req.ClientRequestToken == "" || req.Strategy == "" {
		return req, fmt.Errorf("%s lacks clientRequestToken or strategy", rotation.FileRequest)
	}
	return req, nil
}

func readMaterial(dir string, defaultPort int) (dbrotate.Material, error) {
	var m dbrotate.Material
	load := func(file string, required bool) (*dbrotate.Creds, error) {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if errors.Is(err, os.ErrNotExist) && !required {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s failed", file)
		}
		c, err := dbrotate.ParseCreds(data, defaultPort)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return &c, nil
	}
	cur, err := load(rotation.FileCurrent, true)
	if err != nil {
		return m, err
	}
	pend, err := load(rotation.FilePending, true)
	if err != nil {
		return m, err
	}
	m.Current, m.Pending = *cur, *pend
	if m.Previous, err = load(rotation.FilePrevious, false); err != nil {
		return m, err
	}
	if m.Superuser, err = load(rotation.FileSuperuser, false); err != nil {
		return m, err
	}
	// The CA bundle is optional (the RotationPolicy's spec.tls.caBundle); present, it must hold a
	// certificate. An empty file counts as absent.
	ca, err := os.ReadFile(filepath.Join(dir, rotation.FileCABundle))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return m, fmt.Errorf("reading %s failed", rotation.FileCABundle)
	case len(bytes.TrimSpace(ca)) > 0:
		if _, err := dbrotate.ParseCABundle(ca); err != nil {
			return m, err
		}
		m.CABundle = ca
	}
	return m, nil
}
