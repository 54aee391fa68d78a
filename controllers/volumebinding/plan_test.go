package volumebinding

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
)

func mkClaim(class *string, mut ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: "c-1", Annotations: map[string]string{}}}
	c.Spec.StorageClassName = class
	c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	c.Status.Phase = corev1.ClaimPending
	for _, m := range mut {
		m(c)
	}
	return c
}

func str(s string) *string { return &s }

func ann(k, v string) func(*corev1.PersistentVolumeClaim) {
	return func(c *corev1.PersistentVolumeClaim) { c.Annotations[k] = v }
}

func volumeName(n string) func(*corev1.PersistentVolumeClaim) {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = n }
}

func mkVolume(name, class string, mut ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}},
		Spec: corev1.PersistentVolumeSpec{
			StorageClassName:              class,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	for _, m := range mut {
		m(v)
	}
	return v
}

func refTo(ns, name string, uid types.UID) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) {
		v.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: name, UID: uid}
	}
}

func policy(p corev1.PersistentVolumeReclaimPolicy) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { v.Spec.PersistentVolumeReclaimPolicy = p }
}

func volAnn(k, val string) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { v.Annotations[k] = val }
}

func volPhase(p corev1.PersistentVolumePhase) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { v.Status.Phase = p }
}

func class(name, provisioner string, wffc bool) *storagev1.StorageClass {
	mode := storagev1.VolumeBindingImmediate
	if wffc {
		mode = storagev1.VolumeBindingWaitForFirstConsumer
	}
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, VolumeBindingMode: &mode}
}

// describe summarizes a claim plan for comparison.
func (p claimPlan) describe() string {
	var parts []string
	if p.SetClass != "" {
		parts = append(parts, "class="+p.SetClass)
	}
	if p.Bind != nil {
		parts = append(parts, "bind="+p.Bind.Name)
	}
	if p.Phase != "" {
		parts = append(parts, "phase="+string(p.Phase))
	}
	if p.Provisioner != "" {
		parts = append(parts, "provisioner="+p.Provisioner)
	}
	if p.Event != nil {
		parts = append(parts, "event="+p.Event.Reason)
	}
	return strings.Join(parts, " ")
}

