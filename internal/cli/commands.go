package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/request"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

const seeExitCodes = "\n\nExit codes: see '" + displayName + " --help'."

// oneName checks a command's single positional argument, the ManagedSecret's name.
func oneName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usagef("%s takes exactly one secret name (got %d arguments)", cmd.Name(), len(args))
	}
	if errs := validation.IsDNS1123Subdomain(args[0]); len(errs) > 0 {
		return usagef("%q is not a valid ManagedSecret name: lower case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters", args[0])
	}
	return nil
}

// runE adapts a command body: its errors, unless they are bad arguments, are failures of an
// operation that ran, whose exit code follows their AWS error type.
func (a *app) runE(fn func(cmd *cobra.Command, name string) error) func(*cobra.Command, []string) error {
	return a.run(func(cmd *cobra.Command, args []string) error { return fn(cmd, args[0]) })
}

// run is runE for commands that take no name, or several arguments.
func (a *app) run(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if a.timeout <= 0 {
			return usagef("--timeout must be more than 0")
		}
		err := fn(cmd, args)
		var ue *usageError
		if err == nil || errors.As(err, &ue) {
			return err
		}
		return &runError{err}
	}
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments (got %q)", cmd.Name(), strings.Join(args, " "))
	}
	return nil
}

// deadline bounds a command's work once its arguments are checked (and a value read).
func (a *app) deadline(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), a.timeout)
}

// waitDeadline is the deadline of a command that waits for the operator's next key check (a
// minute by default): five minutes unless --timeout was given.
func (a *app) waitDeadline(cmd *cobra.Command, wait bool) (context.Context, context.CancelFunc) {
	if wait && !cmd.Flags().Changed("timeout") && a.timeout < 5*time.Minute {
		a.timeout = 5 * time.Minute
	}
	return a.deadline(cmd)
}

// outputFlag adds -o/--output; def describes what is printed without it.
func outputFlag(cmd *cobra.Command, def string) *string {
	o := new(string)
	cmd.Flags().StringVarP(o, "output", "o", "", "Output format: json or yaml (default: "+def+").")
	return o
}

func checkOutput(o string) error {
	switch o {
	case "", "json", "yaml":
		return nil
	}
	return usagef("unknown output format %q: use -o json or -o yaml", o)
}

func (a *app) putCommand() *cobra.Command {
	var file, token, stageList string
	var binary bool
	cmd := &cobra.Command{
		Use:   "put NAME -f FILE|- [--client-request-token TOKEN] [--stages L1,L2] [--binary]",
		Short: "Put a new value (PutSecretValue)",
		Long: `Put a new value (AWS's PutSecretValue). The new version gets AWSCURRENT (and AWSPREVIOUS
follows) unless --stages names other labels. The value is read from FILE, or from stdin with
-f -, never from the command line; 1 to 65536 bytes, checked before anything is sent.

The same --client-request-token with the same value is a no-op; with another value it is
refused. Tokens are 32-64 characters (default: a new UUID).

Prints ARN, Name, VersionId and VersionStages as JSON (or YAML with -o yaml).` + seeExitCodes,
		Example: `  kubectl secrets-manager put db -f value.json
  vault read -field=value secret/db | kubectl secrets-manager put db -f -
  kubectl secrets-manager put cert -f cert.der --binary --stages staging`,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "JSON")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if file == "" {
			return usagef("put reads the value from a file: -f FILE, or -f - for stdin (never from the command line)")
		}
		if token == "" {
			token = uuid.NewString()
		}
		req := request.Request{Op: request.OpPut, ClientRequestToken: token, Stages: splitList(stageList), Binary: binary}
		if err := req.Validate(); err != nil {
			return usagef("%s", err)
		}
		val, err := readValue(file, a.io.In)
		if err != nil {
			return err
		}
		defer clear(val)
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, msec, err := a.open(ctx, name, false)
		if err != nil {
			return err
		}
		res, _, err := s.roundTrip(ctx, msec, req, val)
		if err != nil {
			return err
		}
		return a.printData(*output, map[string]any{"ARN": msec.Status.ID, "Name": msec.Name, "VersionId": res.VersionID, "VersionStages": res.Stages})
	})
	f := cmd.Flags()
	f.StringVarP(&file, "filename", "f", "", "File holding the value, or - for stdin (required).")
	f.StringVar(&token, "client-request-token", "", "The new version's id, 32-64 characters (default: a new UUID).")
	f.StringVar(&stageList, "stages", "", "Comma-separated staging labels for the new version (default: AWSCURRENT).")
	f.BoolVar(&binary, "binary", false, "Store the value as a SecretBinary (raw bytes) rather than a SecretString.")
	return cmd
}

