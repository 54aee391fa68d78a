package framework

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Host is a network namespace standing for another machine: it is linked
// to the test's own namespace by a veth pair, with HostIP on its side and
// GatewayIP on ours (its default route).
type Host struct {
	t         testing.TB
	Name      string // the netns name
	HostIP    string
	GatewayIP string
	vethOut   string
}

// NewHost makes machine n (1..60) of a claimed network: a network
// namespace linked to this one by its own /30 (10.250.K.4n/30), so that
// machines share no subnet. It is removed when the test ends.
func NewHost(t testing.TB, network Network, n int) *Host {
	t.Helper()
	NeedRoot(t)
	base := fmt.Sprintf("10.250.%d.", network.Index)
	h := newHostNamed(t, "t", n)
	h.GatewayIP, h.HostIP = base+fmt.Sprint(4*n+1), base+fmt.Sprint(4*n+2)
	h.setUp(30,
		[]string{"ip", "addr", "add", h.GatewayIP + "/30", "dev", h.vethOut},
		[]string{"ip", "link", "set", h.vethOut, "up"})
	return h
}

func newHostNamed(t testing.TB, kind string, n int) *Host {
	tag := rand.IntN(1e5)
	return &Host{t: t, Name: fmt.Sprintf("skiff-%s%d-%d", kind, tag, n), vethOut: fmt.Sprintf("sk%s%d-%d", kind, tag, n)}
}

// setUp makes the namespace and its eth0 (HostIP/bits, default route via
// GatewayIP); outside runs first on this side of the veth pair.
func (h *Host) setUp(bits int, outside ...[]string) {
	h.t.Helper()
	steps := [][]string{
		{"ip", "netns", "add", h.Name},
		{"ip", "link", "add", h.vethOut, "type", "veth", "peer", "name", "eth0", "netns", h.Name},
	}
	steps = append(steps, outside...)
	steps = append(steps,
		[]string{"ip", "-n", h.Name, "addr", "add", fmt.Sprintf("%s/%d", h.HostIP, bits), "dev", "eth0"},
		[]string{"ip", "-n", h.Name, "link", "set", "eth0", "up"},
		[]string{"ip", "-n", h.Name, "link", "set", "lo", "up"},
		[]string{"ip", "-n", h.Name, "route", "add", "default", "via", h.GatewayIP})
	h.t.Cleanup(h.remove)
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			h.t.Fatalf("framework: %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
}

func (h *Host) remove() {
	_ = exec.Command("ip", "netns", "delete", h.Name).Run()
	_ = exec.Command("ip", "link", "delete", h.vethOut).Run()
}

// Command runs a command in the host's network namespace (only: it shares
// the test's mounts and processes).
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + h.Name, name}, args...)...)
}

// RemoteNode is a `skiff agent` process joined with a token, running in
// its own network namespace.
type RemoteNode struct {
	Name    string
	Host    *Host
	DataDir string
	Log     string
	cmd     *exec.Cmd
}

// StartRemoteNode runs `skiff agent` in host h, joining serverURL with
// token, with extra flags appended. It is stopped and cleaned up (containers, volumes, data dir) when
// the test ends.
func StartRemoteNode(t testing.TB, h *Host, name, serverURL, token string, extra ...string) *RemoteNode {
	t.Helper()
	bin := Binary(t)
	DemoBinaryNextTo(t, bin)
	dir, err := os.MkdirTemp("", "skiff-rnode-")
	if err != nil {
		t.Fatal(err)
	}
	n := &RemoteNode{Name: name, Host: h, DataDir: dir, Log: filepath.Join(dir, "agent.log")}
	logf, err := os.Create(n.Log)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"agent", "--server", serverURL, "--token", token,
		"--data-dir", filepath.Join(dir, "agent"), "--node-name", name, "--node-ip", h.HostIP}, extra...)
	n.cmd = h.Command(context.Background(), bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.stop(t)
		logf.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cleanup := append([]string{"agent", "--cleanup", "--data-dir", filepath.Join(dir, "agent"), "--node-name", name}, extra...)
		if out, err := h.Command(ctx, bin, cleanup...).CombinedOutput(); err != nil {
			t.Errorf("framework: cleaning up node %s: %v\n%s", name, err, out)
		}
		// The machine's namespace is the node's alone: whatever nftables
		// rules or pod routes are left in it, the agent left.
		if out, err := h.Command(ctx, "nft", "list", "ruleset").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("framework: node %s left nftables rules after cleanup (%v):\n%.3000s", name, err, out)
		}
		if out, err := h.Command(ctx, "ip", "route", "show", "proto", "221").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("framework: node %s left routes after cleanup (%v):\n%s", name, err, out)
		}
		unmountUnder(dir)
		_ = os.RemoveAll(dir)
	})
	return n
}

func (n *RemoteNode) stop(t testing.TB) {
	if n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
		t.Errorf("framework: agent %s did not stop on SIGTERM within 30s", n.Name)
	}
}

// LogTail returns the end of the agent's log, for failure messages.
func (n *RemoteNode) LogTail() string {
	b, _ := os.ReadFile(n.Log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// DemoBinaryNextTo makes sure skiff-demo sits beside the skiff binary, where
// a `skiff agent` process looks for it.
func DemoBinaryNextTo(t testing.TB, bin string) {
	t.Helper()
	want := filepath.Join(filepath.Dir(bin), "skiff-demo")
	src := DemoBinary(t)
	if src == want {
		return
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// LAN is a link shared by several network namespaces standing for machines:
// a bridge in the test's own namespace, with the network's first address on
// it as their gateway. Machines on it reach each other directly, as the
// nodes of a small cluster on one switch do.
type LAN struct {
	t         testing.TB
	Bridge    string
	GatewayIP string
	prefix    netip.Prefix
}

// NewLAN makes the LAN of a claimed network (network.LAN), removed when the
// test ends.
func NewLAN(t testing.TB, network Network) *LAN {
	t.Helper()
	NeedRoot(t)
	l := &LAN{t: t, Bridge: fmt.Sprintf("sklan%d", network.Index), prefix: network.LAN}
	l.GatewayIP = network.LAN.Addr().Next().String()
	_ = exec.Command("ip", "link", "delete", l.Bridge).Run() // left by a killed run
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", l.Bridge).Run() })
	for _, s := range [][]string{
		{"ip", "link", "add", l.Bridge, "type", "bridge"},
		{"ip", "addr", "add", fmt.Sprintf("%s/%d", l.GatewayIP, network.LAN.Bits()), "dev", l.Bridge},
		{"ip", "link", "set", l.Bridge, "up"},
	} {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("framework: %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return l
}

// Host makes machine n (1..200) on the LAN: a network namespace whose eth0
// is on the LAN's bridge with the LAN's address .n+1.
func (l *LAN) Host(n int) *Host {
	l.t.Helper()
	addr := l.prefix.Addr()
	for i := 0; i <= n; i++ {
		addr = addr.Next()
	}
	h := newHostNamed(l.t, "l", n)
	h.GatewayIP, h.HostIP = l.GatewayIP, addr.String()
	h.setUp(l.prefix.Bits(),
		[]string{"ip", "link", "set", h.vethOut, "master", l.Bridge},
		[]string{"ip", "link", "set", h.vethOut, "up"})
	return h
}
