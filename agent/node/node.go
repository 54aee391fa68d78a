package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// Config describes the node.
type Config struct {
	Name        string
	Client      kubernetes.Interface
	Addresses   []netip.Addr // InternalIP addresses, first is primary
	Hostname    string
	Labels      map[string]string // added to the well-known ones at registration
	Annotations map[string]string // kept on the Node
	Taints      []corev1.Taint    // registered with the node
	KubeletPort int32             // the agent's API port (daemonEndpoints)
	DataDir     string            // whose filesystem is the node's ephemeral storage
	MaxPods     int64             // default 110
	// RuntimeVersion is e.g. "containerd://1.6.20"; Version the agent's.
	RuntimeVersion, Version string
	// Ready reports whether the node can run pods (runtime and pod network
	// up), and why not.
	Ready func(ctx context.Context) (bool, string)
	// Images lists the images on the node (node.status.images), optional.
	Images func(ctx context.Context) []corev1.ContainerImage
	Log    *slog.Logger
	Clock  clock.WithTicker
}

// Heartbeat periods, the kubelet's defaults.
const (
	leaseDuration   = 40 * time.Second
	renewInterval   = 10 * time.Second
	reportEvery     = 5 * time.Minute
	statusCheckTick = 10 * time.Second
)

// Keeper registers and maintains the Node and its Lease.
type Keeper struct {
	cfg      Config
	log      *slog.Logger
	poke     chan struct{}
	lastSent *corev1.NodeStatus
	lastAt   time.Time
}

// New checks the config and fills in defaults.
func New(cfg Config) (*Keeper, error) {
	if cfg.Name == "" || cfg.Client == nil {
		return nil, fmt.Errorf("node: name and client are required")
	}
	if cfg.MaxPods == 0 {
		cfg.MaxPods = 110
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Ready == nil {
		cfg.Ready = func(context.Context) (bool, string) { return true, "" }
	}
	return &Keeper{cfg: cfg, log: cfg.Log.With("component", "node"), poke: make(chan struct{}, 1)}, nil
}

// Register creates the Node, or brings an existing one's labels and
// addresses up to date, and writes a first status.
func (k *Keeper) Register(ctx context.Context) (*corev1.Node, error) {
	nodes := k.cfg.Client.CoreV1().Nodes()
	lbls := map[string]string{
		corev1.LabelHostname: k.cfg.Name,
		corev1.LabelOSStable: "linux",
		corev1.LabelArchStable: func() string {
			return systemInfo("", "").Architecture
		}(),
	}
	for key, v := range k.cfg.Labels {
		lbls[key] = v
	}
	n, err := nodes.Get(ctx, k.cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		ann := map[string]string{"node.alpha.kubernetes.io/ttl": "0"}
		for key, v := range k.cfg.Annotations {
			ann[key] = v
		}
		n = &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.Name, Labels: lbls, Annotations: ann},
			Spec:       corev1.NodeSpec{Taints: k.cfg.Taints},
		}
		if n, err = nodes.Create(ctx, n, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("registering node %s: %w", k.cfg.Name, err)
		}
		k.log.Info("node registered", "node", k.cfg.Name)
	case err != nil:
		return nil, fmt.Errorf("reading node %s: %w", k.cfg.Name, err)
	default:
		changed := false
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		for key, v := range lbls {
			if n.Labels[key] != v {
				n.Labels[key] = v
				changed = true
			}
		}
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		for key, v := range k.cfg.Annotations {
			if n.Annotations[key] != v {
				n.Annotations[key] = v
				changed = true
			}
		}
		if changed {
			if n, err = nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
				return nil, fmt.Errorf("updating node %s: %w", k.cfg.Name, err)
			}
		}
	}
	if err := k.report(ctx, true); err != nil {
		return nil, err
	}
	if err := k.renewLease(ctx, n); err != nil {
		k.log.Warn("renewing lease", "err", err)
	}
	return nodes.Get(ctx, k.cfg.Name, metav1.GetOptions{})
}

// Poke asks for a status report now (readiness changed).
func (k *Keeper) Poke() {
	select {
	case k.poke <- struct{}{}:
	default:
	}
}

// Run renews the lease and reports status until ctx ends.
func (k *Keeper) Run(ctx context.Context) error {
	lease := k.cfg.Clock.NewTicker(renewInterval)
	defer lease.Stop()
	status := k.cfg.Clock.NewTicker(statusCheckTick)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-lease.C():
			if err := k.renewLease(ctx, nil); err != nil && ctx.Err() == nil {
				k.log.Warn("renewing lease", "err", err)
			}
		case <-status.C():
			if err := k.report(ctx, false); err != nil && ctx.Err() == nil {
				k.log.Warn("reporting node status", "err", err)
			}
		case <-k.poke:
			if err := k.report(ctx, false); err != nil && ctx.Err() == nil {
				k.log.Warn("reporting node status", "err", err)
			}
		}
	}
}

