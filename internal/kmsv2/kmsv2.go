// Package kmsv2 is a key provider (envelope.KeyProvider) that keeps the key-encryption keys in a
// Kubernetes KMS v2 plugin: it speaks the plugin gRPC API kube-apiserver speaks (k8s.io/kms/apis/v2)
// over a unix socket, so any KMS v2 plugin (a cloud KMS's, Vault's, an HSM's) works unchanged.
//
// # Keys
//
// The plugin chooses the key it encrypts with; Status reports it. The key id this provider returns
// (and envelope stores with each version) is KeyIDPrefix + the plugin's key_id, for example
// "kmsv2:arn:aws:kms:…" — unmistakable beside the local keyring's "key-N" ids. A keyRef of "" means
// the key the plugin encrypts with now; a keyRef naming a key (in the prefixed form) is accepted only
// if it is the plugin's current key, checked against the key_id Encrypt answers with, and is
// otherwise refused with ErrKeyRef: a KMS v2 plugin cannot be told which key to use. Rotation is the
// plugin's: when PrimaryKeyID changes, versions wrapped under other key ids should be re-wrapped
// (envelope.Rewrap with keyRef ""); the old key ids keep decrypting for as long as the plugin keeps
// those keys.
//
// # Wrapped keys
//
// Wrap sends the 32-byte data key to the plugin's Encrypt. KMS v2 has no associated data, so the
// binding to the record is added here: the wrapped key is
//
//	0x01                                    format version 1
//	u32 len | key_id                        the plugin's key_id (1..1024 bytes, UTF-8), unprefixed
//	u32 len | ciphertext                    Encrypt's ciphertext (1..1024 bytes)
//	u32 n                                   the number of annotations
//	n × (u32 len | name, u32 len | value)   Encrypt's annotations, names sorted and unique
//	32 bytes                                the binding tag
//
// (lengths big-endian; annotations at most 32 KiB in all), where the binding tag is
//
//	HMAC-SHA256(K, "kube-secrets-manager.io/kmsv2/binding/v1" 0x00 || u32 len(body) || body || aad)
//	K = HKDF-SHA256(secret = data key, salt = none, info = "kube-secrets-manager.io/kmsv2/binding-key/v1", 32 bytes)
//
// and body is everything before the tag. Unwrap checks that the key id it is given is
// KeyIDPrefix + the key_id inside, passes the key_id, ciphertext and annotations to the plugin's
// Decrypt, and compares the tag recomputed with the returned data key in constant time. A wrapped
// key moved to another record (other aad), relabelled with another key id, or altered anywhere
// fails; only the canonical encoding decodes.
//
// # Failure, timeouts and the cache
//
// Every call to the plugin has a deadline (Options.Timeout, 3 s by default) and waits for a
// connection within it, so a plugin that restarts briefly is ridden over and one that is gone fails
// the call at the deadline. Failures are errors, never a fallback; the connection is re-established
// by itself when the plugin is back (a Provider need not be recreated). A plugin that cannot answer
// (unreachable, past the deadline, or answering Unavailable, ResourceExhausted, PermissionDenied or
// Unauthenticated) gives ErrUnavailable, which is also envelope.ErrUnavailable: the wrapped key is
// not known to be bad, so callers retry rather than report tampering. Other refusals give
// ErrPlugin. Errors name the plugin's socket, the call and the gRPC status, never key material or
// plaintext: a plugin's own message on a failed Encrypt is redacted if it contains the data key in
// any common encoding.
//
// Unwrapped data keys are cached in memory (Options.CacheTTL, 1 h, and Options.CacheSize, 10,000
// entries, by default), keyed by a SHA-256 of the wrapped key and the associated data, so reading a
// version again does not call the plugin. The oldest entry goes when the cache is full; removed
// entries are zeroed. Only a data key that the plugin returned and that passed the binding check is
// cached; failures never are. Cached keys keep opening their versions while the plugin is down,
// until they expire.
package kmsv2

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"
	"k8s.io/kms/pkg/util"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/envelope"
)

// KeyIDPrefix starts every key id of this provider; the plugin's key_id follows.
const KeyIDPrefix = "kmsv2:"

