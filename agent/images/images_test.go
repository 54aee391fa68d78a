package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// archive is an OCI layout read back from a written archive.
type archive struct {
	files  map[string][]byte
	order  []string
	index  map[string]any
	config map[string]any
	layer  []*tar.Header // in archive order
	data   map[string][]byte
}

func readArchive(t *testing.T, b []byte) archive {
	t.Helper()
	a := archive{files: map[string][]byte{}, data: map[string][]byte{}}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		a.files[h.Name] = body
		a.order = append(a.order, h.Name)
		if strings.HasPrefix(h.Name, "blobs/sha256/") && h.Typeflag == tar.TypeReg {
			sum := sha256.Sum256(body)
			if got := hex.EncodeToString(sum[:]); got != strings.TrimPrefix(h.Name, "blobs/sha256/") {
				t.Errorf("blob %s has digest %s", h.Name, got)
			}
		}
	}
	blob := func(d any) []byte {
		return a.files["blobs/sha256/"+strings.TrimPrefix(d.(string), "sha256:")]
	}
	if err := json.Unmarshal(a.files["index.json"], &a.index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	m0 := a.index["manifests"].([]any)[0].(map[string]any)
	var manifest map[string]any
	if err := json.Unmarshal(blob(m0["digest"]), &manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if err := json.Unmarshal(blob(manifest["config"].(map[string]any)["digest"]), &a.config); err != nil {
		t.Fatalf("config: %v", err)
	}
	layerBlob := blob(manifest["layers"].([]any)[0].(map[string]any)["digest"])
	lr := tar.NewReader(bytes.NewReader(layerBlob))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		a.layer = append(a.layer, h)
		body, _ := io.ReadAll(lr)
		a.data[h.Name] = body
	}
	return a
}

func (a archive) entry(name string) *tar.Header {
	for _, h := range a.layer {
		if h.Name == name {
			return h
		}
	}
	return nil
}

func requireBusybox(t *testing.T) {
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skipf("no %s (Debian busybox-static): %v", busyboxPath, err)
	}
}

func TestBusyboxImage(t *testing.T) {
	requireBusybox(t)
	var one, two bytes.Buffer
	if err := WriteBusybox(&one); err != nil {
		t.Fatal(err)
	}
	if err := WriteBusybox(&two); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Error("two builds of the busybox image differ")
	}
	a := readArchive(t, one.Bytes())
	m0 := a.index["manifests"].([]any)[0].(map[string]any)
	ann := m0["annotations"].(map[string]any)
	if ann[annotationName] != BusyboxImage || ann[annotationRefName] != "latest" {
		t.Errorf("annotations = %v", ann)
	}
	cfg := a.config["config"].(map[string]any)
	if cmd, _ := json.Marshal(cfg["Cmd"]); string(cmd) != `["sh"]` {
		t.Errorf("Cmd = %s", cmd)
	}
	if env, _ := json.Marshal(cfg["Env"]); !strings.Contains(string(env), "PATH=") {
		t.Errorf("Env = %s", env)
	}
	if h := a.entry("bin/sh"); h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
		t.Errorf("bin/sh = %+v", h)
	}
	if h := a.entry("bin/busybox"); h == nil || h.Mode != 0o755 || h.Size == 0 {
		t.Errorf("bin/busybox = %+v", h)
	}
	if h := a.entry("tmp/"); h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp = %+v", h)
	}
	for _, f := range []string{"etc/passwd", "etc/group"} {
		if !strings.Contains(string(a.data[f]), "root:x:0:") {
			t.Errorf("%s = %q", f, a.data[f])
		}
	}
	// Every directory comes before what it contains, and order is stable.
	seen := map[string]bool{}
	for _, h := range a.layer {
		if d := filepath.Dir(strings.TrimSuffix(h.Name, "/")); d != "." && !seen[d+"/"] {
			t.Errorf("%s comes before its directory %s/", h.Name, d)
		}
		seen[h.Name] = true
		if !h.ModTime.Equal(epoch) || h.Uid != 0 {
			t.Errorf("%s: mtime %v uid %d", h.Name, h.ModTime, h.Uid)
		}
	}
	if want := []string{"blobs/", "blobs/sha256/"}; a.order[0] != want[0] || a.order[1] != want[1] || a.order[len(a.order)-1] != "oci-layout" {
		t.Errorf("archive order = %v", a.order)
	}
}

