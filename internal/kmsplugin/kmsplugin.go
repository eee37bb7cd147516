// Package kmsplugin is a small Kubernetes KMS v2 plugin for tests and `make dev`: it serves the KMS
// v2 gRPC API (k8s.io/kms/pkg/service) on a unix socket and encrypts with AES-256-GCM under keys
// kept in a local file. It holds its keys in a plain file, so it is no custody at all: production
// uses a real KMS v2 plugin (a cloud KMS, Vault, an HSM) instead.
//
// The keys file is a JSON list of {"id": "...", "key": "<32 bytes, base64>"}; the last key is the
// current one, with which Encrypt encrypts and whose id Status reports. Start creates the file with
// one fresh key if it does not exist; AddKey appends a fresh key (a rotation).
//
// Reloading: the plugin re-reads the keys file when it changes. Before it answers any request it
// compares the file's identity (device and inode), size and modification time with those of the
// file it loaded, and reloads when any differs; AddKey replaces the file atomically, so the next
// request after AddKey returns already sees the new key. No signal is needed. Keys removed from the
// file can no longer decrypt; if the file becomes unreadable or invalid the plugin keeps the keys
// it had and reports the problem in Status's healthz (so clients see it unhealthy) until the file
// is fixed.
//
// Ciphertexts are nonce (12 bytes) || AES-256-GCM(key, plaintext) with the key id as associated
// data, so a ciphertext presented under another key id fails; Encrypt returns the annotation
// AnnotationFormat, which Decrypt requires.
package kmsplugin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"
	"k8s.io/kms/pkg/service"
	"k8s.io/kms/pkg/util"
)

// AnnotationFormat is the annotation Encrypt returns and Decrypt requires, with the value
// FormatV1.
const (
	AnnotationFormat = "format.kms-plugin.kube-secrets-manager.io"
	FormatV1         = "aes-256-gcm/v1"
)

// APIVersion is the KMS plugin API version Status reports.
const APIVersion = "v2"

const (
	nonceSize = 12
	// How long the plugin waits for a connection's handshake, and how long Serve waits for the
	// server to answer its first Status.
	connectionTimeout = 10 * time.Second
	startTimeout      = 10 * time.Second
)

// Service is a KMS v2 service (k8s.io/kms/pkg/service.Service) over a keys file.
type Service struct {
	keysFile string

	mu      sync.Mutex
	aeads   map[string]cipher.AEAD
	current string
	loaded  os.FileInfo
	loadErr error
}

var _ service.Service = (*Service)(nil)

// NewService loads keysFile (creating it with one fresh key if it does not exist).
func NewService(keysFile string) (*Service, error) {
	if err := EnsureKeys(keysFile); err != nil {
		return nil, err
	}
	s := &Service{keysFile: keysFile}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	return s, nil
}

// refreshLocked reloads the keys file if it changed since it was loaded.
func (s *Service) refreshLocked() {
	fi, err := os.Stat(s.keysFile)
	if err != nil {
		s.loaded, s.loadErr = nil, err
		return
	}
	if s.loaded != nil && os.SameFile(fi, s.loaded) && fi.Size() == s.loaded.Size() && fi.ModTime().Equal(s.loaded.ModTime()) {
		return
	}
	s.loaded = fi
	keys, err := LoadKeys(s.keysFile)
	if err != nil {
		s.loadErr = err
		return
	}
	defer func() {
		for _, k := range keys {
			clear(k.Material)
		}
	}()
	aeads := make(map[string]cipher.AEAD, len(keys))
	for _, k := range keys {
		block, err := aes.NewCipher(k.Material)
		if err != nil {
			s.loadErr = err
			return
		}
		if aeads[k.ID], err = cipher.NewGCM(block); err != nil {
			s.loadErr = err
			return
		}
	}
	s.aeads, s.current, s.loadErr = aeads, keys[len(keys)-1].ID, nil
}

func gcmAAD(keyID string) []byte {
	return []byte("kube-secrets-manager.io/kms-plugin/v1\x00" + keyID)
}

// Status reports the current key id, and healthz "ok" unless the keys file could not be reloaded.
func (s *Service) Status(ctx context.Context) (*service.StatusResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	healthz := "ok"
	if s.loadErr != nil {
		healthz = "the keys file could not be reloaded: " + s.loadErr.Error()
	}
	return &service.StatusResponse{Version: APIVersion, Healthz: healthz, KeyID: s.current}, nil
}

// Encrypt encrypts data with the current key.
func (s *Service) Encrypt(ctx context.Context, uid string, data []byte) (*service.EncryptResponse, error) {
	s.mu.Lock()
	s.refreshLocked()
	id, aead := s.current, s.aeads[s.current]
	s.mu.Unlock()
	nonce := make([]byte, nonceSize, nonceSize+len(data)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, status.Error(codes.Internal, "no randomness for a nonce")
	}
	return &service.EncryptResponse{
		Ciphertext:  aead.Seal(nonce, nonce, data, gcmAAD(id)),
		KeyID:       id,
		Annotations: map[string][]byte{AnnotationFormat: []byte(FormatV1)},
	}, nil
}

