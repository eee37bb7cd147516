// Package envelope seals secret values the way AWS does with KMS: each version gets a fresh 256-bit
// data key, the value is sealed with AES-256-GCM, and the data key is wrapped by a key-encryption
// key from a KeyProvider. The associated data binds a ciphertext to its namespace, ManagedSecret
// name and stable id, version id and value kind, so a payload copied to another record or version,
// or read as the other kind, fails to open.
package envelope

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
)

// Algorithm is the only value algorithm.
const Algorithm = "AES-256-GCM"

const (
	dataKeySize = 32
	nonceSize   = 12
)

// ErrDecrypt is the one error every failure to open a payload returns: which check failed is
// deliberately not said, and no byte of the payload is included.
var ErrDecrypt = errors.New("the version's payload failed authentication: it was altered, copied from another secret or version, or its key is not available")

// ErrUnavailable is what a key provider's error wraps when the provider could not answer (a KMS
// plugin down or slow): nothing is known about the payload, so callers fail closed and retry,
// rather than report it as altered.
var ErrUnavailable = errors.New("the key provider is not available")

// IsUnavailable reports whether err says the key provider could not answer.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// PrimaryKeyer is a provider that can say which key it wraps new data keys with (and so which
// versions a key rotation still has to re-wrap).
type PrimaryKeyer interface {
	PrimaryKeyID(ctx context.Context) (string, error)
}

// Binding is the identity a ciphertext is bound to.
type Binding struct {
	Namespace string
	Name      string
	// SecretID is the secret's stable id (kept on the ManagedSecret, so it survives a backup and
	// restore, unlike the UID). Bindings of format 1 bound the UID in its place.
	SecretID  string
	VersionID string
	// Binary says the value is a SecretBinary rather than a SecretString; a value cannot be read
	// back as the other kind.
	Binary bool
	// Format is 2 for everything written now; 1 for versions written before the stable id and the
	// value kind were bound (SecretID then holds the ManagedSecret's UID, and Binary is false).
	Format int
}

// Binding formats.
const (
	FormatV1 = 1
	FormatV2 = 2
)

