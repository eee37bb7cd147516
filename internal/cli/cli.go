// Package cli is the `kubectl secrets-manager` plugin: AWS Secrets Manager's operations on
// ManagedSecrets, through the user's kubeconfig and Kubernetes RBAC. Values are read from a file
// or stdin and never from the command line, and never travel in a custom resource: they go
// through short-lived request Secrets the operator answers (see internal/request).
//
// The commands are a cobra command tree with kubectl's connection flags
// (k8s.io/cli-runtime's genericclioptions.ConfigFlags), one flag set per command, `help` for
// each, shell completion, and one exit code per class of failure (see exitCodes).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

const (
	// PluginName is the executable name kubectl looks for.
	PluginName = "kubectl-secrets_manager"
	// CompletionHelperName is the executable kubectl (1.26 and later) runs to complete the
	// plugin's arguments: `kubectl secrets-manager get <TAB>` runs
	// `kubectl_complete-secrets_manager get ""`, which must answer as
	// `kubectl-secrets_manager __complete get ""` does.
	CompletionHelperName = "kubectl_complete-secrets_manager"
	// CompleteCommand is the hidden command shells call for completions.
	CompleteCommand = cobra.ShellCompRequestCmd
	// displayName is how help text names the plugin.
	displayName = "kubectl secrets-manager"
)

// Exit codes besides awserr's per-type ones.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError is a bad argument: nothing was sent to the cluster (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// runError is a failure of a command that ran: an AWS error type decides the exit code.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// app holds what every command shares: the streams, kubectl's connection flags and the timeout.
type app struct {
	io      IO
	flags   *genericclioptions.ConfigFlags
	timeout time.Duration
}

func newApp(stdio IO) *app {
	if stdio.In == nil {
		stdio.In = strings.NewReader("")
	}
	return &app{io: stdio, flags: genericclioptions.NewConfigFlags(true)}
}

// Main runs the plugin with os.Args-style arguments (without the program name) and returns the
// exit code (see the help text: 0, 1, 2 for bad arguments, 3-10 per AWS error type).
func Main(ctx context.Context, args []string, stdio IO) int {
	a := newApp(stdio)
	root := a.rootCommand()
	// A nil slice would make cobra read os.Args.
	root.SetArgs(append([]string{}, args...))
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	cmd, err := root.ExecuteContextC(ctx)
	return a.exit(cmd, err)
}

// exit prints err on one line and returns its exit code.
func (a *app) exit(cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	var re *runError
	var ue *usageError
	if errors.As(err, &ue) || !errors.As(err, &re) {
		// Bad arguments: ours, or cobra's own (unknown flag, a flag's bad value).
		fmt.Fprintf(a.io.Err, "error: %s\n", oneLine(err.Error()))
		path := displayName
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(a.io.Err, "See '%s --help' for usage.\n", path)
		return exitUsage
	}
	fmt.Fprintf(a.io.Err, "error: %s\n", oneLine(err.Error()))
	if code := awserr.CodeOf(err); code != "" {
		return awserr.ExitCode(code)
	}
	return exitFail
}

// unsortedCommands sets cobra's global once, so concurrent Main calls do not race on it.
var unsortedCommands sync.Once

