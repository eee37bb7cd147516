package kmsv2

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/kms/pkg/service"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/kmsplugin"
)

// socketDir is a short temporary folder: unix socket paths are limited to about 100 bytes, which
// t.TempDir's long names (with subtest names in them) can exceed.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ksm-kmsv2-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// plugin is the in-repo KMS v2 plugin, served in-process on a real unix socket, with hooks and
// call counters around it.
type plugin struct {
	t    *testing.T
	sock string
	keys string
	svc  *hooked

	mu   sync.Mutex
	stop func()
}

func startPlugin(t *testing.T) *plugin {
	t.Helper()
	return startPluginWith(t, &hooked{})
}

func startPluginWith(t *testing.T, h *hooked) *plugin {
	t.Helper()
	dir := socketDir(t)
	pl := &plugin{t: t, sock: filepath.Join(dir, "kms.sock"), keys: filepath.Join(dir, "keys.json"), svc: h}
	inner, err := kmsplugin.NewService(pl.keys)
	if err != nil {
		t.Fatal(err)
	}
	h.Service = inner
	pl.serve()
	t.Cleanup(pl.halt)
	return pl
}

func (pl *plugin) serve() {
	pl.t.Helper()
	stop, err := kmsplugin.Serve(context.Background(), pl.sock, pl.svc)
	if err != nil {
		pl.t.Fatal(err)
	}
	pl.mu.Lock()
	pl.stop = stop
	pl.mu.Unlock()
}

// halt stops the plugin (its socket goes away).
func (pl *plugin) halt() {
	pl.mu.Lock()
	stop := pl.stop
	pl.stop = nil
	pl.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// rotate adds a key to the keys file and returns its provider key id.
func (pl *plugin) rotate() string {
	pl.t.Helper()
	id, err := kmsplugin.AddKey(pl.keys)
	if err != nil {
		pl.t.Fatal(err)
	}
	return KeyID(id)
}

func (pl *plugin) provider(opts Options) *Provider {
	pl.t.Helper()
	return newProvider(pl.t, pl.sock, opts)
}

func newProvider(t *testing.T, endpoint string, opts Options) *Provider {
	t.Helper()
	p, err := New(endpoint, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hooked wraps a KMS v2 service: it counts calls and lets a test change answers.
type hooked struct {
	service.Service
	statuses, encrypts, decrypts atomic.Int32

	status  func(ctx context.Context, res *service.StatusResponse) (*service.StatusResponse, error)
	encrypt func(ctx context.Context, plaintext []byte, res *service.EncryptResponse) (*service.EncryptResponse, error)
	decrypt func(ctx context.Context, req *service.DecryptRequest) ([]byte, error)
}

func (h *hooked) Status(ctx context.Context) (*service.StatusResponse, error) {
	h.statuses.Add(1)
	res, err := h.Service.Status(ctx)
	if err != nil || h.status == nil {
		return res, err
	}
	return h.status(ctx, res)
}

func (h *hooked) Encrypt(ctx context.Context, uid string, data []byte) (*service.EncryptResponse, error) {
	h.encrypts.Add(1)
	res, err := h.Service.Encrypt(ctx, uid, data)
	if err != nil || h.encrypt == nil {
		return res, err
	}
	return h.encrypt(ctx, data, res)
}

func (h *hooked) Decrypt(ctx context.Context, uid string, req *service.DecryptRequest) ([]byte, error) {
	h.decrypts.Add(1)
	if h.decrypt != nil {
		return h.decrypt(ctx, req)
	}
	return h.Service.Decrypt(ctx, uid, req)
}

// clock is a clock tests move.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
