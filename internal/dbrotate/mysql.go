package dbrotate

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
)

// MySQL implements setSecret/testSecret for the mysql-* strategies (MySQL and MariaDB).
type MySQL struct {
	Alternating bool
}

// mysqlOpen logs in with the credentials, using TLS as their ssl setting and the material's CA
// bundle say (see tls.go). The driver falls back to plaintext (when allowed) only when the server
// does not announce TLS; a failed handshake is an error.
func mysqlOpen(ctx context.Context, c Creds, caBundle []byte) (*sql.DB, error) {
	plan, err := planTLS(c, caBundle)
	if err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = c.Username, c.Password
	cfg.Net, cfg.Addr = "tcp", fmt.Sprintf("%s:%d", c.Host, c.Port)
	cfg.DBName = c.DBName
	cfg.Timeout = ConnectTimeout
	// Client-side interpolation escapes every bound value; statements such as ALTER USER and
	// CREATE USER cannot be server-side prepared with placeholders.
	cfg.InterpolateParams = true
	if plan.config != nil {
		cfg.TLS = plan.config
		cfg.AllowFallbackToPlaintext = !plan.required
	} else {
		cfg.TLSConfig = "false"
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, errors.New("the credentials do not form a valid MySQL connection")
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, newConnectError(c, plan, err)
	}
	return db, nil
}

// mysqlTryLogin reports why the credentials do not log in, or nil when they do.
func mysqlTryLogin(ctx context.Context, c Creds, caBundle []byte) error {
	db, err := mysqlOpen(ctx, c, caBundle)
	if err != nil {
		return err
	}
	_ = db.Close()
	return nil
}

func mysqlCanLogin(ctx context.Context, c Creds, caBundle []byte) bool {
	return mysqlTryLogin(ctx, c, caBundle) == nil
}

// serverInfo tells MariaDB from MySQL and the username limit of the server version.
type serverInfo struct {
	mariaDB       bool
	major, minor  int
	patch         int
	usernameLimit int
}

func mysqlServer(ctx context.Context, db *sql.DB) (serverInfo, error) {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return serverInfo{}, errors.New("reading the server version failed")
	}
	return parseServerVersion(v), nil
}

func parseServerVersion(v string) serverInfo {
	var s serverInfo
	// A version that does not parse leaves zeros: the oldest rules apply.
	_, _ = fmt.Sscanf(v, "%d.%d.%d", &s.major, &s.minor, &s.patch)
	s.mariaDB = strings.Contains(strings.ToLower(v), "mariadb")
	switch {
	case s.mariaDB:
		s.usernameLimit = 80
	case s.major > 5 || (s.major == 5 && (s.minor > 7 || (s.minor == 7 && s.patch >= 8))):
		s.usernameLimit = 32
	default:
		s.usernameLimit = 16
	}
	return s
}

// Set makes the database accept the pending credentials.
func (p MySQL) Set(ctx context.Context, m Material) error {
	if err := m.checkTLS(); err != nil {
		return err
	}
	if mysqlCanLogin(ctx, m.Pending, m.CABundle) {
		return nil
	}
	if m.Current.Host != m.Pending.Host {
		return errors.New("the pending host differs from the current host")
	}
	if p.Alternating {
		if err := checkAlternate(m, rotation.MySQLUsernameLimit); err != nil {
			return err
		}
		return p.setAlternating(ctx, m)
	}
	if m.Current.Username != m.Pending.Username {
		return errors.New("the pending username differs from the current username")
	}
	db, err := mysqlOpen(ctx, m.Current, m.CABundle)
	if err != nil && m.Previous != nil && m.Previous.Username == m.Pending.Username && m.Previous.Host == m.Pending.Host {
		prev := *m.Previous
		prev.SSL = m.Current.SSL
		var prevErr error
		if db, prevErr = mysqlOpen(ctx, prev, m.CABundle); prevErr == nil {
			err = nil
		}
	}
	if err != nil {
		return noLogin(err)
	}
	defer db.Close()
	info, err := mysqlServer(ctx, db)
	if err != nil {
		return err
	}
	// A user may always change its own password with SET PASSWORD; MariaDB and MySQL before 8.0
	// take the plaintext through PASSWORD(), MySQL 8 takes it as it is.
	stmt := "SET PASSWORD = PASSWORD(?)"
	if !info.mariaDB && info.major >= 8 {
		stmt = "SET PASSWORD = ?"
	}
	if _, err := db.ExecContext(ctx, stmt, m.Pending.Password); err != nil {
		return fmt.Errorf("changing the password of %s failed: %s", m.Pending.Username, mysqlErrorCode(err))
	}
	return nil
}

