package cli

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
)

// completionTimeout bounds the API calls one completion makes: a shell waits for them.
const completionTimeout = 5 * time.Second

const completionHelp = `Print a shell completion script for bash, zsh or fish.

Through kubectl (1.26 and later complete plugins' arguments): load kubectl's own completion,
and put kubectl_complete-secrets_manager on PATH next to the plugin ('make install-plugin'
installs it; with krew, link it once):

  source <(kubectl completion bash)    # or zsh; fish: kubectl completion fish | source
  ln -s ~/.krew/bin/kubectl-secrets_manager ~/.krew/bin/kubectl_complete-secrets_manager

The plugin's own executable (kubectl-secrets_manager on PATH):

  bash:  source <(kubectl secrets-manager completion bash)
  zsh:   source <(kubectl secrets-manager completion zsh)     # after compinit
  fish:  kubectl secrets-manager completion fish | source

Commands, flags, ManagedSecret names (in the namespace the command would use), version ids
(--version-id, --move-to-version-id, --remove-from-version-id) and staging labels (--stage) are
completed; names, ids and labels are read from the cluster with your credentials.`

func (a *app) completionCommand() *cobra.Command {
	shells := []string{"bash", "zsh", "fish"}
	return &cobra.Command{
		Use:       "completion bash|zsh|fish",
		Short:     "Print a shell completion script",
		Long:      completionHelp,
		ValidArgs: shells,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("completion takes one shell: bash, zsh or fish")
			}
			for _, s := range shells {
				if args[0] == s {
					return nil
				}
			}
			return usagef("unknown shell %q: use bash, zsh or fish", args[0])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), a.io.Out
			var err error
			switch args[0] {
			case "bash":
				err = root.GenBashCompletionV2(out, true)
			case "zsh":
				err = root.GenZshCompletion(out)
			case "fish":
				err = root.GenFishCompletion(out, true)
			}
			if err != nil {
				return &runError{err}
			}
			return nil
		},
	}
}

// registerFlagCompletions completes the flags whose values the cluster or the kubeconfig knows.
func (a *app) registerFlagCompletions(root *cobra.Command) {
	must := func(err error) {
		if err != nil {
			panic(err) // a flag name typo: caught by any test that builds the tree
		}
	}
	fixed := func(values ...string) cobra.CompletionFunc {
		return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
	}
	for _, cmd := range root.Commands() {
		for name, fn := range map[string]cobra.CompletionFunc{
			"output":                  fixed("json", "yaml"),
			"version-id":              a.completeVersionIDs,
			"move-to-version-id":      a.completeVersionIDs,
			"remove-from-version-id":  a.completeVersionIDs,
			"stage":                   a.completeStages,
			"stages":                  a.completeStages,
			"client-request-token":    cobra.NoFileCompletions,
			"recovery-window-in-days": fixed("7", "30"),
			"operator-namespace":      a.completeNamespaces,
			"audience":                cobra.NoFileCompletions,
			"trust-bundle":            cobra.NoFileCompletions,
		} {
			if cmd.Flags().Lookup(name) != nil {
				must(cmd.RegisterFlagCompletionFunc(name, fn))
			}
		}
	}
	must(root.RegisterFlagCompletionFunc("namespace", a.completeNamespaces))
	must(root.RegisterFlagCompletionFunc("context", a.completeKubeconfig("contexts")))
	must(root.RegisterFlagCompletionFunc("cluster", a.completeKubeconfig("clusters")))
	must(root.RegisterFlagCompletionFunc("user", a.completeKubeconfig("users")))
	must(root.RegisterFlagCompletionFunc("timeout", fixed("10s", "30s", "1m")))
}

// completeNames completes a command's NAME with the ManagedSecrets in the namespace.
func (a *app) completeNames(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	s, err := a.connect()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	list := &v1alpha1.ManagedSecretList{}
	if err := s.c.List(ctx, list, client.InNamespace(s.ns)); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, m := range list.Items {
		if strings.HasPrefix(m.Name, toComplete) {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// secretVersions reads the versions of the secret named on the command line, for completion.
func (a *app) secretVersions(cmd *cobra.Command, args []string) []v1alpha1.SecretVersion {
	if len(args) == 0 {
		return nil
	}
	s, err := a.connect()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	msec, err := s.managedSecret(ctx, args[0])
	if err != nil {
		return nil
	}
	vs, err := s.listVersions(ctx, msec)
	if err != nil {
		return nil
	}
	return vs
}

// completeVersionIDs completes version ids of the named secret, described by their labels.
func (a *app) completeVersionIDs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, v := range a.secretVersions(cmd, args) {
		if !strings.HasPrefix(v.Spec.VersionID, toComplete) {
			continue
		}
		desc := strings.Join(v.Spec.Stages, ",")
		if desc == "" {
			desc = "deprecated"
		}
		out = append(out, cobra.CompletionWithDesc(v.Spec.VersionID, desc))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// completeStages completes the staging labels on the named secret's versions, described by the
// version holding each; without a name, AWS's own labels.
func (a *app) completeStages(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	holder := map[string]string{}
	for _, v := range a.secretVersions(cmd, args) {
		for _, l := range v.Spec.Stages {
			holder[l] = v.Spec.VersionID
		}
	}
	if len(args) == 0 {
		for _, l := range []string{stages.Current, stages.Previous, stages.Pending} {
			holder[l] = ""
		}
	}
	var out []string
	for l, id := range holder {
		if !strings.HasPrefix(l, toComplete) {
			continue
		}
		if id == "" {
			out = append(out, l)
		} else {
			out = append(out, cobra.CompletionWithDesc(l, "version "+id))
		}
	}
	sort.Strings(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (a *app) completeNamespaces(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	s, err := a.connect()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	list := &corev1.NamespaceList{}
	if err := s.c.List(ctx, list); err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, n := range list.Items {
		if strings.HasPrefix(n.Name, toComplete) {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeKubeconfig completes the names of the kubeconfig's contexts, clusters or users.
func (a *app) completeKubeconfig(what string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		raw, err := a.flags.ToRawKubeConfigLoader().RawConfig()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		switch what {
		case "contexts":
			for n := range raw.Contexts {
				names = append(names, n)
			}
		case "clusters":
			for n := range raw.Clusters {
				names = append(names, n)
			}
		case "users":
			for n := range raw.AuthInfos {
				names = append(names, n)
			}
		}
		var out []string
		for _, n := range names {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