// renewLease creates or renews the node's Lease in kube-node-lease.
func (k *Keeper) renewLease(ctx context.Context, n *corev1.Node) error {
	leases := k.cfg.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(k.cfg.Clock.Now())
	l, err := leases.Get(ctx, k.cfg.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if n == nil {
			if n, err = k.cfg.Client.CoreV1().Nodes().Get(ctx, k.cfg.Name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.Name, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(k.cfg.Name),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity = ptr.To(k.cfg.Name)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDuration / time.Second))
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// report writes the node status if it changed, or if the last write is
// older than five minutes (or force).
func (k *Keeper) report(ctx context.Context, force bool) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error { return k.reportOnce(ctx, force) })
}

func (k *Keeper) reportOnce(ctx context.Context, force bool) error {
	nodes := k.cfg.Client.CoreV1().Nodes()
	n, err := nodes.Get(ctx, k.cfg.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := k.cfg.Clock.Now()
	st := k.status(ctx, n, now)
	if !force && k.lastSent != nil && now.Sub(k.lastAt) < reportEvery && sameStatus(k.lastSent, st) && sameStatus(&n.Status, st) {
		return nil
	}
	n.Status = *st
	if _, err := nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return err
		}
		return fmt.Errorf("writing node status: %w", err)
	}
	k.lastSent, k.lastAt = st, now
	return nil
}

// sameStatus compares statuses ignoring heartbeat times.
func sameStatus(a, b *corev1.NodeStatus) bool {
	strip := func(s *corev1.NodeStatus) *corev1.NodeStatus {
		c := s.DeepCopy()
		for i := range c.Conditions {
			c.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return c
	}
	return apiequality.Semantic.DeepEqual(strip(a), strip(b))
}

// status computes the node status at now, keeping transition times of
// conditions that did not change.
func (k *Keeper) status(ctx context.Context, n *corev1.Node, now time.Time) *corev1.NodeStatus {
	h := readHost(k.cfg.DataDir)
	st := n.Status.DeepCopy()
	c := capacity(h, k.cfg.MaxPods)
	st.Capacity = c
	st.Allocatable = c.DeepCopy()
	st.Addresses = nil
	for _, a := range k.cfg.Addresses {
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a.String()})
	}
	if k.cfg.Hostname != "" {
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: k.cfg.Hostname})
	}
	st.DaemonEndpoints.KubeletEndpoint.Port = k.cfg.KubeletPort
	st.NodeInfo = systemInfo(k.cfg.RuntimeVersion, k.cfg.Version)
	if k.cfg.Images != nil {
		st.Images = k.cfg.Images(ctx)
	}
	ts := metav1.NewTime(now.Truncate(time.Second))
	set := func(t corev1.NodeConditionType, status corev1.ConditionStatus, reason, msg string) {
		for i := range st.Conditions {
			cond := &st.Conditions[i]
			if cond.Type == t {
				if cond.Status != status {
					cond.LastTransitionTime = ts
				}
				cond.Status, cond.Reason, cond.Message, cond.LastHeartbeatTime = status, reason, msg, ts
				return
			}
		}
		st.Conditions = append(st.Conditions, corev1.NodeCondition{Type: t, Status: status, Reason: reason, Message: msg, LastHeartbeatTime: ts, LastTransitionTime: ts})
	}
	pressure := func(t corev1.NodeConditionType, on bool, okReason, okMsg, badReason, badMsg string) {
		if on {
			set(t, corev1.ConditionTrue, badReason, badMsg)
		} else {
			set(t, corev1.ConditionFalse, okReason, okMsg)
		}
	}
	pressure(corev1.NodeMemoryPressure, memoryPressure(h), "KubeletHasSufficientMemory", "kubelet has sufficient memory available", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
	pressure(corev1.NodeDiskPressure, diskPressure(h), "KubeletHasNoDiskPressure", "kubelet has no disk pressure", "KubeletHasDiskPressure", "kubelet has disk pressure")
	pressure(corev1.NodePIDPressure, pidPressure(h), "KubeletHasSufficientPID", "kubelet has sufficient PID available", "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
	if ok, why := k.cfg.Ready(ctx); ok {
		set(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status")
	} else {
		set(corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady", why)
	}
	return st
}
