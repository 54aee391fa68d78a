package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := EnsureCA(filepath.Join(t.TempDir(), "pki"), "ca", testNow)
	if err != nil {
		t.Fatalf("EnsureCA: %v", err)
	}
	return ca
}

func mustParseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return cert
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Mode().Perm()
}

func TestEnsureCACreateThenReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca, err := EnsureCA(dir, "ca", testNow)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("created certificate is not a CA: IsCA=%v KeyUsage=%v", ca.Cert.IsCA, ca.Cert.KeyUsage)
	}
	if want := testNow.Add(CAValidity); !ca.Cert.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", ca.Cert.NotAfter, want)
	}
	if _, ok := ca.Key.Public().(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", ca.Key.Public())
	}
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("dir mode = %o, want 700", got)
	}
	if got := fileMode(t, filepath.Join(dir, "ca.key")); got != 0o600 {
		t.Errorf("key mode = %o, want 600", got)
	}

	again, err := EnsureCA(dir, "ca", testNow.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !bytes.Equal(again.Cert.Raw, ca.Cert.Raw) {
		t.Error("reloaded CA certificate differs from the created one")
	}
	if !bytes.Equal(again.CertPEM, ca.CertPEM) {
		t.Error("reloaded CertPEM differs")
	}
	if !publicKeysEqual(again.Key.Public(), ca.Key.Public()) {
		t.Error("reloaded CA key differs")
	}
}

func TestEnsureCARefusesBrokenState(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		at      time.Time
		wantErr string
	}{
		{
			name:    "missing certificate",
			damage:  func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, "ca.crt")) },
			at:      testNow,
			wantErr: "only one of",
		},
		{
			name:    "missing key",
			damage:  func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, "ca.key")) },
			at:      testNow,
			wantErr: "only one of",
		},
		{
			name: "key from another CA",
			damage: func(t *testing.T, dir string) {
				other := t.TempDir()
				if _, err := EnsureCA(other, "ca", testNow); err != nil {
					t.Fatal(err)
				}
				copyFile(t, filepath.Join(other, "ca.key"), filepath.Join(dir, "ca.key"))
			},
			at:      testNow,
			wantErr: "does not match",
		},
		{
			name:    "expired",
			damage:  func(t *testing.T, dir string) {},
			at:      testNow.Add(CAValidity + time.Hour),
			wantErr: "expired",
		},
		{
			name: "garbage certificate",
			damage: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("junk"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			at:      testNow,
			wantErr: "no CERTIFICATE",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := EnsureCA(dir, "ca", testNow); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)
			_, err := EnsureCA(dir, "ca", tc.at)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestIssueServer(t *testing.T) {
	ca := newTestCA(t)
	names := []string{"localhost", "kubernetes.default.svc", "api.example.test"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1"), net.ParseIP("::1")}
	certPEM, keyPEM, err := ca.IssueServer("skiff-apiserver", names, ips, 48*time.Hour, testNow)
	if err != nil {
		t.Fatalf("IssueServer: %v", err)
	}
	if _, err := parseKeyPEM(keyPEM); err != nil {
		t.Fatalf("key: %v", err)
	}
	cert := mustParseCert(t, certPEM)
	if cert.Subject.CommonName != "skiff-apiserver" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v, want server auth only", cert.ExtKeyUsage)
	}
	if cert.IsCA {
		t.Error("leaf certificate claims to be a CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	hosts := slices.Clone(names)
	for _, ip := range ips {
		hosts = append(hosts, ip.String())
	}
	for _, host := range hosts {
		_, err := cert.Verify(x509.VerifyOptions{
			DNSName:     host,
			Roots:       roots,
			CurrentTime: testNow,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "other.example.test", Roots: roots, CurrentTime: testNow}); err == nil {
		t.Error("certificate verified for a name it does not carry")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: testNow.Add(72 * time.Hour)}); err == nil {
		t.Error("certificate verified after its validity")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("server certificate verified for client auth")
	}
}

func TestIssueServerNeedsANameAndValidity(t *testing.T) {
	ca := newTestCA(t)
	if _, _, err := ca.IssueServer("x", nil, nil, time.Hour, testNow); err == nil {
		t.Error("no names: want error")
	}
	if _, _, err := ca.IssueServer("x", []string{"x"}, nil, 0, testNow); err == nil {
		t.Error("zero validity: want error")
	}
}

func TestLeafValidityCappedAtCA(t *testing.T) {
	ca := newTestCA(t)
	certPEM, _, err := ca.IssueClient("u", nil, 2*CAValidity, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustParseCert(t, certPEM).NotAfter; !got.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter = %v, want CA NotAfter %v", got, ca.Cert.NotAfter)
	}
}

func TestIssueClient(t *testing.T) {
	ca := newTestCA(t)
	certPEM, _, err := ca.IssueClient("skiff-admin", []string{"system:masters", "ops"}, time.Hour, testNow)
	if err != nil {
		t.Fatalf("IssueClient: %v", err)
	}
	cert := mustParseCert(t, certPEM)
	if cert.Subject.CommonName != "skiff-admin" {
		t.Errorf("CN = %q, want skiff-admin", cert.Subject.CommonName)
	}
	// DER sorts the values of a multi-valued RDN, so compare as a set.
	if !sameSet(cert.Subject.Organization, []string{"system:masters", "ops"}) || len(cert.Subject.Organization) != 2 {
		t.Errorf("O = %v", cert.Subject.Organization)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v, want client auth only", cert.ExtKeyUsage)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify: %v", err)
	}
	if _, _, err := ca.IssueClient("", nil, time.Hour, testNow); err == nil {
		t.Error("empty user: want error")
	}
}

func TestSignCSR(t *testing.T) {
	ca := newTestCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subject := pkix.Name{CommonName: "system:node:worker-1", Organization: []string{"system:nodes"}}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     subject,
		DNSNames:    []string{"worker-1"},
		IPAddresses: []net.IP{net.ParseIP("192.0.2.7")},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csrDER, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}, time.Hour, testNow)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	cert := mustParseCert(t, certPEM)
	if cert.Subject.CommonName != subject.CommonName || !slices.Equal(cert.Subject.Organization, subject.Organization) {
		t.Errorf("subject = %v, want %v", cert.Subject, subject)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		t.Error("certificate is not for the CSR's key")
	}
	if cert.IsCA {
		t.Error("signed CSR produced a CA certificate")
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v", cert.ExtKeyUsage)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "192.0.2.7", Roots: roots, CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("verify: %v", err)
	}

	// Flip a byte of the signature at the end of the request.
	tampered := slices.Clone(csrDER)
	tampered[len(tampered)-1] ^= 0xff
	if _, err := ca.SignCSR(tampered, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, time.Hour, testNow); err == nil {
		t.Error("tampered CSR: want error")
	}
	if _, err := ca.SignCSR(csrDER, nil, time.Hour, testNow); err == nil {
		t.Error("no usages: want error")
	}
	if _, err := ca.SignCSR([]byte("not a csr"), []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, time.Hour, testNow); err == nil {
		t.Error("garbage CSR: want error")
	}
}

