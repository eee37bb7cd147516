package testdb

// TLS-enabled PostgreSQL and MariaDB servers that the tests start themselves, each in a temporary
// folder on a free port, with a CA and server certificate made here for 127.0.0.1 and localhost.
// The PostgreSQL server accepts password logins only over TLS; MariaDB users made here REQUIRE
// SSL. Both also listen on 127.0.0.2, an address their certificates do not name.
//
// A package whose TestMain calls Main shares one server of each kind among its tests (started on
// first use, stopped and removed when the tests are done); elsewhere each test starts its own and
// t.Cleanup stops it. A server that cannot start fails the test, unless KSM_SKIP lists
// tls-databases (see internal/optout).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/optout"
)

// startTimeout bounds a server's start-up (making its data folder included).
const startTimeout = 60 * time.Second

var (
	sharing   bool // Main runs the tests: servers are shared, and stopped after the last test
	stopMu    sync.Mutex
	stopFuncs []func()

	pgOnce   sync.Once
	pgShared *PostgresServer
	pgErr    error

	mariaOnce   sync.Once
	mariaShared *MariaDBServer
	mariaErr    error
)

// Main runs a test binary's tests; call it from TestMain. The TLS servers are then shared by the
// tests and stopped and removed when they are done.
func Main(m *testing.M) {
	sharing = true
	code := m.Run()
	stopMu.Lock()
	fns := stopFuncs
	stopFuncs = nil
	stopMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	os.Exit(code)
}

func atExit(f func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stopFuncs = append(stopFuncs, f)
}

// server is a database process and its folder.
type server struct {
	name       string
	dir        string
	logs       []string // files whose ends explain a failed start
	stopSignal os.Signal
	cmd        *exec.Cmd
	exited     chan struct{}
}

// run runs a set-up command to completion, its output appended to the first log.
func (s *server) run(attr *syscall.SysProcAttr, env []string, stdin io.Reader, bin string, args ...string) error {
	logf, err := os.OpenFile(s.logs[0], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.SysProcAttr, cmd.Env, cmd.Dir = logf, logf, attr, env, s.dir
	cmd.Stdin = stdin
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", bin, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s failed: %w\n%s", filepath.Base(bin), err, s.logTail())
		}
		return nil
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		if err := <-done; err != nil {
			return fmt.Errorf("%s did not finish within %s and was killed (%v)\n%s", filepath.Base(bin), startTimeout, err, s.logTail())
		}
		return fmt.Errorf("%s did not finish within %s\n%s", filepath.Base(bin), startTimeout, s.logTail())
	}
}

