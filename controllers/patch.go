package controllers

import (
	"encoding/json"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// The two writes every new ManagedSecret costs (the claim and the status) are JSON merge patches
// under an optimistic lock, computed from views of the object that hold only what the write may
// change. controller-runtime's MergeFromWithOptimisticLock makes the same patch by marshalling the
// whole object twice and decoding both into maps to compare them: about a sixth of the operator's
// allocations while secrets were created. TestManagedSecretPatchesMatchMergeFrom holds the two
// equal.

// msecView is the part of a ManagedSecret the operator's merge patches change.
type msecView struct {
	Metadata msecMetaView                  `json:"metadata"`
	Status   *v1alpha1.ManagedSecretStatus `json:"status,omitempty"`
}

type msecMetaView struct {
	// ResourceVersion is set on the modified view only, so the patch carries it: the API server
	// refuses the patch with a conflict when the object changed since it was read.
	ResourceVersion string            `json:"resourceVersion,omitempty"`
	Finalizers      []string          `json:"finalizers,omitempty"`
	Annotations     map[string]string `json:"annotations,omitempty"`
}

// claimPatch is the merge patch that moves orig's finalizers and annotations to msec's.
func claimPatch(orig, msec *v1alpha1.ManagedSecret) (client.Patch, error) {
	return lockedMergePatch(
		msecView{Metadata: msecMetaView{Finalizers: orig.Finalizers, Annotations: orig.Annotations}},
		msecView{Metadata: msecMetaView{ResourceVersion: msec.ResourceVersion, Finalizers: msec.Finalizers, Annotations: msec.Annotations}})
}

// statusPatch is the merge patch that moves msec's status from before to its own.
func statusPatch(before *v1alpha1.ManagedSecretStatus, msec *v1alpha1.ManagedSecret) (client.Patch, error) {
	return lockedMergePatch(msecView{Status: before},
		msecView{Metadata: msecMetaView{ResourceVersion: msec.ResourceVersion}, Status: &msec.Status})
}

func lockedMergePatch(before, after msecView) (client.Patch, error) {
	from, err := json.Marshal(before)
	if err != nil {
		return nil, err
	}
	to, err := json.Marshal(after)
	if err != nil {
		return nil, err
	}
	data, err := jsonpatch.CreateMergePatch(from, to)
	if err != nil {
		return nil, err
	}
	return client.RawPatch(types.MergePatchType, data), nil
}
