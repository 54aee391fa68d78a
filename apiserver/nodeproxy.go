package apiserver

// The streaming subresources are served by the node agent (the kubelet's
// API on port 10250) and proxied here, as kube-apiserver does:
//
//	pods/log          GET  -> /containerLogs/NS/POD/CONTAINER
//	pods/exec         GET or POST with Upgrade -> /exec/NS/POD/CONTAINER
//	pods/attach       likewise -> /attach/NS/POD/CONTAINER
//	pods/portforward  likewise -> /portForward/NS/POD
//	nodes/proxy[/P]   any method -> /P on the node
//
// The agent is reached at the node's address (InternalIP first) and
// status.daemonEndpoints.kubeletEndpoint.Port over HTTPS, with the API
// server's client certificate (Config.KubeletClient).
//
// Upgraded connections are spliced through unchanged (SPDY/3.1, which the
// agent and the container runtime speak). Two WebSocket forms of kubectl
// 1.30+ are translated: exec and attach over v5.channel.k8s.io become a
// SPDY session to the agent, and port-forward's SPDY tunnelled in
// WebSocket frames is unwrapped, so kubectl never needs its SPDY fallback.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apimachinery/pkg/util/validation/field"
	streamproxy "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// defaultContainerAnnotation names the container kubectl picks when none
// is given; the API server honours it too.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// defaultAgentPort is the kubelet's port, used when a node does not say.
const defaultAgentPort = 10250

// isStreamingSubresource says whether a subresource is one the node agent
// serves: log, exec, attach, portforward, proxy and proxy/PATH.
func isStreamingSubresource(sub string) bool {
	return streamingSubresources[sub] || strings.HasPrefix(sub, "proxy/")
}

// serveNodeProxy dispatches the streaming subresources.
func (s *Server) serveNodeProxy(rc *reqContext) {
	gr := rc.res.GroupResource()
	sub := rc.info.Subresource
	verb := rc.info.Verb
	switch {
	case gr == corev1.Resource("pods") && sub == "log":
		if verb != "get" {
			rc.fail(apierrors.NewMethodNotSupported(corev1.Resource("pods/log"), verb))
			return
		}
		s.servePodLog(rc)
	case gr == corev1.Resource("pods") && (sub == "exec" || sub == "attach" || sub == "portforward"):
		if verb != "get" && verb != "create" {
			rc.fail(apierrors.NewMethodNotSupported(corev1.Resource("pods/"+sub), verb))
			return
		}
		s.servePodStream(rc, sub)
	case gr == corev1.Resource("nodes") && (sub == "proxy" || strings.HasPrefix(sub, "proxy/")):
		s.serveNodesProxy(rc)
	default:
		rc.fail(apierrors.NewGenericServerResponse(http.StatusNotImplemented, verb, rc.res.GroupResource(), rc.info.Name,
			fmt.Sprintf("%s/%s is not supported by Skiff", gr, sub), 0, false))
	}
}

// agentTransport is how the API server reaches node agents; insecure skips
// verifying the agent's serving certificate (insecureSkipTLSVerifyBackend).
func (s *Server) agentTransport(insecure bool) (*http.Transport, error) {
	if s.cfg.KubeletClient == nil {
		return nil, apierrors.NewServiceUnavailable("the API server has no client credentials for node agents")
	}
	tc := s.cfg.KubeletClient.Clone()
	if insecure {
		tc.InsecureSkipVerify = true
	}
	return &http.Transport{
		TLSClientConfig:     tc,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		// One request per connection: nothing to pool or clean up.
		DisableKeepAlives: true,
	}, nil
}

// getPod and getNode read the objects a proxied request needs.
func (s *Server) getPod(rc *reqContext) (*corev1.Pod, error) {
	res, ok := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource("pods"))
	if !ok {
		return nil, apierrors.NewInternalError(errors.New("pods are not served"))
	}
	obj, err := s.objects.get(rc.ctx(), res, rc.info.Namespace, rc.info.Name)
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("stored pod is a %T", obj))
	}
	return pod, nil
}

func (s *Server) getNode(rc *reqContext, name string) (*corev1.Node, error) {
	res, ok := s.catalog.Lookup(corev1.SchemeGroupVersion.WithResource("nodes"))
	if !ok {
		return nil, apierrors.NewInternalError(errors.New("nodes are not served"))
	}
	obj, err := s.objects.get(rc.ctx(), res, "", name)
	if err != nil {
		return nil, err
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("stored node is a %T", obj))
	}
	return node, nil
}

