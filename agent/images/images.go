// Package images builds the container images a Skiff node needs without
// any registry: the pause sandbox image (a hand-assembled program),
// stand-ins for busybox and nginx made from the host's Debian binaries,
// and the skiff-demo web app. Each is written as a deterministic OCI
// image-layout archive and imported into containerd's CRI namespace
// with ctr, as are archives users bring themselves (air-gapped nodes).
package images

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
)

// References of the images Skiff builds.
const (
	BusyboxImage    = "docker.io/library/busybox:latest"
	NginxImage      = "docker.io/library/nginx:latest"
	DemoImage       = "skiff.local/demo:1"
	DemoImageLatest = "skiff.local/demo:latest"
)

// Builtin reports whether ref names one of the images EnsureBuiltins
// makes, whichever way it is spelt ("busybox", "docker.io/library/busybox").
func Builtin(ref string) bool {
	switch NormalizeRef(ref) {
	case PauseImage, BusyboxImage, NginxImage, DemoImage, DemoImageLatest:
		return true
	}
	return false
}

// Host files the stand-in images are made from (Debian's busybox-static
// and nginx-light packages).
var (
	busyboxPath   = "/usr/bin/busybox"
	nginxPath     = "/usr/sbin/nginx"
	mimeTypesPath = "/etc/nginx/mime.types"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// built says what a writer produced: the image ID (config digest) and the
// host files it read, whose change invalidates a cached archive.
type built struct {
	id      string
	sources []string
}

// WriteBusybox writes docker.io/library/busybox:latest, made from the
// host's static busybox, as an OCI archive.
func WriteBusybox(w io.Writer) error {
	_, err := writeBusybox(w)
	return err
}

func writeBusybox(w io.Writer) (built, error) {
	l := newLayer()
	if err := addBusybox(l); err != nil {
		return built{}, err
	}
	l.file("/etc/passwd", 0o644, []byte(
		"root:x:0:0:root:/root:/bin/sh\n"+
			"nobody:x:65534:65534:nobody:/home:/bin/false\n"))
	l.file("/etc/group", 0o644, []byte(
		"root:x:0:\n"+
			"nobody:x:65534:\n"+
			"nogroup:x:65534:\n"))
	addBaseDirs(l)
	id, err := writeImage(w, image{
		names:  []string{BusyboxImage},
		arch:   goruntime.GOARCH,
		layer:  l,
		config: imageConfig{Env: []string{"PATH=" + defaultPath}, Cmd: []string{"sh"}},
		note:   "skiff: busybox stand-in from " + busyboxPath,
	})
	return built{id: id, sources: []string{busyboxPath}}, err
}

// addBusybox adds /bin/busybox and a symlink in /bin for every applet.
func addBusybox(l *layer) error {
	if _, err := os.Stat(busyboxPath); err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	l.hostFile("/bin/busybox", 0o755, busyboxPath)
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" || name == "busybox" || strings.Contains(name, "/") {
			continue
		}
		l.symlink("/bin/"+name, "busybox")
		n++
	}
	if n == 0 {
		return errors.New("busybox --list printed no applets")
	}
	// Scripts often start with #!/usr/bin/env.
	l.symlink("/usr/bin/env", "/bin/busybox")
	return nil
}

// addBaseDirs adds the directories every image has.
func addBaseDirs(l *layer) {
	l.dir("/tmp", 0o1777)
	l.dir("/root", 0o700)
	l.dir("/var", 0o755)
	l.dir("/etc", 0o755)
	l.dir("/home", 0o755)
}

// WriteNginx writes docker.io/library/nginx:latest, made from the host's
// nginx and the shared libraries it links, plus busybox as its shell.
func WriteNginx(w io.Writer) error {
	_, err := writeNginx(w)
	return err
}

