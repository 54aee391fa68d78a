package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rawEtcdValue reads one key straight from etcd, under the API server.
func rawEtcdValue(t *testing.T, endpoints []string, key string) []byte {
	t.Helper()
	ec, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := ec.Get(ctx, key)
	if err != nil {
		t.Fatalf("etcd get %s: %v", key, err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("etcd has no key %s", key)
	}
	return resp.Kvs[0].Value
}

// TestSecretsEncryptedAtRest reads a Secret's key in etcd directly: it must
// hold ciphertext, while the API answers the plaintext.
func TestSecretsEncryptedAtRest(t *testing.T) {
	t.Parallel()
	srv, endpoints := startExternal(t)
	cs := newClient(t, srv)
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "secrets")
	const (
		plain   = "correct-horse-battery-staple"
		plain2  = "second-value-from-stringdata"
		plain3  = "rotated-password-after-update"
		keyName = "/registry/core/secrets/secrets/db"
	)
	_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data:       map[string][]byte{"password": []byte(plain)},
		StringData: map[string]string{"other": plain2},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(secrets ...string) {
		t.Helper()
		raw := rawEtcdValue(t, endpoints, keyName)
		if !bytes.HasPrefix(raw, []byte("k8s:enc:aesgcm:v1:")) {
			t.Fatalf("secret at rest does not start with k8s:enc:aesgcm:v1: %.40q", raw)
		}
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) {
				t.Fatalf("secret at rest contains the plaintext %q", s)
			}
		}
		if bytes.Contains(raw, []byte("password")) {
			t.Fatalf("secret at rest shows its key names")
		}
	}
	check(plain, plain2)

	got, err := cs.CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data["password"]) != plain || string(got.Data["other"]) != plain2 || len(got.StringData) != 0 {
		t.Fatalf("API returned data %q stringData %v", got.Data, got.StringData)
	}
	got.Data["password"] = []byte(plain3)
	if _, err := cs.CoreV1().Secrets(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	check(plain, plain2, plain3)
	list, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || string(list.Items[0].Data["password"]) != plain3 {
		t.Fatalf("list returned %d secrets", len(list.Items))
	}

	// Other kinds are not encrypted: the same read sees a ConfigMap's data,
	// so the checks above look at the real stored bytes.
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, configMap("open", map[string]string{"k": plain}, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if raw := rawEtcdValue(t, endpoints, "/registry/core/configmaps/secrets/open"); !bytes.Contains(raw, []byte(plain)) {
		t.Fatalf("configmap at rest does not hold its data in the clear: %.60q", raw)
	}

	// The key survives a restart: the server reads its own ciphertext.
	srv.Restart()
	after, err := newClient(t, srv).CoreV1().Secrets(ns).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("secret after restart: %v", err)
	}
	if string(after.Data["password"]) != plain3 {
		t.Fatalf("secret after restart reads %q", after.Data["password"])
	}
}

// TestEncryptionKeyRotation follows docs/operations-encryption.md: a new key
// first in the file, a restart, an unchanged replace of every Secret, and
// the old key can go.
func TestEncryptionKeyRotation(t *testing.T) {
	t.Parallel()
	srv, endpoints := startExternal(t)
	cs := newClient(t, srv)
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "rotate")
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Data:       map[string][]byte{"k": []byte("rotate-me")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const key = "/registry/core/secrets/rotate/s"
	if raw := rawEtcdValue(t, endpoints, key); !bytes.HasPrefix(raw, []byte("k8s:enc:aesgcm:v1:key1:")) {
		t.Fatalf("stored with %.30q, want key1", raw)
	}

	// Steps 1-3: a new key first, the old one second, restart.
	path := filepath.Join(srv.DataDir, "encryption.json")
	var file struct {
		Keys []struct {
			Name   string `json:"name"`
			Secret string `json:"secret"`
		} `json:"keys"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &file); err != nil || len(file.Keys) != 1 {
		t.Fatalf("key file: %v, %d keys", err, len(file.Keys))
	}
	old := file.Keys[0]
	fresh := old
	fresh.Name = "key2"
	fresh.Secret = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	file.Keys = append(file.Keys, old)
	file.Keys[0] = fresh
	out, _ := json.Marshal(file)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	cs = newClient(t, srv)

	// Step 4: an unchanged replace rewrites the value with the new key.
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, "s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if raw := rawEtcdValue(t, endpoints, key); !bytes.HasPrefix(raw, []byte("k8s:enc:aesgcm:v1:key2:")) {
		t.Fatalf("after the rewrite stored with %.30q, want key2", raw)
	}

	// Step 5: drop the old key; the secret still reads.
	file.Keys = file.Keys[:1]
	out, _ = json.Marshal(file)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	got, err := newClient(t, srv).CoreV1().Secrets(ns).Get(ctx, "s", metav1.GetOptions{})
	if err != nil || string(got.Data["k"]) != "rotate-me" {
		t.Fatalf("after dropping the old key: %v, %q", err, got.Data["k"])
	}
}