func (a *app) rootCommand() *cobra.Command {
	// Commands are listed in the order they are added: values first, then lifecycle.
	unsortedCommands.Do(func() { cobra.EnableCommandSorting = false })
	root := &cobra.Command{
		Use:   PluginName + " COMMAND NAME [flags]",
		Short: "AWS Secrets Manager's operations on ManagedSecrets",
		Long: `kubectl secrets-manager: AWS Secrets Manager's operations on ManagedSecrets, through your
kubeconfig and Kubernetes RBAC.

Values are never given on the command line: put reads a file (-f FILE) or stdin (-f -), get
prints the value or writes it to a file (--output-file FILE, mode 0600). They travel through a
short-lived request Secret the operator answers, never through a custom resource.

` + exitCodeHelp(),
		Example: `  kubectl secrets-manager put db-credentials -f value.json
  kubectl secrets-manager get db-credentials --stage AWSPREVIOUS --output-file previous.json
  kubectl secrets-manager versions db-credentials -n payments
  kubectl secrets-manager describe db-credentials -o yaml
  kubectl secrets-manager rotate db-credentials --as alice`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: displayName},
		SilenceErrors: true,
		SilenceUsage:  true,
		// Unknown commands arrive here as arguments of the root.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], displayName)
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return usagef("%s", msg)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name())
				}
			}
			return usagef("no command given: use one of %s", strings.Join(names, ", "))
		},
		ValidArgsFunction:          cobra.NoFileCompletions,
		SuggestionsMinimumDistance: 2,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	a.flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().DurationVar(&a.timeout, "timeout", 30*time.Second,
		"How long to wait for the operator's answer (and for the whole command).")

	root.AddCommand(a.putCommand(), a.getCommand(), a.describeCommand(), a.versionsCommand(),
		a.updateStageCommand(), a.rollbackCommand(), a.rotateCommand(), a.cancelRotationCommand(),
		a.deleteCommand(), a.restoreCommand(), a.createAccessKeyCommand(), a.endpointCommand(),
		a.keysCommand(), a.rotateKeyCommand(), a.retireKeyCommand(), a.completionCommand())
	root.SetHelpCommand(a.helpCommand(root))
	a.registerFlagCompletions(root)
	return root
}

// helpCommand is cobra's help, refusing unknown topics with exit 2 like unknown commands.
func (a *app) helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Help about any command",
		Long:  "Help for any command: " + displayName + " help COMMAND.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			cmd, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 || cmd == root {
				return usagef("unknown help topic %q", strings.Join(args, " "))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, _, _ := root.Find(args)
			if cmd == nil {
				cmd = root
			}
			cmd.InitDefaultHelpFlag() // listed as it is under COMMAND --help
			return cmd.Help()
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []string
			for _, c := range root.Commands() {
				if c.IsAvailableCommand() && strings.HasPrefix(c.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(c.Name(), c.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
	}
}

// exitCodeTypes documents the exit codes of AWS error types; the AWS types' codes come from awserr.ExitCode.
var exitCodeTypes = []struct {
	types []string
	what  string
}{
	{[]string{awserr.ResourceNotFound}, "no such ManagedSecret, version or staging label; no key status\n(the operator has not started in --operator-namespace)"},
	{[]string{awserr.InvalidRequest}, "not possible in the secret's state (marked for deletion, no rotation\nconfigured, ...); a key the operator refuses to retire"},
	{[]string{awserr.InvalidParameter}, "a parameter the operator refused"},
	{[]string{awserr.ResourceExists}, "a client request token already used with another value"},
	{[]string{awserr.LimitExceeded}, "too many versions or staging labels"},
	{[]string{awserr.DecryptionFailure, awserr.EncryptionFailure}, "a version could not be decrypted or encrypted"},
	{[]string{awserr.PreconditionNotMet}, "a precondition of the operation does not hold"},
	{[]string{awserr.AccessDenied}, "Kubernetes RBAC refused a request (Forbidden)"},
}

func exitCodeHelp() string {
	type row struct {
		code int
		text string
	}
	rows := []row{
		{exitOK, "success"},
		{exitFail, "any other failure: the operator did not answer in time, the API server failed,\n" + awserr.InternalServiceError},
		{exitUsage, "bad arguments (checked before anything is sent): an unknown command or flag, a flag\nthe command does not take, a missing, invalid, empty or too large value"},
	}
	for _, t := range exitCodeTypes {
		rows = append(rows, row{awserr.ExitCode(t.types[0]), strings.Join(t.types, ", ") + ": " + t.what})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].code < rows[j].code })
	var b strings.Builder
	b.WriteString("Errors are one line on stderr, \"error: <AWS error type>: <message>\" when the failure has an\nAWS error type. Exit codes:\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-3d %s\n", r.code, strings.ReplaceAll(r.text, "\n", "\n      "))
	}
	return strings.TrimRight(b.String(), "\n")
}
