package dbrotate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// TLS, as set by a secret's "ssl" key:
//
//   - true: verify-full. TLS is required, the server's certificate must chain to the CA bundle (the
//     rotation material's ca.crt, or else the system roots) and name the host.
//   - false: no TLS.
//   - absent: TLS when the server offers it, verified with the CA bundle when there is one and
//     unverified otherwise; plaintext only when the server does not offer TLS at all. A certificate
//     that fails verification is never a reason to fall back.

// Errors that name the kind of TLS failure; connection errors wrap them.
var (
	// ErrTLSVerification: the server's certificate did not verify (unknown authority, another host
	// name, expired...).
	ErrTLSVerification = errors.New("TLS certificate verification failed")
	// ErrTLSNotOffered: ssl is true but the server does not offer TLS.
	ErrTLSNotOffered = errors.New("the server does not offer TLS, and the secret's ssl is true")
	// ErrTLSHandshake: the TLS handshake failed for another reason (an alert from the server, a
	// reply that is not TLS).
	ErrTLSHandshake = errors.New("the TLS handshake failed")
	// ErrNoTrustedRoots: ssl is true, there is no ca.crt, and the system has no CA certificates
	// (the operator's image is a static binary without /etc/ssl/certs).
	ErrNoTrustedRoots = errors.New("the secret's ssl is true, but there is nothing to verify the database's TLS certificate with: " +
		"the rotation material has no ca.crt and this image has no system CA certificates; set the RotationPolicy's spec.tls.caBundle")
	// ErrBadCABundle: ca.crt holds no PEM certificate.
	ErrBadCABundle = errors.New("ca.crt holds no PEM-encoded certificate")
)

// caBundleHint ends a verification error when the system roots were used.
const caBundleHint = "no ca.crt was given, so the system roots were used; set the RotationPolicy's spec.tls.caBundle to the CA that signed the database's certificate"

// systemRoots loads the system's trusted roots; tests replace it.
var systemRoots = x509.SystemCertPool

// ParseCABundle reads a PEM CA bundle (the material's ca.crt). Its error never quotes the data.
func ParseCABundle(pem []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, ErrBadCABundle
	}
	return pool, nil
}

// tlsPlan is how one connection uses TLS.
type tlsPlan struct {
	config      *tls.Config // nil: plaintext
	required    bool        // no plaintext when the server does not offer TLS
	systemRoots bool        // the certificate is verified against the system roots
}

// planTLS applies the semantics above to one set of credentials and the material's CA bundle.
func planTLS(c Creds, caBundle []byte) (tlsPlan, error) {
	if c.SSL != nil && !*c.SSL {
		return tlsPlan{}, nil
	}
	var roots *x509.CertPool
	if len(caBundle) > 0 {
		pool, err := ParseCABundle(caBundle)
		if err != nil {
			return tlsPlan{}, err
		}
		roots = pool
	}
	if c.SSL == nil {
		if roots == nil {
			// Encrypted but unverified, as libpq's sslmode=prefer.
			return tlsPlan{config: &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.Host, InsecureSkipVerify: true}}, nil //nolint:gosec // ssl absent and no CA bundle: prefer TLS without verification
		}
		return tlsPlan{config: verifyFull(c.Host, roots)}, nil
	}
	plan := tlsPlan{required: true}
	if roots == nil {
		pool, err := systemRoots()
		if err != nil || pool == nil || (enumerableSystemRoots && len(pool.Subjects()) == 0) { //nolint:staticcheck // SA1019: on Linux the system pool lists its certificates
			return tlsPlan{}, ErrNoTrustedRoots
		}
		roots, plan.systemRoots = pool, true
	}
	plan.config = verifyFull(c.Host, roots)
	return plan, nil
}

// enumerableSystemRoots: where the system pool is not a platform verifier (darwin, windows, ios),
// an empty pool means there are no roots at all.
var enumerableSystemRoots = runtime.GOOS != "darwin" && runtime.GOOS != "windows" && runtime.GOOS != "ios"

// verifyFull checks the chain against roots and the host name (or IP address) against the
// certificate's subject alternative names.
func verifyFull(host string, roots *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, RootCAs: roots}
}

