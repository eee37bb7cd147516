package rotator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// Every secret value in these tests contains "CANARY-": the command's output must never show one.
const canary = "CANARY-"

func canaryValue(what string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return canary + what + "-" + hex.EncodeToString(b)
}

const jobUID = "3f6c2f0e-job-uid"

func requestJSON(t *testing.T, strategy, job string) string {
	t.Helper()
	b, err := json.Marshal(rotation.Request{
		SecretID: "arn:ksm:secretsmanager:default:secret:orders", ClientRequestToken: "7d3a9c1e-pending",
		Strategy: strategy, JobUID: job, Steps: rotation.PodSteps,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dbJSON(t *testing.T, host string, port int, user, password string, ssl *bool) string {
	t.Helper()
	v := map[string]any{"engine": "postgres", "host": host, "port": port, "username": user, "password": password, "dbname": "postgres"}
	if ssl != nil {
		v["ssl"] = *ssl
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeMaterial writes the files as the kubelet mounts the material Secret.
func writeMaterial(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs the command, checks the exit code, and that the output shows no secret value.
func run(t *testing.T, dir, job string, want int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	code := Run(ctx, dir, job, &out)
	t.Logf("exit %d, output:\n%s", code, out.String())
	if code != want {
		t.Fatalf("exit code %d, want %d", code, want)
	}
	if strings.Contains(out.String(), canary) {
		t.Fatal("the output contains a secret value")
	}
	return out.String()
}

// closedPort is a TCP port on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestExitCodes(t *testing.T) {
	password := func(t *testing.T) map[string]string {
		return map[string]string{
			rotation.FileRequest: requestJSON(t, v1alpha1.StrategyPassword, jobUID),
			rotation.FileCurrent: canaryValue("current"),
			rotation.FilePending: canaryValue("pending"),
		}
	}
	postgres := func(t *testing.T, port int) map[string]string {
		user := "app"
		return map[string]string{
			rotation.FileRequest:  requestJSON(t, v1alpha1.StrategyPostgreSQLSingleUser, jobUID),
			rotation.FileCurrent:  dbJSON(t, "127.0.0.1", port, user, canaryValue("current"), nil),
			rotation.FilePending:  dbJSON(t, "127.0.0.1", port, user, canaryValue("pending"), nil),
			rotation.FilePrevious: dbJSON(t, "127.0.0.1", port, user, canaryValue("previous"), nil),
		}
	}
	tests := []struct {
		name   string
		files  func(t *testing.T) map[string]string
		job    string
		want   int
		output string
	}{
		{"password strategy with the pending value", password, jobUID, ExitOK, "testSecret: the pending value is present"},
		{"no JOB_UID to compare", password, "", ExitOK, ""},
		{"missing request.json", func(t *testing.T) map[string]string {
			f := password(t)
			delete(f, rotation.FileRequest)
			return f
		}, jobUID, ExitBadMaterial, rotation.FileRequest},
		{"request.json is not JSON", func(t *testing.T) map[string]string {
			f := password(t)
			f[rotation.FileRequest] = `{"strategy": "password", "clientRequestToken": "` + canaryValue("token")
			return f
		}, jobUID, ExitBadMaterial, "not valid JSON"},
		{"request.json without a strategy", func(t *testing.T) map[string]string {
			f := password(t)
			f[rotation.FileRequest] = `{"clientRequestToken": "v1", "jobUid": "` + jobUID + `"}`
			return f
		}, jobUID, ExitBadMaterial, "lacks"},
		{"a strategy the image does not have", func(t *testing.T) map[string]string {
			f := password(t)
			f[rotation.FileRequest] = requestJSON(t, v1alpha1.StrategyCustom, jobUID)
			return f
		}, jobUID, ExitBadMaterial, "not built into this image"},
		{"password strategy without pending.json", func(t *testing.T) map[string]string {
			f := password(t)
			delete(f, rotation.FilePending)
			return f
		}, jobUID, ExitBadMaterial, "pending value is missing"},
		{"database strategy without pending.json", func(t *testing.T) map[string]string {
			f := postgres(t, closedPort(t))
			delete(f, rotation.FilePending)
			return f
		}, jobUID, ExitBadMaterial, rotation.FilePending},
		{"current.json is not JSON", func(t *testing.T) map[string]string {
			f := postgres(t, closedPort(t))
			f[rotation.FileCurrent] = `{"host": "127.0.0.1", "username": "app", "password": "` + canaryValue("current")
			return f
		}, jobUID, ExitBadMaterial, rotation.FileCurrent},
		{"ca.crt without a certificate", func(t *testing.T) map[string]string {
			f := postgres(t, closedPort(t))
			f[rotation.FileCABundle] = "-----BEGIN CERTIFICATE-----\n" + canaryValue("ca") + "\n-----END CERTIFICATE-----\n"
			return f
		}, jobUID, ExitBadMaterial, rotation.FileCABundle},
		{"material of another Job", password, "another-job-uid", ExitWrongJob, "another rotation Job"},
		{"material of another Job, incomplete", func(t *testing.T) map[string]string {
			f := password(t)
			delete(f, rotation.FilePending)
			return f
		}, "another-job-uid", ExitWrongJob, "stands down"},
		{"PostgreSQL unreachable", func(t *testing.T) map[string]string { return postgres(t, closedPort(t)) }, jobUID, ExitStepFailed, "setSecret failed"},
		{"MySQL unreachable", func(t *testing.T) map[string]string {
			f := postgres(t, closedPort(t))
			f[rotation.FileRequest] = requestJSON(t, v1alpha1.StrategyMySQLSingleUser, jobUID)
			return f
		}, jobUID, ExitStepFailed, "setSecret failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := run(t, writeMaterial(t, tt.files(t)), tt.job, tt.want)
			if !strings.Contains(out, tt.output) {
				t.Fatalf("the output does not say %q", tt.output)
			}
		})
	}
}

func TestReadMaterialCABundle(t *testing.T) {
	ca, err := testdb.NewCA("material CA")
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		rotation.FileCurrent: dbJSON(t, "db", 5432, "app", canaryValue("current"), nil),
		rotation.FilePending: dbJSON(t, "db", 5432, "app", canaryValue("pending"), nil),
	}
	m, err := readMaterial(writeMaterial(t, base), 5432)
	if err != nil || m.CABundle != nil {
		t.Fatalf("without ca.crt: CABundle %q, err %v", m.CABundle, err)
	}
	base[rotation.FileCABundle] = string(ca.PEM)
	m, err = readMaterial(writeMaterial(t, base), 5432)
	if err != nil || !bytes.Equal(m.CABundle, ca.PEM) {
		t.Fatalf("with ca.crt: CABundle %q, err %v", m.CABundle, err)
	}
	base[rotation.FileCABundle] = "\n"
	m, err = readMaterial(writeMaterial(t, base), 5432)
	if err != nil || m.CABundle != nil {
		t.Fatalf("with an empty ca.crt: CABundle %q, err %v", m.CABundle, err)
	}
}

// A whole rotation pod against the TLS-only PostgreSQL server, with "ssl": true: ca.crt makes it
// work; without it the system roots do not trust the server and the pod says what to set.
func TestPostgreSQLOverVerifiedTLS(t *testing.T) {
	s := testdb.TLSPostgres(t)
	u := s.User(t, "")
	u.Password = canaryValue("current")
	testdb.PostgresExec(t, s.Admin(t), "ALTER ROLE %I WITH PASSWORD %L", u.Name, u.Password)
	pending := testdb.User{Name: u.Name, Password: canaryValue("pending")}
	yes := true
	files := map[string]string{
		rotation.FileRequest: requestJSON(t, v1alpha1.StrategyPostgreSQLSingleUser, jobUID),
		rotation.FileCurrent: dbJSON(t, s.Host, s.Port, u.Name, u.Password, &yes),
		rotation.FilePending: dbJSON(t, s.Host, s.Port, pending.Name, pending.Password, &yes),
	}
	out := run(t, writeMaterial(t, files), jobUID, ExitStepFailed)
	if !strings.Contains(out, "spec.tls.caBundle") {
		t.Fatal("without ca.crt the output does not say to set spec.tls.caBundle")
	}
	if s.Login(u) != nil || s.Login(pending) == nil {
		t.Fatal("a failed rotation changed the password")
	}
	files[rotation.FileCABundle] = string(s.CA)
	out = run(t, writeMaterial(t, files), jobUID, ExitOK)
	if !strings.Contains(out, rotation.FileCABundle) {
		t.Fatal("the output does not say ca.crt is used")
	}
	if err := s.Login(pending); err != nil || s.Login(u) == nil {
		t.Fatalf("after the rotation the pending password must log in (%v) and the current one must not", err)
	}
}

func TestMySQLOverVerifiedTLS(t *testing.T) {
	s := testdb.TLSMariaDB(t)
	u := s.User(t)
	u.Password = canaryValue("current")
	if _, err := s.Admin(t).Exec("ALTER USER ?@'%' IDENTIFIED BY ?", u.Name, u.Password); err != nil {
		t.Fatal(err)
	}
	pending := testdb.User{Name: u.Name, Password: canaryValue("pending")}
	files := map[string]string{
		rotation.FileRequest:  requestJSON(t, v1alpha1.StrategyMySQLSingleUser, jobUID),
		rotation.FileCurrent:  fmt.Sprintf(`{"engine":"mysql","host":%q,"port":"%d","username":%q,"password":%q,"ssl":"true"}`, s.Host, s.Port, u.Name, u.Password),
		rotation.FilePending:  fmt.Sprintf(`{"engine":"mysql","host":%q,"port":"%d","username":%q,"password":%q,"ssl":"true"}`, s.Host, s.Port, pending.Name, pending.Password),
		rotation.FileCABundle: string(s.CA),
	}
	run(t, writeMaterial(t, files), jobUID, ExitOK)
	if err := s.Login(pending); err != nil || s.Login(u) == nil {
		t.Fatalf("after the rotation the pending password must log in (%v) and the current one must not", err)
	}
}
