package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// Key custody (README, "Keys"): rotate-key, retire-key and keys talk to the operator's leader
// through its key status ConfigMap: requests are annotations, the status is its data.

// The key status ConfigMap's name, request annotations and data keys are the strings of
// controllers/keys.go (AnnotationRotateKeyRequestedAt, AnnotationRetireKeys, KeyStatus*) and
// controllers/setup.go (KeyStatusConfigMap, KeyProviderKMSv2), repeated so the plugin does not
// import the operator; TestKeyStatusNamesAreTheOperators checks they still match.
const (
	defaultOperatorNamespace       = "kube-secrets-manager"
	keyStatusConfigMap             = "kube-secrets-manager-keys"
	annotationRotateKeyRequestedAt = "kube-secrets-manager.io/rotate-key-requested-at"
	annotationRetireKeys           = "kube-secrets-manager.io/retire-keys"
	keyStatusPrimary               = "primaryKeyId"
	keyStatusProvider              = "provider"
	keyStatusHealthy               = "providerHealthy"
	keyStatusRemaining             = "versionsNotOnPrimary"
	keyStatusFailing               = "versionsFailing"
	keyStatusUsage                 = "keyUsage"
	keyStatusRetired               = "retiredKeys"
	keyStatusMessage               = "message"
	keyStatusLastPass              = "lastPass"
	keyStatusHandled               = "rotateKeyHandled"
	keyProviderKMSv2               = "kmsv2"
	// notRetired starts the part of the operator's message that names keys it refused to retire.
	notRetired = "not retired: "
)

// keyPollInterval is how often --wait reads the key status.
const keyPollInterval = 500 * time.Millisecond

const kmsRotationNote = "The operator's keys are in a KMS (key provider kmsv2): the key rotates in the KMS, not in the " +
	"operator. Rotate it there; versions are re-wrapped onto the new key once the KMS plugin reports it."

const keyWaitHelp = `The operator's leader looks at its keys every --key-check-interval (a minute by default), so
--wait can take that long and more: it waits up to five minutes unless --timeout says otherwise.`

func (a *app) rotateKeyCommand() *cobra.Command {
	var operatorNS string
	var wait bool
	cmd := &cobra.Command{
		Use:   "rotate-key [--operator-namespace NS] [--wait]",
		Short: "Rotate the operator's key-encryption key; everything is re-wrapped onto the new key",
		Long: `Ask the operator for a new primary key-encryption key: sets the annotation
` + annotationRotateKeyRequestedAt + ` of its ConfigMap ` + keyStatusConfigMap + `
(in --operator-namespace) to the current time. The operator's leader adds a key to the local
keyring, wraps new versions with it and re-wraps every version, access key and the API's session
key onto it; values do not change. The old key stays until retire-key retires it.

Without --wait the command prints the request and returns; '` + displayName + ` keys' shows
where the rotation stands. With --wait it waits until the operator has rotated and nothing
that can be re-wrapped is left on an older key, printing the operator's message to stderr each
time it changes, then prints the new primary key id on stdout. Sealed objects that do not open
cannot be re-wrapped: they are reported (a warning, and the ManagedSecrets' DecryptionFailed
conditions) and do not hold the wait.

With a KMS (the operator's --key-provider=kmsv2) the key rotates in the KMS, not in the
operator: the operator records the request and says so, and --wait returns once it has.

` + keyWaitHelp + `

Rights: patch on configmaps in the operator's namespace; with --wait, get too.` + seeExitCodes,
		Example: `  kubectl secrets-manager rotate-key
  kubectl secrets-manager rotate-key --wait --timeout 5m
  kubectl secrets-manager rotate-key --operator-namespace secrets --wait`,
		Args: noArgs,
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, _ []string) error {
		if err := checkNamespaceFlag("--operator-namespace", operatorNS); err != nil {
			return err
		}
		ctx, cancel := a.waitDeadline(cmd, wait)
		defer cancel()
		s, err := a.connect()
		if err != nil {
			return err
		}
		requested := time.Now().UTC().Format(time.RFC3339Nano)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNS, Name: keyStatusConfigMap}}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annotationRotateKeyRequestedAt: requested}}})
		if err := s.c.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(PluginName)); err != nil {
			return s.keyStatusErr(operatorNS, err)
		}
		kms := cm.Data[keyStatusProvider] == keyProviderKMSv2
		if kms {
			fmt.Fprintln(a.io.Err, kmsRotationNote)
		}
		if !wait {
			fmt.Fprintf(a.io.Out, "key rotation requested (%s); the operator rotates at its next key check: '%s keys' shows where it stands\n",
				requested, displayName)
			return nil
		}
		cm, err = a.waitKeys(ctx, s, operatorNS, cm, "rotate the key", func(d map[string]string) (bool, error) {
			return rotationDone(d, requested), nil
		})
		if err != nil {
			return err
		}
		if w := rotationWarning(cm.Data); w != "" {
			fmt.Fprintln(a.io.Err, w)
		}
		if cm.Data[keyStatusProvider] == keyProviderKMSv2 && !kms {
			fmt.Fprintln(a.io.Err, kmsRotationNote)
		}
		fmt.Fprintln(a.io.Out, cm.Data[keyStatusPrimary])
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&operatorNS, "operator-namespace", defaultOperatorNamespace, "The namespace the operator runs in.")
	f.BoolVar(&wait, "wait", false, "Wait until everything is re-wrapped onto the new key; print its id.")
	return cmd
}

