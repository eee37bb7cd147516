package controllers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// Bad input is refused by the API server itself (schema and CEL rules), with a message that says
// what to fix. Each case is applied as a user's manifest would be, with strict field validation as
// kubectl uses by default.
func TestAdmissionRefusesBadInput(t *testing.T) {
	ns := newNamespace(t)
	tests := []struct {
		name     string
		manifest string
		wantMsg  string
	}{
		{"two value sources", `
kind: ManagedSecret
spec:
  generate: {}
  fromSecret: {name: legacy}`, "set at most one value source: either generate or fromSecret, not both"},
		{"reserved tag key", `
kind: ManagedSecret
spec:
  tags: [{key: "aws:owner", value: x}]`, "tag keys starting with aws: are reserved"},
		{"tag key with bad characters", `
kind: ManagedSecret
spec:
  tags: [{key: "team!", value: x}]`, "tag keys may contain only letters, digits, spaces and _ . : / = + - @"},
		{"duplicate tag keys", `
kind: ManagedSecret
spec:
  tags: [{key: team, value: a}, {key: team, value: b}]`, "Duplicate value"},
		{"target name not a Secret name", `
kind: ManagedSecret
spec:
  target: {name: "Not_A_Name"}`, "target.name must be a valid Secret name"},
		{"service-account-token target", `
kind: ManagedSecret
spec:
  target: {type: kubernetes.io/service-account-token}`, "target.type may not be kubernetes.io/service-account-token"},
		{"password length too long", `
kind: ManagedSecret
spec:
  generate: {passwordPolicy: {passwordLength: 5000}}`, "should be less than or equal to 4096"},
		{"password length zero", `
kind: ManagedSecret
spec:
  generate: {passwordPolicy: {passwordLength: 0}}`, "should be greater than or equal to 1"},
		{"recovery window too short", `
kind: ManagedSecret
spec:
  recoveryWindowDays: 3`, "should be greater than or equal to 7"},
		{"unknown field", `
kind: ManagedSecret
spec:
  generat: {}`, `unknown field "spec.generat"`},
		{"rotation policy: both schedules", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {cron: "0 3 * * *", everyDays: 30}`, "set exactly one of schedule.cron, schedule.everyDays or schedule.expression"},
		{"rotation policy: days out of range", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {everyDays: 1001}`, "should be less than or equal to 1000"},
		{"rotation policy: bad cron", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {cron: "every day"}`, "schedule.cron must be a five-field cron expression"},
		{"rotation policy: bad window", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {everyDays: 7, window: 90m}`, "schedule.window must be a whole number of hours from 1h to 24h"},
		{"rotation policy: cron value out of range", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {cron: "61 * * * *"}`, "values in range (minute 0-59"},
		{"rotation policy: cron with a Quartz-only L", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {cron: "0 3 L * *"}`, "schedule.cron must be a five-field cron expression"},
		{"rotation policy: window over a sub-hourly cron", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {cron: "*/10 * * * *", window: 1h}`, "this cron expression runs more than once an hour"},
		{"rotation policy: window over an hourly cron", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {cron: "0 * * * *", window: 2h}`, "this cron expression runs every hour, so the window may be at most 1h"},
		{"rotation policy: window over an every-N-hours cron", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {cron: "0 */4 * * *", window: 5h}`, "the hour field */N runs every N hours"},
		{"rotation policy: bad time zone", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {cron: "0 3 * * *", timeZone: "not a zone"}`, "schedule.timeZone must be an IANA time zone name"},
		{"rotation policy: not an AWS expression", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {expression: "every 30 days"}`, "schedule.expression must be rate(...) or cron(...)"},
		{"rotation policy: AWS expression with a time zone", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {expression: "rate(30 days)", timeZone: Europe/Berlin}`, "schedule.expression is in UTC"},
		{"rotation policy: expression and cron", `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {expression: "rate(30 days)", cron: "0 3 * * *"}`, "set exactly one of schedule.cron, schedule.everyDays or schedule.expression"},
		{"rotation policy: CA bundle that is not PEM", `
kind: RotationPolicy
spec:
  strategy: postgresql-single-user
  schedule: {everyDays: 30}
  tls: {caBundle: "not a certificate"}`, "tls.caBundle must hold PEM certificates"},
		{"rotation policy: unknown strategy", `
kind: RotationPolicy
spec:
  strategy: oracle
  schedule: {everyDays: 7}`, `Unsupported value: "oracle"`},
		{"rotation policy: alternating without superuser", `
kind: RotationPolicy
spec:
  strategy: postgresql-alternating-users
  schedule: {everyDays: 7}`, "alternating-users strategies need superuserSecretRef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte("apiVersion: kube-secrets-manager.io/v1alpha1\n"+tt.manifest), &obj.Object); err != nil {
				t.Fatal(err)
			}
			obj.SetNamespace(ns)
			obj.SetName("bad")
			err := k8s.Create(context.Background(), obj, client.FieldValidation(metav1.FieldValidationStrict))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

// The same schema accepts the good shapes, including the samples shipped in config/samples.
func TestAdmissionAcceptsGoodInput(t *testing.T) {
	ns := newNamespace(t)
	for i, manifest := range []string{`
kind: ManagedSecret
spec:
  description: ok
  tags: [{key: "team name", value: "a+b@c"}]
  generate: {fields: {engine: postgres, port: "5432"}, passwordPolicy: {passwordLength: 4096, excludeCharacters: "'\"\\"}}
  target: {name: db.credentials, type: kubernetes.io/basic-auth, key: config.json}
  recoveryWindowDays: 30`, `
kind: RotationPolicy
spec:
  strategy: postgresql-alternating-users
  superuserSecretRef: {name: pg-admin}
  schedule: {cron: "0 3 * * SUN", timeZone: Europe/Berlin, window: 3h}`, `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {cron: "0 */4 * * *", window: 4h}`, `
kind: RotationPolicy
spec:
  strategy: custom
  pod: {image: "registry.example/rotate-redis:1.0"}
  schedule: {cron: "@daily", window: 24h}`, `
kind: RotationPolicy
spec:
  strategy: password
  schedule: {everyDays: 30}
  suspend: true`, `
kind: RotationPolicy
spec:
  strategy: postgresql-single-user
  schedule: {expression: "cron(0 4 ? * SUN#1 *)", window: 2h}
  tls: {caBundle: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}`,
	} {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte("apiVersion: kube-secrets-manager.io/v1alpha1\n"+manifest), &obj.Object); err != nil {
			t.Fatal(err)
		}
		obj.SetNamespace(ns)
		obj.SetName("good" + string(rune('a'+i)))
		if err := k8s.Create(context.Background(), obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
			t.Fatalf("manifest %d refused: %v", i, err)
		}
	}
	// The samples make dev applies are accepted as they are.
	samples, err := filepath.Glob(filepath.Join("..", "config", "samples", "*.yaml"))
	if err != nil || len(samples) < 3 {
		t.Fatalf("samples: %v %v", samples, err)
	}
	kinds := 0
	for _, f := range samples {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(raw), "\n---") {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			obj.SetNamespace(ns)
			if err := k8s.Create(context.Background(), obj, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
				t.Fatalf("sample %s %s refused: %v", f, obj.GetName(), err)
			}
			if obj.GetAPIVersion() == v1alpha1.GroupVersion.String() {
				kinds++
			}
		}
	}
	if kinds < 3 {
		t.Fatalf("only %d samples of this API were checked", kinds)
	}
}
