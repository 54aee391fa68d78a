package validation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// testCSRMaterial is a signed request and a certificate, made once.
var testCSRMaterial = func() (req, badSig, cert []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "system:node:n1"}}, key)
	if err != nil {
		panic(err)
	}
	tampered := append([]byte(nil), der...)
	tampered[len(tampered)-1] ^= 0xff
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1e9, 0)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
}

var csrReq, csrBadSig, csrCert = testCSRMaterial()

func csr(mut func(c *certificatesv1.CertificateSigningRequest)) *certificatesv1.CertificateSigningRequest {
	c := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: clusterMeta("node-csr-1"),
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    csrReq,
			SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			Username:   "system:bootstrap:abcdef",
		},
	}
	if mut != nil {
		mut(c)
	}
	return c
}

func csrCondition(t certificatesv1.RequestConditionType, s corev1.ConditionStatus) certificatesv1.CertificateSigningRequestCondition {
	return certificatesv1.CertificateSigningRequestCondition{Type: t, Status: s}
}

var (
	approved = csrCondition(certificatesv1.CertificateApproved, corev1.ConditionTrue)
	denied   = csrCondition(certificatesv1.CertificateDenied, corev1.ConditionTrue)
	failed   = csrCondition(certificatesv1.CertificateFailed, corev1.ConditionTrue)
)

func TestCertificateSigningRequestCreate(t *testing.T) {
	type C = certificatesv1.CertificateSigningRequest
	runCreate(t, []createCase{
		{name: "valid", obj: csr(nil)},
		{name: "custom signer with a path", obj: csr(func(c *C) { c.Spec.SignerName = "example.com/team/signer-1" })},
		{name: "ten minutes is enough", obj: csr(func(c *C) { c.Spec.ExpirationSeconds = ptr(int32(600)) })},
		{name: "bad name", obj: csr(func(c *C) { c.Name = "a/b" }), want: []string{e(invalid, "metadata.name")}},
		{name: "no request", obj: csr(func(c *C) { c.Spec.Request = nil }), want: []string{e(required, "spec.request")}},
		{name: "not PEM", obj: csr(func(c *C) { c.Spec.Request = []byte("hello") }), want: []string{e(invalid, "spec.request")}},
		{name: "a certificate, not a request", obj: csr(func(c *C) { c.Spec.Request = csrCert }), want: []string{e(invalid, "spec.request")}},
		{name: "bad signature", obj: csr(func(c *C) { c.Spec.Request = csrBadSig }), want: []string{e(invalid, "spec.request")}},
		{name: "no signer", obj: csr(func(c *C) { c.Spec.SignerName = "" }), want: []string{e(required, "spec.signerName")}},
		{name: "signer without path", obj: csr(func(c *C) { c.Spec.SignerName = "example.com" }), want: []string{e(invalid, "spec.signerName")}},
		{name: "signer with a bad domain", obj: csr(func(c *C) { c.Spec.SignerName = "Example_com/x" }), want: []string{e(invalid, "spec.signerName")}},
		{name: "legacy signer", obj: csr(func(c *C) { c.Spec.SignerName = "kubernetes.io/legacy-unknown" }), want: []string{e(invalid, "spec.signerName")}},
		{name: "no usages", obj: csr(func(c *C) { c.Spec.Usages = nil }), want: []string{e(required, "spec.usages")}},
		{name: "unknown usage", obj: csr(func(c *C) { c.Spec.Usages = append(c.Spec.Usages, "teleport") }), want: []string{e(notSupported, "spec.usages[2]")}},
		{name: "duplicate usage", obj: csr(func(c *C) { c.Spec.Usages = append(c.Spec.Usages, certificatesv1.UsageClientAuth) }), want: []string{e(duplicate, "spec.usages[2]")}},
		{name: "too short", obj: csr(func(c *C) { c.Spec.ExpirationSeconds = ptr(int32(599)) }), want: []string{e(invalid, "spec.expirationSeconds")}},
		{name: "approved and denied", obj: csr(func(c *C) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved, denied}
		}),
			want: []string{e(invalid, "status.conditions")}},
		{name: "approved twice", obj: csr(func(c *C) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved, approved}
		}),
			want: []string{e(duplicate, "status.conditions[1].type")}},
		{name: "approved false", obj: csr(func(c *C) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{csrCondition(certificatesv1.CertificateApproved, corev1.ConditionFalse)}
		}), want: []string{e(notSupported, "status.conditions[0].status")}},
		{name: "custom condition", obj: csr(func(c *C) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{csrCondition("Reviewed", corev1.ConditionFalse)}
		})},
		{name: "condition without type", obj: csr(func(c *C) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{csrCondition("", corev1.ConditionTrue)}
		}), want: []string{e(required, "status.conditions[0].type")}},
		{name: "certificate before approval", obj: csr(func(c *C) { c.Status.Certificate = csrCert }), want: []string{e(forbidden, "status.certificate")}},
		{name: "garbage certificate", obj: csr(func(c *C) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
			c.Status.Certificate = []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
		}), want: []string{e(invalid, "status.certificate")}},
		{name: "issued", obj: csr(func(c *C) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
			c.Status.Certificate = append([]byte("issued by a test\n"), csrCert...)
		})},
	})
}

func TestCertificateSigningRequestUpdate(t *testing.T) {
	type C = certificatesv1.CertificateSigningRequest
	issued := func() runtime.Object {
		return csr(func(c *C) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
			c.Status.Certificate = csrCert
		})
	}
	runUpdate(t, []updateCase{
		{name: "approve", old: csr(nil), change: func(o runtime.Object) {
			o.(*C).Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
		}},
		{name: "deny", old: csr(nil), change: func(o runtime.Object) {
			o.(*C).Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{denied}
		}},
		{name: "issue after approval", old: csr(func(c *C) { c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved} }),
			change: func(o runtime.Object) { o.(*C).Status.Certificate = csrCert }},
		{name: "fail after approval", old: csr(func(c *C) { c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved} }),
			change: func(o runtime.Object) { o.(*C).Status.Conditions = append(o.(*C).Status.Conditions, failed) }},
		{name: "labels may change", old: csr(nil), change: func(o runtime.Object) { o.(*C).Labels = map[string]string{"a": "b"} }},
		{name: "spec is immutable", old: csr(nil), change: func(o runtime.Object) {
			o.(*C).Spec.Username = "someone-else"
		}, want: []string{e(invalid, "spec")}},
		{name: "approval cannot be removed", old: csr(func(c *C) { c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved} }),
			change: func(o runtime.Object) { o.(*C).Status.Conditions = nil }, want: []string{e(forbidden, "status.conditions")}},
		{name: "approved cannot become denied", old: csr(func(c *C) { c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved} }),
			change: func(o runtime.Object) {
				o.(*C).Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{denied}
			}, want: []string{e(forbidden, "status.conditions")}},
		{name: "certificate is immutable", old: issued(), change: func(o runtime.Object) {
			o.(*C).Status.Certificate = append([]byte("note\n"), csrCert...)
		}, want: []string{e(forbidden, "status.certificate")}},
		{name: "certificate cannot be removed", old: issued(), change: func(o runtime.Object) {
			o.(*C).Status.Certificate = nil
		}, want: []string{e(forbidden, "status.certificate")}},
	})
}