// podContainer picks the container a pod subresource is for: the one
// requested, which must exist, or else the pod's only container, or the
// one its default-container annotation names.
func podContainer(pod *corev1.Pod, requested string) (string, error) {
	var all []string
	for _, c := range pod.Spec.InitContainers {
		all = append(all, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		all = append(all, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		all = append(all, c.Name)
	}
	has := func(name string) bool {
		for _, n := range all {
			if n == name {
				return true
			}
		}
		return false
	}
	if requested != "" {
		if !has(requested) {
			return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", requested, pod.Name))
		}
		return requested, nil
	}
	switch {
	case len(pod.Spec.Containers) == 1:
		return pod.Spec.Containers[0].Name, nil
	case pod.Annotations[defaultContainerAnnotation] != "" && has(pod.Annotations[defaultContainerAnnotation]):
		return pod.Annotations[defaultContainerAnnotation], nil
	case len(pod.Spec.Containers) == 0:
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, all))
}

// agentHost is the host:port of a node's agent: its first address by
// type preference, and its kubelet endpoint port. port overrides the
// latter when not empty.
func agentHost(node *corev1.Node, port string) (string, error) {
	preference := []corev1.NodeAddressType{
		corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeInternalDNS, corev1.NodeHostName, corev1.NodeExternalDNS,
	}
	var host string
	for _, t := range preference {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				host = a.Address
				break
			}
		}
		if host != "" {
			break
		}
	}
	if host == "" {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %s has no address to reach its agent on; known addresses: %v", node.Name, node.Status.Addresses))
	}
	if port == "" {
		p := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
		if p <= 0 {
			p = defaultAgentPort
		}
		port = strconv.Itoa(p)
	}
	return net.JoinHostPort(host, port), nil
}

// podAgentURL resolves the node of a scheduled pod into the agent URL
// for path and query.
func (s *Server) podAgentURL(rc *reqContext, pod *corev1.Pod, path string, query url.Values) (*url.URL, error) {
	node, err := s.getNode(rc, pod.Spec.NodeName)
	if err != nil {
		return nil, err
	}
	host, err := agentHost(node, "")
	if err != nil {
		return nil, err
	}
	return &url.URL{Scheme: "https", Host: host, Path: path, RawQuery: query.Encode()}, nil
}

// podLogOptions reads the pods/log query into PodLogOptions; malformed
// values are a 400, out-of-range ones a 422, as kube-apiserver answers.
func podLogOptions(name string, q url.Values) (*corev1.PodLogOptions, error) {
	o := &corev1.PodLogOptions{Container: q.Get("container")}
	o.Follow = queryBool(q, "follow")
	o.Previous = queryBool(q, "previous")
	o.Timestamps = queryBool(q, "timestamps")
	o.InsecureSkipTLSVerifyBackend = queryBool(q, "insecureSkipTLSVerifyBackend")
	var err error
	if o.SinceSeconds, err = queryInt(q, "sinceSeconds"); err != nil {
		return nil, err
	}
	if o.TailLines, err = queryInt(q, "tailLines"); err != nil {
		return nil, err
	}
	if o.LimitBytes, err = queryInt(q, "limitBytes"); err != nil {
		return nil, err
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("sinceTime %q is not an RFC 3339 time: %v", v, err))
		}
		mt := metav1.NewTime(t)
		o.SinceTime = &mt
	}
	if v := q.Get("stream"); v != "" {
		o.Stream = &v
	}
	var errs field.ErrorList
	if o.TailLines != nil && *o.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *o.TailLines, "must be greater than or equal to 0"))
	}
	if o.LimitBytes != nil && *o.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *o.LimitBytes, "must be greater than 0"))
	}
	switch {
	case o.SinceSeconds != nil && o.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case o.SinceSeconds != nil && *o.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *o.SinceSeconds, "must be greater than 0"))
	}
	if o.Stream != nil {
		switch *o.Stream {
		case corev1.LogStreamAll, corev1.LogStreamStdout, corev1.LogStreamStderr:
			if *o.Stream != corev1.LogStreamAll && o.TailLines != nil {
				errs = append(errs, field.Forbidden(field.NewPath(""), "`tailLines` and specific `stream` are mutually exclusive for now"))
			}
		default:
			errs = append(errs, field.NotSupported(field.NewPath("stream"), *o.Stream, []string{corev1.LogStreamAll, corev1.LogStreamStdout, corev1.LogStreamStderr}))
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, name, errs)
	}
	return o, nil
}

