package validation

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestConfigMapsAndSecrets(t *testing.T) {
	cm := func(data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: nsMeta("cfg"), Data: data}
	}
	secret := func(typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: nsMeta("s"), Type: typ, Data: data}
	}
	runCreate(t, []createCase{
		{name: "configmap valid", obj: cm(map[string]string{"app.conf": "x", "KEY_1": "y"})},
		{name: "configmap key", obj: cm(map[string]string{"bad/key": "x"}), want: []string{e(invalid, "data[bad/key]")}},
		{name: "configmap too big", obj: cm(map[string]string{"a": strings.Repeat("x", 1<<20), "b": "y"}), want: []string{e(tooLong, "[]")}},
		{name: "configmap key in data and binaryData", obj: &corev1.ConfigMap{ObjectMeta: nsMeta("cfg"),
			Data: map[string]string{"k": "v"}, BinaryData: map[string][]byte{"k": {1}}}, want: []string{e(invalid, "binaryData[k]")}},
		{name: "secret valid", obj: secret("", map[string][]byte{"password": []byte("x")})},
		{name: "secret key", obj: secret("", map[string][]byte{"a b": nil}), want: []string{e(invalid, "data[a b]")}},
		{name: "secret too big", obj: secret("", map[string][]byte{"a": make([]byte, 1<<20+1)}), want: []string{e(tooLong, "data")}},
		{name: "tls secret", obj: secret(corev1.SecretTypeTLS, nil), want: []string{e(required, "data[tls.crt]"), e(required, "data[tls.key]")}},
		{name: "docker config json", obj: secret(corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte("{")}),
			want: []string{e(invalid, "data[.dockerconfigjson]")}},
		{name: "docker config json missing", obj: secret(corev1.SecretTypeDockerConfigJson, nil), want: []string{e(required, "data[.dockerconfigjson]")}},
		{name: "basic auth", obj: secret(corev1.SecretTypeBasicAuth, nil), want: []string{e(required, "data[username]"), e(required, "data[password]")}},
		{name: "service account token", obj: secret(corev1.SecretTypeServiceAccountToken, nil),
			want: []string{e(required, "metadata.annotations[kubernetes.io/service-account.name]")}},
		{name: "custom type", obj: secret("example.com/thing", nil)},
		{name: "service account", obj: &corev1.ServiceAccount{ObjectMeta: nsMeta("robot"), ImagePullSecrets: []corev1.LocalObjectReference{{}}},
			want: []string{e(required, "imagePullSecrets[0].name")}},
	})
	runUpdate(t, []updateCase{
		{name: "configmap data may change", old: cm(map[string]string{"a": "1"}), change: func(o runtime.Object) { o.(*corev1.ConfigMap).Data["a"] = "2" }},
		{name: "immutable configmap", old: &corev1.ConfigMap{ObjectMeta: nsMeta("cfg"), Data: map[string]string{"a": "1"}, Immutable: ptr(true)},
			change: func(o runtime.Object) {
				c := o.(*corev1.ConfigMap)
				c.Data["a"] = "2"
				c.Immutable = ptr(false)
			}, want: []string{e(forbidden, "data"), e(forbidden, "immutable")}},
		{name: "immutable configmap labels", old: &corev1.ConfigMap{ObjectMeta: nsMeta("cfg"), Immutable: ptr(true)},
			change: func(o runtime.Object) { o.(*corev1.ConfigMap).Labels = map[string]string{"a": "b"} }},
		{name: "secret type is immutable", old: secret(corev1.SecretTypeOpaque, nil), change: func(o runtime.Object) {
			s := o.(*corev1.Secret)
			s.Type = "example.com/other"
		}, want: []string{e(invalid, "type")}},
		{name: "immutable secret", old: &corev1.Secret{ObjectMeta: nsMeta("s"), Data: map[string][]byte{"a": {1}}, Immutable: ptr(true)},
			change: func(o runtime.Object) { o.(*corev1.Secret).Data["a"] = []byte{2} }, want: []string{e(forbidden, "data")}},
	})
}