func TestDemoImage(t *testing.T) {
	requireBusybox(t)
	// Any static executable stands in for the compiled skiff-demo here.
	var buf bytes.Buffer
	if err := WriteDemo(&buf, busyboxPath); err != nil {
		t.Fatal(err)
	}
	a := readArchive(t, buf.Bytes())
	var names []string
	for _, m := range a.index["manifests"].([]any) {
		names = append(names, m.(map[string]any)["annotations"].(map[string]any)[annotationName].(string))
	}
	if strings.Join(names, ",") != DemoImage+","+DemoImageLatest {
		t.Errorf("names = %v", names)
	}
	cfg := a.config["config"].(map[string]any)
	if ep, _ := json.Marshal(cfg["Entrypoint"]); string(ep) != `["/usr/local/bin/skiff-demo"]` {
		t.Errorf("Entrypoint = %s", ep)
	}
	if _, ok := cfg["ExposedPorts"].(map[string]any)["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v", cfg["ExposedPorts"])
	}
	if h := a.entry("usr/local/bin/skiff-demo"); h == nil || h.Mode != 0o755 {
		t.Errorf("binary entry = %+v", h)
	}
	if _, err := os.Stat(nginxPath); err == nil {
		if err := WriteDemo(io.Discard, nginxPath); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
			t.Errorf("WriteDemo of a dynamic binary: %v, want a dynamically linked error", err)
		}
	}
	if err := WriteDemo(io.Discard, "/nonexistent/skiff-demo"); err == nil {
		t.Error("WriteDemo of a missing binary succeeded")
	}
}

