package node

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/agent/images"
)

// TestImages checks image pull policies, pull failures and pulling from a
// real registry (Debian's docker-registry on loopback, plain HTTP), with
// and without credentials from imagePullSecrets.
func TestImages(t *testing.T) {
	c := startCluster(t)
	open := startRegistry(t, "", "")
	private := startRegistry(t, "puller", "pa55word")
	image := buildBusyboxArchive(t)
	openDigest := open.push(t, image, "test/busybox", "v1")
	private.push(t, image, "private/busybox", "v1")

	t.Run("group", func(t *testing.T) {
		t.Run("NeverPullMissing", func(t *testing.T) { t.Parallel(); testNeverPull(t, c) })
		t.Run("MissingImageBacksOff", func(t *testing.T) { t.Parallel(); testMissingImage(t, c, open) })
		t.Run("PullFromRegistry", func(t *testing.T) { t.Parallel(); testRegistryPull(t, c, open, openDigest) })
		t.Run("PullSecrets", func(t *testing.T) { t.Parallel(); testPullSecrets(t, c, private) })
	})
}

func testNeverPull(t *testing.T, c *cluster) {
	ns := c.namespace(t, "neverpull")
	pod := busyboxPod(ns, "never", "sleep", "3600")
	pod.Spec.Containers[0].Image = "skiff.local/absent:1"
	pod.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	c.createPod(t, pod)
	p := c.waitPod(t, ns, "never", 30*time.Second, "in ErrImageNeverPull", func(p *corev1.Pod) bool { return waitingReason(p, "ErrImageNeverPull") })
	want := `Container image "skiff.local/absent:1" is not present with pull policy of Never`
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; msg != want {
		t.Errorf("ErrImageNeverPull message %q, want %q", msg, want)
	}
	c.waitEvent(t, ns, "never", "ErrImageNeverPull: "+want, 10*time.Second)
	if ev := c.events(ns, "never"); strings.Contains(ev, "Pulling:") {
		t.Errorf("pull policy Never pulled:\n%s", ev)
	}
	// A present image with policy Never runs.
	ok := busyboxPod(ns, "present", "sleep", "3600")
	ok.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
	c.createPod(t, ok)
	c.waitPod(t, ns, "present", 30*time.Second, "ready", ready)
}

func testMissingImage(t *testing.T, c *cluster, reg *registry) {
	ns := c.namespace(t, "missingimage")
	image := reg.addr + "/test/no-such-image:v1"
	pod := busyboxPod(ns, "ghost", "sleep", "3600")
	pod.Spec.Containers[0].Image = image
	w := c.watchWaiting(t, ns, "ghost")
	c.createPod(t, pod)
	if msg := w.wait(t, "ErrImagePull", 30*time.Second); !strings.HasPrefix(msg, fmt.Sprintf("Failed to pull image %q: ", image)) || !strings.Contains(msg, "not found") {
		t.Errorf("ErrImagePull message %q", msg)
	}
	if msg := w.wait(t, "ImagePullBackOff", 30*time.Second); msg != fmt.Sprintf("Back-off pulling image %q", image) {
		t.Errorf("ImagePullBackOff message %q", msg)
	}
	p := c.waitPod(t, ns, "ghost", 5*time.Second, "reported", func(*corev1.Pod) bool { return true })
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("pod without its image: %s", statusString(p))
	}
	ev := c.events(ns, "ghost")
	for _, want := range []string{
		fmt.Sprintf("Pulling: Pulling image %q", image),
		fmt.Sprintf("Failed: Failed to pull image %q", image),
		"Failed: Error: ErrImagePull",
		fmt.Sprintf("BackOff: Back-off pulling image %q", image),
	} {
		if !strings.Contains(ev, want) {
			t.Errorf("no event %q:\n%s", want, ev)
		}
	}
}

