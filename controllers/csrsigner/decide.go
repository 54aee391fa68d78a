package csrsigner

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
)

// Identities and groups the decisions know.
const (
	nodeUserPrefix      = "system:node:"
	nodesGroup          = "system:nodes"
	bootstrappersGroup  = "system:bootstrappers"
	systemMastersGroup  = "system:masters"
	reasonAutoApproved  = "AutoApproved"
	reasonSignerFailure = "SignerValidationFailure"
)

// kubernetesServiceNames are the names of the API server inside the
// cluster; no node may get a serving certificate for them without a
// person's approval.
var kubernetesServiceNames = []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc"}

// sanPolicy is what node serving certificates may not name without a
// person's approval.
type sanPolicy struct {
	dnsNames []string
	networks []netip.Prefix
}

// protects says whether a DNS name is the API server's.
func (p sanPolicy) protectsName(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if slices.Contains(kubernetesServiceNames, name) || strings.HasPrefix(name, "kubernetes.default.svc.") {
		return true
	}
	for _, n := range p.dnsNames {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

func (p sanPolicy) protectsIP(ip netip.Addr) bool {
	for _, n := range p.networks {
		if n.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// approval is the approver's decision: approve with a message, or leave
// the request to a person (approve false; why says why, for the log).
type approval struct {
	approve bool
	message string
	why     string
}

// decideApproval decides whether the controller approves csr by itself.
// Requests already approved or denied are left alone.
func decideApproval(csr *certificatesv1.CertificateSigningRequest, policy sanPolicy) approval {
	if hasCondition(csr, certificatesv1.CertificateApproved) || hasCondition(csr, certificatesv1.CertificateDenied) {
		return approval{why: "already decided"}
	}
	req, err := parseRequest(csr.Spec.Request)
	if err != nil {
		return approval{why: err.Error()}
	}
	spec := &csr.Spec
	bootstrapper := slices.Contains(spec.Groups, bootstrappersGroup)
	switch spec.SignerName {
	case certificatesv1.KubeAPIServerClientKubeletSignerName:
		node, err := nodeClientRequest(req, spec.Usages)
		if err != nil {
			return approval{why: err.Error()}
		}
		switch {
		case bootstrapper:
			return approval{approve: true, message: fmt.Sprintf("Auto-approved the client certificate of node %s, requested with a bootstrap token (%s).", node, spec.Username)}
		case spec.Username == nodeUserPrefix+node:
			return approval{approve: true, message: fmt.Sprintf("Auto-approved the renewal of node %s's client certificate, requested by the node itself.", node)}
		}
		return approval{why: fmt.Sprintf("%s may not request a client certificate for node %s", spec.Username, node)}
	case certificatesv1.KubeletServingSignerName:
		node, err := nodeServingRequest(req, spec.Usages)
		if err != nil {
			return approval{why: err.Error()}
		}
		for _, name := range req.DNSNames {
			if policy.protectsName(name) {
				return approval{why: fmt.Sprintf("it names %s, which is the API server's", name)}
			}
		}
		for _, ip := range req.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok && policy.protectsIP(a) {
				return approval{why: fmt.Sprintf("it names %s, which is in a protected network", ip)}
			}
		}
		switch {
		case spec.Username == nodeUserPrefix+node:
			return approval{approve: true, message: fmt.Sprintf("Auto-approved the serving certificate of node %s, requested by the node itself.", node)}
		case bootstrapper:
			return approval{approve: true, message: fmt.Sprintf("Auto-approved the serving certificate of node %s, requested with a bootstrap token (%s).", node, spec.Username)}
		}
		return approval{why: fmt.Sprintf("%s may not request a serving certificate for node %s", spec.Username, node)}
	}
	return approval{why: "signer " + spec.SignerName + " is never auto-approved"}
}

// signing is the signer's decision about one request.
type signing struct {
	// sign: issue a certificate with these usages for this long.
	sign     bool
	usages   []x509.ExtKeyUsage
	validity time.Duration
	der      []byte
	// fail, when set, is the message of the Failed condition to add.
	fail string
}

// decideSigning decides what the signer does with csr. maxValidity caps
// (and is the default of) the certificate's lifetime.
func decideSigning(csr *certificatesv1.CertificateSigningRequest, maxValidity time.Duration) signing {
	switch csr.Spec.SignerName {
	case certificatesv1.KubeAPIServerClientKubeletSignerName, certificatesv1.KubeletServingSignerName, certificatesv1.KubeAPIServerClientSignerName:
	default:
		return signing{}
	}
	if !hasCondition(csr, certificatesv1.CertificateApproved) || hasCondition(csr, certificatesv1.CertificateDenied) ||
		hasCondition(csr, certificatesv1.CertificateFailed) || len(csr.Status.Certificate) > 0 {
		return signing{}
	}
	req, err := parseRequest(csr.Spec.Request)
	if err != nil {
		return signing{fail: err.Error()}
	}
	var usages []x509.ExtKeyUsage
	switch csr.Spec.SignerName {
	case certificatesv1.KubeAPIServerClientKubeletSignerName:
		_, err = nodeClientRequest(req, csr.Spec.Usages)
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case certificatesv1.KubeletServingSignerName:
		_, err = nodeServingRequest(req, csr.Spec.Usages)
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case certificatesv1.KubeAPIServerClientSignerName:
		err = apiClientRequest(req, csr.Spec.Usages)
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if err != nil {
		return signing{fail: err.Error()}
	}
	validity := maxValidity
	if s := csr.Spec.ExpirationSeconds; s != nil && time.Duration(*s)*time.Second < maxValidity {
		validity = time.Duration(*s) * time.Second
	}
	return signing{sign: true, usages: usages, validity: validity, der: req.Raw}
}

// nodeClientRequest checks the shape of a node's client certificate
// request and returns the node's name.
func nodeClientRequest(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) (string, error) {
	node, err := nodeSubject(req)
	if err != nil {
		return "", err
	}
	if len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses)+len(req.URIs) > 0 {
		return "", errors.New("a node client certificate may not have subject alternative names")
	}
	if err := usagesWithin(usages, certificatesv1.UsageClientAuth); err != nil {
		return "", err
	}
	return node, nil
}

// nodeServingRequest checks the shape of a node's serving certificate
// request and returns the node's name.
func nodeServingRequest(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) (string, error) {
	node, err := nodeSubject(req)
	if err != nil {
		return "", err
	}
	if len(req.EmailAddresses)+len(req.URIs) > 0 {
		return "", errors.New("a node serving certificate may only name DNS names and IP addresses")
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return "", errors.New("a node serving certificate must name at least one DNS name or IP address")
	}
	if err := usagesWithin(usages, certificatesv1.UsageServerAuth); err != nil {
		return "", err
	}
	return node, nil
}

// apiClientRequest checks a request for an API client certificate: client
// usages, and never the system:masters group.
func apiClientRequest(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
	if req.Subject.CommonName == "" {
		return errors.New("an API client certificate needs a common name (the user name)")
	}
	if slices.Contains(req.Subject.Organization, systemMastersGroup) {
		return fmt.Errorf("an API client certificate may not carry the %s group", systemMastersGroup)
	}
	return usagesWithin(usages, certificatesv1.UsageClientAuth)
}

// nodeSubject checks CN=system:node:NAME, O=system:nodes.
func nodeSubject(req *x509.CertificateRequest) (string, error) {
	node, ok := strings.CutPrefix(req.Subject.CommonName, nodeUserPrefix)
	if !ok || node == "" {
		return "", fmt.Errorf("the subject's common name %q is not system:node:<name>", req.Subject.CommonName)
	}
	if !slices.Equal(req.Subject.Organization, []string{nodesGroup}) {
		return "", fmt.Errorf("the subject's organizations %v are not exactly [%s]", req.Subject.Organization, nodesGroup)
	}
	return node, nil
}

// usagesWithin checks that usages are within {digital signature, key
// encipherment, purpose} and include purpose.
func usagesWithin(usages []certificatesv1.KeyUsage, purpose certificatesv1.KeyUsage) error {
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, purpose:
		default:
			return fmt.Errorf("usage %q is not allowed; only digital signature, key encipherment and %s", u, purpose)
		}
	}
	if !slices.Contains(usages, purpose) {
		return fmt.Errorf("the usages must include %s", purpose)
	}
	return nil
}

// parseRequest reads the PEM request of a CSR and checks its signature.
func parseRequest(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("the request is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the request cannot be parsed: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the request's signature does not verify: %w", err)
	}
	return req, nil
}

func hasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t {
			return true
		}
	}
	return false
}
