package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	certsclient "k8s.io/client-go/kubernetes/typed/certificates/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/pki"
)

// Errors a caller may want to tell apart; the returned errors wrap them
// with details.
var (
	// ErrCAMismatch: the server's CA is not the one the token pins.
	ErrCAMismatch = errors.New("the server's CA does not match the token's hash: wrong server or token")
	// ErrTokenRefused: the API server does not accept the token (unknown,
	// expired or deleted).
	ErrTokenRefused = errors.New("the server refused the join token")
)

// Timing of a join.
const (
	// requestTimeout bounds each request to the server.
	requestTimeout = 15 * time.Second
	// certificateWait bounds the wait for one certificate to be issued.
	certificateWait = 2 * time.Minute
	// pollInterval is how often a pending request is looked at.
	pollInterval = 250 * time.Millisecond
	// maxCABundle bounds the /cacerts answer.
	maxCABundle = 1 << 20
)

// Config says who joins where.
type Config struct {
	// Server is the API server's URL, https://host:6443.
	Server string
	// Token is the join token; needed only when Dir holds no usable
	// client certificate for the node.
	Token string
	// NodeName is the node's name; its certificates are for
	// system:node:NodeName.
	NodeName string
	// NodeIPs and Hostnames go into the serving certificate; when both are
	// empty it names NodeName.
	NodeIPs   []net.IP
	Hostnames []string
	// Dir keeps the node's CA, keys, certificates and kubeconfig
	// (AGENT_DIR/pki); created with mode 0700.
	Dir string
	// Log receives progress; default slog.Default().
	Log *slog.Logger
}

// Result is where the node's credentials are.
type Result struct {
	// CACertPEM is the cluster CA the node trusts (also in CACertFile).
	CACertPEM  []byte
	CACertFile string
	// KubeconfigPath is Dir/node.kubeconfig: the API server, the CA and
	// the node's client certificate, all embedded.
	KubeconfigPath string
	// ClientCertFile and ClientKeyFile are the node's API client
	// credentials (system:node:NAME in system:nodes).
	ClientCertFile, ClientKeyFile string
	// ServingCertFile and ServingKeyFile are for the node's own HTTPS
	// server.
	ServingCertFile, ServingKeyFile string
	// Issued lists the certificates this call obtained ("client",
	// "serving"); empty when the ones in Dir were still good.
	Issued []string
}

