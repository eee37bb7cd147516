// Package stages implements AWS Secrets Manager's staging-label rules for the versions of one
// secret: each label on at most one version, exactly one AWSCURRENT once any version exists,
// AWSPREVIOUS following AWSCURRENT, at most 20 labels in all, and unlabelled (deprecated) versions
// pruned beyond a cap but never while younger than 24 hours.
//
// The functions are pure: they take the versions' labels and return the new labels, so callers
// write only what changed.
package stages

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// AWS's labels.
const (
	Current  = "AWSCURRENT"
	Pending  = "AWSPENDING"
	Previous = "AWSPREVIOUS"
)

// Limits from AWS.
const (
	// MaxLabels is the most staging labels a secret may carry across all its versions.
	MaxLabels = 20
	// MaxLabelLength is the longest label.
	MaxLabelLength = 256
	// DeprecatedCap is how many deprecated versions are kept before the oldest are pruned.
	DeprecatedCap = 100
	// MinPruneAge protects recent versions from pruning.
	MinPruneAge = 24 * time.Hour
)

// Errors returned by the transitions; each is safe to show to a user.
var (
	ErrUnknownVersion   = errors.New("no such version")
	ErrVersionExists    = errors.New("a version with this id already exists")
	ErrNoCurrent        = errors.New("the operation would leave the secret without an AWSCURRENT version")
	ErrTooManyLabels    = errors.New("a secret can have at most 20 staging labels across all versions")
	ErrInvalidLabel     = errors.New("a staging label must be 1 to 256 characters")
	ErrLabelElsewhere   = errors.New("the label is attached to another version; name that version as the one to remove it from")
	ErrLabelNotOnSource = errors.New("the label is not attached to the version named to remove it from")
	ErrNothingToMove    = errors.New("name a version to move the label to, or one to remove it from")
)

// Version is one version's id, creation time and labels.
type Version struct {
	ID      string
	Created time.Time
	Labels  []string
}

// Set is the versions of one secret, keyed by version id. Labels are kept sorted.
type Set map[string][]string

// FromVersions builds a Set from versions.
func FromVersions(vs []Version) Set {
	s := make(Set, len(vs))
	for _, v := range vs {
		s[v.ID] = normalize(v.Labels)
	}
	return s
}

// Clone returns a deep copy.
func (s Set) Clone() Set {
	c := make(Set, len(s))
	for id, ls := range s {
		c[id] = slices.Clone(ls)
	}
	return c
}

// Holder returns the version holding label, or "".
func (s Set) Holder(label string) string {
	for _, id := range s.ids() {
		if slices.Contains(s[id], label) {
			return id
		}
	}
	return ""
}

// Validate checks the invariants: each label on at most one version, exactly one AWSCURRENT when
// any version exists, at most MaxLabels labels, each 1-256 characters.
func (s Set) Validate() error {
	seen := map[string]string{}
	total := 0
	for _, id := range s.ids() {
		for _, l := range s[id] {
			if len(l) == 0 || len(l) > MaxLabelLength {
				return ErrInvalidLabel
			}
			if other, ok := seen[l]; ok {
				return fmt.Errorf("label %s is attached to versions %s and %s", l, other, id)
			}
			seen[l] = id
			total++
		}
	}
	if total > MaxLabels {
		return ErrTooManyLabels
	}
	if len(s) > 0 && seen[Current] == "" {
		return ErrNoCurrent
	}
	return nil
}

// Put adds a new version (PutSecretValue, or the first value of CreateSecret) and attaches labels
// to it. With no labels it gets AWSCURRENT. Each attached label leaves the version that held it;
// when AWSCURRENT moves, AWSPREVIOUS moves to the version that lost it, and that version also loses
// AWSPENDING (AWS's observed behaviour after a finished rotation).
func (s Set) Put(id string, labels []string) (Set, error) {
	if _, ok := s[id]; ok {
		return nil, ErrVersionExists
	}
	if len(labels) == 0 {
		labels = []string{Current}
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > MaxLabelLength {
			return nil, ErrInvalidLabel
		}
	}
	n := s.Clone()
	n[id] = nil
	for _, l := range normalize(labels) {
		n.attach(l, id, true)
	}
	if len(s) == 0 && n.Holder(Current) == "" {
		return nil, ErrNoCurrent
	}
	return n, n.Validate()
}

