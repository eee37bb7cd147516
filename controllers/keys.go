package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/accesskeys"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awsapi"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/store"
)

// Key custody (README, "Keys"): the leader's KeyCustodian keeps every sealed thing (versions,
// access keys, the API's session key) on the provider's primary key, rotates the local keyring on
// request, retires keys nothing uses, and watches the keyring Secret: deleted, it is written back
// from the keys in memory; replaced by another keyring, it is reported and never adopted. What it
// sees is in the ConfigMap kube-secrets-manager-keys of the operator's namespace, which also takes
// the requests (annotations, set by `kubectl secrets-manager rotate-key` and `retire-key`).

// The key status ConfigMap's annotations (requests) and data (status).
const (
	AnnotationRotateKeyRequestedAt = "kube-secrets-manager.io/rotate-key-requested-at"
	AnnotationRetireKeys           = "kube-secrets-manager.io/retire-keys"

	KeyStatusPrimary    = "primaryKeyId"
	KeyStatusProvider   = "provider"
	KeyStatusRemaining  = "versionsNotOnPrimary"
	KeyStatusFailing    = "versionsFailing"
	KeyStatusUsage      = "keyUsage"
	KeyStatusRetired    = "retiredKeys"
	KeyStatusMessage    = "message"
	KeyStatusLastPass   = "lastPass"
	KeyStatusHandled    = "rotateKeyHandled"
	KeyStatusHealthy    = "providerHealthy"
	keyStatusRewrapped  = "rewrappedInLastPass"
	keyEventActionKeys  = "KeyCustody"
	reasonKeyRotated    = "KeyRotated"
	reasonRewrapDone    = "RewrapComplete"
	reasonKeyRetired    = "KeyRetired"
	reasonRetireRefused = "KeyRetireRefused"
	reasonRingReplaced  = "KeyringReplaced"
	reasonRingRestored  = "KeyringRestored"
	reasonProviderDown  = "KeyProviderUnavailable"
)

var (
	metricNotOnPrimary = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kube_secrets_manager_versions_not_on_primary_key",
		Help: "Sealed versions, access keys and session keys not yet re-wrapped onto the primary key (or still on the first binding format)."})
	metricRewrapped = prometheus.NewCounter(prometheus.CounterOpts{Name: "kube_secrets_manager_rewrapped_total",
		Help: "Sealed objects re-wrapped onto the primary key."})
	metricProviderUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kube_secrets_manager_key_provider_up",
		Help: "1 when the key provider answered the last check, else 0."})
)

func init() {
	metrics.Registry.MustRegister(metricNotOnPrimary, metricRewrapped, metricProviderUp)
}

// KeyCustodian runs on the leader.
type KeyCustodian struct {
	// Cache reads versions, ManagedSecrets and AccessKeys; Direct writes and reads the keyring.
	Cache, Direct client.Client
	Store         *store.Store
	Keys          envelope.KeyProvider
	// Ring is the local keyring's Secret and provider (nil with a KMS provider).
	Ring     *KeyringStore
	Local    *keyring.Provider
	Certs    *awsapi.Certs
	Recorder events.EventRecorder
	// Namespace and Name locate the status ConfigMap.
	Namespace, Name string
	// Namespaces are the watched namespaces (none: all).
	Namespaces []string
	Provider   string
	Interval   time.Duration
	Now        func() time.Time

	// deprecatedScan and deprecatedOnPrimary remember the last reading of the deprecated
	// versions (the pass runs in one goroutine).
	deprecatedScan      deprecatedScan
	deprecatedOnPrimary int
}

// NeedLeaderElection is true: only the leader re-wraps and rotates.
func (k *KeyCustodian) NeedLeaderElection() bool { return true }

// Start runs a pass at once and then every Interval.
func (k *KeyCustodian) Start(ctx context.Context) error {
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithName("keys"))
	for {
		if err := k.pass(ctx); err != nil && ctx.Err() == nil {
			log.FromContext(ctx).Info("a key custody pass failed; retrying", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(k.Interval):
		}
	}
}

