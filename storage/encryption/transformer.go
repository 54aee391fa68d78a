package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Prefixes of stored values. encPrefix marks any encrypted value (of any
// provider); aesgcmPrefix is the only provider Skiff implements.
const (
	encPrefix    = "k8s:enc:"
	aesgcmPrefix = encPrefix + "aesgcm:v1:"
)

// Key is one named AES-256 key.
type Key struct {
	Name   string
	Secret []byte
}

// Transformer encrypts values with the first of its keys and decrypts
// values written with any of them. It is safe for concurrent use.
type Transformer struct {
	keys  []namedAEAD
	byKey map[string]int
	rand  io.Reader
}

type namedAEAD struct {
	name   string
	prefix []byte
	aead   cipher.AEAD
}

// New builds a Transformer from keys, the first of which encrypts. There
// must be at least one key; names must be non-empty, unique and without
// ':'; every secret must be KeySize bytes. rand supplies nonces; nil means
// crypto/rand.
func New(keys []Key, rand io.Reader) (*Transformer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no encryption keys")
	}
	if rand == nil {
		rand = cryptoRand()
	}
	t := &Transformer{byKey: make(map[string]int, len(keys)), rand: rand}
	for i, k := range keys {
		if err := checkKeyName(k.Name); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if _, dup := t.byKey[k.Name]; dup {
			return nil, fmt.Errorf("key %d: name %q is used twice", i, k.Name)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("key %q: secret is %d bytes, want %d", k.Name, len(k.Secret), KeySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Name, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Name, err)
		}
		t.byKey[k.Name] = i
		t.keys = append(t.keys, namedAEAD{name: k.Name, prefix: []byte(aesgcmPrefix + k.Name + ":"), aead: aead})
	}
	return t, nil
}

// checkKeyName rejects names that cannot be written into a stored value.
func checkKeyName(name string) error {
	switch {
	case name == "":
		return errors.New("empty key name")
	case strings.Contains(name, ":"):
		return fmt.Errorf("key name %q contains ':'", name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("key name %q has leading or trailing space", name)
	}
	return nil
}

// CurrentKeyName is the name of the key new values are encrypted with.
func (t *Transformer) CurrentKeyName() string { return t.keys[0].name }

// Encrypt seals plain with the current (first) key, binding additionalData
// (the value's storage key) to it, and returns
// "k8s:enc:aesgcm:v1:<key name>:" + nonce + ciphertext.
func (t *Transformer) Encrypt(plain []byte, additionalData []byte) ([]byte, error) {
	k := t.keys[0]
	nonceSize := k.aead.NonceSize()
	out := make([]byte, len(k.prefix)+nonceSize, len(k.prefix)+nonceSize+len(plain)+k.aead.Overhead())
	copy(out, k.prefix)
	nonce := out[len(k.prefix):]
	if _, err := io.ReadFull(t.rand, nonce); err != nil {
		return nil, fmt.Errorf("encrypt with key %q: read nonce: %w", k.name, err)
	}
	return k.aead.Seal(out, nonce, plain, additionalData), nil
}

// Decrypt opens a stored value with the key named in its prefix.
//
// stale reports that the value should be rewritten: it was encrypted with
// a key other than the current one, or it is plaintext (no "k8s:enc:"
// prefix, written before encryption was on), in which case stored itself
// is returned unchanged. A value naming a key the Transformer does not
// have, of another provider, or failing authentication (tampered, or
// stored under a different additionalData) is an error.
func (t *Transformer) Decrypt(stored []byte, additionalData []byte) (plain []byte, stale bool, err error) {
	if !bytes.HasPrefix(stored, []byte(encPrefix)) {
		return stored, true, nil
	}
	if !bytes.HasPrefix(stored, []byte(aesgcmPrefix)) {
		return nil, false, fmt.Errorf("decrypt: unsupported encryption provider in prefix %q", providerOf(stored))
	}
	rest := stored[len(aesgcmPrefix):]
	sep := bytes.IndexByte(rest, ':')
	if sep < 0 {
		return nil, false, errors.New("decrypt: malformed value: no key name terminator after provider prefix")
	}
	name := string(rest[:sep])
	idx, ok := t.byKey[name]
	if !ok {
		return nil, false, fmt.Errorf("decrypt: value was encrypted with key %q, which is not in the key file", name)
	}
	k := t.keys[idx]
	body := rest[sep+1:]
	nonceSize := k.aead.NonceSize()
	if len(body) < nonceSize+k.aead.Overhead() {
		return nil, false, fmt.Errorf("decrypt with key %q: value too short (%d bytes)", name, len(body))
	}
	plain, err = k.aead.Open(nil, body[:nonceSize], body[nonceSize:], additionalData)
	if err != nil {
		return nil, false, fmt.Errorf("decrypt with key %q: %w (value tampered with, or stored under another key)", name, err)
	}
	return plain, idx != 0, nil
}

// providerOf returns the "k8s:enc:<provider>:" part of an encrypted value
// for error messages, bounded in length.
func providerOf(stored []byte) string {
	rest := stored[len(encPrefix):]
	if i := bytes.IndexByte(rest, ':'); i >= 0 && i <= 32 {
		return encPrefix + string(rest[:i+1])
	}
	return encPrefix + "..."
}
