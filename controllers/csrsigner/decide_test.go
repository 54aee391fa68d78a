package csrsigner

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

var testKey = func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()

// subject is what a test request asks for.
type subject struct {
	cn     string
	orgs   []string
	dns    []string
	ips    []string
	emails []string
}

func request(t *testing.T, s subject) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: s.cn, Organization: s.orgs}, DNSNames: s.dns, EmailAddresses: s.emails}
	for _, ip := range s.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

var (
	node1      = subject{cn: "system:node:n1", orgs: []string{"system:nodes"}}
	node1Serve = subject{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1", "n1.example"}, ips: []string{"10.0.0.7"}}
	clientUse  = []certificatesv1.KeyUsage{"digital signature", "client auth"}
	clientUse3 = []certificatesv1.KeyUsage{"digital signature", "key encipherment", "client auth"}
	serveUse   = []certificatesv1.KeyUsage{"digital signature", "server auth"}
	bootstrap  = requester{"system:bootstrap:abc123", []string{"system:bootstrappers", "system:authenticated"}}
	selfNode1  = requester{"system:node:n1", []string{"system:nodes", "system:authenticated"}}
	otherNode  = requester{"system:node:n2", []string{"system:nodes", "system:authenticated"}}
	admin      = requester{"skiff-admin", []string{"system:masters", "system:authenticated"}}
)

type requester struct {
	name   string
	groups []string
}

func csrOf(t *testing.T, signer string, s subject, usages []certificatesv1.KeyUsage, who requester, conds ...certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	c := &certificatesv1.CertificateSigningRequest{}
	c.Name = "csr-1"
	c.Spec = certificatesv1.CertificateSigningRequestSpec{Request: request(t, s), SignerName: signer, Usages: usages, Username: who.name, Groups: who.groups}
	for _, t := range conds {
		c.Status.Conditions = append(c.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: t, Status: corev1.ConditionTrue})
	}
	return c
}

const (
	kubeletClient = certificatesv1.KubeAPIServerClientKubeletSignerName
	kubeletServe  = certificatesv1.KubeletServingSignerName
	apiClient     = certificatesv1.KubeAPIServerClientSignerName
)

