// Package keyring is the default key provider: a keyring of 256-bit key-encryption keys, kept as
// JSON in a Secret in the operator's namespace. Key ids are "key-N" with N counting up from a
// number stored in the keyring itself, so an id is never reused even after a key is removed.
package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
)

// DataKey is the key under which the keyring is stored in its Secret.
const DataKey = "keyring.json"

const (
	keySize        = 32
	wrapFormatV1   = 0x01
	wrapNonceSize  = 12
	wrapTagSize    = 16
	wrappedKeySize = 1 + wrapNonceSize + keySize + wrapTagSize
)

// Errors that name the problem without any key material.
var (
	ErrUnknownKey       = errors.New("unknown key id")
	ErrInvalidKeyring   = errors.New("the keyring is not valid")
	ErrMalformedWrapped = errors.New("malformed wrapped key")
)

// Key is one key-encryption key.
type Key struct {
	ID       string    `json:"id"`
	Material []byte    `json:"material"`
	Created  time.Time `json:"created"`
}

// Keyring is the stored form.
type Keyring struct {
	Primary    string `json:"primary"`
	LastNumber int    `json:"lastNumber"`
	Keys       []Key  `json:"keys"`
	// Retired are ids of keys removed once nothing used them.
	Retired []string `json:"retired,omitempty"`
}

// New returns a keyring with one fresh primary key.
func New(now time.Time) (*Keyring, error) {
	k := &Keyring{}
	if _, err := k.AddPrimary(now); err != nil {
		return nil, err
	}
	return k, nil
}

// Parse reads and checks a stored keyring.
func Parse(data []byte) (*Keyring, error) {
	var k Keyring
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, ErrInvalidKeyring
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return &k, nil
}

// Marshal returns the stored form.
func (k *Keyring) Marshal() ([]byte, error) { return json.Marshal(k) }

// Validate checks that ids are unique, keys are 256 bits, and the primary exists.
func (k *Keyring) Validate() error {
	seen := map[string]bool{}
	for _, key := range k.Keys {
		if key.ID == "" || seen[key.ID] || len(key.Material) != keySize {
			return ErrInvalidKeyring
		}
		seen[key.ID] = true
	}
	if !seen[k.Primary] {
		return fmt.Errorf("%w: primary key %q is missing", ErrInvalidKeyring, k.Primary)
	}
	for _, id := range k.Retired {
		if seen[id] {
			return fmt.Errorf("%w: key %q is both held and retired", ErrInvalidKeyring, id)
		}
	}
	return nil
}

// AddPrimary adds a fresh key, makes it primary and returns its id.
func (k *Keyring) AddPrimary(now time.Time) (string, error) {
	material := make([]byte, keySize)
	if _, err := io.ReadFull(rand.Reader, material); err != nil {
		return "", err
	}
	k.LastNumber++
	id := fmt.Sprintf("key-%d", k.LastNumber)
	k.Keys = append(k.Keys, Key{ID: id, Material: material, Created: now.UTC()})
	k.Primary = id
	return id, nil
}

func (k *Keyring) key(id string) []byte {
	for _, key := range k.Keys {
		if key.ID == id {
			return key.Material
		}
	}
	return nil
}

// Provider is an envelope.KeyProvider over a keyring. When asked for a key id it does not have, it
// reloads the keyring once (another replica may have added a key), at most every reloadEvery.
type Provider struct {
	mu         sync.RWMutex
	ring       *Keyring
	reload     func(context.Context) (*Keyring, error)
	lastReload time.Time
}

const reloadEvery = 30 * time.Second

// NewProvider returns a provider; reload may be nil.
func NewProvider(ring *Keyring, reload func(context.Context) (*Keyring, error)) *Provider {
	return &Provider{ring: ring, reload: reload}
}

var _ envelope.KeyProvider = (*Provider)(nil)

// Wrap wraps dataKey with keyRef ("" for the primary key).
func (p *Provider) Wrap(ctx context.Context, keyRef string, dataKey, aad []byte) (string, []byte, error) {
	id, kek, err := p.lookup(ctx, keyRef)
	if err != nil {
		return "", nil, err
	}
	nonce, ct, err := envelope.SealWithKey(kek, dataKey, wrapAAD(id, aad))
	if err != nil {
		return "", nil, err
	}
	out := make([]byte, 0, wrappedKeySize)
	out = append(out, wrapFormatV1)
	out = append(out, nonce...)
	return id, append(out, ct...), nil
}

