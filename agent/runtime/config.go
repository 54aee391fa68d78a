package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// maxSocketPath is the longest socket path Skiff puts inside Dir. A unix
// socket path must fit in sun_path (108 bytes with its NUL), and containerd
// also listens on the same path with ".ttrpc" appended.
const maxSocketPath = 100

// SocketFor returns the gRPC socket path of the containerd that a runtime
// with Config.Dir == dir uses: dir/containerd.sock when that is short
// enough for a unix socket, otherwise /run/skiff/<hash of dir>/containerd.sock.
func SocketFor(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	p := filepath.Join(dir, "containerd.sock")
	if len(p)+len(".ttrpc") <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join("/run/skiff", hex.EncodeToString(sum[:8]), "containerd.sock")
}

// disabledPlugins are containerd 1.6 plugins the agent never uses. Turning
// them off saves start time and memory. (The v1 runtime cannot go: the
// tasks service of 1.6 requires it; its state stays under Dir.)
var disabledPlugins = []string{
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.snapshotter.v1.native",
	"io.containerd.internal.v1.restart",
	"io.containerd.internal.v1.tracing",
	"io.containerd.tracing.processor.v1.otlp",
}

// paths are the locations derived from Config.Dir.
type paths struct {
	dir, config, root, state, opt, runcRoot, socket, pidFile, logFile string
}

func pathsFor(dir string) paths {
	return paths{
		dir:      dir,
		config:   filepath.Join(dir, "config.toml"),
		root:     filepath.Join(dir, "root"),
		state:    filepath.Join(dir, "state"),
		opt:      filepath.Join(dir, "opt"),
		runcRoot: filepath.Join(dir, "state", "runc"),
		socket:   SocketFor(dir),
		pidFile:  filepath.Join(dir, "containerd.pid"),
		logFile:  filepath.Join(dir, "containerd.log"),
	}
}

// q quotes s as a TOML basic string (JSON string syntax is a subset).
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// renderConfig returns containerd's config.toml (config version 2) for cfg.
// Every path containerd 1.6 would otherwise put under /var/lib/containerd,
// /run/containerd or /opt/containerd is moved under cfg.Dir, so two agents
// with different Dirs share nothing but the shim socket directory
// /run/containerd/s, which containerd 1.6 hard-codes (the socket names are
// hashes of the daemon's own socket path, so they never collide).
//
// restrictOOM makes containerd clamp oom_score_adj values below its own
// (needed when the agent lacks CAP_SYS_RESOURCE, as in some sandboxes:
// runc would fail to give the pause container its usual -998).
func renderConfig(cfg Config, p paths, restrictOOM bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	quoted := make([]string, len(disabledPlugins))
	for i, d := range disabledPlugins {
		quoted[i] = q(d)
	}
	w("# Written by the Skiff agent at every start; edits are overwritten.")
	w("version = 2")
	w("root = %s", q(p.root))
	w("state = %s", q(p.state))
	w("oom_score = 0")
	w("disabled_plugins = [%s]", strings.Join(quoted, ", "))
	w("required_plugins = [%s]", q("io.containerd.grpc.v1.cri"))
	w("")
	w("[grpc]")
	w("  address = %s", q(p.socket))
	w("  uid = 0")
	w("  gid = 0")
	w("")
	w("[ttrpc]")
	w("  address = %s", q(p.socket+".ttrpc"))
	w("")
	w("[debug]")
	w("  # No debug socket: it would be one more shared, long-lived path.")
	w("  address = \"\"")
	w("  level = \"info\"")
	w("")
	w("[metrics]")
	w("  address = \"\"")
	w("")
	w("[plugins]")
	w("  [plugins.\"io.containerd.internal.v1.opt\"]")
	w("    path = %s", q(p.opt))
	w("  [plugins.\"io.containerd.grpc.v1.cri\"]")
	w("    sandbox_image = %s", q(cfg.SandboxImage))
	w("    stream_server_address = \"127.0.0.1\"")
	w("    stream_server_port = \"0\"")
	w("    disable_tcp_service = true")
	w("    disable_apparmor = true")
	w("    enable_selinux = false")
	w("    disable_cgroup = false")
	w("    enable_unprivileged_ports = false")
	w("    enable_unprivileged_icmp = false")
	w("    netns_mounts_under_state_dir = true")
	w("    restrict_oom_score_adj = %t", restrictOOM)
	w("    max_container_log_line_size = 16384")
	w("    [plugins.\"io.containerd.grpc.v1.cri\".containerd]")
	w("      snapshotter = \"overlayfs\"")
	w("      default_runtime_name = \"runc\"")
	w("      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]")
	w("        runtime_type = \"io.containerd.runc.v2\"")
	w("        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]")
	w("          SystemdCgroup = false")
	w("          Root = %s", q(p.runcRoot))
	w("    [plugins.\"io.containerd.grpc.v1.cri\".cni]")
	w("      bin_dir = %s", q(cfg.CNIBinDir))
	w("      conf_dir = %s", q(cfg.CNIConfDir))
	w("      max_conf_num = 1")
	w("    [plugins.\"io.containerd.grpc.v1.cri\".registry]")
	w("      config_path = \"\"")
	return b.String()
}

// capSysResource is CAP_SYS_RESOURCE's bit in the capability sets.
const capSysResource = 24

// hasCapability reports whether the effective capability set in a
// /proc/<pid>/status text has capability bit c.
func hasCapability(status string, c uint) bool {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && bits&(1<<c) != 0
		}
	}
	return false
}
