package job_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/controllers/job"
	"github.com/skiff-sh/skiff/sim"
	"github.com/skiff-sh/skiff/test/framework"
)

// cluster is a real server with one simulated node and the Job
// controller running, shared by the subtests of TestJobController.
type cluster struct {
	client     kubernetes.Interface
	kubeconfig string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := job.New(client, factory, job.Options{
		BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Log: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{}, 2)
	go func() { _ = ctrl.Start(ctx); done <- struct{}{} }()
	go func() {
		_ = sim.Run(ctx, client, sim.Options{Nodes: 1, RunDuration: 300 * time.Millisecond,
			TerminationDelay: 100 * time.Millisecond, Log: quiet})
		done <- struct{}{}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		factory.Shutdown()
	})
	return &cluster{client: client, kubeconfig: srv.Kubeconfig}
}

// namespace makes a namespace for one subtest.
func (c *cluster) namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "job-"}}
	ns, err := c.client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// newJob is a Job whose pods run on the simulated node; the simulator
// lets them succeed after 300ms, or fail with the exit code given.
func newJob(name string, exitCode int, mods ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{sim.AnnotationExitCode: fmt.Sprint(exitCode)}},
				Spec: corev1.PodSpec{
					NodeName:      "sim-0",
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
				},
			},
		},
	}
	for _, m := range mods {
		m(j)
	}
	return j
}