func (k *KeyCustodian) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// pass is one round: the status ConfigMap's requests, the keyring's health, the re-wrap, the
// retirements, and the status written back.
func (k *KeyCustodian) pass(ctx context.Context) error {
	cm, err := k.statusMap(ctx)
	if err != nil {
		return err
	}
	orig := cm.DeepCopy()
	st := cm.Data
	st[KeyStatusProvider] = k.Provider
	messages := []string{}
	if k.Local != nil {
		if msg := k.checkKeyring(ctx, cm); msg != "" {
			messages = append(messages, msg)
		}
		if msg := k.rotateIfRequested(ctx, cm); msg != "" {
			messages = append(messages, msg)
		}
	} else if req := cm.Annotations[AnnotationRotateKeyRequestedAt]; req != "" && req != st[KeyStatusHandled] {
		st[KeyStatusHandled] = req
		messages = append(messages, "with a KMS provider the key rotates in the KMS: versions move to the new key once the plugin reports it")
	}

	primary, err := k.primary(ctx)
	if err != nil {
		metricProviderUp.Set(0)
		st[KeyStatusHealthy] = "false"
		st[KeyStatusMessage] = "the key provider is not available; nothing is re-wrapped until it is"
		if orig.Data[KeyStatusHealthy] != "false" {
			k.Recorder.Eventf(cm, nil, corev1.EventTypeWarning, reasonProviderDown, keyEventActionKeys, "%s", st[KeyStatusMessage])
		}
		return k.writeStatus(ctx, orig, cm)
	}
	metricProviderUp.Set(1)
	st[KeyStatusHealthy] = "true"
	st[KeyStatusPrimary] = primary

	usage, remaining, failing, rewrapped, err := k.rewrapAll(ctx, primary, k.retirePending(cm))
	if err != nil {
		return err
	}
	metricNotOnPrimary.Set(float64(remaining))
	if k.Local != nil {
		if msg := k.retireIfRequested(ctx, cm, usage); msg != "" {
			messages = append(messages, msg)
		}
	}
	raw, _ := json.Marshal(usage)
	st[KeyStatusUsage] = string(raw)
	st[KeyStatusRemaining] = strconv.Itoa(remaining)
	st[KeyStatusFailing] = strconv.Itoa(failing)
	st[keyStatusRewrapped] = strconv.Itoa(rewrapped)
	summary := fmt.Sprintf("everything is on %s", primary)
	if remaining > 0 {
		summary = fmt.Sprintf("%d sealed objects are not on %s yet (%d cannot be re-wrapped: they do not open; see the ManagedSecrets' DecryptionFailed conditions)", remaining, primary, failing)
	}
	st[KeyStatusMessage] = strings.Join(append([]string{summary}, messages...), "; ")
	if remaining == 0 && orig.Data[KeyStatusRemaining] != "" && orig.Data[KeyStatusRemaining] != "0" {
		k.Recorder.Eventf(cm, nil, corev1.EventTypeNormal, reasonRewrapDone, keyEventActionKeys, "every sealed object is on %s", primary)
	}
	return k.writeStatus(ctx, orig, cm)
}

func (k *KeyCustodian) primary(ctx context.Context) (string, error) {
	p, ok := k.Keys.(envelope.PrimaryKeyer)
	if !ok {
		return "", fmt.Errorf("the key provider cannot say its primary key")
	}
	return p.PrimaryKeyID(ctx)
}