// logQuery is the agent's containerLogs query for o.
func logQuery(o *corev1.PodLogOptions) url.Values {
	q := url.Values{}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Previous {
		q.Set("previous", "true")
	}
	if o.Timestamps {
		q.Set("timestamps", "true")
	}
	if o.SinceSeconds != nil {
		q.Set("sinceSeconds", strconv.FormatInt(*o.SinceSeconds, 10))
	}
	if o.SinceTime != nil {
		q.Set("sinceTime", o.SinceTime.UTC().Format(time.RFC3339))
	}
	if o.TailLines != nil {
		q.Set("tailLines", strconv.FormatInt(*o.TailLines, 10))
	}
	if o.LimitBytes != nil {
		q.Set("limitBytes", strconv.FormatInt(*o.LimitBytes, 10))
	}
	if o.Stream != nil {
		q.Set("stream", *o.Stream)
	}
	return q
}

// queryBool converts a query parameter as Kubernetes does: absent, "0"
// and "false" (any case) are false, anything else true.
func queryBool(q url.Values, name string) bool {
	vals, ok := q[name]
	if !ok || len(vals) == 0 {
		return false
	}
	return vals[0] != "0" && !strings.EqualFold(vals[0], "false")
}

func queryInt(q url.Values, name string) (*int64, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s %q is not an integer", name, v))
	}
	return &n, nil
}

// servePodLog streams a container's log from its node's agent.
func (s *Server) servePodLog(rc *reqContext) {
	opts, err := podLogOptions(rc.info.Name, rc.r.URL.Query())
	if err != nil {
		rc.fail(err)
		return
	}
	pod, err := s.getPod(rc)
	if err != nil {
		rc.fail(err)
		return
	}
	container, err := podContainer(pod, opts.Container)
	if err != nil {
		rc.fail(err)
		return
	}
	if pod.Spec.NodeName == "" {
		// Not scheduled: nothing has run, so the log is empty.
		rc.w.Header().Set("Content-Type", "text/plain")
		rc.w.WriteHeader(http.StatusOK)
		return
	}
	loc, err := s.podAgentURL(rc, pod, "/containerLogs/"+pod.Namespace+"/"+pod.Name+"/"+container, logQuery(opts))
	if err != nil {
		rc.fail(err)
		return
	}
	transport, err := s.agentTransport(opts.InsecureSkipTLSVerifyBackend)
	if err != nil {
		rc.fail(err)
		return
	}
	req, err := http.NewRequestWithContext(rc.ctx(), http.MethodGet, loc.String(), nil)
	if err != nil {
		rc.fail(apierrors.NewInternalError(err))
		return
	}
	resp, err := transport.RoundTrip(req)
	if err != nil {
		rc.fail(apierrors.NewInternalError(fmt.Errorf("reach the agent of node %s: %w", pod.Spec.NodeName, err)))
		return
	}
	defer func() { _ = resp.Body.Close() }()
	if err := agentResponseError(resp, corev1.Resource("pods/log"), pod.Name); err != nil {
		rc.fail(err)
		return
	}
	rc.flushWarnings()
	rc.w.Header().Set("Content-Type", "text/plain")
	rc.w.WriteHeader(http.StatusOK)
	copyFlushing(rc.w, resp.Body)
}

// agentResponseError turns an agent's error answer (its body is the
// message) into the API error kube-apiserver would give.
func agentResponseError(resp *http.Response, gr schema.GroupResource, name string) error {
	if resp.StatusCode >= http.StatusOK && resp.StatusCode <= http.StatusPartialContent {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("read the agent's answer: %w", err))
	}
	msg := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusInternalServerError:
		return apierrors.NewInternalError(errors.New(msg))
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(msg)
	}
	return apierrors.NewGenericServerResponse(resp.StatusCode, "", gr, name, msg, 0, false)
}

// copyFlushing copies a streamed body, flushing after every read so
// followed logs arrive as they are written.
func copyFlushing(w http.ResponseWriter, r io.Reader) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// streamQuery is the agent's query for exec, attach and port-forward.
func streamQuery(sub string, q url.Values) (url.Values, error) {
	out := url.Values{}
	if sub == "portforward" {
		var ports []string
		for _, v := range q["ports"] {
			for _, p := range strings.Split(v, ",") {
				n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
				if err != nil || n == 0 {
					return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid port %q: must be a number from 1 to 65535", p))
				}
				ports = append(ports, strconv.FormatUint(n, 10))
			}
		}
		if len(ports) > 0 {
			out.Set("port", strings.Join(ports, ","))
		}
		return out, nil
	}
	for _, p := range []string{"stdin", "stdout", "stderr", "tty"} {
		if queryBool(q, p) {
			out.Set(p, "1")
		}
	}
	if sub == "exec" {
		out["command"] = q["command"]
	}
	return out, nil
}

