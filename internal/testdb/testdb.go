// Package testdb gives tests real database users on the project's PostgreSQL (127.0.0.1:5432,
// superuser postgres over trust) and MariaDB/MySQL (127.0.0.1:3306, root without a password)
// servers, and removes them afterwards; and it starts TLS-enabled PostgreSQL and MariaDB servers
// of its own (servers.go). A missing server fails the test, unless KSM_SKIP opts out of it
// (databases for the plain servers, tls-databases for the TLS ones; see internal/optout).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/optout"
)

// PasswordGroup is the PostgreSQL role whose members must log in with a password even though the
// server trusts loopback connections; every user made here is a member.
const PasswordGroup = "ksm_rotation_test"

// User is a database login.
type User struct{ Name, Password string }

// RandomName returns prefix plus 8 hex characters.
func RandomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// RandomPassword contains characters that need quoting in SQL, to prove values are bound.
func RandomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "p'\"\\;" + hex.EncodeToString(b)
}

// Postgres connects as the superuser and makes sure members of PasswordGroup must give their
// password (a pg_hba.conf line ahead of the trust lines), so a login really tests it.
func Postgres(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable connect_timeout=5")
	optout.Need(t, optout.Databases, "PostgreSQL at 127.0.0.1:5432 (hack/ensure-databases.sh starts it)", err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, fmt.Sprintf("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s NOLOGIN; END IF; END $$", PasswordGroup, PasswordGroup)); err != nil {
		t.Fatal(err)
	}
	var hba string
	if err := conn.QueryRow(ctx, "SHOW hba_file").Scan(&hba); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(hba)
	if err != nil {
		t.Fatalf("reading %s to require passwords for %s: %v", hba, PasswordGroup, err)
	}
	line := fmt.Sprintf("host all +%s 127.0.0.1/32 scram-sha-256", PasswordGroup)
	if !strings.Contains(string(data), line) {
		header := "# kube-secrets-manager tests: members of " + PasswordGroup + " log in with a password\n" + line + "\n" +
			fmt.Sprintf("host all +%s ::1/128 scram-sha-256", PasswordGroup) + "\n"
		if err := os.WriteFile(hba, append([]byte(header), data...), 0o640); err != nil {
			t.Fatalf("cannot require passwords for %s in %s: %v", PasswordGroup, hba, err)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
	}
	return conn
}

// PostgresExec runs a statement built by the server's format() from bound arguments.
func PostgresExec(t testing.TB, conn *pgx.Conn, format string, args ...any) {
	t.Helper()
	ctx := context.Background()
	ph := make([]string, len(args))
	for i := range args {
		ph[i] = fmt.Sprintf("$%d::text", i+2)
	}
	var stmt string
	q := "SELECT format($1::text"
	if len(ph) > 0 {
		q += ", " + strings.Join(ph, ", ")
	}
	if err := conn.QueryRow(ctx, q+")", append([]any{format}, args...)...).Scan(&stmt); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatal(err)
	}
}

// PostgresUser creates a login role (extra attributes such as SUPERUSER allowed) and drops it and
// its _clone afterwards.
func PostgresUser(t testing.TB, admin *pgx.Conn, extra string) User {
	t.Helper()
	u := User{Name: RandomName("ksm_t_"), Password: RandomPassword()}
	PostgresExec(t, admin, "CREATE ROLE %I WITH LOGIN "+extra+" PASSWORD %L IN ROLE "+PasswordGroup, u.Name, u.Password)
	t.Cleanup(func() {
		for _, n := range []string{u.Name, u.Name + "_clone"} {
			var stmt string
			ctx := context.Background()
			if admin.QueryRow(ctx, "SELECT format('DROP ROLE IF EXISTS %I', $1::text)", n).Scan(&stmt) == nil {
				_, _ = admin.Exec(ctx, stmt)
			}
		}
	})
	return u
}

// PostgresLogin reports whether the user logs in with the password.
func PostgresLogin(u User) bool {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig("host=127.0.0.1 port=5432 dbname=postgres sslmode=disable connect_timeout=5")
	if err != nil {
		return false
	}
	cfg.User, cfg.Password = u.Name, u.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

// MySQL connects as root.
func MySQL(t testing.TB) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.InterpolateParams = "root", "tcp", "127.0.0.1:3306", true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	optout.Need(t, optout.Databases, "MariaDB/MySQL at 127.0.0.1:3306 (hack/ensure-databases.sh starts it)", db.Ping())
	t.Cleanup(func() { db.Close() })
	return db
}

// MySQLUser creates user@'%' with the grants ("GRANT ... ON ...", completed with TO user) and
// drops it and its _clone afterwards.
func MySQLUser(t testing.TB, admin *sql.DB, grants ...string) User {
	t.Helper()
	u := User{Name: RandomName("ksm_t_"), Password: RandomPassword()}
	if _, err := admin.Exec("CREATE USER ?@'%' IDENTIFIED BY ?", u.Name, u.Password); err != nil {
		t.Fatal(err)
	}
	for _, g := range grants {
		if _, err := admin.Exec(g+" TO ?@'%'", u.Name); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range []string{u.Name, u.Name + "_clone"} {
			_, _ = admin.Exec("DROP USER IF EXISTS ?@'%'", n)
		}
	})
	return u
}

// MySQLLogin reports whether the user logs in with the password.
func MySQLLogin(u User) bool {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = u.Name, u.Password, "tcp", "127.0.0.1:3306"
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return false
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	return db.Ping() == nil
}