// rewrapAll moves every sealed object that is not on primary (or is on the first binding format)
// and counts, by key id, what is where afterwards.
func (k *KeyCustodian) rewrapAll(ctx context.Context, primary string, retiring bool) (usage map[string]int, remaining, failing, rewrapped int, err error) {
	usage = map[string]int{}
	one := func(v *v1alpha1.SecretVersion) error {
		if v.Spec.Payload == nil {
			return nil
		}
		if !store.NeedsRewrap(v, primary) {
			usage[primary]++
			return nil
		}
		owner := &v1alpha1.ManagedSecret{}
		err := k.Cache.Get(ctx, types.NamespacedName{Namespace: v.Namespace, Name: v.Spec.ManagedSecretName}, owner)
		if err == nil {
			err = k.Store.Rewrap(ctx, owner, v, "")
		}
		switch {
		case err == nil:
			usage[v.Spec.Payload.KeyID]++
			if v.Spec.Payload.KeyID == primary {
				rewrapped++
				metricRewrapped.Inc()
				return nil
			}
		case envelope.IsUnavailable(err):
			return err
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			// Changed or gone since the cache saw it: the next pass looks again.
			usage[v.Spec.Payload.KeyID]++
		default:
			usage[v.Spec.Payload.KeyID]++
			failing++
			log.FromContext(ctx).Info("a version cannot be re-wrapped", "secretVersion", v.Namespace+"/"+v.Name, "error", errMessage(err))
		}
		remaining++
		return nil
	}
	// The items share their maps, slices and payloads with the cache (a deep copy of every cached
	// version each minute was most of a pass's garbage): only a version to re-wrap is copied.
	versions := &v1alpha1.SecretVersionList{}
	if err := k.Cache.List(ctx, versions, client.UnsafeDisableDeepCopy); err != nil {
		return nil, 0, 0, 0, err
	}
	for i := range versions.Items {
		v := &versions.Items[i]
		if store.NeedsRewrap(v, primary) {
			v = v.DeepCopy()
		}
		if err := one(v); err != nil {
			return nil, 0, 0, 0, err
		}
	}
	// Deprecated versions are not cached; they are read a page at a time, so a retired key is
	// never one they still use and memory stays bounded. They are read only when something may
	// have changed for them (deprecatedScanDue): they hold no label, so nothing moves them, and
	// every new version is sealed with the primary key.
	if k.deprecatedScanDue(primary, retiring) {
		before, onPrimary := remaining, usage[primary]
		perSecret := map[types.UID]int{}
		each := func(v *v1alpha1.SecretVersion) error {
			perSecret[types.UID(v.Labels[v1alpha1.LabelManagedSecretUID])]++
			return one(v)
		}
		if err := k.eachDeprecated(ctx, each); err != nil {
			return nil, 0, 0, 0, err
		}
		for uid, n := range perSecret {
			if n > stages.DeprecatedCap {
				k.Store.PruneDue(uid) // found over AWS's cap: the next reconcile prunes
			}
		}
		k.deprecatedScan = deprecatedScan{primary: primary, at: k.now(), clean: remaining == before}
		k.deprecatedOnPrimary = usage[primary] - onPrimary
	} else {
		usage[primary] += k.deprecatedOnPrimary
	}
	aks := &v1alpha1.AccessKeyList{}
	if err := k.Cache.List(ctx, aks); err != nil {
		return nil, 0, 0, 0, err
	}
	for i := range aks.Items {
		ak := &aks.Items[i]
		sealed := ak.Status.SealedSecret
		if sealed == nil {
			continue
		}
		if sealed.KeyID == primary {
			usage[primary]++
			continue
		}
		next, err := accesskeys.Rewrap(ctx, k.Keys, ak.Namespace, ak.Name, ak.Status.AccessKeyID, "", sealed)
		if err == nil {
			patch := client.MergeFromWithOptions(ak.DeepCopy(), client.MergeFromWithOptimisticLock{})
			ak.Status.SealedSecret = next
			err = k.Direct.Status().Patch(ctx, ak, patch)
		}
		if err == nil && next.KeyID == primary {
			usage[primary]++
			rewrapped++
			metricRewrapped.Inc()
			continue
		}
		if envelope.IsUnavailable(err) {
			return nil, 0, 0, 0, err
		}
		usage[sealed.KeyID]++
		remaining++
	}
	if k.Certs != nil {
		id, err := k.Certs.SessionKeyID(ctx)
		if err != nil {
			return nil, 0, 0, 0, err
		}
		if id != "" && id != primary {
			if err := k.Certs.RewrapSessionKey(ctx, ""); err != nil {
				usage[id]++
				remaining++
			} else {
				usage[primary]++
				rewrapped++
				metricRewrapped.Inc()
			}
		} else if id != "" {
			usage[primary]++
		}
	}
	return usage, remaining, failing, rewrapped, nil
}

// deprecatedPage is how many deprecated versions (with their payloads) a key pass reads at once.
const deprecatedPage = 200

