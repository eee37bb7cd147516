// Command kms-plugin is a small Kubernetes KMS v2 plugin for tests and `make dev`
// (internal/kmsplugin): it serves the KMS v2 gRPC API on a unix socket and encrypts with AES-256-GCM
// under keys from a local JSON file, created with one key if it does not exist. It is not a key
// custodian: the keys sit in a plain file.
//
//	kms-plugin --socket /tmp/ksm-kms.sock --keys-file /tmp/ksm-kms-keys.json
//	kms-plugin --keys-file /tmp/ksm-kms-keys.json --add-key    # rotate: prints the new key id
//
// The running plugin picks up a changed keys file by itself (it compares the file's identity, size
// and modification time before each request), so --add-key rotates without a restart or a signal.
// It stops on SIGINT or SIGTERM, removing its socket.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/kmsplugin"
)

func main() {
	socket := flag.String("socket", "", "the unix socket to serve on (a path or unix:// URL)")
	keysFile := flag.String("keys-file", "", "the JSON keys file (created with one fresh key if absent)")
	addKey := flag.Bool("add-key", false, "add a fresh current key to --keys-file, print its id and exit")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *socket, *keysFile, *addKey); err != nil {
		log.Error("kms-plugin failed", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, socket, keysFile string, addKey bool) error {
	if keysFile == "" {
		return fmt.Errorf("--keys-file is required")
	}
	if addKey {
		id, err := kmsplugin.AddKey(keysFile)
		if err != nil {
			return err
		}
		fmt.Println(id)
		return nil
	}
	if socket == "" {
		return fmt.Errorf("--socket is required")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	svc, err := kmsplugin.NewService(keysFile)
	if err != nil {
		return err
	}
	stop, err := kmsplugin.Serve(ctx, socket, svc)
	if err != nil {
		return err
	}
	log.Info("serving KMS v2", "socket", socket, "keysFile", keysFile, "keyID", svc.CurrentKeyID())
	<-ctx.Done()
	stop()
	log.Info("stopped")
	return nil
}
