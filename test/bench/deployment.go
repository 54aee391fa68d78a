package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/sim"
)

// deployNS is where the deployment measurement's Deployment goes.
const deployNS = "deploy"

// controllerWait is how long after creating the Deployment a ReplicaSet
// must appear; if none does, the build runs no Deployment controller and
// the measurement is skipped, not failed.
const controllerWait = 30 * time.Second

// errNoControllers says the server made no ReplicaSet for the Deployment.
var errNoControllers = errors.New("controllers not wired in this build")

// DeploymentResult is the end-to-end time of a Deployment of Replicas
// pods on Nodes simulated nodes, from its create to every pod Running and
// status.readyReplicas == Replicas. The milestones on the way are times
// from the same create.
type DeploymentResult struct {
	Replicas int `json:"replicas"`
	Nodes    int `json:"nodes"`
	// Skipped says why nothing was measured, if so.
	Skipped string `json:"skipped,omitempty"`

	Seconds           Stat `json:"create_to_all_running_and_ready_seconds"`
	ReplicaSetSeconds Stat `json:"replicaset_seconds"`
	PodsSeconds       Stat `json:"all_pods_created_seconds"`
	BoundSeconds      Stat `json:"all_pods_bound_seconds"`
	RunningSeconds    Stat `json:"all_pods_running_seconds"`
	ReadySeconds      Stat `json:"ready_replicas_seconds"`
	// PodsPerSecond is Replicas over Seconds.
	PodsPerSecond     Stat     `json:"pods_per_second"`
	NodesReadySeconds Stat     `json:"nodes_ready_seconds"`
	RSSAfterMiB       Stat     `json:"server_rss_after_mib"`
	SimErrors         []string `json:"sim_errors,omitempty"`
}

// deployRun is one run's milestones, from the Deployment's create.
type deployRun struct {
	rs, pods, bound, running, ready, done time.Duration
	nodesReady                            time.Duration
	rss                                   float64
	simErrors                             string
}

func measureDeployment(ctx context.Context, e *env) error {
	replicas, nodes := e.opts.deployReplicas, e.opts.deployNodes
	r := &DeploymentResult{Replicas: replicas, Nodes: nodes}
	e.rep.Deployment = r
	label := fmt.Sprintf("deployment %s replicas / %s nodes", countLabel(replicas), countLabel(nodes))
	var done, rs, pods, bound, running, ready, rate, nodesReady, rss []float64
	for i := range e.opts.cpRuns {
		run, err := deployOnce(ctx, e, replicas, nodes)
		if errors.Is(err, errNoControllers) {
			r.Skipped = fmt.Sprintf("%v (no ReplicaSet %s after the Deployment was created)", errNoControllers, controllerWait)
			e.rep.add(label, "skipped: %s", r.Skipped)
			e.progress("deployment: skipped: %s", r.Skipped)
			return nil
		}
		if err != nil {
			return fmt.Errorf("%d replicas on %d nodes: %w", replicas, nodes, err)
		}
		done = append(done, run.done.Seconds())
		rs = append(rs, run.rs.Seconds())
		pods = append(pods, run.pods.Seconds())
		bound = append(bound, run.bound.Seconds())
		running = append(running, run.running.Seconds())
		ready = append(ready, run.ready.Seconds())
		rate = append(rate, float64(replicas)/run.done.Seconds())
		nodesReady = append(nodesReady, run.nodesReady.Seconds())
		rss = append(rss, run.rss)
		if run.simErrors != "" {
			r.SimErrors = append(r.SimErrors, run.simErrors)
		}
		e.progress("deployment run %d/%d: %.2f s to %d Running and ready (ReplicaSet %.2f s, pods created %.2f s, bound %.2f s, Running %.2f s, readyReplicas %.2f s)",
			i+1, e.opts.cpRuns, done[i], replicas, rs[i], pods[i], bound[i], running[i], ready[i])
	}
	r.Seconds, r.ReplicaSetSeconds, r.PodsSeconds = Summarize(done), Summarize(rs), Summarize(pods)
	r.BoundSeconds, r.RunningSeconds, r.ReadySeconds = Summarize(bound), Summarize(running), Summarize(ready)
	r.PodsPerSecond, r.NodesReadySeconds, r.RSSAfterMiB = Summarize(rate), Summarize(nodesReady), Summarize(rss)
	e.rep.add(label, "%s to all Running and readyReplicas=%d   (%.0f pods/s)", fmtStat(r.Seconds, "s", 2), replicas, r.PodsPerSecond.Median)
	e.rep.add(label+" milestones", "ReplicaSet %.2f s, all pods created %.2f s, bound %.2f s, Running %.2f s, readyReplicas %.2f s (medians)",
		r.ReplicaSetSeconds.Median, r.PodsSeconds.Median, r.BoundSeconds.Median, r.RunningSeconds.Median, r.ReadySeconds.Median)
	if len(r.SimErrors) > 0 {
		e.rep.add(label+" sim", "%s", r.SimErrors[0])
	}
	return nil
}

