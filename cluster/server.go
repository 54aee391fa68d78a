// Package cluster assembles Skiff's components into the processes users
// run. It starts each part in order, reports readiness, and stops them all
// when its context ends; it holds no logic of its own beyond that wiring.
//
// skiff server, in order:
//
//	data dir -> PKI (CA, serving cert, admin kubeconfig) -> encryption key
//	-> etcd (embedded, or the --etcd-endpoints cluster) -> compactor
//	-> API server (bootstrap objects, then /readyz) -> serve until stopped
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/apiserver"
	"github.com/skiff-sh/skiff/apiserver/openapi"
	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/join"
	"github.com/skiff-sh/skiff/pki"
	"github.com/skiff-sh/skiff/storage"
	"github.com/skiff-sh/skiff/storage/encryption"
	"github.com/skiff-sh/skiff/storage/etcd"
)

// ServerConfig configures `skiff server`.
type ServerConfig struct {
	// DataDir holds everything the server keeps: PKI, etcd data, keys.
	DataDir string
	// BindAddress and APIPort are where the API listens (HTTPS).
	BindAddress string
	APIPort     int
	// AdvertiseAddress is the address other components reach the API on.
	// Empty picks the host's first non-loopback IPv4 address.
	AdvertiseAddress string
	// EtcdEndpoints, when set, use an external etcd cluster instead of the
	// embedded one.
	EtcdEndpoints []string
	// ServiceCIDR is where ClusterIPs come from.
	ServiceCIDR string
	// CompactInterval is how often etcd history is compacted.
	CompactInterval time.Duration
	// Log receives messages. Nil is slog.Default().
	Log *slog.Logger
	// Ready, if set, is called once the API server is ready.
	Ready func(info ReadyInfo)
	// Listener, if set, is used instead of listening on BindAddress and
	// APIPort (tests pass one on a free port).
	Listener net.Listener
	// ControlPlane is what runs beside the API under leader election:
	// package controlplane's groups (scheduler, controller manager), or
	// none for a server that only serves the API.
	ControlPlane []ElectedGroup
	// Election tunes leader election; zero values take the defaults.
	Election ControlPlaneTiming
}

// ReadyInfo describes a server that just became ready.
type ReadyInfo struct {
	URL        string
	Kubeconfig string
	Elapsed    time.Duration
}

// Version is the Kubernetes version Skiff serves: the version of the
// k8s.io/api types it is built on.
var Version = version.Info{
	Major: "1", Minor: "37", GitVersion: "v1.37.2+skiff",
	GoVersion: strings.TrimPrefix(goVersion(), "go"), Compiler: "gc", Platform: "linux/amd64",
}

// RunServer runs the control plane until ctx ends.
func RunServer(ctx context.Context, cfg ServerConfig) error {
	start := time.Now()
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.Listener != nil {
		if a, ok := cfg.Listener.Addr().(*net.TCPAddr); ok {
			cfg.APIPort = a.Port
		}
	}
	if cfg.APIPort == 0 {
		cfg.APIPort = 6443
	}
	if cfg.CompactInterval == 0 {
		cfg.CompactInterval = 5 * time.Minute
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	advertise, err := advertiseAddress(cfg.AdvertiseAddress)
	if err != nil {
		return err
	}
	pkiDir := filepath.Join(cfg.DataDir, "pki")
	now := time.Now()
	ca, err := pki.EnsureCA(pkiDir, "ca", now)
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	_, serviceCIDR, err := parseCIDR(cfg.ServiceCIDR)
	if err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	dnsNames := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if hostname != "" {
		dnsNames = append(dnsNames, hostname)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, advertise.AsSlice(), serviceCIDR.Addr().Next().AsSlice()}
	serving, err := pki.EnsureServing(pkiDir, ca, "apiserver", dnsNames, ips, now)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	certPEM, keyPEM, err := pki.EnsureClientCert(pkiDir, "admin", "skiff-admin", []string{"system:masters"}, ca, now)
	if err != nil {
		return fmt.Errorf("admin certificate: %w", err)
	}
	kubeconfig := filepath.Join(cfg.DataDir, "admin.kubeconfig")
	url := fmt.Sprintf("https://127.0.0.1:%d", cfg.APIPort)
	if err := pki.WriteKubeconfig(kubeconfig, url, "skiff", "skiff-admin", ca.CertPEM, certPEM, keyPEM); err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	kubeletCertPEM, kubeletKeyPEM, err := pki.EnsureClientCert(pkiDir, "apiserver-kubelet-client", KubeletClientUser, []string{"system:masters"}, ca, now)
	if err != nil {
		return fmt.Errorf("kubelet client certificate: %w", err)
	}
	kubeletClient, err := kubeletClientTLS(ca, kubeletCertPEM, kubeletKeyPEM)
	if err != nil {
		return err
	}
	enc, err := encryption.LoadOrCreate(filepath.Join(cfg.DataDir, "encryption.json"), rand.Reader)
	if err != nil {
		return fmt.Errorf("encryption key: %w", err)
	}

	store, closeStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	go etcd.RunCompactor(ctx, store, cfg.CompactInterval, 0, func(msg string, args ...any) { log.Info(msg, args...) })

	catalog := registry.Default()
	docs, err := openapi.New(catalog, Version.GitVersion)
	if err != nil {
		return fmt.Errorf("openapi: %w", err)
	}
	converter, err := managedfields.NewTypeConverter(docs.Schemas(), false)
	if err != nil {
		return fmt.Errorf("type converter: %w", err)
	}
	tokens, err := apiserver.NewBootstrapTokenAuthenticator(store, enc, apiserver.BootstrapTokenOptions{Catalog: catalog})
	if err != nil {
		return err
	}
	api, err := apiserver.New(apiserver.Config{
		TypeConverter:    converter,
		Store:            store,
		Encrypter:        enc,
		Catalog:          catalog,
		ServiceCIDR:      serviceCIDR,
		Version:          Version,
		OpenAPI:          docs,
		Authenticator:    apiserver.ChainAuthenticator{apiserver.ClientCertAuthenticator{}, tokens},
		CACertPEM:        ca.CertPEM,
		Log:              log,
		AdvertiseAddress: netip.AddrPortFrom(advertise, uint16(cfg.APIPort)),
		KubeletClient:    kubeletClient,
	})
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tlsConfig := &tls.Config{
		Certificates: []tls.Certificate{serving},
		ClientCAs:    pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	l := cfg.Listener
	if l == nil {
		bind := cfg.BindAddress
		if bind == "" {
			bind = "0.0.0.0"
		}
		if l, err = net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(cfg.APIPort))); err != nil {
			return fmt.Errorf("API listener: %w", err)
		}
	}
	// The API outlives the control plane: on shutdown the components stop
	// first, then the API server.
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAPI()
	serveErr := make(chan error, 1)
	go func() { serveErr <- api.Serve(apiCtx, l, tlsConfig) }()

	if err := bootstrap(ctx, api); err != nil {
		return err
	}
	// Without its join token the server still serves; only new agents
	// cannot join until the cause (say, a Secret encrypted with a key no
	// longer in the key file) is fixed.
	if err := ensureNodeToken(ctx, kubeconfig, cfg.DataDir, ca); err != nil {
		log.Error("join token: agents cannot join until this is fixed", "err", err)
	}
	api.SetReady(true)
	var cp sync.WaitGroup
	for _, g := range cfg.ControlPlane {
		rc, err := componentConfig(cfg.DataDir, ca, url, g, now)
		if err != nil {
			return err
		}
		cp.Add(1)
		go func() {
			defer cp.Done()
			if err := runElected(ctx, rc, g, cfg.Election, ca, serviceCIDR, cfg.APIPort, log); err != nil {
				log.Error("control plane group stopped", "group", g.Lease, "err", err)
			}
		}()
	}
	elapsed := time.Since(start)
	log.Info("skiff server is ready", "url", url, "kubeconfig", kubeconfig, "elapsed", elapsed.Round(time.Millisecond))
	if cfg.Ready != nil {
		cfg.Ready(ReadyInfo{URL: url, Kubeconfig: kubeconfig, Elapsed: elapsed})
	}
	select {
	case err = <-serveErr:
		return err
	case <-ctx.Done():
	}
	cp.Wait()
	stopAPI()
	err = <-serveErr
	log.Info("skiff server stopped")
	return err
}