// Defaults of Options.
const (
	DefaultTimeout   = 3 * time.Second
	DefaultCacheTTL  = time.Hour
	DefaultCacheSize = 10000
)

const (
	dataKeySize = 32
	// How long a reconnection waits at most between attempts.
	maxReconnectDelay = time.Second
	// Plugin messages are cut to this many bytes.
	maxMessage = 512
)

// Errors; the returned errors wrap one of them and add the details. ErrUnavailable and
// ErrUnhealthy also match envelope.ErrUnavailable (errors.Is), so envelope.Open reports a plugin
// outage as the provider being unavailable, not as a payload that fails authentication.
var (
	// ErrUnavailable: the plugin did not answer (not reachable, not within the deadline), or could
	// not act for now (throttled, its own access to the KMS denied).
	ErrUnavailable error = &providerDown{"kmsv2: the KMS plugin is unavailable"}
	// ErrUnhealthy: Status says the plugin is not healthy.
	ErrUnhealthy error = &providerDown{"kmsv2: the KMS plugin is not healthy"}
	// ErrPlugin: the plugin refused the request with another error.
	ErrPlugin = errors.New("kmsv2: the KMS plugin refused the request")
	// ErrBadResponse: the plugin answered outside the KMS v2 protocol.
	ErrBadResponse = errors.New("kmsv2: the KMS plugin's answer is not valid")
	// ErrKeyRef: a keyRef other than "" or the plugin's current key.
	ErrKeyRef = errors.New("kmsv2: a KMS v2 plugin chooses its key; only its current key can be named")
	// ErrUnknownKey: the key id is not one of this provider's, or not the one the wrapped key was made with.
	ErrUnknownKey = errors.New("kmsv2: unknown key id")
	// ErrMalformedWrapped: the wrapped key does not decode.
	ErrMalformedWrapped = errors.New("kmsv2: malformed wrapped key")
	// ErrBinding: the wrapped key decrypted but does not belong to this record (or was altered).
	ErrBinding = errors.New("kmsv2: the wrapped key does not belong to this record")
	// ErrDataKeySize: Wrap was given a data key that is not 32 bytes.
	ErrDataKeySize = errors.New("kmsv2: data keys are 32 bytes")
)

// providerDown is a sentinel that is also envelope.ErrUnavailable.
type providerDown struct{ msg string }

func (e *providerDown) Error() string        { return e.msg }
func (e *providerDown) Is(target error) bool { return target == envelope.ErrUnavailable }

// Options configures a Provider; zero values take the defaults.
type Options struct {
	// Timeout bounds each call to the plugin (DefaultTimeout).
	Timeout time.Duration
	// CacheTTL is how long an unwrapped data key is kept (DefaultCacheTTL); negative turns the cache off.
	CacheTTL time.Duration
	// CacheSize is the most data keys kept (DefaultCacheSize); negative turns the cache off.
	CacheSize int
	// Now is the cache's clock (time.Now); tests move it.
	Now func() time.Time
}

// Provider is an envelope.KeyProvider over a KMS v2 plugin. It is safe for concurrent use.
type Provider struct {
	endpoint string
	timeout  time.Duration
	conn     *grpc.ClientConn
	client   kmsapi.KeyManagementServiceClient
	cache    *cache
}

var (
	_ envelope.KeyProvider  = (*Provider)(nil)
	_ envelope.PrimaryKeyer = (*Provider)(nil)
)

// New returns a provider for the plugin at endpoint: "unix:///path/to/socket", a path, or
// "unix:///@name" / "@name" for an abstract socket. It does not connect yet (the first call does),
// so the plugin may start later; Healthy tells whether it is there.
func New(endpoint string, opts Options) (*Provider, error) {
	path := endpoint
	if strings.Contains(endpoint, "://") {
		var err error
		if path, err = util.ParseEndpoint(endpoint); err != nil {
			return nil, fmt.Errorf("kmsv2: %w", err)
		}
	}
	if path == "" {
		return nil, errors.New("kmsv2: no plugin socket")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	conn, err := grpc.NewClient("passthrough:///kms-plugin",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxReconnectDelay},
			MinConnectTimeout: opts.Timeout,
		}),
		// Wait for a connection within the call's deadline rather than failing at once while the
		// plugin restarts.
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)),
	)
	if err != nil {
		return nil, fmt.Errorf("kmsv2: %w", err)
	}
	p := &Provider{endpoint: "unix://" + path, timeout: opts.Timeout, conn: conn, client: kmsapi.NewKeyManagementServiceClient(conn)}
	if !strings.HasPrefix(path, "/") {
		p.endpoint = path
	}
	if opts.CacheTTL > 0 && opts.CacheSize > 0 {
		p.cache = newCache(opts.CacheTTL, opts.CacheSize, opts.Now)
	}
	return p, nil
}

