// Package cli is the `kubectl secrets-manager` plugin: AWS Secrets Manager's operations on
// ManagedSecrets, through the user's kubeconfig and Kubernetes RBAC. Values are read from a file
// or stdin and never from the command line, and never travel in a custom resource: they go
// through short-lived request Secrets the operator answers (see internal/request).
package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
)

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// PluginName is the executable name kubectl looks for.
const PluginName = "kubectl-secrets_manager"

const usage = `kubectl secrets-manager: AWS Secrets Manager's operations on ManagedSecrets.

Usage: kubectl secrets-manager COMMAND NAME [flags]

Commands:
  put NAME -f FILE|-            put a new value (becomes AWSCURRENT unless --stages says otherwise)
      [--client-request-token T] [--stages L1,L2]
  get NAME [--version-id ID | --stage LABEL] [-o FILE]
                                print a value (or write it to FILE, mode 0600)
  describe NAME                 the secret, its versions and stages, rotation and dates (JSON)
  versions NAME [--include-deprecated]
                                list versions and their stages (JSON)
  update-stage NAME --stage LABEL [--move-to-version-id ID] [--remove-from-version-id ID]
                                move, attach or remove a staging label
  rollback NAME                 move AWSCURRENT back to the AWSPREVIOUS version
  rotate NAME                   rotate now (and turn rotation back on after cancel-rotation)
  cancel-rotation NAME          turn scheduled rotation off and cancel a rotation in progress
  delete NAME [--recovery-window-in-days 7-30 | --force-delete-without-recovery]
                                mark for deletion after a recovery window (default 30 days)
  restore NAME                  cancel a scheduled deletion

Global flags (before or after the command): --kubeconfig PATH, --context NAME,
-n/--namespace NS, --timeout DURATION (default 30s).
`

type options struct {
	kubeconfig, context, namespace string
	timeout                        time.Duration
}

type runner struct {
	c   client.Client
	ns  string
	io  IO
	opt options
}

