package kmsplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"
)

// socketDir is a short temporary folder: unix socket paths are limited to about 100 bytes, which
// t.TempDir's long names can exceed.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ksm-kms-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T) (client kmsapi.KeyManagementServiceClient, sock, keys string, stop func()) {
	t.Helper()
	dir := socketDir(t)
	sock, keys = filepath.Join(dir, "kms.sock"), filepath.Join(dir, "keys.json")
	stop, err := Start(testContext(t), sock, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	conn, err := dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return kmsapi.NewKeyManagementServiceClient(conn), sock, keys, stop
}

func TestKeysFile(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys.json")
	if _, err := LoadKeys(keys); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadKeys of a missing file: %v", err)
	}
	if err := EnsureKeys(keys); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keys)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the keys file is %v, %v; want mode 0600", fi.Mode(), err)
	}
	first, _ := LoadKeys(keys)
	if len(first) != 1 || len(first[0].Material) != KeySize {
		t.Fatalf("a new keys file holds %d keys", len(first))
	}
	// EnsureKeys leaves an existing file alone.
	if err := EnsureKeys(keys); err != nil {
		t.Fatal(err)
	}
	id, err := AddKey(keys)
	if err != nil {
		t.Fatal(err)
	}
	all, err := LoadKeys(keys)
	if err != nil || len(all) != 2 || all[0].ID != first[0].ID || !bytes.Equal(all[0].Material, first[0].Material) || all[1].ID != id {
		t.Fatalf("after AddKey: %d keys, %v", len(all), err)
	}
	// The file is the documented form: a JSON list of {id, key}, the key base64.
	var raw []map[string]string
	data, _ := os.ReadFile(keys)
	if err := json.Unmarshal(data, &raw); err != nil || raw[1]["id"] != id || len(raw[1]["key"]) != 44 {
		t.Fatalf("the keys file's form: %v", err)
	}
	// Ids are not reused even when the last key is removed by hand.
	trimmed, _ := json.Marshal(all[:1])
	if err := os.WriteFile(keys, trimmed, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := AddKey(keys)
	if err != nil || again == id || again == first[0].ID {
		t.Fatalf("AddKey after removing the last key returned %q (%v); the removed key was %q", again, err, id)
	}
}

func TestParseKeysRejects(t *testing.T) {
	key := `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`
	for name, in := range map[string]string{
		"not json":     `{`,
		"not a list":   `{"id":"a","key":` + key + `}`,
		"empty":        `[]`,
		"no id":        `[{"key":` + key + `}]`,
		"short key":    `[{"id":"a","key":"AAAA"}]`,
		"duplicate id": `[{"id":"a","key":` + key + `},{"id":"a","key":` + key + `}]`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseKeys([]byte(in)); !errors.Is(err, ErrInvalidKeys) {
				t.Fatalf("err = %v", err)
			} else if strings.Contains(err.Error(), "AAAAAAAA") {
				t.Fatalf("the error quotes key material: %v", err)
			}
		})
	}
}

