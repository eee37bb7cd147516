package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
)

func provider(t testing.TB) *keyring.Provider {
	t.Helper()
	ring, err := keyring.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return keyring.NewProvider(ring, nil)
}

var binding = envelope.Binding{Namespace: "team-a", Name: "db", SecretID: "5b0e8f9a-1111-2222-3333-444455556666", VersionID: "0d9f7c5e-aaaa-bbbb-cccc-ddddeeeeffff", Format: envelope.FormatV2}

func TestSealOpenRoundTrip(t *testing.T) {
	ctx := context.Background()
	kp := provider(t)
	plain := []byte(`{"password":"canary-f7a1"}`)
	s, err := envelope.Seal(ctx, kp, "", binding, plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Ciphertext, []byte("canary")) {
		t.Fatal("ciphertext contains plaintext")
	}
	if s.Algorithm != envelope.Algorithm || s.KeyID != "key-1" {
		t.Fatalf("unexpected header %q %q", s.Algorithm, s.KeyID)
	}
	got, err := envelope.Open(ctx, kp, binding, s)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// A fresh data key and nonce every time.
	s2, _ := envelope.Seal(ctx, kp, "", binding, plain)
	if bytes.Equal(s.WrappedKey, s2.WrappedKey) || bytes.Equal(s.Nonce, s2.Nonce) || bytes.Equal(s.Ciphertext, s2.Ciphertext) {
		t.Fatal("two seals of the same value share a key, nonce or ciphertext")
	}
}

// aliasProvider holds key-1 and, under key-2, the same key material: a payload relabelled key-2
// is refused only if the key id is bound into the wrapping.
func aliasProvider(t testing.TB) *keyring.Provider {
	t.Helper()
	ring, err := keyring.New(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ring.Keys = append(ring.Keys, keyring.Key{ID: "key-2", Material: ring.Keys[0].Material, Created: time.Now()})
	ring.LastNumber = 2
	return keyring.NewProvider(ring, nil)
}

func TestOpenFailsClosed(t *testing.T) {
	ctx := context.Background()
	kp := aliasProvider(t)
	s, err := envelope.Seal(ctx, kp, "", binding, []byte("value"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i%len(c)] ^= 0x01; return c }
	other := func(f func(*envelope.Binding)) envelope.Binding { b := binding; f(&b); return b }
	tests := []struct {
		name string
		s    envelope.Sealed
		b    envelope.Binding
	}{
		{"ciphertext byte", envelope.Sealed{Algorithm: s.Algorithm, KeyID: s.KeyID, WrappedKey: s.WrappedKey, Nonce: s.Nonce, Ciphertext: flip(s.Ciphertext, 3)}, binding},
		{"last ciphertext byte (tag)", envelope.Sealed{Algorithm: s.Algorithm, KeyID: s.KeyID, WrappedKey: s.WrappedKey, Nonce: s.Nonce, Ciphertext: flip(s.Ciphertext, len(s.Ciphertext)-1)}, binding},
		{"nonce byte", envelope.Sealed{Algorithm: s.Algorithm, KeyID: s.KeyID, WrappedKey: s.WrappedKey, Nonce: flip(s.Nonce, 0), Ciphertext: s.Ciphertext}, binding},
		{"wrapped key byte", envelope.Sealed{Algorithm: s.Algorithm, KeyID: s.KeyID, WrappedKey: flip(s.WrappedKey, 20), Ciphertext: s.Ciphertext, Nonce: s.Nonce}, binding},
		{"wrapped key format byte", envelope.Sealed{Algorithm: s.Algorithm, KeyID: s.KeyID, WrappedKey: flip(s.WrappedKey, 0), Ciphertext: s.Ciphertext, Nonce: s.Nonce}, binding},
		{"key id", envelope.Sealed{Algorithm: s.Algorithm, KeyID: "key-2", WrappedKey: s.WrappedKey, Nonce: s.Nonce, Ciphertext: s.Ciphertext}, binding},
		{"algorithm", envelope.Sealed{Algorithm: "AES-128-GCM", KeyID: s.KeyID, WrappedKey: s.WrappedKey, Nonce: s.Nonce, Ciphertext: s.Ciphertext}, binding},
		{"other namespace", s, other(func(b *envelope.Binding) { b.Namespace = "team-b" })},
		{"other name", s, other(func(b *envelope.Binding) { b.Name = "db2" })},
		{"other secret id", s, other(func(b *envelope.Binding) { b.SecretID = "x" })},
		{"read as binary", s, other(func(b *envelope.Binding) { b.Binary = true })},
		{"as the older format", s, other(func(b *envelope.Binding) { b.Format = envelope.FormatV1 })},
		{"other version", s, other(func(b *envelope.Binding) { b.VersionID = "y" })},
		{"field boundary shift", s, other(func(b *envelope.Binding) { b.Namespace, b.Name = "team-ad", "b" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := envelope.Open(ctx, kp, tt.b, tt.s)
			if !errors.Is(err, envelope.ErrDecrypt) || got != nil {
				t.Fatalf("Open = %q, %v; want ErrDecrypt", got, err)
			}
		})
	}
}

func TestRewrapToNewPrimary(t *testing.T) {
	ctx := context.Background()
	ring, _ := keyring.New(time.Now())
	kp := keyring.NewProvider(ring, nil)
	s, _ := envelope.Seal(ctx, kp, "", binding, []byte("v"))
	if _, err := ring.AddPrimary(time.Now()); err != nil {
		t.Fatal(err)
	}
	r, err := envelope.Rewrap(ctx, kp, "", binding, s)
	if err != nil || r.KeyID != "key-2" || !bytes.Equal(r.Ciphertext, s.Ciphertext) {
		t.Fatalf("Rewrap = %+v, %v", r, err)
	}
	if got, err := envelope.Open(ctx, kp, binding, r); err != nil || string(got) != "v" {
		t.Fatalf("Open after rewrap = %q, %v", got, err)
	}
}

// FuzzOpen feeds arbitrary payloads to Open: it must never panic and never return plaintext for
// anything but the genuine payload.
func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	kp := provider(f)
	s, err := envelope.Seal(ctx, kp, "", binding, []byte("fuzz-canary"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.KeyID, s.WrappedKey, s.Nonce, s.Ciphertext)
	f.Add("", []byte{}, []byte{}, []byte{})
	f.Add("key-1", []byte{1}, make([]byte, 12), make([]byte, 16))
	f.Fuzz(func(t *testing.T, keyID string, wrapped, nonce, ct []byte) {
		in := envelope.Sealed{Algorithm: envelope.Algorithm, KeyID: keyID, WrappedKey: wrapped, Nonce: nonce, Ciphertext: ct}
		got, err := envelope.Open(ctx, kp, binding, in)
		genuine := keyID == s.KeyID && bytes.Equal(wrapped, s.WrappedKey) && bytes.Equal(nonce, s.Nonce) && bytes.Equal(ct, s.Ciphertext)
		if genuine != (err == nil) {
			t.Fatalf("genuine=%v but err=%v", genuine, err)
		}
		if err != nil && !errors.Is(err, envelope.ErrDecrypt) {
			t.Fatalf("unexpected error type %v", err)
		}
		if err == nil && string(got) != "fuzz-canary" {
			t.Fatalf("wrong plaintext")
		}
	})
}

func BenchmarkSealOpen4KiB(b *testing.B) {
	ctx := context.Background()
	kp := provider(b)
	plain := bytes.Repeat([]byte("x"), 4096)
	b.SetBytes(int64(len(plain)))
	for i := 0; i < b.N; i++ {
		s, err := envelope.Seal(ctx, kp, "", binding, plain)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := envelope.Open(ctx, kp, binding, s); err != nil {
			b.Fatal(err)
		}
	}
}