// deployOnce measures one Deployment on a fresh server with its
// controllers.
func deployOnce(ctx context.Context, e *env, replicas, nodes int) (deployRun, error) {
	var run deployRun
	err := withServer(ctx, e, "deployment", nil, func(s *Server) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cfg, err := s.RESTConfig()
		if err != nil {
			return err
		}
		admin, err := newClient(cfg)
		if err != nil {
			return err
		}
		if err := waitLeader(ctx, admin, "kube-scheduler", leaderTimeout); err != nil {
			return err
		}
		ready, err := watchReadyNodes(ctx, admin)
		if err != nil {
			return err
		}
		simClient, err := newClient(cfg)
		if err != nil {
			return err
		}
		t0 := time.Now()
		fl := startFleet(ctx, simClient, sim.Options{Nodes: nodes}, e.lab.logs)
		defer func() {
			if err := fl.Stop(); err != nil {
				e.progress("deployment: %v", err)
			}
		}()
		if err := ready.waitReady(ctx, nodes, fl); err != nil {
			return err
		}
		run.nodesReady = time.Since(t0)
		e.progress("deployment: %d nodes Ready in %.1f s", nodes, run.nodesReady.Seconds())
		// An unelected controller manager would show as a missing
		// ReplicaSet below; this wait only keeps its election out of
		// the figure when there is one.
		if err := waitLeader(ctx, admin, "kube-controller-manager", 10*time.Second); err != nil && ctx.Err() == nil {
			e.progress("deployment: %v; going on", err)
		}
		if err := createNamespace(ctx, admin, deployNS); err != nil {
			return err
		}
		w, err := watchDeployment(ctx, admin, deployNS, replicas)
		if err != nil {
			return err
		}
		start := time.Now()
		if _, err := admin.AppsV1().Deployments(deployNS).Create(ctx, benchDeployment("bench", replicas), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create deployment: %w", err)
		}
		for w.snapshot().replicaSets == 0 {
			if time.Since(start) > controllerWait {
				return errNoControllers
			}
			if err := sleep(ctx, waitPoll); err != nil {
				return err
			}
		}
		if err := waitProgress(ctx, fmt.Sprintf("%d Running pods and readyReplicas %d", replicas, replicas), func() (bool, int, string, error) {
			if err := fl.failed(); err != nil {
				return false, 0, "", err
			}
			st := w.snapshot()
			return st.done(replicas), st.progress(), st.String(), nil
		}); err != nil {
			return err
		}
		st := w.snapshot()
		run.rs, run.pods, run.bound = st.rsAt.Sub(start), st.podsAt.Sub(start), st.boundAt.Sub(start)
		run.running, run.ready = st.runningAt.Sub(start), st.readyAt.Sub(start)
		run.done = max(run.running, run.ready)
		run.rss = serverRSS(s)
		run.simErrors = fl.log.summary()
		return nil
	})
	return run, err
}

// benchDeployment is a Deployment of replicas small pods.
func benchDeployment(name string, replicas int) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       smallPodSpec(),
			},
		},
	}
}

