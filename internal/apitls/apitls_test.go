package apitls

import (
	"crypto/x509"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func verifies(t *testing.T, data map[string][]byte, name string, at time.Time) error {
	t.Helper()
	cert, err := parseCert(data[KeyServingCert])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data[KeyTrustBundle]) {
		t.Fatal("no certificate in the trust bundle")
	}
	_, err = cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: at})
	return err
}

func TestPlanIssuesRenewsAndRotates(t *testing.T) {
	names := []string{"kube-secrets-manager-api.ksm.svc", "kube-secrets-manager-api.ksm.svc.cluster.local"}
	data, changed, err := Plan(nil, names, t0)
	if err != nil || !changed {
		t.Fatal(err, changed)
	}
	if err := verifies(t, data, names[1], t0); err != nil {
		t.Fatalf("a fresh certificate: %v", err)
	}
	if _, err := Certificate(data); err != nil {
		t.Fatal(err)
	}
	// Nothing to do a day later.
	if _, changed, _ := Plan(data, names, t0.Add(24*time.Hour)); changed {
		t.Fatal("an up-to-date certificate was replaced")
	}
	// Renewed 30 days before it ends, by the same CA.
	later := t0.Add(ServingLifetime - ServingRenew + time.Hour)
	renewed, changed, _ := Plan(data, names, later)
	if !changed || string(renewed[KeyCACert]) != string(data[KeyCACert]) || string(renewed[KeyServingCert]) == string(data[KeyServingCert]) {
		t.Fatal("the serving certificate was not renewed by the same CA")
	}
	// Other names: a new certificate.
	if other, changed, _ := Plan(renewed, []string{"api.example"}, later); !changed || verifies(t, other, "api.example", later) != nil {
		t.Fatal("a certificate for other names was not issued")
	}
	// The CA is replaced 180 days before it ends; the old one stays trusted while it is valid.
	caEnd := t0.Add(CALifetime - CARenew + time.Hour)
	pre, _, _ := Plan(renewed, names, caEnd.Add(-2*time.Hour)) // the certificate in use just before
	rotated, changed, _ := Plan(pre, names, caEnd)
	if !changed || string(rotated[KeyCACert]) == string(data[KeyCACert]) || string(rotated[KeyPreviousCA]) != string(data[KeyCACert]) {
		t.Fatal("the CA was not rotated with the old one kept")
	}
	if err := verifies(t, rotated, names[0], caEnd); err != nil {
		t.Fatalf("after the CA rotation: %v", err)
	}
	// A client that still trusts only the old CA verifies a certificate from before the rotation.
	if err := verifies(t, map[string][]byte{KeyServingCert: pre[KeyServingCert], KeyTrustBundle: rotated[KeyTrustBundle]}, names[0], caEnd); err != nil {
		t.Fatalf("the old CA is no longer trusted: %v", err)
	}
	// Once the old CA has expired it leaves the bundle.
	gone, _, _ := Plan(rotated, names, t0.Add(CALifetime+time.Hour))
	if _, ok := gone[KeyPreviousCA]; ok {
		t.Fatal("an expired CA stayed in the bundle")
	}
}
