package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotator"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/testdb"
)

// Each database strategy, end to end through the operator: the CronJob's Job, the material, the
// `rotate` command against the real server, and finishSecret.

func current(t *testing.T, ns, name string) testdb.User {
	t.Helper()
	v := projectedValue(t, ns, name)
	return testdb.User{Name: v["username"], Password: v["password"]}
}

func TestPostgreSQLSingleUserRotation(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Postgres(t)
	u := testdb.PostgresUser(t, admin, "")
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pg", v1alpha1.StrategyPostgreSQLSingleUser)); err != nil {
		t.Fatal(err)
	}
	m := dbSecret(t, ns, "orders", "postgres", u, 5432, "pg")
	rotateOnce(t, ns, "orders", "rot-1", 0)
	waitRotated(t, ns, "orders", m.Status.CurrentVersionID)
	now := current(t, ns, "orders")
	if now.Name != u.Name || now.Password == u.Password || !testdb.PostgresLogin(now) || testdb.PostgresLogin(u) {
		t.Fatal("after rotation the new password must log in and the old one must not")
	}
}

func TestPostgreSQLAlternatingUsersRotation(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Postgres(t)
	su := testdb.PostgresUser(t, admin, "SUPERUSER")
	u := testdb.PostgresUser(t, admin, "")
	ns := newNamespace(t)
	dbSecret(t, ns, "pg-admin", "postgres", su, 5432, "")
	superuserFor(t, ns, "pg-admin", "alt")
	if err := k8s.Create(ctx, policy(ns, "alt", v1alpha1.StrategyPostgreSQLAlternatingUsers, func(s *v1alpha1.RotationPolicySpec) {
		s.SuperuserSecretRef = &v1alpha1.LocalObjectReference{Name: "pg-admin"}
	})); err != nil {
		t.Fatal(err)
	}
	m := dbSecret(t, ns, "orders", "postgres", u, 5432, "alt")

	rotateOnce(t, ns, "orders", "rot-1", 0)
	waitRotated(t, ns, "orders", m.Status.CurrentVersionID)
	first := current(t, ns, "orders")
	if first.Name != u.Name+"_clone" || !testdb.PostgresLogin(first) || !testdb.PostgresLogin(u) {
		t.Fatalf("after the first rotation the clone (%s) and the original must both log in", first.Name)
	}

	prevID := getMsec(t, ns, "orders").Status.CurrentVersionID
	rotateOnce(t, ns, "orders", "rot-2", 0)
	waitRotated(t, ns, "orders", prevID)
	second := current(t, ns, "orders")
	if second.Name != u.Name || second.Password == u.Password {
		t.Fatalf("the second rotation must return to %s with a new password", u.Name)
	}
	if !testdb.PostgresLogin(second) || !testdb.PostgresLogin(first) || testdb.PostgresLogin(u) {
		t.Fatal("after the second rotation: the new original and the clone (AWSPREVIOUS) log in; the original's old password does not")
	}
}

func TestMySQLSingleUserRotation(t *testing.T) {
	ctx := context.Background()
	admin := testdb.MySQL(t)
	u := testdb.MySQLUser(t, admin)
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "my", v1alpha1.StrategyMySQLSingleUser)); err != nil {
		t.Fatal(err)
	}
	m := dbSecret(t, ns, "shop", "mysql", u, 3306, "my")
	rotateOnce(t, ns, "shop", "rot-1", 0)
	waitRotated(t, ns, "shop", m.Status.CurrentVersionID)
	now := current(t, ns, "shop")
	if now.Name != u.Name || !testdb.MySQLLogin(now) || testdb.MySQLLogin(u) {
		t.Fatal("after rotation the new password must log in and the old one must not")
	}
}

