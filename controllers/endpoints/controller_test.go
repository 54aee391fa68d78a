package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/test/framework"
)

// start runs a server and the controller against it.
func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory, Options{Log: slog.New(slog.DiscardHandler), Recorder: record.NewFakeRecorder(100)})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
		factory.Shutdown()
	})
	return client
}

// eventually polls cond until it holds or 20s pass.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
	}
	t.Fatalf("%s: not within 20s (last error: %v)", what, last)
}

// podIP is pod i's address.
func podIP(i int) string { return fmt.Sprintf("10.244.%d.%d", i/200, i%200+1) }

// runPod creates pod i bound to node, then sets its status as a node
// agent would: running, with an address, ready or not.
func runPod(t *testing.T, ctx context.Context, client kubernetes.Interface, ns, name string, i int, node string, labels map[string]string, ready bool, mut ...func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "busybox",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
	}
	for _, m := range mut {
		m(pod)
	}
	pod, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = podIP(i)
	pod.Status.PodIPs = []corev1.PodIP{{IP: podIP(i)}}
	setReady(pod, ready)
	pod, err = client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

func setReady(pod *corev1.Pod, ready bool) {
	s := corev1.ConditionFalse
	if ready {
		s = corev1.ConditionTrue
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: s, LastTransitionTime: metav1.Now()}}
}

func webService(name string, mut ...func(*corev1.Service)) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"tier": "front"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				{Name: "metrics", Port: 9100, TargetPort: intstr.FromString("metrics")},
			},
		},
	}
	for _, m := range mut {
		m(svc)
	}
	return svc
}

