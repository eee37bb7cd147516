package chart

import (
	"encoding/json"
	"strings"
	"testing"
)

// With metrics.secure (the default) the operator serves HTTPS behind TokenReview and
// SubjectAccessReview, and may create both; with it off, it does neither.
func TestMetricsSecureArgsAndRights(t *testing.T) {
	for _, tc := range []struct {
		name   string
		set    []string
		secure bool
	}{
		{"default", nil, true},
		{"secure off", []string{"metrics.secure=false"}, false},
		{"metrics off", []string{"metrics.enabled=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.set...)
			deployments := byKind(objs, "Deployment")
			if len(deployments) != 1 {
				t.Fatalf("%d Deployments", len(deployments))
			}
			hasArg := strings.Contains(mustJSON(t, deployments[0]), `"--metrics-secure"`)
			if hasArg != tc.secure {
				t.Errorf("--metrics-secure present %v, want %v", hasArg, tc.secure)
			}
			var role object
			for _, o := range byKind(objs, "ClusterRole") {
				if strings.Contains(o.name(), "-metrics-auth-") {
					role = o
				}
			}
			if (role != nil) != tc.secure {
				t.Fatalf("metrics-auth ClusterRole present %v, want %v", role != nil, tc.secure)
			}
			if role == nil {
				return
			}
			rules := mustJSON(t, role["rules"])
			for _, want := range []string{`"tokenreviews"`, `"subjectaccessreviews"`} {
				if !strings.Contains(rules, want) {
					t.Errorf("metrics-auth rules lack %s: %s", want, rules)
				}
			}
			if strings.Contains(rules, `"get"`) || strings.Contains(rules, `"list"`) {
				t.Errorf("metrics-auth may only create reviews: %s", rules)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
