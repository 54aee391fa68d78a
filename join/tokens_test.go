package join

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-sh/skiff/pki"
)

func testCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.EnsureCA(t.TempDir(), "ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestTokensCreateListDelete(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	ca := testCA(t)
	s, err := CreateToken(ctx, client, time.Hour, "for n1", ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken(s)
	if err != nil {
		t.Fatal(err)
	}
	if tok.CAHash != pki.CAHash(ca.Cert) {
		t.Errorf("token pins %s, want %s", tok.CAHash, pki.CAHash(ca.Cert))
	}
	if _, err := CreateToken(ctx, client, 0, "forever", ca.Cert); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateToken(ctx, client, -time.Second, "", ca.Cert); err == nil {
		t.Error("a negative TTL was accepted")
	}
	list, err := ListTokens(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("listed %d tokens, want 2", len(list))
	}
	for _, info := range list {
		switch info.Description {
		case "for n1":
			if info.ID != tok.ID || info.Expires == nil || time.Until(*info.Expires) > time.Hour || time.Until(*info.Expires) < 59*time.Minute {
				t.Errorf("token %+v", info)
			}
		case "forever":
			if info.Expires != nil {
				t.Errorf("token %+v expires", info)
			}
		default:
			t.Errorf("unexpected token %+v", info)
		}
	}
	if err := DeleteToken(ctx, client, s); err != nil {
		t.Fatal(err)
	}
	if err := DeleteToken(ctx, client, tok.ID); err == nil || !strings.Contains(err.Error(), "there is no token "+tok.ID) {
		t.Errorf("second delete: %v", err)
	}
	if err := DeleteToken(ctx, client, "nope"); err == nil {
		t.Error("a malformed ID was accepted")
	}
}

func TestEnsureServerToken(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	ca := testCA(t)
	dir := t.TempDir()
	first, err := EnsureServerToken(ctx, client, dir, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "node-token"))
	if err != nil || strings.TrimSpace(string(data)) != first {
		t.Fatalf("node-token holds %q (%v), want %q", data, err, first)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "node-token")); fi.Mode().Perm() != 0o600 {
		t.Errorf("node-token mode %v", fi.Mode().Perm())
	}
	tok, _ := ParseToken(first)
	secrets := client.CoreV1().Secrets("kube-system")
	sec, err := secrets.Get(ctx, "bootstrap-token-"+tok.ID, metav1.GetOptions{})
	if err != nil || !vouchesFor(sec, tok, time.Now().AddDate(50, 0, 0)) {
		t.Fatalf("the Secret does not vouch for the server token forever: %v", err)
	}

	again, err := EnsureServerToken(ctx, client, dir, ca.Cert)
	if err != nil || again != first {
		t.Fatalf("restart gave %q (%v), want the same token", again, err)
	}

	// Someone deleted the Secret: the token in the file comes back.
	if err := secrets.Delete(ctx, "bootstrap-token-"+tok.ID, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if again, err = EnsureServerToken(ctx, client, dir, ca.Cert); err != nil || again != first {
		t.Fatalf("after deletion: %q (%v), want the same token", again, err)
	}
	// Someone shortened it: it is made permanent again.
	sec, _ = secrets.Get(ctx, "bootstrap-token-"+tok.ID, metav1.GetOptions{})
	sec.Data["expiration"] = []byte("2000-01-01T00:00:00Z")
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureServerToken(ctx, client, dir, ca.Cert); err != nil {
		t.Fatal(err)
	}
	sec, _ = secrets.Get(ctx, "bootstrap-token-"+tok.ID, metav1.GetOptions{})
	if _, has := sec.Data["expiration"]; has {
		t.Error("the server token still expires")
	}

	// A new CA (a new cluster on the same data dir) gets a new token.
	other := testCA(t)
	fresh, err := EnsureServerToken(ctx, client, dir, other.Cert)
	if err != nil {
		t.Fatal(err)
	}
	ft, _ := ParseToken(fresh)
	if fresh == first || ft.CAHash != pki.CAHash(other.Cert) {
		t.Errorf("after a CA change got %q", fresh)
	}
}