// Bootstrap gives the node its certificates: the ones in Dir when they
// are still good, else new ones from the server's CertificateSigningRequest
// API, authenticated by the node's client certificate while it is valid and
// by the join token otherwise (see the package doc).
func Bootstrap(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Log.With("node", cfg.NodeName, "server", cfg.Server)
	var tok *Token
	if cfg.Token != "" {
		t, err := ParseToken(cfg.Token)
		if err != nil {
			return nil, err
		}
		tok = &t
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	caPEM, err := readIfExists(filepath.Join(cfg.Dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	var ca *x509.Certificate
	if cas, err := parseCAs(caPEM); err == nil {
		ca = cas[0]
	}
	if tok != nil && ca != nil && pki.CAHash(ca) != tok.CAHash {
		// The token is for another cluster than the one in Dir: start over.
		log.Info("the join token pins another CA than the one on disk; joining afresh")
		ca, caPEM = nil, nil
	}
	client, serving := cfg.wants()
	states := map[certKind]certState{}
	pairs := map[certKind][2][]byte{}
	for _, w := range []wantCert{client, serving} {
		certPEM, keyPEM, err := readPair(cfg.Dir, w)
		if err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		pairs[w.kind] = [2][]byte{certPEM, keyPEM}
		states[w.kind] = assessCert(certPEM, keyPEM, ca, w, time.Now())
	}
	plan, err := planJoin(states[clientKind], states[servingKind], tok != nil)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", cfg.NodeName, err)
	}
	var issued []string
	if !plan.nothing() {
		j := &joiner{cfg: cfg, log: log, tok: tok, ca: ca, caPEM: caPEM, pairs: pairs}
		if issued, err = j.run(ctx, plan, states); err != nil {
			return nil, err
		}
		caPEM = j.caPEM
	}
	return finish(cfg, caPEM, issued)
}

// joiner carries one join through its requests.
type joiner struct {
	cfg   Config
	log   *slog.Logger
	tok   *Token
	ca    *x509.Certificate
	caPEM []byte
	// pairs are the node's certificate and key of each kind, on disk.
	pairs map[certKind][2][]byte
}

// run requests the certificates the plan names. When the node's own
// client certificate is refused and there is a token, it starts over with
// the token.
func (j *joiner) run(ctx context.Context, plan joinPlan, states map[certKind]certState) ([]string, error) {
	issued, err := j.request(ctx, plan, states)
	if err != nil && !plan.withToken && j.tok != nil && apierrors.IsUnauthorized(err) {
		j.log.Info("the server refused the node's client certificate; joining again with the token")
		plan = joinPlan{client: true, serving: true, withToken: true}
		return j.request(ctx, plan, states)
	}
	return issued, err
}

func (j *joiner) request(ctx context.Context, plan joinPlan, states map[certKind]certState) ([]string, error) {
	rc := &rest.Config{Host: j.cfg.Server, Timeout: requestTimeout, UserAgent: "skiff-join/" + j.cfg.NodeName}
	if plan.withToken {
		caPEM, ca, err := discoverCA(ctx, j.cfg.Server, j.tok.CAHash)
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(filepath.Join(j.cfg.Dir, CACertFile), caPEM, 0o644); err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		j.ca, j.caPEM = ca, caPEM
		rc.BearerToken = j.tok.Bearer()
		j.log.Info("joining the cluster with a join token", "token", j.tok.ID)
	} else {
		pair := j.pairs[clientKind]
		rc.CertData, rc.KeyData = pair[0], pair[1]
	}
	rc.CAData = j.caPEM
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("join: client: %w", err)
	}
	csrs := cs.CertificatesV1().CertificateSigningRequests()
	client, serving := j.cfg.wants()
	type pending struct {
		want   wantCert
		name   string
		keyPEM []byte
	}
	var todo []pending
	for _, w := range []wantCert{client, serving} {
		if (w.kind == clientKind && !plan.client) || (w.kind == servingKind && !plan.serving) {
			continue
		}
		if why := states[w.kind].renew; why != "" && !plan.withToken {
			j.log.Info("renewing a certificate", "certificate", w.kind.String(), "because", why)
		}
		keyPEM, csrPEM, err := newRequest(w)
		if err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		created, err := csrs.Create(ctx, csrObject(w, csrPEM), metav1.CreateOptions{})
		if err != nil {
			return nil, j.refused(plan, fmt.Errorf("request a %s certificate: %w", w.kind, err))
		}
		todo = append(todo, pending{want: w, name: created.Name, keyPEM: keyPEM})
	}
	var issued []string
	for _, p := range todo {
		certPEM, err := waitForCertificate(ctx, csrs, p.name, p.want.kind)
		if err != nil {
			return nil, j.refused(plan, err)
		}
		st := assessCert(certPEM, p.keyPEM, j.ca, p.want, time.Now())
		if !st.usable {
			return nil, fmt.Errorf("join: the %s certificate issued for request %s does not fit: %s", p.want.kind, p.name, st.renew)
		}
		if err := writePair(j.cfg.Dir, p.want, certPEM, p.keyPEM); err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		j.pairs[p.want.kind] = [2][]byte{certPEM, p.keyPEM}
		issued = append(issued, p.want.kind.String())
		j.log.Info("certificate issued", "certificate", p.want.kind.String(), "request", p.name)
	}
	return issued, nil
}

// refused turns a 401 into the error a user understands: with the token,
// the token was refused; with the node's certificate, the certificate was.
// The API error stays reachable through errors.Unwrap.
func (j *joiner) refused(plan joinPlan, err error) error {
	if !apierrors.IsUnauthorized(err) {
		return fmt.Errorf("join: %w", err)
	}
	if plan.withToken {
		return &refusal{msg: fmt.Sprintf("%s (it is unknown, expired or deleted): %v", ErrTokenRefused, err), kind: ErrTokenRefused, api: err}
	}
	return &refusal{msg: fmt.Sprintf("the server refused this node's client certificate in %s: %v; give a join token to join again", j.cfg.Dir, err), api: err}
}

// refusal is a 401 from the server, explained.
type refusal struct {
	msg  string
	kind error // ErrTokenRefused or nil
	api  error
}

func (r *refusal) Error() string { return r.msg }

// Unwrap gives the API error (for apierrors.IsUnauthorized) and the kind
// (for errors.Is(err, ErrTokenRefused)).
func (r *refusal) Unwrap() []error {
	if r.kind != nil {
		return []error{r.api, r.kind}
	}
	return []error{r.api}
}

// waitForCertificate polls a request until it has a certificate, is
// denied or fails.
func waitForCertificate(ctx context.Context, csrs certsclient.CertificateSigningRequestInterface, name string, kind certKind) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, certificateWait)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		csr, err := csrs.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsUnauthorized(err):
			return nil, fmt.Errorf("read request %s: %w", name, err)
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("the %s certificate request %s was deleted before it was issued", kind, name)
		case err == nil:
			if c := condition(csr, certificatesv1.CertificateDenied); c != nil {
				return nil, fmt.Errorf("the server denied the %s certificate request %s: %s", kind, name, explain(c))
			}
			if c := condition(csr, certificatesv1.CertificateFailed); c != nil {
				return nil, fmt.Errorf("the signer failed to issue the %s certificate of request %s: %s", kind, name, explain(c))
			}
			if len(csr.Status.Certificate) > 0 {
				return csr.Status.Certificate, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no %s certificate for request %s after %s: it needs approval (kubectl certificate approve %s) and the server's csrsigner controller: %w",
				kind, name, certificateWait, name, ctx.Err())
		case <-tick.C:
		}
	}
}