func (c *cluster) create(t *testing.T, ns string, j *batchv1.Job) *batchv1.Job {
	t.Helper()
	j, err := c.client.BatchV1().Jobs(ns).Create(context.Background(), j, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// waitJob polls the Job until ok says so, failing after the timeout.
func (c *cluster) waitJob(t *testing.T, ns, name string, timeout time.Duration, what string, ok func(*batchv1.Job) bool) *batchv1.Job {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *batchv1.Job
	for time.Now().Before(deadline) {
		j, err := c.client.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			last = j
			if ok(j) {
				return j
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("job %s/%s: %s: not within %v; status: %+v", ns, name, what, timeout, last.Status)
	}
	t.Fatalf("job %s/%s: %s: not within %v", ns, name, what, timeout)
	return nil
}

func (c *cluster) pods(t *testing.T, ns, jobName string) []corev1.Pod {
	t.Helper()
	sel := labels.SelectorFromSet(labels.Set{batchv1.JobNameLabel: jobName}).String()
	list, err := c.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// waitEvent waits for an Event with the reason on the Job.
func (c *cluster) waitEvent(t *testing.T, ns, job, reason string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		list, err := c.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err == nil {
			for _, e := range list.Items {
				if e.InvolvedObject.Kind == "Job" && e.InvolvedObject.Name == job && e.Reason == reason {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("no %s event on job %s/%s", reason, ns, job)
}

func condition(j *batchv1.Job, ct batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == ct && j.Status.Conditions[i].Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func has(ct batchv1.JobConditionType) func(*batchv1.Job) bool {
	return func(j *batchv1.Job) bool { return condition(j, ct) != nil }
}

func TestJobController(t *testing.T) {
	c := startCluster(t)

	t.Run("completions 3, parallelism 2", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t)
		c.create(t, ns, newJob("pi", 0, func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To(int32(3)), ptr.To(int32(2))
			j.Spec.Template.Annotations[sim.AnnotationRunSeconds] = "1.5"
		}))
		sawTwo := false
		j := c.waitJob(t, ns, "pi", 20*time.Second, "complete", func(j *batchv1.Job) bool {
			if j.Status.Active > 2 {
				t.Errorf("active %d exceeds parallelism 2", j.Status.Active)
			}
			sawTwo = sawTwo || j.Status.Active == 2
			return condition(j, batchv1.JobComplete) != nil
		})
		if j.Status.Succeeded != 3 || j.Status.Failed != 0 || j.Status.Active != 0 {
			t.Errorf("succeeded/failed/active = %d/%d/%d, want 3/0/0", j.Status.Succeeded, j.Status.Failed, j.Status.Active)
		}
		if condition(j, batchv1.JobSuccessCriteriaMet) == nil {
			t.Errorf("no SuccessCriteriaMet condition before Complete: %+v", j.Status.Conditions)
		}
		if j.Status.StartTime == nil || j.Status.CompletionTime == nil {
			t.Errorf("startTime %v, completionTime %v", j.Status.StartTime, j.Status.CompletionTime)
		}
		if !sawTwo {
			t.Errorf("never saw two pods active at once")
		}
		c.waitEvent(t, ns, "pi", "SuccessfulCreate")
		c.waitEvent(t, ns, "pi", "Completed")
		// Finished, the Job is left alone: no more writes.
		rv := j.ResourceVersion
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if now := c.waitJob(t, ns, "pi", time.Second, "readable", has(batchv1.JobComplete)); now.ResourceVersion != rv {
				t.Fatalf("the finished Job was written again: %+v", now.Status)
			}
		}
		pods := c.pods(t, ns, "pi")
		if len(pods) != 3 {
			t.Errorf("%d pods, want 3", len(pods))
		}
		for _, p := range pods {
			if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
				t.Errorf("pod %s still holds the tracking finalizer", p.Name)
			}
			if ref := metav1.GetControllerOf(&p); ref == nil || ref.Name != "pi" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
				t.Errorf("pod %s controller reference %+v", p.Name, ref)
			}
			if p.GenerateName != "pi-" {
				t.Errorf("pod %s generateName %q, want pi-", p.Name, p.GenerateName)
			}
		}
	})

	t.Run("backoffLimit reached fails the Job", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t)
		c.create(t, ns, newJob("fails", 3, func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To(int32(1)) }))
		j := c.waitJob(t, ns, "fails", 20*time.Second, "failed", has(batchv1.JobFailed))
		if c := condition(j, batchv1.JobFailed); c.Reason != batchv1.JobReasonBackoffLimitExceeded {
			t.Errorf("reason %q, want BackoffLimitExceeded", c.Reason)
		}
		if condition(j, batchv1.JobFailureTarget) == nil {
			t.Errorf("no FailureTarget condition: %+v", j.Status.Conditions)
		}
		if j.Status.Failed != 2 || j.Status.Succeeded != 0 {
			t.Errorf("failed/succeeded = %d/%d, want 2/0", j.Status.Failed, j.Status.Succeeded)
		}
		c.waitEvent(t, ns, "fails", batchv1.JobReasonBackoffLimitExceeded)
		if n := len(c.pods(t, ns, "fails")); n != 2 {
			t.Errorf("%d pods, want 2 (one try and one retry)", n)
		}
	})

	t.Run("activeDeadlineSeconds", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t)
		c.create(t, ns, newJob("slow", 0, func(j *batchv1.Job) {
			j.Spec.ActiveDeadlineSeconds = ptr.To(int64(1))
			j.Spec.Template.Annotations[sim.AnnotationRunSeconds] = "30"
		}))
		j := c.waitJob(t, ns, "slow", 20*time.Second, "failed", has(batchv1.JobFailed))
		if c := condition(j, batchv1.JobFailed); c.Reason != batchv1.JobReasonDeadlineExceeded {
			t.Errorf("reason %q, want DeadlineExceeded", c.Reason)
		}
		if j.Status.Active != 0 || j.Status.Failed != 1 {
			t.Errorf("active/failed = %d/%d, want 0/1", j.Status.Active, j.Status.Failed)
		}
		c.waitEvent(t, ns, "slow", batchv1.JobReasonDeadlineExceeded)
		deadline := time.Now().Add(10 * time.Second)
		for len(c.pods(t, ns, "slow")) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if pods := c.pods(t, ns, "slow"); len(pods) > 0 {
			t.Errorf("the running pod was not deleted: %s", pods[0].Name)
		}
	})

	t.Run("Indexed", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t)
		c.create(t, ns, newJob("ix", 0, func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To(int32(3)), ptr.To(int32(3))
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		}))
		j := c.waitJob(t, ns, "ix", 20*time.Second, "complete", has(batchv1.JobComplete))
		if j.Status.CompletedIndexes != "0-2" || j.Status.Succeeded != 3 {
			t.Errorf("completedIndexes %q succeeded %d, want 0-2 and 3", j.Status.CompletedIndexes, j.Status.Succeeded)
		}
		seen := map[string]bool{}
		for _, p := range c.pods(t, ns, "ix") {
			ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
			seen[ix] = true
			if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix {
				t.Errorf("pod %s label index %q, annotation %q", p.Name, p.Labels[batchv1.JobCompletionIndexAnnotation], ix)
			}
			if p.Spec.Hostname != "ix-"+ix || p.GenerateName != "ix-"+ix+"-" {
				t.Errorf("pod %s hostname %q generateName %q", p.Name, p.Spec.Hostname, p.GenerateName)
			}
		}
		if len(seen) != 3 || !seen["0"] || !seen["1"] || !seen["2"] {
			t.Errorf("indexes seen %v, want 0, 1, 2", seen)
		}
	})

	t.Run("backoffLimitPerIndex", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t)
		c.create(t, ns, newJob("perix", 1, func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To(int32(2)), ptr.To(int32(2))
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.BackoffLimitPerIndex = ptr.To(int32(1))
		}))
		j := c.waitJob(t, ns, "perix", 20*time.Second, "failed", has(batchv1.JobFailed))
		if cond := condition(j, batchv1.JobFailed); cond.Reason != batchv1.JobReasonFailedIndexes {
			t.Errorf("reason %q, want FailedIndexes", cond.Reason)
		}
		if got := ptr.Deref(j.Status.FailedIndexes, ""); got != "0-1" || j.Status.Failed != 4 {
			t.Errorf("failedIndexes %q failed %d, want 0-1 and 4 (two tries per index)", got, j.Status.Failed)
		}
		counts := map[string]int{}
		for _, p := range c.pods(t, ns, "perix") {
			counts[p.Annotations[batchv1.JobCompletionIndexAnnotation]+"/"+p.Annotations[batchv1.JobIndexFailureCountAnnotation]]++
		}
		if want := map[string]int{"0/0": 1, "0/1": 1, "1/0": 1, "1/1": 1}; !reflect.DeepEqual(counts, want) {
			t.Errorf("pods by index/failure count %v, want %v", counts, want)
		}
	})

	t.Run("suspend and resume", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t)
		c.create(t, ns, newJob("sus", 0, func(j *batchv1.Job) {
			j.Spec.Template.Annotations[sim.AnnotationRunSeconds] = "30"
		}))
		first := c.waitJob(t, ns, "sus", 10*time.Second, "one active pod", func(j *batchv1.Job) bool { return j.Status.Active == 1 })
		patch := []byte(`{"spec":{"suspend":true}}`)
		ctx := context.Background()
		if _, err := c.client.BatchV1().Jobs(ns).Patch(ctx, "sus", "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		j := c.waitJob(t, ns, "sus", 10*time.Second, "suspended with no pods", func(j *batchv1.Job) bool {
			return condition(j, batchv1.JobSuspended) != nil && j.Status.Active == 0 && ptr.Deref(j.Status.Terminating, 1) == 0
		})
		if cond := condition(j, batchv1.JobSuspended); cond.Reason != "JobSuspended" {
			t.Errorf("Suspended reason %q", cond.Reason)
		}
		if j.Status.Failed != 0 {
			t.Errorf("suspending counted %d failures", j.Status.Failed)
		}
		time.Sleep(1100 * time.Millisecond) // startTime has second precision
		patch = []byte(`{"spec":{"suspend":false}}`)
		if _, err := c.client.BatchV1().Jobs(ns).Patch(ctx, "sus", "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		j = c.waitJob(t, ns, "sus", 10*time.Second, "resumed and running", func(j *batchv1.Job) bool { return j.Status.Active == 1 })
		var cond *batchv1.JobCondition
		for i := range j.Status.Conditions {
			if j.Status.Conditions[i].Type == batchv1.JobSuspended {
				cond = &j.Status.Conditions[i]
			}
		}
		if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "JobResumed" {
			t.Errorf("Suspended condition after resume: %+v", cond)
		}
		if !j.Status.StartTime.After(first.Status.StartTime.Time) {
			t.Errorf("startTime %v not reset on resume (was %v)", j.Status.StartTime, first.Status.StartTime)
		}
	})

	t.Run("ttlSecondsAfterFinished deletes the Job", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t)
		c.create(t, ns, newJob("ttl", 0, func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To(int32(2)) }))
		c.waitJob(t, ns, "ttl", 20*time.Second, "complete", has(batchv1.JobComplete))
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			_, err := c.client.BatchV1().Jobs(ns).Get(context.Background(), "ttl", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the Job was not deleted after its TTL")
	})

	t.Run("pods deleted as soon as they finish are counted once", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w, err := c.client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created := map[string]bool{}
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for ev := range w.ResultChan() {
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				if ev.Type == watch.Added {
					created[p.Name] = true
				}
				if p.Status.Phase == corev1.PodSucceeded && p.DeletionTimestamp == nil {
					_ = c.client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
				}
			}
		}()
		c.create(t, ns, newJob("eager", 0, func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To(int32(4)), ptr.To(int32(2))
			j.Spec.Template.Annotations[sim.AnnotationRunSeconds] = "0.5"
		}))
		j := c.waitJob(t, ns, "eager", 20*time.Second, "complete", has(batchv1.JobComplete))
		if j.Status.Succeeded != 4 || j.Status.Failed != 0 {
			t.Errorf("succeeded/failed = %d/%d, want 4/0", j.Status.Succeeded, j.Status.Failed)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(c.pods(t, ns, "eager")) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := len(c.pods(t, ns, "eager")); n != 0 {
			t.Errorf("%d deleted pods still held", n)
		}
		cancel()
		w.Stop()
		<-watched
		if len(created) != 4 {
			t.Errorf("%d pods were created, want 4", len(created))
		}
	})

	t.Run("a running pod deleted by someone counts as failed and is replaced", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t)
		c.create(t, ns, newJob("victim", 0, func(j *batchv1.Job) {
			j.Spec.Template.Annotations[sim.AnnotationRunSeconds] = "2"
		}))
		c.waitJob(t, ns, "victim", 10*time.Second, "running", func(j *batchv1.Job) bool { return j.Status.Active == 1 })
		pods := c.pods(t, ns, "victim")
		if len(pods) != 1 {
			t.Fatalf("%d pods", len(pods))
		}
		if err := c.client.CoreV1().Pods(ns).Delete(context.Background(), pods[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		j := c.waitJob(t, ns, "victim", 20*time.Second, "complete", has(batchv1.JobComplete))
		if j.Status.Failed != 1 || j.Status.Succeeded != 1 {
			t.Errorf("failed/succeeded = %d/%d, want 1/1", j.Status.Failed, j.Status.Succeeded)
		}
	})

	t.Run("kubectl wait --for=condition=complete", func(t *testing.T) {
		t.Parallel()
		kubectl := "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
		if _, err := os.Stat(kubectl); err != nil {
			t.Skipf("no stock kubectl: %v", err)
		}
		ns := c.namespace(t)
		c.create(t, ns, newJob("waited", 0, func(j *batchv1.Job) { j.Spec.Completions = ptr.To(int32(2)) }))
		cmd := exec.Command(kubectl, "--kubeconfig", c.kubeconfig, "-n", ns, "wait", "--for=condition=complete", "job/waited", "--timeout=30s")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl wait: %v\n%s", err, out)
		}
		j, err := c.client.BatchV1().Jobs(ns).Get(context.Background(), "waited", metav1.GetOptions{})
		if err != nil || condition(j, batchv1.JobComplete) == nil || j.Status.Succeeded != 2 {
			t.Errorf("after kubectl wait: %v %+v", err, j.Status)
		}
	})
}