// rotationDone says whether the rotation requested at requested is over: handled, and (with
// the local keyring) everything that can be re-wrapped is on the primary key.
func rotationDone(d map[string]string, requested string) bool {
	if d[keyStatusHandled] != requested {
		return false
	}
	if d[keyStatusProvider] == keyProviderKMSv2 {
		return true
	}
	// A pass that found the provider down left the counts of an earlier pass.
	if d[keyStatusHealthy] != "true" {
		return false
	}
	remaining := d[keyStatusRemaining]
	return remaining == "0" || (remaining != "" && remaining == d[keyStatusFailing])
}

// rotationWarning names what a finished rotation left behind.
func rotationWarning(d map[string]string) string {
	if n := d[keyStatusFailing]; d[keyStatusProvider] != keyProviderKMSv2 && n != "" && n != "0" {
		return fmt.Sprintf("warning: %s sealed objects cannot be re-wrapped (they do not open) and stay on older keys; see the ManagedSecrets' DecryptionFailed conditions", n)
	}
	return ""
}

func (a *app) retireKeyCommand() *cobra.Command {
	var operatorNS string
	var wait bool
	cmd := &cobra.Command{
		Use:   "retire-key KEYID... [--operator-namespace NS] [--wait]",
		Short: "Retire keys nothing uses any more (after rotate-key)",
		Long: `Ask the operator to retire keys of its local keyring: adds their ids to the annotation
` + annotationRetireKeys + ` of its ConfigMap ` + keyStatusConfigMap + `
(in --operator-namespace), keeping the ids already there. The operator's leader removes a key
from the keyring only when nothing uses it: the primary key, and a key that still wraps a
version, an access key or the API's session key, are refused (the refusal is in the operator's
message and in a KeyRetireRefused Event). Key ids are never reused.
'` + displayName + ` keys' shows the keys and what each wraps.

With --wait the command waits until the keys are retired and prints them, or fails with the
operator's refusal ("not retired: ..."). With a KMS (the operator's --key-provider=kmsv2) keys
are retired in the KMS, and the command refuses.

` + keyWaitHelp + `

Rights: get and patch on configmaps in the operator's namespace.` + seeExitCodes,
		Example: `  kubectl secrets-manager retire-key key-1
  kubectl secrets-manager retire-key key-1 key-2 --wait --timeout 5m`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("retire-key takes the ids of the keys to retire ('%s keys' lists them)", displayName)
			}
			for _, id := range args {
				if err := checkKeyID(id); err != nil {
					return err
				}
			}
			return nil
		},
		ValidArgsFunction: a.completeKeyIDs(&operatorNS),
	}
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) error {
		if err := checkNamespaceFlag("--operator-namespace", operatorNS); err != nil {
			return err
		}
		ids := mergeIDs(nil, args)
		ctx, cancel := a.waitDeadline(cmd, wait)
		defer cancel()
		s, err := a.connect()
		if err != nil {
			return err
		}
		var cm *corev1.ConfigMap
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var err error
			if cm, err = s.keyStatus(ctx, operatorNS); err != nil {
				return err
			}
			if cm.Data[keyStatusProvider] == keyProviderKMSv2 {
				return awserr.New(awserr.InvalidRequest, "the operator's keys are in a KMS (key provider kmsv2): retire them in the KMS; retire-key retires keys of the local keyring")
			}
			if containsAll(splitList(cm.Data[keyStatusRetired]), ids) {
				return nil
			}
			want := strings.Join(mergeIDs(splitList(cm.Annotations[annotationRetireKeys]), ids), ",")
			if want == cm.Annotations[annotationRetireKeys] {
				return nil
			}
			patch := client.MergeFromWithOptions(cm.DeepCopy(), client.MergeFromWithOptimisticLock{})
			if cm.Annotations == nil {
				cm.Annotations = map[string]string{}
			}
			cm.Annotations[annotationRetireKeys] = want
			return s.c.Patch(ctx, cm, patch, client.FieldOwner(PluginName))
		})
		if err != nil {
			return s.keyStatusErr(operatorNS, err)
		}
		if containsAll(splitList(cm.Data[keyStatusRetired]), ids) {
			fmt.Fprintf(a.io.Out, "already retired: %s\n", strings.Join(ids, ", "))
			return nil
		}
		if !wait {
			fmt.Fprintf(a.io.Out, "retirement of %s requested; the operator retires keys nothing uses at its next key check: '%s keys' shows it\n",
				strings.Join(ids, ", "), displayName)
			return nil
		}
		if _, err := a.waitKeys(ctx, s, operatorNS, cm, "retire "+strings.Join(ids, ", "), func(d map[string]string) (bool, error) {
			return retirementDone(d, ids)
		}); err != nil {
			return err
		}
		fmt.Fprintf(a.io.Out, "retired %s\n", strings.Join(ids, ", "))
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&operatorNS, "operator-namespace", defaultOperatorNamespace, "The namespace the operator runs in.")
	f.BoolVar(&wait, "wait", false, "Wait until the keys are retired, or the operator refuses.")
	return cmd
}