// deployWatch follows a namespace's ReplicaSets, pods and Deployment and
// records when each milestone was (last) reached.
type deployWatch struct {
	mu     sync.Mutex
	target int
	pods   map[string]podProgress
	st     deployState
}

// podProgress is what counts of one pod.
type podProgress struct{ bound, running bool }

// deployState is the counts and the time each last reached its target.
type deployState struct {
	replicaSets           int
	pods, bound, running  int
	readyReplicas         int32
	rsAt, podsAt, boundAt time.Time
	runningAt, readyAt    time.Time
}

func (s deployState) done(target int) bool {
	return s.running >= target && int(s.readyReplicas) >= target
}

// progress grows with every step the rollout takes.
func (s deployState) progress() int {
	return s.replicaSets + s.pods + s.bound + s.running + int(s.readyReplicas)
}

func (s deployState) String() string {
	return fmt.Sprintf("%d ReplicaSets, %d pods, %d bound, %d Running, readyReplicas %d",
		s.replicaSets, s.pods, s.bound, s.running, s.readyReplicas)
}

// watchDeployment starts watches on ns's ReplicaSets, pods and
// Deployments and returns once they have synced.
func watchDeployment(ctx context.Context, c kubernetes.Interface, ns string, target int) (*deployWatch, error) {
	w := &deployWatch{target: target, pods: make(map[string]podProgress, target)}
	rsInf := appsinformers.NewReplicaSetInformer(c, ns, 0, cache.Indexers{})
	podInf := coreinformers.NewPodInformer(c, ns, 0, cache.Indexers{})
	depInf := appsinformers.NewDeploymentInformer(c, ns, 0, cache.Indexers{})
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandlerFuncs
	}{
		{rsInf, cache.ResourceEventHandlerFuncs{AddFunc: func(any) {
			w.update(func(s *deployState, now time.Time) {
				s.replicaSets++
				if s.replicaSets == 1 {
					s.rsAt = now
				}
			})
		}}},
		{podInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.pod(obj, false) },
			UpdateFunc: func(_, obj any) { w.pod(obj, false) },
			DeleteFunc: func(obj any) { w.pod(obj, true) },
		}},
		{depInf, cache.ResourceEventHandlerFuncs{
			AddFunc:    w.deployment,
			UpdateFunc: func(_, obj any) { w.deployment(obj) },
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("watch: %w", err)
		}
		go h.inf.RunWithContext(ctx)
	}
	if !cache.WaitForCacheSync(ctx.Done(), rsInf.HasSynced, podInf.HasSynced, depInf.HasSynced) {
		return nil, fmt.Errorf("watches did not sync: %w", ctx.Err())
	}
	return w, nil
}

func (w *deployWatch) update(f func(*deployState, time.Time)) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	f(&w.st, now)
}

// pod accounts for a pod's new state (or its deletion).
func (w *deployWatch) pod(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	old, had := w.pods[p.Name]
	var cur podProgress
	if !deleted {
		cur = podProgress{
			bound:   p.Spec.NodeName != "",
			running: p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil,
		}
		w.pods[p.Name] = cur
	} else {
		delete(w.pods, p.Name)
	}
	s := &w.st
	s.pods += b2i(!deleted) - b2i(had)
	s.bound += b2i(cur.bound) - b2i(old.bound)
	s.running += b2i(cur.running) - b2i(old.running)
	reach(&s.podsAt, s.pods, w.target, now)
	reach(&s.boundAt, s.bound, w.target, now)
	reach(&s.runningAt, s.running, w.target, now)
}

func (w *deployWatch) deployment(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.st.readyReplicas = d.Status.ReadyReplicas
	reach(&w.st.readyAt, int(d.Status.ReadyReplicas), w.target, now)
}

func (w *deployWatch) snapshot() deployState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

// reach keeps *at as the time count last rose to target: set when it
// first stands at or above target, cleared when it falls below.
func reach(at *time.Time, count, target int, now time.Time) {
	switch {
	case count < target:
		*at = time.Time{}
	case at.IsZero():
		*at = now
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