// Close drops the cached data keys (zeroing them) and closes the connection.
func (p *Provider) Close() error {
	p.cache.purge()
	return p.conn.Close()
}

// KeyID is the provider's key id for a plugin key_id.
func KeyID(pluginKeyID string) string { return KeyIDPrefix + pluginKeyID }

// PluginKeyID is the plugin key_id in one of the provider's key ids.
func PluginKeyID(keyID string) (string, bool) {
	id, ok := strings.CutPrefix(keyID, KeyIDPrefix)
	return id, ok && id != ""
}

// Healthy calls Status: the plugin must answer within the timeout, speak KMS v2, report healthz
// "ok" and a key id.
func (p *Provider) Healthy(ctx context.Context) error {
	_, err := p.status(ctx)
	return err
}

// PrimaryKeyID is the key id (prefixed) the plugin encrypts with now, from Status; it fails as
// Healthy does. A change means versions wrapped under other ids are due for re-wrapping.
func (p *Provider) PrimaryKeyID(ctx context.Context) (string, error) {
	id, err := p.status(ctx)
	if err != nil {
		return "", err
	}
	return KeyID(id), nil
}

func (p *Provider) status(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	res, err := p.client.Status(ctx, &kmsapi.StatusRequest{})
	if err != nil {
		return "", p.callError("Status", err, nil)
	}
	switch {
	case res.Version != "v2" && res.Version != "v2beta1":
		return "", fmt.Errorf("%w: the plugin at %s speaks KMS API version %q, not v2", ErrBadResponse, p.endpoint, clean(res.Version, nil))
	case res.Healthz != "ok":
		return "", fmt.Errorf("%w: the plugin at %s reports healthz %q", ErrUnhealthy, p.endpoint, clean(res.Healthz, nil))
	case res.KeyId == "" || len(res.KeyId) > maxKeyIDSize:
		return "", fmt.Errorf("%w: the plugin at %s reports no key id (or one over %d bytes)", ErrBadResponse, p.endpoint, maxKeyIDSize)
	}
	return res.KeyId, nil
}

