package objects

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// ControlPrefixes are label and annotation prefixes that other controllers act on. A projected
// Secret carrying them could be exported by a replication add-on, adopted by a GitOps tool or
// treated as a system Secret, so target.labels and target.annotations may not use them unless the
// operator's settings allow it. app.kubernetes.io/ (the recommended labels) is not among them.
var ControlPrefixes = []string{
	"kubernetes.io/", ".kubernetes.io/", "k8s.io/", ".k8s.io/",
	"kube-secrets-manager.io/", ".kube-secrets-manager.io/",
	"argocd.argoproj.io/", ".argoproj.io/",
	"fluxcd.io/", ".fluxcd.io/", "meta.helm.sh/",
	"replicator.v1.mittwald.de/", "reflector.v1.k8s.emberstack.com/", "kubed.appscode.com/",
	".external-secrets.io/", "external-secrets.io/",
}

// alwaysAllowed are prefixes inside ControlPrefixes that carry no control meaning.
var alwaysAllowed = []string{"app.kubernetes.io/"}

// CheckTargetMetadata refuses target labels and annotations under a control prefix that allowed
// does not list. The message names the first offending key of each map.
func CheckTargetMetadata(labels, annotations map[string]string, allowed []string) error {
	for _, m := range []struct {
		what string
		keys map[string]string
	}{{"target.labels", labels}, {"target.annotations", annotations}} {
		keys := make([]string, 0, len(m.keys))
		for k := range m.keys {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if controlled(k, allowed) {
				return fmt.Errorf("%s: %q is under a prefix other controllers act on (Kubernetes, GitOps and replication add-ons); the operator refuses it unless --allow-target-metadata-prefixes lists it", m.what, k)
			}
		}
	}
	return nil
}

func controlled(key string, allowed []string) bool {
	prefix, _, found := strings.Cut(key, "/")
	if !found {
		return false
	}
	prefix += "/"
	for _, p := range append(append([]string(nil), alwaysAllowed...), allowed...) {
		if matchPrefix(prefix, p) {
			return false
		}
	}
	for _, p := range ControlPrefixes {
		if matchPrefix(prefix, p) {
			return true
		}
	}
	return false
}

// matchPrefix matches a key's prefix ("a.b.example.io/") against a rule: "x.io/" matches exactly,
// ".x.io/" matches any subdomain of x.io.
func matchPrefix(prefix, rule string) bool {
	if strings.HasPrefix(rule, ".") {
		return strings.HasSuffix(prefix, rule)
	}
	return prefix == rule
}

// ImportAllowed reports whether a Secret's annotations consent to being imported by the named
// ManagedSecret (v1alpha1.AnnotationImportAllowedFor lists the ManagedSecrets that may).
func ImportAllowed(annotations map[string]string, managedSecret string) bool {
	for _, item := range strings.Split(annotations[v1alpha1.AnnotationImportAllowedFor], ",") {
		if strings.TrimSpace(item) == managedSecret {
			return true
		}
	}
	return false
}