func TestMySQLAlternatingUsersRotation(t *testing.T) {
	ctx := context.Background()
	admin := testdb.MySQL(t)
	su := testdb.MySQLUser(t, admin, "GRANT ALL PRIVILEGES ON *.*")
	if _, err := admin.Exec("GRANT ALL PRIVILEGES ON *.* TO ?@'%' WITH GRANT OPTION", su.Name); err != nil {
		t.Fatal(err)
	}
	u := testdb.MySQLUser(t, admin)
	ns := newNamespace(t)
	dbSecret(t, ns, "my-admin", "mysql", su, 3306, "")
	superuserFor(t, ns, "my-admin", "alt")
	if err := k8s.Create(ctx, policy(ns, "alt", v1alpha1.StrategyMySQLAlternatingUsers, func(s *v1alpha1.RotationPolicySpec) {
		s.SuperuserSecretRef = &v1alpha1.LocalObjectReference{Name: "my-admin"}
	})); err != nil {
		t.Fatal(err)
	}
	m := dbSecret(t, ns, "shop", "mysql", u, 3306, "alt")
	rotateOnce(t, ns, "shop", "rot-1", 0)
	waitRotated(t, ns, "shop", m.Status.CurrentVersionID)
	first := current(t, ns, "shop")
	if first.Name != u.Name+"_clone" || !testdb.MySQLLogin(first) || !testdb.MySQLLogin(u) {
		t.Fatal("after the first rotation the clone and the original must both log in")
	}
	prevID := getMsec(t, ns, "shop").Status.CurrentVersionID
	rotateOnce(t, ns, "shop", "rot-2", 0)
	waitRotated(t, ns, "shop", prevID)
	second := current(t, ns, "shop")
	if second.Name != u.Name || !testdb.MySQLLogin(second) || !testdb.MySQLLogin(first) || testdb.MySQLLogin(u) {
		t.Fatal("after the second rotation: the new original and the clone log in; the original's old password does not")
	}
}

// A failure (the superuser's password no longer works) leaves AWSCURRENT and the projected Secret
// alone and keeps AWSPENDING; once the cause is fixed, the next Job completes the same version.
func TestFailedRotationKeepsCurrentAndRecovers(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Postgres(t)
	su := testdb.PostgresUser(t, admin, "SUPERUSER")
	u := testdb.PostgresUser(t, admin, "")
	ns := newNamespace(t)
	dbSecret(t, ns, "pg-admin", "postgres", su, 5432, "")
	superuserFor(t, ns, "pg-admin", "alt")
	if err := k8s.Create(ctx, policy(ns, "alt", v1alpha1.StrategyPostgreSQLAlternatingUsers, func(s *v1alpha1.RotationPolicySpec) {
		s.SuperuserSecretRef = &v1alpha1.LocalObjectReference{Name: "pg-admin"}
	})); err != nil {
		t.Fatal(err)
	}
	m := dbSecret(t, ns, "orders", "postgres", u, 5432, "alt")
	before := projectedValue(t, ns, "orders")

	// Break the superuser's login.
	testdb.PostgresExec(t, admin, "ALTER ROLE %I WITH PASSWORD %L", su.Name, "changed-behind-our-back")
	cj := cronJobOf(t, ns, "orders")
	job := startJob(t, cj, "rot-fails")
	dir, req := material(t, ns, cj, job)
	code, out := runPod(t, dir, job)
	if code != rotator.ExitStepFailed || !strings.Contains(out, "superuser") || strings.Contains(out, su.Password) {
		t.Fatalf("rotate exited %d: %s", code, out)
	}
	finishJob(t, job, false)
	eventually(t, "RotationFailed", func() error {
		got := getMsec(t, ns, "orders")
		c := rotationCondition(got, v1alpha1.ConditionRotationFailed)
		if c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonJobFailed || got.Status.Rotation.ActiveJobUID != "" {
			return fmt.Errorf("%+v", c)
		}
		if got.Status.CurrentVersionID != m.Status.CurrentVersionID || got.Status.PendingVersionID != req.ClientRequestToken {
			return fmt.Errorf("labels moved: %+v", got.Status)
		}
		return nil
	})
	if got := projectedValue(t, ns, "orders"); got["password"] != before["password"] {
		t.Fatal("the projected Secret changed after a failed rotation")
	}
	eventually(t, "an Event for the failure", func() error {
		if !hasEvent(t, ns, v1alpha1.ReasonJobFailed) {
			return fmt.Errorf("none yet (Events are written asynchronously)")
		}
		return nil
	})

	// Fix the cause; the next attempt reuses the same pending version and succeeds.
	testdb.PostgresExec(t, admin, "ALTER ROLE %I WITH PASSWORD %L", su.Name, su.Password)
	job2 := startJob(t, cj, "rot-retry")
	dir2, req2 := material(t, ns, cj, job2)
	if req2.ClientRequestToken != req.ClientRequestToken {
		t.Fatalf("the retry made a new pending version %s instead of reusing %s", req2.ClientRequestToken, req.ClientRequestToken)
	}
	if code, out := runPod(t, dir2, job2); code != 0 {
		t.Fatalf("retry: %d %s", code, out)
	}
	finishJob(t, job2, true)
	after := waitRotated(t, ns, "orders", m.Status.CurrentVersionID)
	if after.Status.CurrentVersionID != req.ClientRequestToken || len(versions(t, ns)) != 2+1 { // two in "orders" + one superuser
		t.Fatalf("current %s, %d versions", after.Status.CurrentVersionID, len(versions(t, ns)))
	}
	if !testdb.PostgresLogin(current(t, ns, "orders")) {
		t.Fatal("the rotated credentials do not log in")
	}
}