// retirementDone says whether every one of ids is retired, or fails with the operator's refusal
// when it names one of them.
func retirementDone(d map[string]string, ids []string) (bool, error) {
	retired := splitList(d[keyStatusRetired])
	if containsAll(retired, ids) {
		return true, nil
	}
	refused := retireRefusal(d[keyStatusMessage], ids)
	if refused == "" {
		return false, nil
	}
	var done []string
	for _, id := range ids {
		if slices.Contains(retired, id) {
			done = append(done, id)
		}
	}
	if len(done) > 0 {
		refused += "; retired: " + strings.Join(done, ", ")
	}
	return false, awserr.New(awserr.InvalidRequest, "%s", refused)
}

// retireRefusal is the operator's refusal in its message ("not retired: ID (why), ID (why)")
// when it names one of ids, else "".
func retireRefusal(message string, ids []string) string {
	i := strings.Index(message, notRetired)
	if i < 0 {
		return ""
	}
	part := message[i:]
	if j := strings.Index(part, "; "); j >= 0 {
		part = part[:j]
	}
	list := ", " + strings.TrimPrefix(part, notRetired)
	for _, id := range ids {
		if strings.Contains(list, ", "+id+" (") {
			return part
		}
	}
	return ""
}

func (a *app) keysCommand() *cobra.Command {
	var operatorNS string
	cmd := &cobra.Command{
		Use:   "keys [--operator-namespace NS] [-o json|yaml]",
		Short: "Show the operator's keys: provider, primary key, re-wrap progress, what each key wraps",
		Long: `Show where the operator's key-encryption keys stand, from its ConfigMap
` + keyStatusConfigMap + ` (in --operator-namespace): the key provider and whether it
answered, the primary key, how many sealed objects (versions, access keys, the API's session
key) are not on it yet and how many of those cannot be re-wrapped (they do not open), how many
objects each key wraps, the retired keys, the operator's message, and when a key check last
changed something.

A summary by default; -o json|yaml prints the ConfigMap's data, with keyUsage as a map of key id
to count.

Rights: get on configmaps in the operator's namespace.` + seeExitCodes,
		Example: `  kubectl secrets-manager keys
  kubectl secrets-manager keys --operator-namespace secrets -o json`,
		Args: noArgs,
	}
	output := outputFlag(cmd, "a summary")
	cmd.RunE = a.run(func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		if err := checkNamespaceFlag("--operator-namespace", operatorNS); err != nil {
			return err
		}
		ctx, cancel := a.deadline(cmd)
		defer cancel()
		s, err := a.connect()
		if err != nil {
			return err
		}
		cm, err := s.keyStatus(ctx, operatorNS)
		if err != nil {
			return err
		}
		if *output == "" {
			return printKeyStatus(a.io.Out, cm.Data)
		}
		return a.printData(*output, keyStatusDoc(cm.Data))
	})
	cmd.Flags().StringVar(&operatorNS, "operator-namespace", defaultOperatorNamespace, "The namespace the operator runs in.")
	return cmd
}