// Wrap encrypts dataKey with the plugin's current key and binds aad; keyRef is "" or the plugin's
// current key (see the package documentation).
func (p *Provider) Wrap(ctx context.Context, keyRef string, dataKey, aad []byte) (string, []byte, error) {
	if len(dataKey) != dataKeySize {
		return "", nil, ErrDataKeySize
	}
	want := ""
	if keyRef != "" {
		var ok bool
		if want, ok = PluginKeyID(keyRef); !ok {
			return "", nil, fmt.Errorf("%w: %q is not a KMS v2 key id (%s<key_id>)", ErrKeyRef, keyRef, KeyIDPrefix)
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	res, err := p.client.Encrypt(callCtx, &kmsapi.EncryptRequest{Plaintext: dataKey, Uid: uuid.NewString()})
	if err != nil {
		return "", nil, p.callError("Encrypt", err, dataKey)
	}
	w := wrappedKey{keyID: res.KeyId, ciphertext: res.Ciphertext, annotations: res.Annotations}
	if !w.validate() {
		return "", nil, fmt.Errorf("%w: Encrypt at %s returned an empty or over-long key id or ciphertext, or over-long annotations", ErrBadResponse, p.endpoint)
	}
	if containsKey(w, dataKey) {
		return "", nil, fmt.Errorf("%w: Encrypt at %s returned the data key unencrypted", ErrBadResponse, p.endpoint)
	}
	if want != "" && w.keyID != want {
		return "", nil, fmt.Errorf("%w: asked for %q, but the plugin encrypts with %q now", ErrKeyRef, keyRef, KeyID(w.keyID))
	}
	body := w.body()
	tag, err := bindingTag(dataKey, body, aad)
	if err != nil {
		return "", nil, fmt.Errorf("kmsv2: binding the wrapped key: %w", err)
	}
	return KeyID(w.keyID), append(body, tag...), nil
}

// Unwrap checks keyID against the wrapped key, has the plugin decrypt it (unless it is cached) and
// checks the binding to aad.
func (p *Provider) Unwrap(ctx context.Context, keyID string, wrapped, aad []byte) ([]byte, error) {
	pluginKeyID, ok := PluginKeyID(keyID)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a KMS v2 key id (%s<key_id>)", ErrUnknownKey, keyID, KeyIDPrefix)
	}
	w, body, tag, ok := decodeWrapped(wrapped)
	if !ok {
		return nil, ErrMalformedWrapped
	}
	if w.keyID != pluginKeyID {
		return nil, fmt.Errorf("%w: the wrapped key was not made with %q", ErrUnknownKey, keyID)
	}
	ck := cacheKey(wrapped, aad)
	if dataKey, ok := p.cache.get(ck); ok {
		return dataKey, nil
	}
	callCtx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	res, err := p.client.Decrypt(callCtx, &kmsapi.DecryptRequest{Ciphertext: w.ciphertext, Uid: uuid.NewString(), KeyId: w.keyID, Annotations: w.annotations})
	if err != nil {
		return nil, p.callError("Decrypt", err, nil)
	}
	dataKey := res.Plaintext
	if len(dataKey) != dataKeySize {
		clear(dataKey)
		return nil, ErrBinding
	}
	want, err := bindingTag(dataKey, body, aad)
	if err != nil || !hmac.Equal(tag, want) {
		clear(dataKey)
		return nil, ErrBinding
	}
	p.cache.put(ck, dataKey)
	return dataKey, nil
}

// containsKey says whether an Encrypt response carries the plaintext data key, in the ciphertext
// or in an annotation (which is stored as it is).
func containsKey(w wrappedKey, dataKey []byte) bool {
	if bytes.Contains(w.ciphertext, dataKey) {
		return true
	}
	for _, v := range w.annotations {
		if bytes.Contains(v, dataKey) {
			return true
		}
	}
	return false
}

// callError describes a failed call without key material: secret (the data key of an Encrypt) is
// redacted from the plugin's message.
func (p *Provider) callError(method string, err error, secret []byte) error {
	st := status.Convert(err)
	msg := clean(st.Message(), secret)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s at %s: no answer within the deadline (timeout %s)", ErrUnavailable, method, p.endpoint, p.timeout)
	case codes.Canceled:
		return fmt.Errorf("%w: %s at %s: the call was canceled", ErrUnavailable, method, p.endpoint)
	case codes.Unavailable, codes.ResourceExhausted, codes.PermissionDenied, codes.Unauthenticated:
		// Not reachable, throttled, or the plugin's own access to its KMS is broken: nothing is
		// known about the wrapped key, and a retry may succeed.
		return fmt.Errorf("%w: %s at %s: %s: %s", ErrUnavailable, method, p.endpoint, st.Code(), msg)
	}
	return fmt.Errorf("%w: %s at %s: %s: %s", ErrPlugin, method, p.endpoint, st.Code(), msg)
}

// clean makes a plugin's text safe to put in an error: valid UTF-8, cut to maxMessage bytes, and
// "[redacted]" if it contains secret in any common encoding.
func clean(msg string, secret []byte) string {
	if len(secret) > 0 {
		for _, form := range []string{
			string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)),
			base64.StdEncoding.EncodeToString(secret), base64.RawStdEncoding.EncodeToString(secret),
			base64.URLEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret),
		} {
			if strings.Contains(msg, form) {
				return "[redacted: the plugin's message contained key material]"
			}
		}
	}
	msg = strings.ToValidUTF8(msg, "?")
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}
