package custody

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/controllers"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/cli"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
)

// secretCount is how many secrets the rotation test rotates through (KSM_CUSTODY_N, default 1000).
func secretCount() int {
	if n, err := strconv.Atoi(os.Getenv("KSM_CUSTODY_N")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// createMany creates n generated ManagedSecrets over four namespaces and waits until each has a
// version and a projection.
func createMany(t *testing.T, c client.Client, n int) []string {
	t.Helper()
	ctx := context.Background()
	namespaces := []string{"ns-0", "ns-1", "ns-2", "ns-3"}
	for _, ns := range namespaces {
		createNamespace(t, c, ns)
	}
	for i := range n {
		if err := c.Create(ctx, generated(namespaces[i%4], fmt.Sprintf("app-%04d", i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, fmt.Sprintf("%d secrets projected", n), 5*time.Minute, func() error {
		if got := len(projections(t, c, namespaces...)); got != n {
			return fmt.Errorf("%d of %d projected", got, n)
		}
		return nil
	})
	return namespaces
}

// openEvery opens every version with the stored keyring and returns the values by version id.
func openEvery(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	ctx := context.Background()
	sec := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: operatorNS, Name: controllers.DefaultOptions().KeyringSecret}, sec); err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Parse(sec.Data[keyring.DataKey])
	if err != nil {
		t.Fatal(err)
	}
	kp := keyring.NewProvider(ring, nil)
	list := &v1alpha1.SecretVersionList{}
	if err := c.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i := range list.Items {
		v := &list.Items[i]
		m := &v1alpha1.ManagedSecret{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: v.Namespace, Name: v.Spec.ManagedSecretName}, m); err != nil {
			t.Fatal(err)
		}
		sealed, ok := objects.Sealed(v)
		if !ok {
			t.Fatalf("version %s/%s has no payload", v.Namespace, v.Name)
		}
		plain, err := envelope.Open(ctx, kp, objects.Binding(m, v), sealed)
		if err != nil {
			t.Fatalf("version %s/%s does not open: %v", v.Namespace, v.Name, err)
		}
		out[v.Namespace+"/"+v.Spec.VersionID] = string(plain)
	}
	return out
}

// A key rotation through a thousand secrets, the manager killed while it re-wraps: a new manager
// finishes the job; every version opens, none is left on the old key, no value changed.
func TestKeyRotationThroughAThousandSecretsSurvivesACrash(t *testing.T) {
	cl := startCluster(t)
	n := secretCount()
	stop := runManager(t, cl, func(o *controllers.Options) { o.Workers = 16 })
	namespaces := createMany(t, cl.c, n)
	values := openEvery(t, cl.c)
	before := projections(t, cl.c, namespaces...)
	if keys := versionKeys(t, cl.c); len(keys) != 1 || keys["key-1"] != n {
		t.Fatalf("versions by key before the rotation: %v", keys)
	}

	requestKeyRotation(t, cl.c)
	eventually(t, "the re-wrap under way", time.Minute, func() error {
		keys := versionKeys(t, cl.c)
		if keys["key-2"] == 0 {
			return fmt.Errorf("versions by key: %v", keys)
		}
		return nil
	})
	stop() // killed mid-way (or, on a fast machine, just after)
	mid := versionKeys(t, cl.c)
	t.Logf("versions by key when the manager was killed: %v", mid)

	runManager(t, cl, nil)
	eventually(t, "every version on key-2", 3*time.Minute, func() error {
		keys := versionKeys(t, cl.c)
		if len(keys) != 1 || keys["key-2"] != n {
			return fmt.Errorf("versions by key: %v", keys)
		}
		if st := keyStatus(t, cl.c); st[controllers.KeyStatusRemaining] != "0" || st[controllers.KeyStatusPrimary] != "key-2" {
			return fmt.Errorf("status: %s", st[controllers.KeyStatusMessage])
		}
		return nil
	})
	after := openEvery(t, cl.c)
	if len(after) != len(values) {
		t.Fatalf("%d versions before, %d after", len(values), len(after))
	}
	for id, v := range values {
		if after[id] != v {
			t.Fatalf("version %s changed value", id)
		}
	}
	equalProjections(t, before, projections(t, cl.c, namespaces...))
}

// exported is what a Velero-style backup keeps of an object: its manifest without server-set
// fields and status.
func exported(t *testing.T, obj client.Object) []byte {
	t.Helper()
	raw, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &u.Object); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(u.Object, "status")
	out, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func restore(t *testing.T, c client.Client, doc []byte, stripOwners bool) {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(doc, &u.Object); err != nil {
		t.Fatal(err)
	}
	if stripOwners {
		u.SetOwnerReferences(nil)
	}
	if err := c.Create(context.Background(), u); err != nil {
		t.Fatalf("restoring %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
}

// A backup (ManagedSecrets, SecretVersions and the keyring Secret as YAML, as Velero-style tools
// keep them) restored into a fresh cluster: every version opens and each projected Secret is
// identical. The ManagedSecrets come back under new UIDs; their versions are bound to the stable
// id, which survives. Restored with or without owner references, in either order, into a cluster
// with the chart's admission policies (which then keep the restored id) and one without.
func TestBackupRestoresIntoAFreshCluster(t *testing.T) {
	for _, policies := range []bool{true, false} {
		t.Run(fmt.Sprintf("admission policies %v", policies), func(t *testing.T) { backupAndRestore(t, policies) })
	}
}

func backupAndRestore(t *testing.T, policies bool) {
	ctx := context.Background()
	src := startCluster(t)
	stop := runManager(t, src, nil)
	namespaces := []string{"shop", "billing"}
	for _, ns := range namespaces {
		createNamespace(t, src.c, ns)
		for _, name := range []string{"db", "api-key"} {
			if err := src.c.Create(ctx, generated(ns, name)); err != nil {
				t.Fatal(err)
			}
			waitReady(t, src.c, ns, name, metav1.ConditionTrue, v1alpha1.ReasonReady)
		}
	}
	// Two more versions (PutSecretValue with the plugin), so AWSPREVIOUS and a deprecated version
	// (which the operator's cache leaves out) are restored too.
	for _, pw := range []string{"second", "third"} {
		var out, errOut bytes.Buffer
		if code := cli.Main(ctx, []string{"put", "db", "-f", "-", "-n", "shop", "--kubeconfig", src.kubeconfig(t)},
			cli.IO{In: strings.NewReader(`{"username":"app","password":"` + pw + `"}`), Out: &out, Err: &errOut}); code != 0 {
			t.Fatalf("kubectl secrets-manager put: exit %d: %s", code, errOut.String())
		}
	}
	eventually(t, "a deprecated version of shop/db", 20*time.Second, func() error {
		for _, v := range versionsOf(t, src.c, "shop", "db") {
			if v.Labels[v1alpha1.LabelDeprecated] == v1alpha1.DeprecatedValue {
				return nil
			}
		}
		return errors.New("none")
	})
	before := projections(t, src.c, namespaces...)
	values := openEvery(t, src.c)

	// The backup.
	var msecs, versions [][]byte
	for _, ns := range namespaces {
		ml := &v1alpha1.ManagedSecretList{}
		if err := src.c.List(ctx, ml, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for i := range ml.Items {
			ml.Items[i].SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ManagedSecret"))
			msecs = append(msecs, exported(t, &ml.Items[i]))
		}
		vl := &v1alpha1.SecretVersionList{}
		if err := src.c.List(ctx, vl, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for i := range vl.Items {
			vl.Items[i].SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("SecretVersion"))
			versions = append(versions, exported(t, &vl.Items[i]))
		}
	}
	ring := &corev1.Secret{}
	if err := src.c.Get(ctx, types.NamespacedName{Namespace: operatorNS, Name: controllers.DefaultOptions().KeyringSecret}, ring); err != nil {
		t.Fatal(err)
	}
	ring.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	ringDoc := exported(t, ring)
	if bytes.Contains(bytes.Join(append(msecs, versions...), nil), []byte(values[firstKey(values)])) {
		t.Fatal("the backup of ManagedSecrets and SecretVersions holds a value in the clear")
	}
	stop()

	// A fresh cluster: the keyring first, then the ManagedSecrets (the operator waits for their
	// versions instead of inventing values), then the versions, half of them without owners.
	dst := startCluster(t)
	if policies {
		installAdmissionPolicies(t, dst.c)
	}
	for _, ns := range namespaces {
		createNamespace(t, dst.c, ns)
	}
	restore(t, dst.c, ringDoc, false)
	runManager(t, dst, nil)
	for _, doc := range msecs {
		restore(t, dst.c, doc, false)
	}
	waitReady(t, dst.c, "shop", "db", metav1.ConditionFalse, v1alpha1.ReasonVersionsMissing)
	if n := len(versionKeys(t, dst.c)); n != 0 {
		t.Fatalf("%d versions were invented before the restore finished", n)
	}
	for i, doc := range versions {
		restore(t, dst.c, doc, i%2 == 0)
	}
	for _, ns := range namespaces {
		for _, name := range []string{"db", "api-key"} {
			waitReady(t, dst.c, ns, name, metav1.ConditionTrue, v1alpha1.ReasonReady)
		}
	}
	after := openEvery(t, dst.c)
	if len(after) != len(values) {
		t.Fatalf("%d versions before the backup, %d after the restore", len(values), len(after))
	}
	for id, v := range values {
		if after[id] != v {
			t.Fatalf("version %s restored with another value", id)
		}
	}
	equalProjections(t, before, projections(t, dst.c, namespaces...))
	if policies {
		// The restored id is what the versions open with: it can be neither changed nor removed
		// now that versions are bound to it.
		m := &v1alpha1.ManagedSecret{}
		if err := dst.c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "db"}, m); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{`null`, `"` + string(m.UID) + `"`} {
			patch := []byte(`{"metadata":{"annotations":{"` + v1alpha1.AnnotationSecretID + `":` + v + `}}}`)
			if err := dst.c.Patch(ctx, m.DeepCopy(), client.RawPatch(types.MergePatchType, patch)); !apierrors.IsInvalid(err) {
				t.Fatalf("setting the restored secret id to %s: %v", v, err)
			}
		}
	}
	// Every version is adopted by its restored ManagedSecret, the deprecated one included.
	eventually(t, "every restored version adopted", 30*time.Second, func() error {
		for _, ns := range namespaces {
			list := &v1alpha1.SecretVersionList{}
			if err := dst.c.List(ctx, list, client.InNamespace(ns)); err != nil {
				return err
			}
			for _, v := range list.Items {
				m := &v1alpha1.ManagedSecret{}
				if err := dst.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: v.Spec.ManagedSecretName}, m); err != nil {
					return err
				}
				owner := metav1.GetControllerOf(&v)
				if owner == nil || owner.UID != m.UID || v.Labels[v1alpha1.LabelManagedSecretUID] != string(m.UID) {
					return fmt.Errorf("restored version %s/%s (stages %v) was not adopted", ns, v.Name, v.Spec.Stages)
				}
			}
		}
		return nil
	})
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}
