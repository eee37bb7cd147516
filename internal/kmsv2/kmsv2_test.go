package kmsv2

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/kms/pkg/service"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope/providertest"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/kmsplugin"
)

var (
	canary = providertest.Canary
	aad    = providertest.AAD
)

// TestContract runs the key provider contract over a real unix socket to the in-repo plugin;
// rotation adds a key to the plugin's keys file, which the plugin picks up by itself.
func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) (envelope.KeyProvider, func() string) {
		pl := startPlugin(t)
		p := pl.provider(Options{})
		return p, func() string {
			id := pl.rotate()
			waitFor(t, "the plugin reports the new key", 10*time.Second, func() error {
				got, err := p.PrimaryKeyID(testContext(t))
				if err == nil && got != id {
					err = fmt.Errorf("primary key id %q, want %q", got, id)
				}
				return err
			})
			return id
		}
	})
}

func TestKeyIDsAndHealth(t *testing.T) {
	pl := startPlugin(t)
	p := pl.provider(Options{})
	ctx := testContext(t)
	if err := p.Healthy(ctx); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
	primary, err := p.PrimaryKeyID(ctx)
	current := pl.svc.Service.(*kmsplugin.Service).CurrentKeyID()
	if err != nil || primary != "kmsv2:"+current {
		t.Fatalf("PrimaryKeyID = %q, %v; want kmsv2:%s", primary, err, current)
	}
	if id, ok := PluginKeyID(primary); !ok || id != current {
		t.Fatalf("PluginKeyID(%q) = %q, %v", primary, id, ok)
	}
	for _, bad := range []string{"", "kmsv2:", "key-1", "KMSV2:x"} {
		if _, ok := PluginKeyID(bad); ok {
			t.Fatalf("PluginKeyID accepted %q", bad)
		}
	}
	id, _, err := p.Wrap(ctx, "", canary, aad)
	if err != nil || id != primary {
		t.Fatalf("Wrap = %q, %v; want %q", id, err, primary)
	}
}

func TestKeyRef(t *testing.T) {
	pl := startPlugin(t)
	p := pl.provider(Options{})
	ctx := testContext(t)
	old, _ := p.PrimaryKeyID(ctx)
	if id, _, err := p.Wrap(ctx, old, canary, aad); err != nil || id != old {
		t.Fatalf("Wrap naming the current key = %q, %v", id, err)
	}
	for _, ref := range []string{"key-1", "kmsv2:not-the-current-key", "kmsv2:", "alias/aws/secretsmanager"} {
		if _, _, err := p.Wrap(ctx, ref, canary, aad); !errors.Is(err, ErrKeyRef) {
			t.Fatalf("Wrap(keyRef %q): %v; want ErrKeyRef", ref, err)
		}
	}
	// After a rotation the old key decrypts but can no longer be chosen for new wraps.
	newID := pl.rotate()
	if _, _, err := p.Wrap(ctx, old, canary, aad); !errors.Is(err, ErrKeyRef) || !strings.Contains(err.Error(), newID) {
		t.Fatalf("Wrap naming the previous key: %v; want ErrKeyRef naming %s", err, newID)
	}
	if id, _, err := p.Wrap(ctx, newID, canary, aad); err != nil || id != newID {
		t.Fatalf("Wrap naming the new key = %q, %v", id, err)
	}
	if _, _, err := p.Wrap(ctx, "", canary[:16], aad); !errors.Is(err, ErrDataKeySize) {
		t.Fatalf("Wrap of a 16-byte key: %v", err)
	}
}

