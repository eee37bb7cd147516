// Package readyourwrites lets a reconciler wait for its own last write to an object to reach the
// informer cache. A reconcile that starts before that (the write's own side effects wake it at
// once) would compute from the older object and end in a conflict, repeating its Events. Within
// one resource, resourceVersions compare as integers; a memory older than For is dropped, so an
// answer the cache never gets cannot stall an object.
package readyourwrites

import (
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
)

// For is how long a reconcile waits at most for its own last write to be cached.
const For = 5 * time.Second

// Tracker remembers, per object, the resourceVersion the last write in a reconcile returned.
type Tracker struct {
	m       sync.Map
	records atomic.Int64
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

type written struct {
	resourceVersion string
	at              time.Time
}

func (t *Tracker) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Record remembers the object's resourceVersion after a reconcile if the reconcile changed it
// (from read); an object being deleted is forgotten.
func (t *Tracker) Record(key types.NamespacedName, resourceVersion, read string, deleting bool) {
	if deleting {
		t.m.Delete(key)
		return
	}
	if resourceVersion == "" || resourceVersion == read {
		return
	}
	t.m.Store(key, written{resourceVersion: resourceVersion, at: t.now()})
	if t.records.Add(1)%1024 == 0 {
		t.sweep() // most entries are never looked at again: memory stays flat
	}
}

// Behind reports whether the cached resourceVersion is older than the last write recorded.
func (t *Tracker) Behind(key types.NamespacedName, cached string) bool {
	v, ok := t.m.Load(key)
	if !ok {
		return false
	}
	last := v.(written)
	cmp, err := resourceversion.CompareResourceVersion(last.resourceVersion, cached)
	if err != nil || cmp <= 0 || t.now().Sub(last.at) > For {
		t.m.CompareAndDelete(key, v)
		return false
	}
	return true
}

// Len is how many objects are remembered.
func (t *Tracker) Len() int {
	n := 0
	t.m.Range(func(_, _ any) bool { n++; return true })
	return n
}

func (t *Tracker) sweep() {
	now := t.now()
	t.m.Range(func(k, v any) bool {
		if now.Sub(v.(written).at) > For {
			t.m.CompareAndDelete(k, v)
		}
		return true
	})
}
