package volumes

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func ptr[T any](v T) *T { return &v }

func TestFileMode(t *testing.T) {
	cases := []struct {
		item, def *int32
		want      os.FileMode
	}{
		{nil, nil, 0o644},
		{nil, ptr[int32](0o400), 0o400},
		{ptr[int32](0o600), ptr[int32](0o400), 0o600},
		{ptr[int32](0o7755), nil, 0o755}, // only permission bits
	}
	for _, c := range cases {
		if got := fileMode(c.item, c.def); got != c.want {
			t.Errorf("fileMode(%v, %v) = %o, want %o", c.item, c.def, got, c.want)
		}
	}
}

func TestValidPayloadPath(t *testing.T) {
	good := []string{"a", "a/b", "a.b", ".hidden", "x/..y"}
	bad := []string{"", "/abs", "..", "..data", "../x", "a/../b", "a//b", "a/./b", "a/"}
	for _, p := range good {
		if err := validPayloadPath(p); err != nil {
			t.Errorf("validPayloadPath(%q) = %v, want ok", p, err)
		}
	}
	for _, p := range bad {
		if err := validPayloadPath(p); err == nil {
			t.Errorf("validPayloadPath(%q) accepted", p)
		}
	}
}

func TestAddKeys(t *testing.T) {
	data := map[string][]byte{"a": []byte("A"), "b": []byte("B")}
	cases := []struct {
		name     string
		data     map[string][]byte
		items    []v1.KeyToPath
		def      *int32
		optional bool
		want     payload
		err      string
	}{
		{name: "all keys default mode", data: data,
			want: payload{"a": {[]byte("A"), 0o644}, "b": {[]byte("B"), 0o644}}},
		{name: "all keys with defaultMode", data: data, def: ptr[int32](0o400),
			want: payload{"a": {[]byte("A"), 0o400}, "b": {[]byte("B"), 0o400}}},
		{name: "items pick and rename", data: data, def: ptr[int32](0o440),
			items: []v1.KeyToPath{{Key: "a", Path: "dir/a.txt", Mode: ptr[int32](0o600)}, {Key: "b", Path: "b.txt"}},
			want:  payload{"dir/a.txt": {[]byte("A"), 0o600}, "b.txt": {[]byte("B"), 0o440}}},
		{name: "missing key required", data: data, items: []v1.KeyToPath{{Key: "zz", Path: "z"}},
			err: `configmap "cm" has no key "zz"`},
		{name: "missing key optional", data: data, optional: true, items: []v1.KeyToPath{{Key: "zz", Path: "z"}, {Key: "a", Path: "a"}},
			want: payload{"a": {[]byte("A"), 0o644}}},
		{name: "missing object optional", data: nil, optional: true, want: payload{}},
		{name: "escaping item path", data: data, items: []v1.KeyToPath{{Key: "a", Path: "../a"}}, err: "must not start with '..'"},
	}
	for _, c := range cases {
		p := payload{}
		err := addKeys(p, "configmap", "cm", c.data, c.items, c.def, c.optional)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(p, c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.name, p, err, c.want)
		}
	}
}

func testPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1",
			Labels: map[string]string{"b": "2", "a": "1"}, Annotations: map[string]string{"note": `say "hi"`}},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c",
			Resources: v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("32Mi")}}}}},
	}
}

