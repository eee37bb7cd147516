package store

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/stages"
)

// CompleteInterrupted completes a label change that a crash or an API error cut short, before
// anything reads the labels: an interrupted put or stage move (its intended labels recorded on
// the version), a move of AWSCURRENT (the version gaining it marked), or a finishSecret (the
// pending version already holding AWSCURRENT). A mark left on a valid state is removed.
func (s *Secret) CompleteInterrupted(ctx context.Context) error {
	set := s.Labels()
	for i := range s.versions {
		v := &s.versions[i]
		intended, ok := v.Annotations[AnnotationIntendedStages]
		if !ok {
			continue
		}
		final, err := set.Complete(v.Spec.VersionID, splitLabels(intended))
		if err != nil {
			// Nothing sensible to resume (the labels changed since): drop the intent.
			return s.clearIntent(ctx, v)
		}
		gaining := ""
		if contains(final[v.Spec.VersionID], stages.Current) {
			gaining = v.Spec.VersionID
		}
		return s.writeStages(ctx, set, final, gaining, v.Spec.VersionID)
	}
	marked := map[string]bool{}
	for _, v := range s.versions {
		if v.Annotations[AnnotationTakingCurrent] != "" {
			marked[v.Spec.VersionID] = true
		}
	}
	if fixed := stages.Recover(set, marked); fixed != nil {
		return s.writeStages(ctx, set, fixed, fixed.Holder(stages.Current), "")
	}
	if id, before := set.MidFinish(); id != "" {
		final, err := before.Finish(id)
		if err != nil {
			return err
		}
		return s.writeStages(ctx, set, final, id, "")
	}
	for id := range marked {
		if err := s.patchStages(ctx, id, set[id], false); err != nil {
			return err
		}
	}
	return nil
}

// writeStages performs stages.WritePlan, so an interruption at any point is recoverable. When
// target is set, its intended labels are recorded on it first and cleared last.
func (s *Secret) writeStages(ctx context.Context, from, to stages.Set, gaining, target string) error {
	if target != "" {
		if v := s.Version(target); v != nil && v.Annotations[AnnotationIntendedStages] != strings.Join(to[target], ",") {
			orig := v.DeepCopy()
			if v.Annotations == nil {
				v.Annotations = map[string]string{}
			}
			v.Annotations[AnnotationIntendedStages] = strings.Join(to[target], ",")
			if err := s.st.Client.Patch(ctx, v, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
				return err
			}
		}
	}
	for _, w := range stages.WritePlan(from, to, gaining) {
		if err := s.patchStages(ctx, w.ID, w.Labels, w.Marked); err != nil {
			return err
		}
	}
	if target != "" {
		if v := s.Version(target); v != nil {
			return s.clearIntent(ctx, v)
		}
	}
	return nil
}

func (s *Secret) clearIntent(ctx context.Context, v *v1alpha1.SecretVersion) error {
	if _, ok := v.Annotations[AnnotationIntendedStages]; !ok {
		return nil
	}
	orig := v.DeepCopy()
	delete(v.Annotations, AnnotationIntendedStages)
	return s.st.Client.Patch(ctx, v, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

func (s *Secret) patchStages(ctx context.Context, id string, labels []string, marked bool) error {
	v := s.Version(id)
	if v == nil {
		return fmt.Errorf("version %s not found", id)
	}
	_, wasMarked := v.Annotations[AnnotationTakingCurrent]
	if strings.Join(v.Spec.Stages, ",") == strings.Join(labels, ",") && wasMarked == marked {
		return nil
	}
	orig := v.DeepCopy()
	v.Spec.Stages = labels
	if marked {
		if v.Annotations == nil {
			v.Annotations = map[string]string{}
		}
		v.Annotations[AnnotationTakingCurrent] = "true"
	} else {
		delete(v.Annotations, AnnotationTakingCurrent)
	}
	return s.st.Client.Patch(ctx, v, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

func splitLabels(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func contains(ls []string, l string) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}
