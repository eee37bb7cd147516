package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotator"
)

// envtest has no CronJob controller, Job controller or kubelet; these helpers play their parts:
// make a Job from the CronJob's template, run the `rotate` command against the material the
// operator projected, and set the Job's status as the Job controller would.

func cronJobOf(t *testing.T, ns, msecName string) *batchv1.CronJob {
	t.Helper()
	var cj *batchv1.CronJob
	eventually(t, "the rotation CronJob", func() error {
		m := getMsec(t, ns, msecName)
		if m.Status.Rotation == nil || m.Status.Rotation.CronJobName == "" {
			return fmt.Errorf("no rotation status yet")
		}
		cj = &batchv1.CronJob{}
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: m.Status.Rotation.CronJobName}, cj)
	})
	return cj
}

// startJob creates a Job from the CronJob, as the CronJob controller does at a scheduled time.
func startJob(t *testing.T, cj *batchv1.CronJob, name string) *batchv1.Job {
	t.Helper()
	yes := true
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: cj.Namespace,
			Labels: cj.Spec.JobTemplate.Labels, Annotations: cj.Spec.JobTemplate.Annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: &yes}},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
	if err := k8s.Create(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	// The CronJob controller lists the Jobs it started in status.active; the operator serves only
	// those (or Jobs it made itself).
	eventually(t, "CronJob status.active lists "+name, func() error {
		fresh := &batchv1.CronJob{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cj), fresh); err != nil {
			return err
		}
		fresh.Status.Active = append(fresh.Status.Active, corev1.ObjectReference{APIVersion: "batch/v1", Kind: "Job",
			Namespace: job.Namespace, Name: job.Name, UID: job.UID, ResourceVersion: job.ResourceVersion})
		return k8s.Status().Update(context.Background(), fresh)
	})
	return job
}

// material waits until the operator has projected the rotation material for the Job, and writes
// it to a folder as the kubelet would mount it.
func material(t *testing.T, ns string, cj *batchv1.CronJob, job *batchv1.Job) (string, rotation.Request) {
	t.Helper()
	name := cj.Spec.JobTemplate.Spec.Template.Spec.Volumes[0].Secret.SecretName
	var sec *corev1.Secret
	var req rotation.Request
	eventually(t, "rotation material for "+job.Name, func() error {
		sec = &corev1.Secret{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, sec); err != nil {
			return err
		}
		if err := json.Unmarshal(sec.Data[rotation.FileRequest], &req); err != nil {
			return err
		}
		if req.JobUID != string(job.UID) {
			return fmt.Errorf("material is for Job %s", req.JobUID)
		}
		return nil
	})
	dir := t.TempDir()
	for k, v := range sec.Data {
		if err := os.WriteFile(filepath.Join(dir, k), v, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	return dir, req
}

// runPod runs the rotation pod's command for the Job and returns its exit code and output.
func runPod(t *testing.T, dir string, job *batchv1.Job) (int, string) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := rotator.Run(ctx, dir, string(job.UID), &out)
	logs.Write([]byte("pod " + job.Name + ": " + out.String()))
	return code, out.String()
}

// finishJob sets the Job's status as the Job controller does when its pod exits.
func finishJob(t *testing.T, job *batchv1.Job, succeeded bool) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "finish Job "+job.Name, func() error {
		j := &batchv1.Job{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(job), j); err != nil {
			return err
		}
		now := metav1.Now()
		start := metav1.NewTime(now.Add(-time.Second))
		j.Status.StartTime = &start
		j.Status.Active = 0
		if succeeded {
			j.Status.Succeeded = 1
			j.Status.CompletionTime = &now
			j.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: "CompletionsReached"},
				{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: "CompletionsReached"},
			}
		} else {
			j.Status.Failed = 1
			j.Status.Conditions = []batchv1.JobCondition{
				{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"},
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"},
			}
		}
		err := k8s.Status().Update(ctx, j)
		if apierrors.IsConflict(err) {
			return err
		}
		if err != nil {
			t.Fatalf("updating Job status: %v", err)
		}
		return nil
	})
}

// rotateOnce runs one whole rotation as the cluster would and returns the Job.
func rotateOnce(t *testing.T, ns, msecName, jobName string, wantExit int) *batchv1.Job {
	t.Helper()
	cj := cronJobOf(t, ns, msecName)
	job := startJob(t, cj, jobName)
	dir, _ := material(t, ns, cj, job)
	code, out := runPod(t, dir, job)
	if code != wantExit {
		t.Fatalf("rotate exited %d, want %d: %s", code, wantExit, out)
	}
	finishJob(t, job, code == 0)
	return job
}

func rotationCondition(m *v1alpha1.ManagedSecret, typ string) metav1.Condition {
	for _, c := range m.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// waitRotated waits until AWSCURRENT has moved away from previousCurrent and no rotation is
// active.
func waitRotated(t *testing.T, ns, name, previousCurrent string) *v1alpha1.ManagedSecret {
	t.Helper()
	var m *v1alpha1.ManagedSecret
	eventually(t, "rotation finished", func() error {
		if previousCurrent == "" {
			t.Fatal("waitRotated needs the version id that was current before")
		}
		m = getMsec(t, ns, name)
		if m.Status.LastRotatedTime == nil || m.Status.CurrentVersionID == previousCurrent {
			return fmt.Errorf("not rotated yet: %+v", m.Status.Conditions)
		}
		if m.Status.Rotation == nil || m.Status.Rotation.ActiveJobUID != "" || m.Status.PendingVersionID != "" {
			return fmt.Errorf("rotation still active: %+v", m.Status.Rotation)
		}
		return nil
	})
	return m
}

func projectedValue(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	sec, err := secret(t, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range sec.Data {
		out[k] = string(v)
	}
	rememberData(sec.Data)
	return out
}
