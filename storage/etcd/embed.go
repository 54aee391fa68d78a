package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EmbeddedConfig says where and how to run an in-process etcd.
type EmbeddedConfig struct {
	// Dir holds etcd's data (Dir/member) and, by default, its client
	// socket. It is created if missing. Required.
	Dir string
	// ClientURL is where etcd serves clients. Empty means a unix socket
	// at Dir/etcd.sock, or an unused 127.0.0.1 port when that path is too
	// long for a socket. "unix" means the socket alone.
	ClientURL string
	// PeerURL, if set, is where etcd listens for and advertises its peer
	// traffic. Empty means no peer listener: a single-member cluster
	// needs none.
	PeerURL string
	// Logger receives etcd's logs. Nil logs errors only, to stderr.
	Logger *zap.Logger
}

// Embedded is an etcd server running in this process.
type Embedded struct {
	etcd      *embed.Etcd
	endpoints []string
	logger    *zap.Logger
	// level is the default logger's level, raised on Close to hide the
	// listeners' "closed" errors; nil for a caller's logger.
	level *zap.AtomicLevel

	mu      sync.Mutex
	clients []*clientv3.Client
	closed  bool

	closeOnce sync.Once
}

const (
	// socketName is the client socket's file name inside Dir.
	socketName = "etcd.sock"
	// maxSocketPath stays under the 108-byte sun_path limit of Linux,
	// leaving room for the terminating NUL.
	maxSocketPath = 100
	// unusedPeerURL is advertised, never listened on, when PeerURL is
	// empty. A single-member cluster never dials its own peer URL.
	unusedPeerURL = "http://127.0.0.1:2380"
	// startAttempts bounds retries when a freshly picked port is taken
	// before etcd binds it.
	startAttempts = 3
)

// quietLogger logs errors only, to stderr.
func quietLogger() (*zap.Logger, *zap.AtomicLevel, error) {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zapcore.ErrorLevel)
	cfg.Sampling = nil
	cfg.OutputPaths = []string{"stderr"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	lg, err := cfg.Build()
	if err != nil {
		return nil, nil, fmt.Errorf("build etcd logger: %w", err)
	}
	return lg, &cfg.Level, nil
}

// freeLoopbackURL returns an http URL on a 127.0.0.1 port that was free a
// moment ago.
func freeLoopbackURL() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free loopback port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("pick a free loopback port: %w", err)
	}
	return "http://" + addr, nil
}

// clientURL resolves EmbeddedConfig.ClientURL; picked reports a port chosen
// here, which may be lost to a race and is worth choosing again.
func clientURL(dir, configured string) (u string, picked bool, err error) {
	sock := filepath.Join(dir, socketName)
	switch configured {
	case "":
		if len(sock) <= maxSocketPath {
			return "unix://" + sock, false, nil
		}
		u, err := freeLoopbackURL()
		return u, true, err
	case "unix":
		if len(sock) > maxSocketPath {
			return "", false, fmt.Errorf("socket path %q is longer than %d bytes", sock, maxSocketPath)
		}
		return "unix://" + sock, false, nil
	}
	return configured, false, nil
}

func parseURL(s string) (url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return url.URL{}, fmt.Errorf("parse URL %q: %w", s, err)
	}
	return *u, nil
}

// embedConfig builds etcd's configuration: one member, quiet, small.
func embedConfig(dir, client, peer string, lg *zap.Logger) (*embed.Config, error) {
	cfg := embed.NewConfig()
	cfg.Name = "skiff"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	cfg.LogLevel = "error"

	cu, err := parseURL(client)
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}

	advertisePeer := peer
	cfg.ListenPeerUrls = nil
	if peer == "" {
		advertisePeer = unusedPeerURL
	}
	pu, err := parseURL(advertisePeer)
	if err != nil {
		return nil, err
	}
	if peer != "" {
		cfg.ListenPeerUrls = []url.URL{pu}
	}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	cfg.InitialCluster = cfg.Name + "=" + advertisePeer

	// A small control plane: snapshot the raft log every 5000 writes,
	// keep two snapshots and WAL files, cap the database at 2 GiB.
	cfg.SnapshotCount = 5000
	cfg.SnapshotCatchUpEntries = 1000
	cfg.MaxSnapFiles = 2
	cfg.MaxWalFiles = 2
	cfg.QuotaBackendBytes = 2 << 30
	// History is compacted by the API server (RunCompactor).
	cfg.AutoCompactionRetention = "0"
	cfg.EnableGRPCGateway = false
	cfg.Metrics = "basic"
	return cfg, nil
}

// StartEmbedded starts etcd in cfg.Dir and returns once it serves clients.
// If ctx ends first, the server is stopped and ctx's error returned.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("start embedded etcd: no directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	lg := cfg.Logger
	var level *zap.AtomicLevel
	if lg == nil {
		if lg, level, err = quietLogger(); err != nil {
			return nil, fmt.Errorf("start embedded etcd: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		client, picked, err := clientURL(dir, cfg.ClientURL)
		if err != nil {
			return nil, fmt.Errorf("start embedded etcd: %w", err)
		}
		e, err := startOnce(ctx, dir, client, cfg.PeerURL, lg)
		if err == nil {
			e.level = level
			return e, nil
		}
		if !picked || attempt == startAttempts || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
}

func startOnce(ctx context.Context, dir, client, peer string, lg *zap.Logger) (*Embedded, error) {
	ecfg, err := embedConfig(dir, client, peer, lg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	case <-e.Server.StopNotify():
		e.Close()
		return nil, fmt.Errorf("start embedded etcd in %s: server stopped while starting", dir)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, ctx.Err())
	}
	return &Embedded{etcd: e, endpoints: []string{client}, logger: lg}, nil
}

// Endpoints returns the client URLs to give clientv3.
func (e *Embedded) Endpoints() []string {
	return append([]string(nil), e.endpoints...)
}

// Client returns a new client of the server. The caller owns it (New takes
// it over); Close closes any client still open. It returns nil once the
// server is closed or if the client cannot be set up.
func (e *Embedded) Client() *clientv3.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   e.endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      e.logger,
	})
	if err != nil {
		e.logger.Error("embedded etcd: new client", zap.Error(err))
		return nil
	}
	e.clients = append(e.clients, c)
	return c
}

// Close closes the clients made by Client, then stops the server and
// waits for it. Closing twice is harmless.
func (e *Embedded) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		clients := e.clients
		e.clients = nil
		e.mu.Unlock()
		// Open watch streams would hold up the server's graceful stop
		// for its request timeout; closing the clients ends them. A
		// client closed already answers with an error worth ignoring.
		for _, c := range clients {
			_ = c.Close()
		}
		if e.level != nil {
			e.level.SetLevel(zapcore.FatalLevel)
		}
		e.etcd.Close()
		<-e.etcd.Server.StopNotify()
		for serr := range e.etcd.Err() {
			if serr != nil && err == nil {
				err = fmt.Errorf("embedded etcd: %w", serr)
			}
		}
	})
	return err
}
