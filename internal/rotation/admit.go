package rotation

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// Allow is what the operator's settings let a RotationPolicy ask for. Rotation pods are created
// with the operator's rights, so a policy's author must not be able to run anything, as anyone,
// anywhere, through them.
type Allow struct {
	// Images a policy may name in pod.image: exact references, or patterns where `*` matches
	// within one path segment (path.Match), such as registry.example.com/rotators/*. The
	// operator's own rotation image is always allowed.
	Images []string
	// ServiceAccounts a policy may name in pod.serviceAccountName: "NAME" (any namespace),
	// "NAMESPACE/NAME", or "*". The namespace's default service account is always allowed.
	ServiceAccounts []string
	// HostNetwork lets policies set pod.hostNetwork.
	HostNetwork bool
	// Scheduling lets policies set pod.nodeSelector and pod.tolerations.
	Scheduling bool
}

// Admit returns why a policy may not run under these settings, or nil. The message names the
// field and the operator flag that would allow it.
func (a Allow) Admit(namespace string, spec v1alpha1.RotationPolicySpec, ownImage string) error {
	pod := spec.Pod
	if pod == nil {
		return nil
	}
	if pod.Image != "" && pod.Image != ownImage && !a.imageAllowed(pod.Image) {
		return fmt.Errorf("pod.image %q is not in the operator's allowed rotation images (--rotation-allowed-images)", pod.Image)
	}
	if sa := pod.ServiceAccountName; sa != "" && sa != "default" && !a.serviceAccountAllowed(namespace, sa) {
		return fmt.Errorf("pod.serviceAccountName %q is not in the operator's allowed rotation service accounts (--rotation-allowed-service-accounts)", sa)
	}
	if pod.HostNetwork && !a.HostNetwork {
		return fmt.Errorf("pod.hostNetwork is not allowed by the operator (--rotation-allow-host-network)")
	}
	if (len(pod.NodeSelector) > 0 || len(pod.Tolerations) > 0) && !a.Scheduling {
		return fmt.Errorf("pod.nodeSelector and pod.tolerations are not allowed by the operator (--rotation-allow-scheduling)")
	}
	return nil
}

func (a Allow) imageAllowed(image string) bool {
	for _, p := range a.Images {
		if p == image {
			return true
		}
		if strings.Contains(p, "*") {
			if ok, err := path.Match(p, image); err == nil && ok {
				return true
			}
		}
	}
	return false
}

func (a Allow) serviceAccountAllowed(namespace, name string) bool {
	return slices.Contains(a.ServiceAccounts, "*") || slices.Contains(a.ServiceAccounts, name) ||
		slices.Contains(a.ServiceAccounts, namespace+"/"+name)
}

// SuperuserConsent reports whether the superuser ManagedSecret's annotation lets policy borrow
// its credentials: the annotation lists the RotationPolicies (in its namespace) that may.
func SuperuserConsent(annotations map[string]string, policy string) bool {
	return listed(annotations[v1alpha1.AnnotationSuperuserFor], policy)
}

func listed(list, name string) bool {
	for _, item := range strings.Split(list, ",") {
		if strings.TrimSpace(item) == name {
			return true
		}
	}
	return false
}