// TestPluginDownAndBack: with the plugin stopped, calls that need it fail within the timeout with
// ErrUnavailable while cached keys keep unwrapping until they expire; when it is back on the same
// socket, the same Provider recovers.
func TestPluginDownAndBack(t *testing.T) {
	pl := startPlugin(t)
	clk := newClock()
	const timeout = 500 * time.Millisecond
	p := pl.provider(Options{Timeout: timeout, CacheTTL: time.Hour, Now: clk.Now})
	ctx := testContext(t)

	cachedID, cachedWrapped, err := p.Wrap(ctx, "", canary, aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Unwrap(ctx, cachedID, cachedWrapped, aad); err != nil { // now cached
		t.Fatal(err)
	}
	uncachedID, uncachedWrapped, err := p.Wrap(ctx, "", canary, aad) // never unwrapped
	if err != nil {
		t.Fatal(err)
	}
	sealedBinding := envelope.Binding{Namespace: "ns", Name: "n", SecretID: "id", VersionID: "v", Format: envelope.FormatV2}
	sealed, err := envelope.Seal(ctx, p, "", sealedBinding, []byte("value"))
	if err != nil {
		t.Fatal(err)
	}

	pl.halt()

	expectDown := func(what string, call func() error) {
		t.Helper()
		start := time.Now()
		err := call()
		elapsed := time.Since(start)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s with the plugin stopped: %v; want ErrUnavailable", what, err)
		}
		if elapsed > timeout+2*time.Second {
			t.Fatalf("%s took %s, over the %s timeout", what, elapsed, timeout)
		}
		if !strings.Contains(err.Error(), pl.sock) {
			t.Fatalf("%s's error does not name the plugin's socket: %v", what, err)
		}
		providertest.AssertNoKeyMaterial(t, what+"'s error", err.Error())
	}
	expectDown("Unwrap of an uncached key", func() error { _, err := p.Unwrap(ctx, uncachedID, uncachedWrapped, aad); return err })
	// Through envelope, an outage is the provider being unavailable, not a payload that fails
	// authentication.
	if _, err := envelope.Open(ctx, p, sealedBinding, sealed); !errors.Is(err, envelope.ErrUnavailable) || errors.Is(err, envelope.ErrDecrypt) {
		t.Fatalf("envelope.Open with the plugin stopped: %v; want envelope.ErrUnavailable", err)
	}
	expectDown("Wrap", func() error { _, _, err := p.Wrap(ctx, "", canary, aad); return err })
	expectDown("Healthy", func() error { return p.Healthy(ctx) })
	expectDown("PrimaryKeyID", func() error { _, err := p.PrimaryKeyID(ctx); return err })

	// The cached key still unwraps, until its TTL.
	if got, err := p.Unwrap(ctx, cachedID, cachedWrapped, aad); err != nil || !bytes.Equal(got, canary) {
		t.Fatalf("a cached Unwrap with the plugin stopped: %v", err)
	}
	clk.Add(time.Hour - time.Second)
	if _, err := p.Unwrap(ctx, cachedID, cachedWrapped, aad); err != nil {
		t.Fatalf("a cached Unwrap just before the TTL: %v", err)
	}
	clk.Add(time.Second)
	expectDown("Unwrap of a key whose cache entry expired", func() error { _, err := p.Unwrap(ctx, cachedID, cachedWrapped, aad); return err })

	// The plugin comes back on the same socket: the same Provider recovers.
	pl.serve()
	waitFor(t, "the provider reconnects", 15*time.Second, func() error { return p.Healthy(ctx) })
	for _, c := range []struct {
		id      string
		wrapped []byte
	}{{cachedID, cachedWrapped}, {uncachedID, uncachedWrapped}} {
		if got, err := p.Unwrap(ctx, c.id, c.wrapped, aad); err != nil || !bytes.Equal(got, canary) {
			t.Fatalf("Unwrap after the plugin is back: %v", err)
		}
	}
	if _, _, err := p.Wrap(ctx, "", canary, aad); err != nil {
		t.Fatalf("Wrap after the plugin is back: %v", err)
	}
}

