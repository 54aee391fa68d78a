package deployment

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/skiff-sh/skiff/controllers/replicaset/fakenode"
)

// TestKubectlRolloutCommands drives a Deployment through stock kubectl (1.33
// and 1.27): create, rollout status, set image, history, undo, undo
// --to-revision, pause (a template change waits, scaling still works, undo
// is refused), resume, restart.
func TestKubectlRolloutCommands(t *testing.T) {
	c := startCluster(t, fakenode.Options{ReadyDelay: 50 * time.Millisecond, TerminationDelay: 50 * time.Millisecond})
	for _, version := range []string{"1.33", "1.27"} {
		t.Run("kubectl "+version, func(t *testing.T) {
			c.t = t
			name := "app-" + strings.ReplaceAll(version, ".", "-")
			k := func(args ...string) string { return c.mustKubectl(version, args...) }
			status := func() {
				t.Helper()
				out := k("rollout", "status", "deployment/"+name, "--timeout=60s")
				if !strings.Contains(out, fmt.Sprintf("deployment %q successfully rolled out", name)) {
					t.Fatalf("rollout status said:\n%s", out)
				}
			}
			image := func() string { return c.get(name).Spec.Template.Spec.Containers[0].Image }

			k("create", "deployment", name, "--image=nginx:1", "--replicas=2")
			status()
			d := c.get(name)
			if d.Annotations[RevisionAnnotation] != "1" {
				t.Errorf("revision after create = %q, want 1", d.Annotations[RevisionAnnotation])
			}

			k("set", "image", "deployment/"+name, "nginx=nginx:2")
			k("annotate", "deployment/"+name, ChangeCauseAnnotation+"=bump to nginx:2", "--overwrite")
			status()
			eventually(t, 10*time.Second, "change-cause on the new replica set", func() (bool, string) {
				out := k("rollout", "history", "deployment/"+name)
				return regexp.MustCompile(`(?m)^2\s+bump to nginx:2\s*$`).MatchString(out) &&
					regexp.MustCompile(`(?m)^1\s+`).MatchString(out), out
			})
			if out := k("rollout", "history", "deployment/"+name, "--revision=1"); !strings.Contains(out, "nginx:1") {
				t.Errorf("history of revision 1 does not show its image:\n%s", out)
			}

			// Undo: back to revision 1's template, reusing its ReplicaSet.
			before := c.replicaSets(d)
			if out := k("rollout", "undo", "deployment/"+name); !strings.Contains(out, "rolled back") {
				t.Errorf("rollout undo said:\n%s", out)
			}
			status()
			if image() != "nginx:1" {
				t.Fatalf("after undo the image is %s", image())
			}
			after := c.replicaSets(d)
			if len(after) != len(before) {
				t.Fatalf("undo made a new replica set: before %s; after %s", rsSummary(before), rsSummary(after))
			}
			first := byImage(after, "nginx:1")
			if first == nil || first.Annotations[RevisionAnnotation] != "3" ||
				first.Annotations[RevisionHistoryAnnotation] != "1" || *first.Spec.Replicas != 2 {
				t.Errorf("revision 1's replica set after undo: %s", rsSummary(after))
			}
			if rev := c.get(name).Annotations[RevisionAnnotation]; rev != "3" {
				t.Errorf("deployment revision after undo = %q, want 3", rev)
			}
			out := k("rollout", "history", "deployment/"+name)
			if regexp.MustCompile(`(?m)^1\s`).MatchString(out) || !regexp.MustCompile(`(?m)^3\s`).MatchString(out) {
				t.Errorf("history after undo should list 2 and 3:\n%s", out)
			}

			k("rollout", "undo", "deployment/"+name, "--to-revision=2")
			status()
			if image() != "nginx:2" {
				t.Errorf("after undo --to-revision=2 the image is %s", image())
			}

			// Paused: a template change waits, scaling does not.
			k("rollout", "pause", "deployment/"+name)
			k("set", "image", "deployment/"+name, "nginx=nginx:3")
			eventually(t, 10*time.Second, "the paused condition", func() (bool, string) {
				d := c.get(name)
				cond := condition(d.Status, appsv1.DeploymentProgressing)
				return d.Status.ObservedGeneration == d.Generation && cond != nil && cond.Reason == ReasonPaused &&
					cond.Message == "Deployment is paused", fmt.Sprintf("%+v", d.Status.Conditions)
			})
			k("scale", "deployment/"+name, "--replicas=3")
			eventually(t, 20*time.Second, "3 pods of nginx:2 while paused", func() (bool, string) {
				pods := c.activePods(name)
				for _, p := range pods {
					if p.Spec.Containers[0].Image != "nginx:2" {
						return false, "a pod runs " + p.Spec.Containers[0].Image
					}
				}
				return len(pods) == 3, fmt.Sprint(len(pods), " pods")
			})
			if n := len(c.replicaSets(d)); n != 2 {
				t.Errorf("a paused deployment has %d replica sets, want 2", n)
			}
			if out, err := c.kubectl(version, "rollout", "undo", "deployment/"+name); err == nil || !strings.Contains(out, "paused") {
				t.Errorf("undo of a paused deployment: err %v, output:\n%s", err, out)
			}

			k("rollout", "resume", "deployment/"+name)
			status()
			if image() != "nginx:3" || len(c.activePods(name)) != 3 {
				t.Errorf("after resume: image %s, %d pods", image(), len(c.activePods(name)))
			}
			cond := condition(c.get(name).Status, appsv1.DeploymentProgressing)
			if cond == nil || cond.Reason != ReasonNewRSAvailable {
				t.Errorf("after resume Progressing = %+v", cond)
			}

			k("rollout", "restart", "deployment/"+name)
			status()
			d = c.get(name)
			if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
				t.Errorf("restart did not stamp the template: %v", d.Spec.Template.Annotations)
			}
			rss := c.replicaSets(d)
			current := 0
			for _, rs := range rss {
				if rs.Annotations[RevisionAnnotation] == "6" && *rs.Spec.Replicas == 3 &&
					rs.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "" {
					current++
				}
			}
			if len(rss) != 4 || current != 1 {
				t.Errorf("after restart: %s", rsSummary(rss))
			}
		})
	}
}

// byImage finds the replica set whose first container runs img.
func byImage(rss []appsv1.ReplicaSet, img string) *appsv1.ReplicaSet {
	for i := range rss {
		if rss[i].Spec.Template.Spec.Containers[0].Image == img {
			return &rss[i]
		}
	}
	return nil
}
