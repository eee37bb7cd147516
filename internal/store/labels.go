package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/objects"
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
	if fixed := stages.Recover(set, s.marks()); fixed != nil {
		return s.writeStages(ctx, set, fixed, fixed.Holder(stages.Current), "")
	}
	if id, before := set.MidFinish(); id != "" {
		final, err := before.Finish(id)
		if err != nil {
			return err
		}
		return s.writeStages(ctx, set, final, id, "")
	}
	// A mark left on the sole AWSCURRENT holder stays (see stages.KeepMark): removing it would be
	// a write that changes nothing anyone reads.
	return nil
}

// marks are the numbers of the versions marked as taking AWSCURRENT. A mark written before marks
// were numbered ("true") counts as the oldest.
func (s *Secret) marks() map[string]int64 {
	out := map[string]int64{}
	for _, v := range s.versions {
		if m, ok := v.Annotations[AnnotationTakingCurrent]; ok {
			n, err := strconv.ParseInt(m, 10, 64)
			if err != nil || n < 0 {
				n = 0
			}
			out[v.Spec.VersionID] = n
		}
	}
	return out
}

// nextMark is the number a new mark gets, so Recover can tell the move under way from a mark an
// earlier move left: the time of the move in nanoseconds, and above every mark the versions carry.
// The time keeps it above a mark the cache does not show yet (a write whose answer was lost).
func (s *Secret) nextMark() string {
	next := time.Now().UnixNano()
	for _, n := range s.marks() {
		next = max(next, n+1)
	}
	return strconv.FormatInt(next, 10)
}

// writeStages performs stages.WritePlan, so an interruption at any point is recoverable. When
// target is set, its intended labels are recorded on it before the first write and cleared after
// the last; when the first (or last) write of the plan is the target's own, the intent rides in
// that write, which is as safe (one write is atomic) and saves one. Without a target, a last
// write that would only take the mark off the gaining version is left out (stages.KeepMark).
func (s *Secret) writeStages(ctx context.Context, from, to stages.Set, gaining, target string) error {
	plan := stages.WritePlan(from, to, gaining)
	if target == "" {
		plan = stages.KeepMark(from, plan, gaining)
	}
	mark := s.nextMark()
	intent, clear := strings.Join(to[target], ","), ""
	folded := target != "" && len(plan) > 0 && plan[0].ID == target
	if target != "" && !folded {
		if v := s.Version(target); v != nil && v.Annotations[AnnotationIntendedStages] != intent {
			orig := v.DeepCopy()
			if v.Annotations == nil {
				v.Annotations = map[string]string{}
			}
			v.Annotations[AnnotationIntendedStages] = intent
			// A deprecated target leaves the deprecated set in this same write, so the cache
			// holds it if a crash interrupts the move (CompleteInterrupted reads the cache).
			s.markDeprecated(v)
			if err := s.patch(ctx, v, orig); err != nil {
				return err
			}
		}
	}
	for i, w := range plan {
		var note *string
		switch {
		case target != "" && i == len(plan)-1 && w.ID == target:
			note = &clear
		case folded && i == 0:
			note = &intent
		}
		if err := s.patchStages(ctx, w.ID, w.Labels, markIf(w.Marked, mark), note); err != nil {
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
	s.markDeprecated(v)
	return s.patch(ctx, v, orig)
}

// patch writes the changes made to the cached version v since orig. When the write fails, v is
// put back as it was, so what later steps of the same reconcile read (labels, marks, intents)
// stays what the API server has, as far as the operator knows.
func (s *Secret) patch(ctx context.Context, v, orig *v1alpha1.SecretVersion) error {
	err := s.st.Client.Patch(ctx, v, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if err != nil {
		*v = *orig
	}
	return err
}

// markIf is mark for a marked write, "" (no mark) otherwise.
func markIf(marked bool, mark string) string {
	if marked {
		return mark
	}
	return ""
}

// patchStages writes a version's labels and mark ("" for none); intent, when not nil, is its
// intended-stages annotation in the same write ("" removes it).
func (s *Secret) patchStages(ctx context.Context, id string, labels []string, mark string, intent *string) error {
	v := s.Version(id)
	if v == nil {
		return fmt.Errorf("version %s not found", id)
	}
	had, hasIntent := v.Annotations[AnnotationIntendedStages]
	intentSame := intent == nil || (*intent == "" && !hasIntent) || (*intent != "" && hasIntent && had == *intent)
	if strings.Join(v.Spec.Stages, ",") == strings.Join(labels, ",") && v.Annotations[AnnotationTakingCurrent] == mark && intentSame {
		return nil
	}
	orig := v.DeepCopy()
	if v.Annotations == nil {
		v.Annotations = map[string]string{}
	}
	switch {
	case intent == nil:
	case *intent == "":
		delete(v.Annotations, AnnotationIntendedStages)
	default:
		v.Annotations[AnnotationIntendedStages] = *intent
	}
	v.Spec.Stages = labels
	if mark != "" {
		v.Annotations[AnnotationTakingCurrent] = mark
	} else {
		delete(v.Annotations, AnnotationTakingCurrent)
	}
	s.markDeprecated(v)
	return s.patch(ctx, v, orig)
}

// markDeprecated sets LabelDeprecated on a version about to be written exactly when it has no
// staging label and no label change under way, so every write that changes those also moves the
// version into or out of the cache's selection. A version newly deprecated makes its secret's
// deprecated versions due for counting (Prune).
func (s *Secret) markDeprecated(v *v1alpha1.SecretVersion) {
	_, intent := v.Annotations[AnnotationIntendedStages]
	_, taking := v.Annotations[AnnotationTakingCurrent]
	was := objects.IsMarkedDeprecated(v)
	if objects.MarkDeprecated(v, intent || taking) && !was {
		s.st.prunes.due(s.owner.UID)
	}
}

// MarkDeprecated gives LabelDeprecated to the cached versions that are deprecated without it
// (written by an operator before the label existed); the cache then lets them go. It returns how
// many it marked.
func (s *Secret) MarkDeprecated(ctx context.Context) (int, error) {
	n := 0
	for i := range s.versions {
		v := &s.versions[i]
		if objects.IsMarkedDeprecated(v) {
			continue
		}
		orig := v.DeepCopy()
		if s.markDeprecated(v); !objects.IsMarkedDeprecated(v) {
			continue
		}
		if err := s.patch(ctx, v, orig); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
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