func (p MySQL) setAlternating(ctx context.Context, m Material) error {
	if m.Superuser == nil {
		return errors.New("the alternating-users strategy needs the superuser credentials")
	}
	if err := mysqlTryLogin(ctx, m.Current, m.CABundle); err != nil {
		return fmt.Errorf("unable to log into database with the current secret; rotation refused: %w", err)
	}
	su := *m.Superuser
	su.DBName = m.Current.DBName
	if su.Host != m.Current.Host {
		return errors.New("the superuser's host differs from the current host")
	}
	db, err := mysqlOpen(ctx, su, m.CABundle)
	if err != nil {
		return fmt.Errorf("logging in as the superuser failed: %w", err)
	}
	defer db.Close()
	info, err := mysqlServer(ctx, db)
	if err != nil {
		return err
	}
	if len(m.Pending.Username) > info.usernameLimit {
		return fmt.Errorf("username %s has %d characters, over this server's limit of %d", m.Pending.Username, len(m.Pending.Username), info.usernameLimit)
	}
	currentHost, err := mysqlUserHost(ctx, db, m.Current.Username)
	if err != nil {
		return err
	}
	pendingHost, err := mysqlUserHost(ctx, db, m.Pending.Username)
	if errors.Is(err, sql.ErrNoRows) {
		// Created with a throwaway password: the pending one is set only after the grants are
		// copied, so "the pending login works" never means a clone without privileges.
		pendingHost = "%"
		if _, err := db.ExecContext(ctx, "CREATE USER ?@? IDENTIFIED BY ?", m.Pending.Username, pendingHost, throwaway()); err != nil {
			return fmt.Errorf("creating user %s failed: %s", m.Pending.Username, mysqlErrorCode(err))
		}
	} else if err != nil {
		return err
	}
	// Copy the grants: each "GRANT ... TO <current>" is re-run "TO <pending>".
	rows, err := db.QueryContext(ctx, "SHOW GRANTS FOR ?@?", m.Current.Username, currentHost)
	if err != nil {
		return fmt.Errorf("reading the grants of %s failed: %s", m.Current.Username, mysqlErrorCode(err))
	}
	var grants []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			_ = rows.Close()
			return err
		}
		if i := strings.Index(g, " TO "); i > 0 && strings.HasPrefix(g, "GRANT ") {
			grants = append(grants, g[:i])
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, g := range grants {
		if _, err := db.ExecContext(ctx, g+" TO ?@?", m.Pending.Username, pendingHost); err != nil {
			return fmt.Errorf("copying a grant to %s failed: %s", m.Pending.Username, mysqlErrorCode(err))
		}
	}
	if _, err := db.ExecContext(ctx, "ALTER USER ?@? IDENTIFIED BY ?", m.Pending.Username, pendingHost, m.Pending.Password); err != nil {
		return fmt.Errorf("changing the password of %s failed: %s", m.Pending.Username, mysqlErrorCode(err))
	}
	return nil
}

func mysqlUserHost(ctx context.Context, db *sql.DB, user string) (string, error) {
	var host string
	err := db.QueryRowContext(ctx, "SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host = '%' DESC LIMIT 1", user).Scan(&host)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("looking up user %s failed: %s", user, mysqlErrorCode(err))
	}
	return host, err
}

func throwaway() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Test logs in with the pending credentials and runs a harmless query.
func (MySQL) Test(ctx context.Context, m Material) error {
	if err := m.checkTLS(); err != nil {
		return fmt.Errorf("testSecret: %w", err)
	}
	db, err := mysqlOpen(ctx, m.Pending, m.CABundle)
	if err != nil {
		return fmt.Errorf("testSecret: %w", err)
	}
	defer db.Close()
	var now string
	if err := db.QueryRowContext(ctx, "SELECT NOW()").Scan(&now); err != nil {
		return fmt.Errorf("testSecret: the query failed: %s", mysqlErrorCode(err))
	}
	return nil
}

// mysqlErrorCode keeps the server's error number and message. With client-side interpolation a
// syntax error could quote the statement, including a bound password, so 1064 (syntax) is reduced
// to its number.
func mysqlErrorCode(err error) string {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		if myErr.Number == 1064 {
			return "syntax error (1064)"
		}
		return fmt.Sprintf("%s (%d)", myErr.Message, myErr.Number)
	}
	return "the database request failed"
}
