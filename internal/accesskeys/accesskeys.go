// Package accesskeys issues the static access keys of the AWS-compatible API: the key id and
// secret, the secret sealed with the operator's key provider (so signatures can be verified), and
// the secret delivered to its creator encrypted to a public key they hold, so it never exists in
// the cluster in plaintext. Pure apart from the key provider.
package accesskeys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
)

const deliveryInfo = "kube-secrets-manager.io/access-key/delivery/v1"

// ErrOpen is the one error of a sealed or delivered key that does not open.
var ErrOpen = errors.New("the access key does not open: altered, for another key, or its key is not available")

var b64 = base64.StdEncoding

// NewID returns an access key id in AWS's form: AKIA and 16 characters of [A-Z2-7].
func NewID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "AKIA" + base32.StdEncoding.EncodeToString(b), nil
}

// NewSecret returns a 40-character secret access key, as AWS's.
func NewSecret() (string, error) {
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return b64.EncodeToString(b), nil
}

func binding(namespace, name, id string) envelope.Binding {
	return envelope.Binding{Namespace: namespace, Name: "accesskey/" + name, SecretID: id, VersionID: "secret-access-key", Format: envelope.FormatV2}
}

// Seal seals a secret access key for the AccessKey namespace/name with the key id bound in.
func Seal(ctx context.Context, kp envelope.KeyProvider, namespace, name, id, secret string) (*v1alpha1.SealedKey, error) {
	s, err := envelope.Seal(ctx, kp, "", binding(namespace, name, id), []byte(secret))
	if err != nil {
		return nil, err
	}
	return &v1alpha1.SealedKey{KeyID: s.KeyID, WrappedKey: b64.EncodeToString(s.WrappedKey), Nonce: b64.EncodeToString(s.Nonce), Ciphertext: b64.EncodeToString(s.Ciphertext)}, nil
}

// Open opens a sealed secret access key.
func Open(ctx context.Context, kp envelope.KeyProvider, namespace, name, id string, k *v1alpha1.SealedKey) (string, error) {
	if k == nil {
		return "", ErrOpen
	}
	wrapped, err1 := b64.DecodeString(k.WrappedKey)
	nonce, err2 := b64.DecodeString(k.Nonce)
	ct, err3 := b64.DecodeString(k.Ciphertext)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", ErrOpen
	}
	plain, err := envelope.Open(ctx, kp, binding(namespace, name, id), envelope.Sealed{Algorithm: envelope.Algorithm, KeyID: k.KeyID, WrappedKey: wrapped, Nonce: nonce, Ciphertext: ct})
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}

// NewRecipient makes an X25519 key pair for receiving a key; the public key goes into the
// AccessKey's spec.recipientPublicKey.
func NewRecipient() (*ecdh.PrivateKey, string, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	return priv, b64.EncodeToString(priv.PublicKey().Bytes()), nil
}

// Deliver encrypts the secret to the recipient's public key, binding the key id.
func Deliver(recipientPublicKey, id, secret string) (*v1alpha1.DeliveredKey, error) {
	raw, err := b64.DecodeString(recipientPublicKey)
	if err != nil {
		return nil, errors.New("spec.recipientPublicKey is not standard base64")
	}
	recipient, err := ecdh.X25519().NewPublicKey(raw)
	if err != nil {
		return nil, errors.New("spec.recipientPublicKey is not an X25519 public key")
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	gcm, err := deliveryAEAD(eph, recipient, eph.PublicKey().Bytes(), raw)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &v1alpha1.DeliveredKey{EphemeralPublicKey: b64.EncodeToString(eph.PublicKey().Bytes()), Nonce: b64.EncodeToString(nonce),
		Ciphertext: b64.EncodeToString(gcm.Seal(nil, nonce, []byte(secret), []byte(id)))}, nil
}

// OpenDelivery opens a delivered key with the recipient's private key.
func OpenDelivery(recipient *ecdh.PrivateKey, id string, d *v1alpha1.DeliveredKey) (string, error) {
	if d == nil {
		return "", ErrOpen
	}
	ephRaw, err1 := b64.DecodeString(d.EphemeralPublicKey)
	nonce, err2 := b64.DecodeString(d.Nonce)
	ct, err3 := b64.DecodeString(d.Ciphertext)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", ErrOpen
	}
	eph, err := ecdh.X25519().NewPublicKey(ephRaw)
	if err != nil {
		return "", ErrOpen
	}
	gcm, err := deliveryAEAD(recipient, eph, ephRaw, recipient.PublicKey().Bytes())
	if err != nil || len(nonce) != gcm.NonceSize() {
		return "", ErrOpen
	}
	plain, err := gcm.Open(nil, nonce, ct, []byte(id))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}

// deliveryAEAD derives the AES-256-GCM key from the X25519 exchange, bound to both public keys.
func deliveryAEAD(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, ephPub, recipientPub []byte) (cipher.AEAD, error) {
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, err
	}
	salt := append(append([]byte(nil), ephPub...), recipientPub...)
	key, err := hkdf.Key(sha256.New, shared, salt, deliveryInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// LooksLikeID reports whether s has the form of an access key id this operator issues.
func LooksLikeID(s string) bool { return len(s) == 20 && strings.HasPrefix(s, "AKIA") }

// Rewrap moves a sealed secret access key's data key to keyRef ("" for the primary key), after
// checking it opens.
func Rewrap(ctx context.Context, kp envelope.KeyProvider, namespace, name, id, keyRef string, k *v1alpha1.SealedKey) (*v1alpha1.SealedKey, error) {
	if _, err := Open(ctx, kp, namespace, name, id, k); err != nil {
		return nil, err
	}
	wrapped, _ := b64.DecodeString(k.WrappedKey)
	nonce, _ := b64.DecodeString(k.Nonce)
	ct, _ := b64.DecodeString(k.Ciphertext)
	next, err := envelope.Rewrap(ctx, kp, keyRef, binding(namespace, name, id), envelope.Sealed{Algorithm: envelope.Algorithm, KeyID: k.KeyID, WrappedKey: wrapped, Nonce: nonce, Ciphertext: ct})
	if err != nil {
		return nil, err
	}
	out := *k
	out.KeyID, out.WrappedKey = next.KeyID, b64.EncodeToString(next.WrappedKey)
	return &out, nil
}
