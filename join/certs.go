package join

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Files Bootstrap keeps in Config.Dir.
const (
	CACertFile      = "ca.crt"
	ClientCertFile  = "client.crt"
	ClientKeyFile   = "client.key"
	ServingCertFile = "serving.crt"
	ServingKeyFile  = "serving.key"
	KubeconfigFile  = "node.kubeconfig"
)

// Identity of nodes, as Kubernetes' node authorizer knows them.
const (
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
)

// renewDivisor: a certificate with less than 1/renewDivisor of its life
// left is renewed.
const renewDivisor = 5

// certKind is which of a node's two certificates.
type certKind int

const (
	clientKind certKind = iota
	servingKind
)

func (k certKind) String() string {
	if k == clientKind {
		return "client"
	}
	return "serving"
}

// wantCert is what one of a node's certificates must be.
type wantCert struct {
	kind     certKind
	node     string
	dnsNames []string
	ips      []net.IP
}

func (w wantCert) commonName() string { return NodeUserPrefix + w.node }

func (w wantCert) files() (cert, key string) {
	if w.kind == clientKind {
		return ClientCertFile, ClientKeyFile
	}
	return ServingCertFile, ServingKeyFile
}

func (w wantCert) signer() string {
	if w.kind == clientKind {
		return certificatesv1.KubeAPIServerClientKubeletSignerName
	}
	return certificatesv1.KubeletServingSignerName
}

func (w wantCert) usages() []certificatesv1.KeyUsage {
	if w.kind == clientKind {
		return []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	}
	return []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
}

func (w wantCert) extKeyUsage() x509.ExtKeyUsage {
	if w.kind == clientKind {
		return x509.ExtKeyUsageClientAuth
	}
	return x509.ExtKeyUsageServerAuth
}

// certState is what an existing certificate is good for.
type certState struct {
	// usable: it is valid now for the node and its purpose.
	usable bool
	// renew, when set, says why it should be replaced.
	renew string
}

// assessCert judges a certificate and key on disk (nil when missing)
// against the CA and what the node needs, at now.
func assessCert(certPEM, keyPEM []byte, ca *x509.Certificate, want wantCert, now time.Time) certState {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return certState{renew: "there is none"}
	}
	if ca == nil {
		return certState{renew: "there is no CA to check it against"}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return certState{renew: "it does not load: " + err.Error()}
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return certState{renew: "it does not parse: " + err.Error()}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{want.extKeyUsage()}}); err != nil {
		return certState{renew: "it is not valid: " + err.Error()}
	}
	if leaf.Subject.CommonName != want.commonName() || !slices.Equal(leaf.Subject.Organization, []string{NodesGroup}) {
		return certState{renew: fmt.Sprintf("it is for %q in %v, not for this node", leaf.Subject.CommonName, leaf.Subject.Organization)}
	}
	if want.kind == servingKind {
		for _, name := range want.dnsNames {
			if !slices.Contains(leaf.DNSNames, name) {
				return certState{usable: true, renew: "it does not name " + name}
			}
		}
		for _, ip := range want.ips {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return certState{usable: true, renew: "it does not name " + ip.String()}
			}
		}
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); leaf.NotAfter.Sub(now) < life/renewDivisor {
		return certState{usable: true, renew: "it expires at " + leaf.NotAfter.UTC().Format(time.RFC3339)}
	}
	return certState{usable: true}
}

// joinPlan is what Bootstrap has to do.
type joinPlan struct {
	// client and serving: the certificates to request.
	client, serving bool
	// withToken: authenticate with the join token, else with the node's
	// client certificate.
	withToken bool
}

func (p joinPlan) nothing() bool { return !p.client && !p.serving }

// planJoin decides from the state of the two certificates which to request
// and with which credentials. The token is needed only when the node has
// no usable client certificate.
func planJoin(client, serving certState, haveToken bool) (joinPlan, error) {
	p := joinPlan{
		client:    client.renew != "",
		serving:   serving.renew != "",
		withToken: !client.usable,
	}
	if p.withToken && !haveToken {
		return p, fmt.Errorf("this node has no usable client certificate (%s) and no join token was given", client.renew)
	}
	return p, nil
}

// newRequest makes a fresh key and a certificate request for want.
func newRequest(want wantCert) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: %w", want.kind, err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s key: %w", want.kind, err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: want.commonName(), Organization: []string{NodesGroup}}}
	if want.kind == servingKind {
		tmpl.DNSNames = want.dnsNames
		tmpl.IPAddresses = want.ips
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s certificate request: %w", want.kind, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}), nil
}

// csrObject is the CertificateSigningRequest for a request of want.
func csrObject(want wantCert, csrPEM []byte) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-", Labels: map[string]string{"skiff.dev/node": want.node}},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    csrPEM,
			SignerName: want.signer(),
			Usages:     want.usages(),
		},
	}
}

// readPair reads a certificate and key from dir; missing files are nil.
func readPair(dir string, want wantCert) (certPEM, keyPEM []byte, err error) {
	certName, keyName := want.files()
	if certPEM, err = readIfExists(filepath.Join(dir, certName)); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = readIfExists(filepath.Join(dir, keyName)); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// writePair writes a key and then its certificate, each atomically.
func writePair(dir string, want wantCert, certPEM, keyPEM []byte) error {
	certName, keyName := want.files()
	if err := writeFileAtomic(filepath.Join(dir, keyName), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, certName), certPEM, 0o644)
}

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

// parseCAs returns the certificates of a PEM bundle.
func parseCAs(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse CA certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}
