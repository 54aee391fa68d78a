package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/images"
	"github.com/skiff-sh/skiff/agent/node"
	"github.com/skiff-sh/skiff/agent/pods"
	"github.com/skiff-sh/skiff/agent/runtime"
	"github.com/skiff-sh/skiff/agent/server"
	"github.com/skiff-sh/skiff/agent/static"
	"github.com/skiff-sh/skiff/agent/stats"
	"github.com/skiff-sh/skiff/agent/storage"
	"github.com/skiff-sh/skiff/agent/volumes"
	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
	"github.com/skiff-sh/skiff/join"
)

// APIServerClientUser is the identity (client certificate CN) the API
// server uses towards agents; the agent's API accepts only it.
const APIServerClientUser = "kube-apiserver-kubelet-client" // cluster.KubeletClientUser

// Credentials are what an agent runs on once it has joined.
type Credentials struct {
	// Kubeconfig is a kubeconfig file with the node's client certificate.
	Kubeconfig string
	// ServingCert and ServingKey are the agent API's certificate files.
	ServingCert, ServingKey string
	// CACertPEM is the cluster CA.
	CACertPEM []byte
}

// Config describes an agent.
type Config struct {
	// DataDir holds everything the agent keeps (containerd's root, pod
	// volumes, logs, certificates).
	DataDir string
	// NodeName defaults to the host name.
	NodeName string
	// NodeIP is the node's address; default the first non-loopback IPv4.
	NodeIP string
	// Server and Token join a cluster (skiff agent). Unused when
	// Credentials is set (the server's own agent).
	Server, Token string
	Credentials   *Credentials
	// Port is the agent API's port (default 10250); Listener overrides it.
	Port     int
	Listener net.Listener
	// ClusterDNS is the cluster DNS address written into pods'
	// resolv.conf (default: the kube-system/kube-dns Service's ClusterIP,
	// 10.43.0.10 on a default cluster); ClusterDomain its domain.
	ClusterDNS    string
	ClusterDomain string
	// ClusterCIDR is the whole pod network (default 10.42.0.0/16): pod
	// traffic to it is routed between nodes, not masqueraded.
	ClusterCIDR string
	// DNSUpstreams are the resolvers the node's cluster DNS server forwards
	// other names to, as "ip" or "ip:port" (default: /etc/resolv.conf's).
	DNSUpstreams []string
	// Labels and Taints are registered with the node.
	Labels map[string]string
	Taints []corev1.Taint
	// Bridge is the pod network's bridge (default skiff0). Agents sharing a
	// network namespace (tests) need different ones.
	Bridge string
	// ManifestsDir holds static pod manifests (default DataDir/manifests).
	ManifestsDir string
	// Ingress runs the built-in ingress controller, listening on
	// IngressHTTP and IngressHTTPS (":80", ":443"); it routes only: the
	// controller manager writes Ingress status and events.
	Ingress                   bool
	IngressHTTP, IngressHTTPS string
	// ImageDirs are more directories of image archives imported at start
	// (the server's DATA_DIR/images for its own agent).
	ImageDirs []string
	// DemoBinary, if set, is built into the local demo image.
	DemoBinary string
	// ContainerdPath overrides the containerd binary.
	ContainerdPath string
	// Version is reported as the node's kubelet version.
	Version string
	Log     *slog.Logger
	// Ready, if set, is called once the node is registered and Ready.
	Ready func(nodeName string, elapsed time.Duration)
}

