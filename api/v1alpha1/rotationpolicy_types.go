package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Rotation strategies.
const (
	StrategyPassword                   = "password"
	StrategyPostgreSQLSingleUser       = "postgresql-single-user"
	StrategyPostgreSQLAlternatingUsers = "postgresql-alternating-users"
	StrategyMySQLSingleUser            = "mysql-single-user"
	StrategyMySQLAlternatingUsers      = "mysql-alternating-users"
	StrategyCustom                     = "custom"
)

// RotationPolicySpec says when and how the ManagedSecrets that reference it are rotated.
// +kubebuilder:validation:XValidation:rule="!(self.strategy in ['postgresql-alternating-users', 'mysql-alternating-users']) || has(self.superuserSecretRef)",message="alternating-users strategies need superuserSecretRef: the ManagedSecret whose credentials create the clone user"
// +kubebuilder:validation:XValidation:rule="self.strategy != 'custom' || (has(self.pod) && has(self.pod.image))",message="the custom strategy needs pod.image: the image that performs setSecret and testSecret"
type RotationPolicySpec struct {
	// schedule of the rotations.
	// +required
	Schedule RotationSchedule `json:"schedule"`

	// strategy is how the new value is put into effect: password, postgresql-single-user,
	// postgresql-alternating-users, mysql-single-user, mysql-alternating-users or custom.
	// +required
	// +kubebuilder:validation:Enum=password;postgresql-single-user;postgresql-alternating-users;mysql-single-user;mysql-alternating-users;custom
	Strategy string `json:"strategy"`

	// passwordPolicy for the new passwords (GetRandomPassword's parameters and defaults).
	// +optional
	PasswordPolicy *PasswordPolicy `json:"passwordPolicy,omitempty"`

	// superuserSecretRef names the ManagedSecret whose credentials the alternating-users strategies
	// use to create and alter the clone user.
	// +optional
	SuperuserSecretRef *LocalObjectReference `json:"superuserSecretRef,omitempty"`

	// pod settings for the rotation Jobs. What a policy may ask for (image, service account,
	// host network, node selection) is bounded by the operator's settings.
	// +optional
	Pod *RotationPodSpec `json:"pod,omitempty"`

	// tls configures how rotation pods verify the database's certificate.
	// +optional
	TLS *RotationTLS `json:"tls,omitempty"`

	// attempts is how many times a rotation Job's pod may be tried, 1-10 (default 3).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Attempts *int32 `json:"attempts,omitempty"`

	// suspend stops new rotations without deleting anything.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`

	// maxAgeDays is the oldest a secret's current value may be, in days (1-3650): older, its
	// Stale condition is True (and the kube_secrets_manager_secret_stale metric 1), whatever the
	// reason the rotations did not happen.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3650
	MaxAgeDays *int32 `json:"maxAgeDays,omitempty"`
}

