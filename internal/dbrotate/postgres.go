package dbrotate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
)

// PostgreSQL implements setSecret/testSecret for the postgresql-* strategies.
type PostgreSQL struct {
	Alternating bool
}

// pgConnString leaves TLS off: pgConnect negotiates it itself (pgNegotiateTLS), because pgx's
// sslmode=prefer falls back to plaintext after any TLS failure, a failed verification included.
func pgConnString(c Creds) string {
	db := c.DBName
	if db == "" {
		db = "postgres"
	}
	kv := func(k, v string) string {
		v = strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `'`, `\'`)
		return fmt.Sprintf("%s='%s'", k, v)
	}
	return strings.Join([]string{
		kv("host", c.Host), kv("port", fmt.Sprint(c.Port)), kv("user", c.Username),
		kv("password", c.Password), kv("dbname", db), kv("sslmode", "disable"),
		kv("connect_timeout", fmt.Sprint(int(ConnectTimeout.Seconds()))),
	}, " ")
}

// pgConnect logs in with the credentials, using TLS as their ssl setting and the material's CA
// bundle say (see tls.go).
func pgConnect(ctx context.Context, c Creds, caBundle []byte) (*pgx.Conn, error) {
	plan, err := planTLS(c, caBundle)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(pgConnString(c))
	if err != nil {
		// The parse error could quote the connection string; say only that it is invalid.
		return nil, errors.New("the credentials do not form a valid PostgreSQL connection")
	}
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	if plan.config != nil {
		cfg.AfterNetConnect = func(ctx context.Context, _ *pgconn.Config, conn net.Conn) (net.Conn, error) {
			return pgNegotiateTLS(ctx, conn, plan)
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, newConnectError(c, plan, err)
	}
	return conn, nil
}

var (
	errPgNoTLS       = errors.New("the server refused TLS")
	errPgBadSSLReply = errors.New("the server answered the TLS request with neither S nor N")
)

// pgNegotiateTLS sends PostgreSQL's SSLRequest. The server answers S (go on in TLS) or N (no
// TLS: plaintext, unless TLS is required). Unix-domain sockets never use TLS, as with libpq.
// On an error it returns conn as well: pgx closes what AfterNetConnect returns.
func pgNegotiateTLS(ctx context.Context, conn net.Conn, plan tlsPlan) (net.Conn, error) {
	if conn.RemoteAddr() != nil && conn.RemoteAddr().Network() == "unix" {
		return conn, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	// Length 8, request code 80877103 (1234 in the high 16 bits, 5679 in the low).
	if _, err := conn.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil {
		return conn, err
	}
	var reply [1]byte
	if _, err := io.ReadFull(conn, reply[:]); err != nil {
		return conn, err
	}
	switch reply[0] {
	case 'S':
		tc := tls.Client(conn, plan.config)
		if err := tc.HandshakeContext(ctx); err != nil {
			return conn, err
		}
		_ = conn.SetDeadline(time.Time{})
		return tc, nil
	case 'N':
		if plan.required {
			return conn, errPgNoTLS
		}
		_ = conn.SetDeadline(time.Time{})
		return conn, nil
	}
	return conn, errPgBadSSLReply
}

// pgTryLogin reports why the credentials do not log in, or nil when they do.
func pgTryLogin(ctx context.Context, c Creds, caBundle []byte) error {
	conn, err := pgConnect(ctx, c, caBundle)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("connecting to %s:%d as %s failed: %s", c.Host, c.Port, c.Username, pgErrorCode(err))
	}
	return nil
}

func pgCanLogin(ctx context.Context, c Creds, caBundle []byte) bool {
	return pgTryLogin(ctx, c, caBundle) == nil
}

// Set makes the database accept the pending credentials.
func (p PostgreSQL) Set(ctx context.Context, m Material) error {
	if err := m.checkTLS(); err != nil {
		return err
	}
	if pgCanLogin(ctx, m.Pending, m.CABundle) {
		return nil
	}
	if m.Current.Host != m.Pending.Host {
		return errors.New("the pending host differs from the current host")
	}
	if p.Alternating {
		if err := checkAlternate(m, rotation.PostgreSQLUsernameLimit); err != nil {
			return err
		}
		return p.setAlternating(ctx, m)
	}
	if m.Current.Username != m.Pending.Username {
		return errors.New("the pending username differs from the current username")
	}
	// Log in with current, or else previous (after an interrupted rotation).
	conn, err := pgConnect(ctx, m.Current, m.CABundle)
	if err != nil && m.Previous != nil && m.Previous.Username == m.Pending.Username && m.Previous.Host == m.Pending.Host {
		prev := *m.Previous
		prev.SSL = m.Current.SSL
		var prevErr error
		if conn, prevErr = pgConnect(ctx, prev, m.CABundle); prevErr == nil {
			err = nil
		}
	}
	if err != nil {
		return noLogin(err)
	}
	defer conn.Close(ctx)
	return pgSetPassword(ctx, conn, m.Pending.Username, m.Pending.Password)
}

func (p PostgreSQL) setAlternating(ctx context.Context, m Material) error {
	if m.Superuser == nil {
		return errors.New("the alternating-users strategy needs the superuser credentials")
	}
	// Refuse to act for someone who cannot log in as the current user (AWS's confused-deputy guard).
	if err := pgTryLogin(ctx, m.Current, m.CABundle); err != nil {
		return fmt.Errorf("unable to log into database with the current secret; rotation refused: %w", err)
	}
	su := *m.Superuser
	su.DBName = m.Current.DBName
	if su.Host != m.Current.Host {
		return errors.New("the superuser's host differs from the current host")
	}
	conn, err := pgConnect(ctx, su, m.CABundle)
	if err != nil {
		return fmt.Errorf("logging in as the superuser failed: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", m.Pending.Username).Scan(&exists); err != nil {
		return fmt.Errorf("looking up role %s failed: %s", m.Pending.Username, pgErrorCode(err))
	}
	if exists {
		return pgSetPassword(ctx, conn, m.Pending.Username, m.Pending.Password)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if err := pgExecFormatted(ctx, tx, "CREATE ROLE %I WITH LOGIN PASSWORD %L", m.Pending.Username, scramVerifier(m.Pending.Password)); err != nil {
		return fmt.Errorf("creating role %s failed: %s", m.Pending.Username, pgErrorCode(err))
	}
	if err := pgExecFormatted(ctx, tx, "GRANT %I TO %I", m.Current.Username, m.Pending.Username); err != nil {
		return fmt.Errorf("granting %s to %s failed: %s", m.Current.Username, m.Pending.Username, pgErrorCode(err))
	}
	return tx.Commit(ctx)
}

type pgQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, arguments ...any) (pgconn.CommandTag, error)
}

// pgExecFormatted has the server build the statement with format(): %I quotes identifiers and %L
// quotes literals, with every argument bound as a parameter, so nothing is spliced on our side.
func pgExecFormatted(ctx context.Context, q pgQuerier, format string, args ...string) error {
	placeholders := make([]string, len(args))
	bound := []any{format}
	for i, a := range args {
		placeholders[i] = fmt.Sprintf("$%d::text", i+2)
		bound = append(bound, a)
	}
	var stmt string
	if err := q.QueryRow(ctx, "SELECT format($1::text, "+strings.Join(placeholders, ", ")+")", bound...).Scan(&stmt); err != nil {
		return err
	}
	_, err := q.Exec(ctx, stmt)
	return err
}

// pgSetPassword sends a SCRAM-SHA-256 verifier, never the password: statement text can reach
// pg_stat_activity, pg_stat_statements and the server log.
func pgSetPassword(ctx context.Context, q pgQuerier, user, password string) error {
	if err := pgExecFormatted(ctx, q, "ALTER ROLE %I WITH PASSWORD %L", user, scramVerifier(password)); err != nil {
		return fmt.Errorf("changing the password of %s failed: %s", user, pgErrorCode(err))
	}
	return nil
}

// Test logs in with the pending credentials and runs a harmless query.
func (PostgreSQL) Test(ctx context.Context, m Material) error {
	if err := m.checkTLS(); err != nil {
		return fmt.Errorf("testSecret: %w", err)
	}
	conn, err := pgConnect(ctx, m.Pending, m.CABundle)
	if err != nil {
		return fmt.Errorf("testSecret: %w", err)
	}
	defer conn.Close(ctx)
	var now any
	if err := conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return fmt.Errorf("testSecret: the query failed: %s", pgErrorCode(err))
	}
	return nil
}

// pgErrorCode reduces a server error to its SQLSTATE and message; PostgreSQL's messages name
// roles and objects, never a password we sent (those travel inside bound parameters).
func pgErrorCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	return "the database request failed"
}
