package kmsv2

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// cache holds unwrapped data keys, keyed by a SHA-256 of the wrapped key and the associated data
// (so only the exact wrapped key, for the exact record whose binding it passed, hits). Entries
// live for ttl from when they were added; when it is full the oldest entry goes. A removed entry's
// key bytes are zeroed. Only keys that passed the binding check after a successful Decrypt are
// added: failures are never cached. A nil *cache caches nothing.
type cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*list.Element
	order   *list.List // of *cacheEntry, oldest first
}

type cacheEntry struct {
	key     [sha256.Size]byte
	value   []byte
	expires time.Time
}

func newCache(ttl time.Duration, maxEntries int, now func() time.Time) *cache {
	return &cache{ttl: ttl, max: maxEntries, now: now, entries: map[[sha256.Size]byte]*list.Element{}, order: list.New()}
}

func cacheKey(wrapped, aad []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte("kube-secrets-manager.io/kmsv2/cache/v1\x00"))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(wrapped))))
	h.Write(wrapped)
	h.Write(aad)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get returns a copy of the cached value (the caller may clear it), if it is there and fresh.
func (c *cache) get(k [sha256.Size]byte) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		return nil, false
	}
	return bytes.Clone(e.value), true
}

// put stores a copy of value.
func (c *cache) put(k [sha256.Size]byte, value []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if el, ok := c.entries[k]; ok {
		c.removeLocked(el)
	}
	// Entries are in the order they were added and share one ttl, so the expired ones are first.
	for el := c.order.Front(); el != nil && !now.Before(el.Value.(*cacheEntry).expires); el = c.order.Front() {
		c.removeLocked(el)
	}
	for c.order.Len() >= c.max {
		c.removeLocked(c.order.Front())
	}
	c.entries[k] = c.order.PushBack(&cacheEntry{key: k, value: bytes.Clone(value), expires: now.Add(c.ttl)})
}

// len is the number of entries, expired ones included until they are removed.
func (c *cache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// purge removes (and zeroes) every entry.
func (c *cache) purge() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.order.Front(); el != nil; el = c.order.Front() {
		c.removeLocked(el)
	}
}

func (c *cache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	clear(e.value)
	c.order.Remove(el)
	delete(c.entries, e.key)
}
