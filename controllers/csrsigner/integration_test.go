package csrsigner_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/controllers/csrsigner"
	"github.com/skiff-sh/skiff/pki"
	"github.com/skiff-sh/skiff/test/framework"
)

// env is a server with the controller running and a client per identity.
type env struct {
	admin kubernetes.Interface
	node  kubernetes.Interface // system:node:n1
	ca    *pki.CA
}

func start(t *testing.T) *env {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	admin := srv.Client()
	ca, err := pki.EnsureCA(filepath.Join(srv.DataDir, "pki"), "ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(admin, 0)
	c, err := csrsigner.New(admin, factory, ca, csrsigner.Options{Workers: 1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { _ = c.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })

	// The node's own identity, as a joined node has it.
	certPEM, keyPEM, err := ca.IssueClient("system:node:n1", []string{"system:nodes"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "node.kubeconfig")
	if err := pki.WriteKubeconfig(kc, srv.RESTConfig().Host, "skiff", "system:node:n1", ca.CertPEM, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	node, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{admin: admin, node: node, ca: ca}
}

func request(t *testing.T, cn string, orgs, dns []string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}, DNSNames: dns}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func (e *env) create(t *testing.T, as kubernetes.Interface, name, signer string, req []byte, usages ...certificatesv1.KeyUsage) {
	t.Helper()
	_, err := as.CertificatesV1().CertificateSigningRequests().Create(context.Background(), &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: signer, Usages: usages},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// wait polls a request until done says it is settled.
func (e *env) wait(t *testing.T, name string, done func(*certificatesv1.CertificateSigningRequest) bool) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		csr, err := e.admin.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && done(csr) {
			return csr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not settle: %v %+v", name, err, csr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func condition(csr *certificatesv1.CertificateSigningRequest, ct certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i := range csr.Status.Conditions {
		if csr.Status.Conditions[i].Type == ct {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}

func TestSigner(t *testing.T) {
	e := start(t)
	nodeSubject := []string{"system:nodes"}

	t.Run("a node renews its own client certificate", func(t *testing.T) {
		e.create(t, e.node, "renew-n1", certificatesv1.KubeAPIServerClientKubeletSignerName,
			request(t, "system:node:n1", nodeSubject, nil), "digital signature", "client auth")
		csr := e.wait(t, "renew-n1", func(c *certificatesv1.CertificateSigningRequest) bool { return len(c.Status.Certificate) > 0 })
		if a := condition(csr, certificatesv1.CertificateApproved); a == nil || a.Reason != "AutoApproved" || a.Status != corev1.ConditionTrue {
			t.Errorf("approval %+v", a)
		}
		block, _ := pem.Decode(csr.Status.Certificate)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(e.ca.Cert)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("issued certificate does not verify as a client certificate: %v", err)
		}
		if cert.Subject.CommonName != "system:node:n1" {
			t.Errorf("subject %v", cert.Subject)
		}
	})

	t.Run("a node's serving certificate for itself", func(t *testing.T) {
		e.create(t, e.node, "serve-n1", certificatesv1.KubeletServingSignerName,
			request(t, "system:node:n1", nodeSubject, []string{"n1.example"}), "digital signature", "server auth")
		e.wait(t, "serve-n1", func(c *certificatesv1.CertificateSigningRequest) bool { return len(c.Status.Certificate) > 0 })
	})

	t.Run("a node may not ask for another node", func(t *testing.T) {
		e.create(t, e.node, "steal-n2", certificatesv1.KubeAPIServerClientKubeletSignerName,
			request(t, "system:node:n2", nodeSubject, nil), "digital signature", "client auth")
		// One worker takes keys in order: once a later request is approved,
		// this one has been decided.
		e.create(t, e.node, "marker-n1", certificatesv1.KubeAPIServerClientKubeletSignerName,
			request(t, "system:node:n1", nodeSubject, nil), "digital signature", "client auth")
		e.wait(t, "marker-n1", func(c *certificatesv1.CertificateSigningRequest) bool {
			return condition(c, certificatesv1.CertificateApproved) != nil
		})
		csr := e.wait(t, "steal-n2", func(*certificatesv1.CertificateSigningRequest) bool { return true })
		if len(csr.Status.Conditions) != 0 || len(csr.Status.Certificate) != 0 {
			t.Errorf("node n1's request for n2 was acted on: %+v", csr.Status)
		}
	})

	t.Run("approved by hand but broken: Failed, never signed", func(t *testing.T) {
		e.create(t, e.admin, "not-a-node", certificatesv1.KubeAPIServerClientKubeletSignerName,
			request(t, "alice", nil, nil), "digital signature", "client auth")
		csrs := e.admin.CertificatesV1().CertificateSigningRequests()
		csr, err := csrs.Get(context.Background(), "not-a-node", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "ByHand"})
		if _, err := csrs.UpdateApproval(context.Background(), csr.Name, csr, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		csr = e.wait(t, "not-a-node", func(c *certificatesv1.CertificateSigningRequest) bool {
			return condition(c, certificatesv1.CertificateFailed) != nil
		})
		f := condition(csr, certificatesv1.CertificateFailed)
		if f.Reason != "SignerValidationFailure" || !strings.Contains(f.Message, "system:node:<name>") || len(csr.Status.Certificate) != 0 {
			t.Errorf("failure %+v, certificate %d bytes", f, len(csr.Status.Certificate))
		}
	})
}
