package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/runtime"
)

// nodeState is what a node has on the machine, to find leaks.
type nodeState struct {
	sandboxes, containers int
	mounts                []string
	netns                 []string
	ips                   []string
	podDirs               []string
	cgroups               []string
}

func (s nodeState) String() string {
	return fmt.Sprintf("sandboxes=%d containers=%d mounts=%v netns=%v ips=%v podDirs=%v cgroups=%v",
		s.sandboxes, s.containers, s.mounts, s.netns, s.ips, s.podDirs, s.cgroups)
}

func (c *cluster) nodeState(t *testing.T) nodeState {
	t.Helper()
	var st nodeState
	conn, err := grpc.NewClient("unix://"+runtime.SocketFor(filepath.Join(c.node.DataDir, "containerd")), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx := context.Background()
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	st.sandboxes, st.containers = len(sbs.Items), len(cs.Containers)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	podsDir := filepath.Join(c.node.DataDir, "pods") + "/"
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], podsDir) {
			st.mounts = append(st.mounts, f[4])
		}
	}
	// The node's containerd mounts pod network namespaces under its own
	// state dir (other tests' namespaces live in /var/run/netns).
	_ = filepath.WalkDir(filepath.Join(c.node.DataDir, "containerd", "state"), func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "netns" {
			if ents, err := os.ReadDir(path); err == nil {
				for _, e := range ents {
					st.netns = append(st.netns, e.Name())
				}
			}
			return filepath.SkipDir
		}
		return nil
	})
	ipam := filepath.Join(c.node.DataDir, "cni", "ipam", "skiff")
	if ents, err := os.ReadDir(ipam); err == nil {
		for _, e := range ents {
			if n := e.Name(); n != "lock" && !strings.HasPrefix(n, "last_reserved_ip") {
				st.ips = append(st.ips, n)
			}
		}
	}
	if ents, err := os.ReadDir(filepath.Join(c.node.DataDir, "pods")); err == nil {
		for _, e := range ents {
			st.podDirs = append(st.podDirs, e.Name())
		}
	}
	ctrls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ctrls {
		pods, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", e.Name(), "skiff", c.node.Name))
		for _, p := range pods {
			if p.IsDir() {
				st.cgroups = append(st.cgroups, e.Name()+"/"+p.Name())
			}
		}
	}
	return st
}

// TestNothingLeaks creates and deletes 100 pods with volumes and checks
// that the node is left as it was: no container, sandbox, mount, network
// namespace, IP allocation, pod directory or cgroup.
func TestNothingLeaks(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "leaks")
	ctx := context.Background()
	if _, err := c.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec"}, StringData: map[string]string{"p": "s3cret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := c.nodeState(t)
	// The checks look where a running pod leaves its traces.
	c.createPod(t, busyboxPod(ns, "probe", "sleep", "3600"))
	c.waitPod(t, ns, "probe", 60*time.Second, "running", running)
	if during := c.nodeState(t); during.sandboxes == 0 || len(during.netns) == 0 || len(during.ips) == 0 || len(during.podDirs) == 0 {
		t.Fatalf("a running pod left no sandbox, network namespace, IP or pod dir where the leak check looks: %s", during)
	}
	if err := c.client.CoreV1().Pods(ns).Delete(ctx, "probe", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	const total, parallel = 100, 10
	var wg sync.WaitGroup
	errs := make(chan error, total)
	sem := make(chan struct{}, parallel)
	for i := 0; i < total; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("cycle-%d", i)
			pod := busyboxPod(ns, name, "sh", "-c", "cat /cfg/k /sec/p > /scratch/out; exec sleep 3600")
			pod.Spec.Volumes = []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
			}
			pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
				{Name: "cfg", MountPath: "/cfg"}, {Name: "sec", MountPath: "/sec"}, {Name: "scratch", MountPath: "/scratch", SubPath: "sub"},
			}
			if _, err := c.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				errs <- err
				return
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				p, err := c.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				if err == nil && ready(p) {
					break
				}
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("%s not ready: %s", name, statusString(p))
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := c.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Wait for every pod object to go, then for the node to settle.
	deadline := time.Now().Add(90 * time.Second)
	for {
		list, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(list.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pods not deleted: %d left", len(list.Items))
		}
		time.Sleep(200 * time.Millisecond)
	}
	var after nodeState
	for time.Now().Before(deadline) {
		after = c.nodeState(t)
		if after.String() == before.String() {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("the node did not return to its state before the pods:\nbefore: %s\nafter:  %s", before, after)
}
