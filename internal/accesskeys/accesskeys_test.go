package accesskeys

import (
	"context"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/keyring"
)

func TestSealAndDeliver(t *testing.T) {
	ctx := context.Background()
	ring, _ := keyring.New(time.Now())
	kp := keyring.NewProvider(ring, nil)
	id, err := NewID()
	if err != nil || !LooksLikeID(id) {
		t.Fatalf("id %q %v", id, err)
	}
	secret, _ := NewSecret()
	if len(secret) != 40 {
		t.Fatalf("secret of %d characters", len(secret))
	}
	sealed, err := Seal(ctx, kp, "team-a", "ci", id, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(ctx, kp, "team-a", "ci", id, sealed); err != nil || got != secret {
		t.Fatalf("open: %v", err)
	}
	for _, tt := range []struct{ ns, name, id string }{{"team-b", "ci", id}, {"team-a", "other", id}, {"team-a", "ci", "AKIAAAAAAAAAAAAAAAAA"}} {
		if _, err := Open(ctx, kp, tt.ns, tt.name, tt.id, sealed); err == nil {
			t.Fatalf("a sealed key opened as %+v", tt)
		}
	}

	priv, pub, err := NewRecipient()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Deliver(pub, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenDelivery(priv, id, d); err != nil || got != secret {
		t.Fatalf("delivery: %v", err)
	}
	other, _, _ := NewRecipient()
	if _, err := OpenDelivery(other, id, d); err == nil {
		t.Fatal("another private key opened the delivery")
	}
	if _, err := OpenDelivery(priv, "AKIAAAAAAAAAAAAAAAAA", d); err == nil {
		t.Fatal("the delivery opened for another key id")
	}
	if _, err := Deliver("not base64!", id, secret); err == nil {
		t.Fatal("a bad public key was accepted")
	}
}
