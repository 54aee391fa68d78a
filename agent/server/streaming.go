package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/skiff-sh/skiff/agent/labels"
)

// streamOptions are the stream flags of an exec or attach request.
type streamOptions struct {
	stdin, stdout, stderr, tty bool
}

// parseStreamOptions reads stdin, stdout, stderr and tty. A terminal
// merges stderr into stdout, so tty drops stderr; at least one stream is
// required.
func parseStreamOptions(q url.Values) (streamOptions, error) {
	var o streamOptions
	o.stdin, _ = boolParam(q, "stdin")
	o.stdout, _ = boolParam(q, "stdout")
	o.stderr, _ = boolParam(q, "stderr")
	o.tty, _ = boolParam(q, "tty")
	if o.tty {
		o.stderr = false
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

// runningContainer finds the running instance of a pod's container.
func (s *server) runningContainer(ctx context.Context, r *http.Request) (*runtimeapi.Container, error) {
	ns, pod, uid, container := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container")
	instances, err := s.containerInstances(ctx, ns, pod, uid, container)
	if err != nil {
		return nil, err
	}
	if len(instances) == 0 {
		return nil, httpErrorf(http.StatusNotFound, "container %q not found in pod %q", container, pod)
	}
	for _, c := range newestFirst(instances) {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return c, nil
		}
	}
	return nil, httpErrorf(http.StatusBadRequest, "container %q in pod %q is not running", container, pod)
}

// serveExec answers /exec/...: CRI Exec, then the upgraded stream is
// spliced onto the runtime's streaming server.
func (s *server) serveExec(w http.ResponseWriter, r *http.Request) {
	if !upgradeOrFail(w, r) {
		return
	}
	q := r.URL.Query()
	cmd := q["command"]
	if len(cmd) == 0 {
		writeError(w, httpErrorf(http.StatusBadRequest, "you must specify at least one command for the container"))
		return
	}
	opts, err := parseStreamOptions(q)
	if err != nil {
		writeError(w, httpErrorf(http.StatusBadRequest, "%s", err.Error()))
		return
	}
	c, err := s.runningContainer(r.Context(), r)
	if err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.cfg.Runtime.Exec(r.Context(), &runtimeapi.ExecRequest{
		ContainerId: c.Id, Cmd: cmd,
		Tty: opts.tty, Stdin: opts.stdin, Stdout: opts.stdout, Stderr: opts.stderr,
	})
	if err != nil {
		writeError(w, criError("exec", err))
		return
	}
	s.proxyStream(w, r, resp.Url)
}

// serveAttach answers /attach/...: CRI Attach, then the same splice.
func (s *server) serveAttach(w http.ResponseWriter, r *http.Request) {
	if !upgradeOrFail(w, r) {
		return
	}
	opts, err := parseStreamOptions(r.URL.Query())
	if err != nil {
		writeError(w, httpErrorf(http.StatusBadRequest, "%s", err.Error()))
		return
	}
	c, err := s.runningContainer(r.Context(), r)
	if err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.cfg.Runtime.Attach(r.Context(), &runtimeapi.AttachRequest{
		ContainerId: c.Id,
		Tty:         opts.tty, Stdin: opts.stdin, Stdout: opts.stdout, Stderr: opts.stderr,
	})
	if err != nil {
		writeError(w, criError("attach", err))
		return
	}
	s.proxyStream(w, r, resp.Url)
}

// servePortForward answers /portForward/...: CRI PortForward on the pod's
// ready sandbox, then the same splice. The ports travel in the stream
// headers; the port query parameters are passed on as hints.
func (s *server) servePortForward(w http.ResponseWriter, r *http.Request) {
	if !upgradeOrFail(w, r) {
		return
	}
	ports, err := parsePorts(r.URL.Query()["port"])
	if err != nil {
		writeError(w, httpErrorf(http.StatusBadRequest, "%s", err.Error()))
		return
	}
	ns, pod, uid := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("uid")
	sandbox, err := s.readySandbox(r.Context(), ns, pod, uid)
	if err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.cfg.Runtime.PortForward(r.Context(), &runtimeapi.PortForwardRequest{PodSandboxId: sandbox.Id, Port: ports})
	if err != nil {
		writeError(w, criError("port-forward", err))
		return
	}
	s.proxyStream(w, r, resp.Url)
}

// parsePorts reads port parameters, each a port or a comma-separated list.
func parsePorts(vals []string) ([]int32, error) {
	var ports []int32
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("invalid port %q: must be a number from 1 to 65535", p)
			}
			ports = append(ports, int32(n))
		}
	}
	return ports, nil
}

