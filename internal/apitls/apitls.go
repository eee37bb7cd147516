// Package apitls gives the AWS-compatible API its serving certificate: a CA the operator makes and
// rotates, kept in a Secret in its namespace (shared by every replica), with the trust bundle
// published as a ClusterTrustBundle that workloads mount (a projected clusterTrustBundle volume)
// and name in AWS_CA_BUNDLE. Pure certificate logic here; Manager keeps it in the cluster.
package apitls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"time"
)

// Lifetimes: the serving certificate lives 90 days and is renewed 30 days before it ends; the CA
// lives two years and is replaced 180 days before it ends, the old one staying in the trust
// bundle until it expires, so clients that loaded the bundle earlier keep working.
const (
	ServingLifetime = 90 * 24 * time.Hour
	ServingRenew    = 30 * 24 * time.Hour
	CALifetime      = 2 * 365 * 24 * time.Hour
	CARenew         = 180 * 24 * time.Hour
)

// Keys of the Secret.
const (
	KeyCACert       = "ca.crt"
	KeyCAKey        = "ca.key"
	KeyPreviousCA   = "ca-previous.crt"
	KeyServingCert  = "tls.crt"
	KeyServingKey   = "tls.key"
	KeyTrustBundle  = "trust-bundle.pem"
	defaultCommonCN = "kube-secrets-manager API CA"
)

// Material is what the Secret holds, parsed.
type Material struct {
	Data map[string][]byte
}

// Plan brings the material up to date at now for the serving names: a CA (new, or the next one
// when it nears its end), a serving certificate for exactly dnsNames (new when missing, near its
// end, for other names or from another CA), and the trust bundle. changed says whether the data
// must be written.
func Plan(data map[string][]byte, dnsNames []string, now time.Time) (out map[string][]byte, changed bool, err error) {
	out = map[string][]byte{}
	for k, v := range data {
		out[k] = v
	}
	ca, caKey, err := parseCA(out)
	if err != nil || now.Add(CARenew).After(ca.NotAfter) {
		if ca != nil && err == nil && now.Before(ca.NotAfter) {
			out[KeyPreviousCA] = out[KeyCACert]
		}
		if ca, caKey, err = newCA(now); err != nil {
			return nil, false, err
		}
		out[KeyCACert] = pemCert(ca.Raw)
		if out[KeyCAKey], err = pemKey(caKey); err != nil {
			return nil, false, err
		}
		delete(out, KeyServingCert)
		changed = true
	}
	if prev, err := parseCert(out[KeyPreviousCA]); err == nil && now.After(prev.NotAfter) {
		delete(out, KeyPreviousCA)
		changed = true
	}
	if servingStale(out, ca, dnsNames, now) {
		cert, key, err := newServing(ca, caKey, dnsNames, now)
		if err != nil {
			return nil, false, err
		}
		out[KeyServingCert] = pemCert(cert)
		if out[KeyServingKey], err = pemKey(key); err != nil {
			return nil, false, err
		}
		changed = true
	}
	bundle := append(append([]byte(nil), out[KeyCACert]...), out[KeyPreviousCA]...)
	if !bytes.Equal(out[KeyTrustBundle], bundle) {
		out[KeyTrustBundle] = bundle
		changed = true
	}
	return out, changed, nil
}

// Certificate is the serving certificate of the material.
func Certificate(data map[string][]byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(data[KeyServingCert], data[KeyServingKey])
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func servingStale(data map[string][]byte, ca *x509.Certificate, dnsNames []string, now time.Time) bool {
	cert, err := parseCert(data[KeyServingCert])
	if err != nil || now.Add(ServingRenew).After(cert.NotAfter) || cert.CheckSignatureFrom(ca) != nil {
		return true
	}
	have := slices.Clone(cert.DNSNames)
	want := slices.Clone(dnsNames)
	slices.Sort(have)
	slices.Sort(want)
	return !slices.Equal(have, want)
}

func parseCA(data map[string][]byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cert, err := parseCert(data[KeyCACert])
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data[KeyCAKey])
	if block == nil {
		return cert, nil, errors.New("no CA key")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return cert, nil, err
	}
	return cert, key, nil
}

func parseCert(p []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(p)
	if block == nil {
		return nil, errors.New("no certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: defaultCommonCN},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(CALifetime), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, MaxPathLenZero: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func newServing(ca *x509.Certificate, caKey *ecdsa.PrivateKey, dnsNames []string, now time.Time) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(ServingLifetime)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: dnsNames[0]}, DNSNames: dnsNames,
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return der, key, err
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}