func TestAddDownwardAPI(t *testing.T) {
	alloc := v1.ResourceList{v1.ResourceCPU: resource.MustParse("3")}
	items := []v1.DownwardAPIVolumeFile{
		{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		{Path: "annotations", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.annotations"}, Mode: ptr[int32](0o400)},
		{Path: "meta/name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		{Path: "uid", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
		{Path: "a", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['a']"}},
		{Path: "mem", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "c", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
		{Path: "cpu", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "c", Resource: "limits.cpu", Divisor: resource.MustParse("1m")}},
	}
	p := payload{}
	if err := addDownwardAPI(p, testPod(), items, nil, alloc); err != nil {
		t.Fatal(err)
	}
	want := payload{
		"labels":      {[]byte("a=\"1\"\nb=\"2\""), 0o644},
		"annotations": {[]byte(`note="say \"hi\""`), 0o400},
		"meta/name":   {[]byte("p"), 0o644},
		"uid":         {[]byte("uid-1"), 0o644},
		"a":           {[]byte("1"), 0o644},
		"mem":         {[]byte("32"), 0o644},
		"cpu":         {[]byte("3000"), 0o644},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %v\nwant %v", p, want)
	}
	for _, bad := range []v1.DownwardAPIVolumeFile{
		{Path: "x", FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}},
		{Path: "x", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "ghost", Resource: "limits.cpu"}},
		{Path: "x"},
	} {
		if err := addDownwardAPI(payload{}, testPod(), []v1.DownwardAPIVolumeFile{bad}, nil, alloc); err == nil {
			t.Errorf("item %+v accepted", bad)
		}
	}
}

func TestAPIPayloadProjected(t *testing.T) {
	client := fake.NewClientset(
		&v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"},
			Data: map[string]string{"text": "hello"}, BinaryData: map[string][]byte{"bin": {0, 1, 2}}},
		&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sec"}, Data: map[string][]byte{"pw": []byte("x")}},
	)
	f := fetcher{client: client, ns: "ns"}
	ctx := context.Background()
	src := &v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{DefaultMode: ptr[int32](0o440), Sources: []v1.VolumeProjection{
		{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}}},
		{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "sec"},
			Items: []v1.KeyToPath{{Key: "pw", Path: "creds/pw", Mode: ptr[int32](0o400)}}}},
		{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Optional: ptr(true)}},
		{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
	}}}
	p, err := apiPayload(ctx, f, testPod(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := payload{
		"text": {[]byte("hello"), 0o440}, "bin": {[]byte{0, 1, 2}, 0o440},
		"creds/pw": {[]byte("x"), 0o400}, "name": {[]byte("p"), 0o440},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %v\nwant %v", p, want)
	}

	errCases := []struct {
		src  v1.VolumeSource
		want string
	}{
		{v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "missing"}}}, `configmap "missing" not found`},
		{v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "missing"}}, `secret "missing" not found`},
		{v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec", Items: []v1.KeyToPath{{Key: "k", Path: "k"}}}}, `secret "sec" has no key "k"`},
		{v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}}}}},
			"service account tokens are not available yet in Skiff"},
		{v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{Path: "b"}}}}},
			"cluster trust bundles are not available yet in Skiff"},
	}
	for _, c := range errCases {
		_, err := apiPayload(ctx, f, testPod(), &c.src, nil)
		if err == nil || err.Error() != c.want {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
	// An optional missing configMap is an empty volume.
	p, err = apiPayload(ctx, f, testPod(), &v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "missing"}, Optional: ptr(true)}}, nil)
	if err != nil || len(p) != 0 {
		t.Errorf("optional missing configmap: %v, %v", p, err)
	}
}

func TestFSGroupMode(t *testing.T) {
	cases := []struct {
		mode            os.FileMode
		isDir, readOnly bool
		want            os.FileMode
	}{
		{0o600, false, false, 0o660},
		{0o600, false, true, 0o640},
		{0o400, false, true, 0o440},
		{0o644, false, true, 0o644},
		{0o755, true, false, 0o775 | os.ModeSetgid},
		{0o700, true, true, 0o750 | os.ModeSetgid},
		{0o777 | os.ModeSticky, true, false, 0o777 | os.ModeSticky | os.ModeSetgid},
		{os.ModeDir | 0o755, true, true, 0o755 | os.ModeSetgid},
	}
	for _, c := range cases {
		if got := fsGroupMode(c.mode, c.isDir, c.readOnly); got != c.want {
			t.Errorf("fsGroupMode(%v, dir=%v, ro=%v) = %v, want %v", c.mode, c.isDir, c.readOnly, got, c.want)
		}
	}
}