// Unwrap reverses Wrap.
func (p *Provider) Unwrap(ctx context.Context, keyID string, wrapped, aad []byte) ([]byte, error) {
	nonce, ct, err := DecodeWrappedKey(wrapped)
	if err != nil {
		return nil, err
	}
	if keyID == "" {
		return nil, ErrUnknownKey
	}
	_, kek, err := p.lookup(ctx, keyID)
	if err != nil {
		return nil, err
	}
	return envelope.OpenWithKey(kek, nonce, ct, wrapAAD(keyID, aad))
}

// DecodeWrappedKey splits a wrapped key into its nonce and ciphertext, checking format and size.
func DecodeWrappedKey(wrapped []byte) (nonce, ciphertext []byte, err error) {
	if len(wrapped) != wrappedKeySize || wrapped[0] != wrapFormatV1 {
		return nil, nil, ErrMalformedWrapped
	}
	return wrapped[1 : 1+wrapNonceSize], wrapped[1+wrapNonceSize:], nil
}

func (p *Provider) lookup(ctx context.Context, keyRef string) (string, []byte, error) {
	p.mu.RLock()
	id, kek := p.find(keyRef)
	canReload := p.reload != nil && time.Since(p.lastReload) > reloadEvery
	p.mu.RUnlock()
	if kek != nil || !canReload {
		if kek == nil {
			return "", nil, ErrUnknownKey
		}
		return id, kek, nil
	}
	ring, err := p.reload(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastReload = time.Now()
	if err == nil && ring != nil && Successor(p.ring, ring) == nil {
		p.ring = ring
	}
	id, kek = p.find(keyRef)
	if kek == nil {
		return "", nil, ErrUnknownKey
	}
	return id, kek, nil
}

func (p *Provider) find(keyRef string) (string, []byte) {
	id := keyRef
	if id == "" {
		id = p.ring.Primary
	}
	return id, p.ring.key(id)
}

// The wrapping binds the key id and the value's binding, so a wrapped key moved to another key id
// or another version fails to unwrap.
func wrapAAD(keyID string, aad []byte) []byte {
	out := []byte("kube-secrets-manager.io/keyring/v1\x00" + keyID + "\x00")
	return append(out, aad...)
}

// ErrReplaced says a stored keyring is not a successor of the one in use: keys are missing that
// were not retired, or the key counter went back. It is never adopted.
var ErrReplaced = errors.New("the stored keyring is not the one in use: keys are missing or the key counter went back (was the keyring Secret replaced?)")

// Successor checks that next can follow prev: the counter never goes back, and every key of prev
// is still there unless next records it as retired.
func Successor(prev, next *Keyring) error {
	if prev == nil {
		return nil
	}
	if next.LastNumber < prev.LastNumber {
		return ErrReplaced
	}
	for _, k := range prev.Keys {
		if next.key(k.ID) == nil && !slices.Contains(next.Retired, k.ID) {
			return fmt.Errorf("%w: key %s is missing", ErrReplaced, k.ID)
		}
		if m := next.key(k.ID); m != nil && !bytes.Equal(m, k.Material) {
			return fmt.Errorf("%w: key %s has other material", ErrReplaced, k.ID)
		}
	}
	return nil
}

// Retire removes a key that is not the primary; its id is remembered, never reused.
func (k *Keyring) Retire(id string) error {
	if id == k.Primary {
		return fmt.Errorf("%s is the primary key and cannot be retired", id)
	}
	i := slices.IndexFunc(k.Keys, func(x Key) bool { return x.ID == id })
	if i < 0 {
		return fmt.Errorf("%w %s", ErrUnknownKey, id)
	}
	clear(k.Keys[i].Material)
	k.Keys = slices.Delete(k.Keys, i, i+1)
	k.Retired = append(k.Retired, id)
	return nil
}

// KeyIDs are the ids of the keys held.
func (k *Keyring) KeyIDs() []string {
	out := make([]string, 0, len(k.Keys))
	for _, key := range k.Keys {
		out = append(out, key.ID)
	}
	return out
}

// Clone is a deep copy.
func (k *Keyring) Clone() *Keyring {
	out := &Keyring{Primary: k.Primary, LastNumber: k.LastNumber, Retired: slices.Clone(k.Retired)}
	for _, key := range k.Keys {
		key.Material = bytes.Clone(key.Material)
		out.Keys = append(out.Keys, key)
	}
	return out
}

// PrimaryKeyID is the key new data keys are wrapped with.
func (p *Provider) PrimaryKeyID(context.Context) (string, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.ring.Primary, nil
}

// Ring is a copy of the keyring in use.
func (p *Provider) Ring() *Keyring {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.ring.Clone()
}

// Use adopts ring, which must be a successor of the one in use (Successor).
func (p *Provider) Use(ring *Keyring) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := Successor(p.ring, ring); err != nil {
		return err
	}
	p.ring = ring
	return nil
}
