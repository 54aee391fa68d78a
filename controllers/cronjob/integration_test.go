package cronjob_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/controllers/cronjob"
	"github.com/skiff-sh/skiff/test/framework"
)

// harness is a real server; each subtest runs its own CronJob controller
// on its own fake clock (see controller). No Job controller runs, so the
// tests finish Jobs by hand.
type harness struct {
	client     kubernetes.Interface
	clock      *clocktesting.FakeClock
	kubeconfig string
}

func start(t *testing.T) *harness {
	t.Helper()
	srv := framework.StartServer(t, framework.Options{})
	return &harness{client: srv.Client(), kubeconfig: srv.Kubeconfig}
}

// controller starts a CronJob controller for one subtest, on a fake clock
// set to the real time (the API server stamps creation times with it),
// and stops it when the subtest ends.
func (h *harness) controller(t *testing.T) *harness {
	t.Helper()
	fake := clocktesting.NewFakeClock(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(h.client, 0)
	ctrl, err := cronjob.New(h.client, factory, cronjob.Options{
		Clock: fake, Location: time.UTC, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() { _ = ctrl.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; factory.Shutdown() })
	return &harness{client: h.client, clock: fake, kubeconfig: h.kubeconfig}
}

func (h *harness) namespace(t *testing.T) string {
	t.Helper()
	ns, err := h.client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cron-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// create makes an every-minute CronJob and returns the first minute it
// is due: the one after its creation.
func (h *harness) create(t *testing.T, ns, name string, mods ...func(*batchv1.CronJob)) time.Time {
	t.Helper()
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
			}}}},
		},
	}
	for _, m := range mods {
		m(cj)
	}
	cj, err := h.client.BatchV1().CronJobs(ns).Create(context.Background(), cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cj.CreationTimestamp.Truncate(time.Minute).Add(time.Minute)
}

// advanceTo moves the fake clock to a second past minute m.
func (h *harness) advanceTo(m time.Time) {
	if at := m.Add(time.Second); at.After(h.clock.Now()) {
		h.clock.SetTime(at)
	}
}

func jobName(cj string, m time.Time) string { return fmt.Sprintf("%s-%d", cj, m.Unix()/60) }

// waitFor polls until ok, failing after 15s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("%s: not within 15s", what)
}

func (h *harness) jobExists(ns, name string) bool {
	_, err := h.client.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	return err == nil
}

func (h *harness) jobNames(t *testing.T, ns string) map[string]bool {
	t.Helper()
	list, err := h.client.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, j := range list.Items {
		out[j.Name] = true
	}
	return out
}

// finish marks a Job complete, as the Job controller would.
func (h *harness) finish(t *testing.T, ns, name string) {
	t.Helper()
	j, err := h.client.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stamp := metav1.NewTime(h.clock.Now())
	j.Status.StartTime = &stamp
	j.Status.CompletionTime = &stamp
	j.Status.Succeeded = 1
	j.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: stamp},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: stamp},
	}
	if _, err := h.client.BatchV1().Jobs(ns).UpdateStatus(context.Background(), j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) cronJob(t *testing.T, ns, name string) *batchv1.CronJob {
	t.Helper()
	cj, err := h.client.BatchV1().CronJobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cj
}

