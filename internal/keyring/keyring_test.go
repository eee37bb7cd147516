package keyring

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope/providertest"
)

// TestProviderContract runs the contract every key provider meets; rotation adds a primary key to
// the ring.
func TestProviderContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) (envelope.KeyProvider, func() string) {
		ring, err := New(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		p := NewProvider(ring, nil)
		return p, func() string {
			p.mu.Lock()
			defer p.mu.Unlock()
			id, err := ring.AddPrimary(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
	})
}

func TestKeyIDsAreNeverReused(t *testing.T) {
	k, err := New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := k.AddPrimary(time.Now())
	// Remove key-2 by hand, as an administrator might, then add another.
	k.Keys = k.Keys[:1]
	k.Primary = "key-1"
	id3, _ := k.AddPrimary(time.Now())
	if id2 != "key-2" || id3 != "key-3" || k.Primary != "key-3" {
		t.Fatalf("ids %s %s primary %s", id2, id3, k.Primary)
	}
	data, _ := k.Marshal()
	back, err := Parse(data)
	if err != nil || back.LastNumber != 3 || back.Primary != "key-3" {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		"not json":        "{",
		"missing primary": `{"primary":"key-9","lastNumber":1,"keys":[{"id":"key-1","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
		"short key":       `{"primary":"key-1","lastNumber":1,"keys":[{"id":"key-1","material":"AAAA"}]}`,
		"duplicate id":    `{"primary":"key-1","lastNumber":1,"keys":[{"id":"key-1","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},{"id":"key-1","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalidKeyring) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestProviderReloadsForUnknownKey(t *testing.T) {
	ctx := context.Background()
	old, _ := New(time.Now())
	newer := &Keyring{Primary: old.Primary, LastNumber: old.LastNumber, Keys: append([]Key(nil), old.Keys...)}
	id, _ := newer.AddPrimary(time.Now())
	writer := NewProvider(newer, nil)
	_, wrapped, err := writer.Wrap(ctx, "", make([]byte, 32), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	reloads := 0
	reader := NewProvider(old, func(context.Context) (*Keyring, error) { reloads++; return newer, nil })
	got, err := reader.Unwrap(ctx, id, wrapped, []byte("aad"))
	if err != nil || !bytes.Equal(got, make([]byte, 32)) || reloads != 1 {
		t.Fatalf("Unwrap = %v, %v, reloads %d", got, err, reloads)
	}
	// An id nobody has is refused, and the reload is rate-limited.
	if _, err := reader.Unwrap(ctx, "key-99", wrapped, []byte("aad")); !errors.Is(err, ErrUnknownKey) || reloads != 1 {
		t.Fatalf("unknown key: %v, reloads %d", err, reloads)
	}
}

func TestWrapBindsKeyIDAndAAD(t *testing.T) {
	ctx := context.Background()
	k, _ := New(time.Now())
	k.AddPrimary(time.Now())
	p := NewProvider(k, nil)
	id, wrapped, _ := p.Wrap(ctx, "key-1", make([]byte, 32), []byte("aad"))
	if id != "key-1" {
		t.Fatalf("id %s", id)
	}
	if _, err := p.Unwrap(ctx, "key-2", wrapped, []byte("aad")); err == nil {
		t.Fatal("unwrapped under another key id")
	}
	// The same key material under another id: only the binding of the id can refuse this.
	alias := &Keyring{Primary: "key-1", LastNumber: 9, Keys: append(append([]Key(nil), k.Keys...), Key{ID: "key-9", Material: k.Keys[0].Material, Created: time.Now()})}
	ap := NewProvider(alias, nil)
	if _, err := ap.Unwrap(ctx, "key-1", wrapped, []byte("aad")); err != nil {
		t.Fatalf("the alias ring cannot unwrap under the original id, so the next check proves nothing: %v", err)
	}
	if _, err := ap.Unwrap(ctx, "key-9", wrapped, []byte("aad")); err == nil {
		t.Fatal("unwrapped under another key id holding the same key material: the key id is not bound")
	}
	if _, err := p.Unwrap(ctx, "key-1", wrapped, []byte("other")); err == nil {
		t.Fatal("unwrapped with other associated data")
	}
	if _, _, err := p.Wrap(ctx, "key-7", make([]byte, 32), nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("wrap with unknown key: %v", err)
	}
}

// FuzzDecodeWrappedKey: the decoder never panics and accepts only well-formed input.
func FuzzDecodeWrappedKey(f *testing.F) {
	f.Add([]byte{})
	f.Add(append([]byte{1}, make([]byte, 60)...))
	f.Add(append([]byte{2}, make([]byte, 60)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		nonce, ct, err := DecodeWrappedKey(in)
		if err != nil {
			return
		}
		if len(in) != wrappedKeySize || in[0] != wrapFormatV1 || len(nonce) != wrapNonceSize || len(ct) != keySize+wrapTagSize {
			t.Fatalf("accepted malformed input of %d bytes", len(in))
		}
	})
}

// FuzzParse: the keyring decoder never panics, and whatever it accepts is valid.
func FuzzParse(f *testing.F) {
	k, _ := New(time.Now())
	good, _ := k.Marshal()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"primary":"key-1","keys":[{"id":"key-1","material":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ring, err := Parse(in)
		if err != nil {
			return
		}
		if ring.Validate() != nil || ring.key(ring.Primary) == nil {
			t.Fatal("accepted an invalid keyring")
		}
	})
}
