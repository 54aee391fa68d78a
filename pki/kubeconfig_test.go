package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestWriteKubeconfig(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM, err := ca.IssueClient("skiff-admin", []string{"system:masters"}, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kube", "admin.conf")
	// A pre-existing, too-open file must end up 0600.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	const server = "https://127.0.0.1:6443"
	if err := WriteKubeconfig(path, server, "skiff", "skiff-admin", ca.CertPEM, certPEM, keyPEM); err != nil {
		t.Fatalf("WriteKubeconfig: %v", err)
	}
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("mode = %o, want 600", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("LoadFromFile: %v", err)
	}
	if cfg.CurrentContext != "skiff" {
		t.Errorf("current-context = %q, want skiff", cfg.CurrentContext)
	}
	kctx, ok := cfg.Contexts["skiff"]
	if !ok || kctx.Cluster != "skiff" || kctx.AuthInfo != "skiff-admin" {
		t.Errorf("context skiff = %+v", kctx)
	}
	if auth := cfg.AuthInfos["skiff-admin"]; auth == nil || auth.ClientCertificate != "" || auth.ClientKey != "" {
		t.Errorf("user entry should embed data, got %+v", auth)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		t.Fatalf("RESTConfigFromKubeConfig: %v", err)
	}
	if rc.Host != server {
		t.Errorf("Host = %q", rc.Host)
	}
	if !bytes.Equal(rc.TLSClientConfig.CAData, ca.CertPEM) {
		t.Error("CAData differs from the CA PEM")
	}
	if !bytes.Equal(rc.TLSClientConfig.CertData, certPEM) {
		t.Error("CertData differs from the client certificate")
	}
	if !bytes.Equal(rc.TLSClientConfig.KeyData, keyPEM) {
		t.Error("KeyData differs from the client key")
	}
}

func TestWriteKubeconfigRejectsEmptyFields(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][3]string{{"", "c", "u"}, {"https://x", "", "u"}, {"https://x", "c", ""}} {
		if err := WriteKubeconfig(filepath.Join(dir, "k"), args[0], args[1], args[2], nil, nil, nil); err == nil {
			t.Errorf("WriteKubeconfig(%q, %q, %q): want error", args[0], args[1], args[2])
		}
	}
}

// TestMutualTLSEndToEnd checks the pieces fit together: a server using an
// EnsureServing certificate and requiring client certificates from the CA,
// reached through a client-go rest.Config built from a kubeconfig file.
func TestMutualTLSEndToEnd(t *testing.T) {
	// The TLS stack checks validity against the real clock.
	now := time.Now()
	dir := t.TempDir()
	ca, err := EnsureCA(dir, "ca", now)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := EnsureServing(dir, ca, "apiserver", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := EnsureClientCert(dir, "admin", "skiff-admin", []string{"system:masters"}, ca, now)
	if err != nil {
		t.Fatal(err)
	}

	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.Cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := r.TLS.PeerCertificates[0]
		_, _ = io.WriteString(w, peer.Subject.CommonName+"/"+peer.Subject.Organization[0])
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{serving},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
	srv.StartTLS()
	defer srv.Close()

	path := filepath.Join(dir, "admin.conf")
	if err := WriteKubeconfig(path, srv.URL, "skiff", "skiff-admin", ca.CertPEM, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET over mutual TLS: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "skiff-admin/system:masters" {
		t.Errorf("server saw client %q", body)
	}
}