func TestNeedsOwnershipChange(t *testing.T) {
	onRoot := ptr(v1.FSGroupChangeOnRootMismatch)
	always := ptr(v1.FSGroupChangeAlways)
	good := os.ModeDir | os.ModeSetgid | 0o770
	cases := []struct {
		name     string
		policy   *v1.PodFSGroupChangePolicy
		gid      uint32
		mode     os.FileMode
		readOnly bool
		want     bool
	}{
		{"no policy always walks", nil, 2000, good, false, true},
		{"Always walks", always, 2000, good, false, true},
		{"root matches", onRoot, 2000, good, false, false},
		{"wrong group", onRoot, 0, good, false, true},
		{"no setgid", onRoot, 2000, os.ModeDir | 0o770, false, true},
		{"group not writable", onRoot, 2000, os.ModeDir | os.ModeSetgid | 0o750, false, true},
		{"group read enough when read-only", onRoot, 2000, os.ModeDir | os.ModeSetgid | 0o750, true, false},
		{"root not a dir", onRoot, 2000, os.ModeSetgid | 0o770, false, true},
	}
	for _, c := range cases {
		if got := needsOwnershipChange(c.policy, c.gid, c.mode, 2000, c.readOnly); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseMountInfo(t *testing.T) {
	line := `36 35 98:0 /mnt1 /var/lib/my\040dir rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue`
	e, err := parseMountInfoLine(line)
	if err != nil {
		t.Fatal(err)
	}
	want := mountEntry{ID: 36, Parent: 35, MountPoint: "/var/lib/my dir", Optional: []string{"master:1", "shared:7"}, FSType: "ext3"}
	if !reflect.DeepEqual(e, want) || !e.shared() {
		t.Errorf("got %+v, want %+v", e, want)
	}
	e, err = parseMountInfoLine(`22 27 0:21 / /proc rw,relatime - proc proc rw`)
	if err != nil || e.MountPoint != "/proc" || len(e.Optional) != 0 || e.shared() || e.FSType != "proc" {
		t.Errorf("got %+v, %v", e, err)
	}
	for _, bad := range []string{"", "1 2 3", "x 2 0:1 / /a rw - t s rw", "1 2 0:1 / /a rw shared:1 t s rw x"} {
		if _, err := parseMountInfoLine(bad); err == nil {
			t.Errorf("parsed bad line %q", bad)
		}
	}
	for in, want := range map[string]string{`a\011b`: "a\tb", `a\134b`: `a\b`, `a\0`: `a\0`, `plain`: "plain", `a\999`: `a\999`} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMountsUnder(t *testing.T) {
	entries := []mountEntry{
		{ID: 1, MountPoint: "/"},
		{ID: 10, MountPoint: "/pods/u1/volumes/secret/s"},
		{ID: 11, MountPoint: "/pods/u1/volume-subpaths/v/c/0"},
		{ID: 12, MountPoint: "/pods/u1/volumes/empty-dir/m"},
		{ID: 13, MountPoint: "/pods/u1/volumes/empty-dir/m"},
		{ID: 14, MountPoint: "/pods/u10/volumes/secret/s"},
		{ID: 15, MountPoint: "/pods/u1"},
	}
	var got []int
	for _, e := range mountsUnder(entries, "/pods/u1") {
		got = append(got, e.ID)
	}
	want := []int{11, 10, 13, 12, 15}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	if e, ok := containingMount(entries, "/pods/u1/volumes/x"); !ok || e.ID != 15 {
		t.Errorf("containingMount = %+v, %v", e, ok)
	}
	if e, ok := containingMount(entries, "/etc"); !ok || e.ID != 1 {
		t.Errorf("containingMount(/etc) = %+v, %v", e, ok)
	}
}

func TestSubPathOf(t *testing.T) {
	env := map[string]string{"POD": "web-0", "EMPTY": ""}
	cases := []struct {
		sub, expr, want, err string
	}{
		{"", "", "", ""},
		{"conf/app.yaml", "", "conf/app.yaml", ""},
		{"a/./b/", "", "a/b", ""},
		{"", "logs/$(POD)", "logs/web-0", ""},
		{"", "$$(POD)", "$(POD)", ""},
		{"", "logs/$(NOPE)/$(EMPTY)", "", "missing value for EMPTY, NOPE"},
		{"/etc", "", "", "must not be an absolute path"},
		{"a/../../b", "", "", "must not contain '..'"},
		{"", "$(POD)/..", "", "must not contain '..'"},
	}
	for _, c := range cases {
		got, err := subPathOf(&v1.VolumeMount{SubPath: c.sub, SubPathExpr: c.expr}, env)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("subPathOf(%q, %q) err = %v, want %q", c.sub, c.expr, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("subPathOf(%q, %q) = %q, %v; want %q", c.sub, c.expr, got, err, c.want)
		}
	}
}

func TestPropagation(t *testing.T) {
	priv := &v1.Container{SecurityContext: &v1.SecurityContext{Privileged: ptr(true)}}
	plain := &v1.Container{}
	cases := []struct {
		mode *v1.MountPropagationMode
		c    *v1.Container
		want runtimeapi.MountPropagation
		err  bool
	}{
		{nil, plain, runtimeapi.MountPropagation_PROPAGATION_PRIVATE, false},
		{ptr(v1.MountPropagationNone), plain, runtimeapi.MountPropagation_PROPAGATION_PRIVATE, false},
		{ptr(v1.MountPropagationHostToContainer), plain, runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, false},
		{ptr(v1.MountPropagationBidirectional), priv, runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, false},
		{ptr(v1.MountPropagationBidirectional), plain, 0, true},
		{ptr(v1.MountPropagationMode("Sideways")), plain, 0, true},
	}
	for _, c := range cases {
		got, err := propagation(c.mode, c.c)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("propagation(%v) = %v, %v", c.mode, got, err)
		}
	}
}

func TestSourceType(t *testing.T) {
	cases := map[string]v1.VolumeSource{
		"nfs":       {NFS: &v1.NFSVolumeSource{Server: "s", Path: "/"}},
		"csi":       {CSI: &v1.CSIVolumeSource{Driver: "d"}},
		"ephemeral": {Ephemeral: &v1.EphemeralVolumeSource{}},
		"image":     {Image: &v1.ImageVolumeSource{Reference: "x"}},
		"unknown":   {},
	}
	for want, src := range cases {
		if got := sourceType(&src); got != want {
			t.Errorf("sourceType = %q, want %q", got, want)
		}
	}
}

func TestCheckHostPath(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	typ := func(t v1.HostPathType) *v1.HostPathType { return &t }
	cases := []struct {
		path string
		typ  *v1.HostPathType
		err  string
	}{
		{dir + "/anything", nil, ""},
		{dir + "/anything", typ(v1.HostPathUnset), ""},
		{dir, typ(v1.HostPathDirectory), ""},
		{dir + "/nope", typ(v1.HostPathDirectory), "hostPath type check failed: " + dir + "/nope is not a directory"},
		{file, typ(v1.HostPathDirectory), "hostPath type check failed: " + file + " is not a directory"},
		{file, typ(v1.HostPathDirectoryOrCreate), "is not a directory"},
		{dir + "/made/deep", typ(v1.HostPathDirectoryOrCreate), ""},
		{file, typ(v1.HostPathFile), ""},
		{dir, typ(v1.HostPathFile), "is not a file"},
		{dir + "/newfile", typ(v1.HostPathFileOrCreate), ""},
		{dir + "/no/parent", typ(v1.HostPathFileOrCreate), "create file"},
		{dir, typ(v1.HostPathFileOrCreate), "is not a file"},
		{file, typ(v1.HostPathSocket), "is not a socket file"},
		{file, typ(v1.HostPathCharDev), "is not a character device"},
		{"/dev/null", typ(v1.HostPathCharDev), ""},
		{"/dev/null", typ(v1.HostPathBlockDev), "is not a block device"},
		{dir, typ(v1.HostPathType("Weird")), "not known"},
	}
	for _, c := range cases {
		err := checkHostPath(c.path, c.typ)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("checkHostPath(%s, %v) = %v, want %q", c.path, c.typ, err, c.err)
		}
	}
	if info, err := os.Stat(dir + "/made/deep"); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("DirectoryOrCreate made %v, %v", info, err)
	}
	if info, err := os.Stat(dir + "/newfile"); err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o644 {
		t.Errorf("FileOrCreate made %v, %v", info, err)
	}
}

