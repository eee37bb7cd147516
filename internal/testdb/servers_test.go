package testdb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { Main(m) }

func TestCAIssuesServerCertificates(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.ServerCert("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	verify := func(roots []byte, name string) error {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: certPool(roots), DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return err
	}
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if err := verify(ca.PEM, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if verify(ca.PEM, "127.0.0.2") == nil {
		t.Error("the certificate verifies for a host it does not name")
	}
	if verify(other.PEM, "127.0.0.1") == nil {
		t.Error("the certificate verifies against another CA")
	}
}

// The TLS PostgreSQL server takes passwords over TLS only, with a certificate for 127.0.0.1.
func TestTLSPostgres(t *testing.T) {
	s := TLSPostgres(t)
	u := s.User(t, "")
	if err := s.Login(u); err != nil {
		t.Fatalf("logging in over verified TLS: %v", err)
	}
	if s.Login(User{Name: u.Name, Password: "wrong"}) == nil {
		t.Fatal("a wrong password logs in")
	}
	ctx := context.Background()
	plain, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=5", s.Host, s.Port))
	if err != nil {
		t.Fatal(err)
	}
	plain.User, plain.Password = u.Name, u.Password
	var pgErr *pgconn.PgError
	if _, err := pgx.ConnectConfig(ctx, plain); !errors.As(err, &pgErr) || pgErr.Code != "28000" {
		t.Fatalf("a plaintext password login: err = %v, want SQLSTATE 28000 (rejected by pg_hba.conf)", err)
	}
	other, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=5", s.OtherHost, s.Port))
	if err != nil {
		t.Fatal(err)
	}
	other.User, other.Password = u.Name, u.Password
	other.TLSConfig = &tls.Config{ServerName: s.OtherHost, RootCAs: certPool(s.CA)}
	var hostErr x509.HostnameError
	if _, err := pgx.ConnectConfig(ctx, other); !errors.As(err, &hostErr) {
		t.Fatalf("at %s the certificate must not verify: %v", s.OtherHost, err)
	}
	other.TLSConfig.InsecureSkipVerify = true
	if conn, err := pgx.ConnectConfig(ctx, other); err != nil {
		t.Fatalf("the server does not listen on %s: %v", s.OtherHost, err)
	} else {
		conn.Close(ctx)
	}
}

// The TLS MariaDB server's users REQUIRE SSL.
func TestTLSMariaDB(t *testing.T) {
	s := TLSMariaDB(t)
	u := s.User(t)
	if err := s.Login(u); err != nil {
		t.Fatalf("logging in over verified TLS: %v", err)
	}
	if s.Login(User{Name: u.Name, Password: "wrong"}) == nil {
		t.Fatal("a wrong password logs in")
	}
	open := func(host string, tlsConfig *tls.Config) error {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = u.Name, u.Password, "tcp", net.JoinHostPort(host, strconv.Itoa(s.Port))
		cfg.TLS, cfg.Timeout = tlsConfig, 5*time.Second
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			return err
		}
		db := sql.OpenDB(connector)
		defer db.Close()
		return db.Ping()
	}
	var myErr *mysql.MySQLError
	if err := open(s.Host, nil); !errors.As(err, &myErr) || myErr.Number != 1045 {
		t.Fatalf("a plaintext login: err = %v, want access denied (1045)", err)
	}
	var hostErr x509.HostnameError
	if err := open(s.OtherHost, &tls.Config{ServerName: s.OtherHost, RootCAs: certPool(s.CA)}); !errors.As(err, &hostErr) {
		t.Fatalf("at %s the certificate must not verify: %v", s.OtherHost, err)
	}
	if err := open(s.OtherHost, &tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatalf("the server does not listen on %s: %v", s.OtherHost, err)
	}
}