// launch starts the server process.
func (s *server) launch(attr *syscall.SysProcAttr, env []string, bin string, args ...string) error {
	logf, err := os.OpenFile(s.logs[0], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.SysProcAttr, cmd.Env, cmd.Dir = logf, logf, attr, env, s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// waitReady polls probe until it succeeds, the process exits, or the deadline passes.
func (s *server) waitReady(deadline time.Time, probe func() error) error {
	for {
		err := probe()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited during start-up\n%s", s.name, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready within %s (last attempt: %v)\n%s", s.name, startTimeout, err, s.logTail())
		}
		select {
		case <-s.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// portTaken reports whether a failed start was a port another process took in the meantime.
func (s *server) portTaken() bool {
	tail := s.logTail()
	return strings.Contains(tail, "ddress already in use") || strings.Contains(tail, "could not bind")
}

// halt stops the process: the stop signal, then SIGKILL after 15 seconds.
func (s *server) halt() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(s.stopSignal)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.cmd = nil
}

// stop stops the process and removes the folder.
func (s *server) stop() {
	s.halt()
	_ = os.RemoveAll(s.dir)
}

func (s *server) logTail() string {
	var b strings.Builder
	for _, f := range s.logs {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		fmt.Fprintf(&b, "--- end of %s:\n%s\n", f, data)
	}
	return b.String()
}

// ownerFile in a server's folder holds the id of the test process that started it.
const ownerFile = "owner.pid"

var sweepOnce sync.Once

// makeServerDir makes a server's temporary folder. The first call also removes folders left by
// test processes that died without stopping their servers (the kernel killed those servers with
// them); folders of test binaries still running, such as other packages' in the same go test
// run, are left alone.
func makeServerDir(prefix string) (string, error) {
	sweepOnce.Do(func() {
		old, _ := filepath.Glob(filepath.Join(os.TempDir(), "ksm-tls-*"))
		for _, d := range old {
			data, err := os.ReadFile(filepath.Join(d, ownerFile))
			if err != nil {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid != os.Getpid() && processGone(pid) {
				_ = os.RemoveAll(d)
			}
		}
	})
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("making the server's temporary folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// osUser is an OS account a server runs as.
type osUser struct {
	name     string
	uid, gid uint32
}

func lookupOSUser(name string) (*osUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("OS user %s has a non-numeric uid or gid", name)
	}
	return &osUser{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
}

// chownAll gives the folder and everything in it to u (nil: leave as is).
func chownAll(dir string, u *osUser) error {
	if u == nil {
		return nil
	}
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(u.uid), int(u.gid))
	})
}

// freePort finds a TCP port free on both 127.0.0.1 and 127.0.0.2, never 5432 or 3306.
func freePort() (int, error) {
	var last error
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
		l.Close()
		if err != nil {
			last = err
			continue
		}
		l2.Close()
		if port != 5432 && port != 3306 {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no TCP port is free on both 127.0.0.1 and 127.0.0.2: %w", last)
}

// writeCerts makes a CA and a server certificate for 127.0.0.1 and localhost in dir: ca.crt,
// server.crt and server.key.
func writeCerts(dir string) (*CA, error) {
	ca, err := NewCA("kube-secrets-manager test CA")
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.ServerCert("127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{"ca.crt": ca.PEM, "server.crt": certPEM, "server.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// findBinary returns the first of names on PATH, or else the first existing known path.
func findBinary(names, known []string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	for _, p := range known {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s is installed (looked on PATH and at %s)", strings.Join(names, ", "), strings.Join(known, ", "))
}

func certPool(pem []byte) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// ---- PostgreSQL ----

// PostgresServer is a PostgreSQL server started by the tests. Password logins are accepted only
// over TLS (hostssl, scram-sha-256); plaintext TCP connections are rejected. The superuser
// postgres logs in over the Unix socket without a password.
type PostgresServer struct {
	Host      string // 127.0.0.1, named by the certificate
	OtherHost string // 127.0.0.2: the same server at an address its certificate does not name
	Port      int
	CA        []byte // PEM of the CA that signed the server's certificate
	srv       server
}

// TLSPostgres returns a running TLS-enabled PostgreSQL server (shared under Main).
func TLSPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	if !sharing {
		s, err := startPostgres()
		optout.Need(t, optout.TLSDatabases, "a TLS-enabled PostgreSQL server started by the tests", err)
		t.Cleanup(s.srv.stop)
		return s
	}
	pgOnce.Do(func() {
		pgShared, pgErr = startPostgres()
		if pgErr == nil {
			atExit(pgShared.srv.stop)
		}
	})
	optout.Need(t, optout.TLSDatabases, "a TLS-enabled PostgreSQL server started by the tests", pgErr)
	return pgShared
}

// postgresBinDir is Debian's /usr/lib/postgresql/<newest>/bin, or else the folder of postgres on
// PATH.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[i])), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[j])), 64)
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
				return d, nil
			}
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL's initdb and postgres are not installed (looked in /usr/lib/postgresql/*/bin and on PATH; Debian's package is postgresql)")
}

const pgHBA = `# kube-secrets-manager tests: the superuser over the Unix socket; passwords only over TLS.
local   all all                 trust
hostssl all all 127.0.0.0/8     scram-sha-256
host    all all 0.0.0.0/0       reject
host    all all ::/0            reject
`

func startPostgres() (_ *PostgresServer, err error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	var runAs *osUser
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		if runAs, err = lookupOSUser("postgres"); err != nil {
			return nil, fmt.Errorf("PostgreSQL refuses to run as root, and the postgres OS user is missing: %w", err)
		}
	}
	dir, err := makeServerDir("ksm-tls-postgres-")
	if err != nil {
		return nil, err
	}
	s := &PostgresServer{Host: "127.0.0.1", OtherHost: "127.0.0.2"}
	// SIGQUIT: immediate shutdown; the data is thrown away.
	s.srv = server{name: "PostgreSQL", dir: dir, logs: []string{filepath.Join(dir, "server.log")}, stopSignal: syscall.SIGQUIT}
	defer func() {
		if err != nil {
			s.srv.stop()
		}
	}()
	ca, err := writeCerts(dir)
	if err != nil {
		return nil, err
	}
	s.CA = ca.PEM
	if err := os.WriteFile(s.srv.logs[0], nil, 0o644); err != nil {
		return nil, err
	}
	if err := chownAll(dir, runAs); err != nil {
		return nil, err
	}
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "LC_ALL=C", "LANG=C"}
	data := filepath.Join(dir, "data")
	if err := s.srv.run(processAttr(runAs, syscall.SIGKILL), env, nil, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(pgHBA), 0o600); err != nil {
		return nil, err
	}
	if err := chownAll(dir, runAs); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(startTimeout)
	for attempt := 1; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.srv.launch(processAttr(runAs, syscall.SIGQUIT), env, filepath.Join(bin, "postgres"),
			"-D", data, "-p", strconv.Itoa(s.Port), "-k", dir, "-h", s.Host+","+s.OtherHost,
			"-c", "ssl=on",
			"-c", "ssl_cert_file="+filepath.Join(dir, "server.crt"),
			"-c", "ssl_key_file="+filepath.Join(dir, "server.key"),
			"-c", "password_encryption=scram-sha-256",
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "shared_buffers=16MB", "-c", "max_connections=50")
		if err != nil {
			return nil, err
		}
		err = s.srv.waitReady(deadline, func() error {
			conn, err := s.adminConn(2 * time.Second)
			if err == nil {
				conn.Close(context.Background())
			}
			return err
		})
		if err == nil {
			return s, nil
		}
		if attempt == 3 || !s.srv.portTaken() {
			return nil, err
		}
		s.srv.halt()
	}
}

