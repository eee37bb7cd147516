package dbrotate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/testdb"
)

// These tests rotate real users on real servers: PostgreSQL at 127.0.0.1:5432 (superuser
// postgres, trust) and MariaDB/MySQL at 127.0.0.1:3306 (root, empty password). With CI=true a
// missing server fails the test; elsewhere it skips.

func pgCreds(u testdb.User) Creds {
	return Creds{Engine: "postgres", Host: "127.0.0.1", Port: 5432, Username: u.Name, Password: u.Password, DBName: "postgres"}
}

func pgLogin(c Creds) bool { return pgCanLogin(context.Background(), c, nil) }

func randomPassword() string { return testdb.RandomPassword() }

func TestPostgreSQLPasswordsAreChecked(t *testing.T) {
	admin := testdb.Postgres(t)
	c := pgCreds(testdb.PostgresUser(t, admin, ""))
	if !pgLogin(c) {
		t.Fatal("the right password does not log in")
	}
	c.Password = "wrong"
	if pgLogin(c) {
		t.Fatal("a wrong password logs in: the tests would prove nothing")
	}
}

func TestPostgreSQLSingleUser(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Postgres(t)
	cur := pgCreds(testdb.PostgresUser(t, admin, ""))
	pend := cur
	pend.Password = randomPassword()
	m := Material{Current: cur, Pending: pend}
	s := PostgreSQL{}
	if err := s.Set(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Test(ctx, m); err != nil {
		t.Fatal(err)
	}
	if !pgLogin(pend) || pgLogin(cur) {
		t.Fatal("after setSecret the pending password must log in and the old one must not")
	}
	// A second run (a retried pod) sees the pending credentials work and does nothing: the stored
	// verifier (a fresh salt on every ALTER ROLE) stays the same.
	verifier := func() string {
		var v string
		if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", cur.Username).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := verifier()
	if err := s.Set(ctx, m); err != nil {
		t.Fatal(err)
	}
	if verifier() != before {
		t.Fatal("a re-run of setSecret changed the password again instead of doing nothing")
	}
	// Neither AWSCURRENT (the old password) nor a missing AWSPREVIOUS logs in: refused with AWS's
	// message, and nothing changes.
	next := pend
	next.Password = randomPassword()
	err := s.Set(ctx, Material{Current: cur, Pending: next})
	if !errors.Is(err, ErrNoLogin) {
		t.Fatalf("err = %v, want ErrNoLogin", err)
	}
	// With the working credentials as AWSPREVIOUS (a rollback happened), the ladder uses them.
	if err := s.Set(ctx, Material{Current: cur, Previous: &pend, Pending: next}); err != nil {
		t.Fatal(err)
	}
	if !pgLogin(next) {
		t.Fatal("logging in via AWSPREVIOUS did not rotate")
	}
}

func TestPostgreSQLAlternatingUsers(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Postgres(t)
	su := pgCreds(testdb.PostgresUser(t, admin, "SUPERUSER"))
	cur := pgCreds(testdb.PostgresUser(t, admin, ""))
	table := testdb.RandomName("ksm_tbl_")
	testdb.PostgresExec(t, admin, "CREATE TABLE %I (id int)", table)
	t.Cleanup(func() { _ = pgExecFormatted(context.Background(), admin, "DROP TABLE IF EXISTS %I", table) })
	testdb.PostgresExec(t, admin, "GRANT SELECT ON %I TO %I", table, cur.Username)
	s := PostgreSQL{Alternating: true}

	// Rotation 1: orders -> orders_clone, created with the original's privileges.
	clone := cur
	clone.Username, clone.Password = cur.Username+"_clone", randomPassword()
	m := Material{Current: cur, Pending: clone, Superuser: &su}
	if err := s.Set(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Test(ctx, m); err != nil {
		t.Fatal(err)
	}
	if !pgLogin(clone) || !pgLogin(cur) {
		t.Fatal("after alternating, both users must log in")
	}
	conn, err := pgConnect(ctx, clone, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("SELECT * FROM %s", pgx.Identifier{table}.Sanitize())); err != nil {
		t.Fatalf("the clone lacks the original's privileges: %v", err)
	}
	conn.Close(ctx)

	// Rotation 2: back to the original user with a new password; the clone (now AWSPREVIOUS)
	// keeps working, the original's old password (the one before) is replaced.
	back := cur
	back.Password = randomPassword()
	m2 := Material{Current: clone, Previous: &cur, Pending: back, Superuser: &su}
	if err := s.Set(ctx, m2); err != nil {
		t.Fatal(err)
	}
	if !pgLogin(back) || !pgLogin(clone) || pgLogin(cur) {
		t.Fatal("after the second rotation: new original and clone must log in, the original's old password must not")
	}

	// Without a working current login nothing happens (confused-deputy guard).
	bogus := clone
	bogus.Password = "not-it"
	other := cur
	other.Password = randomPassword()
	if err := s.Set(ctx, Material{Current: bogus, Pending: other, Superuser: &su}); err == nil || !strings.Contains(err.Error(), "rotation refused") {
		t.Fatalf("err = %v", err)
	}
	if !pgLogin(back) {
		t.Fatal("a refused rotation changed a password")
	}
	// Wrong superuser credentials fail without a password in the message.
	badSU := su
	badSU.Password = "wrong-su-password"
	err = s.Set(ctx, Material{Current: back, Pending: Creds{Engine: "postgres", Host: "127.0.0.1", Port: 5432, Username: clone.Username, Password: randomPassword()}, Superuser: &badSU})
	if err == nil || strings.Contains(err.Error(), "wrong-su-password") {
		t.Fatalf("err = %v", err)
	}
}

func mysqlCreds(u testdb.User) Creds {
	return Creds{Engine: "mysql", Host: "127.0.0.1", Port: 3306, Username: u.Name, Password: u.Password}
}

func mysqlLogin(c Creds) bool { return mysqlCanLogin(context.Background(), c, nil) }

func TestMySQLSingleUser(t *testing.T) {
	ctx := context.Background()
	admin := testdb.MySQL(t)
	cur := mysqlCreds(testdb.MySQLUser(t, admin))
	wrong := cur
	wrong.Password = "wrong"
	if mysqlLogin(wrong) {
		t.Fatal("a wrong password logs in: the tests would prove nothing")
	}
	pend := cur
	pend.Password = randomPassword()
	m := Material{Current: cur, Pending: pend}
	s := MySQL{}
	if err := s.Set(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Test(ctx, m); err != nil {
		t.Fatal(err)
	}
	if !mysqlLogin(pend) || mysqlLogin(cur) {
		t.Fatal("after setSecret the pending password must log in and the old one must not")
	}
	if err := s.Set(ctx, m); err != nil {
		t.Fatalf("a re-run must be a no-op: %v", err)
	}
}

func TestMySQLAlternatingUsers(t *testing.T) {
	ctx := context.Background()
	admin := testdb.MySQL(t)
	dbName := testdb.RandomName("ksm_db_")
	if _, err := admin.Exec("CREATE DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + dbName) })
	su := mysqlCreds(testdb.MySQLUser(t, admin))
	if _, err := admin.Exec("GRANT ALL PRIVILEGES ON *.* TO ?@'%' WITH GRANT OPTION", su.Username); err != nil {
		t.Fatal(err)
	}
	cur := mysqlCreds(testdb.MySQLUser(t, admin, "GRANT SELECT ON "+dbName+".*"))
	cur.DBName = dbName
	s := MySQL{Alternating: true}
	clone := cur
	clone.Username, clone.Password = cur.Username+"_clone", randomPassword()
	m := Material{Current: cur, Pending: clone, Superuser: &su}
	if err := s.Set(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Test(ctx, m); err != nil {
		t.Fatal(err)
	}
	if !mysqlLogin(clone) || !mysqlLogin(cur) {
		t.Fatal("after alternating, both users must log in")
	}
	// The clone got the original's grant on the database.
	var grants []string
	rows, err := admin.Query("SHOW GRANTS FOR ?@'%'", clone.Username)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g string
		rows.Scan(&g)
		grants = append(grants, g)
	}
	rows.Close()
	if !strings.Contains(strings.Join(grants, "\n"), "GRANT SELECT ON `"+dbName+"`.*") {
		t.Fatalf("grants were not copied: %v", grants)
	}
	back := cur
	back.Password = randomPassword()
	if err := s.Set(ctx, Material{Current: clone, Previous: &cur, Pending: back, Superuser: &su}); err != nil {
		t.Fatal(err)
	}
	if !mysqlLogin(back) || !mysqlLogin(clone) || mysqlLogin(cur) {
		t.Fatal("after the second rotation: new original and clone must log in, the original's old password must not")
	}
}

func TestParseServerVersion(t *testing.T) {
	tests := []struct {
		v     string
		limit int
		maria bool
	}{
		{"10.11.19-MariaDB-0+deb12u1", 80, true},
		{"8.0.36", 32, false},
		{"5.7.8-log", 32, false},
		{"5.7.7", 16, false},
		{"5.6.51", 16, false},
	}
	for _, tt := range tests {
		if s := parseServerVersion(tt.v); s.usernameLimit != tt.limit || s.mariaDB != tt.maria {
			t.Errorf("%s: %+v", tt.v, s)
		}
	}
}

func TestParseCreds(t *testing.T) {
	c, err := ParseCreds([]byte(`{"engine":"postgres","host":"h","username":"u","password":"p","port":"6543","ssl":"true"}`), 5432)
	if err != nil || c.Port != 6543 || c.SSL == nil || !*c.SSL {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = ParseCreds([]byte(`{"host":"h","username":"u","password":"p","port":3307,"ssl":"maybe"}`), 3306)
	if err != nil || c.Port != 3307 || c.SSL != nil {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := ParseCreds([]byte(`{"host":"h","username":"u"}`), 1); err == nil || !strings.Contains(err.Error(), `"password"`) {
		t.Fatalf("missing password: %v", err)
	}
}

// If the clone's grants cannot be copied, the clone must not be usable with the pending password:
// a retried setSecret would otherwise see the login work and promote a clone without privileges.
func TestMySQLAlternatingNeverLeavesAPrivilegelessClone(t *testing.T) {
	ctx := context.Background()
	admin := testdb.MySQL(t)
	dbName := testdb.RandomName("ksm_db_")
	if _, err := admin.Exec("CREATE DATABASE " + dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + dbName) })
	// A "superuser" that may create users but not grant what the original has.
	su := mysqlCreds(testdb.MySQLUser(t, admin, "GRANT CREATE USER ON *.*", "GRANT SELECT ON mysql.*"))
	cur := mysqlCreds(testdb.MySQLUser(t, admin, "GRANT SELECT ON "+dbName+".*"))
	clone := cur
	clone.Username, clone.Password = cur.Username+"_clone", randomPassword()
	m := Material{Current: cur, Pending: clone, Superuser: &su}
	for attempt := 1; attempt <= 2; attempt++ {
		if err := (MySQL{Alternating: true}).Set(ctx, m); err == nil {
			t.Fatalf("attempt %d: setSecret succeeded although the grants could not be copied", attempt)
		}
		if mysqlLogin(clone) {
			t.Fatalf("attempt %d: the clone logs in with the pending password without its grants", attempt)
		}
	}
}

func TestPostgreSQLReceivesAVerifierNotThePassword(t *testing.T) {
	v := scramVerifier("hunter2")
	if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") || strings.Contains(v, "hunter2") {
		t.Fatalf("verifier %q", v)
	}
	if scramVerifier("hunter2") == v {
		t.Fatal("the salt must be fresh each time")
	}
}

func TestAlternatesMustMatch(t *testing.T) {
	cur := Creds{Username: "app", Host: "h"}
	if err := checkAlternate(Material{Current: cur, Pending: Creds{Username: "app_clone"}}, 63); err != nil {
		t.Fatal(err)
	}
	if err := checkAlternate(Material{Current: cur, Pending: Creds{Username: "someone_else"}}, 63); err == nil {
		t.Fatal("a pending user that is not the alternate was accepted")
	}
}
