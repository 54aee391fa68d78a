package encryption

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// KeySize is the length of every AES-256 key, in bytes.
const KeySize = 32

// defaultKeyName names the key LoadOrCreate generates for a new file.
const defaultKeyName = "key1"

// keyFile is the JSON layout of the key file.
type keyFile struct {
	Keys []keyEntry `json:"keys"`
}

type keyEntry struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// LoadOrCreate reads the key file at path and builds a Transformer from
// it. When the file does not exist it is created with mode 0600 holding a
// single fresh key named "key1" (its parent directory is created with mode
// 0700 if missing). rand supplies key material and nonces; nil means
// crypto/rand.
func LoadOrCreate(path string, rand io.Reader) (*Transformer, error) {
	if rand == nil {
		rand = cryptoRand()
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return create(path, rand)
	case err != nil:
		return nil, fmt.Errorf("read encryption key file: %w", err)
	}
	keys, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	t, err := New(keys, rand)
	if err != nil {
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	return t, nil
}

// create writes a new key file with one fresh key and returns its
// Transformer.
func create(path string, rand io.Reader) (*Transformer, error) {
	secret := make([]byte, KeySize)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, fmt.Errorf("generate encryption key: %w", err)
	}
	keys := []Key{{Name: defaultKeyName, Secret: secret}}
	data, err := marshalKeyFile(keys)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create encryption key file: %w", err)
	}
	if err := writeNewFile(path, data); err != nil {
		return nil, fmt.Errorf("create encryption key file: %w", err)
	}
	return New(keys, rand)
}

// parseKeyFile decodes the key file. Structural checks (unique names, key
// sizes) are New's job; this only decodes.
func parseKeyFile(data []byte) ([]Key, error) {
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	keys := make([]Key, 0, len(kf.Keys))
	for i, e := range kf.Keys {
		secret, err := base64.StdEncoding.DecodeString(e.Secret)
		if err != nil {
			return nil, fmt.Errorf("key %d (%q): secret is not valid base64: %w", i, e.Name, err)
		}
		keys = append(keys, Key{Name: e.Name, Secret: secret})
	}
	return keys, nil
}

// marshalKeyFile encodes keys in the key file layout.
func marshalKeyFile(keys []Key) ([]byte, error) {
	kf := keyFile{Keys: make([]keyEntry, 0, len(keys))}
	for _, k := range keys {
		kf.Keys = append(kf.Keys, keyEntry{Name: k.Name, Secret: base64.StdEncoding.EncodeToString(k.Secret)})
	}
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode encryption key file: %w", err)
	}
	return append(data, '\n'), nil
}

// writeNewFile writes data to path with mode 0600 via a temporary file and
// a hard link, so the key file appears complete or not at all, and a file
// that appeared meanwhile is not overwritten (on filesystems without hard
// links it falls back to a rename, which keeps only the first property).
func writeNewFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() { _ = os.Remove(tmpName) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("set mode: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	err = os.Link(tmpName, path)
	if err == nil || errors.Is(err, os.ErrExist) {
		return err
	}
	// Some filesystems have no hard links; a rename is still atomic.
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	return nil
}

// cryptoRand is the default entropy source.
func cryptoRand() io.Reader { return rand.Reader }