func (a *app) getCommand() *cobra.Command {
	var versionID, stage, outFile string
	cmd := &cobra.Command{
		Use:   "get NAME [--version-id ID | --stage LABEL] [--output-file FILE]",
		Short: "Print a value (GetSecretValue)",
		Long: `Print a value (AWS's GetSecretValue): AWSCURRENT by default, or the version named by
--version-id or --stage. The value is printed as it is, or written to --output-file FILE (mode
0600, replaced atomically); -o json|yaml prints GetSecretValue's fields instead (SecretString, or
SecretBinary in base64).

Reading a version other than AWSCURRENT needs patch permission on the ManagedSecret, like a
change: it is not projected anywhere.` + seeExitCodes,
		Example: `  kubectl secrets-manager get db
  kubectl secrets-manager get db --stage AWSPREVIOUS --output-file previous.json
  kubectl secrets-manager get db -o yaml`,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "the value as it is")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if outFile != "" && *output != "" {
			return usagef("--output-file writes the value as it is; it can't be combined with -o")
		}
		req := request.Request{Op: request.OpGet, VersionID: versionID, Stage: stage}
		if err := req.Validate(); err != nil {
			return usagef("%s", err)
		}
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, msec, err := a.open(ctx, name, false)
		if err != nil {
			return err
		}
		res, val, err := s.roundTrip(ctx, msec, req, nil)
		if err != nil {
			return err
		}
		defer clear(val)
		switch {
		case outFile != "":
			if err := writePrivate(outFile, val); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Err, "wrote version %s (%s) to %s\n", res.VersionID, strings.Join(res.Stages, ","), outFile)
			return nil
		case *output != "":
			doc := map[string]any{"ARN": msec.Status.ID, "Name": msec.Name, "VersionId": res.VersionID, "VersionStages": res.Stages}
			// JSON and YAML strings are text: bytes that are not UTF-8 go in base64, as
			// SecretBinary, whatever the operator says.
			if res.Binary || !utf8.Valid(val) {
				doc["SecretBinary"] = val
			} else {
				doc["SecretString"] = string(val)
			}
			return a.printData(*output, doc)
		}
		_, err = a.io.Out.Write(val)
		return err
	})
	f := cmd.Flags()
	f.StringVar(&versionID, "version-id", "", "The version to read (32-64 characters).")
	f.StringVar(&stage, "stage", "", "The staging label of the version to read (default: AWSCURRENT).")
	f.StringVar(&outFile, "output-file", "", "Write the value to this file (mode 0600) instead of stdout.")
	return cmd
}

func (a *app) describeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show the secret, its versions, rotation and dates (DescribeSecret)",
		Long: `Show the secret (AWS's DescribeSecret): ARN-like id, description, tags, versions and their
staging labels, rotation (enabled, policy, strategy, rules) and dates. A human-readable summary by
default; -o json|yaml prints DescribeSecret's fields (VersionIdsToStages, RotationEnabled, ...).` + seeExitCodes,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "a human-readable summary")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, msec, err := a.open(ctx, name, true)
		if err != nil {
			return err
		}
		d, err := s.describe(ctx, msec)
		if err != nil {
			return err
		}
		if *output == "" {
			return printDescription(a.io.Out, d)
		}
		return a.printData(*output, store.Describe(d.msec, d.versions, d.policy))
	})
	return cmd
}

func (a *app) versionsCommand() *cobra.Command {
	var deprecated bool
	cmd := &cobra.Command{
		Use:   "versions NAME [--include-deprecated]",
		Short: "List versions and their staging labels (ListSecretVersionIds)",
		Long: `List versions, newest first (AWS's ListSecretVersionIds): id, staging labels, creation date and
key id. Deprecated versions (without a label) only with --include-deprecated. A table by default;
-o json|yaml prints ListSecretVersionIds' fields.` + seeExitCodes,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "a table")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, msec, err := a.open(ctx, name, false)
		if err != nil {
			return err
		}
		vs, err := s.listVersions(ctx, msec)
		if err != nil {
			return err
		}
		var shown []v1alpha1.SecretVersion
		for _, v := range vs {
			if len(v.Spec.Stages) > 0 || deprecated {
				shown = append(shown, v)
			}
		}
		if *output == "" {
			if len(shown) == 0 {
				fmt.Fprintf(a.io.Err, "No versions of %s in namespace %s.\n", msec.Name, msec.Namespace)
				return nil
			}
			return printVersionTable(a.io.Out, shown)
		}
		list := []map[string]any{}
		for _, v := range shown {
			e := map[string]any{"VersionId": v.Spec.VersionID, "CreatedDate": v.CreationTimestamp.UTC().Format(time.RFC3339)}
			if len(v.Spec.Stages) > 0 {
				e["VersionStages"] = v.Spec.Stages
			}
			if v.Spec.Payload != nil {
				e["KmsKeyIds"] = []string{v.Spec.Payload.KeyID}
			}
			list = append(list, e)
		}
		return a.printData(*output, map[string]any{"ARN": msec.Status.ID, "Name": msec.Name, "Versions": list})
	})
	cmd.Flags().BoolVar(&deprecated, "include-deprecated", false, "Also list versions without a staging label.")
	return cmd
}

