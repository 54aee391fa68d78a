package envvars

import (
	"context"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func ptr[T any](v T) *T { return &v }

func testClient() *fake.Clientset {
	return fake.NewClientset(
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "cfg"},
			Data: map[string]string{"MODE": "prod", "LEVEL": "3", "bad=key": "x", "1ST": "ok"}},
		&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "creds"},
			Data: map[string][]byte{"USER": []byte("admin"), "PASS": []byte("s3cret")}},
	)
}

func basePod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web-1", UID: "uid-1",
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"rev": "7"}},
		Spec: v1.PodSpec{ServiceAccountName: "robot", NodeName: "spec-node",
			Containers: []v1.Container{{Name: "main"}, {Name: "side",
				Resources: v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}}}}},
		Status: v1.PodStatus{PodIP: "10.1.0.5", HostIP: "192.168.0.2"},
	}
}

func build(t *testing.T, pod *v1.Pod, c *v1.Container, services []*v1.Service, warn func(string)) ([]EnvVar, error) {
	t.Helper()
	return Build(context.Background(), Input{
		Pod: pod, Container: c, Client: testClient(), Services: services,
		NodeName: "node-a", HostIP: "192.168.0.9", PodIPs: []string{"10.1.0.7", "fd00::7"},
		NodeAllocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")},
		Warn:            warn,
	})
}