// readySandbox finds a pod's newest ready sandbox.
func (s *server) readySandbox(ctx context.Context, ns, pod, uid string) (*runtimeapi.PodSandbox, error) {
	sel := map[string]string{labels.PodNamespace: ns, labels.PodName: pod}
	if uid != "" {
		sel[labels.PodUID] = uid
	}
	if s.cfg.NodeName != "" {
		sel[labels.ManagedBy] = s.cfg.NodeName
	}
	resp, err := s.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: sel,
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil {
		return nil, criError("list pod sandboxes", err)
	}
	if len(resp.Items) == 0 {
		return nil, httpErrorf(http.StatusNotFound, "pod %q in namespace %q has no running sandbox on this node", pod, ns)
	}
	return slices.MaxFunc(resp.Items, func(a, b *runtimeapi.PodSandbox) int {
		return cmp.Compare(a.CreatedAt, b.CreatedAt)
	}), nil
}

// serveRun answers POST /run/...: CRI ExecSync, the command's output as
// the body. The command is the cmd parameter split at spaces, or the
// command parameters.
func (s *server) serveRun(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cmd := q["command"]
	if c := q.Get("cmd"); c != "" {
		cmd = strings.Fields(c)
	}
	if len(cmd) == 0 {
		writeError(w, httpErrorf(http.StatusBadRequest, "you must specify a command (cmd or command parameters)"))
		return
	}
	c, err := s.runningContainer(r.Context(), r)
	if err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.cfg.Runtime.ExecSync(r.Context(), &runtimeapi.ExecSyncRequest{ContainerId: c.Id, Cmd: cmd})
	if err != nil {
		writeError(w, criError("run", err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if resp.ExitCode != 0 {
		w.WriteHeader(http.StatusInternalServerError)
	}
	_, _ = w.Write(resp.Stdout)
	_, _ = w.Write(resp.Stderr)
	if resp.ExitCode != 0 {
		_, _ = fmt.Fprintf(w, "command terminated with non-zero exit code: %d", resp.ExitCode)
	}
}

// upgradeOrFail answers 400 to requests that do not ask for a protocol
// upgrade, before any exec session is created for them.
func upgradeOrFail(w http.ResponseWriter, r *http.Request) bool {
	if httpstream.IsUpgradeRequest(r) {
		return true
	}
	writeError(w, httpErrorf(http.StatusBadRequest, "Upgrade request required"))
	return false
}

// proxyStream splices the client's upgraded connection onto the runtime's
// streaming URL.
func (s *server) proxyStream(w http.ResponseWriter, r *http.Request, rawURL string) {
	u, err := url.Parse(rawURL)
	if err != nil || !u.IsAbs() {
		writeError(w, httpErrorf(http.StatusInternalServerError, "the container runtime returned an unusable streaming URL %q", rawURL))
		return
	}
	h := proxy.NewUpgradeAwareHandler(u, nil, false, true, streamResponder{s: s})
	h.ServeHTTP(w, r)
}

// streamResponder answers errors of the streaming proxy.
type streamResponder struct{ s *server }

func (sr streamResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code != 0 {
		code = int(st.Status().Code)
	}
	sr.s.log.Debug("streaming proxy error", "path", r.URL.Path, "err", err)
	writeError(w, httpErrorf(code, "%s", err.Error()))
}