// Decrypt decrypts a ciphertext of Encrypt with the key it names.
func (s *Service) Decrypt(ctx context.Context, uid string, req *service.DecryptRequest) ([]byte, error) {
	if string(req.Annotations[AnnotationFormat]) != FormatV1 {
		return nil, status.Errorf(codes.InvalidArgument, "the ciphertext's %s annotation is missing or not %q", AnnotationFormat, FormatV1)
	}
	s.mu.Lock()
	s.refreshLocked()
	aead := s.aeads[req.KeyID]
	s.mu.Unlock()
	if aead == nil {
		return nil, status.Errorf(codes.NotFound, "unknown key id %q", req.KeyID)
	}
	if len(req.Ciphertext) < nonceSize+aead.Overhead() {
		return nil, status.Error(codes.InvalidArgument, "the ciphertext is too short")
	}
	pt, err := aead.Open(nil, req.Ciphertext[:nonceSize], req.Ciphertext[nonceSize:], gcmAAD(req.KeyID))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "the ciphertext failed authentication")
	}
	return pt, nil
}

// CurrentKeyID is the id of the key Encrypt uses now (after reloading the keys file if it changed).
func (s *Service) CurrentKeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	return s.current
}

// Start serves a Service over keysFile (created if absent) on socketPath (a path or unix:// URL)
// until stop is called or ctx ends. When Start returns without error the plugin answers requests.
func Start(ctx context.Context, socketPath, keysFile string) (stop func(), err error) {
	svc, err := NewService(keysFile)
	if err != nil {
		return nil, err
	}
	return Serve(ctx, socketPath, svc)
}

// Serve serves svc (any KMS v2 service) on socketPath with k8s.io/kms/pkg/service's GRPCService
// until stop is called or ctx ends. A stale socket file nobody answers on is removed first; a
// socket some server answers on is an error. When Serve returns without error the server has
// answered a Status request. stop shuts the server down gracefully (which removes the socket
// file), waits for it, and may be called more than once.
func Serve(ctx context.Context, socketPath string, svc service.Service) (stop func(), err error) {
	path, err := SocketPath(socketPath)
	if err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ready := &readySignal{Service: svc, ready: make(chan struct{})}
	gs := service.NewGRPCService(path, connectionTimeout, ready)
	// done is closed when ListenAndServe returns, with its error in serveErr.
	done := make(chan struct{})
	var serveErr error
	go func() {
		serveErr = gs.ListenAndServe()
		close(done)
	}()

	// Probe with Status until our own service answers: that also orders the server's start before
	// any Shutdown.
	probeCtx, cancelProbe := context.WithTimeout(ctx, startTimeout)
	defer cancelProbe()
	go probe(probeCtx, path)
	select {
	case <-ready.ready:
	case <-done:
		return nil, fmt.Errorf("kms-plugin: serving on %s: %w", path, serveErr)
	case <-probeCtx.Done():
		// The server started (or it would have failed), so Shutdown is ordered after it once
		// it answers; shut it down in the background rather than racing its start.
		go func() {
			select {
			case <-ready.ready:
				gs.Shutdown()
			case <-done: // it failed after all; nothing to stop
			}
		}()
		return nil, fmt.Errorf("kms-plugin: the server on %s did not answer within %s (or the context ended)", path, startTimeout)
	}

	var once sync.Once
	stopped := make(chan struct{})
	stop = func() {
		once.Do(func() {
			gs.Shutdown()
			<-done
			close(stopped)
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-stopped:
		}
	}()
	return stop, nil
}

// SocketPath turns a unix:// endpoint into a path; a path is returned as it is.
func SocketPath(endpoint string) (string, error) {
	if strings.Contains(endpoint, "://") {
		return util.ParseEndpoint(endpoint)
	}
	if endpoint == "" {
		return "", errors.New("kms-plugin: no socket path")
	}
	return endpoint, nil
}

// readySignal passes every call on and closes ready when the first Status is answered.
type readySignal struct {
	service.Service
	once  sync.Once
	ready chan struct{}
}

func (r *readySignal) Status(ctx context.Context) (*service.StatusResponse, error) {
	res, err := r.Service.Status(ctx)
	r.once.Do(func() { close(r.ready) })
	return res, err
}

func probe(ctx context.Context, path string) {
	conn, err := dial(path)
	if err != nil {
		return
	}
	defer func() { _ = conn.Close() }()
	client := kmsapi.NewKeyManagementServiceClient(conn)
	for {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := client.Status(callCtx, &kmsapi.StatusRequest{}, grpc.WaitForReady(true))
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
	}
}

func dial(path string) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///kms-plugin",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}))
}

// removeStaleSocket removes a socket file at path that nothing listens on (left by a plugin that
// did not stop cleanly). Anything else at path is left alone (and listening then fails).
func removeStaleSocket(path string) error {
	if strings.HasPrefix(path, "@") {
		return nil // an abstract socket has no file
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		return nil
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = conn.Close()
		return fmt.Errorf("kms-plugin: something already serves on %s", path)
	}
	if err := os.Remove(filepath.Clean(path)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