// Main runs the plugin with os.Args-style arguments (without the program name) and returns the
// exit code: 0, 1 for a failed operation, 2 for a usage error.
func Main(ctx context.Context, args []string, stdio IO) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdio.Out, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	err := dispatch(ctx, cmd, rest, stdio)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stdio.Err, "error: %s\nRun 'kubectl secrets-manager --help' for usage.\n", ue.msg)
		return 2
	default:
		fmt.Fprintf(stdio.Err, "error: %s\n", oneLine(err.Error()))
		return 1
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func dispatch(ctx context.Context, cmd string, args []string, stdio IO) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o options
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig")
	fs.StringVar(&o.context, "context", "", "kubeconfig context")
	fs.StringVar(&o.namespace, "namespace", "", "namespace")
	fs.StringVar(&o.namespace, "n", "", "namespace")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for the operator")
	file := fs.String("f", "", "")
	out := fs.String("o", "", "")
	token := fs.String("client-request-token", "", "")
	stageList := fs.String("stages", "", "")
	versionID := fs.String("version-id", "", "")
	stage := fs.String("stage", "", "")
	moveTo := fs.String("move-to-version-id", "", "")
	removeFrom := fs.String("remove-from-version-id", "", "")
	deprecated := fs.Bool("include-deprecated", false, "")
	window := fs.Int("recovery-window-in-days", 0, "")
	force := fs.Bool("force-delete-without-recovery", false, "")

	// Flags may come before or after NAME.
	var positional []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return usagef("%s", err)
		}
		args = fs.Args()
		if len(args) > 0 {
			positional = append(positional, args[0])
			args = args[1:]
		}
	}
	if len(positional) != 1 {
		return usagef("%s takes exactly one secret name", cmd)
	}
	name := positional[0]

	// Check the arguments before touching the cluster: a bad one changes nothing.
	var req request.Request
	switch cmd {
	case "put":
		if *file == "" {
			return usagef("put reads the value from a file: -f FILE, or -f - for stdin (never from the command line)")
		}
		if *token == "" {
			*token = uuid.NewString()
		}
		req = request.Request{Op: request.OpPut, ClientRequestToken: *token, Stages: splitList(*stageList)}
	case "get":
		req = request.Request{Op: request.OpGet, VersionID: *versionID, Stage: *stage}
	case "update-stage":
		req = request.Request{Op: request.OpUpdateStage, Stage: *stage, MoveTo: *moveTo, RemoveFrom: *removeFrom}
	case "rollback":
		req = request.Request{Op: request.OpRollback}
	case "delete":
		windowGiven := false
		fs.Visit(func(f *flag.Flag) { windowGiven = windowGiven || f.Name == "recovery-window-in-days" })
		if *force && windowGiven {
			return usagef("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
		}
		if windowGiven {
			if _, err := request.ParseRecoveryDays(fmt.Sprint(*window)); err != nil {
				return usagef("--recovery-window-in-days: %s", err)
			}
		}
	case "describe", "versions", "rotate", "cancel-rotation", "restore":
	default:
		return usagef("unknown command %q", cmd)
	}
	if req.Op != "" {
		if err := req.Validate(); err != nil {
			return usagef("%s", err)
		}
	}
	var value []byte
	if cmd == "put" {
		var err error
		if value, err = readValue(*file, stdio.In); err != nil {
			return err
		}
		defer clear(value)
	}

	r, err := connect(o, stdio)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	msec := &v1alpha1.ManagedSecret{}
	if err := r.c.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: name}, msec); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("Secrets Manager can't find the specified secret: ManagedSecret %s/%s does not exist", r.ns, name)
		}
		return err
	}
	_, marked := msec.Annotations[request.AnnotationDeleteRequested]
	// AWS: while marked, only DescribeSecret, RestoreSecret and a forced DeleteSecret are allowed.
	if marked && cmd != "describe" && cmd != "restore" && !(cmd == "delete" && *force) {
		return request.ErrMarkedForDeletion
	}

	switch cmd {
	case "put", "update-stage", "rollback":
		res, _, err := r.roundTrip(ctx, msec, req, value)
		if err != nil {
			return err
		}
		return r.printJSON(map[string]any{"ARN": msec.Status.ID, "Name": msec.Name, "VersionId": res.VersionID, "VersionStages": res.Stages})
	case "get":
		res, val, err := r.roundTrip(ctx, msec, req, nil)
		if err != nil {
			return err
		}
		defer clear(val)
		if *out != "" {
			if err := writePrivate(*out, val); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Err, "wrote version %s (%s) to %s\n", res.VersionID, strings.Join(res.Stages, ","), *out)
			return nil
		}
		_, err = stdio.Out.Write(val)
		return err
	case "describe":
		return r.describe(ctx, msec)
	case "versions":
		return r.versions(ctx, msec, *deprecated)
	case "rotate":
		if msec.Spec.Rotation == nil {
			return errors.New("the secret has no rotation configured: set spec.rotation.policyRef to a RotationPolicy first")
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		return r.annotate(ctx, msec, map[string]any{v1alpha1.AnnotationRotateRequestedAt: now, request.AnnotationRotationCancelled: nil},
			"rotation of %s requested (%s)", name, now)
	case "cancel-rotation":
		return r.annotate(ctx, msec, map[string]any{request.AnnotationRotationCancelled: "true"},
			"rotation of %s cancelled; a rotation in progress stops and its AWSPENDING version is kept", name)
	case "delete":
		if *force {
			if err := r.c.Delete(ctx, msec, client.Preconditions{UID: &msec.UID}); err != nil {
				return err
			}
			return r.printJSON(map[string]any{"ARN": msec.Status.ID, "Name": name, "DeletionDate": time.Now().UTC().Format(time.RFC3339)})
		}
		if *window == 0 {
			// The secret's own default, else AWS's 30 days.
			*window = request.DefaultRecoveryDays
			if msec.Spec.RecoveryWindowDays != nil {
				*window = int(*msec.Spec.RecoveryWindowDays)
			}
		}
		at := time.Now().UTC().Add(time.Duration(*window) * 24 * time.Hour)
		stamp := time.Now().UTC().Format(time.RFC3339Nano)
		if err := r.annotate(ctx, msec, map[string]any{request.AnnotationDeleteRequested: request.DeleteRequest(*window, stamp)}, ""); err != nil {
			return err
		}
		return r.printJSON(map[string]any{"ARN": msec.Status.ID, "Name": name, "DeletionDate": at.Format(time.RFC3339)})
	case "restore":
		if err := r.annotate(ctx, msec, map[string]any{request.AnnotationDeleteRequested: nil}, ""); err != nil {
			return err
		}
		return r.printJSON(map[string]any{"ARN": msec.Status.ID, "Name": name})
	}
	return nil
}

