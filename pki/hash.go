package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
)

// CAHash returns the discovery hash of a CA certificate in the format
// kubeadm uses for --discovery-token-ca-cert-hash: "sha256:" followed by
// the lowercase hex SHA-256 of the certificate's DER-encoded
// SubjectPublicKeyInfo. Pinning the public key rather than the whole
// certificate keeps the hash stable if the CA is re-signed with the same
// key.
func CAHash(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}