func TestCAHash(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir, "ca", testNow)
	if err != nil {
		t.Fatal(err)
	}
	h := CAHash(ca.Cert)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(h) {
		t.Fatalf("hash %q has the wrong format", h)
	}
	spki, err := x509.MarshalPKIXPublicKey(ca.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	if want := "sha256:" + hex.EncodeToString(sum[:]); h != want {
		t.Errorf("hash = %s, want %s", h, want)
	}
	reloaded, err := EnsureCA(dir, "ca", testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := CAHash(reloaded.Cert); got != h {
		t.Errorf("hash changed across reload: %s vs %s", got, h)
	}
	if other := CAHash(newTestCA(t).Cert); other == h {
		t.Error("two different CAs have the same hash")
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEnsureCALoadsForeignCA checks a CA brought by the operator (RSA key
// in PKCS#8, as openssl writes it) is loaded and can issue.
func TestEnsureCALoadsForeignCA(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "corp-ca"},
		NotBefore:             testNow.Add(-time.Hour),
		NotAfter:              testNow.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), encodeCert(der), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := EnsureCA(dir, "ca", testNow)
	if err != nil {
		t.Fatalf("EnsureCA: %v", err)
	}
	if ca.Cert.Subject.CommonName != "corp-ca" {
		t.Errorf("loaded CA %q", ca.Cert.Subject.CommonName)
	}
	certPEM, _, err := ca.IssueServer("srv", []string{"srv.test"}, nil, 48*time.Hour, testNow)
	if err != nil {
		t.Fatalf("IssueServer: %v", err)
	}
	// Validity is capped at the foreign CA's shorter life.
	if got := mustParseCert(t, certPEM).NotAfter; !got.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter = %v, want %v", got, ca.Cert.NotAfter)
	}
}