// keyStatus reads the operator's key status ConfigMap.
func (s *session) keyStatus(ctx context.Context, ns string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	if err := s.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: keyStatusConfigMap}, cm); err != nil {
		return nil, s.keyStatusErr(ns, err)
	}
	return cm, nil
}

// keyStatusErr says a missing key status ConfigMap as what it means: no operator has started in
// ns (ResourceNotFoundException, as for a missing ManagedSecret).
func (s *session) keyStatusErr(ns string, err error) error {
	if apierrors.IsNotFound(err) {
		return awserr.New(awserr.ResourceNotFound, "the operator has not started in namespace %s: its leader keeps the ConfigMap %s there, and there is none (if the operator runs in another namespace, give it with --operator-namespace)",
			ns, keyStatusConfigMap)
	}
	return s.kubeErr(err)
}

// waitKeys reads the key status every keyPollInterval until done says the request is over (or
// fails), printing the operator's message to stderr each time it changes from last's.
func (a *app) waitKeys(ctx context.Context, s *session, ns string, last *corev1.ConfigMap, what string,
	done func(map[string]string) (bool, error)) (*corev1.ConfigMap, error) {
	msg := last.Data[keyStatusMessage]
	for {
		if ok, err := done(last.Data); ok || err != nil {
			return last, err
		}
		select {
		case <-ctx.Done():
			if msg == "" {
				msg = none
			}
			return nil, fmt.Errorf("the operator did not %s within %s (--timeout; it checks its keys every --key-check-interval, a minute by default); its message: %s",
				what, s.timeout, msg)
		case <-time.After(keyPollInterval):
		}
		cm, err := s.keyStatus(ctx, ns)
		if err != nil {
			if ctx.Err() != nil {
				continue // said above
			}
			return nil, err
		}
		if m := cm.Data[keyStatusMessage]; m != "" && m != msg {
			fmt.Fprintln(a.io.Err, m)
			msg = m
		}
		last = cm
	}
}

// keyUsage parses keyUsage (key id -> sealed objects it wraps).
func keyUsage(d map[string]string) (map[string]int, bool) {
	raw := d[keyStatusUsage]
	if raw == "" {
		return nil, false
	}
	usage := map[string]int{}
	if err := json.Unmarshal([]byte(raw), &usage); err != nil {
		return nil, false
	}
	return usage, true
}