func TestPlanClaim(t *testing.T) {
	local := LocalPathClass()
	fast := class("fast", "example.com/disk", false)
	manual := class("manual", pvmatch.NoProvisioner, true)
	nodeB := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{corev1.LabelHostname: "b"}}}
	onB := func(v *corev1.PersistentVolume) {
		v.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}}}}}
	}
	bound := []func(*corev1.PersistentVolumeClaim){volumeName("pv-1"), ann(pvmatch.AnnBindCompleted, "yes")}
	cases := []struct {
		name string
		s    claimState
		want string
	}{
		{name: "no class gets the default", s: claimState{Claim: mkClaim(nil), DefaultClass: "local-path"}, want: "class=local-path"},
		{name: "empty class keeps away the default", s: claimState{Claim: mkClaim(str("")), DefaultClass: "local-path",
			Volumes: []*corev1.PersistentVolume{mkVolume("pv-1", "")}}, want: "bind=pv-1"},
		{name: "no class, no default, no volume", s: claimState{Claim: mkClaim(nil)}, want: "phase=Pending event=FailedBinding"},
		{name: "immediate class binds a matching volume", s: claimState{Claim: mkClaim(str("fast")), Class: fast,
			Volumes: []*corev1.PersistentVolume{mkVolume("pv-1", "fast"), mkVolume("pv-2", "other")}}, want: "bind=pv-1"},
		{name: "immediate class without volume goes to its provisioner", s: claimState{Claim: mkClaim(str("fast")), Class: fast},
			want: "phase=Pending provisioner=example.com/disk event=ExternalProvisioning"},
		{name: "unknown class", s: claimState{Claim: mkClaim(str("nope"))}, want: "phase=Pending event=ProvisioningFailed"},
		{name: "waiting for the first consumer", s: claimState{Claim: mkClaim(str("local-path")), Class: local,
			Volumes: []*corev1.PersistentVolume{mkVolume("pv-1", "local-path")}}, want: "phase=Pending event=WaitForFirstConsumer"},
		{name: "selected node: a volume there is bound", s: claimState{Claim: mkClaim(str("manual"), ann(pvmatch.AnnSelectedNode, "b")), Class: manual, Node: nodeB,
			Volumes: []*corev1.PersistentVolume{mkVolume("on-b", "manual", onB)}}, want: "bind=on-b"},
		{name: "selected node: otherwise the provisioner", s: claimState{Claim: mkClaim(str("local-path"), ann(pvmatch.AnnSelectedNode, "b")), Class: local, Node: nodeB},
			want: "phase=Pending provisioner=skiff.sh/local-path event=ExternalProvisioning"},
		{name: "provisioned volume pre-bound to the claim", s: claimState{Claim: mkClaim(str("local-path"), ann(pvmatch.AnnSelectedNode, "b")), Class: local, Node: nodeB,
			Volumes: []*corev1.PersistentVolume{mkVolume("pvc-c-1", "local-path", onB, refTo("ns", "data", "c-1"), volPhase(corev1.VolumePending))}}, want: "bind=pvc-c-1"},
		{name: "user names a free volume", s: claimState{Claim: mkClaim(str("fast"), volumeName("pv-9")), Class: fast,
			Volume: mkVolume("pv-9", "fast")}, want: "bind=pv-9"},
		{name: "user names a volume that does not fit", s: claimState{Claim: mkClaim(str("fast"), volumeName("pv-9")), Class: fast,
			Volume: mkVolume("pv-9", "slow")}, want: "phase=Pending event=VolumeMismatch"},
		{name: "user names a volume of another claim", s: claimState{Claim: mkClaim(str("fast"), volumeName("pv-9")), Class: fast,
			Volume: mkVolume("pv-9", "fast", refTo("ns", "other", "x"))}, want: "phase=Pending event=FailedBinding"},
		{name: "user names a missing volume", s: claimState{Claim: mkClaim(str("fast"), volumeName("pv-9")), Class: fast}, want: "phase=Pending"},
		{name: "bound claim stays bound", s: claimState{Claim: mkClaim(str("fast"), bound...), Class: fast,
			Volume: mkVolume("pv-1", "fast", refTo("ns", "data", "c-1"))}, want: "bind=pv-1"},
		{name: "bound claim whose volume lost its claimRef", s: claimState{Claim: mkClaim(str("fast"), bound...), Class: fast,
			Volume: mkVolume("pv-1", "fast")}, want: "bind=pv-1"},
		{name: "bound claim whose volume is gone", s: claimState{Claim: mkClaim(str("fast"), bound...), Class: fast}, want: "phase=Lost event=ClaimLost"},
		{name: "bound claim whose volume is another's", s: claimState{Claim: mkClaim(str("fast"), bound...), Class: fast,
			Volume: mkVolume("pv-1", "fast", refTo("ns", "data", "c-0"))}, want: "phase=Lost event=ClaimMisbound"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := planClaim(tc.s).describe(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func (p volumePlan) describe() string {
	var parts []string
	if p.Phase != "" {
		parts = append(parts, "phase="+string(p.Phase))
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{p.Unbind, "unbind"}, {p.ForgetUID, "forget-uid"}, {p.Release, "release"}, {p.SyncClaim, "sync-claim"}} {
		if f.on {
			parts = append(parts, f.name)
		}
	}
	if p.Event != nil {
		parts = append(parts, "event="+p.Event.Reason)
	}
	return strings.Join(parts, " ")
}

func TestPlanVolume(t *testing.T) {
	claim := mkClaim(str("fast"), volumeName("pv-1"), ann(pvmatch.AnnBindCompleted, "yes"))
	pending := mkClaim(str("fast"))
	elsewhere := mkClaim(str("fast"), volumeName("pv-2"))
	ours := volAnn(pvmatch.AnnProvisionedBy, pvmatch.LocalPathProvisioner)
	cases := []struct {
		name  string
		v     *corev1.PersistentVolume
		claim *corev1.PersistentVolumeClaim
		want  string
	}{
		{"new volume becomes Available", mkVolume("pv-1", "fast", volPhase(corev1.VolumePending)), nil, "phase=Available"},
		{"pre-bound by name", mkVolume("pv-1", "fast", refTo("ns", "data", "")), nil, "phase=Available sync-claim"},
		{"bound", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1")), claim, "phase=Bound"},
		{"claim not bound yet", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1"), volPhase(corev1.VolumePending)), pending, "sync-claim"},
		{"claim gone, Retain", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1"), volPhase(corev1.VolumeBound)), nil, "phase=Released release"},
		{"claim recreated, Retain", mkVolume("pv-1", "fast", refTo("ns", "data", "c-0"), volPhase(corev1.VolumeBound)), claim, "phase=Released release"},
		{"claim gone, Delete, provisioned", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1"), policy(corev1.PersistentVolumeReclaimDelete), ours), nil, "phase=Released release"},
		{"claim gone, Delete, hand-made", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1"), policy(corev1.PersistentVolumeReclaimDelete)), nil, "phase=Failed release event=VolumeFailedDelete"},
		{"claim gone, Recycle", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1"), policy(corev1.PersistentVolumeReclaimRecycle)), nil, "phase=Failed release event=VolumeFailedRecycle"},
		{"already failed", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1"), policy(corev1.PersistentVolumeReclaimDelete), volPhase(corev1.VolumeFailed)), nil, "release"},
		{"claim bound elsewhere, provisioned for it", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1"), policy(corev1.PersistentVolumeReclaimDelete), ours), elsewhere, "phase=Released release"},
		{"claim bound elsewhere, binder's choice", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1"), volAnn(pvmatch.AnnBoundByController, "yes")), elsewhere, "phase=Available unbind"},
		{"claim bound elsewhere, user's choice", mkVolume("pv-1", "fast", refTo("ns", "data", "c-1")), elsewhere, "phase=Available forget-uid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := planVolume(tc.v, tc.claim).describe(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlanProvision(t *testing.T) {
	local := LocalPathClass()
	immediate := LocalPathClass()
	immediate.Name = "now"
	mode := storagev1.VolumeBindingImmediate
	immediate.VolumeBindingMode = &mode
	other := class("other", "example.com/disk", true)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{corev1.LabelHostname: "host-1"},
		Annotations: map[string]string{pvmatch.AnnLocalPathBase: "/data/storage/"}}}
	plain := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}
	handed := ann(pvmatch.AnnStorageProvisioner, pvmatch.LocalPathProvisioner)
	selected := ann(pvmatch.AnnSelectedNode, "n1")
	block := func(c *corev1.PersistentVolumeClaim) {
		m := corev1.PersistentVolumeBlock
		c.Spec.VolumeMode = &m
	}
	cases := []struct {
		name     string
		in       provisionInput
		want     string // "create" | "" | failure substring
		unselect bool
	}{
		{name: "provisions on the selected node", in: provisionInput{Claim: mkClaim(str("local-path"), handed, selected), Class: local, Node: node}, want: "create"},
		{name: "not handed to the provisioner yet", in: provisionInput{Claim: mkClaim(str("local-path"), selected), Class: local, Node: node}},
		{name: "no node selected yet", in: provisionInput{Claim: mkClaim(str("local-path"), handed), Class: local}},
		{name: "another provisioner's class", in: provisionInput{Claim: mkClaim(str("other"), ann(pvmatch.AnnStorageProvisioner, "example.com/disk"), selected), Class: other, Node: node}},
		{name: "already provisioned", in: provisionInput{Claim: mkClaim(str("local-path"), handed, selected), Class: local, Node: node, Exists: true}},
		{name: "already bound", in: provisionInput{Claim: mkClaim(str("local-path"), handed, selected, volumeName("pv")), Class: local, Node: node}},
		{name: "immediate class cannot choose a node", in: provisionInput{Claim: mkClaim(str("now"), handed), Class: immediate}, want: "WaitForFirstConsumer"},
		{name: "selected node is gone", in: provisionInput{Claim: mkClaim(str("local-path"), handed, selected), Class: local}, want: `"n1" not found`, unselect: true},
		{name: "block volumes", in: provisionInput{Claim: mkClaim(str("local-path"), handed, selected, block), Class: local, Node: node}, want: "only Filesystem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planProvision(tc.in)
			switch {
			case tc.want == "create" && p.Volume == nil, tc.want != "create" && p.Volume != nil:
				t.Fatalf("volume: %v", p.Volume)
			case tc.want != "create" && !strings.Contains(p.Fail, tc.want), tc.want == "" && p.Fail != "":
				t.Fatalf("failure %q, want %q", p.Fail, tc.want)
			case p.Unselect != tc.unselect:
				t.Fatalf("unselect %v", p.Unselect)
			}
		})
	}

	v := planProvision(provisionInput{Claim: mkClaim(str("local-path"), handed, selected), Class: local, Node: node}).Volume
	if v.Name != "pvc-c-1" || v.Spec.Local == nil || v.Spec.Local.Path != "/data/storage/pvc-c-1_ns_data" {
		t.Errorf("name and path: %s %+v", v.Name, v.Spec.Local)
	}
	if v.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || v.Spec.StorageClassName != "local-path" ||
		v.Annotations[pvmatch.AnnProvisionedBy] != pvmatch.LocalPathProvisioner || v.Annotations[pvmatch.AnnLocalPathNode] != "n1" {
		t.Errorf("policy, class, annotations: %+v %+v", v.Spec, v.Annotations)
	}
	size := v.Spec.Capacity[corev1.ResourceStorage]
	if size.String() != "1Gi" || len(v.Spec.AccessModes) != 1 || v.Spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Errorf("capacity %s, access modes %v", size.String(), v.Spec.AccessModes)
	}
	req := v.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0]
	if req.Key != corev1.LabelHostname || req.Values[0] != "host-1" {
		t.Errorf("affinity uses the node's hostname label: %+v", req)
	}
	if ref := v.Spec.ClaimRef; ref == nil || ref.UID != "c-1" || ref.Name != "data" || ref.Namespace != "ns" {
		t.Errorf("claimRef %+v", ref)
	}

	p := planProvision(provisionInput{Claim: mkClaim(str("local-path"), handed, ann(pvmatch.AnnSelectedNode, "n2")), Class: local, Node: plain, DefaultBase: "/fallback"}).Volume
	if p.Spec.Local.Path != "/fallback/pvc-c-1_ns_data" || p.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != "n2" {
		t.Errorf("a node without base or hostname label: %s", p.Spec.Local.Path)
	}
	long := mkClaim(str("local-path"), handed, selected)
	long.Name = strings.Repeat("x", 253)
	if d := VolumeDir(long); len(d) != maxDirName {
		t.Errorf("long directory name not cut: %d", len(d))
	}
}
