package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/netnstest"
)

// The ingress measurement: a real `skiff server` with its own agent and
// the built-in ingress controller on free loopback ports runs the demo
// app (skiff.local/demo:1, two replicas) behind a Service and an Ingress
// for host bench.local. C keep-alive HTTP clients (each its own
// connection) then send GET / back to back for a fixed time, through the
// ingress controller and, for comparison, straight to the pods' IPs on the
// node bridge (clients split evenly over the two pods, as the controller
// spreads its requests). Clients, controller, pods and server share the
// machine's two cores.
const (
	ingressNamespace = "ingress-bench"
	ingressHost      = "bench.local"
	ingressApp       = "web"
	ingressReplicas  = 2
	demoImage        = "skiff.local/demo:1"
	demoPort         = 8080
)

var ingressClients = []int{16, 64}

func measureIngress(ctx context.Context, e *env) error {
	d, warm := 5*time.Second, time.Second
	if e.rep.Meta.Quick {
		d, warm = 2*time.Second, 500*time.Millisecond
	}
	runs := e.opts.heavyRuns
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	httpsPort, err := freePort()
	if err != nil {
		return err
	}
	dir := e.lab.NewDataDir("ingress")
	s, err := e.lab.StartWithIngress(ctx, dir, fmt.Sprintf("127.0.0.1:%d", httpPort), fmt.Sprintf("127.0.0.1:%d", httpsPort),
		"--service-cidr", benchServiceCIDR)
	if err != nil {
		return errors.Join(err, cleanupIngressAgent(e, dir))
	}
	type key struct {
		direct  bool
		clients int
	}
	rates, p50s, p99s, maxes := map[key][]float64{}, map[key][]float64{}, map[key][]float64{}, map[key][]float64{}
	err = func() error {
		client, err := clientFor(s)
		if err != nil {
			return err
		}
		if err := waitNodeReady(ctx, client, benchNode, 2*time.Minute); err != nil {
			return err
		}
		podIPs, err := deployDemo(ctx, client)
		if err != nil {
			return err
		}
		viaIngress := []string{fmt.Sprintf("http://127.0.0.1:%d/", httpPort)}
		var direct []string
		for _, ip := range podIPs {
			direct = append(direct, "http://"+net.JoinHostPort(ip, fmt.Sprint(demoPort))+"/")
		}
		t0 := time.Now()
		if err := waitHTTP(ctx, viaIngress[0], ingressHost, 2*time.Minute); err != nil {
			return fmt.Errorf("through the ingress controller: %w", err)
		}
		e.progress("ingress: answering through the controller after %.1f s; pods %v", time.Since(t0).Seconds(), podIPs)
		for _, urls := range [][]string{viaIngress, direct} {
			if _, err := httpLoad(ctx, urls, ingressHost, ingressClients[0], warm); err != nil {
				return fmt.Errorf("warm-up %v: %w", urls, err)
			}
		}
		for run := range runs {
			for _, c := range ingressClients {
				for _, isDirect := range []bool{false, true} {
					urls, what := viaIngress, "ingress"
					if isDirect {
						urls, what = direct, "direct"
					}
					res, err := httpLoad(ctx, urls, ingressHost, c, d)
					if err != nil {
						return fmt.Errorf("%s, %d clients: %w", what, c, err)
					}
					lat := Distribution(res.latencies)
					rate := float64(len(res.latencies)) / res.wall.Seconds()
					k := key{isDirect, c}
					rates[k] = append(rates[k], rate)
					p50s[k], p99s[k], maxes[k] = append(p50s[k], ms(lat.P50)), append(p99s[k], ms(lat.P99)), append(maxes[k], ms(lat.Max))
					e.progress("ingress run %d/%d: %-7s c=%-2d %6.0f req/s  p50 %s ms  p99 %s ms  max %s ms",
						run+1, runs, what, c, rate, fmtMs(ms(lat.P50)), fmtMs(ms(lat.P99)), fmtMs(ms(lat.Max)))
				}
			}
		}
		return nil
	}()
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w\nserver log tail:\n%s", err, s.LogTail(15))
	}
	if stopErr := s.Stop(); stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	if cleanErr := cleanupIngressAgent(e, dir); cleanErr != nil {
		err = errors.Join(err, cleanErr)
	}
	if err != nil {
		return err
	}
	if err := e.lab.RemoveDataDir(dir); err != nil {
		return err
	}
	for _, c := range ingressClients {
		for _, isDirect := range []bool{false, true} {
			k := key{isDirect, c}
			what := "through ingress"
			if isDirect {
				what = "straight to pod"
			}
			e.rep.add(fmt.Sprintf("http %s, %d clients", what, c), "%s   %s",
				rateLine(Summarize(rates[k]), "req/s"), latencyLine(Summarize(p50s[k]), Summarize(p99s[k]), Summarize(maxes[k])))
		}
	}
	return nil
}