// keyStatusDoc is the status data for -o json|yaml, keyUsage parsed.
func keyStatusDoc(d map[string]string) map[string]any {
	doc := map[string]any{}
	for k, v := range d {
		doc[k] = v
	}
	if usage, ok := keyUsage(d); ok {
		doc[keyStatusUsage] = usage
	}
	return doc
}

// printKeyStatus prints the status as kubectl describe lays things out.
func printKeyStatus(out io.Writer, d map[string]string) error {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	field := func(name, value string) {
		if value == "" {
			value = none
		}
		fmt.Fprintf(w, "%s:\t%s\n", name, value)
	}
	field("Provider", d[keyStatusProvider])
	field("Healthy", d[keyStatusHealthy])
	field("Primary Key", d[keyStatusPrimary])
	field("Versions Not On Primary", d[keyStatusRemaining])
	field("Failing", d[keyStatusFailing])
	field("Retired", strings.Join(splitList(d[keyStatusRetired]), ","))
	field("Message", d[keyStatusMessage])
	field("Last Pass", d[keyStatusLastPass])
	// The table of keys comes last: its columns are its own.
	usage, ok := keyUsage(d)
	switch {
	case ok && len(usage) > 0:
		fmt.Fprintf(w, "Usage:\n")
		fmt.Fprintf(w, "  KEY ID\tOBJECTS\n")
		fmt.Fprintf(w, "  ------\t-------\n")
		for _, id := range sortedKeyIDs(usage) {
			fmt.Fprintf(w, "  %s\t%d\n", id, usage[id])
		}
	case ok:
		field("Usage", "")
	default:
		field("Usage", d[keyStatusUsage])
	}
	return w.Flush()
}

// sortedKeyIDs orders key ids by number where they have one: key-2 before key-10.
func sortedKeyIDs(usage map[string]int) []string {
	ids := make([]string, 0, len(usage))
	for id := range usage {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if len(ids[i]) != len(ids[j]) {
			return len(ids[i]) < len(ids[j])
		}
		return ids[i] < ids[j]
	})
	return ids
}

// completeKeyIDs completes retire-key's ids: the keys the status knows that are not retired.
func (a *app) completeKeyIDs(ns *string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		s, err := a.connect()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		cm, err := s.keyStatus(ctx, *ns)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		usage, _ := keyUsage(cm.Data)
		if usage == nil {
			usage = map[string]int{}
		}
		primary := cm.Data[keyStatusPrimary]
		if primary != "" {
			usage[primary] += 0
		}
		retired := splitList(cm.Data[keyStatusRetired])
		var out []string
		for _, id := range sortedKeyIDs(usage) {
			if !strings.HasPrefix(id, toComplete) || slices.Contains(retired, id) || slices.Contains(args, id) {
				continue
			}
			desc := fmt.Sprintf("wraps %d objects", usage[id])
			if id == primary {
				desc = "the primary key (" + desc + ")"
			}
			out = append(out, cobra.CompletionWithDesc(id, desc))
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

// checkNamespaceFlag refuses a namespace flag's value that is not a namespace name.
func checkNamespaceFlag(flag, ns string) error {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return usagef("%s %q is not a valid namespace name", flag, ns)
	}
	return nil
}

// checkKeyID refuses what can't be a key id: the retire-keys annotation is a comma-separated list.
func checkKeyID(id string) error {
	if id == "" || len(id) > 253 || strings.ContainsAny(id, ", \t\r\n") {
		return usagef("%q is not a key id ('%s keys' lists them)", id, displayName)
	}
	return nil
}

// mergeIDs appends to have the ids it does not hold yet, keeping the order.
func mergeIDs(have, add []string) []string {
	out := slices.Clone(have)
	for _, id := range add {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func containsAll(set, ids []string) bool {
	for _, id := range ids {
		if !slices.Contains(set, id) {
			return false
		}
	}
	return true
}