func testRegistryPull(t *testing.T, c *cluster, reg *registry, digest string) {
	ns := c.namespace(t, "registrypull")
	image := reg.addr + "/test/busybox:v1"
	pod := busyboxPod(ns, "pulled", "sh", "-c", "echo pulled ok; exec sleep 3600")
	pod.Spec.Containers[0].Image = image
	c.createPod(t, pod)
	p := c.waitPod(t, ns, "pulled", 60*time.Second, "ready", ready)
	cs := p.Status.ContainerStatuses[0]
	if cs.Image != image || !strings.HasSuffix(cs.ImageID, digest) {
		t.Errorf("image %q imageID %q, want %q and the pushed manifest %s", cs.Image, cs.ImageID, image, digest)
	}
	ev := c.events(ns, "pulled")
	if !strings.Contains(ev, fmt.Sprintf("Pulling: Pulling image %q", image)) || !strings.Contains(ev, fmt.Sprintf("Pulled: Successfully pulled image %q in ", image)) {
		t.Errorf("pull events:\n%s", ev)
	}
	if out := c.kubectl(t, "logs", "-n", ns, "pulled"); out != "pulled ok\n" {
		t.Errorf("logs of the pulled image's container: %q", out)
	}
	// A second pod of the same tag finds it present (IfNotPresent is the
	// default for a tag other than latest).
	again := busyboxPod(ns, "again", "sleep", "3600")
	again.Spec.Containers[0].Image = image
	c.createPod(t, again)
	c.waitPod(t, ns, "again", 30*time.Second, "ready", ready)
	if ev := c.events(ns, "again"); !strings.Contains(ev, fmt.Sprintf("Pulled: Container image %q already present on machine", image)) {
		t.Errorf("second pod's events:\n%s", ev)
	}
}

func testPullSecrets(t *testing.T, c *cluster, reg *registry) {
	ns := c.namespace(t, "pullsecrets")
	image := reg.addr + "/private/busybox:v1"
	anon := busyboxPod(ns, "anonymous", "sleep", "3600")
	anon.Spec.Containers[0].Image = image
	anon.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	w := c.watchWaiting(t, ns, "anonymous")
	c.createPod(t, anon)
	msg := w.wait(t, "ErrImagePull", 30*time.Second)
	if !strings.Contains(msg, "401") && !strings.Contains(strings.ToLower(msg), "unauthorized") && !strings.Contains(strings.ToLower(msg), "authoriz") {
		t.Errorf("pull without credentials should fail for want of authorization: %q", msg)
	}

	auth := base64.StdEncoding.EncodeToString([]byte(reg.user + ":" + reg.password))
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{reg.addr: map[string]string{"username": reg.user, "password": reg.password, "auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfg},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A secret for another registry does not help; the matching one does.
	other, _ := json.Marshal(map[string]any{"auths": map[string]any{"registry.example:5000": map[string]string{"auth": auth}}})
	if _, err := c.client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: other},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	authed := busyboxPod(ns, "authed", "sh", "-c", "echo private ok; exec sleep 3600")
	authed.Spec.Containers[0].Image = image
	authed.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	authed.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "elsewhere"}, {Name: "regcred"}}
	c.createPod(t, authed)
	c.waitPod(t, ns, "authed", 60*time.Second, "ready", ready)
	if out := c.kubectl(t, "logs", "-n", ns, "authed"); out != "private ok\n" {
		t.Errorf("logs: %q", out)
	}
	// The image is now on the node, but policy Always still pulls, and
	// without credentials that keeps failing.
	p := c.waitPod(t, ns, "anonymous", 30*time.Second, "still failing to pull", func(p *corev1.Pod) bool {
		return waitingReason(p, "ErrImagePull") || waitingReason(p, "ImagePullBackOff")
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("anonymous pod: %s", statusString(p))
	}
}

// waitingWatch records the waiting states a pod's first container goes
// through, from a watch started before the pod exists: a state that lasts
// only a moment is seen too.
type waitingWatch struct {
	mu   sync.Mutex
	seen []corev1.ContainerStateWaiting
	ns   string
	name string
	c    *cluster
}