func listSlices(ctx context.Context, client kubernetes.Interface, ns, svc string) ([]discoveryv1.EndpointSlice, error) {
	l, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// sliceEndpointsByPod flattens slices to pod name -> endpoint (and the
// slice's ports).
func sliceEndpointsByPod(ss []discoveryv1.EndpointSlice) map[string]discoveryv1.Endpoint {
	out := map[string]discoveryv1.Endpoint{}
	for _, s := range ss {
		for _, ep := range s.Endpoints {
			out[ep.TargetRef.Name] = ep
		}
	}
	return out
}

func TestServiceEndpointsAndSlices(t *testing.T) {
	client := start(t)
	ctx := context.Background()
	const ns = "default"
	labels := map[string]string{"app": "web"}

	zone := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{corev1.LabelTopologyZone: "zone-1"}}}
	if _, err := client.CoreV1().Nodes().Create(ctx, zone, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, webService("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	withMetrics := func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: 9102, Protocol: corev1.ProtocolTCP})
	}
	runPod(t, ctx, client, ns, "ready-1", 1, "node-a", labels, true, withMetrics)
	runPod(t, ctx, client, ns, "ready-2", 2, "node-a", labels, true)
	runPod(t, ctx, client, ns, "unready-3", 3, "node-b", labels, false)
	runPod(t, ctx, client, ns, "named-4", 4, "node-a", labels, true, func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "four", "web" })
	runPod(t, ctx, client, ns, "other", 5, "node-a", map[string]string{"app": "api"}, true)
	// Not yet running: no address, so no endpoint.
	if _, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pending", Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Pods, node and Service reach the controller through separate
	// informers, in any order; the state converges.
	eventually(t, "slices with four endpoints, zone known", func() (bool, error) {
		ss, err := listSlices(ctx, client, ns, "web")
		eps := sliceEndpointsByPod(ss)
		return err == nil && len(eps) == 4 && eps["ready-1"].Zone != nil, err
	})
	ss, _ := listSlices(ctx, client, ns, "web")
	eps := sliceEndpointsByPod(ss)
	if _, ok := eps["other"]; ok {
		t.Error("pod of another app in the slices")
	}
	r1 := eps["ready-1"]
	if !*r1.Conditions.Ready || !*r1.Conditions.Serving || *r1.Conditions.Terminating || r1.Addresses[0] != podIP(1) ||
		*r1.NodeName != "node-a" || r1.Zone == nil || *r1.Zone != "zone-1" || r1.TargetRef.UID == "" {
		t.Errorf("ready-1 endpoint %+v", r1)
	}
	if u := eps["unready-3"]; *u.Conditions.Ready || *u.Conditions.Serving || u.Zone != nil {
		t.Errorf("unready-3 endpoint %+v", u)
	}
	if n := eps["named-4"]; n.Hostname == nil || *n.Hostname != "four" {
		t.Errorf("named-4 endpoint hostname %v", n.Hostname)
	}
	for _, s := range ss {
		if s.Labels[discoveryv1.LabelManagedBy] != ManagedBy || s.Labels["tier"] != "front" || s.AddressType != discoveryv1.AddressTypeIPv4 {
			t.Errorf("slice %s: labels %v type %s", s.Name, s.Labels, s.AddressType)
		}
		if ref := metav1.GetControllerOf(&s); ref == nil || ref.Kind != "Service" || ref.Name != "web" {
			t.Errorf("slice %s owner %+v", s.Name, s.OwnerReferences)
		}
		// ready-1 serves both ports; the others only http.
		names := map[string]int32{}
		for _, p := range s.Ports {
			names[*p.Name] = *p.Port
		}
		for _, ep := range s.Endpoints {
			if ep.TargetRef.Name == "ready-1" && names["metrics"] != 9102 {
				t.Errorf("ready-1 in a slice with ports %v", names)
			}
			if ep.TargetRef.Name != "ready-1" && len(names) != 1 {
				t.Errorf("%s in a slice with ports %v", ep.TargetRef.Name, names)
			}
		}
	}

	// The Endpoints object.
	subsetsOf := func(ep *corev1.Endpoints) string {
		got := map[string]string{} // port -> ready/notready pod names
		for _, s := range ep.Subsets {
			var r, nr []string
			for _, a := range s.Addresses {
				r = append(r, a.TargetRef.Name)
			}
			for _, a := range s.NotReadyAddresses {
				nr = append(nr, a.TargetRef.Name)
			}
			for _, p := range s.Ports {
				got[fmt.Sprintf("%s:%d", p.Name, p.Port)] = fmt.Sprint(r, nr)
			}
		}
		return fmt.Sprint(got)
	}
	want := fmt.Sprint(map[string]string{
		"http:8080":    "[ready-1 ready-2 named-4] [unready-3]",
		"metrics:9102": "[ready-1] []",
	})
	var ep *corev1.Endpoints
	eventually(t, "endpoints "+want, func() (bool, error) {
		var err error
		ep, err = client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && subsetsOf(ep) == want, err
	})
	if ep.Labels["tier"] != "front" {
		t.Errorf("endpoints labels %v", ep.Labels)
	}

	// A pod being deleted (its node has not confirmed) is terminating in
	// the slices and gone from Endpoints.
	if err := client.CoreV1().Pods(ns).Delete(ctx, "ready-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "terminating endpoint", func() (bool, error) {
		ss, err := listSlices(ctx, client, ns, "web")
		e, ok := sliceEndpointsByPod(ss)["ready-2"]
		return err == nil && ok && *e.Conditions.Terminating && *e.Conditions.Serving && !*e.Conditions.Ready, err
	})
	eventually(t, "terminating pod out of Endpoints", func() (bool, error) {
		ep, err := client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, s := range ep.Subsets {
			for _, a := range append(s.Addresses, s.NotReadyAddresses...) {
				if a.TargetRef.Name == "ready-2" {
					return false, nil
				}
			}
		}
		return true, nil
	})

	// publishNotReadyAddresses: everyone is ready, the terminating pod too.
	pub := webService("web-all", func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true })
	if _, err := client.CoreV1().Services(ns).Create(ctx, pub, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "publishNotReadyAddresses endpoints", func() (bool, error) {
		ep, err := client.CoreV1().Endpoints(ns).Get(ctx, "web-all", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, s := range ep.Subsets {
			if len(s.Ports) > 0 && s.Ports[0].Name == "http" {
				return len(s.Addresses) == 4 && len(s.NotReadyAddresses) == 0, nil
			}
		}
		return false, nil
	})

	// A headless Service gets endpoints, and the label saying so.
	hl := webService("web-headless", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })
	if _, err := client.CoreV1().Services(ns).Create(ctx, hl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "headless slices", func() (bool, error) {
		ss, err := listSlices(ctx, client, ns, "web-headless")
		if err != nil || len(ss) == 0 {
			return false, err
		}
		_, marked := ss[0].Labels[corev1.IsHeadlessService]
		return marked && len(sliceEndpointsByPod(ss)) == 4, nil
	})

	// Services without a selector keep what their users wrote.
	manual := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "manual"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}}}
	if _, err := client.CoreV1().Services(ns).Create(ctx, manual, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	userEP := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "manual"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}}, Ports: []corev1.EndpointPort{{Port: 5432}}}}}
	if userEP, err := client.CoreV1().Endpoints(ns).Create(ctx, userEP, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	} else {
		// Touch it and change the service: the controller must not.
		manual, _ := client.CoreV1().Services(ns).Get(ctx, "manual", metav1.GetOptions{})
		manual.Labels = map[string]string{"touched": "yes"}
		if _, err := client.CoreV1().Services(ns).Update(ctx, manual, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Once a later Service is served, "manual" was looked at.
		if _, err := client.CoreV1().Services(ns).Create(ctx, webService("sentinel"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "sentinel endpoints", func() (bool, error) {
			_, err := client.CoreV1().Endpoints(ns).Get(ctx, "sentinel", metav1.GetOptions{})
			return err == nil, err
		})
		now, err := client.CoreV1().Endpoints(ns).Get(ctx, "manual", metav1.GetOptions{})
		if err != nil || now.ResourceVersion != userEP.ResourceVersion {
			t.Errorf("user endpoints changed: %v %+v", err, now)
		}
		if ss, _ := listSlices(ctx, client, ns, "manual"); len(ss) != 0 {
			t.Errorf("slices made for a selector-less service: %d", len(ss))
		}
	}

	// Deleting the Service deletes its slices and Endpoints.
	if err := client.CoreV1().Services(ns).Delete(ctx, "web-all", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-all cleaned up", func() (bool, error) {
		ss, err := listSlices(ctx, client, ns, "web-all")
		if err != nil || len(ss) > 0 {
			return false, err
		}
		_, err = client.CoreV1().Endpoints(ns).Get(ctx, "web-all", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

func TestEmptyServiceGetsPlaceholder(t *testing.T) {
	client := start(t)
	ctx := context.Background()
	if _, err := client.CoreV1().Services("default").Create(ctx, webService("lonely"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "placeholder slice and empty endpoints", func() (bool, error) {
		ss, err := listSlices(ctx, client, "default", "lonely")
		if err != nil || len(ss) != 1 || len(ss[0].Endpoints) != 0 {
			return false, err
		}
		ep, err := client.CoreV1().Endpoints("default").Get(ctx, "lonely", metav1.GetOptions{})
		return err == nil && len(ep.Subsets) == 0, err
	})
	// The API server's own service is not touched.
	if ss, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=kubernetes," + discoveryv1.LabelManagedBy + "=" + ManagedBy}); err != nil || len(ss.Items) != 0 {
		t.Errorf("slices for the kubernetes service: %v %v", err, ss)
	}
}

// TestReadinessFlipLatency measures how long a pod's readiness change
// takes to reach its EndpointSlice, over a Service of 250 pods (three
// slices), and checks each flip rewrites one slice only.
func TestReadinessFlipLatency(t *testing.T) {
	client := start(t)
	ctx := context.Background()
	const ns, n, flips = "default", 250, 30
	labels := map[string]string{"app": "web"}
	svc := webService("web")
	svc.Spec.Ports = svc.Spec.Ports[:1]
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podsByName := make([]*corev1.Pod, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			podsByName[i] = runPod(t, ctx, client, ns, fmt.Sprintf("web-%03d", i), i, "node-a", labels, true)
		}()
	}
	wg.Wait()
	var rv string
	eventually(t, "all endpoints published", func() (bool, error) {
		l, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, err
		}
		rv = l.ResourceVersion
		ready := 0
		for _, e := range sliceEndpointsByPod(l.Items) {
			if *e.Conditions.Ready {
				ready++
			}
		}
		return ready == n && len(l.Items) == 3, nil
	})
	w, err := client.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=web", ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	var lat, sinceAck []time.Duration
	for f := range flips {
		// Even flips take a pod out of service, odd ones bring it back.
		i := (f / 2 * 37) % n
		pod := podsByName[i]
		ready := f%2 == 1
		setReady(pod, ready)
		began := time.Now()
		updated, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		podsByName[i] = updated
		acked := time.Now()
		// Wait for the slice event showing it; count slice writes.
		writes := 0
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case ev := <-w.ResultChan():
				if ev.Type == watch.Error {
					t.Fatalf("watch error: %+v", ev.Object)
				}
				es := ev.Object.(*discoveryv1.EndpointSlice)
				writes++
				for _, e := range es.Endpoints {
					if e.TargetRef.Name == pod.Name && *e.Conditions.Ready == ready {
						lat = append(lat, time.Since(began))
						sinceAck = append(sinceAck, time.Since(acked))
						break wait
					}
				}
			case <-deadline:
				t.Fatalf("flip %d of %s not seen within 10s", f, pod.Name)
			}
		}
		if writes != 1 {
			t.Errorf("flip %d took %d slice writes, want 1", f, writes)
		}
	}
	// No stray writes after the last flip.
	select {
	case ev := <-w.ResultChan():
		t.Errorf("unexpected slice event after the flips: %s", ev.Type)
	case <-time.After(200 * time.Millisecond):
	}
	summary := func(ds []time.Duration) string {
		sorted := slices.Clone(ds)
		slices.Sort(sorted)
		q := func(f float64) time.Duration { return sorted[int(f*float64(len(sorted)-1))].Round(time.Microsecond) }
		return fmt.Sprintf("min %v p50 %v p90 %v max %v", q(0), q(0.5), q(0.9), q(1))
	}
	t.Logf("pod readiness -> slice update, %d flips over %d pods in 3 slices", len(lat), n)
	t.Logf("  from the pod status write:          %s", summary(lat))
	t.Logf("  from the API's answer to that write: %s", summary(sinceAck))
	slices.Sort(lat)
	if p50 := lat[len(lat)/2]; p50 > time.Second {
		t.Errorf("median readiness propagation %v, want well under a second", p50)
	}
}