// TestTimeout: a plugin that does not answer fails each call at the timeout.
func TestTimeout(t *testing.T) {
	hang := &hooked{
		status: func(ctx context.Context, _ *service.StatusResponse) (*service.StatusResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
		encrypt: func(ctx context.Context, _ []byte, _ *service.EncryptResponse) (*service.EncryptResponse, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
		decrypt: func(ctx context.Context, _ *service.DecryptRequest) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
	// The plugin's own readiness probe calls Status: let the first ones through.
	var ready atomic.Bool
	hangStatus := hang.status
	hang.status = func(ctx context.Context, res *service.StatusResponse) (*service.StatusResponse, error) {
		if !ready.Load() {
			return res, nil
		}
		return hangStatus(ctx, res)
	}
	pl := startPluginWith(t, hang)
	ready.Store(true)
	const timeout = 300 * time.Millisecond
	p := pl.provider(Options{Timeout: timeout})
	ctx := testContext(t)
	wrapped := (wrappedKey{keyID: "k", ciphertext: []byte{1}}).body()
	tag, _ := bindingTag(canary, wrapped, aad)
	wrapped = append(wrapped, tag...)
	for name, call := range map[string]func() error{
		"Wrap":    func() error { _, _, err := p.Wrap(ctx, "", canary, aad); return err },
		"Unwrap":  func() error { _, err := p.Unwrap(ctx, "kmsv2:k", wrapped, aad); return err },
		"Healthy": func() error { return p.Healthy(ctx) },
	} {
		start := time.Now()
		err := call()
		if elapsed := time.Since(start); elapsed < timeout || elapsed > timeout+2*time.Second {
			t.Errorf("%s returned after %s; want the %s timeout", name, elapsed, timeout)
		}
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no answer within the deadline") {
			t.Errorf("%s: %v; want ErrUnavailable, no answer within the deadline", name, err)
		}
	}
	// The caller's own, shorter deadline wins.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := p.Wrap(short, "", canary, aad); !errors.Is(err, ErrUnavailable) || time.Since(start) > timeout {
		t.Fatalf("Wrap with a 50ms context: %v after %s", err, time.Since(start))
	}
}

func TestCache(t *testing.T) {
	pl := startPlugin(t)
	clk := newClock()
	p := pl.provider(Options{CacheTTL: time.Minute, CacheSize: 2, Now: clk.Now})
	ctx := testContext(t)
	decrypts := func() int32 { return pl.svc.decrypts.Load() }
	wrapN := func() (string, []byte) {
		id, w, err := p.Wrap(ctx, "", canary, aad)
		if err != nil {
			t.Fatal(err)
		}
		return id, w
	}
	unwrap := func(id string, w []byte, wantDecrypts int32) {
		t.Helper()
		got, err := p.Unwrap(ctx, id, w, aad)
		if err != nil || !bytes.Equal(got, canary) {
			t.Fatalf("Unwrap: %v", err)
		}
		clear(got) // as envelope does: the cache must keep its own copy
		if decrypts() != wantDecrypts {
			t.Fatalf("Decrypt calls %d, want %d", decrypts(), wantDecrypts)
		}
	}
	id1, w1 := wrapN()
	if decrypts() != 0 {
		t.Fatal("Wrap called Decrypt")
	}
	unwrap(id1, w1, 1)
	unwrap(id1, w1, 1) // cached
	// Failures are not cached: a wrong binding calls Decrypt each time.
	for i := range 2 {
		if _, err := p.Unwrap(ctx, id1, w1, providertest.OtherAAD); !errors.Is(err, ErrBinding) {
			t.Fatalf("Unwrap for another record: %v", err)
		}
		if decrypts() != int32(2+i) {
			t.Fatalf("a failed Unwrap was cached (%d Decrypt calls)", decrypts())
		}
	}
	unwrap(id1, w1, 3) // still cached, the failures changed nothing
	// The oldest entry goes when the cache is full.
	id2, w2 := wrapN()
	id3, w3 := wrapN()
	unwrap(id2, w2, 4)
	unwrap(id3, w3, 5) // evicts w1
	if p.cache.len() != 2 {
		t.Fatalf("the cache holds %d entries, over its size 2", p.cache.len())
	}
	unwrap(id3, w3, 5)
	unwrap(id1, w1, 6) // evicted: Decrypt again (and evicts w2)
	// The TTL.
	clk.Add(time.Minute)
	unwrap(id1, w1, 7)
	unwrap(id1, w1, 7)

	// A plugin error is not cached either.
	var fail atomic.Bool
	fail.Store(true)
	h := &hooked{}
	h.decrypt = func(ctx context.Context, req *service.DecryptRequest) ([]byte, error) {
		if fail.Load() {
			return nil, status.Error(codes.Unavailable, "the HSM is busy")
		}
		return h.Service.Decrypt(ctx, "", req)
	}
	fl := startPluginWith(t, h)
	fp := fl.provider(Options{Timeout: time.Second})
	id, w, err := fp.Wrap(ctx, "", canary, aad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fp.Unwrap(ctx, id, w, aad); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "the HSM is busy") {
		t.Fatalf("Unwrap with a failing plugin: %v", err)
	}
	fail.Store(false)
	if got, err := fp.Unwrap(ctx, id, w, aad); err != nil || !bytes.Equal(got, canary) {
		t.Fatalf("Unwrap after the plugin recovered: %v", err)
	}

	// Caching can be turned off.
	off := pl.provider(Options{CacheSize: -1})
	before := decrypts()
	for range 3 {
		if _, err := off.Unwrap(ctx, id1, w1, aad); err != nil {
			t.Fatal(err)
		}
	}
	if decrypts()-before != 3 {
		t.Fatalf("with the cache off, 3 Unwraps made %d Decrypt calls", decrypts()-before)
	}
}

func TestCacheZeroesRemovedKeys(t *testing.T) {
	clk := newClock()
	c := newCache(time.Minute, 2, clk.Now)
	k := func(i byte) [sha256.Size]byte { return cacheKey([]byte{i}, nil) }
	held := func(key [sha256.Size]byte) []byte { return c.entries[key].Value.(*cacheEntry).value }
	c.put(k(1), bytes.Repeat([]byte{1}, 32))
	v1 := held(k(1))
	c.put(k(2), bytes.Repeat([]byte{2}, 32))
	v2 := held(k(2))
	got, ok := c.get(k(1))
	clear(got)
	if again, _ := c.get(k(1)); !ok || !bytes.Equal(again, bytes.Repeat([]byte{1}, 32)) {
		t.Fatal("get did not return a copy")
	}
	c.put(k(3), bytes.Repeat([]byte{3}, 32)) // evicts 1
	if _, ok := c.get(k(1)); ok || !bytes.Equal(v1, make([]byte, 32)) {
		t.Fatal("the evicted entry is still there or not zeroed")
	}
	clk.Add(time.Minute)
	if _, ok := c.get(k(2)); ok || !bytes.Equal(v2, make([]byte, 32)) {
		t.Fatal("the expired entry is still there or not zeroed")
	}
	v3 := held(k(3))
	c.purge()
	if c.len() != 0 || !bytes.Equal(v3, make([]byte, 32)) {
		t.Fatal("purge left entries or did not zero them")
	}
	// Keys differ for other wrapped bytes or other associated data, with no ambiguity between them.
	if cacheKey([]byte("ab"), []byte("c")) == cacheKey([]byte("a"), []byte("bc")) {
		t.Fatal("cache keys are ambiguous")
	}
	var nilCache *cache
	nilCache.put(k(1), []byte{1})
	if _, ok := nilCache.get(k(1)); ok {
		t.Fatal("a nil cache cached")
	}
}

// TestMisbehavingPlugins: answers outside the protocol are refused, and a plugin's own messages
// never carry the data key into an error.
func TestMisbehavingPlugins(t *testing.T) {
	ctx := testContext(t)
	wrapErr := func(t *testing.T, h *hooked) error {
		pl := startPluginWith(t, h)
		_, _, err := pl.provider(Options{}).Wrap(ctx, "", canary, aad)
		if err != nil {
			providertest.AssertNoKeyMaterial(t, "Wrap's error", err.Error())
		}
		return err
	}
	encryptHook := func(f func(pt []byte, res *service.EncryptResponse)) *hooked {
		return &hooked{encrypt: func(_ context.Context, pt []byte, res *service.EncryptResponse) (*service.EncryptResponse, error) {
			f(pt, res)
			return res, nil
		}}
	}
	for name, c := range map[string]struct {
		h    *hooked
		want error
	}{
		"ciphertext is the plaintext": {encryptHook(func(pt []byte, res *service.EncryptResponse) { res.Ciphertext = bytes.Clone(pt) }), ErrBadResponse},
		"ciphertext holds the key":    {encryptHook(func(pt []byte, res *service.EncryptResponse) { res.Ciphertext = append([]byte("x"), pt...) }), ErrBadResponse},
		"an annotation holds the key": {encryptHook(func(pt []byte, res *service.EncryptResponse) { res.Annotations["dek.example.com"] = bytes.Clone(pt) }), ErrBadResponse},
		"no key id":                   {encryptHook(func(_ []byte, res *service.EncryptResponse) { res.KeyID = "" }), ErrBadResponse},
		"empty ciphertext":            {encryptHook(func(_ []byte, res *service.EncryptResponse) { res.Ciphertext = nil }), ErrBadResponse},
		"ciphertext over 1 kB":        {encryptHook(func(_ []byte, res *service.EncryptResponse) { res.Ciphertext = make([]byte, 1025) }), ErrBadResponse},
		"annotations over 32 KiB": {encryptHook(func(_ []byte, res *service.EncryptResponse) {
			res.Annotations["big.example.com"] = make([]byte, 32*1024)
		}), ErrBadResponse},
		"key id over 1 kB":                 {encryptHook(func(_ []byte, res *service.EncryptResponse) { res.KeyID = strings.Repeat("k", 1025) }), ErrBadResponse},
		"error echoes the key":             {&hooked{encrypt: echo(func(pt []byte) string { return "cannot encrypt " + string(pt) })}, ErrPlugin},
		"error echoes the key in hex":      {&hooked{encrypt: echo(func(pt []byte) string { return "bad input " + hex.EncodeToString(pt) })}, ErrPlugin},
		"error echoes the key base64":      {&hooked{encrypt: echo(func(pt []byte) string { return "bad input " + base64.StdEncoding.EncodeToString(pt) })}, ErrPlugin},
		"error echoes the key as HEX":      {&hooked{encrypt: echo(func(pt []byte) string { return "bad input " + strings.ToUpper(hex.EncodeToString(pt)) })}, ErrPlugin},
		"error echoes the key, url64":      {&hooked{encrypt: echo(func(pt []byte) string { return "bad " + base64.RawURLEncoding.EncodeToString(pt) })}, ErrPlugin},
		"an ordinary error is quoted":      {&hooked{encrypt: echo(func([]byte) string { return "AccessDeniedException" })}, ErrPlugin},
		"unavailable error is quoted":      {&hooked{encrypt: echoCode(codes.Unavailable, "throttled")}, ErrUnavailable},
		"permission denied is unavailable": {&hooked{encrypt: echoCode(codes.PermissionDenied, "denied")}, envelope.ErrUnavailable},
		"throttling is unavailable":        {&hooked{encrypt: echoCode(codes.ResourceExhausted, "slow down")}, ErrUnavailable},
		"an internal error is a refusal":   {&hooked{encrypt: echoCode(codes.Internal, "bug")}, ErrPlugin},
	} {
		t.Run(name, func(t *testing.T) {
			err := wrapErr(t, c.h)
			if !errors.Is(err, c.want) {
				t.Fatalf("Wrap: %v; want %v", err, c.want)
			}
			if strings.HasPrefix(name, "an ordinary") && !strings.Contains(err.Error(), "AccessDeniedException") {
				t.Fatalf("the plugin's message is not in the error: %v", err)
			}
			if strings.HasPrefix(name, "error echoes") && !strings.Contains(err.Error(), "redacted") {
				t.Fatalf("the echoed key was not redacted: %v", err)
			}
		})
	}

	statusHook := func(f func(res *service.StatusResponse)) *hooked {
		var calls atomic.Int32
		return &hooked{status: func(_ context.Context, res *service.StatusResponse) (*service.StatusResponse, error) {
			if calls.Add(1) > 1 { // the plugin's own readiness probe sees a normal answer
				f(res)
			}
			return res, nil
		}}
	}
	for name, c := range map[string]struct {
		h    *hooked
		want error
	}{
		"unhealthy":               {statusHook(func(res *service.StatusResponse) { res.Healthz = "the HSM is sealed" }), ErrUnhealthy},
		"other version":           {statusHook(func(res *service.StatusResponse) { res.Version = "v1beta1" }), ErrBadResponse},
		"Status without a key id": {statusHook(func(res *service.StatusResponse) { res.KeyID = "" }), ErrBadResponse},
		"v2beta1 is ok":           {statusHook(func(res *service.StatusResponse) { res.Version = "v2beta1" }), nil},
		"long healthz":            {statusHook(func(res *service.StatusResponse) { res.Healthz = strings.Repeat("é", 1000) }), ErrUnhealthy},
	} {
		t.Run(name, func(t *testing.T) {
			pl := startPluginWith(t, c.h)
			p := pl.provider(Options{})
			err := p.Healthy(ctx)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Healthy: %v; want %v", err, c.want)
			}
			if _, perr := p.PrimaryKeyID(ctx); (perr == nil) != (err == nil) {
				t.Fatalf("PrimaryKeyID and Healthy disagree: %v, %v", perr, err)
			}
			if err != nil && (len(err.Error()) > 2*maxMessage || !strings.Contains(err.Error(), pl.sock)) {
				t.Fatalf("the error is over-long or does not name the socket: %d bytes", len(err.Error()))
			}
			if name == "unhealthy" && !strings.Contains(err.Error(), "the HSM is sealed") {
				t.Fatalf("the error does not quote healthz: %v", err)
			}
		})
	}

	for name, decrypt := range map[string]func([]byte) []byte{
		"another key":    func([]byte) []byte { return bytes.Repeat([]byte{7}, 32) },
		"a short key":    func(pt []byte) []byte { return pt[:16] },
		"a longer value": func(pt []byte) []byte { return append(pt, 0) },
	} {
		t.Run("Decrypt returns "+name, func(t *testing.T) {
			h := &hooked{}
			h.decrypt = func(ctx context.Context, req *service.DecryptRequest) ([]byte, error) {
				pt, err := h.Service.Decrypt(ctx, "", req)
				if err != nil {
					return nil, err
				}
				return decrypt(pt), nil
			}
			pl := startPluginWith(t, h)
			p := pl.provider(Options{})
			id, w, err := p.Wrap(ctx, "", canary, aad)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := p.Unwrap(ctx, id, w, aad); !errors.Is(err, ErrBinding) || got != nil {
				t.Fatalf("Unwrap: %v; want ErrBinding", err)
			}
			if p.cache.len() != 0 {
				t.Fatal("a failed Unwrap was cached")
			}
		})
	}
}