func TestRBAC(t *testing.T) {
	rule := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	binding := func(mut func(b *rbacv1.RoleBinding)) *rbacv1.RoleBinding {
		b := &rbacv1.RoleBinding{ObjectMeta: nsMeta("read"), RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}, {Kind: "ServiceAccount", Name: "robot"}}}
		if mut != nil {
			mut(b)
		}
		return b
	}
	runCreate(t, []createCase{
		{name: "role valid", obj: &rbacv1.Role{ObjectMeta: nsMeta("system:reader"), Rules: []rbacv1.PolicyRule{rule}}},
		{name: "role name", obj: &rbacv1.Role{ObjectMeta: nsMeta("a/b")}, want: []string{e(invalid, "metadata.name")}},
		{name: "role rules", obj: &rbacv1.Role{ObjectMeta: nsMeta("r"), Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}}, {Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}, {Verbs: []string{"get"}}}},
			want: []string{e(required, "rules[0].verbs"), e(invalid, "rules[1].nonResourceURLs"), e(required, "rules[2].apiGroups"), e(required, "rules[2].resources")}},
		{name: "cluster role non-resource urls", obj: &rbacv1.ClusterRole{ObjectMeta: clusterMeta("health"), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}}}},
		{name: "cluster role mixing", obj: &rbacv1.ClusterRole{ObjectMeta: clusterMeta("mixed"), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}, Resources: []string{"pods"}}}},
			want: []string{e(invalid, "rules[0].nonResourceURLs")}},
		{name: "cluster role aggregation", obj: &rbacv1.ClusterRole{ObjectMeta: clusterMeta("agg"), AggregationRule: &rbacv1.AggregationRule{}},
			want: []string{e(required, "aggregationRule.clusterRoleSelectors")}},
		{name: "binding valid", obj: binding(nil)},
		{name: "binding role ref", obj: binding(func(b *rbacv1.RoleBinding) { b.RoleRef = rbacv1.RoleRef{APIGroup: "example.com", Kind: "Policy"} }),
			want: []string{e(notSupported, "roleRef.apiGroup"), e(notSupported, "roleRef.kind"), e(required, "roleRef.name")}},
		{name: "binding subjects", obj: binding(func(b *rbacv1.RoleBinding) {
			b.Subjects = []rbacv1.Subject{{Kind: "Robot", Name: "x"}, {Kind: "User"}, {Kind: "ServiceAccount", Name: "r", APIGroup: "rbac.authorization.k8s.io"}}
		}), want: []string{e(notSupported, "subjects[0].kind"), e(required, "subjects[1].name"), e(notSupported, "subjects[2].apiGroup")}},
		{name: "cluster binding needs service account namespaces", obj: &rbacv1.ClusterRoleBinding{ObjectMeta: clusterMeta("b"),
			RoleRef:  rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "robot"}}},
			want: []string{e(required, "subjects[0].namespace")}},
		{name: "cluster binding to a role", obj: &rbacv1.ClusterRoleBinding{ObjectMeta: clusterMeta("b"), RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "view"}},
			want: []string{e(notSupported, "roleRef.kind")}},
	})
	runUpdate(t, []updateCase{
		{name: "subjects may change", old: binding(nil), change: func(o runtime.Object) { o.(*rbacv1.RoleBinding).Subjects = nil }},
		{name: "role ref may not", old: binding(nil), change: func(o runtime.Object) { o.(*rbacv1.RoleBinding).RoleRef.Name = "writer" },
			want: []string{e(invalid, "roleRef")}},
	})
}