// RotationSchedule is AWS's RotationRules: a cron expression or every N days, a time zone and a
// window.
// +kubebuilder:validation:XValidation:rule="(has(self.cron) ? 1 : 0) + (has(self.everyDays) ? 1 : 0) + (has(self.expression) ? 1 : 0) == 1",message="set exactly one of schedule.cron, schedule.everyDays or schedule.expression"
// +kubebuilder:validation:XValidation:rule="!has(self.expression) || !has(self.timeZone)",message="schedule.expression is in UTC, as in AWS; drop schedule.timeZone, or use schedule.cron with a time zone"
// +kubebuilder:validation:XValidation:rule="!has(self.cron) || !has(self.window) || self.cron.trim().startsWith('@') || self.cron.trim().matches('^[0-9]+\\\\s')",message="schedule.window is longer than the interval: this cron expression runs more than once an hour, and a window is at least 1h; drop the window or rotate at most hourly"
// +kubebuilder:validation:XValidation:rule="!has(self.cron) || !has(self.window) || self.window == '1h' || !self.cron.trim().matches('^\\\\S+\\\\s+\\\\*\\\\s')",message="schedule.window is longer than the interval: this cron expression runs every hour, so the window may be at most 1h"
// +kubebuilder:validation:XValidation:rule="!has(self.cron) || !has(self.window) || !self.cron.trim().matches('^[0-9]+\\\\s+\\\\*/[0-9]+\\\\s') || int(self.window.substring(0, size(self.window) - 1)) <= int(self.cron.trim().find('\\\\*/[0-9]+').substring(2))",message="schedule.window is longer than the interval: the hour field */N runs every N hours, so the window may be at most Nh"
type RotationSchedule struct {
	// cron is a five-field cron expression (minute hour day-of-month month day-of-week) or a
	// descriptor such as @daily, read as the CronJob controller reads it.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$') || self.matches('(?i)^[ ]*([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]+)?(,([*]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[0-9]+)?)*[ ]+([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]+)?(,([*]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]+)?)*[ ]+([?]|([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]+)?(,([*]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]+)?)*)[ ]+([*]|(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)(-(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))?)(/[0-9]+)?(,([*]|(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)(-(0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))?)(/[0-9]+)?)*[ ]+([?]|([*]|([0-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(-([0-7]|SUN|MON|TUE|WED|THU|FRI|SAT))?)(/[0-9]+)?(,([*]|([0-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(-([0-7]|SUN|MON|TUE|WED|THU|FRI|SAT))?)(/[0-9]+)?)*)[ ]*$')",message="schedule.cron must be a five-field cron expression with values in range (minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 0-7 or SUN-SAT; *, ranges, lists and steps), for example '0 3 * * 0', or one of @yearly, @monthly, @weekly, @daily, @hourly"
	Cron string `json:"cron,omitempty"`

	// everyDays rotates every N days, 1-1000, counted from the last rotation (AWS's
	// AutomaticallyAfterDays and rate(N days)).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	EveryDays *int32 `json:"everyDays,omitempty"`

	// expression is AWS's ScheduleExpression, copied unchanged from an AWS rotation rule:
	// rate(N days), rate(N hours) (4-23) or cron(Minutes Hours Day-of-month Month Day-of-week
	// Year) with AWS's rules (minutes 0, day-of-week 1-7 = SUN-SAT, L, #, ?, year *), in UTC.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^\\\\s*(rate|cron)\\\\(.*\\\\)\\\\s*$')",message="schedule.expression must be rate(...) or cron(...), as in AWS, for example rate(30 days) or cron(0 4 ? * SUN *)"
	Expression string `json:"expression,omitempty"`

	// timeZone is an IANA time zone name for the cron expression (default UTC).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z][A-Za-z0-9_+\\\\-]*(/[A-Za-z0-9_+\\\\-]+)*$')",message="schedule.timeZone must be an IANA time zone name such as Europe/Berlin or UTC"
	TimeZone string `json:"timeZone,omitempty"`

	// window is how long after the scheduled time a rotation may still start, like AWS's Duration:
	// 1h to 24h.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([1-9]|1[0-9]|2[0-4])h$')",message="schedule.window must be a whole number of hours from 1h to 24h, such as 3h"
	Window string `json:"window,omitempty"`
}

// RotationPodSpec holds settings for rotation pods.
type RotationPodSpec struct {
	// image that runs the rotation (default: the operator's own image).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image,omitempty"`
	// resources of the rotation container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// serviceAccountName for the rotation pod (its token is never mounted).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// nodeSelector for the rotation pod.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// tolerations for the rotation pod.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// hostNetwork runs the rotation pod in the node's network, for databases only the node
	// reaches (such as one on the node's loopback address).
	// +optional
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// timeoutSeconds bounds one rotation Job (its activeDeadlineSeconds), 10-86400 (default 600).
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=86400
	TimeoutSeconds *int64 `json:"timeoutSeconds,omitempty"`
}

// RotationTLS configures certificate verification for database strategies.
type RotationTLS struct {
	// caBundle is a PEM bundle of CA certificates that verify the database server's certificate.
	// With "ssl": true in the secret's value the rotation pod requires TLS and verifies the
	// certificate and host name against it (verify-full); the operator's image has no system CA
	// roots, so ssl: true needs this bundle there.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	// +kubebuilder:validation:XValidation:rule="self.contains('-----BEGIN CERTIFICATE-----')",message="tls.caBundle must hold PEM certificates (-----BEGIN CERTIFICATE-----)"
	CABundle string `json:"caBundle,omitempty"`
}

// RotationPolicyStatus is the observed state of a RotationPolicy.
type RotationPolicyStatus struct {
	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// RotationPolicy says when and how ManagedSecrets are rotated; many ManagedSecrets may share one.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rotpol,categories=secretsmanager
// +kubebuilder:printcolumn:name="Strategy",type=string,JSONPath=`.spec.strategy`
// +kubebuilder:printcolumn:name="Cron",type=string,JSONPath=`.spec.schedule.cron`
// +kubebuilder:printcolumn:name="Days",type=integer,JSONPath=`.spec.schedule.everyDays`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RotationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec RotationPolicySpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status RotationPolicyStatus `json:"status,omitempty"`
}

// RotationPolicyList is a list of RotationPolicies.
// +kubebuilder:object:root=true
type RotationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RotationPolicy `json:"items"`
}

func init() {
	register(&RotationPolicy{}, &RotationPolicyList{})
}