func echo(msg func(pt []byte) string) func(context.Context, []byte, *service.EncryptResponse) (*service.EncryptResponse, error) {
	return func(_ context.Context, pt []byte, _ *service.EncryptResponse) (*service.EncryptResponse, error) {
		return nil, errors.New(msg(pt))
	}
}

func echoCode(code codes.Code, msg string) func(context.Context, []byte, *service.EncryptResponse) (*service.EncryptResponse, error) {
	return func(context.Context, []byte, *service.EncryptResponse) (*service.EncryptResponse, error) {
		return nil, status.Error(code, msg)
	}
}

func TestNewEndpoints(t *testing.T) {
	pl := startPlugin(t)
	ctx := testContext(t)
	for _, ep := range []string{pl.sock, "unix://" + pl.sock} {
		if err := newProvider(t, ep, Options{}).Healthy(ctx); err != nil {
			t.Fatalf("endpoint %q: %v", ep, err)
		}
	}
	for _, ep := range []string{"", "tcp://127.0.0.1:1234", "unix://"} {
		if p, err := New(ep, Options{}); err == nil {
			p.Close()
			t.Fatalf("New(%q) accepted", ep)
		}
	}
}

// TestWrappedFormat decodes a wrapped key by the package documentation, independently of the
// package's decoder, and recomputes the binding tag.
func TestWrappedFormat(t *testing.T) {
	pl := startPlugin(t)
	p := pl.provider(Options{})
	ctx := testContext(t)
	keyID, w, err := p.Wrap(ctx, "", canary, aad)
	if err != nil {
		t.Fatal(err)
	}
	if w[0] != 0x01 {
		t.Fatalf("format byte %#x", w[0])
	}
	rest := w[1:]
	field := func() []byte {
		n := binary.BigEndian.Uint32(rest)
		f := rest[4 : 4+n]
		rest = rest[4+n:]
		return f
	}
	pluginKeyID, ciphertext := string(field()), field()
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	annotations := map[string][]byte{}
	for range n {
		name := string(field())
		annotations[name] = field()
	}
	if keyID != "kmsv2:"+pluginKeyID || len(ciphertext) == 0 || string(annotations[kmsplugin.AnnotationFormat]) != kmsplugin.FormatV1 || len(rest) != 32 {
		t.Fatalf("decoded %q %d-byte ciphertext %v, %d bytes left", pluginKeyID, len(ciphertext), annotations, len(rest))
	}
	body := w[:len(w)-32]
	k, _ := hkdf.Key(sha256.New, canary, nil, "kube-secrets-manager.io/kmsv2/binding-key/v1", 32)
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte("kube-secrets-manager.io/kmsv2/binding/v1\x00"))
	mac.Write(binary.BigEndian.AppendUint32(nil, uint32(len(body))))
	mac.Write(body)
	mac.Write(aad)
	if !hmac.Equal(mac.Sum(nil), rest) {
		t.Fatal("the binding tag is not the documented HMAC")
	}
	// A wrapped key re-encoded with its annotations out of order is refused (one encoding only).
	dec, _, _, ok := decodeWrapped(w)
	if !ok || !bytes.Equal(append(dec.body(), rest...), w) {
		t.Fatal("decode and encode do not round-trip")
	}
}