func connect(o options, stdio IO) (*runner, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.context}
	if o.namespace != "" {
		overrides.Context.Namespace = o.namespace
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &runner{c: c, ns: ns, io: stdio, opt: o}, nil
}

// roundTrip writes a request Secret, confirms a mutating request on the ManagedSecret, waits for
// the operator's answer, and deletes the request.
func (r *runner) roundTrip(ctx context.Context, msec *v1alpha1.ManagedSecret, req request.Request, val []byte) (request.Result, []byte, error) {
	reqJSON, _ := json.Marshal(req)
	no, yes := false, true
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "ksm-request-" + randomSuffix(), Namespace: msec.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelManagedSecretUID: string(msec.UID),
				v1alpha1.LabelRole:             request.RoleRequest,
				v1alpha1.LabelManagedBy:        v1alpha1.ManagedByValue,
			},
			// Owned by the ManagedSecret, so the operator is told about it and it goes with it.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ManagedSecret",
				Name: msec.Name, UID: msec.UID, Controller: &yes, BlockOwnerDeletion: &no}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{request.KeyRequest: reqJSON},
	}
	if val != nil {
		sec.Data[request.KeyValue] = val
	}
	if err := r.c.Create(ctx, sec, client.FieldOwner(PluginName)); err != nil {
		// Only the reason: an admission webhook's message could quote the Secret, and so the value.
		return request.Result{}, nil, fmt.Errorf("creating the request Secret failed: %s", apiReason(err))
	}
	defer func() {
		cleanup, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.c.Delete(cleanup, sec)
	}()
	if req.Mutating() || req.ReadsOtherVersion() {
		// Changing a secret, or reading a version other than AWSCURRENT, counts only once the
		// ManagedSecret confirms the request (patch permission on it).
		confirm := request.Confirmation(req.Op, string(sec.UID), sec.ResourceVersion)
		if err := r.annotate(ctx, msec, map[string]any{request.AnnotationPrefix + sec.Name: confirm}, ""); err != nil {
			return request.Result{}, nil, err
		}
	}
	for {
		got := &corev1.Secret{}
		if err := r.c.Get(ctx, client.ObjectKeyFromObject(sec), got); err != nil {
			return request.Result{}, nil, fmt.Errorf("waiting for the operator's answer: %w", err)
		}
		if ans, ok := got.Annotations[request.AnnotationResult]; ok {
			res, err := request.DecodeResult(ans)
			if err != nil {
				return res, nil, err
			}
			if !res.OK {
				return res, nil, errors.New(res.Error)
			}
			return res, got.Data[request.KeyValue], nil
		}
		select {
		case <-ctx.Done():
			return request.Result{}, nil, fmt.Errorf("the operator did not answer within %s; is it running?", r.opt.timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// annotate merge-patches annotations (nil removes one) and prints a line when given.
func (r *runner) annotate(ctx context.Context, msec *v1alpha1.ManagedSecret, ann map[string]any, format string, args ...any) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err := r.c.Patch(ctx, msec, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(PluginName)); err != nil {
		return err
	}
	if format != "" {
		fmt.Fprintf(r.io.Out, format+"\n", args...)
	}
	return nil
}

func (r *runner) listVersions(ctx context.Context, msec *v1alpha1.ManagedSecret) ([]v1alpha1.SecretVersion, error) {
	list := &v1alpha1.SecretVersionList{}
	if err := r.c.List(ctx, list, client.InNamespace(msec.Namespace), client.MatchingLabels{v1alpha1.LabelManagedSecretUID: string(msec.UID)}); err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(a, b int) bool {
		return list.Items[a].CreationTimestamp.After(list.Items[b].CreationTimestamp.Time)
	})
	return list.Items, nil
}

// describe prints what DescribeSecret returns.
func (r *runner) describe(ctx context.Context, msec *v1alpha1.ManagedSecret) error {
	vs, err := r.listVersions(ctx, msec)
	if err != nil {
		return err
	}
	toStages := map[string][]string{}
	for _, v := range vs {
		if len(v.Spec.Stages) > 0 {
			toStages[v.Spec.VersionID] = v.Spec.Stages
		}
	}
	out := map[string]any{
		"ARN":                msec.Status.ID,
		"Name":               msec.Name,
		"Namespace":          msec.Namespace,
		"CreatedDate":        msec.CreationTimestamp.UTC().Format(time.RFC3339),
		"VersionIdsToStages": toStages,
	}
	if msec.Spec.Description != "" {
		out["Description"] = msec.Spec.Description
	}
	if msec.Spec.KMSKeyRef != "" {
		out["KmsKeyId"] = msec.Spec.KMSKeyRef
	}
	if len(msec.Spec.Tags) > 0 {
		out["Tags"] = msec.Spec.Tags
	}
	if rot := msec.Spec.Rotation; rot != nil {
		_, cancelled := msec.Annotations[request.AnnotationRotationCancelled]
		out["RotationEnabled"] = !cancelled
		out["RotationPolicy"] = rot.PolicyRef.Name
		p := &v1alpha1.RotationPolicy{}
		if err := r.c.Get(ctx, types.NamespacedName{Namespace: msec.Namespace, Name: rot.PolicyRef.Name}, p); err == nil {
			rules := map[string]any{}
			if p.Spec.Schedule.EveryDays != nil {
				rules["AutomaticallyAfterDays"] = *p.Spec.Schedule.EveryDays
			}
			if p.Spec.Schedule.Cron != "" {
				rules["ScheduleExpression"] = p.Spec.Schedule.Cron
			}
			if p.Spec.Schedule.TimeZone != "" {
				rules["TimeZone"] = p.Spec.Schedule.TimeZone
			}
			if p.Spec.Schedule.Window != "" {
				rules["Duration"] = p.Spec.Schedule.Window
			}
			out["RotationRules"] = rules
			out["RotationStrategy"] = p.Spec.Strategy
		}
	}
	for key, t := range map[string]*metav1.Time{"LastChangedDate": msec.Status.LastChangedTime, "LastRotatedDate": msec.Status.LastRotatedTime,
		"NextRotationDate": msec.Status.NextRotationTime, "DeletedDate": msec.Status.DeletionTime} {
		if t != nil {
			out[key] = t.UTC().Format(time.RFC3339)
		}
	}
	if _, marked := msec.Annotations[request.AnnotationDeleteRequested]; marked && msec.Status.DeletionTime == nil {
		out["DeletedDate"] = "pending"
	}
	return r.printJSON(out)
}

// versions prints what ListSecretVersionIds returns.
func (r *runner) versions(ctx context.Context, msec *v1alpha1.ManagedSecret, includeDeprecated bool) error {
	vs, err := r.listVersions(ctx, msec)
	if err != nil {
		return err
	}
	list := []map[string]any{}
	for _, v := range vs {
		if len(v.Spec.Stages) == 0 && !includeDeprecated {
			continue
		}
		e := map[string]any{"VersionId": v.Spec.VersionID, "CreatedDate": v.CreationTimestamp.UTC().Format(time.RFC3339)}
		if len(v.Spec.Stages) > 0 {
			e["VersionStages"] = v.Spec.Stages
		}
		if v.Spec.Payload != nil {
			e["KmsKeyIds"] = []string{v.Spec.Payload.KeyID}
		}
		list = append(list, e)
	}
	return r.printJSON(map[string]any{"ARN": msec.Status.ID, "Name": msec.Name, "Versions": list})
}

func (r *runner) printJSON(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := r.io.Out.Write(buf.Bytes())
	return err
}

func readValue(file string, stdin io.Reader) ([]byte, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the value: %w", err)
	}
	if len(data) == 0 {
		return nil, errors.New("the value is empty")
	}
	return data, nil
}

// writePrivate writes a value to a file created with mode 0600, replacing it atomically.
func writePrivate(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".ksm-value-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func apiReason(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return fmt.Sprintf("the API server answered %s (%d)", status.Status().Reason, status.Status().Code)
	}
	return "the request to the API server failed"
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomSuffix() string {
	b := make([]byte, 10)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(suffixAlphabet))))
		b[i] = suffixAlphabet[n.Int64()]
	}
	return string(b)
}
