package stages

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"
)

func set(kv ...any) Set {
	s := Set{}
	for i := 0; i < len(kv); i += 2 {
		var ls []string
		if kv[i+1] != nil {
			ls = kv[i+1].([]string)
		}
		s[kv[i].(string)] = normalize(ls)
	}
	return s
}

func L(ls ...string) []string { return ls }

func TestPut(t *testing.T) {
	tests := []struct {
		name    string
		start   Set
		id      string
		labels  []string
		want    Set
		wantErr error
	}{
		{"first version gets AWSCURRENT", Set{}, "v1", nil, set("v1", L(Current)), nil},
		{"second moves current and previous follows", set("v1", L(Current)), "v2", nil,
			set("v1", L(Previous), "v2", L(Current)), nil},
		{"third deprecates the first", set("v1", L(Previous), "v2", L(Current)), "v3", nil,
			set("v1", nil, "v2", L(Previous), "v3", L(Current)), nil},
		{"custom labels move, current stays", set("v1", L(Current), "v2", L("one", "two", "three")), "v3", L("one", "two", "four"),
			set("v1", L(Current), "v2", L("three"), "v3", L("four", "one", "two")), nil},
		{"pending moves to the new version", set("v1", L(Previous), "v2", L(Current, Pending)), "v3", L(Pending),
			set("v1", L(Previous), "v2", L(Current), "v3", L(Pending)), nil},
		{"implicit current drops pending from the old current", set("v1", L(Previous), "v2", L(Current, Pending, "keep")), "v3", nil,
			set("v1", nil, "v2", L(Previous, "keep"), "v3", L(Current)), nil},
		{"first version with only a custom label has no current", Set{}, "v1", L("x"), nil, ErrNoCurrent},
		{"duplicate id", set("v1", L(Current)), "v1", nil, nil, ErrVersionExists},
		{"empty label", set("v1", L(Current)), "v2", L(""), nil, ErrInvalidLabel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.start.Put(tt.id, tt.labels)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPutLabelQuota(t *testing.T) {
	s := set("v1", L(Current))
	var labels []string
	// v1 will carry AWSPREVIOUS and v2 AWSCURRENT, leaving room for 18 custom labels.
	for i := 0; i < MaxLabels-2; i++ {
		labels = append(labels, fmt.Sprintf("l%d", i))
	}
	if _, err := s.Put("v2", append(labels, Current)); err != nil {
		t.Fatalf("20 labels must be accepted: %v", err)
	}
	if _, err := s.Put("v2", append(labels, Current, "one-too-many")); !errors.Is(err, ErrTooManyLabels) {
		t.Fatalf("21 labels: err = %v, want ErrTooManyLabels", err)
	}
}

func TestMove(t *testing.T) {
	tests := []struct {
		name            string
		start           Set
		label, to, from string
		want            Set
		wantErr         error
	}{
		{"AWS example: current moves to pending version", set("v1", L(Current), "v2", L(Pending)), Current, "v2", "v1",
			set("v1", L(Previous), "v2", L(Current, Pending)), nil},
		{"rollback moves current back and previous swaps", set("v1", L(Previous), "v2", L(Current)), Current, "v1", "v2",
			set("v1", L(Current), "v2", L(Previous)), nil},
		{"moving a held label without naming its holder fails", set("v1", L(Current), "v2", nil), Current, "v2", "",
			nil, ErrLabelElsewhere},
		{"removing current alone fails", set("v1", L(Current)), Current, "", "v1", nil, ErrNoCurrent},
		{"remove a custom label", set("v1", L(Current, "x")), "x", "", "v1", set("v1", L(Current)), nil},
		{"attach a free custom label", set("v1", L(Current), "v2", nil), "x", "v2", "", set("v1", L(Current), "v2", L("x")), nil},
		{"neither target nor source", set("v1", L(Current)), "x", "", "", nil, ErrNothingToMove},
		{"already there is a no-op", set("v1", L(Current)), Current, "v1", "", set("v1", L(Current)), nil},
		{"unknown target", set("v1", L(Current)), "x", "nope", "", nil, ErrUnknownVersion},
		{"unknown source", set("v1", L(Current)), "x", "v1", "nope", nil, ErrUnknownVersion},
		{"source does not hold the label", set("v1", L(Current), "v2", nil), "x", "v1", "v2", nil, ErrLabelNotOnSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.start.Move(tt.label, tt.to, tt.from)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	got, err := set("v1", L(Previous), "v2", L(Current), "v3", L(Pending)).Finish("v3")
	if err != nil {
		t.Fatal(err)
	}
	want := set("v1", nil, "v2", L(Previous), "v3", L(Current))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Finishing again is idempotent apart from nothing left to move.
	again, err := got.Finish("v3")
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("second finish: %v %v", again, err)
	}
	if _, err := want.Finish("nope"); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("err = %v", err)
	}
}

func TestUnfinishedPending(t *testing.T) {
	if got := UnfinishedPending([]Version{{ID: "a", Labels: L(Current)}, {ID: "b", Labels: L(Pending)}}); got != "b" {
		t.Fatalf("got %q", got)
	}
	if got := UnfinishedPending([]Version{{ID: "a", Labels: L(Current, Pending)}}); got != "" {
		t.Fatalf("a finished rotation is not pending: %q", got)
	}
}

func TestChanged(t *testing.T) {
	a := set("v1", L(Current), "v2", nil)
	b := set("v1", L(Previous), "v2", nil, "v3", L(Current))
	if got := Changed(a, b); !reflect.DeepEqual(got, []string{"v1", "v3"}) {
		t.Fatalf("Changed = %v", got)
	}
}

func TestPrunable(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	old := now.Add(-48 * time.Hour)
	young := now.Add(-time.Hour)
	tests := []struct {
		name string
		vs   []Version
		keep int
		want []string
	}{
		{"under the cap", []Version{{ID: "a", Created: old}, {ID: "b", Created: old}}, 2, nil},
		{"oldest deprecated first", []Version{{ID: "b", Created: old.Add(time.Minute)}, {ID: "a", Created: old}, {ID: "c", Created: old.Add(2 * time.Minute)}}, 1, []string{"a", "b"}},
		{"never a young one", []Version{{ID: "a", Created: old}, {ID: "b", Created: young}, {ID: "c", Created: young}}, 1, []string{"a"}},
		{"never a labelled one", []Version{{ID: "a", Created: old, Labels: L(Current)}, {ID: "b", Created: old, Labels: L("x")}, {ID: "c", Created: old}}, 0, []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Prunable(tt.vs, tt.keep, now); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzTransitions applies random sequences of Put, Move and Finish and checks that every accepted
// result keeps AWS's invariants and that AWSPREVIOUS always follows a moved AWSCURRENT.
func FuzzTransitions(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 1, 0, 1, 2, 2, 3})
	f.Add([]byte{0, 0, 0, 1, 0, 2, 2, 1, 1, 1, 1, 0})
	labels := []string{Current, Pending, Previous, "a", "b"}
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := Set{}
		next := 0
		ids := func(b byte) string {
			if next == 0 {
				return "none"
			}
			return fmt.Sprintf("v%d", int(b)%next)
		}
		for i := 0; i+2 < len(ops) && i < 300; i += 3 {
			var n Set
			var err error
			switch ops[i] % 3 {
			case 0:
				var ls []string
				if ops[i+1]%2 == 1 {
					ls = []string{labels[int(ops[i+2])%len(labels)]}
				}
				n, err = s.Put(fmt.Sprintf("v%d", next), ls)
				if err == nil {
					next++
				}
			case 1:
				from := ""
				if ops[i+2]%3 != 0 {
					from = ids(ops[i+2])
				}
				n, err = s.Move(labels[int(ops[i+1])%len(labels)], ids(ops[i+1]/5), from)
			case 2:
				n, err = s.Finish(ids(ops[i+1]))
			}
			if err != nil {
				continue
			}
			if verr := n.Validate(); verr != nil {
				t.Fatalf("accepted transition broke invariants: %v (%v -> %v)", verr, s, n)
			}
			oldCur, newCur := s.Holder(Current), n.Holder(Current)
			if oldCur != "" && newCur != oldCur && n.Holder(Previous) != oldCur {
				t.Fatalf("AWSCURRENT moved %s -> %s but AWSPREVIOUS is on %q", oldCur, newCur, n.Holder(Previous))
			}
			s = n
		}
	})
}

func TestMidFinish(t *testing.T) {
	start := set("v1", L(Previous), "v2", L(Current), "v3", L(Pending))
	final, _ := start.Finish("v3")
	// Step one of the operator's finish: v3 gains AWSCURRENT while keeping AWSPENDING.
	mid := set("v1", L(Previous), "v2", L(Current), "v3", L(Current, Pending))
	id, before := mid.MidFinish()
	if id != "v3" || !reflect.DeepEqual(before, start) {
		t.Fatalf("MidFinish = %q %v", id, before)
	}
	done, err := before.Finish(id)
	if err != nil || !reflect.DeepEqual(done, final) {
		t.Fatalf("completing gives %v, %v; want %v", done, err, final)
	}
	// Later states are valid sets that Finish completes directly.
	later := set("v1", nil, "v2", L(Previous), "v3", L(Current, Pending))
	if id, _ := later.MidFinish(); id != "" {
		t.Fatal("a valid set is not mid-finish")
	}
	if done, _ := later.Finish("v3"); !reflect.DeepEqual(done, final) {
		t.Fatalf("got %v", done)
	}
	if id, _ := start.MidFinish(); id != "" {
		t.Fatal("a set with one AWSCURRENT is not mid-finish")
	}
}

// Every prefix of every write plan leaves either a valid state or one Recover repairs into the
// intended end state.
func TestWritePlanPrefixesAreRecoverable(t *testing.T) {
	cases := []struct {
		name     string
		from     Set
		op       func(Set) (Set, error)
		gaining  string
		recovers bool // whether a two-AWSCURRENT prefix repairs exactly to the end state
		stale    map[string]int64
	}{
		{"first finish", set("a", L(Current), "p", L(Pending)), func(s Set) (Set, error) { return s.Finish("p") }, "p", true, nil},
		{"later finish", set("o", L(Previous), "a", L(Current), "p", L(Pending)), func(s Set) (Set, error) { return s.Finish("p") }, "p", true, nil},
		{"later finish, other order", set("z", L(Previous), "a", L(Current), "b", L(Pending)), func(s Set) (Set, error) { return s.Finish("b") }, "b", true, nil},
		{"rollback", set("a", L(Previous), "b", L(Current), "c", nil), func(s Set) (Set, error) { return s.Move(Current, "a", "b") }, "a", true, nil},
		{"put", set("a", L(Previous), "b", L(Current), "n", nil), func(s Set) (Set, error) {
			n := s.Clone()
			delete(n, "n")
			return n.Put("n", nil)
		}, "n", true, nil},
		{"custom labels swap", set("a", L(Current, "x"), "b", L("y"), "n", nil), func(s Set) (Set, error) {
			n := s.Clone()
			delete(n, "n")
			return n.Put("n", L("x", "y"))
		}, "", true, nil},
		// b took AWSCURRENT from a earlier and kept that move's mark (KeepMark); AWSCURRENT now
		// goes back to a, whose newer mark must win.
		{"rollback over a kept mark", set("a", L(Previous), "b", L(Current)), func(s Set) (Set, error) { return s.Move(Current, "a", "b") }, "a", true, map[string]int64{"b": 1}},
		{"finish over a kept mark", set("a", L(Current), "p", L(Pending)), func(s Set) (Set, error) { return s.Finish("p") }, "p", true, map[string]int64{"a": 7}},
		{"finish over a mark from before numbers", set("o", L(Previous), "a", L(Current), "p", L(Pending)), func(s Set) (Set, error) { return s.Finish("p") }, "p", true, map[string]int64{"a": 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			to, err := tc.op(tc.from)
			if err != nil {
				t.Fatal(err)
			}
			plan := KeepMark(tc.from, WritePlan(tc.from, to, tc.gaining), tc.gaining)
			next := int64(1)
			for _, n := range tc.stale {
				next = max(next, n+1)
			}
			for n := 0; n <= len(plan); n++ {
				state, marks := tc.from.Clone(), maps.Clone(tc.stale)
				if marks == nil {
					marks = map[string]int64{}
				}
				for _, w := range plan[:n] {
					state[w.ID] = w.Labels
					delete(marks, w.ID)
					if w.Marked {
						marks[w.ID] = next
					}
				}
				if state.Validate() == nil {
					continue
				}
				fixed := Recover(state, marks)
				if fixed == nil {
					t.Fatalf("after %d of %d writes the state %v is invalid and not recoverable", n, len(plan), state)
				}
				if err := fixed.Validate(); err != nil || (tc.recovers && !reflect.DeepEqual(fixed, to)) {
					t.Fatalf("after %d writes, Recover gives %v (%v), want %v", n, fixed, err, to)
				}
			}
			final := tc.from.Clone()
			for _, w := range plan {
				final[w.ID] = w.Labels
			}
			if !reflect.DeepEqual(final, to) {
				t.Fatalf("the plan ends at %v, want %v", final, to)
			}
		})
	}
}

func TestComplete(t *testing.T) {
	tests := []struct {
		name     string
		start    Set
		id       string
		intended []string
		want     Set
	}{
		{"put interrupted before any label", set("a", L(Previous), "b", L(Current), "n", nil), "n", L(Current),
			set("a", nil, "b", L(Previous), "n", L(Current))},
		{"put interrupted with two AWSCURRENT", set("a", L(Previous), "b", L(Current), "n", L(Current)), "n", L(Current),
			set("a", nil, "b", L(Previous), "n", L(Current))},
		{"custom label lost between loser and gainer", set("a", L(Current), "b", nil), "b", L("blue"),
			set("a", L(Current), "b", L("blue"))},
		{"custom labels for a new version", set("a", L(Current, "x"), "n", nil), "n", L("x", "y"),
			set("a", L(Current), "n", L("x", "y"))},
		{"already complete", set("a", L(Previous), "b", L(Current)), "b", L(Current), set("a", L(Previous), "b", L(Current))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.start.Complete(tt.id, tt.intended)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// A finish takes two label writes (three with an AWSPREVIOUS to drop): the pending version keeps
// its mark instead of a third write that only removes it.
func TestKeepMarkDropsAnUnmarkOnlyWrite(t *testing.T) {
	cases := []struct {
		name   string
		from   Set
		id     string
		writes int
	}{
		{"first finish", set("a", L(Current), "p", L(Pending)), "p", 2},
		{"later finish", set("o", L(Previous), "a", L(Current), "p", L(Pending)), "p", 3},
		{"finish of a version holding AWSCURRENT already", set("a", L(Current, Pending)), "a", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			to, err := tc.from.Finish(tc.id)
			if err != nil {
				t.Fatal(err)
			}
			plan := KeepMark(tc.from, WritePlan(tc.from, to, tc.id), tc.id)
			if len(plan) != tc.writes {
				t.Fatalf("plan %+v has %d writes, want %d", plan, len(plan), tc.writes)
			}
			if !plan[0].Marked && tc.writes > 1 {
				t.Fatalf("the first write %+v does not mark the version gaining AWSCURRENT", plan[0])
			}
		})
	}
	// A plan whose last write changes labels keeps it.
	from := set("a", L(Current), "b", L(Current, Pending)) // a finish interrupted half-way
	to, err := Set{"a": nil, "b": L(Pending)}.Finish("b")
	if err != nil {
		t.Fatal(err)
	}
	plan := KeepMark(from, WritePlan(from, to, "b"), "b")
	if last := plan[len(plan)-1]; last.ID != "b" || !reflect.DeepEqual(last.Labels, L(Current)) {
		t.Fatalf("the write dropping AWSPENDING went missing: %+v", plan)
	}
}

// Two AWSCURRENT holders with equal marks (moves in the same nanosecond, or a clock that went
// back): the greater version id takes AWSCURRENT, whichever order the versions are seen in, so
// every reconcile repairs alike; AWSPREVIOUS follows as after any move.
func TestRecoverBreaksATieOfMarksByVersionID(t *testing.T) {
	for _, state := range []Set{
		set("a", L(Current), "b", L(Current)),
		set("b", L(Current), "a", L(Current)),
	} {
		fixed := Recover(state, map[string]int64{"a": 5, "b": 5})
		if want := set("a", L(Previous), "b", L(Current)); !reflect.DeepEqual(fixed, want) {
			t.Fatalf("Recover(%v) with equal marks = %v, want %v", state, fixed, want)
		}
	}
	// A newer mark still wins over a greater id.
	if fixed := Recover(set("a", L(Current), "b", L(Current)), map[string]int64{"a": 6, "b": 5}); fixed.Holder(Current) != "a" {
		t.Fatalf("the newer mark lost: %v", fixed)
	}
}