// servePodStream proxies exec, attach and portforward to the pod's agent.
func (s *Server) servePodStream(rc *reqContext, sub string) {
	q := rc.r.URL.Query()
	agentQuery, err := streamQuery(sub, q)
	if err != nil {
		rc.fail(err)
		return
	}
	pod, err := s.getPod(rc)
	if err != nil {
		rc.fail(err)
		return
	}
	path := "/portForward/" + pod.Namespace + "/" + pod.Name
	if sub != "portforward" {
		container, err := podContainer(pod, q.Get("container"))
		if err != nil {
			rc.fail(err)
			return
		}
		path = "/" + sub + "/" + pod.Namespace + "/" + pod.Name + "/" + container
	}
	if pod.Spec.NodeName == "" {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)))
		return
	}
	loc, err := s.podAgentURL(rc, pod, path, agentQuery)
	if err != nil {
		rc.fail(err)
		return
	}
	transport, err := s.agentTransport(false)
	if err != nil {
		rc.fail(err)
		return
	}
	rc.flushWarnings()
	// The caller's credentials are for this server, not the agent.
	rc.r.Header.Del("Authorization")
	streamHandler(sub, loc, transport, q, rc.out).ServeHTTP(hijackable(rc.w), rc.r)
}

// streamHandler is the handler that carries one exec, attach or
// port-forward session to loc: the upgrade-aware proxy, behind the
// WebSocket translators kubectl 1.30+ needs.
func streamHandler(sub string, loc *url.URL, transport http.RoundTripper, q url.Values, out output) http.Handler {
	upgrade := proxy.NewUpgradeAwareHandler(loc, transport, false, true, proxyResponder{out: out})
	if sub == "portforward" {
		return streamproxy.NewTranslatingHandler(upgrade, streamproxy.NewTunnelingHandler(upgrade), wsstream.IsWebSocketRequestWithTunnelingProtocol)
	}
	translator := streamproxy.NewStreamTranslatorHandler(loc, transport, 0, streamproxy.Options{
		Stdin: queryBool(q, "stdin"), Stdout: queryBool(q, "stdout"), Stderr: queryBool(q, "stderr"), Tty: queryBool(q, "tty"),
	})
	return streamproxy.NewTranslatingHandler(upgrade, translator, wsstream.IsWebSocketRequestWithStreamCloseProtocol)
}

// serveNodesProxy proxies nodes/NAME/proxy/PATH to PATH on the node's
// agent. NAME may carry a scheme and port: [scheme:]name[:port].
func (s *Server) serveNodesProxy(rc *reqContext) {
	scheme, name, port, ok := utilnet.SplitSchemeNamePort(rc.info.Name)
	if !ok || name == "" {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("invalid node request %q", rc.info.Name)))
		return
	}
	if scheme == "" {
		scheme = "https"
	}
	node, err := s.getNode(rc, name)
	if err != nil {
		rc.fail(err)
		return
	}
	host, err := agentHost(node, port)
	if err != nil {
		rc.fail(err)
		return
	}
	transport, err := s.agentTransport(false)
	if err != nil {
		rc.fail(err)
		return
	}
	loc := &url.URL{Scheme: scheme, Host: host, Path: nodeProxyPath(rc.r.URL.Path, rc.info.Name)}
	h := proxy.NewUpgradeAwareHandler(loc, transport, false, false, proxyResponder{out: rc.out})
	rc.flushWarnings()
	rc.r.Header.Del("Authorization")
	h.ServeHTTP(hijackable(rc.w), rc.r)
}

// nodeProxyPath is what follows .../nodes/NAME/proxy in a request path.
func nodeProxyPath(requestPath, name string) string {
	marker := "/nodes/" + name + "/proxy"
	i := strings.Index(requestPath, marker)
	if i < 0 {
		return "/"
	}
	rest := requestPath[i+len(marker):]
	if rest == "" {
		return ""
	}
	return rest
}

// proxyResponder answers the proxy's own failures (dialing the agent,
// a missing upgrade) with a Status.
type proxyResponder struct{ out output }

func (p proxyResponder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		err = apierrors.NewInternalError(err)
	}
	writeError(w, p.out, err)
}

// hijackable gives the proxies a ResponseWriter they can take the
// connection from: the server's writer wrappers pass Unwrap, not Hijack.
func hijackable(w http.ResponseWriter) http.ResponseWriter {
	if _, ok := w.(http.Hijacker); ok {
		return w
	}
	return hijackWriter{w}
}

type hijackWriter struct{ http.ResponseWriter }

func (h hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

func (h hijackWriter) Flush() { _ = http.NewResponseController(h.ResponseWriter).Flush() }

func (h hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }
