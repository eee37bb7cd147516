// Package providertest is the contract every envelope.KeyProvider must meet, as a test to run from
// each provider's own tests:
//
//	providertest.Run(t, func(t *testing.T) (envelope.KeyProvider, func() string) { … })
//
// newProvider returns a fresh provider (its resources cleaned up with t.Cleanup) and rotate, which
// makes a new key the primary one and returns its id as Wrap will report it.
package providertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
)

// Canary is the data key the contract wraps: 32 recognisable bytes, so an error or a wrapped key
// that carries them (in any common encoding) is caught by AssertNoKeyMaterial.
var Canary = []byte("CANARY-data-key-7f3a9c1e5b2d8f40")

// AAD and OtherAAD are two records' associated data (two versions of one secret).
var (
	binding  = envelope.Binding{Namespace: "team-a", Name: "db", SecretID: "5b0e8f9a-1111-2222-3333-444455556666", VersionID: "0d9f7c5e-aaaa-bbbb-cccc-ddddeeeeffff", Format: envelope.FormatV2}
	AAD      = binding.AAD()
	OtherAAD = envelope.Binding{Namespace: "team-a", Name: "db", SecretID: "5b0e8f9a-1111-2222-3333-444455556666", VersionID: "11111111-aaaa-bbbb-cccc-ddddeeeeffff", Format: envelope.FormatV2}.AAD()
)