func TestBuildOrderAndPrecedence(t *testing.T) {
	pod := basePod()
	pod.Spec.EnableServiceLinks = ptr(true)
	c := &v1.Container{Name: "main",
		EnvFrom: []v1.EnvFromSource{
			{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}},
			{Prefix: "DB_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}}},
		},
		Env: []v1.EnvVar{
			{Name: "MODE", Value: "dev"}, // env overrides envFrom
			{Name: "URL", Value: "http://$(WEB_SERVICE_HOST):$(PORT)/$(MODE)"},
			{Name: "PORT", Value: "8080"},                       // declared after URL: URL keeps $(PORT)
			{Name: "WEB_SERVICE_HOST", Value: "overridden"},     // env overrides a service variable
			{Name: "LATER", Value: "$(WEB_SERVICE_HOST)-$$(X)"}, // sees the override
			{Name: "EMPTY"},
		},
	}
	web := svc("app", "web", "10.0.0.30", v1.ServicePort{Port: 80})
	got, err := build(t, pod, c, []*v1.Service{web}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []EnvVar{
		{"WEB_SERVICE_HOST", "overridden"},
		{"WEB_SERVICE_PORT", "80"},
		{"WEB_PORT", "tcp://10.0.0.30:80"},
		{"WEB_PORT_80_TCP", "tcp://10.0.0.30:80"},
		{"WEB_PORT_80_TCP_PROTO", "tcp"},
		{"WEB_PORT_80_TCP_PORT", "80"},
		{"WEB_PORT_80_TCP_ADDR", "10.0.0.30"},
		{"1ST", "ok"},
		{"LEVEL", "3"},
		{"MODE", "dev"},
		{"DB_PASS", "s3cret"},
		{"DB_USER", "admin"},
		{"URL", "http://10.0.0.30:$(PORT)/dev"},
		{"PORT", "8080"},
		{"LATER", "overridden-$(X)"},
		{"EMPTY", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestBuildInvalidKeysWarned(t *testing.T) {
	var warnings []string
	c := &v1.Container{Name: "main", EnvFrom: []v1.EnvFromSource{
		{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}}}
	got, err := build(t, basePod(), c, nil, func(m string) { warnings = append(warnings, m) })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Map(got)["bad=key"]; ok {
		t.Error("invalid key bad=key was not skipped")
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "[bad=key]") || !strings.Contains(warnings[0], "configMap app/cfg") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestBuildFieldAndResourceRefs(t *testing.T) {
	field := func(name, path string) v1.EnvVar {
		return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: path}}}
	}
	res := func(name, container, r, div string) v1.EnvVar {
		sel := &v1.ResourceFieldSelector{ContainerName: container, Resource: r}
		if div != "" {
			sel.Divisor = resource.MustParse(div)
		}
		return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{ResourceFieldRef: sel}}
	}
	c := &v1.Container{Name: "main", Env: []v1.EnvVar{
		field("NAME", "metadata.name"), field("NS", "metadata.namespace"), field("UID", "metadata.uid"),
		field("APP", "metadata.labels['app']"), field("REV", "metadata.annotations['rev']"),
		field("NODE", "spec.nodeName"), field("SA", "spec.serviceAccountName"),
		field("HOST", "status.hostIP"), field("HOSTS", "status.hostIPs"),
		field("IP", "status.podIP"), field("IPS", "status.podIPs"),
		res("CPU", "", "limits.cpu", "1m"), res("SIDE_MEM", "side", "limits.memory", "1Mi"),
	}}
	got, err := build(t, basePod(), c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"NAME": "web-1", "NS": "app", "UID": "uid-1", "APP": "web", "REV": "7",
		"NODE": "node-a", "SA": "robot", "HOST": "192.168.0.9", "HOSTS": "192.168.0.9",
		"IP": "10.1.0.7", "IPS": "10.1.0.7,fd00::7", "CPU": "2000", "SIDE_MEM": "64",
	}
	if m := Map(got); !reflect.DeepEqual(m, want) {
		t.Errorf("got  %v\nwant %v", m, want)
	}
}

func TestBuildStatusFallbacks(t *testing.T) {
	c := &v1.Container{Name: "main", Env: []v1.EnvVar{
		{Name: "IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "HOST", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
		{Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
	}}
	got, err := Build(context.Background(), Input{Pod: basePod(), Container: c})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"IP": "10.1.0.5", "HOST": "192.168.0.2", "NODE": "spec-node"}
	if m := Map(got); !reflect.DeepEqual(m, want) {
		t.Errorf("got %v want %v", m, want)
	}
}

func TestBuildSources(t *testing.T) {
	cmKey := func(name, key string, optional bool) v1.EnvVar {
		return v1.EnvVar{Name: "V", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}}
	}
	secKey := func(name, key string, optional bool) v1.EnvVar {
		return v1.EnvVar{Name: "V", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}}
	}
	cases := []struct {
		name    string
		env     []v1.EnvVar
		from    []v1.EnvFromSource
		want    map[string]string
		wantErr string
	}{
		{name: "configmap key", env: []v1.EnvVar{cmKey("cfg", "MODE", false)}, want: map[string]string{"V": "prod"}},
		{name: "secret key", env: []v1.EnvVar{secKey("creds", "PASS", false)}, want: map[string]string{"V": "s3cret"}},
		{name: "missing configmap", env: []v1.EnvVar{cmKey("missing", "k", false)}, wantErr: `configmap "missing" not found`},
		{name: "missing configmap key", env: []v1.EnvVar{cmKey("cfg", "k", false)}, wantErr: "couldn't find key k in ConfigMap app/cfg"},
		{name: "missing secret", env: []v1.EnvVar{secKey("nope", "k", false)}, wantErr: `secret "nope" not found`},
		{name: "missing secret key", env: []v1.EnvVar{secKey("creds", "k", false)}, wantErr: "couldn't find key k in Secret app/creds"},
		{name: "optional configmap missing", env: []v1.EnvVar{cmKey("missing", "k", true)}, want: map[string]string{}},
		{name: "optional key missing", env: []v1.EnvVar{cmKey("cfg", "k", true)}, want: map[string]string{}},
		{name: "optional secret key missing", env: []v1.EnvVar{secKey("creds", "k", true)}, want: map[string]string{}},
		{name: "envFrom missing", from: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}}}},
			wantErr: `configmap "gone" not found`},
		{name: "envFrom secret missing", from: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}}}},
			wantErr: `secret "gone" not found`},
		{name: "envFrom optional missing", from: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}}},
			want: map[string]string{}},
		{name: "bad field path", env: []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.bogus"}}}},
			wantErr: `unsupported fieldPath "spec.bogus"`},
		{name: "resource of unknown container", env: []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "ghost", Resource: "limits.cpu"}}}},
			wantErr: `container "ghost" not found`},
	}
	for _, tc := range cases {
		c := &v1.Container{Name: "main", Env: tc.env, EnvFrom: tc.from}
		got, err := build(t, basePod(), c, nil, nil)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if m := Map(got); !reflect.DeepEqual(m, tc.want) {
			t.Errorf("%s: got %v want %v", tc.name, m, tc.want)
		}
	}
}

func TestBuildServiceLinksOff(t *testing.T) {
	pod := basePod()
	pod.Spec.EnableServiceLinks = ptr(false)
	kube := svc("default", "kubernetes", "10.0.0.1", v1.ServicePort{Name: "https", Port: 443})
	web := svc("app", "web", "10.0.0.30", v1.ServicePort{Port: 80})
	got, err := build(t, pod, &v1.Container{Name: "main"}, []*v1.Service{kube, web}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := Map(got)
	if m["KUBERNETES_SERVICE_HOST"] != "10.0.0.1" || m["KUBERNETES_SERVICE_PORT"] != "443" {
		t.Errorf("kubernetes service vars missing: %v", m)
	}
	if _, ok := m["WEB_SERVICE_HOST"]; ok {
		t.Errorf("service links off but WEB_SERVICE_HOST present")
	}
}
