// Package value builds secret values (generated or imported) and renders them into the data of a
// Kubernetes Secret. Errors name keys and sizes, never a value.
package value

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"unicode/utf8"
)

// DefaultLimit is AWS's limit on a secret value: 65,536 bytes.
const DefaultLimit = 65536

// MaxLimit is the largest limit the operator accepts: AWS's. The SecretVersion schema's
// ciphertext field is sized for it, so one limit holds at every door.
const MaxLimit = 65536

// DefaultKey holds a value that is not a JSON object, when the target names no key.
const DefaultKey = "value"

// DefaultPasswordKey is the JSON field of a generated password.
const DefaultPasswordKey = "password"

var secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// Errors.
var (
	ErrEmpty   = errors.New("the value is empty")
	ErrTooBig  = errors.New("the value is larger than the size limit")
	ErrBadKey  = errors.New("not a valid Secret key")
	ErrNotUTF8 = errors.New("the source Secret holds binary data that is not UTF-8 text")
)

// TooLarge reports a size over the limit.
type TooLarge struct{ Size, Limit int }

func (e TooLarge) Error() string {
	return fmt.Sprintf("the value is %d bytes, over the limit of %d bytes", e.Size, e.Limit)
}

// Unwrap lets errors.Is match ErrTooBig.
func (e TooLarge) Unwrap() error { return ErrTooBig }

// CheckSize enforces 1 <= len(v) <= limit bytes.
func CheckSize(v []byte, limit int) error {
	if len(v) == 0 {
		return ErrEmpty
	}
	if len(v) > limit {
		return TooLarge{Size: len(v), Limit: limit}
	}
	return nil
}

// Generated builds the JSON object of a generated value: the fixed fields plus the password under
// passwordKey (default "password").
func Generated(fields map[string]string, passwordKey, password string) ([]byte, error) {
	if passwordKey == "" {
		passwordKey = DefaultPasswordKey
	}
	if _, clash := fields[passwordKey]; clash {
		return nil, fmt.Errorf("generate.fields may not contain %q: that field holds the generated password", passwordKey)
	}
	obj := make(map[string]string, len(fields)+1)
	for k, v := range fields {
		obj[k] = v
	}
	obj[passwordKey] = password
	return Marshal(obj)
}

// FromSecretData imports a Secret's data as a JSON object of strings.
func FromSecretData(data map[string][]byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, errors.New("the source Secret has no data")
	}
	obj := make(map[string]string, len(data))
	for k, v := range data {
		if !utf8.Valid(v) {
			return nil, fmt.Errorf("key %q: %w", k, ErrNotUTF8)
		}
		obj[k] = string(v)
	}
	return Marshal(obj)
}

// Render turns a value into Secret data: with key set, the whole value under that key; otherwise
// each top-level field of a JSON object becomes a key (strings as they are, anything else as
// compact JSON), and any other value goes under "value".
func Render(v []byte, key string) (map[string][]byte, error) {
	if key != "" {
		return map[string][]byte{key: bytes.Clone(v)}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
		return map[string][]byte{DefaultKey: bytes.Clone(v)}, nil
	}
	out := make(map[string][]byte, len(obj))
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(k) > 253 || !secretKey.MatchString(k) {
			// Field names are part of the value, so the error does not repeat them.
			return nil, fmt.Errorf("a top-level field name of the value is %w (use letters, digits, '-', '_' and '.', or set target.key)", ErrBadKey)
		}
		raw := obj[k]
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			out[k] = []byte(s)
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, errors.New("a field of the value is not valid JSON")
		}
		out[k] = buf.Bytes()
	}
	return out, nil
}

// PreviousSuffix marks the keys of the AWSPREVIOUS value projected beside the current one.
const PreviousSuffix = ".previous"

// WithPrevious adds each key of previous to current as key+PreviousSuffix. A current key of that
// name wins, and a key too long for the suffix is left out: the current value is never changed.
func WithPrevious(current, previous map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(current)+len(previous))
	for k, v := range current {
		out[k] = v
	}
	for k, v := range previous {
		pk := k + PreviousSuffix
		if _, taken := out[pk]; taken || len(pk) > 253 {
			continue
		}
		out[pk] = v
	}
	return out
}

// Marshal encodes a value's JSON without a trailing newline and without escaping <, > and &.
func Marshal(obj any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep <, > and & as they are: passwords contain them and consumers read the JSON literally.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// MarkTooBig wraps err, an interface's own refusal of a value over the size limit, so that
// errors.Is(err, ErrTooBig) holds for it too (each interface counts its refusals) while
// errors.As still finds what it wraps.
func MarkTooBig(err error) error { return tooBig{err} }

type tooBig struct{ err error }

func (e tooBig) Error() string        { return e.err.Error() }
func (e tooBig) Unwrap() error        { return e.err }
func (e tooBig) Is(target error) bool { return target == ErrTooBig }
