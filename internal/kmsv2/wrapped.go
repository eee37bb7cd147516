package kmsv2

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"unicode/utf8"
)

// The wrapped-key format; see the package documentation.
const (
	formatV1 = 0x01
	tagSize  = sha256.Size

	// The KMS v2 API's limits on what Encrypt returns (kube-apiserver enforces the same).
	maxKeyIDSize       = 1024
	maxCiphertextSize  = 1024
	maxAnnotationsSize = 32 * 1024

	bindingKeyInfo = "kube-secrets-manager.io/kmsv2/binding-key/v1"
	bindingContext = "kube-secrets-manager.io/kmsv2/binding/v1\x00"
)

// wrappedKey is what the plugin's Encrypt returned.
type wrappedKey struct {
	keyID       string
	ciphertext  []byte
	annotations map[string][]byte
}

// body encodes w without the tag.
func (w wrappedKey) body() []byte {
	names := make([]string, 0, len(w.annotations))
	for name := range w.annotations {
		names = append(names, name)
	}
	slices.Sort(names)
	out := []byte{formatV1}
	out = appendField(out, []byte(w.keyID))
	out = appendField(out, w.ciphertext)
	out = binary.BigEndian.AppendUint32(out, uint32(len(names)))
	for _, name := range names {
		out = appendField(out, []byte(name))
		out = appendField(out, w.annotations[name])
	}
	return out
}

func appendField(out, field []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(field)))
	return append(out, field...)
}

// validate checks the KMS v2 limits on an Encrypt response.
func (w wrappedKey) validate() bool {
	if len(w.keyID) == 0 || len(w.keyID) > maxKeyIDSize || !utf8.ValidString(w.keyID) ||
		len(w.ciphertext) == 0 || len(w.ciphertext) > maxCiphertextSize {
		return false
	}
	size := 0
	for name, value := range w.annotations {
		if name == "" || !utf8.ValidString(name) {
			return false
		}
		size += len(name) + len(value)
	}
	return size <= maxAnnotationsSize
}

// decodeWrapped parses a wrapped key. It accepts only the canonical encoding (annotations sorted
// and unique, nothing after the tag) of a response within the KMS v2 limits, so there is exactly
// one byte string for each wrapped key.
func decodeWrapped(b []byte) (w wrappedKey, body, tag []byte, ok bool) {
	if len(b) < 1+tagSize || b[0] != formatV1 {
		return wrappedKey{}, nil, nil, false
	}
	body, tag = b[:len(b)-tagSize], b[len(b)-tagSize:]
	r := reader{buf: body[1:]}
	keyID, ciphertext := r.field(maxKeyIDSize), r.field(maxCiphertextSize)
	count := r.uint32()
	// Each annotation takes at least 8 bytes.
	if r.failed || int64(count)*8 > int64(len(r.buf)) {
		return wrappedKey{}, nil, nil, false
	}
	w = wrappedKey{keyID: string(keyID), ciphertext: ciphertext}
	if count > 0 {
		w.annotations = make(map[string][]byte, count)
	}
	prev := ""
	for i := range count {
		name, value := string(r.field(maxAnnotationsSize)), r.field(maxAnnotationsSize)
		if r.failed || (i > 0 && name <= prev) {
			return wrappedKey{}, nil, nil, false
		}
		w.annotations[name], prev = value, name
	}
	if r.failed || len(r.buf) != 0 || !w.validate() {
		return wrappedKey{}, nil, nil, false
	}
	return w, body, tag, true
}

// reader reads big-endian length-prefixed fields; the first failure sticks.
type reader struct {
	buf    []byte
	failed bool
}

func (r *reader) uint32() uint32 {
	if r.failed || len(r.buf) < 4 {
		r.failed = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.buf)
	r.buf = r.buf[4:]
	return v
}

// field reads a length-prefixed field of at most maxLen bytes.
func (r *reader) field(maxLen int) []byte {
	n := r.uint32()
	if r.failed || int64(n) > int64(maxLen) || int64(n) > int64(len(r.buf)) {
		r.failed = true
		return nil
	}
	f := r.buf[:n:n]
	r.buf = r.buf[n:]
	return f
}

// bindingTag is HMAC-SHA256 under a key derived from the data key (HKDF-SHA256, info
// bindingKeyInfo) over a context string, the wrapped key's body and the record's associated data:
// only the holder of the data key can make it, and it fails for any other body or record.
func bindingTag(dataKey, body, aad []byte) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, dataKey, nil, bindingKeyInfo, sha256.Size)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(bindingContext))
	mac.Write(binary.BigEndian.AppendUint32(nil, uint32(len(body))))
	mac.Write(body)
	mac.Write(aad)
	return mac.Sum(nil), nil
}