func TestDecodeWrappedRejectsNonCanonical(t *testing.T) {
	tag := make([]byte, tagSize)
	enc := func(w wrappedKey) []byte { return append(w.body(), tag...) }
	good := wrappedKey{keyID: "k", ciphertext: []byte{1, 2}, annotations: map[string][]byte{"a.example": {1}, "b.example": nil}}
	if _, _, _, ok := decodeWrapped(enc(good)); !ok {
		t.Fatal("a good wrapped key is refused")
	}
	// Swap the two annotations by hand.
	swapped := []byte{formatV1}
	swapped = appendField(swapped, []byte("k"))
	swapped = appendField(swapped, []byte{1, 2})
	swapped = binary.BigEndian.AppendUint32(swapped, 2)
	swapped = appendField(appendField(swapped, []byte("b.example")), nil)
	swapped = appendField(appendField(swapped, []byte("a.example")), []byte{1})
	dup := []byte{formatV1}
	dup = appendField(dup, []byte("k"))
	dup = appendField(dup, []byte{1, 2})
	dup = binary.BigEndian.AppendUint32(dup, 2)
	dup = appendField(appendField(dup, []byte("a.example")), nil)
	dup = appendField(appendField(dup, []byte("a.example")), nil)
	for name, in := range map[string][]byte{
		"annotations out of order": append(swapped, tag...),
		"duplicate annotation":     append(dup, tag...),
		"trailing byte":            append(enc(good), 0),
		"no key id":                enc(wrappedKey{ciphertext: []byte{1}}),
		"no ciphertext":            enc(wrappedKey{keyID: "k"}),
		"other format":             append([]byte{2}, enc(good)[1:]...),
		"only a tag":               append([]byte{formatV1}, tag...),
		"huge count":               append(binary.BigEndian.AppendUint32(enc(wrappedKey{keyID: "k", ciphertext: []byte{1}})[:1+5+5], 1<<31), tag...),
	} {
		if _, _, _, ok := decodeWrapped(in); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecodeWrapped: the decoder never panics, and what it accepts is the one encoding of what it
// decoded.
func FuzzDecodeWrapped(f *testing.F) {
	good := wrappedKey{keyID: "key-1", ciphertext: []byte("ciphertext"), annotations: map[string][]byte{"a.example": []byte("v")}}
	f.Add(append(good.body(), make([]byte, tagSize)...))
	f.Add([]byte{})
	f.Add([]byte{formatV1})
	f.Fuzz(func(t *testing.T, in []byte) {
		w, body, tag, ok := decodeWrapped(in)
		if !ok {
			return
		}
		if !bytes.Equal(append(w.body(), tag...), in) || !bytes.Equal(body, in[:len(in)-tagSize]) || !w.validate() {
			t.Fatal("accepted a non-canonical or invalid wrapped key")
		}
	})
}

// TestConcurrentUse: many goroutines wrapping and unwrapping share one Provider (run with -race).
func TestConcurrentUse(t *testing.T) {
	pl := startPlugin(t)
	p := pl.provider(Options{CacheSize: 8})
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				dk := bytes.Repeat([]byte{byte(g), byte(i)}, 16)
				id, w, err := p.Wrap(ctx, "", dk, aad)
				if err == nil {
					var got []byte
					got, err = p.Unwrap(ctx, id, w, aad)
					if err == nil && !bytes.Equal(got, dk) {
						err = errors.New("wrong data key")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