func TestPauseImage(t *testing.T) {
	var buf bytes.Buffer
	err := WritePause(&buf)
	if _, aerr := pauseELF(); aerr != nil {
		if err == nil {
			t.Fatal("WritePause succeeded where the pause program cannot be built")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	a := readArchive(t, buf.Bytes())
	if h := a.entry("pause"); h == nil || h.Mode != 0o755 {
		t.Fatalf("pause entry = %+v", h)
	}
	bin, _ := pauseELF()
	if !bytes.Equal(a.data["pause"], bin) {
		t.Error("layer's /pause is not the pause program")
	}
	if u := a.config["config"].(map[string]any)["User"]; u != "65535:65535" {
		t.Errorf("User = %v", u)
	}
}

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                      "docker.io/library/busybox:latest",
		"busybox:1.36":                 "docker.io/library/busybox:1.36",
		"me/app":                       "docker.io/me/app:latest",
		"docker.io/nginx":              "docker.io/library/nginx:latest",
		"docker.io/library/nginx:1":    "docker.io/library/nginx:1",
		"skiff.local/demo:1":           "skiff.local/demo:1",
		"localhost/x":                  "localhost/x:latest",
		"registry:5000/team/app":       "registry:5000/team/app:latest",
		"registry:5000/team/app:2":     "registry:5000/team/app:2",
		"busybox@sha256:abc":           "docker.io/library/busybox@sha256:abc",
		"quay.io/org/img:v1@sha256:ab": "quay.io/org/img:v1@sha256:ab",
	} {
		if got := NormalizeRef(in); got != want {
			t.Errorf("NormalizeRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArchiveNames(t *testing.T) {
	dir := t.TempDir()
	// An OCI layout from our writer.
	oci := filepath.Join(dir, "oci.tar")
	f, _ := os.Create(oci)
	if err := WritePause(f); err != nil {
		f.Close()
		if _, aerr := pauseELF(); aerr != nil {
			t.Skip(aerr)
		}
		t.Fatal(err)
	}
	f.Close()
	if got, err := ArchiveNames(oci); err != nil || strings.Join(got, ",") != PauseImage {
		t.Errorf("ArchiveNames(oci) = %v, %v", got, err)
	}
	// A docker-save archive.
	docker := filepath.Join(dir, "docker.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	man := []byte(`[{"Config":"c.json","RepoTags":["web:2","busybox"],"Layers":["l.tar"]}]`)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(man))})
	tw.Write(man)
	tw.Close()
	os.WriteFile(docker, buf.Bytes(), 0o644)
	if got, err := ArchiveNames(docker); err != nil || strings.Join(got, ",") != "docker.io/library/busybox:latest,docker.io/library/web:2" {
		t.Errorf("ArchiveNames(docker) = %v, %v", got, err)
	}
	// Not an image archive.
	other := filepath.Join(dir, "other.tar")
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644})
	tw.Close()
	os.WriteFile(other, buf.Bytes(), 0o644)
	if _, err := ArchiveNames(other); err == nil {
		t.Error("ArchiveNames of a plain tar: want an error")
	}
}

// TestNginxServes unpacks the nginx image and runs its nginx chrooted in
// private mount and network namespaces, then fetches the welcome page
// with the image's own busybox wget.
func TestNginxServes(t *testing.T) {
	requireBusybox(t)
	if _, err := os.Stat(nginxPath); err != nil {
		t.Skipf("no %s (Debian nginx-light): %v", nginxPath, err)
	}
	if os.Getuid() != 0 {
		t.Skip("needs root for chroot and namespaces")
	}
	var buf bytes.Buffer
	if err := WriteNginx(&buf); err != nil {
		t.Fatal(err)
	}
	a := readArchive(t, buf.Bytes())
	cfg := a.config["config"].(map[string]any)
	if cmd, _ := json.Marshal(cfg["Cmd"]); string(cmd) != `["nginx","-g","daemon off;"]` {
		t.Errorf("Cmd = %s", cmd)
	}
	if _, ok := cfg["ExposedPorts"].(map[string]any)["80/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v", cfg["ExposedPorts"])
	}
	root := t.TempDir()
	if err := unpack(a, root); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"proc", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := `set -e
R="$1"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
chroot "$R" /bin/ip link set lo up
chroot "$R" /bin/sh -c 'PATH=/usr/sbin:/bin exec nginx -g "daemon off;"' &
for i in $(seq 1 100); do
  if chroot "$R" /bin/wget -q -O - http://127.0.0.1/ 2>/dev/null; then ok=1; break; fi
  sleep 0.05
done
kill -QUIT $! ; wait $! || true
[ -n "$ok" ]
`
	cmd := exec.Command("unshare", "--mount", "--net", "--pid", "--fork", "sh", "-c", script, "sh", root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nginx in the image did not serve: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Skiff's local stand-in for the nginx image") {
		t.Errorf("page does not look like ours:\n%s", out)
	}
	if !strings.Contains(string(out), `"GET / HTTP/1.1" 200`) {
		t.Errorf("no access log line on stdout:\n%s", out)
	}
}

// unpack extracts an archive's layer into dir.
func unpack(a archive, dir string) error {
	for _, h := range a.layer {
		p := filepath.Join(dir, h.Name)
		var err error
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode)&os.ModePerm)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			err = os.WriteFile(p, a.data[h.Name], os.FileMode(h.Mode)&os.ModePerm)
		default:
			err = errors.New("unexpected entry type in " + h.Name)
		}
		if err != nil {
			return err
		}
		if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
			return err
		}
	}
	return nil
}

func TestBuiltin(t *testing.T) {
	for ref, want := range map[string]bool{
		"busybox": true, "docker.io/library/busybox:latest": true, "nginx:latest": true,
		"skiff.local/demo:1": true, "skiff.local/demo": true, PauseImage: true,
		"busybox:1.36": false, "example.com/busybox": false, "skiff.local/other:1": false,
	} {
		if got := Builtin(ref); got != want {
			t.Errorf("Builtin(%q) = %v, want %v", ref, got, want)
		}
	}
}
