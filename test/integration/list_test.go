package integration

import (
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/test/framework"
)

func TestListing(t *testing.T) {
	t.Parallel()
	srv := framework.StartServer(t, framework.Options{})
	cs := newClient(t, srv)
	t.Run("pagination", func(t *testing.T) { testPagination(t, cs) })
	t.Run("label selectors", func(t *testing.T) { testLabelSelectors(t, cs) })
	t.Run("field selectors", func(t *testing.T) { testFieldSelectors(t, cs) })
}

func names[T any](items []T, name func(*T) string) []string {
	out := make([]string, 0, len(items))
	for i := range items {
		out = append(out, name(&items[i]))
	}
	return out
}

func cmNames(items []corev1.ConfigMap) []string {
	return names(items, func(c *corev1.ConfigMap) string { return c.Name })
}

func podNames(items []corev1.Pod) []string {
	return names(items, func(p *corev1.Pod) string { return p.Name })
}

func testPagination(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "paging")
	cms := cs.CoreV1().ConfigMaps(ns)
	var want []string
	for i := range 25 {
		n := fmt.Sprintf("cm-%02d", i)
		if _, err := cms.Create(ctx, configMap(n, map[string]string{"i": fmt.Sprint(i)}, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, n)
	}

	page1, err := cms.List(ctx, metav1.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	snapshot := page1.ResourceVersion
	if got := cmNames(page1.Items); !slices.Equal(got, want[:10]) {
		t.Fatalf("page 1 = %v, want %v", got, want[:10])
	}
	if page1.Continue == "" || page1.RemainingItemCount == nil || *page1.RemainingItemCount != 15 {
		t.Fatalf("page 1: continue=%q remainingItemCount=%v, want a token and 15", page1.Continue, page1.RemainingItemCount)
	}

	// Changes between pages do not show: the listing is one snapshot.
	if _, err := cms.Create(ctx, configMap("cm-99", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, configMap("cm-12a", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "cm-15", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	changed, err := cms.Get(ctx, "cm-16", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changed.Data["i"] = "changed"
	if _, err := cms.Update(ctx, changed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	page2, err := cms.List(ctx, metav1.ListOptions{Limit: 10, Continue: page1.Continue})
	if err != nil {
		t.Fatal(err)
	}
	if got := cmNames(page2.Items); !slices.Equal(got, want[10:20]) {
		t.Fatalf("page 2 = %v, want %v", got, want[10:20])
	}
	for _, c := range page2.Items {
		if c.Name == "cm-16" && c.Data["i"] != "16" {
			t.Fatalf("page 2 shows cm-16 as changed after the snapshot: %v", c.Data)
		}
		if rv(t, c.ResourceVersion) > rv(t, snapshot) {
			t.Fatalf("page 2 item %s has rv %s after the snapshot %s", c.Name, c.ResourceVersion, snapshot)
		}
	}
	if page2.ResourceVersion != snapshot || page2.RemainingItemCount == nil || *page2.RemainingItemCount != 5 {
		t.Fatalf("page 2: rv=%s remaining=%v, want rv=%s remaining=5", page2.ResourceVersion, page2.RemainingItemCount, snapshot)
	}
	page3, err := cms.List(ctx, metav1.ListOptions{Limit: 10, Continue: page2.Continue})
	if err != nil {
		t.Fatal(err)
	}
	if got := cmNames(page3.Items); !slices.Equal(got, want[20:]) {
		t.Fatalf("page 3 = %v, want %v", got, want[20:])
	}
	if page3.ResourceVersion != snapshot || page3.Continue != "" || page3.RemainingItemCount != nil {
		t.Fatalf("page 3: rv=%s continue=%q remaining=%v, want rv=%s and no more", page3.ResourceVersion, page3.Continue, page3.RemainingItemCount, snapshot)
	}

	// A new listing sees the changes.
	now, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := cmNames(now.Items)
	if len(got) != 26 || !slices.Contains(got, "cm-99") || !slices.Contains(got, "cm-12a") || slices.Contains(got, "cm-15") {
		t.Fatalf("fresh list = %v", got)
	}
	if !slices.IsSorted(got) {
		t.Fatalf("fresh list is not in name order: %v", got)
	}
	if rv(t, now.ResourceVersion) <= rv(t, snapshot) {
		t.Fatalf("fresh list at rv %s, not after the snapshot %s", now.ResourceVersion, snapshot)
	}
	// A limit larger than what is left ends the listing.
	all, err := cms.List(ctx, metav1.ListOptions{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 26 || all.Continue != "" || all.RemainingItemCount != nil {
		t.Fatalf("limit 500: %d items continue=%q remaining=%v", len(all.Items), all.Continue, all.RemainingItemCount)
	}
}

func testLabelSelectors(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "labels")
	cms := cs.CoreV1().ConfigMaps(ns)
	objs := map[string]map[string]string{
		"a1": {"tier": "a", "env": "prod"},
		"a2": {"tier": "a"},
		"b1": {"tier": "b", "env": "prod"},
		"b2": {"tier": "b"},
		"n1": nil,
	}
	for n, l := range objs {
		if _, err := cms.Create(ctx, configMap(n, nil, l), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		selector string
		want     []string
	}{
		{"tier=a", []string{"a1", "a2"}},
		{"tier!=a", []string{"b1", "b2", "n1"}},
		{"tier in (a,b),env=prod", []string{"a1", "b1"}},
		{"tier notin (a)", []string{"b1", "b2", "n1"}},
		{"env", []string{"a1", "b1"}},
		{"!tier", []string{"n1"}},
		{"tier=c", nil},
	} {
		list, err := cms.List(ctx, metav1.ListOptions{LabelSelector: tc.selector})
		if err != nil {
			t.Fatalf("labelSelector %q: %v", tc.selector, err)
		}
		if got := cmNames(list.Items); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("labelSelector %q = %v, want %v", tc.selector, got, tc.want)
		}
	}
	// Pages of a selected listing hold only matches.
	page, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "tier", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "tier", Limit: 3, Continue: page.Continue})
	if err != nil {
		t.Fatal(err)
	}
	if got := append(cmNames(page.Items), cmNames(rest.Items)...); !slices.Equal(got, []string{"a1", "a2", "b1", "b2"}) || page.Continue == "" {
		t.Fatalf("paged labelSelector tier = %v (continue %q)", got, page.Continue)
	}
	if _, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "tier in (a"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("malformed labelSelector: want 400, got %v", err)
	}
}

func testFieldSelectors(t *testing.T, cs kubernetes.Interface) {
	ctx := testCtx(t)
	ns := makeNamespace(t, cs, "fields")
	pods := cs.CoreV1().Pods(ns)
	for _, p := range []struct{ name, node string }{{"p-a1", "node-a"}, {"p-a2", "node-a"}, {"p-b1", "node-b"}, {"p-none", ""}} {
		po := pod(p.name, nil)
		po.Spec.NodeName = p.node
		if _, err := pods.Create(ctx, po, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	running, err := pods.Get(ctx, "p-a2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running.Status.Phase = corev1.PodRunning
	if _, err := pods.UpdateStatus(ctx, running, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		selector string
		want     []string
	}{
		{"metadata.name=p-b1", []string{"p-b1"}},
		{"metadata.name!=p-b1", []string{"p-a1", "p-a2", "p-none"}},
		{"spec.nodeName=node-a", []string{"p-a1", "p-a2"}},
		{"spec.nodeName=", []string{"p-none"}},
		{"status.phase=Running", []string{"p-a2"}},
		{"status.phase=Pending,spec.nodeName=node-a", []string{"p-a1"}},
		{"metadata.namespace=" + ns, []string{"p-a1", "p-a2", "p-b1", "p-none"}},
	} {
		list, err := pods.List(ctx, metav1.ListOptions{FieldSelector: tc.selector})
		if err != nil {
			t.Fatalf("fieldSelector %q: %v", tc.selector, err)
		}
		if got := podNames(list.Items); !slices.Equal(got, tc.want) {
			t.Errorf("fieldSelector %q = %v, want %v", tc.selector, got, tc.want)
		}
	}
	// Across namespaces too.
	all, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := podNames(all.Items); !slices.Equal(got, []string{"p-b1"}) {
		t.Errorf("all-namespace fieldSelector spec.nodeName=node-b = %v", got)
	}
	cmList, err := cs.CoreV1().ConfigMaps("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=nothing-here"})
	if err != nil || len(cmList.Items) != 0 {
		t.Fatalf("configmaps metadata.name selector: %v, %d items", err, len(cmList.Items))
	}
	for _, bad := range []struct{ resource, selector string }{
		{"pods", "spec.bogus=x"},
		{"pods", "spec.containers=x"},
		{"configmaps", "spec.nodeName=node-a"},
		{"configmaps", "data.k=v"},
	} {
		var err error
		if bad.resource == "pods" {
			_, err = pods.List(ctx, metav1.ListOptions{FieldSelector: bad.selector})
		} else {
			_, err = cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{FieldSelector: bad.selector})
		}
		if !apierrors.IsBadRequest(err) {
			t.Errorf("%s fieldSelector %q: want 400, got %v", bad.resource, bad.selector, err)
		}
	}
}