func (h *harness) hasEvent(ns, reason string) bool {
	list, err := h.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, e := range list.Items {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

func TestCronJobController(t *testing.T) {
	cluster := start(t)

	t.Run("every minute, with deterministic names", func(t *testing.T) {
		h := cluster.controller(t)
		ns := h.namespace(t)
		m := h.create(t, ns, "tick")
		if h.jobExists(ns, jobName("tick", m)) {
			t.Fatal("a Job before its time")
		}
		for i := 0; i < 3; i++ {
			run := m.Add(time.Duration(i) * time.Minute)
			h.advanceTo(run)
			waitFor(t, "job "+jobName("tick", run), func() bool { return h.jobExists(ns, jobName("tick", run)) })
		}
		j, err := h.client.BatchV1().Jobs(ns).Get(context.Background(), jobName("tick", m), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != m.UTC().Format(time.RFC3339) {
			t.Errorf("scheduled timestamp %q, want %q", got, m.UTC().Format(time.RFC3339))
		}
		if ref := metav1.GetControllerOf(j); ref == nil || ref.Kind != "CronJob" || ref.Name != "tick" {
			t.Errorf("controller %+v", ref)
		}
		waitFor(t, "three active Jobs in status", func() bool {
			cj := h.cronJob(t, ns, "tick")
			return len(cj.Status.Active) == 3 && cj.Status.LastScheduleTime != nil &&
				cj.Status.LastScheduleTime.Equal(&metav1.Time{Time: m.Add(2 * time.Minute)})
		})
		if n := len(h.jobNames(t, ns)); n != 3 {
			t.Errorf("%d Jobs, want 3", n)
		}
		waitFor(t, "SuccessfulCreate event", func() bool { return h.hasEvent(ns, "SuccessfulCreate") })
		_ = h.client.BatchV1().CronJobs(ns).Delete(context.Background(), "tick", metav1.DeleteOptions{})
	})

	t.Run("Forbid waits for the running Job", func(t *testing.T) {
		h := cluster.controller(t)
		ns := h.namespace(t)
		m := h.create(t, ns, "solo", func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent })
		h.advanceTo(m)
		waitFor(t, "first Job", func() bool { return h.jobExists(ns, jobName("solo", m)) })
		waitFor(t, "first Job active", func() bool { return len(h.cronJob(t, ns, "solo").Status.Active) == 1 })
		h.advanceTo(m.Add(time.Minute))
		waitFor(t, "JobAlreadyActive event", func() bool { return h.hasEvent(ns, "JobAlreadyActive") })
		if h.jobExists(ns, jobName("solo", m.Add(time.Minute))) {
			t.Fatal("a second Job while the first runs")
		}
		h.finish(t, ns, jobName("solo", m))
		// The missed run starts as soon as the first Job is seen finished.
		waitFor(t, "second Job", func() bool { return h.jobExists(ns, jobName("solo", m.Add(time.Minute))) })
		waitFor(t, "status after the first Job", func() bool {
			cj := h.cronJob(t, ns, "solo")
			return cj.Status.LastSuccessfulTime != nil && len(cj.Status.Active) == 1 && cj.Status.Active[0].Name == jobName("solo", m.Add(time.Minute))
		})
		waitFor(t, "SawCompletedJob event", func() bool { return h.hasEvent(ns, "SawCompletedJob") })
		_ = h.client.BatchV1().CronJobs(ns).Delete(context.Background(), "solo", metav1.DeleteOptions{})
	})

	t.Run("Replace deletes the running Job", func(t *testing.T) {
		h := cluster.controller(t)
		ns := h.namespace(t)
		m := h.create(t, ns, "swap", func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent })
		h.advanceTo(m)
		waitFor(t, "first Job", func() bool { return h.jobExists(ns, jobName("swap", m)) })
		waitFor(t, "first Job active", func() bool { return len(h.cronJob(t, ns, "swap").Status.Active) == 1 })
		h.advanceTo(m.Add(time.Minute))
		waitFor(t, "second Job replaces the first", func() bool {
			names := h.jobNames(t, ns)
			return names[jobName("swap", m.Add(time.Minute))] && !names[jobName("swap", m)]
		})
		waitFor(t, "status names the new Job", func() bool {
			cj := h.cronJob(t, ns, "swap")
			return len(cj.Status.Active) == 1 && cj.Status.Active[0].Name == jobName("swap", m.Add(time.Minute))
		})
		_ = h.client.BatchV1().CronJobs(ns).Delete(context.Background(), "swap", metav1.DeleteOptions{})
	})

	t.Run("history limits", func(t *testing.T) {
		h := cluster.controller(t)
		ns := h.namespace(t)
		m := h.create(t, ns, "hist", func(cj *batchv1.CronJob) {
			cj.Spec.SuccessfulJobsHistoryLimit = ptr.To(int32(1))
		})
		for i := 0; i < 3; i++ {
			run := m.Add(time.Duration(i) * time.Minute)
			h.advanceTo(run)
			waitFor(t, "job "+jobName("hist", run), func() bool { return h.jobExists(ns, jobName("hist", run)) })
			h.finish(t, ns, jobName("hist", run))
		}
		last := jobName("hist", m.Add(2*time.Minute))
		waitFor(t, "only the newest finished Job kept", func() bool {
			names := h.jobNames(t, ns)
			return len(names) == 1 && names[last]
		})
		waitFor(t, "SuccessfulDelete event", func() bool { return h.hasEvent(ns, "SuccessfulDelete") })
		_ = h.client.BatchV1().CronJobs(ns).Delete(context.Background(), "hist", metav1.DeleteOptions{})
	})

	t.Run("kubectl create job --from=cronjob", func(t *testing.T) {
		h := cluster.controller(t)
		kubectl := "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
		if _, err := os.Stat(kubectl); err != nil {
			t.Skipf("no stock kubectl: %v", err)
		}
		ns := h.namespace(t)
		h.create(t, ns, "src", func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptr.To(true) })
		out, err := exec.Command(kubectl, "--kubeconfig", h.kubeconfig, "-n", ns, "create", "job", "by-hand", "--from=cronjob/src").CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl create job: %v\n%s", err, out)
		}
		j, err := h.client.BatchV1().Jobs(ns).Get(context.Background(), "by-hand", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Annotations["cronjob.kubernetes.io/instantiate"] != "manual" || metav1.GetControllerOf(j) == nil {
			t.Errorf("job %+v", j.ObjectMeta)
		}
		// The controller reports it and leaves it alone.
		waitFor(t, "UnexpectedJob event", func() bool { return h.hasEvent(ns, "UnexpectedJob") })
		if _, err := h.client.BatchV1().Jobs(ns).Get(context.Background(), "by-hand", metav1.GetOptions{}); apierrors.IsNotFound(err) {
			t.Error("the controller deleted the manual Job")
		}
	})
}
