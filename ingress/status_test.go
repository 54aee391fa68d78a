package ingress

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func TestReportOnlyNewProblems(t *testing.T) {
	var buf bytes.Buffer
	c := &Controller{log: slog.New(slog.NewTextHandler(&buf, nil)), reported: map[string]map[string]bool{}}
	one := mkIngress("ns", "one", 0)
	two := mkIngress("ns", "two", 0)
	missing := Problem{Ingress: one, Reason: ReasonServiceNotFound, Message: "service ns/x not found"}
	sameForTwo := Problem{Ingress: two, Reason: ReasonServiceNotFound, Message: "service ns/x not found"}
	conflict := Problem{Ingress: one, Reason: ReasonRouteConflict, Message: "taken"}

	steps := []struct {
		problems []Problem
		logged   int
	}{
		{[]Problem{missing, sameForTwo}, 2}, // the same message on two Ingresses is two reports
		{[]Problem{missing, sameForTwo}, 0}, // nothing new
		{[]Problem{missing, conflict}, 1},   // only the conflict is new
		{nil, 0},                            // all fixed
		{[]Problem{missing}, 1},             // back again: reported again
	}
	for i, s := range steps {
		buf.Reset()
		c.report(s.problems)
		if got := strings.Count(buf.String(), "level=WARN"); got != s.logged {
			t.Errorf("step %d: %d warnings logged, want %d:\n%s", i, got, s.logged, buf.String())
		}
	}
}

func TestIngressChanged(t *testing.T) {
	base := mkIngress("ns", "a", 0, withRule("a.test", prefix("/", "a")))
	status := base.DeepCopy()
	status.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1"}}
	status.ResourceVersion = "2"
	spec := base.DeepCopy()
	spec.Spec.Rules[0].Host = "b.test"
	ann := base.DeepCopy()
	withAnnotation("nginx.ingress.kubernetes.io/ssl-redirect", "false")(ann)
	for _, tc := range []struct {
		name string
		new  any
		want bool
	}{
		{"status only", status, false},
		{"spec", spec, true},
		{"annotation", ann, true},
		{"not an Ingress", "x", true},
	} {
		if got := ingressChanged(base, tc.new); got != tc.want {
			t.Errorf("%s: ingressChanged = %v, want %v", tc.name, got, tc.want)
		}
	}
}