// Run runs the contract as subtests; every subtest gets its own provider.
func Run(t *testing.T, newProvider func(t *testing.T) (kp envelope.KeyProvider, rotate func() string)) {
	t.Run("RoundTrip", func(t *testing.T) {
		kp, _ := newProvider(t)
		ctx := testContext(t)
		keyID, wrapped := wrap(t, kp, "")
		if keyID == "" {
			t.Fatal("Wrap returned an empty key id")
		}
		AssertNoKeyMaterial(t, "the wrapped key", string(wrapped))
		got, err := kp.Unwrap(ctx, keyID, wrapped, AAD)
		if err != nil || !bytes.Equal(got, Canary) {
			AssertNoKeyMaterial(t, "Unwrap's error", errString(err))
			t.Fatalf("Unwrap = %d bytes, %v; want the data key", len(got), err)
		}
		// The caller owns (and clears) what Unwrap returns: that must not break the next Unwrap.
		clear(got)
		again, err := kp.Unwrap(ctx, keyID, wrapped, AAD)
		if err != nil || !bytes.Equal(again, Canary) {
			t.Fatalf("Unwrap after the caller cleared the first result = %d bytes, %v", len(again), err)
		}
		// Wrap must not keep or alter the caller's data key slice.
		dk := bytes.Clone(Canary)
		id2, w2, err := kp.Wrap(ctx, "", dk, AAD)
		if err != nil || !bytes.Equal(dk, Canary) {
			t.Fatalf("Wrap changed the caller's data key or failed: %v", err)
		}
		clear(dk)
		if got, err := kp.Unwrap(ctx, id2, w2, AAD); err != nil || !bytes.Equal(got, Canary) {
			t.Fatalf("Unwrap after the caller cleared the key it wrapped = %d bytes, %v", len(got), err)
		}
		// A keyRef of the primary key's id is the same as "".
		id3, w3, err := kp.Wrap(ctx, keyID, Canary, AAD)
		if err != nil || id3 != keyID {
			t.Fatalf("Wrap(keyRef = the primary id %q) = %q, %v", keyID, id3, err)
		}
		if got, err := kp.Unwrap(ctx, id3, w3, AAD); err != nil || !bytes.Equal(got, Canary) {
			t.Fatalf("Unwrap of a key wrapped by explicit key id = %d bytes, %v", len(got), err)
		}
	})

	t.Run("BoundToAAD", func(t *testing.T) {
		kp, _ := newProvider(t)
		ctx := testContext(t)
		keyID, wrapped := wrap(t, kp, "")
		for name, aad := range map[string][]byte{
			"another record": OtherAAD,
			"no aad":         nil,
			"a prefix":       AAD[:len(AAD)-1],
			"an extension":   append(bytes.Clone(AAD), 0),
		} {
			got, err := kp.Unwrap(ctx, keyID, wrapped, aad)
			if err == nil || got != nil {
				t.Fatalf("%s: Unwrap succeeded with other associated data", name)
			}
			AssertNoKeyMaterial(t, name+": Unwrap's error", err.Error())
		}
		// The genuine record still opens (a failure must not poison anything).
		if got, err := kp.Unwrap(ctx, keyID, wrapped, AAD); err != nil || !bytes.Equal(got, Canary) {
			t.Fatalf("Unwrap after failures = %v", err)
		}
	})

	t.Run("Tampered", func(t *testing.T) {
		kp, _ := newProvider(t)
		ctx := testContext(t)
		keyID, wrapped := wrap(t, kp, "")
		try := func(name string, w []byte) {
			t.Helper()
			got, err := kp.Unwrap(ctx, keyID, w, AAD)
			if err == nil || got != nil {
				t.Fatalf("%s: Unwrap accepted a tampered wrapped key", name)
			}
			AssertNoKeyMaterial(t, name+": Unwrap's error", err.Error())
		}
		for i := range wrapped {
			for _, bit := range []byte{0x01, 0x80} {
				w := bytes.Clone(wrapped)
				w[i] ^= bit
				try("byte "+strconv.Itoa(i), w)
			}
		}
		try("truncated by one byte", wrapped[:len(wrapped)-1])
		try("half", wrapped[:len(wrapped)/2])
		try("a byte appended", append(bytes.Clone(wrapped), 0))
		try("empty", []byte{})
		try("nil", nil)
		if got, err := kp.Unwrap(ctx, keyID, wrapped, AAD); err != nil || !bytes.Equal(got, Canary) {
			t.Fatalf("Unwrap of the genuine wrapped key after the tampered ones = %v", err)
		}
	})

	t.Run("UnknownKeyID", func(t *testing.T) {
		kp, _ := newProvider(t)
		ctx := testContext(t)
		keyID, wrapped := wrap(t, kp, "")
		for _, id := range []string{"", "no-such-key", keyID + "x", "x" + keyID} {
			got, err := kp.Unwrap(ctx, id, wrapped, AAD)
			if err == nil || got != nil {
				t.Fatalf("Unwrap under key id %q succeeded", id)
			}
			AssertNoKeyMaterial(t, "Unwrap's error", err.Error())
		}
		for _, ref := range []string{"no-such-key", keyID + "x"} {
			if _, _, err := kp.Wrap(ctx, ref, Canary, AAD); err == nil {
				t.Fatalf("Wrap with the unknown keyRef %q succeeded", ref)
			} else {
				AssertNoKeyMaterial(t, "Wrap's error", err.Error())
			}
		}
	})

	t.Run("Rotation", func(t *testing.T) {
		kp, rotate := newProvider(t)
		ctx := testContext(t)
		oldID, oldWrapped := wrap(t, kp, "")
		newID := rotate()
		if newID == "" || newID == oldID {
			t.Fatalf("rotate returned %q (the old key id is %q)", newID, oldID)
		}
		gotID, newWrapped := wrap(t, kp, "")
		if gotID != newID {
			t.Fatalf("after rotation Wrap used key id %q, want %q", gotID, newID)
		}
		if got, err := kp.Unwrap(ctx, oldID, oldWrapped, AAD); err != nil || !bytes.Equal(got, Canary) {
			t.Fatalf("a key wrapped before the rotation no longer unwraps: %v", err)
		}
		if got, err := kp.Unwrap(ctx, newID, newWrapped, AAD); err != nil || !bytes.Equal(got, Canary) {
			t.Fatalf("a key wrapped after the rotation does not unwrap: %v", err)
		}
		// The key id is bound: each wrapped key presented under the other id fails.
		for _, c := range []struct {
			id      string
			wrapped []byte
		}{{newID, oldWrapped}, {oldID, newWrapped}} {
			got, err := kp.Unwrap(ctx, c.id, c.wrapped, AAD)
			if err == nil || got != nil {
				t.Fatalf("a wrapped key unwrapped under the other key id %q", c.id)
			}
			AssertNoKeyMaterial(t, "Unwrap's error", err.Error())
		}
	})

	t.Run("Rewrap", func(t *testing.T) {
		kp, rotate := newProvider(t)
		ctx := testContext(t)
		plain := []byte(`{"password":"canary-value-c0ffee"}`)
		sealed, err := envelope.Seal(ctx, kp, "", binding, plain)
		if err != nil {
			t.Fatal(err)
		}
		newID := rotate()
		moved, err := envelope.Rewrap(ctx, kp, "", binding, sealed)
		if err != nil {
			t.Fatalf("Rewrap: %v", err)
		}
		if moved.KeyID != newID || moved.KeyID == sealed.KeyID {
			t.Fatalf("Rewrap moved the value to key id %q, want %q (it was %q)", moved.KeyID, newID, sealed.KeyID)
		}
		if !bytes.Equal(moved.Ciphertext, sealed.Ciphertext) || !bytes.Equal(moved.Nonce, sealed.Nonce) {
			t.Fatal("Rewrap changed the value's ciphertext")
		}
		for name, s := range map[string]envelope.Sealed{"re-wrapped": moved, "original": sealed} {
			if got, err := envelope.Open(ctx, kp, binding, s); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("the %s value does not open: %v", name, err)
			}
		}
		other := binding
		other.VersionID = "another-version"
		if _, err := envelope.Open(ctx, kp, other, moved); err == nil {
			t.Fatal("the re-wrapped value opened for another version")
		}
	})

	t.Run("KeyIDsNeverReused", func(t *testing.T) {
		kp, rotate := newProvider(t)
		first, _ := wrap(t, kp, "")
		seen := map[string]bool{first: true}
		for range 4 {
			id := rotate()
			if seen[id] {
				t.Fatalf("rotate reused the key id %q", id)
			}
			seen[id] = true
			if got, _ := wrap(t, kp, ""); got != id {
				t.Fatalf("Wrap used %q after rotate returned %q", got, id)
			}
		}
	})
}

func wrap(t *testing.T, kp envelope.KeyProvider, keyRef string) (string, []byte) {
	t.Helper()
	id, wrapped, err := kp.Wrap(testContext(t), keyRef, Canary, AAD)
	if err != nil {
		AssertNoKeyMaterial(t, "Wrap's error", err.Error())
		t.Fatalf("Wrap: %v", err)
	}
	if bytes.Contains(wrapped, Canary) {
		t.Fatal("the wrapped key contains the data key")
	}
	return id, wrapped
}

// AssertNoKeyMaterial fails t if s contains the Canary data key raw, in hex or in base64.
func AssertNoKeyMaterial(t testing.TB, what, s string) {
	t.Helper()
	for _, form := range []string{
		string(Canary), "CANARY-data-key", hex.EncodeToString(Canary), strings.ToUpper(hex.EncodeToString(Canary)),
		base64.StdEncoding.EncodeToString(Canary), base64.RawStdEncoding.EncodeToString(Canary),
		base64.URLEncoding.EncodeToString(Canary), base64.RawURLEncoding.EncodeToString(Canary),
	} {
		if strings.Contains(s, form) {
			t.Fatalf("%s contains the data key: %q", what, s)
		}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