// cleanupIngressAgent removes what the server's agent left on the host
// (containers, bridge, nftables tables), even after Ctrl-C, and checks
// that its service proxy table is gone.
func cleanupIngressAgent(e *env, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.lab.CleanupAgent(ctx, filepath.Join(dir, "agent")); err != nil {
		return err
	}
	table := "skiff_svc_" + benchBridge
	if on, err := netnstest.HostHasTableContext(ctx, table); err != nil {
		return err
	} else if on {
		return fmt.Errorf("agent cleanup left table ip %s in the host's ruleset", table)
	}
	return nil
}

// deployDemo creates the demo Deployment, its Service and the Ingress,
// and waits for both pods to be Ready; it returns their IPs.
func deployDemo(ctx context.Context, c kubernetes.Interface) ([]string, error) {
	if err := createNamespace(ctx, c, ingressNamespace); err != nil {
		return nil, err
	}
	labels := map[string]string{"app": ingressApp}
	zero := int64(0)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: ingressApp},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(ingressReplicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &zero,
					Containers: []corev1.Container{{
						Name: "web", Image: demoImage, ImagePullPolicy: corev1.PullIfNotPresent,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: demoPort}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := c.AppsV1().Deployments(ingressNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create deployment: %w", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ingressApp},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	if _, err := c.CoreV1().Services(ingressNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create service: %w", err)
	}
	prefix := networkingv1.PathTypePrefix
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: ingressApp},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: ingressHost,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: ingressApp, Port: networkingv1.ServiceBackendPort{Number: 80},
				}},
			}}}},
		}}},
	}
	if _, err := c.NetworkingV1().Ingresses(ingressNamespace).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create ingress: %w", err)
	}

	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, err := c.CoreV1().Pods(ingressNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + ingressApp})
		var ips []string
		if err == nil {
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil && p.Status.PodIP != "" && podReady(&p) {
					ips = append(ips, p.Status.PodIP)
				}
			}
		}
		if len(ips) == ingressReplicas {
			return ips, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d demo pods Ready after 2m (list error: %v)", len(ips), ingressReplicas, err)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitHTTP polls url (with the Host header host) until it answers 200.
func waitHTTP(ctx context.Context, url, host string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Host = host
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (Host %s) not answering 200 after %s: last %s", url, host, timeout, last)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// httpLoad runs clients keep-alive clients for d, client i sending GET
// urls[i % len(urls)] with the Host header host, one request in flight,
// each on a connection of its own. Anything but a 200 is an error.
func httpLoad(ctx context.Context, urls []string, host string, clients int, d time.Duration) (loadRun, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	over := func() bool { return ctx.Err() != nil || !time.Now().Before(deadline) }
	lats := make([][]time.Duration, clients)
	var failures errorTail
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			url := urls[w%len(urls)]
			for !over() {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					failures.add(err)
					return
				}
				req.Host = host
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				took := time.Since(t0)
				switch {
				case err != nil && over():
					return
				case err != nil:
					failures.add(err)
				case resp.StatusCode != http.StatusOK:
					failures.add(fmt.Errorf("%s: %s", url, resp.Status))
				default:
					lats[w] = append(lats[w], took)
				}
			}
		})
	}
	wg.Wait()
	return finishLoad(parent, start, lats, &failures, "requests")
}
