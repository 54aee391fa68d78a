package volumes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// versioned is the content of every key at version n: big enough that a
// torn write would be visible.
func versioned(n int) string {
	return strings.Repeat(fmt.Sprintf("v%05d\n", n), 3000)
}

// uniformVersion returns the single version s is made of, or -1.
func uniformVersion(s string) int {
	if len(s) == 0 || len(s)%7 != 0 {
		return -1
	}
	var n int
	if _, err := fmt.Sscanf(s[:7], "v%05d\n", &n); err != nil {
		return -1
	}
	if s != versioned(n) {
		return -1
	}
	return n
}

func readAt(dirfd int, name string) (string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

func TestRefreshIsAtomic(t *testing.T) {
	requireRoot(t)
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"},
		Data: map[string]string{"a": versioned(0), "b": versioned(0)}}
	m, client := newManager(t, cm)
	pod := volumePod("uid-atomic", v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "cm"}}}})
	ctx := context.Background()
	pv, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	vol, _ := pv.Get("cfg")

	var (
		stop            atomic.Bool
		consistent      atomic.Int64
		mixed, torn     atomic.Int64
		maxSeen, errCnt atomic.Int64
		wg              sync.WaitGroup
		firstProblem    atomic.Value
	)
	problem := func(format string, args ...any) {
		firstProblem.CompareAndSwap(nil, fmt.Sprintf(format, args...))
	}
	// Readers that pin a version through ..data must see a and b of the
	// same version; readers through the key links must see whole files.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				dirfd, err := unix.Open(filepath.Join(vol.Path, dataLink), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					errCnt.Add(1) // the version was removed under us: retry
					continue
				}
				a, errA := readAt(dirfd, "a")
				b, errB := readAt(dirfd, "b")
				unix.Close(dirfd)
				if errA != nil || errB != nil {
					errCnt.Add(1)
					continue
				}
				va, vb := uniformVersion(a), uniformVersion(b)
				switch {
				case va < 0 || vb < 0:
					torn.Add(1)
					problem("torn file: a %d b %d", va, vb)
				case va != vb:
					mixed.Add(1)
					problem("mixed versions: a %d b %d", va, vb)
				default:
					consistent.Add(1)
					if int64(va) > maxSeen.Load() {
						maxSeen.Store(int64(va))
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			b, err := os.ReadFile(filepath.Join(vol.Path, "a"))
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					problem("read through link: %v", err)
				}
				continue
			}
			if uniformVersion(string(b)) < 0 {
				torn.Add(1)
				problem("torn read through the key link")
			}
		}
	}()

	const updates = 100
	for i := 1; i <= updates; i++ {
		cm.Data = map[string]string{"a": versioned(i), "b": versioned(i)}
		if _, err := client.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := m.Refresh(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(20 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if p := firstProblem.Load(); p != nil {
		t.Errorf("readers saw: %v (mixed %d, torn %d)", p, mixed.Load(), torn.Load())
	}
	if consistent.Load() == 0 || maxSeen.Load() != updates {
		t.Errorf("readers made %d consistent reads, last version seen %d (want %d)", consistent.Load(), maxSeen.Load(), updates)
	}
	t.Logf("consistent reads %d, retries %d", consistent.Load(), errCnt.Load())

	// Only the current version is left.
	entries, err := os.ReadDir(vol.Path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 4 { // ..<version>, ..data, a, b
		t.Errorf("volume dir holds %v", names)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestRefreshKeysAndSources(t *testing.T) {
	requireRoot(t)
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}, Data: map[string]string{"a": "1", "b": "2"}}
	sec := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sec"}, Data: map[string][]byte{"k": []byte("old")}}
	m, client := newManager(t, cm, sec)
	pod := volumePod("uid-refresh",
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "cm"}, Optional: ptr(true)}}},
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec"}}},
		v1.Volume{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
	)
	ctx := context.Background()
	pv, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := pv.Get("cfg")
	secVol, _ := pv.Get("sec")
	info, _ := pv.Get("info")

	cm.Data = map[string]string{"a": "10", "c": "30"}
	if _, err := client.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sec.Data = map[string][]byte{"k": []byte("new")}
	if _, err := client.CoreV1().Secrets("ns").Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod.Labels = map[string]string{"app": "web", "version": "2"}
	if err := m.Refresh(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(cfg.Path, "a")) != "10" || readFile(t, filepath.Join(cfg.Path, "c")) != "30" {
		t.Error("configMap not refreshed")
	}
	if _, err := os.Lstat(filepath.Join(cfg.Path, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removed key b still linked: %v", err)
	}
	if readFile(t, filepath.Join(secVol.Path, "k")) != "new" {
		t.Error("secret not refreshed")
	}
	if got := readFile(t, filepath.Join(info.Path, "labels")); got != "app=\"web\"\nversion=\"2\"" {
		t.Errorf("labels = %q", got)
	}

	// The optional configMap goes away: the volume empties. The secret goes
	// away: that volume keeps its content and Refresh reports the error.
	if err := client.CoreV1().ConfigMaps("ns").Delete(ctx, "cm", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Secrets("ns").Delete(ctx, "sec", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = m.Refresh(ctx, pod)
	if err == nil || !strings.Contains(err.Error(), `MountVolume.SetUp failed for volume "sec" : secret "sec" not found`) {
		t.Errorf("refresh with a missing secret: %v", err)
	}
	entries, _ := os.ReadDir(cfg.Path)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") {
			t.Errorf("emptied optional volume still has %s", e.Name())
		}
	}
	if readFile(t, filepath.Join(secVol.Path, "k")) != "new" {
		t.Error("secret volume lost its content when the secret disappeared")
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestRefreshAfterTeardownMakesNothing(t *testing.T) {
	requireRoot(t)
	m, _ := newManager(t, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sec"}, Data: map[string][]byte{"k": []byte("v")}})
	pod := volumePod("uid-late", v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec"}}})
	ctx := context.Background()
	if _, err := m.Setup(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := m.Teardown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(ctx, pod); err != nil {
		t.Fatal(err)
	}
	podDir, _ := m.podDir(pod.UID)
	if left := mountsBelow(t, podDir); len(left) != 0 {
		t.Errorf("refresh after teardown mounted %v", left)
	}
	if _, err := os.Stat(filepath.Join(podDir, "volumes", "secret", "sec")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refresh after teardown recreated the volume: %v", err)
	}
}