func (c *cluster) watchWaiting(t *testing.T, ns, name string) *waitingWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wi, err := c.client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		t.Fatalf("watching pod %s/%s: %v", ns, name, err)
	}
	w := &waitingWatch{ns: ns, name: name, c: c}
	go func() {
		defer wi.Stop()
		for ev := range wi.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || len(p.Status.ContainerStatuses) == 0 {
				continue
			}
			if st := p.Status.ContainerStatuses[0].State.Waiting; st != nil {
				w.mu.Lock()
				w.seen = append(w.seen, *st)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// wait returns the message of the first waiting state with reason.
func (w *waitingWatch) wait(t *testing.T, reason string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		var reasons []string
		for _, st := range w.seen {
			if st.Reason == reason {
				w.mu.Unlock()
				return st.Message
			}
			reasons = append(reasons, st.Reason)
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s never waited with %s in %s (saw %v)\nevents:\n%s", w.ns, w.name, reason, timeout, reasons, w.c.events(w.ns, w.name))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// registry is a docker-registry process serving on loopback over HTTP.
type registry struct {
	addr           string // host:port
	user, password string
}

// startRegistry runs /usr/bin/docker-registry on a free loopback port with
// its storage in a temp dir, with htpasswd auth when user is set. It is
// stopped when the test ends.
func startRegistry(t *testing.T, user, password string) *registry {
	t.Helper()
	dir := t.TempDir()
	reg := &registry{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), user: user, password: password}
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), reg.addr)
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: skiff-test\n    path: %s\n", htpasswd)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/docker-registry", "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + reg.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return reg
			}
		}
		select {
		case <-done:
			t.Fatalf("docker-registry exited:\n%s", readFile(t, logPath))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry not serving on %s after 15s: %v\n%s", reg.addr, err, readFile(t, logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ociArchive is an OCI image layout archive read into memory.
type ociArchive struct {
	files map[string][]byte
}

// buildBusyboxArchive builds the agent's busybox image as an OCI archive.
func buildBusyboxArchive(t *testing.T) *ociArchive {
	t.Helper()
	var buf bytes.Buffer
	if err := images.WriteBusybox(&buf); err != nil {
		t.Fatalf("building busybox: %v", err)
	}
	a := &ociArchive{files: map[string][]byte{}}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		a.files[h.Name] = data
	}
	return a
}

func (a *ociArchive) blob(t *testing.T, digest string) []byte {
	t.Helper()
	b, ok := a.files["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
	if !ok {
		t.Fatalf("archive has no blob %s", digest)
	}
	return b
}

type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
}

// push uploads the archive's image to repo:tag with the registry HTTP
// API v2 (monolithic blob uploads, then the manifest) and returns the
// manifest digest.
func (r *registry) push(t *testing.T, a *ociArchive, repo, tag string) string {
	t.Helper()
	var index struct {
		Manifests []ociDescriptor `json:"manifests"`
	}
	if err := json.Unmarshal(a.files["index.json"], &index); err != nil || len(index.Manifests) == 0 {
		t.Fatalf("archive index: %v %s", err, a.files["index.json"])
	}
	manDesc := index.Manifests[0]
	manifest := a.blob(t, manDesc.Digest)
	var m struct {
		Config ociDescriptor   `json:"config"`
		Layers []ociDescriptor `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	base := "http://" + r.addr + "/v2/" + repo
	for _, d := range append([]ociDescriptor{m.Config}, m.Layers...) {
		resp := r.do(t, "POST", base+"/blobs/uploads/", "", nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("starting the upload of %s: %s", d.Digest, resp.Status)
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		loc = (&url.URL{Scheme: "http", Host: r.addr}).ResolveReference(loc)
		q := loc.Query()
		q.Set("digest", d.Digest)
		loc.RawQuery = q.Encode()
		resp = r.do(t, "PUT", loc.String(), "application/octet-stream", a.blob(t, d.Digest))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("uploading %s: %s", d.Digest, resp.Status)
		}
	}
	resp := r.do(t, "PUT", base+"/manifests/"+tag, manDesc.MediaType, manifest)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("putting the manifest %s:%s: %s", repo, tag, resp.Status)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != manDesc.Digest {
		t.Fatalf("registry stored manifest %s, pushed %s", got, manDesc.Digest)
	}
	return manDesc.Digest
}

// do sends one request with the registry's credentials and returns the
// response with its body read and closed.
func (r *registry) do(t *testing.T, method, u, contentType string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %s %s", method, u, resp.Status, msg)
	}
	return resp
}