// Move is UpdateSecretVersionStage: attach label to moveTo and/or remove it from removeFrom.
// Moving a label that another version holds requires naming that version in removeFrom.
func (s Set) Move(label, moveTo, removeFrom string) (Set, error) {
	if len(label) == 0 || len(label) > MaxLabelLength {
		return nil, ErrInvalidLabel
	}
	if moveTo == "" && removeFrom == "" {
		return nil, ErrNothingToMove
	}
	if moveTo != "" {
		if _, ok := s[moveTo]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrUnknownVersion, moveTo)
		}
	}
	if removeFrom != "" {
		if _, ok := s[removeFrom]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrUnknownVersion, removeFrom)
		}
		if !slices.Contains(s[removeFrom], label) {
			return nil, ErrLabelNotOnSource
		}
	}
	holder := s.Holder(label)
	if moveTo != "" && holder != "" && holder != moveTo && holder != removeFrom {
		return nil, ErrLabelElsewhere
	}
	n := s.Clone()
	switch moveTo {
	case "":
		if label == Current {
			return nil, ErrNoCurrent
		}
		n[removeFrom] = without(n[removeFrom], label)
	case holder:
		// Already there: a no-op, as in AWS.
	default:
		n.attach(label, moveTo, false)
	}
	return n, n.Validate()
}

// Finish is the finishSecret step: AWSCURRENT moves to the pending version, AWSPREVIOUS follows,
// and AWSPENDING is removed.
func (s Set) Finish(pendingID string) (Set, error) {
	if _, ok := s[pendingID]; !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownVersion, pendingID)
	}
	n := s.Clone()
	if n.Holder(Current) != pendingID {
		n.attach(Current, pendingID, false)
	}
	if h := n.Holder(Pending); h != "" {
		n[h] = without(n[h], Pending)
	}
	return n, n.Validate()
}

// attach puts label on id, removing it from any other version, and applies the AWSPREVIOUS rule.
// dropPending is AWS's observed behaviour for PutSecretValue: the version losing AWSCURRENT loses
// AWSPENDING too.
func (s Set) attach(label, id string, dropPending bool) {
	from := s.Holder(label)
	if from == id {
		return
	}
	if from != "" {
		s[from] = without(s[from], label)
	}
	s[id] = normalize(append(s[id], label))
	if label == Current && from != "" {
		if p := s.Holder(Previous); p != "" {
			s[p] = without(s[p], Previous)
		}
		if dropPending {
			s[from] = without(s[from], Pending)
		}
		s[from] = normalize(append(s[from], Previous))
	}
}