func condition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i := range csr.Status.Conditions {
		if csr.Status.Conditions[i].Type == t {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}

func explain(c *certificatesv1.CertificateSigningRequestCondition) string {
	switch {
	case c.Reason != "" && c.Message != "":
		return c.Reason + ": " + c.Message
	case c.Message != "":
		return c.Message
	case c.Reason != "":
		return c.Reason
	}
	return "no reason given"
}

// discoverCA fetches the server's CA bundle over TLS it cannot verify yet,
// keeps the CA whose hash the token pins, and checks that the server's own
// certificate chains to it. Nothing secret is sent before that check.
func discoverCA(ctx context.Context, server, wantHash string) ([]byte, *x509.Certificate, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, nil, fmt.Errorf("join: server URL %q: %w", server, err)
	}
	hc := &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			// The CA is what this request is for; the pin checks it below.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // verified against the pinned CA below
		},
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/cacerts", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("join: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("join: fetch the cluster CA: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCABundle))
	if err != nil {
		return nil, nil, fmt.Errorf("join: fetch the cluster CA: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("join: fetch the cluster CA from %s/cacerts: %s", server, resp.Status)
	}
	cas, err := parseCAs(body)
	if err != nil {
		return nil, nil, fmt.Errorf("join: the server's /cacerts: %w", err)
	}
	var ca *x509.Certificate
	for _, c := range cas {
		if pki.CAHash(c) == wantHash {
			ca = c
		}
	}
	if ca == nil {
		return nil, nil, fmt.Errorf("%w (the server at %s has CA %s, the token pins %s)", ErrCAMismatch, server, pki.CAHash(cas[0]), wantHash)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, nil, fmt.Errorf("join: %s did not present a TLS certificate", server)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range resp.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := resp.TLS.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: u.Hostname()}); err != nil {
		return nil, nil, fmt.Errorf("join: the server's TLS certificate does not match the CA the token pins: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), ca, nil
}

// finish writes the kubeconfig from the files in Dir and describes them.
func finish(cfg Config, caPEM []byte, issued []string) (*Result, error) {
	client, _ := cfg.wants()
	certPEM, keyPEM, err := readPair(cfg.Dir, client)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	path := filepath.Join(cfg.Dir, KubeconfigFile)
	if err := pki.WriteKubeconfig(path, cfg.Server, "skiff", client.commonName(), caPEM, certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	in := func(name string) string { return filepath.Join(cfg.Dir, name) }
	return &Result{
		CACertPEM: caPEM, CACertFile: in(CACertFile),
		KubeconfigPath: path,
		ClientCertFile: in(ClientCertFile), ClientKeyFile: in(ClientKeyFile),
		ServingCertFile: in(ServingCertFile), ServingKeyFile: in(ServingKeyFile),
		Issued: issued,
	}, nil
}

// withDefaults checks the configuration and fills in defaults.
func (cfg Config) withDefaults() (Config, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return cfg, fmt.Errorf("join: the server URL %q is not https://HOST[:PORT]", cfg.Server)
	}
	cfg.Server = strings.TrimSuffix(cfg.Server, "/")
	if msgs := validation.IsDNS1123Subdomain(cfg.NodeName); len(msgs) > 0 {
		return cfg, fmt.Errorf("join: node name %q: %s", cfg.NodeName, strings.Join(msgs, "; "))
	}
	if cfg.Dir == "" {
		return cfg, errors.New("join: no directory for the node's credentials")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return cfg, nil
}

// wants are the node's two certificates.
func (cfg Config) wants() (client, serving wantCert) {
	client = wantCert{kind: clientKind, node: cfg.NodeName}
	serving = wantCert{kind: servingKind, node: cfg.NodeName}
	for _, h := range cfg.Hostnames {
		if h != "" && !slices.Contains(serving.dnsNames, h) {
			serving.dnsNames = append(serving.dnsNames, h)
		}
	}
	for _, ip := range cfg.NodeIPs {
		if ip != nil && !slices.ContainsFunc(serving.ips, ip.Equal) {
			serving.ips = append(serving.ips, ip)
		}
	}
	if len(serving.dnsNames) == 0 && len(serving.ips) == 0 {
		serving.dnsNames = []string{cfg.NodeName}
	}
	return client, serving
}
