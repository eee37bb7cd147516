package objects

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// Cached objects are decoded with a fresh copy of every string, so each of thousands of secrets
// held its own copies of the same label keys, owner kinds, condition reasons and staging labels,
// and of its ManagedSecret's uid several times over (labels, owner reference, version ids). The
// cache transforms share them: short strings with few distinct values through one bounded table,
// and, within one object, every copy of its ManagedSecret's uid.

const (
	// internMaxLen is the longest string the table takes: keys, kinds, reasons and namespaces
	// are short; long strings are one of a kind (messages, digests).
	internMaxLen = 64
	// internMaxEntries bounds the table: past it, strings are kept as decoded. The operator's own
	// vocabulary is a few dozen strings; the rest is namespaces and label keys.
	internMaxEntries = 8192
)

type interner struct {
	mu sync.RWMutex
	m  map[string]string
}

var cacheStrings = &interner{m: map[string]string{}}

// intern returns the table's copy of s, adding s while the table has room.
func (in *interner) intern(s string) string {
	if s == "" || len(s) > internMaxLen {
		return s
	}
	in.mu.RLock()
	c, ok := in.m[s]
	full := len(in.m) >= internMaxEntries
	in.mu.RUnlock()
	if ok {
		return c
	}
	if full {
		return s // no write lock once full: transforms of every informer would queue on it
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := in.m[s]; ok {
		return c
	}
	if len(in.m) < internMaxEntries {
		in.m[s] = s
	}
	return s
}

func (in *interner) len() int {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return len(in.m)
}

// sameAs returns canonical when s equals it (sharing its memory), s otherwise.
func sameAs(s, canonical string) string {
	if s == canonical {
		return canonical
	}
	return s
}

// internMeta shares the namespace, the operator's own label and annotation keys and the values of
// its labels other than the uid, and its owner kinds and finalizer; uid (the ManagedSecret's, ""
// when unknown) is shared by the label, annotation values and owner reference that repeat it.
// Other keys and values are left as decoded: tenants choose them, and they would only fill the
// table.
func internMeta(m *metav1.ObjectMeta, uid string) {
	in := cacheStrings
	m.Namespace = in.intern(m.Namespace)
	internOwnKeys(m.Labels, func(k, v string) string {
		if k == v1alpha1.LabelManagedSecretUID {
			return sameAs(v, uid)
		}
		return in.intern(v)
	})
	internOwnKeys(m.Annotations, func(_, v string) string { return sameAs(v, uid) })
	group := v1alpha1.GroupVersion.String()
	for i := range m.OwnerReferences {
		o := &m.OwnerReferences[i]
		if o.APIVersion == group {
			o.APIVersion, o.Kind = in.intern(o.APIVersion), in.intern(o.Kind)
		}
		o.UID = types.UID(sameAs(string(o.UID), uid))
	}
	for i, f := range m.Finalizers {
		m.Finalizers[i] = sameAs(f, v1alpha1.Finalizer)
	}
}

// internOwnKeys replaces each of the operator's own keys in m by the table's copy, and its value
// by value(key, v).
func internOwnKeys(m map[string]string, value func(k, v string) string) {
	var own []string
	for k := range m {
		if IsOwnKey(k) {
			own = append(own, k)
		}
	}
	for _, k := range own {
		v := m[k]
		delete(m, k)
		m[cacheStrings.intern(k)] = value(k, v)
	}
}

func internAll(s []string) {
	for i := range s {
		s[i] = cacheStrings.intern(s[i])
	}
}

// internVersion shares a cached SecretVersion's strings.
func internVersion(v *v1alpha1.SecretVersion) {
	uid := v.Labels[v1alpha1.LabelManagedSecretUID]
	internMeta(&v.ObjectMeta, uid)
	v.Spec.VersionID = sameAs(v.Spec.VersionID, uid)
	if c := metav1.GetControllerOfNoCopy(v); c != nil {
		v.Spec.ManagedSecretName = sameAs(v.Spec.ManagedSecretName, c.Name)
	}
	internAll(v.Spec.Stages)
	if p := v.Spec.Payload; p != nil {
		in := cacheStrings
		p.Algorithm, p.Binding, p.KeyID, p.ValueType = in.intern(p.Algorithm), in.intern(p.Binding), in.intern(p.KeyID), in.intern(p.ValueType)
	}
}

// internManagedSecret shares a cached ManagedSecret's strings: its uid where status repeats it
// (the first version's id is the secret's uid), condition types and reasons, staging labels.
func internManagedSecret(m *v1alpha1.ManagedSecret) {
	uid := string(m.UID)
	internMeta(&m.ObjectMeta, uid)
	in, st := cacheStrings, &m.Status
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Status, c.Reason = in.intern(c.Type), metav1.ConditionStatus(in.intern(string(c.Status))), in.intern(c.Reason)
	}
	st.CurrentVersionID = sameAs(st.CurrentVersionID, uid)
	st.PendingVersionID = sameAs(st.PendingVersionID, uid)
	st.PreviousVersionID = sameAs(st.PreviousVersionID, uid)
	st.TargetSecretName = sameAs(st.TargetSecretName, m.Name)
	for i := range st.Versions {
		st.Versions[i].VersionID = sameAs(st.Versions[i].VersionID, uid)
		internAll(st.Versions[i].Stages)
	}
}
