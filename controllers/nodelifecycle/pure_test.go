package nodelifecycle

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mkNode(ready corev1.ConditionStatus, beat time.Time, taints ...corev1.Taint) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))}}
	if ready != "" {
		n.Status.Conditions = []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: ready, Reason: "KubeletReady", LastHeartbeatTime: metav1.NewTime(beat), LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(beat)},
		}
	}
	n.Spec.Taints = taints
	return n
}

func mkLease(renew time.Time) *coordinationv1.Lease {
	r := metav1.NewMicroTime(renew)
	return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: &r}}
}

// TestHealthTransitions steps a fake clock through a node's life: renewals
// keep it alive however old their timestamps look; silence past the grace
// period makes it Unknown.
func TestHealthTransitions(t *testing.T) {
	const grace = 40 * time.Second
	clk := clocktesting.NewFakeClock(t0)
	node := mkNode(corev1.ConditionTrue, t0.Add(-10*time.Hour)) // skewed node clock
	lease := mkLease(t0.Add(-10 * time.Hour))

	var p *probe
	step := func(d time.Duration, renew bool) (*corev1.NodeStatus, time.Time) {
		clk.Step(d)
		if renew {
			lease = mkLease(lease.Spec.RenewTime.Add(10 * time.Second))
		}
		np := observe(p, node, lease, clk.Now())
		p = &np
		return assess(node, np, clk.Now(), grace, time.Minute)
	}
	if st, deadline := step(0, false); st != nil || !deadline.Equal(t0.Add(grace)) {
		t.Fatalf("first sight: status %v deadline %v, want none and t0+40s", st, deadline)
	}
	for i := 0; i < 6; i++ { // renewing every 10s for a minute
		if st, _ := step(10*time.Second, true); st != nil {
			t.Fatalf("renewing node marked at +%ds", (i+1)*10)
		}
	}
	if st, _ := step(39*time.Second, false); st != nil {
		t.Fatalf("marked after 39s of silence")
	}
	st, _ := step(time.Second, false)
	if st == nil {
		t.Fatalf("not marked after 40s of silence")
	}
	var got []string
	for _, c := range st.Conditions {
		got = append(got, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
		if c.Status == corev1.ConditionUnknown && c.Reason == reasonStatusUnknown && !c.LastTransitionTime.Time.Equal(clk.Now()) {
			t.Errorf("%s transition time %v, want now", c.Type, c.LastTransitionTime)
		}
		if c.Type == corev1.NodeReady && (!c.LastHeartbeatTime.Time.Equal(t0.Add(-10*time.Hour)) || c.Message != messageStatusUnknown) {
			t.Errorf("ready condition %+v: heartbeat must be kept, message %q", c, messageStatusUnknown)
		}
	}
	sort.Strings(got)
	want := "DiskPressure=Unknown/NodeStatusNeverUpdated MemoryPressure=Unknown/NodeStatusUnknown PIDPressure=Unknown/NodeStatusNeverUpdated Ready=Unknown/NodeStatusUnknown"
	if strings.Join(got, " ") != want {
		t.Errorf("conditions %s\nwant       %s", strings.Join(got, " "), want)
	}
	node.Status = *st
	if again, _ := step(time.Minute, false); again != nil {
		t.Errorf("already unknown: marked again")
	}
	// A status post (new heartbeat) brings it back within grace.
	node.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(t0)
	if _, deadline := step(time.Second, false); !deadline.Equal(clk.Now().Add(grace)) {
		t.Errorf("after a heartbeat: deadline %v, want now+grace", deadline)
	}
}

func TestStartupGrace(t *testing.T) {
	node := mkNode("", time.Time{})
	p := observe(nil, node, nil, t0)
	if st, _ := assess(node, p, t0.Add(50*time.Second), 40*time.Second, time.Minute); st != nil {
		t.Errorf("never-ready node marked within the startup grace")
	}
	st, _ := assess(node, p, t0.Add(time.Minute), 40*time.Second, time.Minute)
	if st == nil || conditionIn(st, corev1.NodeReady).Reason != reasonStatusNeverUpdated {
		t.Errorf("never-ready node after the startup grace: %+v", st)
	}
}

func taint(key string, effect corev1.TaintEffect) corev1.Taint {
	return corev1.Taint{Key: key, Effect: effect}
}

func render(ts []corev1.Taint) string {
	var out []string
	for _, t := range ts {
		out = append(out, strings.TrimPrefix(t.Key, "node.kubernetes.io/")+":"+string(t.Effect))
	}
	return strings.Join(out, ",")
}

func TestPlanTaints(t *testing.T) {
	ne := corev1.TaintEffectNoExecute
	ns := corev1.TaintEffectNoSchedule
	added := metav1.NewTime(t0.Add(-time.Hour))
	oldUnreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: ne, TimeAdded: &added}
	cases := []struct {
		name           string
		node           *corev1.Node
		mayAdd, halted bool
		want           string
		changed, held  bool
	}{
		{name: "healthy", node: mkNode(corev1.ConditionTrue, t0), want: ""},
		{name: "healthy node loses stale taints", node: mkNode(corev1.ConditionTrue, t0, taint(corev1.TaintNodeUnreachable, ns), oldUnreachable, taint("user", ns)),
			want: "user:NoSchedule", changed: true},
		{name: "unknown, token granted", node: mkNode(corev1.ConditionUnknown, t0), mayAdd: true,
			want: "unreachable:NoSchedule,unreachable:NoExecute", changed: true},
		{name: "unknown, no token: NoSchedule only, held", node: mkNode(corev1.ConditionUnknown, t0),
			want: "unreachable:NoSchedule", changed: true, held: true},
		{name: "unknown, already tainted: kept with its time", node: mkNode(corev1.ConditionUnknown, t0, taint(corev1.TaintNodeUnreachable, ns), oldUnreachable),
			want: "unreachable:NoSchedule,unreachable:NoExecute"},
		{name: "not ready swaps without a token", node: mkNode(corev1.ConditionFalse, t0, taint(corev1.TaintNodeUnreachable, ns), oldUnreachable),
			want: "not-ready:NoSchedule,not-ready:NoExecute", changed: true},
		{name: "halted: NoExecute removed", node: mkNode(corev1.ConditionUnknown, t0, taint(corev1.TaintNodeUnreachable, ns), oldUnreachable), mayAdd: true, halted: true,
			want: "unreachable:NoSchedule", changed: true},
		{name: "pressure and cordon", node: func() *corev1.Node {
			n := mkNode(corev1.ConditionTrue, t0)
			n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeDiskPressure, Status: corev1.ConditionTrue})
			n.Spec.Unschedulable = true
			return n
		}(), want: "disk-pressure:NoSchedule,unschedulable:NoSchedule", changed: true},
		{name: "no Ready condition yet: no condition taints", node: mkNode("", t0), want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planTaints(tc.node, t0, tc.mayAdd, tc.halted)
			if got := render(p.taints); got != tc.want || p.changed != tc.changed || p.held != tc.held {
				t.Errorf("taints %q changed %v held %v; want %q %v %v", got, p.changed, p.held, tc.want, tc.changed, tc.held)
			}
			for _, tt := range p.taints {
				if tt.Effect == ne && tt.TimeAdded == nil {
					t.Errorf("NoExecute taint without timeAdded")
				}
				if tt.Key == corev1.TaintNodeUnreachable && tt.Effect == ne && tc.name == "unknown, already tainted: kept with its time" && !tt.TimeAdded.Equal(&added) {
					t.Errorf("existing taint's timeAdded replaced")
				}
			}
		})
	}
}

