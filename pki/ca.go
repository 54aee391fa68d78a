// Package pki holds everything Skiff knows about certificates: its
// certificate authority, the serving and client certificates the CA signs,
// the discovery hash nodes use to pin the CA when they join, and the
// kubeconfig files that carry client credentials.
//
// Only the standard library's crypto is used. Every key Skiff generates is
// an ECDSA P-256 key; certificates are X.509 v3 in PEM files named
// NAME.crt (certificate) and NAME.key (private key, mode 0600) inside a
// directory Skiff creates with mode 0700.
//
// All functions take the current time as an argument instead of reading a
// clock, so expiry and renewal decisions are reproducible in tests.
package pki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CAValidity is how long a CA created by EnsureCA stays valid.
const CAValidity = 10 * 365 * 24 * time.Hour

// clockSkew is how far into the past NotBefore is set on every certificate,
// so a freshly issued certificate is already valid on a machine whose clock
// runs a little behind the issuer's.
const clockSkew = 5 * time.Minute

// CA is a certificate authority: its self-signed certificate and the key
// that signs everything it issues.
type CA struct {
	// Cert is the parsed CA certificate.
	Cert *x509.Certificate
	// Key signs issued certificates; its public half matches Cert.
	Key crypto.Signer
	// CertPEM is Cert in PEM form, as clients need it in their trust
	// bundle or kubeconfig.
	CertPEM []byte
}

// EnsureCA returns the CA stored as DIR/NAME.crt and DIR/NAME.key, creating
// a new self-signed CA valid for CAValidity when neither file exists.
//
// A half-present pair (only one of the two files), a key that does not
// match the certificate, a certificate that is not a CA, or a CA that is
// expired at now is an error: silently replacing a CA would invalidate every
// certificate and kubeconfig it ever signed, so a person has to decide.
func EnsureCA(dir string, name string, now time.Time) (*CA, error) {
	certPath, keyPath := pairPaths(dir, name)
	certExists, err := fileExists(certPath)
	if err != nil {
		return nil, err
	}
	keyExists, err := fileExists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certExists && keyExists:
		return loadCA(certPath, keyPath, now)
	case certExists || keyExists:
		return nil, fmt.Errorf("CA %q in %s: only one of %s and %s exists; restore the missing file or remove both to create a new CA",
			name, dir, filepath.Base(certPath), filepath.Base(keyPath))
	}

	ca, keyPEM, err := newCA(name, now)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: %w", name, err)
	}
	if err := writePair(dir, name, ca.CertPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("create CA %q: %w", name, err)
	}
	return ca, nil
}

// newCA generates a key and a self-signed CA certificate for it.
func newCA(name string, now time.Time) (*CA, []byte, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "skiff-" + name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs leaf certificates only, never another CA.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(randReader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, keyPEM, nil
}

// loadCA reads and checks an existing CA pair.
func loadCA(certPath, keyPath string, now time.Time) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", certPath, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", keyPath, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("CA key %s does not match certificate %s", keyPath, certPath)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("certificate %s is not a CA certificate", certPath)
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("CA certificate %s expired at %s", certPath, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// publicKeysEqual reports whether two public keys are the same key.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface {
		Equal(crypto.PublicKey) bool
	}
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// fileExists reports whether path exists; errors other than "not exist"
// (permissions, I/O) are returned.
func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("stat %s: %w", path, err)
}
