package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/sim"
)

// What the control-plane measurements share: simulated node fleets run in
// this process, a watch on their readiness, and patient waits that give up
// only when nothing moves.

// stallTimeout is how long a wait may see no progress at all before it
// fails; waits that progress may take as long as they need.
const stallTimeout = 60 * time.Second

// waitPoll is how often the waits look.
const waitPoll = 100 * time.Millisecond

// fleet is one sim.Run in a goroutine of the benchmark.
type fleet struct {
	cancel context.CancelFunc
	done   chan error
	log    *logCounter
	err    error
	once   sync.Once
}

// startFleet runs a simulated fleet on client until Stop or ctx ends. The
// simulator's log goes to a counter (and to logs, if set).
func startFleet(ctx context.Context, client kubernetes.Interface, opts sim.Options, logs io.Writer) *fleet {
	ctx, cancel := context.WithCancel(ctx)
	f := &fleet{cancel: cancel, done: make(chan error, 1), log: newLogCounter(logs)}
	opts.Log = slog.New(f.log)
	go func() { f.done <- sim.Run(ctx, client, opts) }()
	return f
}

// failed is the simulator's error if it stopped by itself.
func (f *fleet) failed() error {
	select {
	case err := <-f.done:
		f.once.Do(func() { f.err = fmt.Errorf("simulator stopped: %v", err) })
		f.done <- err // keep it for Stop
		return f.err
	default:
		return nil
	}
}

// Stop ends the simulator and waits for it; its nodes stay registered
// (the server they are registered with is thrown away next).
func (f *fleet) Stop() error {
	f.cancel()
	err := <-f.done
	f.done <- err
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	return nil
}

// stopFleets stops every fleet and joins their errors.
func stopFleets(fs []*fleet) error {
	var errs []error
	for _, f := range fs {
		errs = append(errs, f.Stop())
	}
	return errors.Join(errs...)
}

// logCounter is a slog handler that counts the simulator's warnings and
// errors (failed API writes it will retry) and keeps the first, forwarding
// everything to fwd when the benchmark runs with -v.
type logCounter struct {
	n     *atomic.Int64
	first *atomic.Pointer[string]
	fwd   slog.Handler
}

func newLogCounter(logs io.Writer) *logCounter {
	h := &logCounter{n: new(atomic.Int64), first: new(atomic.Pointer[string])}
	if logs != nil {
		h.fwd = slog.NewTextHandler(logs, nil)
	}
	return h
}

func (h *logCounter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || (h.fwd != nil && h.fwd.Enabled(ctx, l))
}

func (h *logCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		msg := b.String()
		h.first.CompareAndSwap(nil, &msg)
	}
	if h.fwd != nil && h.fwd.Enabled(ctx, r.Level) {
		return h.fwd.Handle(ctx, r)
	}
	return nil
}

func (h *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	if h.fwd != nil {
		c.fwd = h.fwd.WithAttrs(as)
	}
	return &c
}

func (h *logCounter) WithGroup(name string) slog.Handler {
	c := *h
	if h.fwd != nil {
		c.fwd = h.fwd.WithGroup(name)
	}
	return &c
}

// summary is "" or "N warnings/errors, first: ...".
func (h *logCounter) summary() string {
	n := h.n.Load()
	if n == 0 {
		return ""
	}
	first := ""
	if p := h.first.Load(); p != nil {
		first = *p
	}
	return fmt.Sprintf("%d warnings/errors, first: %s", n, first)
}

// readyNodes watches the simulated nodes and counts the Ready ones.
type readyNodes struct {
	informer cache.SharedIndexInformer
	mu       sync.Mutex
	ready    map[string]bool
}