func (a *app) updateStageCommand() *cobra.Command {
	var stage, moveTo, removeFrom string
	cmd := &cobra.Command{
		Use:   "update-stage NAME --stage LABEL [--move-to-version-id ID] [--remove-from-version-id ID]",
		Short: "Move, attach or remove a staging label (UpdateSecretVersionStage)",
		Long: `Move, attach or remove a staging label (AWS's UpdateSecretVersionStage). Moving a label that is
attached to another version requires naming that version (--remove-from-version-id); AWSCURRENT
can't be removed, only moved, and AWSPREVIOUS follows it.

Prints ARN, Name, VersionId and VersionStages as JSON (or YAML with -o yaml).` + seeExitCodes,
		Example: `  kubectl secrets-manager update-stage db --stage AWSCURRENT --move-to-version-id NEW --remove-from-version-id OLD
  kubectl secrets-manager update-stage db --stage blue --move-to-version-id NEW`,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "JSON")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		req := request.Request{Op: request.OpUpdateStage, Stage: stage, MoveTo: moveTo, RemoveFrom: removeFrom}
		if err := req.Validate(); err != nil {
			return usagef("%s", err)
		}
		return a.mutate(cmd, name, req, *output)
	})
	f := cmd.Flags()
	f.StringVar(&stage, "stage", "", "The staging label to move, attach or remove (required).")
	f.StringVar(&moveTo, "move-to-version-id", "", "The version the label moves to.")
	f.StringVar(&removeFrom, "remove-from-version-id", "", "The version the label leaves.")
	return cmd
}

func (a *app) rollbackCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Move AWSCURRENT back to the AWSPREVIOUS version",
		Long: `Move AWSCURRENT back to the AWSPREVIOUS version in one step (UpdateSecretVersionStage); the
projected Secret follows.

Prints ARN, Name, VersionId and VersionStages as JSON (or YAML with -o yaml).` + seeExitCodes,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "JSON")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		return a.mutate(cmd, name, request.Request{Op: request.OpRollback}, *output)
	})
	return cmd
}

// mutate sends a confirmed request that changes labels and prints the version it touched.
func (a *app) mutate(cmd *cobra.Command, name string, req request.Request, output string) error {
	ctx, cancel := a.deadline(cmd)
	defer cancel()
	s, msec, err := a.open(ctx, name, false)
	if err != nil {
		return err
	}
	res, _, err := s.roundTrip(ctx, msec, req, nil)
	if err != nil {
		return err
	}
	return a.printData(output, map[string]any{"ARN": msec.Status.ID, "Name": msec.Name, "VersionId": res.VersionID, "VersionStages": res.Stages})
}

func (a *app) rotateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Rotate now, and turn rotation back on after cancel-rotation (RotateSecret)",
		Long: `Rotate now (AWS's RotateSecret): sets the rotate-requested-at annotation, which starts one
rotation Job, and turns scheduled rotation back on after cancel-rotation. The secret needs
spec.rotation.policyRef (else InvalidRequestException).

Prints a line (or ARN, Name and RotationRequestedAt with -o json|yaml).` + seeExitCodes,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "a line")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, err := a.connect()
		if err != nil {
			return err
		}
		msec, now, err := s.lifecycle().Rotate(ctx, s.ns, name, "")
		if err != nil {
			return s.kubeErr(err)
		}
		if *output != "" {
			return a.printData(*output, map[string]any{"ARN": msec.Status.ID, "Name": msec.Name, "RotationRequestedAt": now})
		}
		fmt.Fprintf(a.io.Out, "rotation of %s requested (%s)\n", name, now)
		return nil
	})
	return cmd
}