func (s *PostgresServer) adminConn(timeout time.Duration) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=%d",
		s.srv.dir, s.Port, int(timeout.Seconds())))
}

// Admin connects as the superuser over the Unix socket; the connection closes at the test's end.
func (s *PostgresServer) Admin(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := s.adminConn(10 * time.Second)
	if err != nil {
		t.Fatalf("connecting to the test PostgreSQL server as postgres: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// User creates a login role with a password (extra attributes such as SUPERUSER allowed), dropped
// with its _clone at the test's end.
func (s *PostgresServer) User(t testing.TB, extra string) User {
	t.Helper()
	admin := s.Admin(t)
	u := User{Name: RandomName("ksm_t_"), Password: RandomPassword()}
	PostgresExec(t, admin, "CREATE ROLE %I WITH LOGIN "+extra+" PASSWORD %L", u.Name, u.Password)
	t.Cleanup(func() {
		ctx := context.Background()
		for _, n := range []string{u.Name, u.Name + "_clone"} {
			var stmt string
			if admin.QueryRow(ctx, "SELECT format('DROP ROLE IF EXISTS %I', $1::text)", n).Scan(&stmt) == nil {
				_, _ = admin.Exec(ctx, stmt)
			}
		}
	})
	return u
}

// Login logs in as the user over TLS, verifying the server's certificate with the test CA, and
// returns why it failed (nil when it worked).
func (s *PostgresServer) Login(u User) error {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=5", s.Host, s.Port))
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = u.Name, u.Password
	cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.Host, RootCAs: certPool(s.CA)}
	cfg.Fallbacks = nil
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// ---- MariaDB ----

// MariaDBServer is a MariaDB server started by the tests. Users made with User REQUIRE SSL; root
// logs in over the Unix socket without a password.
type MariaDBServer struct {
	Host      string // 127.0.0.1, named by the certificate
	OtherHost string // 127.0.0.2: the same server at an address its certificate does not name
	Port      int
	CA        []byte // PEM of the CA that signed the server's certificate
	srv       server
}

// TLSMariaDB returns a running TLS-enabled MariaDB server (shared under Main).
func TLSMariaDB(t testing.TB) *MariaDBServer {
	t.Helper()
	if !sharing {
		s, err := startMariaDB()
		optout.Need(t, optout.TLSDatabases, "a TLS-enabled MariaDB server started by the tests", err)
		t.Cleanup(s.srv.stop)
		return s
	}
	mariaOnce.Do(func() {
		mariaShared, mariaErr = startMariaDB()
		if mariaErr == nil {
			atExit(mariaShared.srv.stop)
		}
	})
	optout.Need(t, optout.TLSDatabases, "a TLS-enabled MariaDB server started by the tests", mariaErr)
	return mariaShared
}

func startMariaDB() (_ *MariaDBServer, err error) {
	mariadbd, err := findBinary([]string{"mariadbd", "mysqld"}, []string{"/usr/sbin/mariadbd", "/usr/sbin/mysqld", "/usr/libexec/mariadbd"})
	if err != nil {
		return nil, fmt.Errorf("the MariaDB server is not installed (Debian's package is mariadb-server): %w", err)
	}
	me, err := user.Current()
	if err != nil {
		return nil, err
	}
	dir, err := makeServerDir("ksm-tls-mariadb-")
	if err != nil {
		return nil, err
	}
	s := &MariaDBServer{Host: "127.0.0.1", OtherHost: "127.0.0.2"}
	// SIGKILL: the data is thrown away, and a clean InnoDB shutdown takes seconds.
	s.srv = server{name: "MariaDB", dir: dir, logs: []string{filepath.Join(dir, "server.log"), filepath.Join(dir, "error.log")}, stopSignal: syscall.SIGKILL}
	defer func() {
		if err != nil {
			s.srv.stop()
		}
	}()
	ca, err := writeCerts(dir)
	if err != nil {
		return nil, err
	}
	s.CA = ca.PEM
	data := filepath.Join(dir, "data")
	env := append(os.Environ(), "LC_ALL=C")
	if err := s.bootstrap(mariadbd, data, me.Username, env); err != nil {
		return nil, err
	}
	socket := filepath.Join(dir, "mysqld.sock")
	deadline := time.Now().Add(startTimeout)
	for attempt := 1; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.srv.launch(processAttr(nil, syscall.SIGKILL), env, mariadbd, slices.Concat([]string{
			"--no-defaults", "--datadir=" + data, "--socket=" + socket, "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
			"--port=" + strconv.Itoa(s.Port), "--bind-address=" + s.Host + "," + s.OtherHost,
			"--log-error=" + s.srv.logs[1], "--user=" + me.Username, "--skip-name-resolve",
			"--ssl-ca=" + filepath.Join(dir, "ca.crt"), "--ssl-cert=" + filepath.Join(dir, "server.crt"), "--ssl-key=" + filepath.Join(dir, "server.key"),
			"--skip-log-bin", "--max-connections=50"}, mariaDBFastOptions)...)
		if err != nil {
			return nil, err
		}
		err = s.srv.waitReady(deadline, func() error {
			db, err := s.adminDB()
			if err != nil {
				return err
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return db.PingContext(ctx)
		})
		if err == nil {
			return s, s.finishSetup()
		}
		if attempt == 3 || !s.srv.portTaken() {
			return nil, err
		}
		s.srv.halt()
	}
}

// mariaDBFastOptions trade durability, which throw-away servers do not need, for speed.
var mariaDBFastOptions = []string{
	"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M", "--innodb-flush-log-at-trx-commit=0",
	"--innodb-flush-method=nosync", "--innodb-doublewrite=0",
}

// mariaDBSQLDirs are where Debian's packages keep mariadb-install-db's SQL files.
var mariaDBSQLDirs = []string{"/usr/share/mariadb", "/usr/share/mysql"}

// bootstrap makes the data folder. mariadb-install-db also loads the help tables and the sys
// schema, several megabytes of SQL the tests do not need; so when Debian's SQL files are there,
// mariadbd --bootstrap runs only the system tables (what mariadb-install-db runs first).
// --user is this process's user: mariadbd runs as root only when told to, and ignores the option
// otherwise.
func (s *MariaDBServer) bootstrap(mariadbd, data, osUser string, env []string) error {
	var sqlDir string
	for _, d := range mariaDBSQLDirs {
		if _, err := os.Stat(filepath.Join(d, "mysql_system_tables.sql")); err == nil {
			sqlDir = d
			break
		}
	}
	if sqlDir != "" {
		script := []byte("CREATE DATABASE IF NOT EXISTS mysql;\nUSE mysql;\nSET @auth_root_socket=NULL;\n")
		for _, f := range []string{"mysql_system_tables.sql", "mysql_performance_tables.sql", "mysql_system_tables_data.sql"} {
			b, err := os.ReadFile(filepath.Join(sqlDir, f))
			if err != nil {
				return err
			}
			script = append(append(script, b...), '\n')
		}
		if err := os.Mkdir(data, 0o700); err != nil {
			return err
		}
		return s.srv.run(processAttr(nil, syscall.SIGKILL), env, bytes.NewReader(script), mariadbd,
			slices.Concat([]string{"--no-defaults", "--bootstrap", "--datadir=" + data, "--user=" + osUser, "--log-warnings=0",
				"--enforce-storage-engine=", "--max_allowed_packet=8M", "--net_buffer_length=16K", "--skip-name-resolve"},
				mariaDBFastOptions)...)
	}
	install, err := findBinary([]string{"mariadb-install-db", "mysql_install_db"}, []string{"/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"})
	if err != nil {
		return fmt.Errorf("MariaDB's install script is not installed (Debian's package is mariadb-server): %w", err)
	}
	return s.srv.run(processAttr(nil, syscall.SIGKILL), env, nil, install,
		slices.Concat([]string{"--no-defaults", "--datadir=" + data, "--user=" + osUser, "--auth-root-authentication-method=normal",
			"--skip-test-db", "--skip-name-resolve"}, mariaDBFastOptions)...)
}

// finishSetup leaves root to the Unix socket (the bootstrap also made passwordless root@127.0.0.1
// and root@::1), and makes sure the server did load its certificate (it starts without TLS when
// it cannot).
func (s *MariaDBServer) finishSetup() error {
	db, err := s.adminDB()
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query("SELECT Host FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost'")
	if err != nil {
		return err
	}
	var hosts []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return err
		}
		hosts = append(hosts, h)
	}
	rows.Close()
	for _, h := range hosts {
		if _, err := db.Exec("DROP USER 'root'@?", h); err != nil {
			return fmt.Errorf("dropping root@%s: %w", h, err)
		}
	}
	var name, have string
	if err := db.QueryRow("SHOW GLOBAL VARIABLES LIKE 'have_ssl'").Scan(&name, &have); err != nil {
		return err
	}
	if have != "YES" {
		return fmt.Errorf("the test MariaDB server started without TLS (have_ssl=%s)\n%s", have, s.srv.logTail())
	}
	return nil
}

func (s *MariaDBServer) adminDB() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.InterpolateParams = "root", "unix", filepath.Join(s.srv.dir, "mysqld.sock"), true
	cfg.Timeout = 2 * time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(connector), nil
}

// Admin connects as root over the Unix socket; the connection closes at the test's end.
func (s *MariaDBServer) Admin(t testing.TB) *sql.DB {
	t.Helper()
	db, err := s.adminDB()
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		t.Fatalf("connecting to the test MariaDB server as root: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// User creates user@'%' that REQUIRE SSL, with the grants ("GRANT ... ON ...", completed with TO
// user), dropped with its _clone at the test's end.
func (s *MariaDBServer) User(t testing.TB, grants ...string) User {
	t.Helper()
	admin := s.Admin(t)
	u := User{Name: RandomName("ksm_t_"), Password: RandomPassword()}
	if _, err := admin.Exec("CREATE USER ?@'%' IDENTIFIED BY ? REQUIRE SSL", u.Name, u.Password); err != nil {
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

// Login logs in as the user over TLS, verifying the server's certificate with the test CA, and
// returns why it failed (nil when it worked).
func (s *MariaDBServer) Login(u User) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = u.Name, u.Password, "tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.Host, RootCAs: certPool(s.CA)}
	cfg.Timeout = 5 * time.Second
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	return db.Ping()
}