// AAD encodes the binding unambiguously: a context string naming the format, then each field
// length-prefixed.
func (b Binding) AAD() []byte {
	fields := []string{b.Namespace, b.Name, b.SecretID, b.VersionID}
	out := []byte("kube-secrets-manager.io/envelope/v1")
	if b.Format != FormatV1 {
		kind := "string"
		if b.Binary {
			kind = "binary"
		}
		out = []byte("kube-secrets-manager.io/envelope/v2")
		fields = append(fields, kind)
	}
	for _, f := range fields {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

// KeyProvider wraps and unwraps data keys with key-encryption keys it holds. keyRef selects a key
// ("" means the provider's primary key). aad must be bound into the wrapping.
type KeyProvider interface {
	Wrap(ctx context.Context, keyRef string, dataKey, aad []byte) (keyID string, wrapped []byte, err error)
	Unwrap(ctx context.Context, keyID string, wrapped, aad []byte) ([]byte, error)
}

// Sealed is an encrypted value and everything needed to open it.
type Sealed struct {
	Algorithm  string
	KeyID      string
	WrappedKey []byte
	Nonce      []byte
	Ciphertext []byte
}

// Seal encrypts plaintext under a fresh data key wrapped by keyRef.
func Seal(ctx context.Context, kp KeyProvider, keyRef string, b Binding, plaintext []byte) (Sealed, error) {
	dataKey := make([]byte, dataKeySize)
	if _, err := io.ReadFull(rand.Reader, dataKey); err != nil {
		return Sealed{}, err
	}
	defer clear(dataKey)
	aad := b.AAD()
	keyID, wrapped, err := kp.Wrap(ctx, keyRef, dataKey, aad)
	if err != nil {
		return Sealed{}, err
	}
	nonce, ct, err := sealWith(dataKey, plaintext, aad)
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{Algorithm: Algorithm, KeyID: keyID, WrappedKey: wrapped, Nonce: nonce, Ciphertext: ct}, nil
}

// Open decrypts s for the binding b. Any mismatch returns ErrDecrypt.
func Open(ctx context.Context, kp KeyProvider, b Binding, s Sealed) ([]byte, error) {
	if s.Algorithm != Algorithm || len(s.Nonce) != nonceSize || s.KeyID == "" {
		return nil, ErrDecrypt
	}
	aad := b.AAD()
	dataKey, err := kp.Unwrap(ctx, s.KeyID, s.WrappedKey, aad)
	if IsUnavailable(err) {
		return nil, err
	}
	if err != nil || len(dataKey) != dataKeySize {
		return nil, ErrDecrypt
	}
	defer clear(dataKey)
	pt, err := openWith(dataKey, s.Nonce, s.Ciphertext, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Rewrap re-wraps s's data key under keyRef (for example a new primary key) without touching the
// ciphertext.
func Rewrap(ctx context.Context, kp KeyProvider, keyRef string, b Binding, s Sealed) (Sealed, error) {
	aad := b.AAD()
	dataKey, err := kp.Unwrap(ctx, s.KeyID, s.WrappedKey, aad)
	if IsUnavailable(err) {
		return Sealed{}, err
	}
	if err != nil || len(dataKey) != dataKeySize {
		return Sealed{}, ErrDecrypt
	}
	defer clear(dataKey)
	keyID, wrapped, err := kp.Wrap(ctx, keyRef, dataKey, aad)
	if err != nil {
		return Sealed{}, err
	}
	s.KeyID, s.WrappedKey = keyID, wrapped
	return s, nil
}

// SealWithKey is AES-256-GCM with a random nonce; key providers use it to wrap data keys.
func SealWithKey(key, plaintext, aad []byte) (nonce, ciphertext []byte, err error) {
	return sealWith(key, plaintext, aad)
}

// OpenWithKey reverses SealWithKey.
func OpenWithKey(key, nonce, ciphertext, aad []byte) ([]byte, error) {
	return openWith(key, nonce, ciphertext, aad)
}

func sealWith(key, plaintext, aad []byte) ([]byte, []byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, nonceSize)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, nil, err
	}
	return nonce, gcm.Seal(nil, nonce, plaintext, aad), nil
}

func openWith(key, nonce, ciphertext, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != gcm.NonceSize() {
		return nil, ErrDecrypt
	}
	return gcm.Open(nil, nonce, ciphertext, aad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != dataKeySize {
		return nil, ErrDecrypt
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Migrating wraps with New and unwraps each key id with the provider that owns it, so versions
// sealed by an earlier provider (the local keyring before a KMS) stay readable while the key
// custodian re-wraps them onto New's primary key.
type Migrating struct {
	New KeyProvider
	Old KeyProvider
	// NewOwns reports whether a key id is New's.
	NewOwns func(keyID string) bool
}

// Wrap wraps with New.
func (m Migrating) Wrap(ctx context.Context, keyRef string, dataKey, aad []byte) (string, []byte, error) {
	return m.New.Wrap(ctx, keyRef, dataKey, aad)
}

// Unwrap unwraps with the provider owning keyID.
func (m Migrating) Unwrap(ctx context.Context, keyID string, wrapped, aad []byte) ([]byte, error) {
	if m.NewOwns(keyID) || m.Old == nil {
		return m.New.Unwrap(ctx, keyID, wrapped, aad)
	}
	return m.Old.Unwrap(ctx, keyID, wrapped, aad)
}

// PrimaryKeyID is New's.
func (m Migrating) PrimaryKeyID(ctx context.Context) (string, error) {
	p, ok := m.New.(PrimaryKeyer)
	if !ok {
		return "", errors.New("the key provider cannot say its primary key")
	}
	return p.PrimaryKeyID(ctx)
}
