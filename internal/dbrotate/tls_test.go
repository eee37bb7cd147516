package dbrotate

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/testdb"
)

// These tests rotate users on TLS-enabled PostgreSQL and MariaDB servers that testdb starts (one
// of each, shared by the package's tests): the PostgreSQL server takes passwords over TLS only, and
// the MariaDB users REQUIRE SSL. Their certificates name 127.0.0.1 and localhost, signed by a CA
// made for the run; both servers also listen on 127.0.0.2, which the certificates do not name.

func TestMain(m *testing.M) { testdb.Main(m) }

func ptr(b bool) *bool { return &b }

// otherCA is a CA that did not sign the servers' certificates.
func otherCA(t *testing.T) []byte {
	t.Helper()
	ca, err := testdb.NewCA("some other CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca.PEM
}

// noSystemRoots makes the system trust store empty, as in the operator's static image.
func noSystemRoots(t *testing.T) {
	t.Helper()
	saved := systemRoots
	systemRoots = func() (*x509.CertPool, error) { return x509.NewCertPool(), nil }
	t.Cleanup(func() { systemRoots = saved })
}

// checkNoSecrets fails when the error mentions a password of the material.
func checkNoSecrets(t *testing.T, err error, m Material) {
	t.Helper()
	if err == nil {
		return
	}
	for _, c := range []*Creds{&m.Current, &m.Pending, m.Previous, m.Superuser} {
		if c != nil && c.Password != "" && strings.Contains(err.Error(), c.Password) {
			t.Fatalf("the error contains a password: %v", err)
		}
	}
}

// singleUser is one single-user rotation: the material for a fresh user on a server, and how to
// tell which password the server accepts.
type singleUser struct {
	m        Material
	login    func(Creds) error // over verified TLS, independently of dbrotate
	strategy interface {
		Set(context.Context, Material) error
		Test(context.Context, Material) error
	}
}

// rotated reports whether the pending password is in effect (and the current one is not).
func (r singleUser) rotated(t *testing.T) bool {
	t.Helper()
	pend, cur := r.login(r.m.Pending) == nil, r.login(r.m.Current) == nil
	if pend == cur {
		t.Fatalf("exactly one of the current and pending passwords must log in (pending %v, current %v)", pend, cur)
	}
	return pend
}

// mustRotate runs Set and Test and checks the pending password is in effect.
func (r singleUser) mustRotate(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := r.strategy.Set(ctx, r.m); err != nil {
		t.Fatalf("setSecret: %v", err)
	}
	if err := r.strategy.Test(ctx, r.m); err != nil {
		t.Fatalf("testSecret: %v", err)
	}
	if !r.rotated(t) {
		t.Fatal("setSecret succeeded but the pending password does not log in")
	}
}

// mustFail runs Set (and Test), checks both fail with want (a sentinel, or nil for any error)
// and a message containing every one of words, without a password, and that the password did
// not change.
func (r singleUser) mustFail(t *testing.T, want error, words ...string) error {
	t.Helper()
	ctx := context.Background()
	err := r.strategy.Set(ctx, r.m)
	if err == nil {
		t.Fatal("setSecret succeeded")
	}
	t.Logf("setSecret: %v", err)
	checkNoSecrets(t, err, r.m)
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("setSecret: err = %v, want %v", err, want)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("setSecret: the error does not say %q: %v", w, err)
		}
	}
	if r.rotated(t) {
		t.Fatal("the password changed although setSecret failed")
	}
	testErr := r.strategy.Test(ctx, r.m)
	if testErr == nil {
		t.Fatal("testSecret succeeded")
	}
	checkNoSecrets(t, testErr, r.m)
	if want != nil && want != ErrNoLogin && !errors.Is(testErr, want) {
		t.Fatalf("testSecret: err = %v, want %v", testErr, want)
	}
	return err
}

func pgTLSRotation(t *testing.T, s *testdb.PostgresServer, ssl *bool, ca []byte) singleUser {
	t.Helper()
	u := s.User(t, "")
	cur := Creds{Engine: "postgres", Host: s.Host, Port: s.Port, Username: u.Name, Password: u.Password, DBName: "postgres", SSL: ssl}
	pend := cur
	pend.Password = randomPassword()
	return singleUser{
		m:        Material{Current: cur, Pending: pend, CABundle: ca},
		login:    func(c Creds) error { return s.Login(testdb.User{Name: c.Username, Password: c.Password}) },
		strategy: PostgreSQL{},
	}
}

