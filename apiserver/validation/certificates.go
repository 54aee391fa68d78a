package validation

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CertificateSigningRequest rules, as certificates.k8s.io/v1 documents
// them: the spec is a signed PEM request for a named signer with known
// usages, and is immutable; Approved, Denied and Failed conditions appear
// at most once, are always True, never go away, and Approved excludes
// Denied; the certificate may only be issued for an approved request and
// never changes once issued.

var statusPath = field.NewPath("status")

// minCSRExpirationSeconds is the shortest certificate a request may ask for.
const minCSRExpirationSeconds = 600

// legacyUnknownSigner is the signer of pre-v1 requests, which v1 refuses.
const legacyUnknownSigner = "kubernetes.io/legacy-unknown"

// knownKeyUsages are the usages a request may name.
var knownKeyUsages = sets.New(
	certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
	certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
	certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
	certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
	certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
	certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
	certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
	certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
)

// onceConditions are the condition types that appear at most once, only
// as True, and cannot be removed.
var onceConditions = []certificatesv1.RequestConditionType{
	certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed,
}

func validateCertificateSigningRequest(c *certificatesv1.CertificateSigningRequest) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, false, nameIsPathSegment)
	errs = append(errs, validateCSRSpec(&c.Spec)...)
	return append(errs, validateCSRStatus(&c.Status, nil)...)
}

func validateCertificateSigningRequestUpdate(c, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
	errs := validateMetaUpdate(&c.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, immutable(c.Spec, old.Spec, specPath)...)
	return append(errs, validateCSRStatus(&c.Status, &old.Status)...)
}

func validateCSRSpec(s *certificatesv1.CertificateSigningRequestSpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateCSRRequest(s.Request, specPath.Child("request"))...)
	errs = append(errs, validateSignerName(s.SignerName, specPath.Child("signerName"))...)
	up := specPath.Child("usages")
	if len(s.Usages) == 0 {
		errs = append(errs, field.Required(up, "at least one key usage is required"))
	}
	seen := sets.New[certificatesv1.KeyUsage]()
	for i, u := range s.Usages {
		switch {
		case !knownKeyUsages.Has(u):
			errs = append(errs, field.NotSupported(up.Index(i), u, sets.List(knownKeyUsages)))
		case seen.Has(u):
			errs = append(errs, field.Duplicate(up.Index(i), u))
		}
		seen.Insert(u)
	}
	if s.ExpirationSeconds != nil && *s.ExpirationSeconds < minCSRExpirationSeconds {
		errs = append(errs, field.Invalid(specPath.Child("expirationSeconds"), *s.ExpirationSeconds,
			"may not ask for a certificate valid for less than 600 seconds (10 minutes)"))
	}
	return errs
}

// validateCSRRequest checks that the request is one PEM "CERTIFICATE
// REQUEST" block holding a well-formed, correctly self-signed request.
func validateCSRRequest(req []byte, p *field.Path) field.ErrorList {
	if len(req) == 0 {
		return field.ErrorList{field.Required(p, "a PEM-encoded certificate request is required")}
	}
	// The bytes themselves make a useless error value; name them instead.
	const shown = "<request>"
	block, _ := pem.Decode(req)
	if block == nil {
		return field.ErrorList{field.Invalid(p, shown, "must hold a PEM block")}
	}
	if block.Type != "CERTIFICATE REQUEST" {
		return field.ErrorList{field.Invalid(p, shown, "the PEM block must be a CERTIFICATE REQUEST, not "+block.Type)}
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return field.ErrorList{field.Invalid(p, shown, "the certificate request cannot be parsed: "+err.Error())}
	}
	if err := csr.CheckSignature(); err != nil {
		return field.ErrorList{field.Invalid(p, shown, "the certificate request's signature does not verify: "+err.Error())}
	}
	return nil
}

