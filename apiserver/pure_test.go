package apiserver

import (
	"net/http/httptest"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestParseRequest(t *testing.T) {
	cases := []struct {
		method, url string
		want        requestInfo
		ok          bool
	}{
		{"GET", "/api/v1/pods", requestInfo{Verb: "list", GV: schema.GroupVersion{Version: "v1"}, Resource: "pods"}, true},
		{"GET", "/api/v1/namespaces/ns1/pods/p1", requestInfo{Verb: "get", GV: schema.GroupVersion{Version: "v1"}, Namespace: "ns1", Resource: "pods", Name: "p1"}, true},
		{"PUT", "/api/v1/namespaces/ns1/pods/p1/status", requestInfo{Verb: "update", GV: schema.GroupVersion{Version: "v1"}, Namespace: "ns1", Resource: "pods", Name: "p1", Subresource: "status"}, true},
		{"GET", "/api/v1/namespaces/ns1", requestInfo{Verb: "get", GV: schema.GroupVersion{Version: "v1"}, Resource: "namespaces", Name: "ns1"}, true},
		{"PUT", "/api/v1/namespaces/ns1/finalize", requestInfo{Verb: "update", GV: schema.GroupVersion{Version: "v1"}, Resource: "namespaces", Name: "ns1", Subresource: "finalize"}, true},
		{"GET", "/api/v1/namespaces/ns1/status", requestInfo{Verb: "get", GV: schema.GroupVersion{Version: "v1"}, Resource: "namespaces", Name: "ns1", Subresource: "status"}, true},
		{"GET", "/apis/apps/v1/deployments?watch=true", requestInfo{Verb: "watch", GV: schema.GroupVersion{Group: "apps", Version: "v1"}, Resource: "deployments"}, true},
		{"GET", "/api/v1/watch/namespaces/ns1/pods", requestInfo{Verb: "watch", GV: schema.GroupVersion{Version: "v1"}, Namespace: "ns1", Resource: "pods"}, true},
		{"DELETE", "/apis/apps/v1/namespaces/a/deployments", requestInfo{Verb: "deletecollection", GV: schema.GroupVersion{Group: "apps", Version: "v1"}, Namespace: "a", Resource: "deployments"}, true},
		{"PATCH", "/apis/apps/v1/namespaces/a/deployments/d/scale", requestInfo{Verb: "patch", GV: schema.GroupVersion{Group: "apps", Version: "v1"}, Namespace: "a", Resource: "deployments", Name: "d", Subresource: "scale"}, true},
		{"GET", "/api/v1", requestInfo{}, false},
		{"GET", "/apis/apps", requestInfo{}, false},
		{"GET", "/healthz", requestInfo{}, false},
		{"GET", "/api/v1/namespaces/a/pods/p/x/y/z", requestInfo{}, false},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.url, func(t *testing.T) {
			got, ok := parseRequest(httptest.NewRequest(c.method, c.url, nil))
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			got.Parts = nil
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	cases := []struct {
		accept string
		want   output
		fail   bool
	}{
		{"", output{media: mediaJSON}, false},
		{"application/json", output{media: mediaJSON}, false},
		{"*/*", output{media: mediaJSON}, false},
		{"application/yaml", output{media: mediaYAML}, false},
		{"application/vnd.kubernetes.protobuf, */*", output{media: mediaProtobuf}, false},
		{"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", output{media: mediaJSON, as: "Table"}, false},
		{"application/json;as=Table;v=v9;g=meta.k8s.io,application/json", output{media: mediaJSON}, false},
		{"application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", output{media: mediaJSON, as: "PartialObjectMetadataList"}, false},
		{"application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io", output{media: mediaProtobuf, as: "PartialObjectMetadata"}, false},
		{"application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io", output{media: mediaJSON, as: "Table"}, false},
		{"text/html", output{}, true},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/api/v1/pods", nil)
		r.Header.Set("Accept", c.accept)
		got, err := negotiate(r)
		if (err != nil) != c.fail {
			t.Fatalf("%q: err = %v, want fail %v", c.accept, err, c.fail)
		}
		if !c.fail && got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.accept, got, c.want)
		}
	}
}

func TestQOSClass(t *testing.T) {
	rl := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	cases := []struct {
		name     string
		req, lim corev1.ResourceList
		want     corev1.PodQOSClass
	}{
		{"nothing", nil, nil, corev1.PodQOSBestEffort},
		{"requests only", rl("100m", ""), nil, corev1.PodQOSBurstable},
		{"limits equal requests", rl("1", "1Gi"), rl("1", "1Gi"), corev1.PodQOSGuaranteed},
		{"limits above requests", rl("500m", "1Gi"), rl("1", "1Gi"), corev1.PodQOSBurstable},
		{"cpu limit only", nil, rl("1", ""), corev1.PodQOSBurstable},
	}
	for _, c := range cases {
		spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: c.req, Limits: c.lim}}}}
		if got := qosClass(spec); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestGracePeriodAndPropagation(t *testing.T) {
	thirty, five := int64(30), int64(5)
	bound := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: &thirty}}
	if g := gracePeriod(bound, &metav1.DeleteOptions{}); g != 30 {
		t.Errorf("bound pod grace = %d, want 30", g)
	}
	if g := gracePeriod(bound, &metav1.DeleteOptions{GracePeriodSeconds: &five}); g != 5 {
		t.Errorf("explicit grace = %d, want 5", g)
	}
	if g := gracePeriod(&corev1.Pod{}, &metav1.DeleteOptions{}); g != 0 {
		t.Errorf("unbound pod grace = %d, want 0", g)
	}
	done := bound.DeepCopy()
	done.Status.Phase = corev1.PodSucceeded
	if g := gracePeriod(done, &metav1.DeleteOptions{}); g != 0 {
		t.Errorf("finished pod grace = %d, want 0", g)
	}
	if g := gracePeriod(&corev1.ConfigMap{}, &metav1.DeleteOptions{GracePeriodSeconds: &five}); g != 0 {
		t.Errorf("configmap grace = %d, want 0", g)
	}
	orphan, fg := metav1.DeletePropagationOrphan, metav1.DeletePropagationForeground
	yes := true
	for _, c := range []struct {
		opts metav1.DeleteOptions
		want []string
	}{
		{metav1.DeleteOptions{}, nil},
		{metav1.DeleteOptions{PropagationPolicy: &orphan}, []string{finalizerOrphan}},
		{metav1.DeleteOptions{PropagationPolicy: &fg}, []string{finalizerForeground}},
		{metav1.DeleteOptions{OrphanDependents: &yes}, []string{finalizerOrphan}},
	} {
		got := withPropagation(nil, &c.opts)
		if len(got) != len(c.want) || (len(got) == 1 && got[0] != c.want[0]) {
			t.Errorf("withPropagation(%+v) = %v, want %v", c.opts, got, c.want)
		}
	}
}

func TestContinueTokenRoundTrip(t *testing.T) {
	tok := encodeContinue(42, "ns/name\x00")
	got, err := decodeContinue(tok)
	if err != nil || got.Revision != 42 || got.Start != "ns/name\x00" {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	for _, bad := range []string{"!!!", "e30", encodeContinue(0, "x")} {
		if _, err := decodeContinue(bad); err == nil {
			t.Errorf("decodeContinue(%q) accepted a bad token", bad)
		}
	}
}
