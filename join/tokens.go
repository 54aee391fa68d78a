package join

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/pki"
)

// NodeTokenFile is the name of the server's own join token in its data
// dir.
const NodeTokenFile = "node-token"

// createAttempts bounds the retries when a fresh token ID is taken.
const createAttempts = 5

// CreateToken creates a bootstrap token Secret valid for ttl (0: it never
// expires) and returns the join token for it, pinned to caCert.
func CreateToken(ctx context.Context, client kubernetes.Interface, ttl time.Duration, description string, caCert *x509.Certificate) (string, error) {
	t, err := createToken(ctx, client, ttl, description, caCert)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}

func createToken(ctx context.Context, client kubernetes.Interface, ttl time.Duration, description string, caCert *x509.Certificate) (Token, error) {
	if caCert == nil {
		return Token{}, errors.New("create join token: no cluster CA certificate")
	}
	if ttl < 0 {
		return Token{}, fmt.Errorf("create join token: negative TTL %s", ttl)
	}
	var expires *time.Time
	if ttl > 0 {
		at := time.Now().Add(ttl).Truncate(time.Second)
		expires = &at
	}
	hash := pki.CAHash(caCert)
	for attempt := 1; ; attempt++ {
		t, err := newToken(nil, hash)
		if err != nil {
			return Token{}, err
		}
		_, err = client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, tokenSecret(t, expires, description), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) && attempt < createAttempts {
			continue
		}
		if err != nil {
			return Token{}, fmt.Errorf("create join token: %w", err)
		}
		return t, nil
	}
}

// ListTokens lists the bootstrap tokens, by ID.
func ListTokens(ctx context.Context, client kubernetes.Interface) ([]TokenInfo, error) {
	list, err := client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeBootstrapToken)).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	var out []TokenInfo
	for i := range list.Items {
		if info, ok := tokenInfo(&list.Items[i]); ok {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DeleteToken deletes a bootstrap token, named by its ID (or "ID.SECRET",
// or the whole join token). Nodes that already joined keep working: they
// use their certificates, not the token. The API server may still accept
// the token for the few seconds it caches what it read of it.
func DeleteToken(ctx context.Context, client kubernetes.Interface, id string) error {
	id, err := tokenID(id)
	if err != nil {
		return fmt.Errorf("delete join token: %w", err)
	}
	err = client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, secretPrefix+id, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("delete join token: there is no token %s", id)
	}
	if err != nil {
		return fmt.Errorf("delete join token %s: %w", id, err)
	}
	return nil
}

// EnsureServerToken makes sure DATA_DIR/node-token holds a join token that
// never expires, pinned to caCert, whose bootstrap token Secret exists, and
// returns it. The token in the file is kept across restarts: a missing or
// altered Secret is written back from it. A new token replaces the file
// only when the file is missing, unreadable as a token, or pinned to
// another CA.
func EnsureServerToken(ctx context.Context, client kubernetes.Interface, dataDir string, caCert *x509.Certificate) (string, error) {
	if caCert == nil {
		return "", errors.New("server join token: no cluster CA certificate")
	}
	path := filepath.Join(dataDir, NodeTokenFile)
	description := "The server's join token, kept in " + path
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("server join token: %w", err)
	}
	if t, perr := ParseToken(string(data)); err == nil && perr == nil && t.CAHash == pki.CAHash(caCert) {
		if err := restoreSecret(ctx, client, t, description); err != nil {
			return "", fmt.Errorf("server join token: %w", err)
		}
		return t.String(), nil
	}
	t, err := createToken(ctx, client, 0, description, caCert)
	if err != nil {
		return "", fmt.Errorf("server join token: %w", err)
	}
	if err := writeFileAtomic(path, []byte(t.String()+"\n"), 0o600); err != nil {
		// A token nobody knows must not stay valid forever.
		_ = client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, secretPrefix+t.ID, metav1.DeleteOptions{})
		return "", fmt.Errorf("server join token: %w", err)
	}
	return t.String(), nil
}

// restoreSecret makes the Secret of t exist and vouch for it, never
// expiring.
func restoreSecret(ctx context.Context, client kubernetes.Interface, t Token, description string) error {
	secrets := client.CoreV1().Secrets(metav1.NamespaceSystem)
	want := tokenSecret(t, nil, description)
	cur, err := secrets.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := secrets.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("restoring token %s: %w", t.ID, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading token %s: %w", t.ID, err)
	}
	if vouchesFor(cur, t, time.Now()) && cur.Data[keyExpiration] == nil {
		return nil
	}
	if cur.DeletionTimestamp != nil {
		return fmt.Errorf("token %s is being deleted; start again once it is gone", t.ID)
	}
	cur.Type = corev1.SecretTypeBootstrapToken
	cur.Data = want.Data
	if _, err := secrets.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("restoring token %s: %w", t.ID, err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file renamed
// into place, so readers never see a partial file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		_ = tmp.Close()
		_ = os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
