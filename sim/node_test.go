package sim

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func sec(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func TestNextSlot(t *testing.T) {
	origin := t0.Add(sec(2.5))
	tests := []struct {
		name string
		at   time.Duration // from t0
		want time.Duration // from t0
	}{
		{"before the origin", 0, sec(2.5)},
		{"long before the origin", -sec(30), sec(-27.5)},
		{"exactly on a past slot, before origin", -sec(7.5), sec(2.5)},
		{"on the origin: strictly after", sec(2.5), sec(12.5)},
		{"between slots", sec(5), sec(12.5)},
		{"just before a slot", sec(12.4), sec(12.5)},
		{"on a later slot", sec(22.5), sec(32.5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextSlot(origin, 10*time.Second, t0.Add(tt.at)); !got.Equal(t0.Add(tt.want)) {
				t.Errorf("nextSlot(+%v) = +%v, want +%v", tt.at, got.Sub(t0), tt.want)
			}
		})
	}
}

func TestSlotOriginSpreadsTheFleet(t *testing.T) {
	want := []time.Duration{0, sec(2.5), sec(5), sec(7.5)}
	for i, w := range want {
		if got := slotOrigin(t0, 10*time.Second, i, 4).Sub(t0); got != w {
			t.Errorf("node %d origin +%v, want +%v", i, got, w)
		}
	}
	// Large fleets do not overflow: 50,000 nodes over a minute.
	if got := slotOrigin(t0, time.Minute, 49999, 50000).Sub(t0); got <= sec(59.99) || got >= time.Minute {
		t.Errorf("last of 50000 origins at +%v", got)
	}
}

func TestStatusDue(t *testing.T) {
	origin := t0.Add(sec(10.5))
	tests := []struct {
		name string
		beat time.Time
		want time.Time
	}{
		{"never posted", time.Time{}, time.Time{}},
		// Posted at 10.6s in its slot, stored as 10s: the next slot, not
		// the one just served.
		{"stored to the second inside its slot", t0.Add(sec(10)), t0.Add(sec(70.5))},
		{"posted late", t0.Add(sec(11)), t0.Add(sec(70.5))},
		{"posted just before a slot second", t0.Add(sec(69)), t0.Add(sec(70.5))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusDue(origin, time.Minute, tt.beat); !got.Equal(tt.want) {
				t.Errorf("statusDue = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewSimNodeAddresses(t *testing.T) {
	tests := []struct {
		i            int
		name, host   string
		cidr         string
		firstPodAddr string
	}{
		{0, "sim-0", "10.41.0.1", "10.42.0.0/24", "10.42.0.2"},
		{1, "sim-1", "10.41.0.2", "10.42.1.0/24", "10.42.1.2"},
		{255, "sim-255", "10.41.1.0", "10.42.255.0/24", "10.42.255.2"},
		{256, "sim-256", "10.41.1.1", "10.43.0.0/24", "10.43.0.2"},
		{4999, "sim-4999", "10.41.19.136", "10.61.135.0/24", "10.61.135.2"},
	}
	for _, tt := range tests {
		n := newSimNode("sim-", tt.i)
		if n.name != tt.name || n.hostIP != tt.host || n.cidr.String() != tt.cidr {
			t.Errorf("node %d = %s %s %s, want %s %s %s", tt.i, n.name, n.hostIP, n.cidr, tt.name, tt.host, tt.cidr)
		}
		ip, err := newIPAM().assign(n, "ns/p", "u", "")
		if err != nil || ip != tt.firstPodAddr {
			t.Errorf("node %d first pod address %s (%v), want %s", tt.i, ip, err, tt.firstPodAddr)
		}
	}
	last := newSimNode("sim-", maxNodes-1)
	if !last.cidr.Addr().Is4() || last.cidr.Addr().As4()[0] != 10 {
		t.Errorf("the last node's pod range %s leaves 10.0.0.0/8", last.cidr)
	}
}

func TestNodeObject(t *testing.T) {
	o := Options{Nodes: 3, Zones: 2}.withDefaults()
	n := nodeObject(newSimNode("sim-", 3), o, t0.Add(sec(1.7)))
	wantLabels := map[string]string{
		"kubernetes.io/hostname":           "sim-3",
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		"node.kubernetes.io/instance-type": "sim",
		"type":                             "skiff-sim",
		"topology.kubernetes.io/zone":      "zone-1",
	}
	for k, v := range wantLabels {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, n.Labels[k], v)
		}
	}
	for res, want := range map[corev1.ResourceName]string{"cpu": "8", "memory": "32Gi", "pods": "110"} {
		if q := n.Status.Capacity[res]; q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("capacity %s = %s, want %s", res, q.String(), want)
		}
		if q := n.Status.Allocatable[res]; q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("allocatable %s = %s, want %s", res, q.String(), want)
		}
	}
	if n.Spec.PodCIDR != "10.42.3.0/24" || n.Spec.ProviderID != "sim://sim-3" {
		t.Errorf("spec %+v", n.Spec)
	}
	want := map[corev1.NodeConditionType]corev1.ConditionStatus{
		corev1.NodeReady: corev1.ConditionTrue, corev1.NodeMemoryPressure: corev1.ConditionFalse,
		corev1.NodeDiskPressure: corev1.ConditionFalse, corev1.NodePIDPressure: corev1.ConditionFalse,
	}
	for _, c := range n.Status.Conditions {
		if want[c.Type] != c.Status {
			t.Errorf("condition %s = %s, want %s", c.Type, c.Status, want[c.Type])
		}
		if !c.LastHeartbeatTime.Time.Equal(t0.Add(time.Second)) {
			t.Errorf("condition %s heartbeat %v, want the second of now", c.Type, c.LastHeartbeatTime)
		}
		delete(want, c.Type)
	}
	if len(want) != 0 {
		t.Errorf("missing conditions %v", want)
	}
	if n.Status.NodeInfo.KubeletVersion != "v1.37.2" || n.Status.NodeInfo.MachineID == "" {
		t.Errorf("nodeInfo %+v", n.Status.NodeInfo)
	}
	if z := nodeObject(newSimNode("sim-", 3), Options{Nodes: 3}.withDefaults(), t0); z.Labels["topology.kubernetes.io/zone"] != "" {
		t.Errorf("zone label without zones: %q", z.Labels["topology.kubernetes.io/zone"])
	}
}

func TestNodeStatusKeepsTransitionsAndDetectsChange(t *testing.T) {
	o := Options{Nodes: 1}.withDefaults()
	n := newSimNode("sim-", 0)
	first := nodeStatus(n, o, t0, nil)
	later := nodeStatus(n, o, t0.Add(time.Minute), &first)
	for _, c := range later.Conditions {
		if !c.LastTransitionTime.Time.Equal(t0) || !c.LastHeartbeatTime.Time.Equal(t0.Add(time.Minute)) {
			t.Errorf("condition %s transition %v heartbeat %v", c.Type, c.LastTransitionTime, c.LastHeartbeatTime)
		}
	}
	if !statusCurrent(&first, &later) {
		t.Error("statuses differing only in heartbeats are not current")
	}
	unready := first.DeepCopy()
	unready.Conditions[3].Status = corev1.ConditionUnknown // what a lifecycle controller writes
	if statusCurrent(unready, &later) {
		t.Error("a node marked Unknown counts as current")
	}
	bigger := Options{Nodes: 1, CPU: "16"}.withDefaults()
	if s := nodeStatus(n, bigger, t0, &first); statusCurrent(&first, &s) {
		t.Error("a capacity change counts as current")
	}
	if got := lastHeartbeat(&later); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("lastHeartbeat = %v", got)
	}
}

func TestLeaseDurationSeconds(t *testing.T) {
	for _, tt := range []struct {
		interval time.Duration
		want     int32
	}{{10 * time.Second, 40}, {500 * time.Millisecond, 2}, {100 * time.Millisecond, 1}, {sec(1.1), 5}} {
		if got := leaseDurationSeconds(tt.interval); got != tt.want {
			t.Errorf("leaseDurationSeconds(%v) = %d, want %d", tt.interval, got, tt.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"defaults", Options{Nodes: 1}, false},
		{"no nodes", Options{}, true},
		{"too many nodes", Options{Nodes: maxNodes + 1}, true},
		{"bad cpu", Options{Nodes: 1, CPU: "eight"}, true},
		{"bad memory", Options{Nodes: 1, Memory: "lots"}, true},
		{"too many pods for a /24", Options{Nodes: 1, Pods: 300}, true},
		{"negative zones", Options{Nodes: 1, Zones: -1}, true},
		{"negative delay", Options{Nodes: 1, StartupDelay: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.withDefaults().validate(); (err != nil) != tt.wantErr {
				t.Errorf("validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
