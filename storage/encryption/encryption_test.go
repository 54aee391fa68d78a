package encryption

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// countingReader is a deterministic entropy source for tests: byte i is
// seed+i.
type countingReader struct{ next byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

func testKey(name string, fill byte) Key {
	return Key{Name: name, Secret: bytes.Repeat([]byte{fill}, KeySize)}
}

func mustNew(t *testing.T, keys ...Key) *Transformer {
	t.Helper()
	tr, err := New(keys, &countingReader{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr
}

const etcdKey = "/registry/secrets/default/db-password"

func TestRoundTrip(t *testing.T) {
	tr := mustNew(t, testKey("key1", 1))
	for _, plain := range [][]byte{[]byte("hunter2"), {}, bytes.Repeat([]byte("x"), 1<<16)} {
		stored, err := tr.Encrypt(plain, []byte(etcdKey))
		if err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		if !bytes.HasPrefix(stored, []byte("k8s:enc:aesgcm:v1:key1:")) {
			t.Fatalf("stored value has prefix %q", stored[:min(len(stored), 30)])
		}
		if len(plain) > 0 && bytes.Contains(stored, plain) {
			t.Fatal("plaintext visible in stored value")
		}
		got, stale, err := tr.Decrypt(stored, []byte(etcdKey))
		if err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		if stale {
			t.Error("value written with the current key reported stale")
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("round trip changed the value (len %d -> %d)", len(plain), len(got))
		}
	}
}

func TestNoncesDiffer(t *testing.T) {
	tr, err := New([]Key{testKey("key1", 1)}, nil) // crypto/rand
	if err != nil {
		t.Fatal(err)
	}
	a, err := tr.Encrypt([]byte("same"), []byte(etcdKey))
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.Encrypt([]byte("same"), []byte(etcdKey))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("two encryptions of the same value are identical")
	}
}

func TestEncryptNonceReadFailure(t *testing.T) {
	tr, err := New([]Key{testKey("key1", 1)}, strings.NewReader("short"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Encrypt([]byte("v"), nil); err == nil {
		t.Error("Encrypt with exhausted entropy: want error")
	}
}

func TestDecryptFailures(t *testing.T) {
	tr := mustNew(t, testKey("key1", 1), testKey("key2", 2))
	stored, err := tr.Encrypt([]byte("hunter2"), []byte(etcdKey))
	if err != nil {
		t.Fatal(err)
	}
	flipLast := bytes.Clone(stored)
	flipLast[len(flipLast)-1] ^= 1
	flipNonce := bytes.Clone(stored)
	flipNonce[len("k8s:enc:aesgcm:v1:key1:")] ^= 1
	// Claiming another listed key must not work either.
	relabeled := append([]byte("k8s:enc:aesgcm:v1:key2:"), stored[len("k8s:enc:aesgcm:v1:key1:"):]...)

	tests := []struct {
		name    string
		stored  []byte
		ad      string
		wantErr string
	}{
		{"wrong additional data", stored, "/registry/secrets/other/db-password", "key \"key1\""},
		{"no additional data", stored, "", "key \"key1\""},
		{"tampered ciphertext", flipLast, etcdKey, "key \"key1\""},
		{"tampered nonce", flipNonce, etcdKey, "key \"key1\""},
		{"relabeled to another key", relabeled, etcdKey, "key \"key2\""},
		{"truncated", stored[:len("k8s:enc:aesgcm:v1:key1:")+5], etcdKey, "too short"},
		{"unknown key", []byte("k8s:enc:aesgcm:v1:retired-key:0123456789abcdefghijklmnopqrstuvwxyz"), etcdKey, "\"retired-key\""},
		{"no key terminator", []byte("k8s:enc:aesgcm:v1:key1"), etcdKey, "malformed"},
		{"other provider", []byte("k8s:enc:kms:v2:foo:bar"), etcdKey, "k8s:enc:kms:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain, stale, err := tr.Decrypt(tc.stored, []byte(tc.ad))
			if err == nil {
				t.Fatalf("want error, got plain=%q stale=%v", plain, stale)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to mention %s", err, tc.wantErr)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	old := mustNew(t, testKey("key1", 1))
	stored, err := old.Encrypt([]byte("hunter2"), []byte(etcdKey))
	if err != nil {
		t.Fatal(err)
	}

	// Operator puts key2 first and keeps key1 second.
	rotated := mustNew(t, testKey("key2", 2), testKey("key1", 1))
	if rotated.CurrentKeyName() != "key2" {
		t.Errorf("CurrentKeyName = %q, want key2", rotated.CurrentKeyName())
	}
	plain, stale, err := rotated.Decrypt(stored, []byte(etcdKey))
	if err != nil {
		t.Fatalf("decrypt old value after rotation: %v", err)
	}
	if string(plain) != "hunter2" || !stale {
		t.Errorf("got %q stale=%v, want hunter2 stale=true", plain, stale)
	}

	// The rewrite re-encrypts with the new key, and the result is fresh.
	rewritten, err := rotated.Encrypt(plain, []byte(etcdKey))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(rewritten, []byte("k8s:enc:aesgcm:v1:key2:")) {
		t.Errorf("rewrite used prefix %q", rewritten[:23])
	}
	if _, stale, err := rotated.Decrypt(rewritten, []byte(etcdKey)); err != nil || stale {
		t.Errorf("rewritten value: stale=%v err=%v", stale, err)
	}

	// After dropping key1, the rewritten value still decrypts and an
	// un-rewritten one fails naming the dropped key.
	final := mustNew(t, testKey("key2", 2))
	if _, _, err := final.Decrypt(rewritten, []byte(etcdKey)); err != nil {
		t.Errorf("rewritten value after dropping old key: %v", err)
	}
	if _, _, err := final.Decrypt(stored, []byte(etcdKey)); err == nil || !strings.Contains(err.Error(), `"key1"`) {
		t.Errorf("old value after dropping old key: err = %v, want one naming key1", err)
	}
}

func TestPlaintextPassthrough(t *testing.T) {
	tr := mustNew(t, testKey("key1", 1))
	for _, v := range []string{`{"kind":"Secret"}`, "k8s\x00\x0a\x0cprotobuf", ""} {
		got, stale, err := tr.Decrypt([]byte(v), []byte(etcdKey))
		if err != nil {
			t.Fatalf("Decrypt(%q): %v", v, err)
		}
		if string(got) != v || !stale {
			t.Errorf("Decrypt(%q) = %q stale=%v, want unchanged and stale", v, got, stale)
		}
	}
}

func TestNewValidatesKeys(t *testing.T) {
	tests := []struct {
		name    string
		keys    []Key
		wantErr string
	}{
		{"no keys", nil, "no encryption keys"},
		{"empty name", []Key{testKey("", 1)}, "empty key name"},
		{"colon in name", []Key{testKey("a:b", 1)}, "contains ':'"},
		{"space around name", []Key{testKey(" a", 1)}, "space"},
		{"duplicate name", []Key{testKey("a", 1), testKey("a", 2)}, "used twice"},
		{"short secret", []Key{{Name: "a", Secret: make([]byte, 16)}}, "16 bytes, want 32"},
		{"fine", []Key{testKey("a", 1), testKey("b", 2)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.keys, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadOrCreateCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "encryption.json")
	tr, err := LoadOrCreate(path, &countingReader{next: 7})
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %o, want 600", st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kf struct {
		Keys []struct {
			Name   string `json:"name"`
			Secret string `json:"secret"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &kf); err != nil {
		t.Fatalf("file is not the documented JSON: %v\n%s", err, data)
	}
	if len(kf.Keys) != 1 || kf.Keys[0].Name != "key1" {
		t.Fatalf("keys = %+v, want one named key1", kf.Keys)
	}
	secret, err := base64.StdEncoding.DecodeString(kf.Keys[0].Secret)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 32 {
		t.Errorf("secret is %d bytes, want 32", len(secret))
	}
	if secret[0] != 7 || secret[31] != 7+31 {
		t.Error("secret was not taken from the given entropy source")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	// Loading again uses the same key: a value from the first Transformer
	// decrypts with the second.
	stored, err := tr.Encrypt([]byte("v"), []byte(etcdKey))
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(path, rand.Reader)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got, stale, err := again.Decrypt(stored, []byte(etcdKey)); err != nil || stale || string(got) != "v" {
		t.Errorf("reload: got %q stale=%v err=%v", got, stale, err)
	}
}

func TestLoadOrCreateReadsEditedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "encryption.json")
	k1, k2 := testKey("key1", 1), testKey("key2", 2)
	content := `{"keys":[` +
		`{"name":"key2","secret":"` + base64.StdEncoding.EncodeToString(k2.Secret) + `"},` +
		`{"name":"key1","secret":"` + base64.StdEncoding.EncodeToString(k1.Secret) + `"}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := LoadOrCreate(path, nil)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	if tr.CurrentKeyName() != "key2" {
		t.Errorf("current key = %q, want key2", tr.CurrentKeyName())
	}
	old, err := mustNew(t, k1).Encrypt([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, stale, err := tr.Decrypt(old, nil); err != nil || !stale {
		t.Errorf("old value: stale=%v err=%v", stale, err)
	}
}

func TestLoadOrCreateRejectsBadFiles(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name, content, wantErr string
	}{
		{"not JSON", "keys: [key1]", "parse JSON"},
		{"unknown field", `{"keys":[],"extra":1}`, "parse JSON"},
		{"no keys", `{"keys":[]}`, "no encryption keys"},
		{"bad base64", `{"keys":[{"name":"k","secret":"@@@"}]}`, "base64"},
		{"short key", `{"keys":[{"name":"k","secret":"` + base64.StdEncoding.EncodeToString(make([]byte, 24)) + `"}]}`, "24 bytes"},
		{"duplicate", `{"keys":[{"name":"k","secret":"` + good + `"},{"name":"k","secret":"` + good + `"}]}`, "used twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "encryption.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(path, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want one naming the file and containing %q", err, tc.wantErr)
			}
			// A bad file is never replaced.
			if data, _ := os.ReadFile(path); string(data) != tc.content {
				t.Error("bad key file was modified")
			}
		})
	}
}

func TestLoadOrCreateEntropyFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "encryption.json")
	if _, err := LoadOrCreate(path, io.LimitReader(rand.Reader, 8)); err == nil {
		t.Fatal("want error when entropy runs out")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file exists after failed creation: %v", err)
	}
}