func TestClaimPath(t *testing.T) {
	local := t.TempDir()
	bound := func(name, pv string) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: "c-" + "uid"},
			Spec: v1.PersistentVolumeClaimSpec{VolumeName: pv}, Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound}}
	}
	pv := func(name string, src v1.PersistentVolumeSource, claim string) *v1.PersistentVolume {
		return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: src, ClaimRef: &v1.ObjectReference{Namespace: "ns", Name: claim}}}
	}
	client := fake.NewClientset(
		bound("local", "pv-local"), pv("pv-local", v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: local}}, "local"),
		bound("hp", "pv-hp"), pv("pv-hp", v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{Path: local + "/hp", Type: ptr(v1.HostPathDirectoryOrCreate)}}, "hp"),
		&v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pending"}, Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending}},
		bound("nfs", "pv-nfs"), pv("pv-nfs", v1.PersistentVolumeSource{NFS: &v1.NFSVolumeSource{Server: "s", Path: "/"}}, "nfs"),
		bound("stolen", "pv-other"), pv("pv-other", v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: local}}, "someone-else"),
		bound("dangling", "pv-gone"),
	)
	f := fetcher{client: client, ns: "ns"}
	cases := []struct{ claim, want, err string }{
		{"local", local, ""},
		{"hp", local + "/hp", ""},
		{"pending", "", `persistentvolumeclaim "pending" is not bound`},
		{"absent", "", `persistentvolumeclaim "absent" not found`},
		{"nfs", "", "neither local nor hostPath"},
		{"stolen", "", "is bound to claim ns/someone-else"},
		{"dangling", "", `persistentvolume "pv-gone" of claim "dangling" not found`},
	}
	for _, c := range cases {
		got, err := f.claimPath(context.Background(), c.claim)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("claimPath(%s) err = %v, want %q", c.claim, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("claimPath(%s) = %q, %v; want %q", c.claim, got, err, c.want)
		}
	}
}