func (a *app) cancelRotationCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel-rotation NAME",
		Short: "Turn scheduled rotation off and cancel a rotation in progress (CancelRotateSecret)",
		Long: `Turn scheduled rotation off (the CronJob is suspended) and cancel a rotation in progress (AWS's
CancelRotateSecret). As in AWS the pending version keeps AWSPENDING, and the next rotation
completes it. rotate turns rotation back on.

Prints a line (or ARN, Name, RotationEnabled and the pending VersionId with -o json|yaml).` + seeExitCodes,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "a line")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, err := a.connect()
		if err != nil {
			return err
		}
		msec, err := s.lifecycle().CancelRotation(ctx, s.ns, name)
		if err != nil {
			return s.kubeErr(err)
		}
		if *output != "" {
			doc := map[string]any{"ARN": msec.Status.ID, "Name": msec.Name, "RotationEnabled": false}
			if msec.Status.PendingVersionID != "" {
				doc["VersionId"] = msec.Status.PendingVersionID
			}
			return a.printData(*output, doc)
		}
		fmt.Fprintf(a.io.Out, "rotation of %s cancelled; a rotation in progress stops and its AWSPENDING version is kept\n", name)
		return nil
	})
	return cmd
}

func (a *app) deleteCommand() *cobra.Command {
	var window int
	var force bool
	cmd := &cobra.Command{
		Use:   "delete NAME [--recovery-window-in-days 7-30 | --force-delete-without-recovery]",
		Short: "Mark for deletion after a recovery window, or delete at once (DeleteSecret)",
		Long: `Mark the secret for deletion after a recovery window (AWS's DeleteSecret): the secret's
spec.recoveryWindowDays, else 30 days, unless --recovery-window-in-days says otherwise. restore
cancels it. --force-delete-without-recovery deletes the ManagedSecret at once (also one already
marked). While marked, every command but describe, restore and a forced delete is refused.

Prints ARN, Name and DeletionDate as JSON (or YAML with -o yaml).` + seeExitCodes,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "JSON")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		windowGiven := cmd.Flags().Changed("recovery-window-in-days")
		if force && windowGiven {
			return usagef("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
		}
		if windowGiven {
			if _, err := request.ParseRecoveryDays(fmt.Sprint(window)); err != nil {
				return usagef("--recovery-window-in-days: %s", err)
			}
		}
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, err := a.connect()
		if err != nil {
			return err
		}
		// A forced delete also works on a secret marked for deletion, and on one that does not
		// exist (AWS answers it with success).
		out, err := s.lifecycle().Delete(ctx, s.ns, name, window, force)
		if err != nil {
			return s.kubeErr(err)
		}
		doc := map[string]any{"Name": out.Name, "DeletionDate": out.DeletionDate.Format(time.RFC3339)}
		if out.ARN != "" {
			doc["ARN"] = out.ARN
		}
		return a.printData(*output, doc)
	})
	f := cmd.Flags()
	f.IntVar(&window, "recovery-window-in-days", 0, "Days before the secret is deleted, 7-30 (default: spec.recoveryWindowDays, else 30).")
	f.BoolVar(&force, "force-delete-without-recovery", false, "Delete the ManagedSecret at once; it can't be restored.")
	return cmd
}

func (a *app) restoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore NAME",
		Short: "Cancel a scheduled deletion (RestoreSecret)",
		Long: `Cancel a scheduled deletion (AWS's RestoreSecret).

Prints ARN and Name as JSON (or YAML with -o yaml).` + seeExitCodes,
		Args:              oneName,
		ValidArgsFunction: a.completeNames,
	}
	output := outputFlag(cmd, "JSON")
	cmd.RunE = a.runE(func(cmd *cobra.Command, name string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, err := a.connect()
		if err != nil {
			return err
		}
		msec, err := s.lifecycle().Restore(ctx, s.ns, name)
		if err != nil {
			return s.kubeErr(err)
		}
		return a.printData(*output, map[string]any{"ARN": msec.Status.ID, "Name": name})
	})
	return cmd
}

// readValue reads a put's value from a file or stdin (-), refusing an empty one or one over
// value.MaxLimit before anything is sent.
func readValue(file string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if file != "-" {
		f, err := os.Open(file) //nolint:gosec // the user names the file the value is read from
		if err != nil {
			return nil, usagef("reading the value: %s", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, value.MaxLimit+1))
	if err != nil {
		clear(data)
		return nil, usagef("reading the value: %s", err)
	}
	if err := value.CheckSize(data, value.MaxLimit); err != nil {
		clear(data)
		if errors.Is(err, value.ErrTooBig) {
			return nil, usagef("the value is larger than %d bytes, AWS's limit for a secret value; nothing was sent", value.MaxLimit)
		}
		return nil, usagef("the value is empty; nothing was sent")
	}
	return data, nil
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