// A Job that dies after setSecret and before finishSecret: the database already has the pending
// password while AWSCURRENT still names the old one. The next attempt finishes, and the database
// and the projected Secret end on the same password.
func TestCrashAfterSetSecretIsFinishedByTheNextAttempt(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Postgres(t)
	u := testdb.PostgresUser(t, admin, "")
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pg", v1alpha1.StrategyPostgreSQLSingleUser)); err != nil {
		t.Fatal(err)
	}
	m := dbSecret(t, ns, "orders", "postgres", u, 5432, "pg")
	cj := cronJobOf(t, ns, "orders")
	job := startJob(t, cj, "rot-dies")
	dir, req := material(t, ns, cj, job)
	if code, out := runPod(t, dir, job); code != 0 {
		t.Fatalf("rotate: %d %s", code, out)
	}
	// The pod is killed before it reports success (the node died): the Job fails.
	finishJob(t, job, false)
	eventually(t, "RotationFailed", func() error {
		if c := rotationCondition(getMsec(t, ns, "orders"), v1alpha1.ConditionRotationFailed); c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	if testdb.PostgresLogin(current(t, ns, "orders")) {
		t.Fatal("setup: the database should already have the pending password")
	}
	job2 := startJob(t, cj, "rot-next")
	dir2, req2 := material(t, ns, cj, job2)
	if req2.ClientRequestToken != req.ClientRequestToken {
		t.Fatal("the next attempt must reuse the pending version")
	}
	code, out := runPod(t, dir2, job2)
	if code != 0 {
		t.Fatalf("rotate: %d %s", code, out)
	}
	finishJob(t, job2, true)
	waitRotated(t, ns, "orders", m.Status.CurrentVersionID)
	if !testdb.PostgresLogin(current(t, ns, "orders")) {
		t.Fatal("the database and the projected Secret disagree")
	}
}

// Two Jobs for the same ManagedSecret at once (a scheduled run and `kubectl create job --from`):
// exactly one rotation completes and one version is made.
func TestConcurrentJobsMakeOneRotation(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Postgres(t)
	u := testdb.PostgresUser(t, admin, "")
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pg", v1alpha1.StrategyPostgreSQLSingleUser)); err != nil {
		t.Fatal(err)
	}
	m := dbSecret(t, ns, "orders", "postgres", u, 5432, "pg")
	cj := cronJobOf(t, ns, "orders")
	a := startJob(t, cj, "rot-a")
	b := startJob(t, cj, "rot-b")
	var active, other *batchv1.Job
	eventually(t, "one Job chosen", func() error {
		got := getMsec(t, ns, "orders")
		if got.Status.Rotation == nil || got.Status.Rotation.ActiveJobUID == "" {
			return fmt.Errorf("no active Job")
		}
		active, other = a, b
		if got.Status.Rotation.ActiveJobUID == string(b.UID) {
			active, other = b, a
		}
		return nil
	})
	dir, _ := material(t, ns, cj, active)
	// The other Job's pod, if it ran, refuses material that is not its own.
	if code, _ := runPod(t, dir, other); code != rotator.ExitWrongJob {
		t.Fatalf("the other Job's pod exited %d, want %d", code, rotator.ExitWrongJob)
	}
	eventually(t, "the other Job deleted", func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(other), &batchv1.Job{})
		if err == nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
	if code, out := runPod(t, dir, active); code != 0 {
		t.Fatalf("rotate: %d %s", code, out)
	}
	finishJob(t, active, true)
	waitRotated(t, ns, "orders", m.Status.CurrentVersionID)
	if n := len(versions(t, ns)); n != 2 {
		t.Fatalf("%d versions, want 2 (one rotation)", n)
	}
	if !testdb.PostgresLogin(current(t, ns, "orders")) {
		t.Fatal("the rotated credentials do not log in")
	}
}