// deprecatedRescan is how often deprecated versions are read again when nothing asks for it (a
// restore into a running cluster can bring some back on an older key).
const deprecatedRescan = time.Hour

// deprecatedScan is the last pass that read every deprecated version: under which primary key,
// when, and whether all of them were on it.
type deprecatedScan struct {
	primary string
	at      time.Time
	clean   bool
}

// deprecatedScanDue says whether a pass reads the deprecated versions: after a change of the
// primary key, when the last reading found some elsewhere, before a key is retired (usage must be
// exact then), and once an hour.
func (k *KeyCustodian) deprecatedScanDue(primary string, retiring bool) bool {
	last := k.deprecatedScan
	return retiring || !last.clean || last.primary != primary || k.now().Sub(last.at) >= deprecatedRescan
}

// retirePending says whether the status ConfigMap asks to retire a key not retired yet.
func (k *KeyCustodian) retirePending(cm *corev1.ConfigMap) bool {
	if k.Local == nil {
		return false
	}
	ring := k.Local.Ring()
	for _, id := range strings.Split(cm.Annotations[AnnotationRetireKeys], ",") {
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(ring.Retired, id) {
			return true
		}
	}
	return false
}

// eachDeprecated calls fn for every deprecated version, read from the API server in pages (per
// watched namespace in namespaced mode).
func (k *KeyCustodian) eachDeprecated(ctx context.Context, fn func(*v1alpha1.SecretVersion) error) error {
	namespaces := k.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		cont := ""
		for {
			page := &v1alpha1.SecretVersionList{}
			if err := k.Store.APIReader.List(ctx, page, client.InNamespace(ns), client.Limit(deprecatedPage), client.Continue(cont),
				client.MatchingLabels{v1alpha1.LabelDeprecated: v1alpha1.DeprecatedValue}); err != nil {
				return err
			}
			for i := range page.Items {
				if err := fn(&page.Items[i]); err != nil {
					return err
				}
			}
			if cont = page.Continue; cont == "" {
				break
			}
		}
	}
	return nil
}

// checkKeyring compares the stored keyring with the one in use.
func (k *KeyCustodian) checkKeyring(ctx context.Context, cm *corev1.ConfigMap) string {
	stored, err := k.Ring.Load(ctx)
	inUse := k.Local.Ring()
	switch {
	case apierrors.IsNotFound(err):
		if err := k.Ring.Write(ctx, inUse, nil); err != nil {
			return "the keyring Secret is missing and writing it back failed: " + apiErrorSummary(err)
		}
		k.Recorder.Eventf(cm, nil, corev1.EventTypeWarning, reasonRingRestored, keyEventActionKeys,
			"the keyring Secret %s/%s was deleted; it was written back from the keys in memory (no key changed). Back it up.", k.Ring.Namespace, k.Ring.Name)
		return ""
	case err != nil:
		return "the keyring Secret cannot be read: " + err.Error()
	}
	if err := keyring.Successor(inUse, stored); err != nil {
		if cm.Data["keyringReplaced"] != "true" {
			k.Recorder.Eventf(cm, nil, corev1.EventTypeWarning, reasonRingReplaced, keyEventActionKeys,
				"the keyring Secret %s/%s no longer holds the keys in use (%s); it is not adopted: the operator keeps the keys in memory, and stops rotating and retiring keys until it is restored",
				k.Ring.Namespace, k.Ring.Name, err)
		}
		cm.Data["keyringReplaced"] = "true"
		return "the keyring Secret was replaced by a keyring without the keys in use: restore it from a backup (the keys in memory keep working until the operator restarts)"
	}
	delete(cm.Data, "keyringReplaced")
	if stored.LastNumber > inUse.LastNumber || len(stored.Keys) != len(inUse.Keys) {
		_ = k.Local.Use(stored)
	}
	return ""
}

