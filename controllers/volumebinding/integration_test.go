package volumebinding_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/agent/storage"
	"github.com/skiff-sh/skiff/controllers/statefulset"
	"github.com/skiff-sh/skiff/controllers/volumebinding"
	"github.com/skiff-sh/skiff/controllers/volumebinding/pvmatch"
	"github.com/skiff-sh/skiff/scheduler"
	"github.com/skiff-sh/skiff/sim"
	"github.com/skiff-sh/skiff/test/framework"
)

const within = 30 * time.Second

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	why := ""
	for time.Now().Before(deadline) {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %s", what, within, why)
}

// cluster is an API server with the binder, the provisioner, the
// scheduler and the StatefulSet controller, simulated nodes, and each
// node's agent-side volume manager on its own base directory.
type cluster struct {
	client kubernetes.Interface
	nodes  []string
	bases  map[string]string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		done     []chan struct{}
		shutdown []func()
	)
	run := func(f func(context.Context) error) {
		ch := make(chan struct{})
		done = append(done, ch)
		go func() {
			defer close(ch)
			if err := f(ctx); err != nil {
				t.Errorf("component stopped: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for _, ch := range done {
			<-ch
		}
		for _, f := range shutdown {
			f()
		}
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("VOLUMEBINDING_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}

	c := &cluster{client: client, nodes: []string{"vb-0", "vb-1"}, bases: map[string]string{}}
	run(func(ctx context.Context) error {
		return sim.Run(ctx, client, sim.Options{Nodes: len(c.nodes), NamePrefix: "vb-", LeaseInterval: time.Second, Log: log})
	})
	// Each node announces its base directory, as the agent does.
	for _, n := range c.nodes {
		c.bases[n] = filepath.Join(t.TempDir(), "storage")
		eventually(t, "node "+n+" registered", func() (bool, string) {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, pvmatch.AnnLocalPathBase, c.bases[n])
			_, err := client.CoreV1().Nodes().Patch(ctx, n, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err == nil, fmt.Sprint(err)
		})
		m := storage.New(client, n, c.bases[n], log)
		run(m.Run)
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	binder, err := volumebinding.NewBinder(client, factory, volumebinding.BinderOptions{Log: log, Resync: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := volumebinding.NewProvisioner(client, factory, volumebinding.ProvisionerOptions{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	sts, err := statefulset.New(client, factory, statefulset.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	shutdown = append(shutdown, factory.Shutdown)
	run(binder.Start)
	run(prov.Start)
	run(sts.Start)
	sched := scheduler.New(client, informers.NewSharedInformerFactory(client, 0), scheduler.Options{Log: log})
	run(sched.Start)
	return c
}

func (c *cluster) namespace(t *testing.T) string {
	t.Helper()
	ns, err := c.client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "vb-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func claimSpec(class *string, size string) corev1.PersistentVolumeClaimSpec {
	return corev1.PersistentVolumeClaimSpec{
		StorageClassName: class,
		AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
	}
}

func (c *cluster) createClaim(t *testing.T, ns, name string, class *string, size string) *corev1.PersistentVolumeClaim {
	t.Helper()
	pvc, err := c.client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: claimSpec(class, size),
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pvc
}

func (c *cluster) createPod(t *testing.T, ns, name, claim string) {
	t.Helper()
	_, err := c.client.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) claim(ns, name string) (*corev1.PersistentVolumeClaim, error) {
	return c.client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), name, metav1.GetOptions{})
}

func (c *cluster) volume(name string) (*corev1.PersistentVolume, error) {
	return c.client.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
}

// waitBound waits until claim and volume are bound to each other.
func (c *cluster) waitBound(t *testing.T, ns, name, volume string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	var pvc *corev1.PersistentVolumeClaim
	var pv *corev1.PersistentVolume
	eventually(t, fmt.Sprintf("claim %s/%s bound to %s", ns, name, volume), func() (bool, string) {
		var err error
		if pvc, err = c.claim(ns, name); err != nil {
			return false, err.Error()
		}
		if pv, err = c.volume(volume); err != nil {
			return false, err.Error()
		}
		ok := pvc.Status.Phase == corev1.ClaimBound && pvc.Spec.VolumeName == volume && pv.Status.Phase == corev1.VolumeBound &&
			pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.UID == pvc.UID
		return ok, fmt.Sprintf("claim %s volume %q; volume %s claimRef %v", pvc.Status.Phase, pvc.Spec.VolumeName, pv.Status.Phase, pv.Spec.ClaimRef)
	})
	return pvc, pv
}

// reasons lists the reasons of the Events about a claim.
func (c *cluster) reasons(ns, name string) map[string]string {
	out := map[string]string{}
	list, err := c.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return out
	}
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "PersistentVolumeClaim" && e.InvolvedObject.Name == name {
			out[e.Reason] = e.Message
		}
	}
	return out
}

func (c *cluster) podNode(ns, name string) string {
	p, err := c.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return p.Spec.NodeName
}

func (c *cluster) deletePodAndWait(t *testing.T, ns, name string) {
	t.Helper()
	if err := c.client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod "+name+" gone", func() (bool, string) {
		_, err := c.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

func TestVolumeBinding(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	empty := ""

	eventually(t, "the built-in class", func() (bool, string) {
		sc, err := c.client.StorageV1().StorageClasses().Get(ctx, pvmatch.LocalPathClass, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ok := sc.Provisioner == pvmatch.LocalPathProvisioner && pvmatch.IsDefaultClass(sc) && pvmatch.WaitsForConsumer(sc) &&
			sc.ReclaimPolicy != nil && *sc.ReclaimPolicy == corev1.PersistentVolumeReclaimDelete
		return ok, fmt.Sprintf("%+v", sc)
	})

	t.Run("a claim binds a matching volume", func(t *testing.T) {
		ns := c.namespace(t)
		// The named volume is of a class of its own, so only the claim
		// naming it can have it.
		named := hostPathVolume(ns+"-named", "1Gi")
		named.Spec.StorageClassName = "manual"
		for _, pv := range []*corev1.PersistentVolume{
			hostPathVolume(ns+"-small", "500Mi"), hostPathVolume(ns+"-fits", "2Gi"), hostPathVolume(ns+"-big", "10Gi"), named,
		} {
			if _, err := c.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		c.createClaim(t, ns, "data", &empty, "1Gi")
		pvc, pv := c.waitBound(t, ns, "data", ns+"-fits")
		if pvc.Annotations[pvmatch.AnnBindCompleted] != "yes" || pvc.Annotations[pvmatch.AnnBoundByController] != "yes" ||
			pv.Annotations[pvmatch.AnnBoundByController] != "yes" {
			t.Errorf("binding annotations: claim %v, volume %v", pvc.Annotations, pv.Annotations)
		}
		if got := pvc.Status.Capacity[corev1.ResourceStorage]; got.String() != "2Gi" || len(pvc.Status.AccessModes) != 1 {
			t.Errorf("claim status %+v", pvc.Status)
		}

		// A claim naming its volume is bound to it, and the binder does
		// not claim the choice.
		manual := "manual"
		spec := claimSpec(&manual, "1Gi")
		spec.VolumeName = ns + "-named"
		if _, err := c.client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "named"}, Spec: spec,
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pvc, _ = c.waitBound(t, ns, "named", ns+"-named")
		if _, ok := pvc.Annotations[pvmatch.AnnBoundByController]; ok {
			t.Errorf("a user's binding marked as the binder's: %v", pvc.Annotations)
		}

		// Retain: the volume outlives its claim, Released.
		if err := c.client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "volume released", func() (bool, string) {
			pv, err := c.volume(ns + "-fits")
			if err != nil {
				return false, err.Error()
			}
			return pv.Status.Phase == corev1.VolumeReleased, string(pv.Status.Phase)
		})
		time.Sleep(500 * time.Millisecond)
		if pv, err := c.volume(ns + "-fits"); err != nil || pv.Status.Phase != corev1.VolumeReleased {
			t.Errorf("a Retain volume should stay Released: %v %v", pv, err)
		}
	})

	t.Run("a local-path claim waits for its first consumer", func(t *testing.T) {
		ns := c.namespace(t)
		class := pvmatch.LocalPathClass
		pvc := c.createClaim(t, ns, "data", &class, "1Gi")
		eventually(t, "WaitForFirstConsumer event", func() (bool, string) {
			r := c.reasons(ns, "data")
			_, ok := r[volumebinding.ReasonWaitForFirstConsumer]
			return ok, fmt.Sprint(r)
		})
		time.Sleep(300 * time.Millisecond)
		if cur, err := c.claim(ns, "data"); err != nil || cur.Status.Phase != corev1.ClaimPending || cur.Spec.VolumeName != "" {
			t.Fatalf("an unused local-path claim should stay Pending: %+v %v", cur, err)
		}
		if _, err := c.volume(volumebinding.VolumeName(pvc)); !apierrors.IsNotFound(err) {
			t.Fatalf("a volume was provisioned before any pod used the claim: %v", err)
		}

		c.createPod(t, ns, "first", "data")
		pvName := volumebinding.VolumeName(pvc)
		cur, pv := c.waitBound(t, ns, "data", pvName)
		node := c.podNode(ns, "first")
		if node == "" || cur.Annotations[pvmatch.AnnSelectedNode] != node {
			t.Errorf("selected node %q, pod on %q", cur.Annotations[pvmatch.AnnSelectedNode], node)
		}
		if hostOf(pv) != node || pv.Annotations[pvmatch.AnnProvisionedBy] != pvmatch.LocalPathProvisioner {
			t.Errorf("volume affinity %v, annotations %v", pv.Spec.NodeAffinity, pv.Annotations)
		}
		dir := filepath.Join(c.bases[node], volumebinding.VolumeDir(cur))
		if pv.Spec.Local == nil || pv.Spec.Local.Path != dir {
			t.Fatalf("volume path %+v, want %s", pv.Spec.Local, dir)
		}
		eventually(t, "directory made by the node", func() (bool, string) {
			info, err := os.Stat(dir)
			return err == nil && info.IsDir() && info.Mode().Perm() == 0o777, fmt.Sprint(info, err)
		})
		r := c.reasons(ns, "data")
		for _, want := range []string{volumebinding.ReasonExternalProvisioning, volumebinding.ReasonProvisioning, volumebinding.ReasonProvisioningSucceeded} {
			if _, ok := r[want]; !ok {
				t.Errorf("no %s event on the claim: %v", want, r)
			}
		}

		// Another pod of the claim follows the volume to its node.
		c.createPod(t, ns, "second", "data")
		eventually(t, "second pod scheduled", func() (bool, string) {
			n := c.podNode(ns, "second")
			return n != "", n
		})
		if n := c.podNode(ns, "second"); n != node {
			t.Errorf("second pod on %s, volume on %s", n, node)
		}
		if err := os.WriteFile(filepath.Join(dir, "payload"), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}

		// Deleting the claim releases the volume, but the node keeps the
		// data while its pods still run; once they are gone, data and
		// volume are deleted.
		if err := c.client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "volume released", func() (bool, string) {
			pv, err := c.volume(pvName)
			return err == nil && pv.Status.Phase == corev1.VolumeReleased, fmt.Sprint(err)
		})
		time.Sleep(300 * time.Millisecond)
		if _, err := os.Stat(filepath.Join(dir, "payload")); err != nil {
			t.Fatalf("data removed while pods still use it: %v", err)
		}
		c.deletePodAndWait(t, ns, "first")
		c.deletePodAndWait(t, ns, "second")
		eventually(t, "volume deleted", func() (bool, string) {
			pv, err := c.volume(pvName)
			if err == nil {
				return false, string(pv.Status.Phase)
			}
			return apierrors.IsNotFound(err), err.Error()
		})
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Errorf("directory left behind: %v", err)
		}
	})

	t.Run("a Retain local-path volume keeps its data", func(t *testing.T) {
		ns := c.namespace(t)
		keep := volumebinding.LocalPathClass()
		keep.Name, keep.Annotations = ns+"-keep", nil
		retain := corev1.PersistentVolumeReclaimRetain
		keep.ReclaimPolicy = &retain
		if _, err := c.client.StorageV1().StorageClasses().Create(ctx, keep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pvc := c.createClaim(t, ns, "kept", &keep.Name, "1Gi")
		c.createPod(t, ns, "user", "kept")
		_, pv := c.waitBound(t, ns, "kept", volumebinding.VolumeName(pvc))
		eventually(t, "directory made", func() (bool, string) {
			_, err := os.Stat(pv.Spec.Local.Path)
			return err == nil, fmt.Sprint(err)
		})
		c.deletePodAndWait(t, ns, "user")
		if err := c.client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "kept", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "volume released", func() (bool, string) {
			cur, err := c.volume(pv.Name)
			return err == nil && cur.Status.Phase == corev1.VolumeReleased, fmt.Sprint(cur.Status.Phase, err)
		})
		time.Sleep(time.Second)
		if _, err := c.volume(pv.Name); err != nil {
			t.Errorf("Retain volume deleted: %v", err)
		}
		if _, err := os.Stat(pv.Spec.Local.Path); err != nil {
			t.Errorf("Retain volume's data removed: %v", err)
		}
	})

	t.Run("a StatefulSet's claims are provisioned", func(t *testing.T) {
		ns := c.namespace(t)
		replicas := int32(2)
		class := pvmatch.LocalPathClass
		labels := map[string]string{"app": "db"}
		set := &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec: appsv1.StatefulSetSpec{
				Replicas:    &replicas,
				ServiceName: "db",
				Selector:    &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					// The controller adds the claims' volumes to each pod.
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "busybox"}}},
				},
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: claimSpec(&class, "1Gi")}},
			},
		}
		if _, err := c.client.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "both replicas ready", func() (bool, string) {
			s, err := c.client.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return s.Status.ReadyReplicas == 2, fmt.Sprintf("ready %d", s.Status.ReadyReplicas)
		})
		for i := range 2 {
			name := fmt.Sprintf("data-db-%d", i)
			pvc, err := c.claim(ns, name)
			if err != nil {
				t.Fatal(err)
			}
			_, pv := c.waitBound(t, ns, name, volumebinding.VolumeName(pvc))
			if node := c.podNode(ns, fmt.Sprintf("db-%d", i)); hostOf(pv) != node {
				t.Errorf("%s on %s, its volume on %s", name, node, hostOf(pv))
			}
		}
	})
}

func hostPathVolume(name, size string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
	}
}

func hostOf(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == corev1.LabelHostname && len(e.Values) == 1 {
				return e.Values[0]
			}
		}
	}
	return ""
}