// Changed returns the ids whose labels differ between s and n, sorted.
func Changed(s, n Set) []string {
	var ids []string
	for id, ls := range n {
		if old, ok := s[id]; !ok || !slices.Equal(old, ls) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// UnfinishedPending returns the version holding AWSPENDING without AWSCURRENT, if any: a rotation
// in progress or one that failed, which the next attempt reuses.
func UnfinishedPending(vs []Version) string {
	for _, v := range vs {
		if slices.Contains(v.Labels, Pending) && !slices.Contains(v.Labels, Current) {
			return v.ID
		}
	}
	return ""
}

// Prunable returns the deprecated versions to delete: while more than keep versions have no label,
// the oldest that are at least MinPruneAge old go. Labelled versions are never returned.
func Prunable(vs []Version, keep int, now time.Time) []string {
	var deprecated []Version
	for _, v := range vs {
		if len(v.Labels) == 0 {
			deprecated = append(deprecated, v)
		}
	}
	excess := len(deprecated) - keep
	if excess <= 0 {
		return nil
	}
	sort.SliceStable(deprecated, func(i, j int) bool {
		if deprecated[i].Created.Equal(deprecated[j].Created) {
			return deprecated[i].ID < deprecated[j].ID
		}
		return deprecated[i].Created.Before(deprecated[j].Created)
	})
	var out []string
	for _, v := range deprecated {
		if excess == 0 {
			break
		}
		if now.Sub(v.Created) < MinPruneAge {
			// The list is oldest first, so every later one is younger still.
			break
		}
		out = append(out, v.ID)
		excess--
	}
	return out
}

func (s Set) ids() []string {
	ids := make([]string, 0, len(s))
	for id := range s {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func without(ls []string, label string) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		if l != label {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func normalize(ls []string) []string {
	if len(ls) == 0 {
		return nil
	}
	out := slices.Clone(ls)
	sort.Strings(out)
	return slices.Compact(out)
}

// MidFinish recognises a finishSecret that stopped half-way: the pending version was given
// AWSCURRENT (keeping AWSPENDING) while the old current still holds AWSCURRENT. It returns the
// pending version's id and the labels as they were before the finish started, so the finish can
// be completed with Finish.
func (s Set) MidFinish() (string, Set) {
	var holders []string
	for _, id := range s.ids() {
		if slices.Contains(s[id], Current) {
			holders = append(holders, id)
		}
	}
	if len(holders) != 2 {
		return "", nil
	}
	for i, id := range holders {
		if slices.Contains(s[id], Pending) && !slices.Contains(s[holders[1-i]], Pending) {
			before := s.Clone()
			before[id] = without(before[id], Current)
			return id, before
		}
	}
	return "", nil
}

// Write is one label write of a plan: a version's labels, and whether it carries the mark that
// says AWSCURRENT is moving to it.
type Write struct {
	ID     string
	Labels []string
	Marked bool
}

// WritePlan orders the writes that take the labels from "from" to "to" so that a crash after any
// prefix leaves a state Recover repairs: no label but AWSCURRENT is ever on two versions, and while
// two versions hold AWSCURRENT the one gaining it is marked. The order: the gaining version takes
// AWSCURRENT (marked) and drops what it loses; versions that only lose labels; versions that gain
// labels; the gaining version's final labels, unmarked.
func WritePlan(from, to Set, gaining string) []Write {
	var plan []Write
	if gaining != "" && !slices.Contains(from[gaining], Current) {
		kept := []string{Current}
		for _, l := range from[gaining] {
			if slices.Contains(to[gaining], l) {
				kept = append(kept, l)
			}
		}
		plan = append(plan, Write{ID: gaining, Labels: normalize(kept), Marked: true})
	}
	var losers, gainers []string
	for _, id := range Changed(from, to) {
		if id == gaining {
			continue
		}
		onlyLoses := true
		for _, l := range to[id] {
			if !slices.Contains(from[id], l) {
				onlyLoses = false
			}
		}
		if onlyLoses {
			losers = append(losers, id)
		} else {
			gainers = append(gainers, id)
		}
	}
	for _, id := range append(losers, gainers...) {
		plan = append(plan, Write{ID: id, Labels: to[id]})
	}
	if gaining != "" {
		plan = append(plan, Write{ID: gaining, Labels: to[gaining]})
	}
	return plan
}

// KeepMark drops a plan's last write when all it would do is take the mark off the version gaining
// AWSCURRENT (its labels being final already): one write fewer per move. The mark left on the sole
// AWSCURRENT holder is harmless: Recover acts only while two versions hold AWSCURRENT, a later
// move marks its gaining version with a higher number (Recover prefers it), and the version loses
// the mark with the write that takes AWSCURRENT from it.
func KeepMark(from Set, plan []Write, gaining string) []Write {
	if gaining == "" || len(plan) == 0 {
		return plan
	}
	last := plan[len(plan)-1]
	if last.ID != gaining || last.Marked {
		return plan
	}
	before, marked := from[gaining], false
	for _, w := range plan[:len(plan)-1] {
		if w.ID == gaining {
			before, marked = w.Labels, w.Marked
		}
	}
	if !marked || !slices.Equal(normalize(before), normalize(last.Labels)) {
		return plan
	}
	return plan[:len(plan)-1]
}

// Recover repairs a state an interrupted WritePlan left: when two versions hold AWSCURRENT and one
// carries the newer mark, AWSCURRENT moves to it (AWSPREVIOUS following) as the plan intended.
// marks holds the marked versions' numbers (higher is newer; a mark KeepMark left is older than
// the mark of any move after it). Equal marks (two moves in the same nanosecond, or a clock that
// went back) cannot tell which move came last: the greater version id takes AWSCURRENT, so every
// reconcile and replica repairs alike instead of leaving two holders. It returns the repaired
// labels, or nil when there is nothing to repair.
func Recover(s Set, marks map[string]int64) Set {
	var holders []string
	for _, id := range s.ids() {
		if slices.Contains(s[id], Current) {
			holders = append(holders, id)
		}
	}
	if len(holders) != 2 {
		return nil
	}
	for i, id := range holders {
		mine, marked := marks[id]
		theirs, otherMarked := marks[holders[1-i]]
		if marked && (!otherMarked || mine > theirs || (mine == theirs && id > holders[1-i])) {
			before := s.Clone()
			before[id] = without(before[id], Current)
			out, err := before.Move(Current, id, holders[1-i])
			if err != nil {
				return nil
			}
			return out
		}
	}
	return nil
}

// Complete finishes a label change that was interrupted: version id is to end with exactly the
// labels intended, each taken from wherever it is now (AWSPREVIOUS following AWSCURRENT), and the
// labels it should not have removed. It is how an interrupted put or stage move is resumed.
func (s Set) Complete(id string, intended []string) (Set, error) {
	if _, ok := s[id]; !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownVersion, id)
	}
	n := s.Clone()
	// Whatever else holds AWSCURRENT besides id (a half-done move) is where AWSCURRENT comes from.
	if slices.Contains(intended, Current) {
		for _, other := range n.ids() {
			if other != id && slices.Contains(n[other], Current) && slices.Contains(n[id], Current) {
				n[id] = without(n[id], Current)
			}
		}
	}
	for _, l := range normalize(intended) {
		if !slices.Contains(n[id], l) {
			n.attach(l, id, false)
		}
	}
	for _, l := range n[id] {
		if !slices.Contains(intended, l) && l != Current {
			n[id] = without(n[id], l)
		}
	}
	return n, n.Validate()
}