// rotateIfRequested adds a primary key when a rotation was asked for and not yet done.
func (k *KeyCustodian) rotateIfRequested(ctx context.Context, cm *corev1.ConfigMap) string {
	req := cm.Annotations[AnnotationRotateKeyRequestedAt]
	if req == "" || req == cm.Data[KeyStatusHandled] {
		return ""
	}
	if cm.Data["keyringReplaced"] == "true" {
		return "the key rotation waits until the keyring Secret is restored"
	}
	if done, err := k.Ring.RotatedFor(ctx); err != nil {
		return "reading the keyring failed: " + apiErrorSummary(err)
	} else if done == req {
		cm.Data[KeyStatusHandled] = req
		return ""
	}
	ring := k.Local.Ring()
	id, err := ring.AddPrimary(k.now())
	if err != nil {
		return "adding a key failed"
	}
	if err := k.Ring.Write(ctx, ring, map[string]string{AnnotationRotatedFor: req}); err != nil {
		return "writing the rotated keyring failed: " + apiErrorSummary(err)
	}
	if err := k.Local.Use(ring); err != nil {
		return err.Error()
	}
	cm.Data[KeyStatusHandled] = req
	k.Recorder.Eventf(cm, nil, corev1.EventTypeNormal, reasonKeyRotated, keyEventActionKeys,
		"new primary key %s: new versions are wrapped with it, existing ones are being re-wrapped", id)
	return ""
}

// retireIfRequested removes requested keys that nothing uses.
func (k *KeyCustodian) retireIfRequested(ctx context.Context, cm *corev1.ConfigMap, usage map[string]int) string {
	var want []string
	for _, id := range strings.Split(cm.Annotations[AnnotationRetireKeys], ",") {
		if id = strings.TrimSpace(id); id != "" {
			want = append(want, id)
		}
	}
	if len(want) == 0 || cm.Data["keyringReplaced"] == "true" {
		return ""
	}
	ring := k.Local.Ring()
	var done, refused []string
	for _, id := range want {
		if slices.Contains(ring.Retired, id) {
			continue
		}
		if n := usage[id]; n > 0 || id == ring.Primary {
			refused = append(refused, fmt.Sprintf("%s (primary or still used by %d)", id, n))
			continue
		}
		if err := ring.Retire(id); err != nil {
			refused = append(refused, fmt.Sprintf("%s (%s)", id, err))
			continue
		}
		done = append(done, id)
	}
	if len(done) > 0 {
		if err := k.Ring.Write(ctx, ring, nil); err != nil {
			return "writing the keyring failed: " + apiErrorSummary(err)
		}
		if err := k.Local.Use(ring); err != nil {
			return err.Error()
		}
		k.Recorder.Eventf(cm, nil, corev1.EventTypeNormal, reasonKeyRetired, keyEventActionKeys, "retired %s: nothing used it", strings.Join(done, ", "))
	}
	cm.Data[KeyStatusRetired] = strings.Join(ring.Retired, ",")
	if len(refused) > 0 {
		msg := "not retired: " + strings.Join(refused, ", ")
		if cm.Data["retireRefused"] != msg {
			k.Recorder.Eventf(cm, nil, corev1.EventTypeWarning, reasonRetireRefused, keyEventActionKeys, "%s", msg)
		}
		cm.Data["retireRefused"] = msg
		return msg
	}
	delete(cm.Data, "retireRefused")
	return ""
}

// statusMap reads (or creates) the status ConfigMap.
func (k *KeyCustodian) statusMap(ctx context.Context) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := k.Direct.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name}, cm)
	if apierrors.IsNotFound(err) {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name,
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue},
			Annotations: map[string]string{"kube-secrets-manager.io/description": "Where the operator's keys stand. Annotate " +
				AnnotationRotateKeyRequestedAt + " (any new value) to rotate the key, " + AnnotationRetireKeys + " to retire keys nothing uses."}},
			Data: map[string]string{}}
		err = k.Direct.Create(ctx, cm)
	}
	if err != nil {
		return nil, err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	return cm, nil
}

// writeStatus writes the ConfigMap when something but the time of the pass changed.
func (k *KeyCustodian) writeStatus(ctx context.Context, orig, cm *corev1.ConfigMap) error {
	cm.Data[KeyStatusLastPass] = orig.Data[KeyStatusLastPass]
	if maps.Equal(orig.Data, cm.Data) {
		return nil
	}
	cm.Data[KeyStatusLastPass] = k.now().UTC().Format(time.RFC3339)
	return k.Direct.Patch(ctx, cm, client.MergeFrom(orig))
}
