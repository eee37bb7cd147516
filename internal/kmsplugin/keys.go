package kmsplugin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// KeySize is the size of every key in the keys file: AES-256.
const KeySize = 32

// maxKeyIDSize is the KMS v2 limit on a key id.
const maxKeyIDSize = 1024

// ErrInvalidKeys says the keys file cannot be used; it never includes key material.
var ErrInvalidKeys = errors.New("kms-plugin: the keys file is not valid")

// Key is one key-encryption key of the keys file. Material is base64 in the JSON form.
type Key struct {
	ID       string `json:"id"`
	Material []byte `json:"key"`
}

// LoadKeys reads and checks a keys file: a JSON list of keys, ids unique and non-empty, every key 32
// bytes; the last key is the current one.
func LoadKeys(keysFile string) ([]Key, error) {
	data, err := os.ReadFile(filepath.Clean(keysFile))
	if err != nil {
		return nil, err
	}
	return parseKeys(data)
}

func parseKeys(data []byte) ([]Key, error) {
	var keys []Key
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("%w: it is not a JSON list of {\"id\", \"key\"}", ErrInvalidKeys)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: it holds no key", ErrInvalidKeys)
	}
	seen := map[string]bool{}
	for i, k := range keys {
		switch {
		case k.ID == "" || len(k.ID) > maxKeyIDSize:
			return nil, fmt.Errorf("%w: key %d has an empty or over-long id", ErrInvalidKeys, i)
		case seen[k.ID]:
			return nil, fmt.Errorf("%w: key id %q appears twice", ErrInvalidKeys, k.ID)
		case len(k.Material) != KeySize:
			return nil, fmt.Errorf("%w: key %q is not %d bytes", ErrInvalidKeys, k.ID, KeySize)
		}
		seen[k.ID] = true
	}
	return keys, nil
}

// EnsureKeys creates keysFile with one fresh key if it does not exist, and checks it otherwise.
func EnsureKeys(keysFile string) error {
	_, err := LoadKeys(keysFile)
	if errors.Is(err, fs.ErrNotExist) {
		_, err = AddKey(keysFile)
	}
	return err
}

// AddKey appends a fresh key to keysFile (creating the file if it does not exist), which makes it
// the current key, and returns its id. The file is replaced atomically (a new file renamed over the
// old), so a running plugin sees either the old keys or the new ones. Ids carry the time and 64
// random bits ("key-20260102T150405Z-0123456789abcdef"), so an id is not reused even when keys are
// removed from the file by hand.
func AddKey(keysFile string) (string, error) {
	keys, err := LoadKeys(keysFile)
	if errors.Is(err, fs.ErrNotExist) {
		keys, err = nil, nil
	}
	if err != nil {
		return "", err
	}
	material := make([]byte, KeySize)
	suffix := make([]byte, 8)
	if _, err := rand.Read(material); err != nil {
		return "", err
	}
	if _, err := rand.Read(suffix); err != nil {
		return "", err
	}
	id := "key-" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(suffix)
	keys = append(keys, Key{ID: id, Material: material})
	defer func() {
		for _, k := range keys {
			clear(k.Material)
		}
	}()
	data, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return "", err
	}
	data = append(data, '\n')
	defer clear(data)
	if err := writeFileAtomic(keysFile, data); err != nil {
		return "", err
	}
	return id, nil
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file 0600, which it keeps: the keys are secret.
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