func writeNginx(w io.Writer) (built, error) {
	for _, p := range []string{nginxPath, mimeTypesPath} {
		if _, err := os.Stat(p); err != nil {
			return built{}, fmt.Errorf("nginx: %w", err)
		}
	}
	l := newLayer()
	if err := addBusybox(l); err != nil {
		return built{}, err
	}
	sources := []string{nginxPath, mimeTypesPath, busyboxPath}
	libs, err := sharedLibraries(nginxPath)
	if err != nil {
		return built{}, err
	}
	for _, lib := range libs {
		l.hostFile(lib.inImage, 0o755, lib.host)
		sources = append(sources, lib.host)
	}
	l.hostFile("/usr/sbin/nginx", 0o755, nginxPath)
	l.hostFile("/etc/nginx/mime.types", 0o644, mimeTypesPath)
	l.file("/etc/nginx/nginx.conf", 0o644, []byte(nginxConf))
	l.file("/usr/share/nginx/html/index.html", 0o644, []byte(nginxIndex))
	l.file("/etc/passwd", 0o644, []byte(
		"root:x:0:0:root:/root:/bin/sh\n"+
			"www-data:x:33:33:www-data:/var/www:/bin/false\n"+
			"nginx:x:101:101:nginx:/nonexistent:/bin/false\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	l.file("/etc/group", 0o644, []byte(
		"root:x:0:\n"+
			"www-data:x:33:\n"+
			"nginx:x:101:\n"+
			"nogroup:x:65534:\n"))
	l.file("/etc/nsswitch.conf", 0o644, []byte("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"))
	addBaseDirs(l)
	for _, d := range []string{"body", "fastcgi", "proxy", "scgi", "uwsgi"} {
		l.dir("/var/lib/nginx/"+d, 0o700)
		l.chown("/var/lib/nginx/"+d, 101, 101)
	}
	l.dir("/var/log/nginx", 0o755)
	l.dir("/var/cache/nginx", 0o755)
	l.dir("/run", 0o755)
	id, err := writeImage(w, image{
		names: []string{NginxImage},
		arch:  goruntime.GOARCH,
		layer: l,
		config: imageConfig{
			Env:          []string{"PATH=" + defaultPath},
			Cmd:          []string{"nginx", "-g", "daemon off;"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
			StopSignal:   "SIGQUIT",
		},
		note: "skiff: nginx stand-in from " + nginxPath,
	})
	return built{id: id, sources: sources}, err
}

// nginxConf is the stand-in's configuration: one static site on port 80,
// logs to the container's stdout and stderr.
const nginxConf = `# Skiff's nginx stand-in: one static site, logs to the container output.
user nginx;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr notice;

events {
    worker_connections 512;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;

    server {
        listen 80;
        server_name _;
        root /usr/share/nginx/html;
        index index.html;
        location / {
            try_files $uri $uri/ =404;
        }
    }
}
`

const nginxIndex = `<!DOCTYPE html>
<html>
<head><title>nginx on Skiff</title></head>
<body>
<h1>nginx on Skiff</h1>
<p>This page comes from Skiff's local stand-in for the nginx image: the
node's own nginx binary packed into an image, because Skiff nodes never
pull from the internet. It serves static files from
/usr/share/nginx/html on port 80.</p>
</body>
</html>
`

// sharedLib is one file of a dynamic executable's closure.
type sharedLib struct {
	inImage string // path the loader looks for
	host    string // real file on the host
}

// sharedLibraries returns the shared libraries ldd reports for bin, and
// its program interpreter, with the symlinks on the host resolved.
func sharedLibraries(bin string) ([]sharedLib, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", bin, err)
	}
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("read interpreter of %s: %w", bin, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	f.Close()
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	paths := map[string]bool{}
	if interp != "" {
		paths[interp] = true
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		// "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"
		switch {
		case len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "/"):
			paths[fields[2]] = true
		case len(fields) >= 1 && strings.HasPrefix(fields[0], "/"):
			paths[fields[0]] = true
		case len(fields) >= 3 && fields[1] == "=>" && fields[2] == "not":
			return nil, fmt.Errorf("ldd %s: %s is not found", bin, fields[0])
		}
	}
	var libs []sharedLib
	for p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", p, err)
		}
		libs = append(libs, sharedLib{inImage: p, host: real})
	}
	sort.Slice(libs, func(i, j int) bool { return libs[i].inImage < libs[j].inImage })
	return libs, nil
}

// WriteDemo writes skiff.local/demo:1 (and :latest) from the compiled
// skiff-demo binary at binaryPath, which must be statically linked.
func WriteDemo(w io.Writer, binaryPath string) error {
	_, err := writeDemo(w, binaryPath)
	return err
}

func writeDemo(w io.Writer, binaryPath string) (built, error) {
	f, err := elf.Open(binaryPath)
	if err != nil {
		return built{}, fmt.Errorf("demo binary: %w", err)
	}
	arch, dynamic := "", false
	switch f.Machine {
	case elf.EM_X86_64:
		arch = "amd64"
	case elf.EM_AARCH64:
		arch = "arm64"
	default:
		arch = goruntime.GOARCH
	}
	for _, p := range f.Progs {
		dynamic = dynamic || p.Type == elf.PT_INTERP
	}
	f.Close()
	if dynamic {
		return built{}, fmt.Errorf("demo binary %s is dynamically linked; build it with CGO_ENABLED=0", binaryPath)
	}
	l := newLayer()
	l.hostFile("/usr/local/bin/skiff-demo", 0o755, binaryPath)
	l.file("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n"))
	l.file("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	addBaseDirs(l)
	id, err := writeImage(w, image{
		names: []string{DemoImage, DemoImageLatest},
		arch:  arch,
		layer: l,
		config: imageConfig{
			Env:          []string{"PATH=" + defaultPath, "PORT=8080"},
			Entrypoint:   []string{"/usr/local/bin/skiff-demo"},
			ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		},
		note: "skiff: demo web app",
	})
	return built{id: id, sources: []string{binaryPath}}, err
}