func TestServeEncryptDecryptRotate(t *testing.T) {
	client, _, keys, _ := start(t)
	ctx := testContext(t)
	st, err := client.Status(ctx, &kmsapi.StatusRequest{})
	if err != nil || st.Version != "v2" || st.Healthz != "ok" || st.KeyId == "" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	plain := []byte("0123456789abcdef0123456789abcdef")
	enc, err := client.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: plain, Uid: "u1"})
	if err != nil || enc.KeyId != st.KeyId || string(enc.Annotations[AnnotationFormat]) != FormatV1 || bytes.Contains(enc.Ciphertext, plain) {
		t.Fatalf("Encrypt = %+v, %v", enc, err)
	}
	decrypt := func(keyID string, ct []byte, ann map[string][]byte) ([]byte, error) {
		res, err := client.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: ct, Uid: "u2", KeyId: keyID, Annotations: ann})
		if err != nil {
			return nil, err
		}
		return res.Plaintext, nil
	}
	if got, err := decrypt(enc.KeyId, enc.Ciphertext, enc.Annotations); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}

	// Rotation: AddKey is seen by the next request; the old key still decrypts.
	newID, err := AddKey(keys)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := client.Status(ctx, &kmsapi.StatusRequest{}); err != nil || st.KeyId != newID || st.Healthz != "ok" {
		t.Fatalf("Status after AddKey = %+v, %v; want key id %s", st, err, newID)
	}
	enc2, err := client.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: plain, Uid: "u3"})
	if err != nil || enc2.KeyId != newID {
		t.Fatalf("Encrypt after AddKey = %+v, %v", enc2, err)
	}
	if got, err := decrypt(enc.KeyId, enc.Ciphertext, enc.Annotations); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt with the old key = %q, %v", got, err)
	}

	// Failures.
	flipped := bytes.Clone(enc.Ciphertext)
	flipped[len(flipped)-1] ^= 1
	for name, c := range map[string]struct {
		keyID string
		ct    []byte
		ann   map[string][]byte
		code  codes.Code
	}{
		"unknown key id":     {"key-nope", enc.Ciphertext, enc.Annotations, codes.NotFound},
		"the other key's id": {newID, enc.Ciphertext, enc.Annotations, codes.InvalidArgument},
		"tampered":           {enc.KeyId, flipped, enc.Annotations, codes.InvalidArgument},
		"short":              {enc.KeyId, enc.Ciphertext[:10], enc.Annotations, codes.InvalidArgument},
		"no annotation":      {enc.KeyId, enc.Ciphertext, nil, codes.InvalidArgument},
		"other format":       {enc.KeyId, enc.Ciphertext, map[string][]byte{AnnotationFormat: []byte("v9")}, codes.InvalidArgument},
	} {
		if _, err := decrypt(c.keyID, c.ct, c.ann); status.Code(err) != c.code {
			t.Errorf("%s: Decrypt error %v, want code %s", name, err, c.code)
		}
	}
}

func TestBrokenKeysFileIsUnhealthyAndKeepsKeys(t *testing.T) {
	client, _, keys, _ := start(t)
	ctx := testContext(t)
	enc, err := client.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: []byte("x"), Uid: "u"})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(keys)
	if err := os.WriteFile(keys, []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := client.Status(ctx, &kmsapi.StatusRequest{})
	if err != nil || st.Healthz == "ok" || st.KeyId != enc.KeyId {
		t.Fatalf("Status with a broken keys file = %+v, %v; want unhealthy with the old key id", st, err)
	}
	if _, err := client.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations}); err != nil {
		t.Fatalf("Decrypt with the kept keys: %v", err)
	}
	if err := os.Remove(keys); err != nil {
		t.Fatal(err)
	}
	if st, _ := client.Status(ctx, &kmsapi.StatusRequest{}); st.Healthz == "ok" {
		t.Fatal("healthy without a keys file")
	}
	if err := os.WriteFile(keys+".new", good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(keys+".new", keys); err != nil {
		t.Fatal(err)
	}
	if st, err := client.Status(ctx, &kmsapi.StatusRequest{}); err != nil || st.Healthz != "ok" {
		t.Fatalf("Status after the keys file is restored = %+v, %v", st, err)
	}
}

func TestStopStaleSocketAndContext(t *testing.T) {
	_, sock, keys, stop := start(t)
	// A second plugin on a socket that is being served is refused.
	if _, err := Start(testContext(t), sock, keys); err == nil || !strings.Contains(err.Error(), "already serves") {
		t.Fatalf("a second Start on a served socket: %v", err)
	}
	stop()
	stop() // idempotent
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket file is left after stop: %v", err)
	}

	// A stale socket file (nobody listening) is replaced.
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(testContext(t), sock, keys); err == nil {
		t.Fatal("Start replaced a regular file at the socket path")
	}
	os.Remove(sock)
	makeStaleSocket(t, sock)

	ctx, cancel := context.WithCancel(testContext(t))
	stop2, err := Start(ctx, "unix://"+sock, keys)
	if err != nil {
		t.Fatalf("Start over a stale socket: %v", err)
	}
	defer stop2()
	// Ending the context stops the plugin.
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Lstat(sock); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the plugin did not stop when its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// makeStaleSocket leaves a socket file at path that nothing listens on, as a crashed plugin would.
func makeStaleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no stale socket: %v", err)
	}
}
