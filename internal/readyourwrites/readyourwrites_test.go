package readyourwrites

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestBehind(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	for _, tc := range []struct {
		name        string
		written     string // resourceVersion after the reconcile ("" = no reconcile)
		read        string // resourceVersion the reconcile read
		deleting    bool
		cached      string
		after       time.Duration
		wantBehind  bool
		wantTracked int // entries left after Behind
	}{
		{name: "nothing written", cached: "10"},
		{name: "no change in the reconcile", written: "10", read: "10", cached: "10"},
		{name: "cache older than the write", written: "12", read: "10", cached: "10", wantBehind: true, wantTracked: 1},
		{name: "cache caught up", written: "12", read: "10", cached: "12"},
		{name: "cache ahead (someone else wrote since)", written: "12", read: "10", cached: "15"},
		{name: "numeric, not lexical", written: "100", read: "98", cached: "99", wantBehind: true, wantTracked: 1},
		{name: "waited too long", written: "12", read: "10", cached: "10", after: For + time.Second},
		{name: "not a number", written: "abc", read: "10", cached: "10"},
		{name: "being deleted", written: "12", read: "10", deleting: true, cached: "10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			tr := &Tracker{Now: func() time.Time { return now }}
			if tc.written != "" {
				tr.Record(key, tc.written, tc.read, tc.deleting)
			}
			now = now.Add(tc.after)
			if got := tr.Behind(key, tc.cached); got != tc.wantBehind {
				t.Fatalf("Behind = %v, want %v", got, tc.wantBehind)
			}
			if n := tr.Len(); n != tc.wantTracked {
				t.Fatalf("%d entries tracked, want %d", n, tc.wantTracked)
			}
		})
	}
}

func TestOldEntriesAreSwept(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := &Tracker{Now: func() time.Time { return now }}
	for i := 0; i < 1023; i++ {
		tr.Record(types.NamespacedName{Name: fmt.Sprint(i)}, "2", "1", false)
	}
	now = now.Add(For + time.Second)
	tr.Record(types.NamespacedName{Name: "last"}, "2", "1", false) // the 1024th record sweeps
	if n := tr.Len(); n != 1 {
		t.Fatalf("%d entries after the sweep, want 1", n)
	}
}