// validateSignerName checks the "DOMAIN/PATH" form of a signer name.
func validateSignerName(name string, p *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if name == legacyUnknownSigner {
		return field.ErrorList{field.Invalid(p, name, "the legacy signer is not allowed in certificates.k8s.io/v1")}
	}
	domain, path, ok := strings.Cut(name, "/")
	if !ok || path == "" {
		return field.ErrorList{field.Invalid(p, name, "must be a fully qualified domain and a path, as in example.com/signer-name")}
	}
	var errs field.ErrorList
	for _, m := range validation.IsDNS1123Subdomain(domain) {
		errs = append(errs, field.Invalid(p, name, "the domain part "+m))
	}
	for _, seg := range strings.Split(path, "/") {
		for _, m := range validation.IsQualifiedName(seg) {
			errs = append(errs, field.Invalid(p, name, "each segment of the path part "+m))
		}
	}
	return errs
}

// validateCSRStatus checks the conditions and certificate; old is the
// stored status on update, nil on create.
func validateCSRStatus(st, old *certificatesv1.CertificateSigningRequestStatus) field.ErrorList {
	var errs field.ErrorList
	cp := statusPath.Child("conditions")
	seen := map[certificatesv1.RequestConditionType]bool{}
	for i, c := range st.Conditions {
		ip := cp.Index(i)
		switch {
		case c.Type == "":
			errs = append(errs, field.Required(ip.Child("type"), ""))
		case isOnceCondition(c.Type):
			if seen[c.Type] {
				errs = append(errs, field.Duplicate(ip.Child("type"), c.Type))
			}
			if c.Status != corev1.ConditionTrue {
				errs = append(errs, field.NotSupported(ip.Child("status"), c.Status, []corev1.ConditionStatus{corev1.ConditionTrue}))
			}
		default:
			errs = append(errs, oneOf(c.Status, ip.Child("status"), corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown)...)
		}
		seen[c.Type] = true
	}
	if seen[certificatesv1.CertificateApproved] && seen[certificatesv1.CertificateDenied] {
		errs = append(errs, field.Invalid(cp, "Approved, Denied", "Approved and Denied conditions are mutually exclusive"))
	}
	if old != nil {
		for _, t := range onceConditions {
			if hasCondition(old.Conditions, t) && !seen[t] {
				errs = append(errs, field.Forbidden(cp, "a condition of type "+string(t)+" may not be removed"))
			}
		}
	}
	certP := statusPath.Child("certificate")
	if len(st.Certificate) > 0 {
		errs = append(errs, validateIssuedCertificate(st.Certificate, certP)...)
		if !seen[certificatesv1.CertificateApproved] {
			errs = append(errs, field.Forbidden(certP, "may only be set once the request is Approved"))
		}
	}
	if old != nil && len(old.Certificate) > 0 && !bytes.Equal(old.Certificate, st.Certificate) {
		errs = append(errs, field.Forbidden(certP, "may not change once the certificate is issued"))
	}
	return errs
}

func isOnceCondition(t certificatesv1.RequestConditionType) bool {
	for _, o := range onceConditions {
		if t == o {
			return true
		}
	}
	return false
}

func hasCondition(conds []certificatesv1.CertificateSigningRequestCondition, t certificatesv1.RequestConditionType) bool {
	for _, c := range conds {
		if c.Type == t {
			return true
		}
	}
	return false
}

// validateIssuedCertificate checks that an issued certificate is one or
// more PEM CERTIFICATE blocks without headers, each a parsable X.509
// certificate. Text around the blocks is allowed.
func validateIssuedCertificate(data []byte, p *field.Path) field.ErrorList {
	const shown = "<certificate>"
	blocks := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		blocks++
		if block.Type != "CERTIFICATE" || len(block.Headers) > 0 {
			return field.ErrorList{field.Invalid(p, shown, "every PEM block must be a CERTIFICATE without headers")}
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return field.ErrorList{field.Invalid(p, shown, "a CERTIFICATE block cannot be parsed: "+err.Error())}
		}
	}
	if blocks == 0 {
		return field.ErrorList{field.Invalid(p, shown, "must hold at least one PEM CERTIFICATE block")}
	}
	return nil
}