// Run runs the agent until ctx ends. Running containers survive its end
// (they belong to containerd's shims): a restarted agent adopts them.
func Run(ctx context.Context, cfg Config) error {
	start := time.Now()
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	log := cfg.Log.With("component", "agent")
	if err := defaults(&cfg); err != nil {
		return err
	}
	ip, err := netip.ParseAddr(cfg.NodeIP)
	if err != nil {
		return fmt.Errorf("node IP %q: %w", cfg.NodeIP, err)
	}
	clusterCIDR, err := netip.ParsePrefix(cfg.ClusterCIDR)
	if err != nil || !clusterCIDR.Addr().Is4() {
		return fmt.Errorf("cluster CIDR %q: want an IPv4 prefix such as 10.42.0.0/16", cfg.ClusterCIDR)
	}
	for _, d := range []string{"", "pki", "pods", "logs", "images", "cni/net.d", "cni/ipam"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, d), 0o700); err != nil {
			return fmt.Errorf("agent data dir: %w", err)
		}
	}
	_ = os.Chmod(filepath.Join(cfg.DataDir, "logs"), 0o755)

	// containerd starts while the agent joins.
	type rtResult struct {
		rt  *runtime.Runtime
		err error
	}
	rtCh := make(chan rtResult, 1)
	go func() {
		rt, err := runtime.Start(ctx, runtime.Config{
			Dir:            filepath.Join(cfg.DataDir, "containerd"),
			NodeName:       cfg.NodeName,
			SandboxImage:   images.PauseImage,
			CNIBinDir:      "/usr/lib/cni",
			CNIConfDir:     filepath.Join(cfg.DataDir, "cni/net.d"),
			ContainerdPath: cfg.ContainerdPath,
			Log:            cfg.Log,
		})
		rtCh <- rtResult{rt, err}
	}()
	creds := cfg.Credentials
	if creds == nil {
		hostname, _ := os.Hostname()
		res, err := join.Bootstrap(ctx, join.Config{
			Server: cfg.Server, Token: cfg.Token, NodeName: cfg.NodeName,
			NodeIPs: []net.IP{ip.AsSlice()}, Hostnames: []string{hostname, cfg.NodeName},
			Dir: filepath.Join(cfg.DataDir, "pki"), Log: cfg.Log,
		})
		if err != nil {
			r := <-rtCh
			if r.rt != nil {
				_ = r.rt.Stop()
			}
			return err
		}
		creds = &Credentials{Kubeconfig: res.KubeconfigPath, ServingCert: res.ServingCertFile, ServingKey: res.ServingKeyFile, CACertPEM: res.CACertPEM}
	}
	r := <-rtCh
	if r.err != nil {
		return fmt.Errorf("container runtime: %w", r.err)
	}
	rt := r.rt
	defer func() {
		if err := rt.Stop(); err != nil {
			log.Warn("stopping containerd", "err", err)
		}
	}()

	restCfg, err := clientcmd.BuildConfigFromFlags("", creds.Kubeconfig)
	if err != nil {
		return fmt.Errorf("node kubeconfig: %w", err)
	}
	restCfg.QPS, restCfg.Burst = 50, 100
	restCfg.UserAgent = "skiff-agent/" + cfg.NodeName
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}

	// Local images: pause is needed before any pod; the rest may follow.
	local := newImageSet()
	ensureBuiltins := func(ctx context.Context) ([]string, error) {
		return images.EnsureBuiltins(ctx, rt.Socket(), rt.Images(), images.BuiltinOptions{
			CacheDir: filepath.Join(cfg.DataDir, "images-cache"), DemoBinary: cfg.DemoBinary, Log: cfg.Log,
		})
	}
	imgDone := make(chan error, 1)
	go func() {
		names, err := ensureBuiltins(ctx)
		local.add(names...)
		if err == nil {
			for _, dir := range append([]string{filepath.Join(cfg.DataDir, "images")}, cfg.ImageDirs...) {
				more, ierr := images.ImportDir(ctx, rt.Socket(), dir)
				local.add(more...)
				if ierr != nil {
					log.Warn("importing images", "dir", dir, "err", ierr)
				}
			}
		}
		// Building the images churned through tens of MiB; give them back
		// now rather than whenever the scavenger gets to it.
		debug.FreeOSMemory()
		imgDone <- err
	}()

	var netReady sync.Map // "cni" -> true once the conflist is written
	storageBase := storage.BaseDir(cfg.DataDir)
	keeper, err := node.New(node.Config{
		Name: cfg.NodeName, Client: client, Addresses: []netip.Addr{ip}, Hostname: hostnameOr(cfg.NodeName),
		Annotations: map[string]string{pvmatch.AnnLocalPathBase: storageBase},
		Labels:      cfg.Labels, Taints: cfg.Taints, KubeletPort: int32(cfg.Port), DataDir: cfg.DataDir,
		RuntimeVersion: runtimeVersion(ctx, rt.Runtime()), Version: cfg.Version,
		Ready: func(ctx context.Context) (bool, string) {
			if _, ok := netReady.Load("cni"); !ok {
				return false, "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:the node has no podCIDR yet"
			}
			if _, ok := netReady.Load("images"); !ok {
				return false, "the sandbox image is not imported yet"
			}
			return runtimeReady(ctx, rt.Runtime())
		},
		Log: cfg.Log,
	})
	if err != nil {
		return err
	}
	n, err := keeper.Register(ctx)
	if err != nil {
		return err
	}

	allocatable := n.Status.Allocatable
	clusterDNS := clusterDNSAddress(ctx, client, cfg.ClusterDNS, cfg.Log)
	vm := &volumes.Manager{Root: filepath.Join(cfg.DataDir, "pods"), Client: client, Log: cfg.Log, NodeAllocatable: allocatable}
	// Mount propagation into containers needs the volumes on a shared mount.
	if err := vm.MakeRootShared(); err != nil {
		return fmt.Errorf("pod volume root: %w", err)
	}
	mgr, err := pods.New(pods.Config{
		NodeName: cfg.NodeName, Client: client, Runtime: rt.Runtime(), Images: rt.Images(),
		Volumes: vm,
		PodDir:  filepath.Join(cfg.DataDir, "pods"), LogDir: filepath.Join(cfg.DataDir, "logs"),
		NodeIPs: []netip.Addr{ip}, ClusterDNS: []string{clusterDNS}, ClusterDomain: cfg.ClusterDomain,
		CgroupRoot: cgroupRoot(cfg.NodeName), LocalImage: local.has, Allocatable: allocatable, Log: cfg.Log,
		RestoreLocal: func(ctx context.Context, ref string) bool {
			names, err := ensureBuiltins(ctx)
			local.add(names...)
			return err == nil
		},
	})
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errCh := make(chan error, 4)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil && runCtx.Err() == nil {
				errCh <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	goRun("node status", keeper.Run)

	// The agent's API (logs, exec, attach, port-forward).
	srvTLS, err := servingTLS(creds)
	if err != nil {
		return err
	}
	l := cfg.Listener
	if l == nil {
		if l, err = net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(cfg.Port))); err != nil {
			return fmt.Errorf("agent API listener: %w", err)
		}
	}
	goRun("agent API", func(ctx context.Context) error {
		return server.Serve(ctx, server.Config{
			Listener: l, TLS: srvTLS, AllowedUsers: []string{APIServerClientUser},
			Runtime: rt.Runtime(), NodeName: cfg.NodeName, Log: cfg.Log,
			Extra: map[string]http.Handler{
				"GET " + stats.Path: stats.Handler(rt.Runtime(), cfg.NodeName, cfg.Log),
				"GET /metrics":      mgr.MetricsHandler(),
			},
		})
	})

	// The pod network needs the node's podCIDR.
	podCIDR, err := waitPodCIDR(runCtx, client, cfg.NodeName, n)
	if err != nil {
		return err
	}
	if err := enableForwarding(); err != nil {
		return err
	}
	gw := gatewayOf(podCIDR)
	if err := ensureBridge(runCtx, cfg.Bridge, gw); err != nil {
		return fmt.Errorf("pod bridge: %w", err)
	}
	if err := writeCNIConfig(filepath.Join(cfg.DataDir, "cni/net.d"), filepath.Join(cfg.DataDir, "cni/ipam"), cfg.Bridge, podCIDR); err != nil {
		return err
	}
	if err := ensureMasquerade(runCtx, cfg.Bridge, podCIDR, clusterCIDR); err != nil {
		return err
	}
	if err := startServiceNetwork(runCtx, cfg, client, n, ip, podCIDR, clusterCIDR, gw.Addr(), goRun); err != nil {
		return err
	}
	netReady.Store("cni", true)
	select {
	case err := <-imgDone:
		if err != nil {
			return fmt.Errorf("local images: %w", err)
		}
	case <-ctx.Done():
		return nil
	}
	netReady.Store("images", true)
	if err := waitRuntimeReady(runCtx, rt.Runtime()); err != nil {
		return err
	}
	keeper.Poke()

	goRun("pods", mgr.Run)
	manifests := cfg.ManifestsDir
	if manifests == "" {
		manifests = filepath.Join(cfg.DataDir, "manifests")
	}
	static := &static.Syncer{Dir: manifests, NodeName: cfg.NodeName, NodeUID: n.UID, Client: client, Log: cfg.Log}
	goRun("static pods", static.Run)
	goRun("local volumes", storage.New(client, cfg.NodeName, storageBase, cfg.Log).Run)
	if cfg.Ready != nil {
		go func() {
			if waitNodeReady(runCtx, client, cfg.NodeName) == nil {
				cfg.Ready(cfg.NodeName, time.Since(start))
			}
		}()
	}
	log.Info("agent running", "node", cfg.NodeName, "podCIDR", podCIDR, "elapsed", time.Since(start).Round(time.Millisecond))
	select {
	case <-ctx.Done():
		return nil
	case err := <-errCh:
		return err
	}
}

