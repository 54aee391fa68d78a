package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"
)

// LeafValidity is the lifetime of serving and client certificates issued
// by EnsureServing and EnsureClientCert.
const LeafValidity = 365 * 24 * time.Hour

// RenewBefore is how close to expiry a stored leaf certificate may get
// before EnsureServing and EnsureClientCert replace it.
const RenewBefore = 30 * 24 * time.Hour

// EnsureServing returns the serving certificate stored as DIR/NAME.crt and
// DIR/NAME.key when it is still fit for use: signed by ca, usable for
// server auth, valid now and for at least RenewBefore more, and covering
// every one of dnsNames and ips. Otherwise (missing, unreadable, or unfit)
// it issues a new one valid for LeafValidity with common name NAME, writes
// it, and returns that. The returned tls.Certificate has Leaf set.
func EnsureServing(dir string, ca *CA, name string, dnsNames []string, ips []net.IP, now time.Time) (tls.Certificate, error) {
	want := leafWant{usage: x509.ExtKeyUsageServerAuth, dnsNames: dnsNames, ips: ips}
	certPEM, keyPEM, ok, err := loadLeaf(dir, name, ca.Cert, now, want)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate %q: %w", name, err)
	}
	if !ok {
		certPEM, keyPEM, err = ca.IssueServer(name, dnsNames, ips, LeafValidity, now)
		if err != nil {
			return tls.Certificate{}, err
		}
		if err := writePair(dir, name, certPEM, keyPEM); err != nil {
			return tls.Certificate{}, fmt.Errorf("serving certificate %q: %w", name, err)
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serving certificate %q: load key pair: %w", name, err)
	}
	return pair, nil
}

// EnsureClientCert returns the client certificate stored as DIR/NAME.crt
// and DIR/NAME.key when it is still fit for use: signed by ca, usable for
// client auth, valid now and for at least RenewBefore more, with common
// name user and organizations equal to groups (in any order). Otherwise it
// issues a new one valid for LeafValidity, writes it, and returns it.
func EnsureClientCert(dir, name, user string, groups []string, ca *CA, now time.Time) (certPEM, keyPEM []byte, err error) {
	want := leafWant{usage: x509.ExtKeyUsageClientAuth, checkSubject: true, user: user, groups: groups}
	certPEM, keyPEM, ok, err := loadLeaf(dir, name, ca.Cert, now, want)
	if err != nil {
		return nil, nil, fmt.Errorf("client certificate %q: %w", name, err)
	}
	if ok {
		return certPEM, keyPEM, nil
	}
	certPEM, keyPEM, err = ca.IssueClient(user, groups, LeafValidity, now)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(dir, name, certPEM, keyPEM); err != nil {
		return nil, nil, fmt.Errorf("client certificate %q: %w", name, err)
	}
	return certPEM, keyPEM, nil
}

// leafWant describes what a stored leaf certificate must satisfy to be
// reused.
type leafWant struct {
	usage    x509.ExtKeyUsage
	dnsNames []string
	ips      []net.IP
	// checkSubject requires CN == user and O == groups (as sets).
	checkSubject bool
	user         string
	groups       []string
}

// loadLeaf reads DIR/NAME.crt and .key. ok is true only when both exist,
// form a matching pair, and the certificate passes unfitReason. Missing or
// unparsable files yield ok=false so the caller re-issues; only I/O
// failures other than "does not exist" are errors.
func loadLeaf(dir, name string, ca *x509.Certificate, now time.Time, want leafWant) (certPEM, keyPEM []byte, ok bool, err error) {
	certPath, keyPath := pairPaths(dir, name)
	certPEM, err = readIfExists(certPath)
	if err != nil || certPEM == nil {
		return nil, nil, false, err
	}
	keyPEM, err = readIfExists(keyPath)
	if err != nil || keyPEM == nil {
		return nil, nil, false, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, false, nil
	}
	if unfitReason(pair.Leaf, ca, now, want) != "" {
		return nil, nil, false, nil
	}
	return certPEM, keyPEM, true, nil
}

// readIfExists returns the file's contents, or nil without error when the
// file does not exist.
func readIfExists(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// unfitReason says why cert cannot be reused, or returns "" when it can.
func unfitReason(cert, ca *x509.Certificate, now time.Time, want leafWant) string {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	opts := x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{want.usage},
	}
	if _, err := cert.Verify(opts); err != nil {
		return "does not verify against the CA: " + err.Error()
	}
	if cert.NotAfter.Sub(now) < RenewBefore {
		return "expires within the renewal window"
	}
	for _, name := range want.dnsNames {
		if cert.VerifyHostname(name) != nil {
			return "does not cover DNS name " + name
		}
	}
	for _, ip := range want.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return "does not cover IP address " + ip.String()
		}
	}
	if want.checkSubject {
		if cert.Subject.CommonName != want.user {
			return "common name is " + cert.Subject.CommonName + ", want " + want.user
		}
		if !sameSet(cert.Subject.Organization, want.groups) {
			return "organizations differ from the wanted groups"
		}
	}
	return ""
}

// sameSet reports whether a and b hold the same strings, ignoring order
// and duplicates.
func sameSet(a, b []string) bool {
	norm := func(s []string) []string {
		s = slices.Clone(s)
		slices.Sort(s)
		return slices.Compact(s)
	}
	return slices.Equal(norm(a), norm(b))
}