// pgSessionTLS reports whether the session is encrypted, as the server sees it.
func pgSessionTLS(t *testing.T, conn *pgx.Conn) bool {
	t.Helper()
	var ssl bool
	if err := conn.QueryRow(context.Background(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil {
		t.Fatal(err)
	}
	return ssl
}

func TestPostgreSQLTLS(t *testing.T) {
	s := testdb.TLSPostgres(t)
	ctx := context.Background()

	t.Run("ssl true with the CA bundle", func(t *testing.T) {
		r := pgTLSRotation(t, s, ptr(true), s.CA)
		r.mustRotate(t)
		conn, err := pgConnect(ctx, r.m.Pending, r.m.CABundle)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if !pgSessionTLS(t, conn) {
			t.Fatal("the session is not encrypted")
		}
		if pgSessionTLS(t, s.Admin(t)) {
			t.Fatal("pg_stat_ssl says the Unix-socket session is encrypted: the check proves nothing")
		}
	})
	t.Run("ssl true with another CA", func(t *testing.T) {
		pgTLSRotation(t, s, ptr(true), otherCA(t)).mustFail(t, ErrTLSVerification, "unknown authority", "ca.crt")
	})
	t.Run("ssl true without a CA bundle", func(t *testing.T) {
		// The system roots do not trust the test CA.
		pgTLSRotation(t, s, ptr(true), nil).mustFail(t, ErrTLSVerification, "unknown authority", "spec.tls.caBundle")
	})
	t.Run("ssl true without a CA bundle or system roots", func(t *testing.T) {
		noSystemRoots(t)
		pgTLSRotation(t, s, ptr(true), nil).mustFail(t, ErrNoTrustedRoots, "spec.tls.caBundle")
		// The CA bundle does not need the system roots.
		pgTLSRotation(t, s, ptr(true), s.CA).mustRotate(t)
	})
	t.Run("ssl true at an address the certificate does not name", func(t *testing.T) {
		r := pgTLSRotation(t, s, ptr(true), s.CA)
		r.m.Current.Host, r.m.Pending.Host = s.OtherHost, s.OtherHost
		r.mustFail(t, ErrTLSVerification, "not valid for host "+s.OtherHost)
		// Unverified, the same address works: it was the host name check that failed.
		r.m.Current.SSL, r.m.Pending.SSL, r.m.CABundle = nil, nil, nil
		r.mustRotate(t)
	})
	t.Run("ssl false against the TLS-only server", func(t *testing.T) {
		pgTLSRotation(t, s, ptr(false), s.CA).mustFail(t, ErrNoLogin, "SQLSTATE 28000")
	})
	t.Run("ssl absent without a CA bundle uses TLS", func(t *testing.T) {
		r := pgTLSRotation(t, s, nil, nil)
		r.mustRotate(t)
		conn, err := pgConnect(ctx, r.m.Pending, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if !pgSessionTLS(t, conn) {
			t.Fatal("ssl absent: the session is not encrypted")
		}
	})
	t.Run("ssl absent with the CA bundle verifies", func(t *testing.T) {
		pgTLSRotation(t, s, nil, s.CA).mustRotate(t)
		pgTLSRotation(t, s, nil, otherCA(t)).mustFail(t, ErrTLSVerification, "unknown authority")
	})
	t.Run("a malformed CA bundle", func(t *testing.T) {
		pgTLSRotation(t, s, nil, []byte("not a certificate")).mustFail(t, ErrBadCABundle)
	})
}

func mysqlTLSRotation(t *testing.T, s *testdb.MariaDBServer, ssl *bool, ca []byte) singleUser {
	t.Helper()
	u := s.User(t)
	cur := Creds{Engine: "mysql", Host: s.Host, Port: s.Port, Username: u.Name, Password: u.Password, SSL: ssl}
	pend := cur
	pend.Password = randomPassword()
	return singleUser{
		m:        Material{Current: cur, Pending: pend, CABundle: ca},
		login:    func(c Creds) error { return s.Login(testdb.User{Name: c.Username, Password: c.Password}) },
		strategy: MySQL{},
	}
}

// mysqlSessionCipher is the session's TLS cipher, "" without TLS.
func mysqlSessionCipher(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name, cipher string
	if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		t.Fatal(err)
	}
	return cipher
}

func TestMySQLTLS(t *testing.T) {
	s := testdb.TLSMariaDB(t)
	ctx := context.Background()

	t.Run("ssl true with the CA bundle", func(t *testing.T) {
		r := mysqlTLSRotation(t, s, ptr(true), s.CA)
		r.mustRotate(t)
		db, err := mysqlOpen(ctx, r.m.Pending, r.m.CABundle)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if mysqlSessionCipher(t, db) == "" {
			t.Fatal("the session is not encrypted")
		}
		if mysqlSessionCipher(t, s.Admin(t)) != "" {
			t.Fatal("Ssl_cipher is set for the Unix-socket session: the check proves nothing")
		}
	})
	t.Run("ssl true with another CA", func(t *testing.T) {
		mysqlTLSRotation(t, s, ptr(true), otherCA(t)).mustFail(t, ErrTLSVerification, "unknown authority", "ca.crt")
	})
	t.Run("ssl true without a CA bundle", func(t *testing.T) {
		mysqlTLSRotation(t, s, ptr(true), nil).mustFail(t, ErrTLSVerification, "unknown authority", "spec.tls.caBundle")
	})
	t.Run("ssl true without a CA bundle or system roots", func(t *testing.T) {
		noSystemRoots(t)
		mysqlTLSRotation(t, s, ptr(true), nil).mustFail(t, ErrNoTrustedRoots, "spec.tls.caBundle")
		mysqlTLSRotation(t, s, ptr(true), s.CA).mustRotate(t)
	})
	t.Run("ssl true at an address the certificate does not name", func(t *testing.T) {
		r := mysqlTLSRotation(t, s, ptr(true), s.CA)
		r.m.Current.Host, r.m.Pending.Host = s.OtherHost, s.OtherHost
		r.mustFail(t, ErrTLSVerification, "not valid for host "+s.OtherHost)
		r.m.Current.SSL, r.m.Pending.SSL, r.m.CABundle = nil, nil, nil
		r.mustRotate(t)
	})
	t.Run("ssl false for a user that requires SSL", func(t *testing.T) {
		mysqlTLSRotation(t, s, ptr(false), s.CA).mustFail(t, ErrNoLogin, "Access denied", "(1045)")
	})
	t.Run("ssl absent without a CA bundle uses TLS", func(t *testing.T) {
		r := mysqlTLSRotation(t, s, nil, nil)
		r.mustRotate(t)
		db, err := mysqlOpen(ctx, r.m.Pending, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if mysqlSessionCipher(t, db) == "" {
			t.Fatal("ssl absent: the session is not encrypted")
		}
	})
	t.Run("ssl absent with the CA bundle verifies", func(t *testing.T) {
		mysqlTLSRotation(t, s, nil, s.CA).mustRotate(t)
		mysqlTLSRotation(t, s, nil, otherCA(t)).mustFail(t, ErrTLSVerification, "unknown authority")
	})
}

// The plain MariaDB server (127.0.0.1:3306) does not offer TLS: ssl absent falls back to
// plaintext, ssl true refuses.
func TestMySQLWithoutTLS(t *testing.T) {
	ctx := context.Background()
	admin := testdb.MySQL(t)
	var name, have string
	if err := admin.QueryRow("SHOW GLOBAL VARIABLES LIKE 'have_ssl'").Scan(&name, &have); err != nil {
		t.Fatal(err)
	}
	if have == "YES" {
		t.Fatalf("the MariaDB server at 127.0.0.1:3306 offers TLS; this test needs one that does not")
	}
	c := mysqlCreds(testdb.MySQLUser(t, admin))
	db, err := mysqlOpen(ctx, c, otherCA(t))
	if err != nil {
		t.Fatalf("ssl absent, a server without TLS: %v", err)
	}
	if mysqlSessionCipher(t, db) != "" {
		t.Fatal("the session is encrypted")
	}
	db.Close()
	c.SSL = ptr(true)
	if _, err := mysqlOpen(ctx, c, otherCA(t)); !errors.Is(err, ErrTLSNotOffered) {
		t.Fatalf("ssl true, a server without TLS: err = %v, want ErrTLSNotOffered", err)
	}
}

// fakePostgres answers the SSLRequest with N, then rejects the startup message with SQLSTATE
// 28000; it reports whether an SSLRequest came first.
func fakePostgres(t *testing.T) (port int, sawSSLRequest <-chan bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	saw := make(chan bool, 10)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn) {
				defer conn.Close()
				ssl := false
				for {
					var hdr [8]byte
					if _, err := io.ReadFull(conn, hdr[:]); err != nil {
						return
					}
					n, code := binary.BigEndian.Uint32(hdr[:4]), binary.BigEndian.Uint32(hdr[4:])
					if code == 80877103 {
						ssl = true
						_, _ = conn.Write([]byte{'N'})
						continue
					}
					_, _ = io.CopyN(io.Discard, conn, int64(n)-8)
					saw <- ssl
					body := []byte("SFATAL\x00C28000\x00Mfake server\x00\x00")
					msg := binary.BigEndian.AppendUint32([]byte{'E'}, uint32(len(body)+4))
					_, _ = conn.Write(append(msg, body...))
					return
				}
			}(conn)
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, saw
}

func TestPostgreSQLServerWithoutTLS(t *testing.T) {
	ctx := context.Background()
	port, saw := fakePostgres(t)
	c := Creds{Host: "127.0.0.1", Port: port, Username: "app", Password: "CANARY-pw"}
	// ssl absent: TLS asked for, refused, then the startup message in plaintext.
	_, err := pgConnect(ctx, c, otherCA(t))
	if err == nil || !strings.Contains(err.Error(), "SQLSTATE 28000") {
		t.Fatalf("ssl absent: err = %v, want the fake server's SQLSTATE 28000", err)
	}
	if !<-saw {
		t.Fatal("ssl absent: no SSLRequest came first")
	}
	// ssl false: straight to the startup message.
	c.SSL = ptr(false)
	if _, err := pgConnect(ctx, c, nil); err == nil || !strings.Contains(err.Error(), "SQLSTATE 28000") {
		t.Fatalf("ssl false: err = %v", err)
	}
	if <-saw {
		t.Fatal("ssl false: an SSLRequest was sent")
	}
	// ssl true: the server's N ends the attempt before any startup message.
	c.SSL = ptr(true)
	_, err = pgConnect(ctx, c, otherCA(t))
	if !errors.Is(err, ErrTLSNotOffered) || strings.Contains(err.Error(), "CANARY") {
		t.Fatalf("ssl true: err = %v, want ErrTLSNotOffered", err)
	}
	select {
	case <-saw:
		t.Fatal("ssl true: a startup message was sent in plaintext")
	default:
	}
}

func TestPlanTLS(t *testing.T) {
	ca := otherCA(t)
	c := Creds{Host: "db.example"}
	p, err := planTLS(c, nil)
	if err != nil || p.config == nil || !p.config.InsecureSkipVerify || p.required {
		t.Fatalf("absent, no CA: %+v %v", p, err)
	}
	p, err = planTLS(c, ca)
	if err != nil || p.config == nil || p.config.InsecureSkipVerify || p.config.RootCAs == nil || p.config.ServerName != "db.example" || p.required {
		t.Fatalf("absent, CA: %+v %v", p, err)
	}
	c.SSL = ptr(false)
	if p, err = planTLS(c, []byte("junk")); err != nil || p.config != nil {
		t.Fatalf("false: %+v %v", p, err)
	}
	c.SSL = ptr(true)
	p, err = planTLS(c, ca)
	if err != nil || p.config == nil || p.config.InsecureSkipVerify || !p.required || p.systemRoots {
		t.Fatalf("true, CA: %+v %v", p, err)
	}
	if _, err := planTLS(c, []byte("junk")); !errors.Is(err, ErrBadCABundle) {
		t.Fatalf("true, junk CA: %v", err)
	}
	noSystemRoots(t)
	if _, err := planTLS(c, nil); !errors.Is(err, ErrNoTrustedRoots) || !strings.Contains(err.Error(), "spec.tls.caBundle") {
		t.Fatalf("true, no roots: %v", err)
	}
	// The whole material is checked before anything connects.
	m := Material{Current: Creds{Host: "h"}, Pending: Creds{Host: "h"}, Superuser: &c}
	if err := (PostgreSQL{}).Set(context.Background(), m); !errors.Is(err, ErrNoTrustedRoots) {
		t.Fatalf("Set: %v", err)
	}
}