func defaults(cfg *Config) error {
	if cfg.DataDir == "" {
		return errors.New("agent: a data dir is required")
	}
	if cfg.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: %w", err)
		}
		cfg.NodeName = strings.ToLower(h)
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = FirstIPv4()
	}
	if cfg.Port == 0 {
		cfg.Port = 10250
	}
	if cfg.Listener != nil {
		if a, ok := cfg.Listener.Addr().(*net.TCPAddr); ok {
			cfg.Port = a.Port
		}
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = DefaultClusterCIDR
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.Credentials == nil && (cfg.Server == "" || cfg.Token == "") {
		return errors.New("agent: --server and --token are required to join a cluster")
	}
	return nil
}

func hostnameOr(def string) string {
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return def
}

// FirstIPv4 is the host's first non-loopback IPv4 address, or 127.0.0.1.
func FirstIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip := ipn.IP.To4(); ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
					return ip.String()
				}
			}
		}
	}
	return "127.0.0.1"
}

func servingTLS(c *Credentials) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.ServingCert, c.ServingKey)
	if err != nil {
		return nil, fmt.Errorf("agent serving certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CACertPEM) {
		return nil, errors.New("agent: no CA certificate")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func runtimeVersion(ctx context.Context, rt runtimeapi.RuntimeServiceClient) string {
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return "containerd://unknown"
	}
	return v.RuntimeName + "://" + v.RuntimeVersion
}

// runtimeReady asks CRI whether the runtime and its network are ready.
func runtimeReady(ctx context.Context, rt runtimeapi.RuntimeServiceClient) (bool, string) {
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return false, "container runtime is down: " + err.Error()
	}
	for _, c := range st.Status.GetConditions() {
		if !c.Status {
			return false, fmt.Sprintf("container runtime not ready: %s=false reason:%s message:%s", c.Type, c.Reason, c.Message)
		}
	}
	return true, ""
}

