package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Labels every simulated node carries.
const (
	LabelType         = "type"
	LabelTypeValue    = "skiff-sim"
	instanceTypeValue = "sim"
	kubeletPort       = 10250
)

// Address plan: node i has InternalIP 10.41.0.0 + i + 1 and pod range
// 10.42.0.0/24 + i (10.42.i.0/24 for the first 256 nodes, then 10.43...).
var (
	nodeIPBase = netip.MustParseAddr("10.41.0.0")
	podIPBase  = netip.MustParseAddr("10.42.0.0")
)

// maxPodsPerNode is what a /24 holds after network, gateway (.1) and
// broadcast.
const maxPodsPerNode = 253

// simNode is what the simulator knows of one of its nodes.
type simNode struct {
	name   string
	index  int
	hostIP string
	cidr   netip.Prefix
}

func newSimNode(prefix string, i int) simNode {
	return simNode{
		name:   fmt.Sprintf("%s%d", prefix, i),
		index:  i,
		hostIP: addToAddr(nodeIPBase, uint32(i)+1).String(),
		cidr:   netip.PrefixFrom(addToAddr(podIPBase, uint32(i)<<8), 24),
	}
}

// addToAddr adds n to an IPv4 address.
func addToAddr(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// stableHex is a deterministic hex digest of the parts, for IDs that must
// not change across restarts of the simulator.
func stableHex(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// nodeObject is the Node the simulator registers for n: labels, spec and
// the status it reports at now.
func nodeObject(n simNode, o Options, now time.Time) *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:           n.name,
		corev1.LabelOSStable:           "linux",
		corev1.LabelArchStable:         "amd64",
		corev1.LabelInstanceTypeStable: instanceTypeValue,
		LabelType:                      LabelTypeValue,
	}
	if o.Zones > 0 {
		labels[corev1.LabelTopologyZone] = fmt.Sprintf("zone-%d", n.index%o.Zones)
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: labels},
		Spec: corev1.NodeSpec{
			PodCIDR:    n.cidr.String(),
			PodCIDRs:   []string{n.cidr.String()},
			ProviderID: "sim://" + n.name,
		},
		Status: nodeStatus(n, o, now, nil),
	}
}

// nodeStatus is the status n reports at now. Conditions keep their
// lastTransitionTime from prev when their status is unchanged.
func nodeStatus(n simNode, o Options, now time.Time, prev *corev1.NodeStatus) corev1.NodeStatus {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse(o.CPU),
		corev1.ResourceMemory:           resource.MustParse(o.Memory),
		corev1.ResourcePods:             *resource.NewQuantity(int64(o.Pods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
		"hugepages-1Gi":                 resource.MustParse("0"),
		"hugepages-2Mi":                 resource.MustParse("0"),
	}
	beat := metav1.NewTime(now.Truncate(time.Second))
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: beat, LastTransitionTime: beat}
		if prev != nil {
			for _, p := range prev.Conditions {
				if p.Type == t && p.Status == s && !p.LastTransitionTime.IsZero() {
					c.LastTransitionTime = p.LastTransitionTime
				}
			}
		}
		return c
	}
	id := stableHex("node", n.name)
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.hostIP},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: kubeletPort}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               id[:32],
			SystemUUID:              fmt.Sprintf("%s-%s-%s-%s-%s", id[32:40], id[40:44], id[44:48], id[48:52], id[52:64]),
			BootID:                  stableHex("boot", n.name)[:32],
			KernelVersion:           "6.1.0-sim",
			OSImage:                 "Skiff simulated node",
			ContainerRuntimeVersion: "sim://1.0.0",
			KubeletVersion:          o.KubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            "amd64",
		},
	}
}

// statusCurrent says whether a node's status already says what the
// simulator would report, heartbeat times aside.
func statusCurrent(cur, want *corev1.NodeStatus) bool {
	strip := func(s *corev1.NodeStatus) *corev1.NodeStatus {
		c := s.DeepCopy()
		for i := range c.Conditions {
			c.Conditions[i].LastHeartbeatTime = metav1.Time{}
			c.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		c.Images, c.VolumesInUse, c.VolumesAttached = nil, nil, nil
		return c
	}
	return equality.Semantic.DeepEqual(strip(cur), strip(want))
}

// lastHeartbeat is the Ready condition's heartbeat, or zero.
func lastHeartbeat(s *corev1.NodeStatus) time.Time {
	for _, c := range s.Conditions {
		if c.Type == corev1.NodeReady {
			return c.LastHeartbeatTime.Time
		}
	}
	return time.Time{}
}

// nextSlot is the first instant strictly after t of the form
// origin + k*period for an integer k. A fleet spreads its periodic writes
// by giving node i the origin start + i*period/N.
func nextSlot(origin time.Time, period time.Duration, t time.Time) time.Time {
	d := t.Sub(origin)
	k := d / period
	if d < 0 && d%period != 0 {
		k-- // round towards minus infinity
	}
	return origin.Add((k + 1) * period)
}

// slotOrigin is node i's origin among n nodes sharing period from start.
func slotOrigin(start time.Time, period time.Duration, i, n int) time.Time {
	return start.Add(time.Duration(int64(period) * int64(i) / int64(n)))
}

// statusDue says when a node whose status was last posted at beat (to the
// second, as the API stores it) should post again: its first slot after
// the second that beat stands for.
func statusDue(origin time.Time, period time.Duration, beat time.Time) time.Time {
	if beat.IsZero() {
		return time.Time{} // never posted: now
	}
	return nextSlot(origin, period, beat.Add(time.Second))
}

// leaseDurationSeconds is four renewal intervals, at least one second.
func leaseDurationSeconds(interval time.Duration) int32 {
	s := int32((4*interval + time.Second - 1) / time.Second)
	return max(s, 1)
}

// nodeLease is the Lease of node n (uid is the Node's), renewed at now.
func nodeLease(n simNode, uid types.UID, interval time.Duration, now time.Time) *coordinationv1.Lease {
	holder := n.name
	dur := leaseDurationSeconds(interval)
	renew := metav1.NewMicroTime(now)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:      n.name,
			Namespace: corev1.NamespaceNodeLease,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: n.name, UID: uid,
			}},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, RenewTime: &renew},
	}
}
