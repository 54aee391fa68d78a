package runtime

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSocketFor(t *testing.T) {
	long := "/var/lib/skiff-with-a-rather-long-directory-name/agents/node-number-one/agent/containerd"
	for _, tc := range []struct {
		dir, want string
	}{
		{"/var/lib/skiff/agent/containerd", "/var/lib/skiff/agent/containerd/containerd.sock"},
		{"/var/lib/skiff/agent/containerd/", "/var/lib/skiff/agent/containerd/containerd.sock"},
		{long, "/run/skiff/"},
	} {
		got := SocketFor(tc.dir)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("SocketFor(%q) = %q, want prefix %q", tc.dir, got, tc.want)
		}
		if len(got)+len(".ttrpc") > 107 {
			t.Errorf("SocketFor(%q) = %q is too long for a unix socket", tc.dir, got)
		}
	}
	if SocketFor(long) == SocketFor(long+"2") {
		t.Error("two long dirs share a socket")
	}
	if SocketFor(long) != SocketFor(long) {
		t.Error("SocketFor is not stable")
	}
}

func TestRenderConfigKeepsEverythingUnderDir(t *testing.T) {
	dir := "/srv/agent-a/containerd"
	cfg := Config{Dir: dir, SandboxImage: "skiff.local/pause:1", CNIBinDir: "/usr/lib/cni", CNIConfDir: "/srv/agent-a/cni/net.d"}
	out := renderConfig(cfg, pathsFor(dir), false)
	for _, want := range []string{
		`version = 2`,
		`root = "/srv/agent-a/containerd/root"`,
		`state = "/srv/agent-a/containerd/state"`,
		`address = "/srv/agent-a/containerd/containerd.sock"`,
		`address = "/srv/agent-a/containerd/containerd.sock.ttrpc"`,
		`path = "/srv/agent-a/containerd/opt"`,
		`Root = "/srv/agent-a/containerd/state/runc"`,
		`sandbox_image = "skiff.local/pause:1"`,
		`SystemdCgroup = false`,
		`disable_apparmor = true`,
		`netns_mounts_under_state_dir = true`,
		`snapshotter = "overlayfs"`,
		`conf_dir = "/srv/agent-a/cni/net.d"`,
		`bin_dir = "/usr/lib/cni"`,
		`stream_server_port = "0"`,
		`"io.containerd.snapshotter.v1.btrfs"`,
		`restrict_oom_score_adj = false`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config lacks %s", want)
		}
	}
	for _, bad := range []string{"/run/containerd", "/var/lib/containerd", "/opt/containerd"} {
		if strings.Contains(out, bad) {
			t.Errorf("config mentions %s", bad)
		}
	}
	if p := pathsFor(dir); filepath.Dir(p.pidFile) != dir || filepath.Dir(p.logFile) != dir {
		t.Errorf("pid/log files outside Dir: %+v", p)
	}
}

func TestHasCapability(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   bool
	}{
		{"Name:\tx\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n", true},
		{"CapEff:\t000001fffeffffff\n", false}, // bit 24 dropped
		{"CapEff:\t0000000001000000\n", true},
		{"CapEff:\tzz\n", false},
		{"Name:\tx\n", false},
	} {
		if got := hasCapability(tc.status, capSysResource); got != tc.want {
			t.Errorf("hasCapability(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}