func TestZones(t *testing.T) {
	r := rates{primary: 0.1, secondary: 0.01, unhealthyThreshold: 0.55, largeClusterThreshold: 50}
	cases := []struct {
		name   string
		counts map[string]zoneCounts
		want   string // zone=state@rate ... halted
	}{
		{"all healthy", map[string]zoneCounts{"a": {3, 0}}, "a=Normal@0.1"},
		{"one of three down", map[string]zoneCounts{"a": {2, 1}}, "a=Normal@0.1"},
		{"two of two down is full", map[string]zoneCounts{"a": {0, 2}, "b": {3, 0}}, "a=FullDisruption@0.1 b=Normal@0.1"},
		{"small zone mostly down stops", map[string]zoneCounts{"a": {2, 3}}, "a=PartialDisruption@0"},
		{"large zone mostly down slows", map[string]zoneCounts{"a": {20, 40}}, "a=PartialDisruption@0.01"},
		{"two down is not partial", map[string]zoneCounts{"a": {1, 2}}, "a=Normal@0.1"},
		{"every zone down halts", map[string]zoneCounts{"a": {0, 2}, "b": {0, 1}}, "a=FullDisruption@0 b=FullDisruption@0 halted"},
	}
	for _, tc := range cases {
		states, perZone, halted := zoneRates(tc.counts, r)
		var parts []string
		for z, s := range states {
			parts = append(parts, fmt.Sprintf("%s=%s@%g", z, s, perZone[z]))
		}
		sort.Strings(parts)
		if halted {
			parts = append(parts, "halted")
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestBucket(t *testing.T) {
	b := newBucket(0.1, 1, t0)
	if !b.take(t0) {
		t.Fatal("a full bucket gives a token")
	}
	if b.take(t0.Add(time.Second)) {
		t.Fatal("second token after 1s at 0.1/s")
	}
	if w, ok := b.wait(t0.Add(time.Second)); !ok || w != 9*time.Second {
		t.Errorf("wait %v %v, want 9s", w, ok)
	}
	if !b.take(t0.Add(10 * time.Second)) {
		t.Error("token after 10s")
	}
	b.setRate(0, t0.Add(10*time.Second))
	if b.take(t0.Add(time.Hour)) {
		t.Error("zero rate gives tokens")
	}
	if _, ok := b.wait(t0.Add(time.Hour)); ok {
		t.Error("zero rate promises a token")
	}
}

func TestJudge(t *testing.T) {
	added := metav1.NewTime(t0)
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}
	custom := corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute} // no timeAdded
	secs := func(n int64) *int64 { return &n }
	tol := func(key string, s *int64) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: s}
	}
	pod := func(created time.Time, tols ...corev1.Toleration) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}, Spec: corev1.PodSpec{Tolerations: tols}}
	}
	seenAt := t0.Add(30 * time.Second)
	seen := func(corev1.Taint) time.Time { return seenAt }
	old := t0.Add(-time.Hour)
	cases := []struct {
		name   string
		pod    *corev1.Pod
		taints []corev1.Taint
		want   string
	}{
		{"no taints", pod(old), nil, "stay"},
		{"untolerated: now", pod(old), []corev1.Taint{unreachable}, "now"},
		{"wrong value does not tolerate", pod(old, corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpEqual, Value: "x", Effect: corev1.TaintEffectNoExecute}),
			[]corev1.Taint{unreachable}, "now"},
		{"tolerated forever", pod(old, tol(corev1.TaintNodeUnreachable, nil)), []corev1.Taint{unreachable}, "stay"},
		{"tolerated 5s from timeAdded", pod(old, tol(corev1.TaintNodeUnreachable, secs(5))), []corev1.Taint{unreachable}, "+5s"},
		{"zero seconds: now", pod(old, tol(corev1.TaintNodeUnreachable, secs(0))), []corev1.Taint{unreachable}, "+0s"},
		{"pod younger than the taint", pod(t0.Add(time.Minute), tol(corev1.TaintNodeUnreachable, secs(5))), []corev1.Taint{unreachable}, "+1m5s"},
		{"shortest toleration wins; taint without time uses first sight",
			pod(old, tol(corev1.TaintNodeUnreachable, secs(300)), tol("maintenance", secs(10))),
			[]corev1.Taint{unreachable, custom}, "+40s"},
		{"one of two untolerated", pod(old, tol(corev1.TaintNodeUnreachable, nil)), []corev1.Taint{unreachable, custom}, "now"},
	}
	for _, tc := range cases {
		v := judge(tc.pod, tc.taints, seen)
		got := "stay"
		switch {
		case v.evict && v.at.IsZero():
			got = "now"
		case v.evict:
			got = fmt.Sprintf("+%v", v.at.Sub(t0))
		}
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