// ensureNodeToken keeps DATA_DIR/node-token, the join token agents use.
func ensureNodeToken(ctx context.Context, kubeconfig, dataDir string, ca *pki.CA) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("node token: %w", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("node token: %w", err)
	}
	if _, err := join.EnsureServerToken(ctx, client, dataDir, ca.Cert); err != nil {
		return err
	}
	return nil
}

// bootstrap retries the API server's bootstrap while the store settles.
func bootstrap(ctx context.Context, api *apiserver.Server) error {
	var err error
	for attempt := 0; attempt < 30; attempt++ {
		if err = api.Bootstrap(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("bootstrap: %w", err)
}

// progressInterval is how often idle watches get a bookmark, so clients'
// views of quiet resources stay current (the garbage collector waits on it).
const progressInterval = time.Second

// openStore connects to the external etcd, or starts the embedded one.
func openStore(ctx context.Context, cfg ServerConfig) (storage.Interface, func(), error) {
	if len(cfg.EtcdEndpoints) > 0 {
		c, err := clientv3.New(clientv3.Config{Endpoints: cfg.EtcdEndpoints, DialTimeout: 5 * time.Second, Context: ctx})
		if err != nil {
			return nil, nil, fmt.Errorf("external etcd %v: %w", cfg.EtcdEndpoints, err)
		}
		st := etcd.New(c, etcd.WithProgressInterval(progressInterval))
		return st, func() { _ = st.Close() }, nil
	}
	emb, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{Dir: filepath.Join(cfg.DataDir, "etcd")})
	if err != nil {
		return nil, nil, fmt.Errorf("embedded etcd: %w", err)
	}
	st := etcd.New(emb.Client(), etcd.WithProgressInterval(progressInterval))
	return st, func() { _ = st.Close(); _ = emb.Close() }, nil
}

// advertiseAddress returns the configured address, or the first
// non-loopback IPv4 address of the host, or 127.0.0.1.
func advertiseAddress(configured string) (netip.Addr, error) {
	if configured != "" {
		a, err := netip.ParseAddr(configured)
		if err != nil {
			return a, fmt.Errorf("advertise address %q: %w", configured, err)
		}
		return a, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					ip = ip.Unmap()
					if ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
						return ip, nil
					}
				}
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1"), nil
}

func parseCIDR(s string) (netip.Addr, netip.Prefix, error) {
	if s == "" {
		s = "10.43.0.0/16"
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Addr{}, p, fmt.Errorf("service CIDR %q: %w", s, err)
	}
	if !p.Addr().Is4() {
		return netip.Addr{}, p, errors.New("service CIDR: only IPv4 is supported")
	}
	return p.Addr(), p.Masked(), nil
}

// KubeletClientUser is the identity the API server presents to node
// agents (which accept only it) when it proxies logs, exec, attach and
// port-forward.
const KubeletClientUser = "kube-apiserver-kubelet-client"

// kubeletClientTLS is how the API server reaches agents: it verifies their
// serving certificates against the cluster CA and presents its own.
func kubeletClientTLS(ca *pki.CA, certPEM, keyPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