// checkTLS validates the TLS settings of the credentials in the material before anything
// connects, so a configuration problem is reported as such and not as a failed login. (Previous
// is used with Current's ssl setting.)
func (m Material) checkTLS() error {
	for _, c := range []*Creds{&m.Current, &m.Pending, m.Superuser} {
		if c == nil {
			continue
		}
		if _, err := planTLS(*c, m.CABundle); err != nil {
			return err
		}
	}
	return nil
}

// connectError says why a login failed, naming only the host, port and user, and the SQL state or
// the kind of TLS failure: never a password, never the driver's own text (which may quote the
// connection settings).
type connectError struct {
	host string
	port int
	user string
	kind string
	err  error // a sentinel above, or nil
}

func (e *connectError) Error() string {
	return fmt.Sprintf("connecting to %s:%d as %s failed: %s", e.host, e.port, e.user, e.kind)
}

func (e *connectError) Unwrap() error { return e.err }

func newConnectError(c Creds, plan tlsPlan, err error) error {
	kind, sentinel := describeConnectFailure(c, plan, err)
	return &connectError{host: c.Host, port: c.Port, user: c.Username, kind: kind, err: sentinel}
}

// describeConnectFailure reduces a driver's connection error to words that are safe to print.
func describeConnectFailure(c Creds, plan tlsPlan, err error) (string, error) {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		noRoots          x509.SystemRootsError
		verification     *tls.CertificateVerificationError
		alert            tls.AlertError
		opErr            *net.OpError
		recordHeader     tls.RecordHeaderError
		pgErr            *pgconn.PgError
		myErr            *mysql.MySQLError
		netErr           net.Error
		dnsErr           *net.DNSError
	)
	verify := func(what string) (string, error) {
		return ErrTLSVerification.Error() + ": " + what, ErrTLSVerification
	}
	switch {
	case errors.As(err, &unknownAuthority):
		if plan.systemRoots {
			return verify("the certificate is signed by an unknown authority (" + caBundleHint + ")")
		}
		return verify("the certificate is signed by an unknown authority, not by a CA in ca.crt")
	case errors.As(err, &hostname):
		return verify(fmt.Sprintf("the certificate is not valid for host %s", c.Host))
	case errors.As(err, &invalid):
		return verify(invalidReason(invalid.Reason))
	case errors.As(err, &noRoots):
		return ErrNoTrustedRoots.Error(), ErrNoTrustedRoots
	case errors.As(err, &verification):
		return verify("the certificate was rejected")
	case errors.Is(err, errPgNoTLS), errors.Is(err, mysql.ErrNoTLS):
		return ErrTLSNotOffered.Error(), ErrTLSNotOffered
	case errors.As(err, &opErr) && opErr.Op == "remote error" && opErr.Err != nil:
		// A TLS alert from the server (crypto/tls reports it so); its text is the alert's name.
		return fmt.Sprintf("%s: the server sent the alert %q", ErrTLSHandshake, opErr.Err.Error()), ErrTLSHandshake
	case errors.As(err, &alert):
		return fmt.Sprintf("%s: %q", ErrTLSHandshake, alert.Error()), ErrTLSHandshake
	case errors.As(err, &recordHeader), errors.Is(err, errPgBadSSLReply):
		return ErrTLSHandshake.Error() + ": the server did not answer in TLS", ErrTLSHandshake
	case errors.As(err, &pgErr):
		return pgErrorCode(pgErr), nil
	case errors.As(err, &myErr):
		return mysqlErrorCode(myErr), nil
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no answer within %s", ConnectTimeout), nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection was refused (is the port right?)", nil
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("the host name %s could not be resolved", c.Host), nil
	case errors.As(err, &netErr):
		return "the server could not be reached", nil
	}
	return "the connection failed", nil
}

func invalidReason(r x509.InvalidReason) string {
	switch r {
	case x509.Expired:
		return "the certificate has expired or is not yet valid"
	case x509.NameMismatch, x509.CANotAuthorizedForThisName, x509.NameConstraintsWithoutSANs, x509.UnconstrainedName:
		return "the certificate's names are not allowed by its issuer"
	case x509.IncompatibleUsage, x509.CANotAuthorizedForExtKeyUsage:
		return "the certificate may not be used for a TLS server"
	case x509.NotAuthorizedToSign:
		return "the certificate was signed by a certificate that is not a CA"
	}
	return "the certificate chain is invalid"
}
