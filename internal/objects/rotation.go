package objects

import (
	"crypto/sha256"
	"encoding/hex"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
)

// Defaults of rotation pods.
const (
	DefaultAttempts       = 3
	DefaultTimeoutSeconds = 600
	RotationUID           = 65532
)

// CronJobInput is what a ManagedSecret's rotation CronJob is built from.
type CronJobInput struct {
	ManagedSecret *v1alpha1.ManagedSecret
	Policy        *v1alpha1.RotationPolicy
	// Schedule and TimeZone are what the CronJob runs (schedule.Schedule.CronJobSchedule).
	Schedule, TimeZone string
	// WindowSeconds bounds how late a missed start may still run (startingDeadlineSeconds).
	WindowSeconds int64
	Suspended     bool
	// Image runs the built-in strategies (the operator's own image).
	Image string
}

// CronJob is the rotation CronJob of a ManagedSecret: concurrencyPolicy Forbid, the window as
// the starting deadline, and a pod that honours the rotation contract with no API token,
// non-root, a read-only root filesystem and no capabilities. The policy's pod settings are used
// as they are: whether they are allowed is decided before (rotation.Allow).
func CronJob(in CronJobInput) *batchv1.CronJob {
	policy, msec := in.Policy, in.ManagedSecret
	attempts := int32(DefaultAttempts)
	if policy.Spec.Attempts != nil {
		attempts = *policy.Spec.Attempts
	}
	timeout := int64(DefaultTimeoutSeconds)
	pod := policy.Spec.Pod
	if pod != nil && pod.TimeoutSeconds != nil {
		timeout = *pod.TimeoutSeconds
	}
	labels := OwnedLabels(msec, "rotation")
	annotations := map[string]string{v1alpha1.AnnotationManagedSecretName: msec.Name}
	no, yes := false, true
	uid := int64(RotationUID)
	three := int32(3)
	backoff := attempts - 1
	mode := int32(0o440)

	image, args := in.Image, []string{"rotate", "--material", rotation.MaterialDir}
	container := corev1.Container{
		Name:            "rotate",
		ImagePullPolicy: corev1.PullIfNotPresent,
		Env: []corev1.EnvVar{{Name: rotation.EnvJobUID, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			FieldPath: "metadata.labels['batch.kubernetes.io/controller-uid']"}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "material", MountPath: rotation.MaterialDir, ReadOnly: true}},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes,
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	podSpec := corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: &no,
		EnableServiceLinks:           &no,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
			// The kubelet makes the material files group-owned by fsGroup, so mode 0440 reads.
			FSGroup:        &uid,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Volumes: []corev1.Volume{{Name: "material", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: MaterialName(msec), DefaultMode: &mode}}}},
	}
	if pod != nil {
		if pod.Image != "" {
			image = pod.Image
		}
		if pod.Resources != nil {
			container.Resources = *pod.Resources
		}
		podSpec.ServiceAccountName = pod.ServiceAccountName
		podSpec.NodeSelector = pod.NodeSelector
		podSpec.Tolerations = pod.Tolerations
		podSpec.HostNetwork = pod.HostNetwork
	}
	if policy.Spec.Strategy == v1alpha1.StrategyCustom {
		args = nil // the custom image's own entrypoint honours the same contract
	}
	container.Image, container.Args = image, args
	podSpec.Containers = []corev1.Container{container}
	tz, window, suspended := in.TimeZone, in.WindowSeconds, in.Suspended
	return &batchv1.CronJob{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{
			Name: CronJobName(msec), Namespace: msec.Namespace, Labels: labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{OwnerRef(msec)},
		},
		Spec: batchv1.CronJobSpec{
			Schedule:                   in.Schedule,
			TimeZone:                   &tz,
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			StartingDeadlineSeconds:    &window,
			Suspend:                    &suspended,
			SuccessfulJobsHistoryLimit: &three,
			FailedJobsHistoryLimit:     &three,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: batchv1.JobSpec{
					BackoffLimit:          &backoff,
					ActiveDeadlineSeconds: &timeout,
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
						Spec:       podSpec,
					},
				},
			},
		},
	}
}

// RotateNowJob is the Job a rotate-now request makes from the CronJob's template (as `kubectl
// create job --from=cronjob/...` does), controlled by that CronJob; its name is drawn from the
// request, so a retry finds the same Job.
func RotateNowJob(cj *batchv1.CronJob, request, versionID string) *batchv1.Job {
	sum := sha256.Sum256([]byte(request))
	yes := true
	annotations := map[string]string{"cronjob.kubernetes.io/instantiate": "manual"}
	for k, v := range cj.Spec.JobTemplate.Annotations {
		annotations[k] = v
	}
	if versionID != "" {
		annotations[v1alpha1.AnnotationRotateVersionID] = versionID
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: cj.Name + "-now-" + hex.EncodeToString(sum[:4]), Namespace: cj.Namespace,
			Labels:      cj.Spec.JobTemplate.Labels,
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID,
				Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
}