func TestPolicyAndCoordination(t *testing.T) {
	pdb := func(mut func(p *policyv1.PodDisruptionBudget)) *policyv1.PodDisruptionBudget {
		p := &policyv1.PodDisruptionBudget{ObjectMeta: nsMeta("web"), Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: appLabels}}}
		if mut != nil {
			mut(p)
		}
		return p
	}
	runCreate(t, []createCase{
		{name: "pdb valid", obj: pdb(nil)},
		{name: "pdb both", obj: pdb(func(p *policyv1.PodDisruptionBudget) { p.Spec.MaxUnavailable = ptr(intstr.FromString("10%")) }),
			want: []string{e(invalid, "spec")}},
		{name: "pdb percent", obj: pdb(func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = ptr(intstr.FromString("120%")) }),
			want: []string{e(invalid, "spec.minAvailable")}},
		{name: "pdb negative", obj: pdb(func(p *policyv1.PodDisruptionBudget) { p.Spec.MinAvailable = ptr(intstr.FromInt32(-1)) }),
			want: []string{e(invalid, "spec.minAvailable")}},
		{name: "lease valid", obj: &coordinationv1.Lease{ObjectMeta: nsMeta("node-1"), Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr("node-1"), LeaseDurationSeconds: ptr(int32(40))}}},
		{name: "lease duration", obj: &coordinationv1.Lease{ObjectMeta: nsMeta("node-1"), Spec: coordinationv1.LeaseSpec{
			LeaseDurationSeconds: ptr(int32(0)), LeaseTransitions: ptr(int32(-1))}},
			want: []string{e(invalid, "spec.leaseDurationSeconds"), e(invalid, "spec.leaseTransitions")}},
		{name: "quota valid", obj: &corev1.ResourceQuota{ObjectMeta: nsMeta("q"), Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
			"pods": q("10"), "requests.cpu": q("4"), "count/deployments.apps": q("5"), "requests.nvidia.com/gpu": q("2"), "requests.hugepages-2Mi": q("1Gi")}}}},
		{name: "quota", obj: &corev1.ResourceQuota{ObjectMeta: nsMeta("q"), Spec: corev1.ResourceQuotaSpec{
			Hard:   corev1.ResourceList{"widgets": q("1"), "pods": q("1.5"), "memory": q("-1")},
			Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, "Sometimes"}}},
			want: []string{e(invalid, "spec.hard[widgets]"), e(invalid, "spec.hard[pods]"), e(invalid, "spec.hard[memory]"),
				e(notSupported, "spec.scopes[2]"), e(invalid, "spec.scopes")}},
		{name: "limit range valid", obj: &corev1.LimitRange{ObjectMeta: nsMeta("l"), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
			{Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{"cpu": q("2")}, Min: corev1.ResourceList{"cpu": q("100m")}}}}}},
		{name: "limit range", obj: &corev1.LimitRange{ObjectMeta: nsMeta("l"), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
			{Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{"cpu": q("1")}, Min: corev1.ResourceList{"cpu": q("2")},
				Default: corev1.ResourceList{"cpu": q("1")}, DefaultRequest: corev1.ResourceList{"cpu": q("1")}},
			{Type: corev1.LimitTypePod, Default: corev1.ResourceList{"cpu": q("1")}, MaxLimitRequestRatio: corev1.ResourceList{"cpu": q("500m")}},
			{Type: corev1.LimitTypeContainer},
		}}}, want: []string{e(invalid, "spec.limits[0].min[cpu]"), e(invalid, "spec.limits[0].defaultRequest[cpu]"),
			e(invalid, "spec.limits[0].default[cpu]"), e(forbidden, "spec.limits[1].default"),
			e(invalid, "spec.limits[1].maxLimitRequestRatio[cpu]"), e(duplicate, "spec.limits[2].type")}},
	})
}

func TestEvents(t *testing.T) {
	now := metav1.NewMicroTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	core := func(mut func(ev *corev1.Event)) *corev1.Event {
		ev := &corev1.Event{ObjectMeta: nsMeta("web.17a"), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"},
			Reason: "Started", Message: "started", Type: corev1.EventTypeNormal}
		if mut != nil {
			mut(ev)
		}
		return ev
	}
	events := func(mut func(ev *eventsv1.Event)) *eventsv1.Event {
		ev := &eventsv1.Event{ObjectMeta: nsMeta("web.17a"), EventTime: now, ReportingController: "example.com/ctl",
			ReportingInstance: "ctl-1", Action: "Start", Reason: "Started", Type: corev1.EventTypeNormal,
			Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}}
		if mut != nil {
			mut(ev)
		}
		return ev
	}
	runCreate(t, []createCase{
		{name: "core event valid", obj: core(nil)},
		{name: "core event names are lenient", obj: core(func(ev *corev1.Event) { ev.Name = "Web:17A" })},
		{name: "core event namespace mismatch", obj: core(func(ev *corev1.Event) { ev.InvolvedObject.Namespace = "other" }),
			want: []string{e(invalid, "involvedObject.namespace")}},
		{name: "core event with event time", obj: core(func(ev *corev1.Event) { ev.EventTime = now }),
			want: []string{e(required, "reportingComponent"), e(required, "reportingInstance"), e(required, "action")}},
		{name: "events.k8s.io event valid", obj: events(nil)},
		{name: "events.k8s.io event", obj: events(func(ev *eventsv1.Event) {
			ev.EventTime = metav1.MicroTime{}
			ev.Type = "Info"
			ev.DeprecatedCount = 3
			ev.Series = &eventsv1.EventSeries{Count: 1}
		}), want: []string{e(required, "eventTime"), e(invalid, "type"), e(invalid, "deprecatedCount"),
			e(invalid, "series.count"), e(required, "series.lastObservedTime")}},
	})
	runUpdate(t, []updateCase{
		{name: "events.k8s.io series may grow", old: events(nil), change: func(o runtime.Object) {
			o.(*eventsv1.Event).Series = &eventsv1.EventSeries{Count: 2, LastObservedTime: now}
		}},
		{name: "events.k8s.io note is immutable", old: events(nil), change: func(o runtime.Object) { o.(*eventsv1.Event).Note = "changed" },
			want: []string{e(invalid, "note")}},
	})
}
