package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/controllers/csrsigner"
	"github.com/skiff-sh/skiff/join"
	"github.com/skiff-sh/skiff/pki"
	"github.com/skiff-sh/skiff/test/framework"
)

const stockKubectl133 = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"

// joinEnv is a server with the CSR signer running beside it, as the
// controller manager runs it.
type joinEnv struct {
	srv    *framework.Server
	admin  kubernetes.Interface
	ca     *pki.CA
	url    string
	quiet  *slog.Logger
	server string // the server's own join token
}

func startJoinEnv(t *testing.T) *joinEnv {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	admin := srv.Client()
	ca, err := pki.EnsureCA(filepath.Join(srv.DataDir, "pki"), "ca", time.Now())
	if err != nil {
		t.Fatalf("cluster CA: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(admin, 0)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, err := csrsigner.New(admin, factory, ca, csrsigner.Options{
		Log: quiet, ProtectedNetworks: []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16")},
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { _ = signer.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	token, err := join.EnsureServerToken(ctx, admin, srv.DataDir, ca.Cert)
	if err != nil {
		t.Fatalf("server token: %v", err)
	}
	return &joinEnv{srv: srv, admin: admin, ca: ca, url: fmt.Sprintf("https://127.0.0.1:%d", srv.Port), quiet: quiet, server: token}
}

func (e *joinEnv) bootstrap(ctx context.Context, node, token, dir string) (*join.Result, error) {
	return join.Bootstrap(ctx, join.Config{
		Server: e.url, Token: token, NodeName: node, Dir: dir, Log: e.quiet,
		NodeIPs: []net.IP{net.ParseIP("127.0.0.2")}, Hostnames: []string{node + ".edge.example"},
	})
}

// bootstrapClient is a client authenticated by a bare bootstrap token.
func (e *joinEnv) bootstrapClient(t *testing.T, bearer string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: e.url, BearerToken: bearer, TLSClientConfig: rest.TLSClientConfig{CAData: e.ca.CertPEM}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestJoin(t *testing.T) {
	e := startJoinEnv(t)
	ctx := testCtx(t)

	t.Run("the server keeps its token in DATA_DIR/node-token", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(e.srv.DataDir, "node-token"))
		if err != nil || strings.TrimSpace(string(data)) != e.server {
			t.Fatalf("node-token: %q, %v; want %q", data, err, e.server)
		}
		tok, err := join.ParseToken(e.server)
		if err != nil || tok.CAHash != pki.CAHash(e.ca.Cert) {
			t.Fatalf("server token %v pins %s, want %s", err, tok.CAHash, pki.CAHash(e.ca.Cert))
		}
	})

	t.Run("anyone may read /cacerts, and only that", func(t *testing.T) {
		anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
		resp, err := anon.Get(e.url + "/cacerts")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != string(e.ca.CertPEM) {
			t.Fatalf("/cacerts: %s %q", resp.Status, body)
		}
		resp, err = anon.Get(e.url + "/api/v1/nodes")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous list of nodes: %s, want 401", resp.Status)
		}
	})

	t.Run("a node joins with the server's token", func(t *testing.T) {
		dir := t.TempDir()
		res, err := e.bootstrap(ctx, "edge-1", e.server, dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Issued, []string{"client", "serving"}) || string(res.CACertPEM) != string(e.ca.CertPEM) ||
			res.KubeconfigPath != filepath.Join(dir, "node.kubeconfig") {
			t.Errorf("result %+v", res)
		}
		node := clientFromKubeconfig(t, res.KubeconfigPath)
		if _, err := node.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("the node cannot list nodes: %v", err)
		}
		// Who the server thinks the node is: the requester of a CSR it makes.
		probe, err := node.CertificatesV1().CertificateSigningRequests().Create(ctx, manualCSR(t, "probe-", "example.com/probe", "x", nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if probe.Spec.Username != "system:node:edge-1" || !slices.Contains(probe.Spec.Groups, "system:nodes") {
			t.Errorf("the node is %q in %v, want system:node:edge-1 in system:nodes", probe.Spec.Username, probe.Spec.Groups)
		}
		serving := readCert(t, res.ServingCertFile)
		if !slices.Contains(serving.DNSNames, "edge-1.edge.example") || len(serving.IPAddresses) != 1 || !serving.IPAddresses[0].Equal(net.ParseIP("127.0.0.2")) ||
			!slices.Equal(serving.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || serving.Subject.CommonName != "system:node:edge-1" {
			t.Errorf("serving certificate %v %v %v %v", serving.Subject, serving.DNSNames, serving.IPAddresses, serving.ExtKeyUsage)
		}
		if _, err := tls.LoadX509KeyPair(res.ServingCertFile, res.ServingKeyFile); err != nil {
			t.Errorf("serving pair: %v", err)
		}
		if life := serving.NotAfter.Sub(time.Now()); life < 364*24*time.Hour || life > 366*24*time.Hour {
			t.Errorf("serving certificate lives %s, want a year", life)
		}
		if fi, err := os.Stat(res.ClientKeyFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("client key: %v %v", fi, err)
		}

		// A restart reuses the certificates without the token.
		again, err := e.bootstrap(ctx, "edge-1", "", dir)
		if err != nil || len(again.Issued) != 0 {
			t.Fatalf("second bootstrap without a token: %+v, %v", again, err)
		}
		// A lost serving certificate comes back with the node's own client
		// certificate, still without the token.
		if err := os.Remove(res.ServingCertFile); err != nil {
			t.Fatal(err)
		}
		again, err = e.bootstrap(ctx, "edge-1", "", dir)
		if err != nil || !slices.Equal(again.Issued, []string{"serving"}) {
			t.Fatalf("serving renewal: %+v, %v", again, err)
		}
	})

	t.Run("a deleted token does not matter once joined", func(t *testing.T) {
		token, err := join.CreateToken(ctx, e.admin, time.Hour, "edge-2 only", e.ca.Cert)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if _, err := e.bootstrap(ctx, "edge-2", token, dir); err != nil {
			t.Fatal(err)
		}
		if err := join.DeleteToken(ctx, e.admin, token); err != nil {
			t.Fatal(err)
		}
		if res, err := e.bootstrap(ctx, "edge-2", token, dir); err != nil || len(res.Issued) != 0 {
			t.Fatalf("bootstrap after the token was deleted: %+v, %v", res, err)
		}
		// The server trusts what it read of a token for a few seconds.
		tok, _ := join.ParseToken(token)
		boot := e.bootstrapClient(t, tok.Bearer())
		waitFor(t, "the deleted token to be refused", func() bool {
			_, err := boot.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
			return apierrors.IsUnauthorized(err)
		})
		if _, err := e.bootstrap(ctx, "edge-3", token, t.TempDir()); !errors.Is(err, join.ErrTokenRefused) {
			t.Errorf("a new node with the deleted token: %v", err)
		}
	})

	t.Run("a wrong token is refused", func(t *testing.T) {
		tok, _ := join.ParseToken(e.server)
		wrong := join.Token{CAHash: tok.CAHash, ID: "zzzzzz", Secret: "0123456789abcdef"}
		_, err := e.bootstrap(ctx, "bad-1", wrong.String(), t.TempDir())
		if !errors.Is(err, join.ErrTokenRefused) || !strings.Contains(err.Error(), "the server refused the join token") {
			t.Fatalf("err = %v", err)
		}
		wrongSecret := join.Token{CAHash: tok.CAHash, ID: tok.ID, Secret: "0000000000000000"}
		if _, err := e.bootstrap(ctx, "bad-1", wrongSecret.String(), t.TempDir()); !errors.Is(err, join.ErrTokenRefused) {
			t.Fatalf("wrong secret: %v", err)
		}
	})

	t.Run("an expired token is refused", func(t *testing.T) {
		tok, _ := join.ParseToken(e.server)
		expired := join.Token{CAHash: tok.CAHash, ID: "old123", Secret: "0123456789abcdef"}
		_, err := e.admin.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-old123"},
			Type:       corev1.SecretTypeBootstrapToken,
			StringData: map[string]string{"token-id": "old123", "token-secret": "0123456789abcdef",
				"usage-bootstrap-authentication": "true", "expiration": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.bootstrap(ctx, "bad-2", expired.String(), t.TempDir())
		if !errors.Is(err, join.ErrTokenRefused) || !strings.Contains(err.Error(), "the server refused the join token") {
			t.Fatalf("err = %v", err)
		}
		list, err := join.ListTokens(ctx, e.admin)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, info := range list {
			found = found || (info.ID == "old123" && info.Expired(time.Now()))
		}
		if !found {
			t.Errorf("the expired token is not listed as expired: %+v", list)
		}
	})

	t.Run("a token for another CA is refused before anything is sent", func(t *testing.T) {
		other, err := pki.EnsureCA(t.TempDir(), "ca", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := join.ParseToken(e.server)
		tok.CAHash = pki.CAHash(other.Cert)
		dir := t.TempDir()
		_, err = e.bootstrap(ctx, "bad-3", tok.String(), dir)
		if !errors.Is(err, join.ErrCAMismatch) || !strings.Contains(err.Error(), "the server's CA does not match the token's hash: wrong server or token") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "ca.crt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the untrusted CA was written: %v", err)
		}
	})

	t.Run("a bootstrap token may only handle CSRs", func(t *testing.T) {
		tok, _ := join.ParseToken(e.server)
		c := e.bootstrapClient(t, tok.Bearer())
		_, err := c.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "system:bootstrap:`+tok.ID+`" cannot list resource "secrets"`) {
			t.Fatalf("listing secrets with a bootstrap token: %v", err)
		}
		if _, err := c.CoreV1().Nodes().Get(ctx, "edge-1", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("reading a node with a bootstrap token: %v", err)
		}
		csr, err := c.CertificatesV1().CertificateSigningRequests().Create(ctx, manualCSR(t, "boot-", "example.com/probe", "x", nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a CSR with a bootstrap token: %v", err)
		}
		if csr.Spec.Username != "system:bootstrap:"+tok.ID || !slices.Contains(csr.Spec.Groups, "system:bootstrappers") {
			t.Errorf("requester %q %v", csr.Spec.Username, csr.Spec.Groups)
		}
		if _, err := c.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("listing CSRs with a bootstrap token: %v", err)
		}
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}
		if _, err := c.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("a bootstrap token approved its own CSR: %v", err)
		}
	})

	t.Run("kubectl certificate approve and deny", func(t *testing.T) {
		if _, err := os.Stat(stockKubectl133); err != nil {
			t.Fatalf("stock kubectl: %v", err)
		}
		csrs := e.admin.CertificatesV1().CertificateSigningRequests()
		forged := manualCSR(t, "", "kubernetes.io/kube-apiserver-client", "alice", []string{"devs"})
		forged.Name = "alice-client"
		forged.Spec.Username, forged.Spec.Groups = "mallory", []string{"system:masters"}
		hour := int32(3600)
		forged.Spec.ExpirationSeconds = &hour
		created, err := csrs.Create(ctx, forged, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if created.Spec.Username != "skiff-admin" || slices.Contains(created.Spec.Groups, "mallory") {
			t.Errorf("the requester is %q %v; the server must set it", created.Spec.Username, created.Spec.Groups)
		}
		deniedCSR := manualCSR(t, "", "example.com/manual", "bob", nil)
		deniedCSR.Name = "bob-client"
		if _, err := csrs.Create(ctx, deniedCSR, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		masters := manualCSR(t, "", "kubernetes.io/kube-apiserver-client", "eve", []string{"system:masters"})
		masters.Name = "eve-client"
		if _, err := csrs.Create(ctx, masters, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("a system:masters API client CSR was accepted: %v", err)
		}

		kubectl := func(args ...string) string {
			t.Helper()
			out, err := exec.Command(stockKubectl133, append([]string{"--kubeconfig", e.srv.Kubeconfig}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl %v: %v\n%s", args, err, out)
			}
			return string(out)
		}
		kubectl("certificate", "approve", "alice-client")
		kubectl("certificate", "deny", "bob-client")

		// The signer issues the approved API client certificate, for the hour asked.
		var issued *certificatesv1.CertificateSigningRequest
		waitFor(t, "alice's certificate", func() bool {
			issued, err = csrs.Get(ctx, "alice-client", metav1.GetOptions{})
			return err == nil && len(issued.Status.Certificate) > 0
		})
		if c := issued.Status.Conditions; len(c) != 1 || c[0].Type != certificatesv1.CertificateApproved || c[0].Reason != "KubectlApprove" || c[0].LastUpdateTime.IsZero() {
			t.Errorf("conditions %+v", c)
		}
		cert := parseCertPEM(t, issued.Status.Certificate)
		if cert.Subject.CommonName != "alice" || time.Until(cert.NotAfter) > time.Hour || time.Until(cert.NotAfter) < 55*time.Minute {
			t.Errorf("issued %v until %s", cert.Subject, cert.NotAfter)
		}
		bob, err := csrs.Get(ctx, "bob-client", metav1.GetOptions{})
		if err != nil || len(bob.Status.Conditions) != 1 || bob.Status.Conditions[0].Type != certificatesv1.CertificateDenied {
			t.Fatalf("bob: %v %+v", err, bob.Status)
		}
		out := kubectl("get", "csr", "alice-client", "bob-client")
		for _, want := range []string{"SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION", "Approved,Issued", "Denied", "kubernetes.io/kube-apiserver-client", "skiff-admin", "60m"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl get csr lacks %q:\n%s", want, out)
			}
		}
		// Approving a denied request changes nothing.
		if out, err := exec.Command(stockKubectl133, "--kubeconfig", e.srv.Kubeconfig, "certificate", "approve", "bob-client").CombinedOutput(); err == nil {
			bob, _ = csrs.Get(ctx, "bob-client", metav1.GetOptions{})
			if len(bob.Status.Conditions) != 1 {
				t.Errorf("approve after deny: %s\n%+v", out, bob.Status.Conditions)
			}
		}
	})
}

// manualCSR is a request for CN=cn, O=orgs with client usages.
func manualCSR(t *testing.T, generateName, signer, cn string, orgs []string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: generateName},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: signer,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
}

func clientFromKubeconfig(t *testing.T, path string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCertPEM(t, data)
}

func parseCertPEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("no PEM in %q", data)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