// Rotate now: an annotation (what an Argo CD resource action sets) creates a Job from the
// CronJob's template, and the status records the request it handled.
func TestRotateNowAnnotation(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	if err := k8s.Create(ctx, policy(ns, "pw", v1alpha1.StrategyPassword)); err != nil {
		t.Fatal(err)
	}
	m := rotated(ns, "app", "pw")
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	cj := cronJobOf(t, ns, "app")
	m = waitReady(t, ns, "app", metav1.ConditionTrue, v1alpha1.ReasonReady)
	patch := client.MergeFrom(m.DeepCopy())
	m.Annotations = map[string]string{v1alpha1.AnnotationRotateRequestedAt: "2026-11-29T12:00:00Z"}
	if err := k8s.Patch(ctx, m, patch); err != nil {
		t.Fatal(err)
	}
	var job *batchv1.Job
	eventually(t, "a Job from the CronJob", func() error {
		jobs := &batchv1.JobList{}
		if err := k8s.List(ctx, jobs, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(jobs.Items) != 1 {
			return fmt.Errorf("%d Jobs", len(jobs.Items))
		}
		job = &jobs.Items[0]
		got := getMsec(t, ns, "app")
		if got.Status.Rotation.LastHandledRequest != "2026-11-29T12:00:00Z" {
			return fmt.Errorf("handled %q", got.Status.Rotation.LastHandledRequest)
		}
		return nil
	})
	if c := metav1.GetControllerOf(job); c == nil || c.UID != cj.UID || job.Annotations["cronjob.kubernetes.io/instantiate"] != "manual" {
		t.Fatalf("the Job is not made from the CronJob: %+v", job.OwnerReferences)
	}
	dir, _ := material(t, ns, cj, job)
	if code, out := runPod(t, dir, job); code != 0 {
		t.Fatalf("rotate: %d %s", code, out)
	}
	finishJob(t, job, true)
	waitRotated(t, ns, "app", m.Status.CurrentVersionID)
}

func hasEvent(t *testing.T, ns, reason string) bool {
	t.Helper()
	for _, e := range eventsFor(t, ns) {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

// ssl: true through the operator: the policy's CA bundle reaches the rotation pod, which verifies
// the server's certificate and host name (verify-full); without the bundle the pod refuses to send
// the credentials and the rotation fails, leaving AWSCURRENT as it was.
func TestTLSRotationVerifiesTheServer(t *testing.T) {
	ctx := context.Background()
	server := testdb.TLSPostgres(t)
	ns := newNamespace(t)
	withCA := policy(ns, "pg-tls", v1alpha1.StrategyPostgreSQLSingleUser, func(s *v1alpha1.RotationPolicySpec) {
		s.TLS = &v1alpha1.RotationTLS{CABundle: string(server.CA)}
	})
	withoutCA := policy(ns, "pg-no-ca", v1alpha1.StrategyPostgreSQLSingleUser)
	for _, p := range []*v1alpha1.RotationPolicy{withCA, withoutCA} {
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	tlsSecret := func(name, policyName string, u testdb.User) *v1alpha1.ManagedSecret {
		src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-import", Annotations: importConsent(name)}, StringData: map[string]string{
			"engine": "postgres", "host": server.Host, "port": fmt.Sprint(server.Port), "username": u.Name, "password": u.Password, "dbname": "postgres", "ssl": "true"}}
		if err := k8s.Create(ctx, src); err != nil {
			t.Fatal(err)
		}
		m := &v1alpha1.ManagedSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ManagedSecretSpec{
			FromSecret: &v1alpha1.LocalObjectReference{Name: src.Name}, Rotation: &v1alpha1.RotationSpec{PolicyRef: v1alpha1.LocalObjectReference{Name: policyName}}}}
		return createReady(t, m)
	}
	u := server.User(t, "")
	m := tlsSecret("verified", "pg-tls", u)
	rotateOnce(t, ns, "verified", "rot-verified", 0)
	waitRotated(t, ns, "verified", m.Status.CurrentVersionID)
	now := current(t, ns, "verified")
	if now.Password == u.Password || server.Login(now) != nil || server.Login(u) == nil {
		t.Fatal("after a verified TLS rotation the new password must log in and the old one must not")
	}

	other := server.User(t, "")
	unverified := tlsSecret("unverified", "pg-no-ca", other)
	rotateOnce(t, ns, "unverified", "rot-unverified", 1)
	eventually(t, "the unverifiable rotation fails", func() error {
		c := rotationCondition(getMsec(t, ns, "unverified"), v1alpha1.ConditionRotationFailed)
		if c.Status != metav1.ConditionTrue {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	if server.Login(other) != nil || getMsec(t, ns, "unverified").Status.CurrentVersionID != unverified.Status.CurrentVersionID {
		t.Fatal("a rotation that could not verify the server changed the password")
	}
}