// watchReadyNodes starts a watch on every simulated node until ctx ends.
func watchReadyNodes(ctx context.Context, client kubernetes.Interface) (*readyNodes, error) {
	r := &readyNodes{ready: map[string]bool{}}
	r.informer = coreinformers.NewFilteredNodeInformer(client, 0, cache.Indexers{}, func(lo *metav1.ListOptions) {
		lo.LabelSelector = labels.SelectorFromSet(labels.Set{sim.LabelType: sim.LabelTypeValue}).String()
	})
	set := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			r.mu.Lock()
			r.ready[n.Name] = nodeReady(n)
			r.mu.Unlock()
		}
	}
	if _, err := r.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				r.mu.Lock()
				delete(r.ready, n.Name)
				r.mu.Unlock()
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("node watch: %w", err)
	}
	go r.informer.RunWithContext(ctx)
	return r, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// count is how many simulated nodes are Ready.
func (r *readyNodes) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ok := range r.ready {
		if ok {
			n++
		}
	}
	return n
}

// waitReady waits until want simulated nodes are Ready, failing if the
// count stands still for stallTimeout or a fleet stops.
func (r *readyNodes) waitReady(ctx context.Context, want int, fleets ...*fleet) error {
	return waitProgress(ctx, fmt.Sprintf("%d Ready nodes", want), func() (bool, int, string, error) {
		for _, f := range fleets {
			if err := f.failed(); err != nil {
				return false, 0, "", err
			}
		}
		n := r.count()
		return n >= want, n, fmt.Sprintf("%d Ready", n), nil
	})
}

// waitProgress polls check until it reports done. progress is any number
// that grows while things happen; if it stays the same for stallTimeout
// the wait fails, with check's last status.
func waitProgress(ctx context.Context, what string, check func() (done bool, progress int, status string, err error)) error {
	last, lastChange := -1, time.Now()
	for {
		done, progress, status, err := check()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if done {
			return nil
		}
		if progress != last {
			last, lastChange = progress, time.Now()
		} else if time.Since(lastChange) > stallTimeout {
			return fmt.Errorf("waiting for %s: no progress for %s (%s)", what, stallTimeout, status)
		}
		if err := sleep(ctx, waitPoll); err != nil {
			return err
		}
	}
}

// waitLeader waits until the named kube-system Lease has a holder: the
// scheduler or the controller manager has been elected and runs.
func waitLeader(ctx context.Context, c kubernetes.Interface, lease string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := c.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, lease, metav1.GetOptions{})
		switch {
		case err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "":
			return nil
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("lease %s: %w", lease, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s leader after %s", lease, timeout)
		}
		if err := sleep(ctx, waitPoll); err != nil {
			return err
		}
	}
}

// leaderTimeout bounds the wait for a freshly started server's elections.
const leaderTimeout = time.Minute

// smallPod is a bare pod with one container asking for little, so that
// tens fit each simulated node (8 CPUs, 32Gi, 110 pods).
func smallPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench-small"}},
		Spec:       smallPodSpec(),
	}
}

func smallPodSpec() corev1.PodSpec {
	return corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:  "app",
			Image: "registry.example.com/bench/app:1.0",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("16Mi"),
			}},
		}},
		TerminationGracePeriodSeconds: ptr(int64(0)),
	}
}

// smallPodKind creates smallPods with runCreators.
var smallPodKind = createKind{
	name:  "pod",
	bytes: jsonSize(smallPod("pod-000000")),
	create: func(ctx context.Context, c kubernetes.Interface, ns, name string) error {
		_, err := c.CoreV1().Pods(ns).Create(ctx, smallPod(name), metav1.CreateOptions{})
		return err
	},
}

// serverRSS is the server's VmRSS in MiB, or 0 if it cannot be read.
func serverRSS(s *Server) float64 {
	m, err := s.Mem()
	if err != nil {
		return 0
	}
	return mib(m.RSS)
}

// withServer starts a server on a fresh data dir, runs f, and then stops
// the server and removes the dir, whatever f returned.
func withServer(ctx context.Context, e *env, label string, extra []string, f func(*Server) error) error {
	dir := e.lab.NewDataDir(label)
	s, err := e.lab.Start(ctx, dir, extra...)
	if err != nil {
		return err
	}
	err = f(s)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w\nserver log tail:\n%s", err, s.LogTail(15))
	}
	if stopErr := s.Stop(); stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	if err != nil {
		return err
	}
	return e.lab.RemoveDataDir(dir)
}
