package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"time"
)

// IssueServer generates a fresh key and a certificate for it, signed by the
// CA, for a TLS server reachable under dnsNames and ips. The certificate
// carries the server-auth extended key usage.
func (ca *CA) IssueServer(commonName string, dnsNames []string, ips []net.IP, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, nil, fmt.Errorf("issue server certificate %q: no DNS names or IP addresses", commonName)
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("issue server certificate %q: %w", commonName, err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		DNSNames:    append([]string(nil), dnsNames...),
		IPAddresses: append([]net.IP(nil), ips...),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	certPEM, err = ca.sign(tmpl, key.Public(), validity, now)
	if err != nil {
		return nil, nil, fmt.Errorf("issue server certificate %q: %w", commonName, err)
	}
	return certPEM, keyPEM, nil
}

// IssueClient generates a fresh key and a client certificate for it, signed
// by the CA. Kubernetes reads the user name from the subject's common name
// and the groups from its organizations, so CN=user and O=groups.
func (ca *CA) IssueClient(user string, groups []string, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	if user == "" {
		return nil, nil, errors.New("issue client certificate: empty user name")
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("issue client certificate for %q: %w", user, err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: append([]string(nil), groups...)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certPEM, err = ca.sign(tmpl, key.Public(), validity, now)
	if err != nil {
		return nil, nil, fmt.Errorf("issue client certificate for %q: %w", user, err)
	}
	return certPEM, keyPEM, nil
}

// SignCSR signs a DER-encoded certificate signing request after checking
// its self-signature. The issued certificate copies the request's subject
// exactly and its subject alternative names (DNS, IP, email, URI), and has
// the given extended key usages. Every other extension the request asks
// for (notably CA status) is ignored: the CA decides those.
func (ca *CA) SignCSR(csrDER []byte, usages []x509.ExtKeyUsage, validity time.Duration, now time.Time) (certPEM []byte, err error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("sign CSR: parse: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign CSR for %q: bad request signature: %w", csr.Subject.CommonName, err)
	}
	if len(usages) == 0 {
		return nil, fmt.Errorf("sign CSR for %q: no extended key usages given", csr.Subject.CommonName)
	}
	tmpl := &x509.Certificate{
		RawSubject:     csr.RawSubject,
		DNSNames:       csr.DNSNames,
		IPAddresses:    csr.IPAddresses,
		EmailAddresses: csr.EmailAddresses,
		URIs:           csr.URIs,
		ExtKeyUsage:    append([]x509.ExtKeyUsage(nil), usages...),
	}
	certPEM, err = ca.sign(tmpl, csr.PublicKey, validity, now)
	if err != nil {
		return nil, fmt.Errorf("sign CSR for %q: %w", csr.Subject.CommonName, err)
	}
	return certPEM, nil
}

// sign fills in the fields every leaf certificate shares (serial, validity
// window, key usage, basic constraints) and signs tmpl for pub.
//
// NotAfter is capped at the CA's own NotAfter: a certificate outliving its
// issuer would fail verification from that point anyway, and capping keeps
// the expiry a renewal check sees honest.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey, validity time.Duration, now time.Time) ([]byte, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("validity must be positive, got %s", validity)
	}
	if !now.Before(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("CA %q expired at %s", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	usage, err := keyUsageFor(pub)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.KeyUsage = usage
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = false

	der, err := x509.CreateCertificate(randReader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return encodeCert(der), nil
}

// keyUsageFor returns the key usage bits fitting a leaf public key: all
// keys sign; RSA keys may also be used for key encipherment in older TLS
// key exchanges.
func keyUsageFor(pub crypto.PublicKey) (x509.KeyUsage, error) {
	switch pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return x509.KeyUsageDigitalSignature, nil
	case *rsa.PublicKey:
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, nil
	default:
		return 0, fmt.Errorf("unsupported public key type %T", pub)
	}
}
