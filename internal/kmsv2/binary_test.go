package kmsv2

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPluginBinary runs hack/kms-plugin as a separate process: the provider talks to it, a key
// added with `kms-plugin --add-key` becomes the primary key while the old one still unwraps, and
// SIGTERM stops it and removes its socket.
func TestPluginBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hack/kms-plugin")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build hack/kms-plugin with")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "kms-plugin")
	build := exec.Command(goTool, "build", "-o", bin, "./hack/kms-plugin")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./hack/kms-plugin: %v\n%s", err, out)
	}

	dir := socketDir(t)
	sock, keys := filepath.Join(dir, "kms.sock"), filepath.Join(dir, "keys.json")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--socket", sock, "--keys-file", keys)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	ctx := testContext(t)

	p := newProvider(t, "unix://"+sock, Options{Timeout: time.Second, CacheSize: -1})
	waitFor(t, "the plugin process answers", 20*time.Second, func() error {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the plugin exited: %v\n%s", err, stderr.String())
		default:
		}
		return p.Healthy(ctx)
	})
	oldID, oldWrapped, err := p.Wrap(ctx, "", canary, aad)
	if err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(bin, "--keys-file", keys, "--add-key").Output()
	if err != nil {
		t.Fatalf("kms-plugin --add-key: %v", err)
	}
	newID := KeyID(strings.TrimSpace(string(out)))
	waitFor(t, "the plugin reports the added key", 10*time.Second, func() error {
		got, err := p.PrimaryKeyID(ctx)
		if err == nil && got != newID {
			err = fmt.Errorf("primary key %q, want %q", got, newID)
		}
		return err
	})
	if id, w, err := p.Wrap(ctx, "", canary, aad); err != nil || id != newID {
		t.Fatalf("Wrap after --add-key = %q, %v; want %q", id, err, newID)
	} else if got, err := p.Unwrap(ctx, id, w, aad); err != nil || !bytes.Equal(got, canary) {
		t.Fatalf("Unwrap under the new key: %v", err)
	}
	if got, err := p.Unwrap(ctx, oldID, oldWrapped, aad); err != nil || !bytes.Equal(got, canary) {
		t.Fatalf("Unwrap under the old key after rotation: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("the plugin exited with %v after SIGTERM\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		exited <- <-exited
		t.Fatalf("the plugin did not exit after SIGTERM\n%s", stderr.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket is left after the plugin stopped: %v", err)
	}
	if err := p.Healthy(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Healthy after the plugin stopped: %v", err)
	}
}