func TestDecideApproval(t *testing.T) {
	policy := sanPolicy{dnsNames: []string{"api.example"}, networks: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")}}
	cases := []struct {
		name    string
		csr     *certificatesv1.CertificateSigningRequest
		approve bool
		why     string // for refusals, part of the reason
	}{
		{"bootstrap client", csrOf(t, kubeletClient, node1, clientUse, bootstrap), true, ""},
		{"bootstrap client, RSA-style usages", csrOf(t, kubeletClient, node1, clientUse3, bootstrap), true, ""},
		{"node renews its client cert", csrOf(t, kubeletClient, node1, clientUse, selfNode1), true, ""},
		{"node asks for another node's client cert", csrOf(t, kubeletClient, node1, clientUse, otherNode), false, "may not request a client certificate"},
		{"admin's node client request waits for a person", csrOf(t, kubeletClient, node1, clientUse, admin), false, "may not request"},
		{"client cert with SANs", csrOf(t, kubeletClient, node1Serve, clientUse, bootstrap), false, "subject alternative names"},
		{"client cert in system:masters", csrOf(t, kubeletClient, subject{cn: "system:node:n1", orgs: []string{"system:nodes", "system:masters"}}, clientUse, bootstrap), false, "not exactly"},
		{"client cert for a non-node", csrOf(t, kubeletClient, subject{cn: "alice", orgs: []string{"system:nodes"}}, clientUse, bootstrap), false, "system:node:<name>"},
		{"client cert with empty node name", csrOf(t, kubeletClient, subject{cn: "system:node:", orgs: []string{"system:nodes"}}, clientUse, bootstrap), false, "system:node:<name>"},
		{"client cert with server usage", csrOf(t, kubeletClient, node1, []certificatesv1.KeyUsage{"digital signature", "client auth", "server auth"}, bootstrap), false, `"server auth" is not allowed`},
		{"client cert without client auth", csrOf(t, kubeletClient, node1, []certificatesv1.KeyUsage{"digital signature"}, bootstrap), false, "must include client auth"},
		{"node serving by itself", csrOf(t, kubeletServe, node1Serve, serveUse, selfNode1), true, ""},
		{"node serving with a bootstrap token", csrOf(t, kubeletServe, node1Serve, serveUse, bootstrap), true, ""},
		{"serving for another node", csrOf(t, kubeletServe, node1Serve, serveUse, otherNode), false, "may not request a serving certificate"},
		{"serving without names", csrOf(t, kubeletServe, node1, serveUse, selfNode1), false, "at least one"},
		{"serving with an email", csrOf(t, kubeletServe, subject{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1"}, emails: []string{"a@b.c"}}, serveUse, selfNode1), false, "only name DNS"},
		{"serving as the API server", csrOf(t, kubeletServe, subject{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"n1", "kubernetes.default.svc.cluster.local"}}, serveUse, selfNode1), false, "the API server's"},
		{"serving as kubernetes", csrOf(t, kubeletServe, subject{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"Kubernetes"}}, serveUse, selfNode1), false, "the API server's"},
		{"serving as a protected name", csrOf(t, kubeletServe, subject{cn: "system:node:n1", orgs: []string{"system:nodes"}, dns: []string{"api.example"}}, serveUse, bootstrap), false, "the API server's"},
		{"serving on the service IP", csrOf(t, kubeletServe, subject{cn: "system:node:n1", orgs: []string{"system:nodes"}, ips: []string{"10.43.0.1"}}, serveUse, selfNode1), false, "protected network"},
		{"serving with client usage", csrOf(t, kubeletServe, node1Serve, clientUse, selfNode1), false, "not allowed"},
		{"API client certs are never auto-approved", csrOf(t, apiClient, subject{cn: "alice"}, clientUse, admin), false, "never auto-approved"},
		{"custom signers are never auto-approved", csrOf(t, "example.com/signer", node1, clientUse, bootstrap), false, "never auto-approved"},
		{"already approved", csrOf(t, kubeletClient, node1, clientUse, bootstrap, certificatesv1.CertificateApproved), false, "already decided"},
		{"denied stays denied", csrOf(t, kubeletClient, node1, clientUse, bootstrap, certificatesv1.CertificateDenied), false, "already decided"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decideApproval(tc.csr, policy)
			if got.approve != tc.approve {
				t.Fatalf("approve = %v (%s), want %v", got.approve, got.why, tc.approve)
			}
			if tc.approve && got.message == "" {
				t.Error("an approval without a message")
			}
			if !tc.approve && !strings.Contains(got.why, tc.why) {
				t.Errorf("why = %q, want one containing %q", got.why, tc.why)
			}
		})
	}
	broken := csrOf(t, kubeletClient, node1, clientUse, bootstrap)
	broken.Spec.Request = []byte("not a request")
	if got := decideApproval(broken, policy); got.approve {
		t.Error("an unreadable request was approved")
	}
}

func TestDecideSigning(t *testing.T) {
	year := 365 * 24 * time.Hour
	hour := int32(3600)
	twoYears := int32(2 * 365 * 24 * 3600)
	withExpiry := func(c *certificatesv1.CertificateSigningRequest, s int32) *certificatesv1.CertificateSigningRequest {
		c.Spec.ExpirationSeconds = &s
		return c
	}
	issued := csrOf(t, kubeletClient, node1, clientUse, bootstrap, certificatesv1.CertificateApproved)
	issued.Status.Certificate = []byte("PEM")
	cases := []struct {
		name     string
		csr      *certificatesv1.CertificateSigningRequest
		sign     bool
		usage    x509.ExtKeyUsage
		validity time.Duration
		fail     string
	}{
		{"approved node client", csrOf(t, kubeletClient, node1, clientUse, bootstrap, certificatesv1.CertificateApproved), true, x509.ExtKeyUsageClientAuth, year, ""},
		{"approved node serving", csrOf(t, kubeletServe, node1Serve, serveUse, selfNode1, certificatesv1.CertificateApproved), true, x509.ExtKeyUsageServerAuth, year, ""},
		{"approved API client", csrOf(t, apiClient, subject{cn: "alice", orgs: []string{"devs"}}, clientUse, admin, certificatesv1.CertificateApproved), true, x509.ExtKeyUsageClientAuth, year, ""},
		{"one hour asked", withExpiry(csrOf(t, kubeletClient, node1, clientUse, bootstrap, certificatesv1.CertificateApproved), hour), true, x509.ExtKeyUsageClientAuth, time.Hour, ""},
		{"two years asked, one given", withExpiry(csrOf(t, kubeletClient, node1, clientUse, bootstrap, certificatesv1.CertificateApproved), twoYears), true, x509.ExtKeyUsageClientAuth, year, ""},
		{"pending", csrOf(t, kubeletClient, node1, clientUse, bootstrap), false, 0, 0, ""},
		{"denied", csrOf(t, kubeletClient, node1, clientUse, bootstrap, certificatesv1.CertificateDenied), false, 0, 0, ""},
		{"failed", csrOf(t, kubeletClient, node1, clientUse, bootstrap, certificatesv1.CertificateApproved, certificatesv1.CertificateFailed), false, 0, 0, ""},
		{"already issued", issued, false, 0, 0, ""},
		{"other signer", csrOf(t, "example.com/signer", node1, clientUse, admin, certificatesv1.CertificateApproved), false, 0, 0, ""},
		{"approved by hand but not a node client", csrOf(t, kubeletClient, subject{cn: "alice"}, clientUse, admin, certificatesv1.CertificateApproved), false, 0, 0, "system:node:<name>"},
		{"approved by hand, API client in system:masters", csrOf(t, apiClient, subject{cn: "mallory", orgs: []string{"system:masters"}}, clientUse, admin, certificatesv1.CertificateApproved), false, 0, 0, "system:masters"},
		{"approved by hand, serving with client usage", csrOf(t, kubeletServe, node1Serve, clientUse, admin, certificatesv1.CertificateApproved), false, 0, 0, "not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decideSigning(tc.csr, year)
			if got.sign != tc.sign || (tc.fail == "") != (got.fail == "") || !strings.Contains(got.fail, tc.fail) {
				t.Fatalf("got sign=%v fail=%q, want sign=%v fail containing %q", got.sign, got.fail, tc.sign, tc.fail)
			}
			if !tc.sign {
				return
			}
			if len(got.usages) != 1 || got.usages[0] != tc.usage || got.validity != tc.validity || len(got.der) == 0 {
				t.Errorf("got usages %v validity %s, want %v %s", got.usages, got.validity, tc.usage, tc.validity)
			}
		})
	}
}
