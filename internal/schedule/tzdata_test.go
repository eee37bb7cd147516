package schedule

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/optout"
)

// childEnv marks the re-executed test binary that runs without host zone data.
const childEnv = "KSM_TZ_CHILD"

// The shipped image has no zone files (the static binary alone), so a policy's time zone must
// resolve from the embedded database. The test runs itself again in a private mount namespace
// where every place Go looks for zone files is empty, and ZONEINFO names an empty folder.
func TestTimeZonesWithoutHostZoneData(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		goroot := os.Getenv("KSM_TZ_GOROOT")
		for _, dir := range []string{"/usr/share/zoneinfo", goroot + "/lib/time"} {
			if _, err := os.Stat(dir + "/Europe/Berlin"); err == nil {
				t.Fatalf("zone data is still visible in %s; the test would prove nothing", dir)
			}
		}
		if _, err := os.Stat(goroot + "/lib/time/zoneinfo.zip"); err == nil {
			t.Fatal("GOROOT's zoneinfo.zip is still visible; the test would prove nothing")
		}
		s, err := Parse(Spec{Cron: "0 3 * * *", TimeZone: "Europe/Berlin"})
		if err != nil {
			t.Fatalf("without host zone data: %v", err)
		}
		// 03:00 in Berlin in winter is 02:00 UTC.
		if got := s.Next(time.Time{}, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)) {
			t.Fatalf("next rotation %s", got)
		}
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		optout.Need(t, optout.Unshare, "a private mount namespace (root and unshare)", errOrNotRoot(err))
	}
	empty := t.TempDir()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	script := strings.Join([]string{
		"set -e",
		"mount -t tmpfs none /usr/share/zoneinfo",
		"if [ -d " + goroot + "/lib/time ]; then mount -t tmpfs none " + goroot + "/lib/time; fi",
		`exec "$0" -test.run '^TestTimeZonesWithoutHostZoneData$' -test.v`,
	}, "\n")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", "ZONEINFO="+empty, "KSM_TZ_GOROOT="+goroot)
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestTimeZonesWithoutHostZoneData") {
		t.Fatalf("the run without host zone data failed: %v\n%s", err, out)
	}
}

func errOrNotRoot(err error) error {
	if err != nil {
		return err
	}
	return os.ErrPermission
}
