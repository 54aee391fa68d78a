package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	restclient "k8s.io/client-go/rest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/pki"
)

// testPKI is a CA with the agent's serving certificate and a way to make
// client certificates.
type testPKI struct {
	ca      *pki.CA
	pool    *x509.CertPool
	serving tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	now := time.Now()
	ca, err := pki.EnsureCA(t.TempDir(), "ca", now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer("node-a", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &testPKI{ca: ca, pool: pool, serving: serving}
}

// serverTLS is the agent's TLS configuration, as the lead wires it.
func (p *testPKI) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.serving},
		ClientCAs:    p.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

// clientTLS is a client configuration with a certificate for user.
func (p *testPKI) clientTLS(t *testing.T, user string) *tls.Config {
	t.Helper()
	certPEM, keyPEM, err := p.ca.IssueClient(user, nil, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: p.pool, MinVersion: tls.VersionTLS12}
}

// restConfig is a client-go configuration for calling the agent at base
// directly as user.
func (p *testPKI) restConfig(t *testing.T, base, user string) *restclient.Config {
	t.Helper()
	certPEM, keyPEM, err := p.ca.IssueClient(user, nil, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &restclient.Config{Host: base, TLSClientConfig: restclient.TLSClientConfig{CAData: p.ca.CertPEM, CertData: certPEM, KeyData: keyPEM}}
}

// startAgentServer serves cfg on a loopback port until the test ends and
// returns the server's https base URL.
func startAgentServer(t *testing.T, cfg Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = l
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "https://" + l.Addr().String()
}

func httpClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
}

// fakeRuntime is a CRI runtime service holding containers and sandboxes in
// memory. Calls it does not implement panic through the nil interface.
type fakeRuntime struct {
	runtimeapi.RuntimeServiceClient

	mu         sync.Mutex
	containers []*runtimeapi.Container
	logPaths   map[string]string
	sandboxes  []*runtimeapi.PodSandbox
	streamURL  string
	execs      []*runtimeapi.ExecRequest
	attaches   []*runtimeapi.AttachRequest
	forwards   []*runtimeapi.PortForwardRequest
	execSync   *runtimeapi.ExecSyncResponse
}

func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (f *fakeRuntime) ListContainers(_ context.Context, in *runtimeapi.ListContainersRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.Container
	for _, c := range f.containers {
		if matches(in.GetFilter().GetLabelSelector(), c.Labels) {
			out = append(out, c)
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, in *runtimeapi.ContainerStatusRequest, _ ...grpc.CallOption) (*runtimeapi.ContainerStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.Id == in.ContainerId {
			return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{
				Id: c.Id, State: c.State, CreatedAt: c.CreatedAt, LogPath: f.logPaths[c.Id],
			}}, nil
		}
	}
	return nil, grpcstatus.Errorf(codes.NotFound, "container %q not found", in.ContainerId)
}

func (f *fakeRuntime) setState(id string, state runtimeapi.ContainerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.Id == id {
			c.State = state
		}
	}
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, in *runtimeapi.ListPodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.ListPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for _, s := range f.sandboxes {
		if !matches(in.GetFilter().GetLabelSelector(), s.Labels) {
			continue
		}
		if st := in.GetFilter().GetState(); st != nil && st.State != s.State {
			continue
		}
		out = append(out, s)
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

func (f *fakeRuntime) Exec(_ context.Context, in *runtimeapi.ExecRequest, _ ...grpc.CallOption) (*runtimeapi.ExecResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, in)
	return &runtimeapi.ExecResponse{Url: f.streamURL + "/exec/token"}, nil
}

func (f *fakeRuntime) Attach(_ context.Context, in *runtimeapi.AttachRequest, _ ...grpc.CallOption) (*runtimeapi.AttachResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attaches = append(f.attaches, in)
	return &runtimeapi.AttachResponse{Url: f.streamURL + "/attach/token"}, nil
}

func (f *fakeRuntime) PortForward(_ context.Context, in *runtimeapi.PortForwardRequest, _ ...grpc.CallOption) (*runtimeapi.PortForwardResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forwards = append(f.forwards, in)
	return &runtimeapi.PortForwardResponse{Url: f.streamURL + "/portforward/token"}, nil
}

func (f *fakeRuntime) ExecSync(_ context.Context, in *runtimeapi.ExecSyncRequest, _ ...grpc.CallOption) (*runtimeapi.ExecSyncResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, &runtimeapi.ExecRequest{ContainerId: in.ContainerId, Cmd: in.Cmd})
	return f.execSync, nil
}
