package node

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestLocalPathVolumes: a claim of the default local-path class is
// provisioned on the node of its first pod, keeps its data across pods,
// backs a StatefulSet's claim templates, and is removed with its claim.
func TestLocalPathVolumes(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "storage")
	ctx := context.Background()
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	created, err := c.client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Spec.StorageClassName == nil || *created.Spec.StorageClassName != "local-path" {
		t.Fatalf("claim without a class did not get the default local-path: %v", created.Spec.StorageClassName)
	}
	withClaim := func(name, script string) *corev1.Pod {
		p := busyboxPod(ns, name, "sh", "-c", script)
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		return p
	}
	c.createPod(t, withClaim("writer", "echo persisted > /data/file"))
	c.waitPod(t, ns, "writer", 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	pvc, err := c.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil || pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		t.Fatalf("claim not bound: %v %+v", err, pvc.Status)
	}
	pv, err := c.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil || pv.Spec.Local == nil || !strings.HasPrefix(pv.Spec.Local.Path, c.node.DataDir) {
		t.Fatalf("volume: %v %+v", err, pv.Spec.PersistentVolumeSource)
	}
	dir := pv.Spec.Local.Path
	c.createPod(t, withClaim("reader", "cat /data/file"))
	c.waitPod(t, ns, "reader", 60*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if out := c.kubectl(t, "logs", "-n", ns, "reader"); out != "persisted\n" {
		t.Errorf("second pod read %q from the claim", out)
	}

	// A StatefulSet's claim templates get volumes too.
	ss := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(int32(2)),
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(0)),
					Containers: []corev1.Container{{Name: "db", Image: "busybox", Command: []string{"sh", "-c", "hostname > /var/lib/db/who; exec sleep 3600"},
						VolumeMounts: []corev1.VolumeMount{{Name: "state", MountPath: "/var/lib/db"}}}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "state"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("100Mi")}},
				},
			}},
		},
	}
	if _, err := c.client.AppsV1().StatefulSets(ns).Create(ctx, ss, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitPod(t, ns, "db-1", 120*time.Second, "ready", ready)
	if out := c.kubectl(t, "exec", "-n", ns, "db-1", "--", "cat", "/var/lib/db/who"); out != "db-1\n" {
		t.Errorf("db-1's volume holds %q", out)
	}

	// Deleting the claim (its pods are done) removes the data and the volume.
	for _, p := range []string{"writer", "reader"} {
		_ = c.client.CoreV1().Pods(ns).Delete(ctx, p, metav1.DeleteOptions{})
		c.waitGone(t, ns, p, 30*time.Second)
	}
	if err := c.client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		_, pvErr := c.client.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if os.IsNotExist(statErr) && pvErr != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after deleting the claim: dir stat %v, volume %v", statErr, pvErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