func waitRuntimeReady(ctx context.Context, rt runtimeapi.RuntimeServiceClient) error {
	for {
		if ok, _ := runtimeReady(ctx, rt); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitPodCIDR waits for the node IPAM controller to give the node its
// podCIDR.
func waitPodCIDR(ctx context.Context, client kubernetes.Interface, name string, n *corev1.Node) (netip.Prefix, error) {
	delay := 50 * time.Millisecond
	for {
		if n != nil && n.Spec.PodCIDR != "" {
			p, err := netip.ParsePrefix(n.Spec.PodCIDR)
			if err != nil {
				return p, fmt.Errorf("node podCIDR %q: %w", n.Spec.PodCIDR, err)
			}
			return p, nil
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, ctx.Err()
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
		var err error
		if n, err = client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
			n = nil
		}
	}
}

func waitNodeReady(ctx context.Context, client kubernetes.Interface, name string) error {
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// imageSet is the set of locally imported images.
type imageSet struct {
	mu    sync.RWMutex
	names map[string]bool
}

func newImageSet() *imageSet { return &imageSet{names: map[string]bool{}} }

func (s *imageSet) add(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.names[n] = true
	}
}

// has reports whether ref is a local image: imported at start, or one of
// the builtins (which, when the runtime lacks it, is built and imported
// again rather than pulled from a registry that never had it).
func (s *imageSet) has(ref string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.names[ref] || s.names[images.NormalizeRef(ref)] || images.Builtin(ref)
}

// cgroupRoot is the cgroup parent of all of a node's pods.
func cgroupRoot(node string) string { return "/skiff/" + node }
