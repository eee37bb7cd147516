package rotation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

func TestAdmit(t *testing.T) {
	const own = "ghcr.io/ksm/kube-secrets-manager:1.0"
	allow := Allow{Images: []string{"registry.example/rotators/*", "docker.io/acme/rotate:2"}, ServiceAccounts: []string{"rotator", "team-a/special"}}
	pod := func(p v1alpha1.RotationPodSpec) v1alpha1.RotationPolicySpec {
		return v1alpha1.RotationPolicySpec{Pod: &p}
	}
	tests := []struct {
		name    string
		allow   Allow
		spec    v1alpha1.RotationPolicySpec
		refused string
	}{
		{"no pod settings", Allow{}, v1alpha1.RotationPolicySpec{}, ""},
		{"the operator's own image", Allow{}, pod(v1alpha1.RotationPodSpec{Image: own}), ""},
		{"an image matching a pattern", allow, pod(v1alpha1.RotationPodSpec{Image: "registry.example/rotators/pg:1.0"}), ""},
		{"a pattern does not cross a path segment", allow, pod(v1alpha1.RotationPodSpec{Image: "registry.example/rotators/x/y:1"}), "pod.image"},
		{"an exact image", allow, pod(v1alpha1.RotationPodSpec{Image: "docker.io/acme/rotate:2"}), ""},
		{"another tag of an exact image", allow, pod(v1alpha1.RotationPodSpec{Image: "docker.io/acme/rotate:3"}), "pod.image"},
		{"any image by default", Allow{}, pod(v1alpha1.RotationPodSpec{Image: "docker.io/evil/miner"}), "--rotation-allowed-images"},
		{"the default service account", Allow{}, pod(v1alpha1.RotationPodSpec{ServiceAccountName: "default"}), ""},
		{"another service account by default", Allow{}, pod(v1alpha1.RotationPodSpec{ServiceAccountName: "admin"}), "--rotation-allowed-service-accounts"},
		{"a listed service account", allow, pod(v1alpha1.RotationPodSpec{ServiceAccountName: "rotator"}), ""},
		{"a namespaced entry in its namespace", allow, pod(v1alpha1.RotationPodSpec{ServiceAccountName: "special"}), ""},
		{"any service account with *", Allow{ServiceAccounts: []string{"*"}}, pod(v1alpha1.RotationPodSpec{ServiceAccountName: "x"}), ""},
		{"host network by default", Allow{}, pod(v1alpha1.RotationPodSpec{HostNetwork: true}), "--rotation-allow-host-network"},
		{"host network allowed", Allow{HostNetwork: true}, pod(v1alpha1.RotationPodSpec{HostNetwork: true}), ""},
		{"node selector by default", Allow{}, pod(v1alpha1.RotationPodSpec{NodeSelector: map[string]string{"a": "b"}}), "--rotation-allow-scheduling"},
		{"tolerations by default", Allow{}, pod(v1alpha1.RotationPodSpec{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}), "--rotation-allow-scheduling"},
		{"scheduling allowed", Allow{Scheduling: true}, pod(v1alpha1.RotationPodSpec{NodeSelector: map[string]string{"a": "b"}}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.allow.Admit("team-a", tt.spec, own)
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Fatalf("err = %v, want one naming %q", err, tt.refused)
			}
		})
	}
	if (Allow{ServiceAccounts: []string{"team-a/special"}}).Admit("team-b", pod(v1alpha1.RotationPodSpec{ServiceAccountName: "special"}), own) == nil {
		t.Fatal("a namespaced entry allowed its name in another namespace")
	}
}

func TestSuperuserConsent(t *testing.T) {
	ann := map[string]string{v1alpha1.AnnotationSuperuserFor: "alt, other"}
	if !SuperuserConsent(ann, "alt") || !SuperuserConsent(ann, "other") || SuperuserConsent(ann, "al") || SuperuserConsent(nil, "alt") {
		t.Fatal("consent is read wrongly")
	}
}
