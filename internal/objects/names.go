package objects

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// SecretID is a ManagedSecret's stable id: the annotation the operator sets when it first sees the
// secret, or, before it has, the UID it takes its value from. Versions are bound to it and the ARN
// is drawn from it, so both survive a restore that gives the object a new UID.
func SecretID(msec *v1alpha1.ManagedSecret) string {
	if id := msec.Annotations[v1alpha1.AnnotationSecretID]; id != "" {
		return id
	}
	return string(msec.UID)
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// ARNParts shape the ARN-like ids: partition (default "kubernetes"), region (default the cluster
// name) and account (default the secret's namespace).
type ARNParts struct {
	Partition, Region, Account string
}

// ARN is the ARN-like id in status and the AWS API: arn:<partition>:secretsmanager:<region>:
// <account>:secret:<AWS name>-<6 characters drawn from the stable id>, like AWS's random suffix:
// the same on every reconcile and new when a secret of the same name is created again.
func ARN(p ARNParts, msec *v1alpha1.ManagedSecret) string {
	sum := sha256.Sum256([]byte(SecretID(msec)))
	suffix := make([]byte, 6)
	for i := range suffix {
		suffix[i] = idAlphabet[int(sum[i])%len(idAlphabet)]
	}
	partition, account := p.In(msec.Namespace)
	return fmt.Sprintf("arn:%s:secretsmanager:%s:%s:secret:%s-%s", partition, p.Region, account, AWSName(msec), suffix)
}

// In is the partition and account of ARNs in a namespace: the ones set, or by default
// "kubernetes" and the namespace.
func (p ARNParts) In(namespace string) (partition, account string) {
	partition, account = p.Partition, p.Account
	if partition == "" {
		partition = "kubernetes"
	}
	if account == "" {
		account = namespace
	}
	return partition, account
}

// AWSName is the secret's AWS name: the one the AWS API created it with (kept in an annotation,
// since AWS names allow characters object names do not), else the object's name.
func AWSName(msec *v1alpha1.ManagedSecret) string {
	if n := msec.Annotations[v1alpha1.AnnotationAWSName]; n != "" {
		return n
	}
	return msec.Name
}

// VersionObjectName is deterministic, so creating the same version twice collides instead of
// duplicating. Version ids may hold characters a name cannot, so the name carries a digest of it.
func VersionObjectName(msecName, versionID string) string {
	sum := sha256.Sum256([]byte(versionID))
	prefix := msecName
	if len(prefix) > 240 {
		prefix = strings.TrimRight(prefix[:240], ".-")
	}
	return prefix + "-" + hex.EncodeToString(sum[:])[:12]
}

// CronJobName fits the CronJob limit of 52 characters and stays unique per ManagedSecret.
func CronJobName(msec *v1alpha1.ManagedSecret) string {
	sum := sha256.Sum256([]byte(msec.UID))
	prefix := msec.Name
	if len(prefix) > 36 {
		prefix = strings.TrimRight(prefix[:36], ".-")
	}
	return prefix + "-rot-" + hex.EncodeToString(sum[:3])
}

// MaterialName is the rotation material Secret's name.
func MaterialName(msec *v1alpha1.ManagedSecret) string { return CronJobName(msec) + "-material" }

// TargetName is the projected Secret's name.
func TargetName(msec *v1alpha1.ManagedSecret) string {
	if msec.Spec.Target != nil && msec.Spec.Target.Name != "" {
		return msec.Spec.Target.Name
	}
	return msec.Name
}

// TargetKey is the one key the whole value goes under, or "" for one key per JSON field.
func TargetKey(msec *v1alpha1.ManagedSecret) string {
	if msec.Spec.Target != nil {
		return msec.Spec.Target.Key
	}
	return ""
}

// TargetType is the projected Secret's type.
func TargetType(msec *v1alpha1.ManagedSecret) corev1.SecretType {
	if msec.Spec.Target != nil && msec.Spec.Target.Type != "" {
		return corev1.SecretType(msec.Spec.Target.Type)
	}
	return corev1.SecretTypeOpaque
}

// OwnerRef is the controller owner reference to a ManagedSecret.
func OwnerRef(msec *v1alpha1.ManagedSecret) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "ManagedSecret", Name: msec.Name, UID: msec.UID,
		Controller: &yes, BlockOwnerDeletion: &yes,
	}
}

// OwnedLabels are the labels of every object the operator writes for a ManagedSecret.
func OwnedLabels(msec *v1alpha1.ManagedSecret, role string) map[string]string {
	l := map[string]string{
		v1alpha1.LabelManagedSecretUID: string(msec.UID),
		v1alpha1.LabelManagedBy:        v1alpha1.ManagedByValue,
	}
	if role != "" {
		l[v1alpha1.LabelRole] = role
	}
	return l
}

// ControllingManagedSecret is the name of the ManagedSecret obj's controller owner reference
// names (in obj's namespace), if it names one of this API group: whom an event on obj wakes.
func ControllingManagedSecret(obj metav1.Object) (string, bool) {
	c := metav1.GetControllerOfNoCopy(obj)
	if c == nil || c.Kind != "ManagedSecret" || c.Name == "" {
		return "", false
	}
	gv, err := schema.ParseGroupVersion(c.APIVersion)
	if err != nil || gv.Group != v1alpha1.GroupVersion.Group {
		return "", false
	}
	return c.Name, true
}

// IsControlledBy reports whether obj's controller owner reference is the ManagedSecret (by UID):
// a label alone proves nothing, since anyone may set it.
func IsControlledBy(obj metav1.Object, msec *v1alpha1.ManagedSecret) bool {
	c := metav1.GetControllerOf(obj)
	return c != nil && c.UID == msec.UID
}
