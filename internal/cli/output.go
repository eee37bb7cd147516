package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// none is kubectl's word for an empty cell.
const none = "<none>"

// printData prints a command's result as JSON (the default) or YAML.
func (a *app) printData(format string, v any) error {
	var buf bytes.Buffer
	switch format {
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		buf.Write(b)
	default:
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	_, err := a.io.Out.Write(buf.Bytes())
	return err
}

// versionTable is the versions as a kubectl table: VERSION ID, STAGES, KEY ID, CREATED.
func versionTable(vs []v1alpha1.SecretVersion) *metav1.Table {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Version ID", Type: "string", Description: "AWS's VersionId"},
		{Name: "Stages", Type: "string", Description: "Staging labels (" + none + ": deprecated)"},
		{Name: "Key ID", Type: "string", Description: "The key-encryption key that wraps the version's data key"},
		{Name: "Created", Type: "string", Format: "date-time", Description: "When the version was created"},
	}}
	for _, v := range vs {
		stages := strings.Join(v.Spec.Stages, ",")
		if stages == "" {
			stages = none
		}
		key := none
		if v.Spec.Payload != nil && v.Spec.Payload.KeyID != "" {
			key = v.Spec.Payload.KeyID
		}
		t.Rows = append(t.Rows, metav1.TableRow{Cells: []any{v.Spec.VersionID, stages, key, v.CreationTimestamp.UTC().Format(time.RFC3339)}})
	}
	return t
}

// printVersionTable prints versions with kubectl's table printer.
func printVersionTable(out io.Writer, vs []v1alpha1.SecretVersion) error {
	return printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(versionTable(vs), out)
}

// printDescription prints DescribeSecret's information as kubectl describe lays it out.
func printDescription(out io.Writer, d *description) error {
	m := d.msec
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	field := func(indent, name, value string) {
		if value == "" {
			value = none
		}
		fmt.Fprintf(w, "%s%s:\t%s\n", indent, name, value)
	}
	field("", "Name", m.Name)
	field("", "Namespace", m.Namespace)
	field("", "ARN", m.Status.ID)
	field("", "Description", m.Spec.Description)
	kms := m.Spec.KMSKeyRef
	if kms == "" {
		kms = "<default>"
	}
	field("", "KMS Key", kms)
	var tags []string
	for _, t := range m.Spec.Tags {
		tags = append(tags, t.Key+"="+t.Value)
	}
	field("", "Tags", strings.Join(tags, ","))
	field("", "Target Secret", m.Status.TargetSecretName)
	dates := d.dates()
	field("", "Created", m.CreationTimestamp.UTC().Format(time.RFC3339))
	field("", "Last Changed", dates["LastChangedDate"])
	field("", "Last Rotated", dates["LastRotatedDate"])
	field("", "Next Rotation", dates["NextRotationDate"])
	field("", "Deletion", dates["DeletedDate"])
	if rot := m.Spec.Rotation; rot == nil {
		field("", "Rotation", "")
	} else {
		fmt.Fprintf(w, "Rotation:\n")
		field("  ", "Enabled", fmt.Sprint(d.rotationEnabled()))
		field("  ", "Policy", rot.PolicyRef.Name)
		if d.policy != nil {
			field("  ", "Strategy", d.policy.Spec.Strategy)
			field("  ", "Schedule", schedule(d.policy))
		}
	}
	labelled, deprecated := 0, 0
	for _, v := range d.versions {
		if len(v.Spec.Stages) > 0 {
			labelled++
		} else {
			deprecated++
		}
	}
	if labelled == 0 {
		field("", "Versions", "")
	} else {
		fmt.Fprintf(w, "Versions:\n")
		fmt.Fprintf(w, "  VERSION ID\tSTAGES\tKEY ID\tCREATED\n")
		fmt.Fprintf(w, "  ----------\t------\t------\t-------\n")
		for _, row := range versionTable(d.versions).Rows {
			if row.Cells[1] == none {
				continue
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", row.Cells...)
		}
	}
	if deprecated > 0 {
		fmt.Fprintf(w, "  (%d deprecated: %s versions %s --include-deprecated)\n", deprecated, displayName, m.Name)
	}
	return w.Flush()
}

// schedule says a policy's schedule in a few words.
func schedule(p *v1alpha1.RotationPolicy) string {
	s := p.Spec.Schedule
	var out string
	switch {
	case s.EveryDays != nil:
		out = fmt.Sprintf("every %d days", *s.EveryDays)
	case s.Cron != "":
		out = "cron " + s.Cron
		if s.TimeZone != "" {
			out += " (" + s.TimeZone + ")"
		}
	}
	if s.Window != "" {
		out += ", window " + s.Window
	}
	return out
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
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
