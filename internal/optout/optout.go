// Package optout is how a test that needs something outside the process (a database server, the
// helm or aws binary, a real cluster) reacts when it is missing: it fails, unless the person running
// the tests opted out of exactly that dependency with KSM_SKIP (a comma-separated list of names, for
// example KSM_SKIP=databases,helm). A skip is never the default and always says what was skipped.
package optout

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Names tests may be opted out of.
const (
	Databases    = "databases"     // the PostgreSQL and MariaDB servers on 127.0.0.1
	TLSDatabases = "tls-databases" // TLS-enabled PostgreSQL and MariaDB servers the tests start
	Helm         = "helm"          // bin/helm
	Unshare      = "unshare"       // a private mount namespace (root), to hide host time-zone data
	AWSCLI       = "awscli"        // the AWS CLI v2 (aws; Debian's awscli), run against the API
)

// Env is the variable that lists opted-out dependencies.
const Env = "KSM_SKIP"

// Wanted reports whether name was not opted out.
func Wanted(name string) bool {
	return !slices.Contains(strings.Split(os.Getenv(Env), ","), name)
}

// Need fails the test when err is not nil, or skips it when name is opted out. The skip message
// names the opt-out, so a skipped run never looks like a passing one.
func Need(t testing.TB, name, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if !Wanted(name) {
		t.Skipf("SKIPPED (%s=%s): %s is not available: %v", Env, name, what, err)
	}
	t.Fatalf("%s is not available: %v (to skip these tests on purpose, set %s=%s)", what, err, Env, name)
}
