package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

// streamingSubresources are served by the node agent through the API
// server (nodeproxy.go).
var streamingSubresources = map[string]bool{
	"log": true, "exec": true, "attach": true, "portforward": true, "proxy": true,
}

// serveSubresource dispatches RESOURCE/NAME/SUBRESOURCE requests.
func (s *Server) serveSubresource(rc *reqContext) {
	sub := rc.info.Subresource
	gr := rc.res.GroupResource().String()
	switch {
	case sub == "status" && rc.res.HasStatus:
		switch rc.info.Verb {
		case "get":
			s.serveGet(rc)
		case "update":
			s.serveUpdateOf(rc, "status")
		case "patch":
			s.servePatchOf(rc, "status")
		default:
			rc.fail(apierrors.NewMethodNotSupported(rc.res.GroupResource(), rc.info.Verb+" of status"))
		}
	case sub == "scale" && rc.res.Scale != nil:
		s.serveScale(rc)
	case sub == "binding" && gr == "pods" && rc.info.Verb == "create":
		s.serveBinding(rc)
	case sub == "eviction" && gr == "pods" && rc.info.Verb == "create":
		s.serveEviction(rc)
	case sub == "finalize" && gr == "namespaces" && rc.info.Verb == "update":
		s.serveUpdateOf(rc, "finalize")
	case isStreamingSubresource(sub) && (gr == "pods" || gr == "nodes" || gr == "services"):
		s.serveNodeProxy(rc)
	default:
		rc.fail(apierrors.NewNotFound(rc.res.GroupResource(), rc.info.Name+"/"+sub))
	}
}

// scaleOf builds the autoscaling/v1 Scale view of a scalable object.
func scaleOf(res *registry.Resource, obj runtime.Object) *autoscalingv1.Scale {
	m := mustAccessor(obj)
	spec, status := res.Scale.Replicas(obj)
	sc := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{
			Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp(),
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: res.Scale.Selector(obj)},
	}
	sc.SetGroupVersionKind(autoscalingv1.SchemeGroupVersion.WithKind("Scale"))
	return sc
}

func (s *Server) serveScale(rc *reqContext) {
	res := rc.res
	switch rc.info.Verb {
	case "get":
		obj, err := s.objects.get(rc.ctx(), res, rc.info.Namespace, rc.info.Name)
		if err != nil {
			rc.fail(err)
			return
		}
		writeObject(rc.w, rc.out, http.StatusOK, scaleOf(res, obj))
		return
	case "update", "patch":
	default:
		rc.fail(apierrors.NewMethodNotSupported(res.GroupResource(), rc.info.Verb+" of scale"))
		return
	}
	dry, err := dryRun(rc.r)
	if err != nil {
		rc.fail(err)
		return
	}
	var body []byte
	var put *autoscalingv1.Scale
	ct := rc.r.Header.Get("Content-Type")
	if rc.info.Verb == "update" {
		put = &autoscalingv1.Scale{}
		put.SetGroupVersionKind(autoscalingv1.SchemeGroupVersion.WithKind("Scale"))
		if err := s.decodeBody(rc, put); err != nil {
			rc.fail(err)
			return
		}
		if put.Name != rc.info.Name {
			rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", put.Name, rc.info.Name)))
			return
		}
	} else {
		if body, err = readBody(rc.r); err != nil {
			rc.fail(err)
			return
		}
		if body, err = toJSON(body); err != nil {
			rc.fail(apierrors.NewBadRequest(err.Error()))
			return
		}
	}
	out, _, err := s.updateObject(rc.ctx(), res, rc.info.Namespace, rc.info.Name, updateOptions{dryRun: dry}, func(cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return nil, err404(res, rc.info.Name)
		}
		want := put
		if want == nil {
			cs := scaleOf(res, cur)
			orig, err := encodeJSON(cs)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			var patched []byte
			switch mediaOnly(ct) {
			case patchJSON:
				p, err := jsonpatch.DecodePatch(body)
				if err == nil {
					patched, err = p.Apply(orig)
				}
				if err != nil {
					return nil, apierrors.NewBadRequest(err.Error())
				}
			case patchMerge:
				if patched, err = jsonpatch.MergePatch(orig, body); err != nil {
					return nil, apierrors.NewBadRequest(err.Error())
				}
			case patchStrategic:
				if patched, err = strategicpatch.StrategicMergePatch(orig, body, &autoscalingv1.Scale{}); err != nil {
					return nil, apierrors.NewBadRequest(err.Error())
				}
			default:
				return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", res.GroupResource(), rc.info.Name,
					fmt.Sprintf("the patch content type %q is not supported for scale", ct), 0, false)
			}
			want = &autoscalingv1.Scale{}
			want.SetGroupVersionKind(autoscalingv1.SchemeGroupVersion.WithKind("Scale"))
			if _, err := decodeInto(mediaJSON, patched, want, metav1.FieldValidationStrict); err != nil {
				return nil, err
			}
			if want.ResourceVersion == cs.ResourceVersion {
				want.ResourceVersion = ""
			}
		}
		if want.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), rc.info.Name, fieldErrs("spec.replicas", want.Spec.Replicas, "must be greater than or equal to 0"))
		}
		res.Scale.SetReplicas(cur, want.Spec.Replicas)
		mustAccessor(cur).SetResourceVersion(want.ResourceVersion)
		return cur, nil
	})
	if err != nil {
		rc.fail(err)
		return
	}
	writeObject(rc.w, rc.out, http.StatusOK, scaleOf(res, out))
}

// mediaOnly is a Content-Type without its parameters.
func mediaOnly(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt)
}

// serveBinding assigns a pod to a node: the scheduler's write.
func (s *Server) serveBinding(rc *reqContext) {
	b := &corev1.Binding{}
	b.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Binding"))
	if err := s.decodeBody(rc, b); err != nil {
		rc.fail(err)
		return
	}
	if b.Name != "" && b.Name != rc.info.Name {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the binding's name (%s) does not match the pod (%s)", b.Name, rc.info.Name)))
		return
	}
	if b.Target.Name == "" || (b.Target.Kind != "" && b.Target.Kind != "Node") {
		rc.fail(apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), rc.info.Name, fieldErrs("target", b.Target.Name, "must name a Node")))
		return
	}
	_, _, err := s.updateObject(rc.ctx(), rc.res, rc.info.Namespace, rc.info.Name, updateOptions{subresource: "binding"}, func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(rc.res.GroupResource(), pod.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(rc.res.GroupResource(), pod.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(rc.res.GroupResource(), pod.Name, fmt.Errorf("pod %s is already assigned to node %q", pod.Name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(s.now().Truncate(time.Second))})
		return pod, nil
	})
	if err != nil {
		rc.fail(err)
		return
	}
	writeObject(rc.w, rc.out, http.StatusCreated, successStatus())
}

func successStatus() *metav1.Status {
	st := &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated}
	st.SetGroupVersionKind(statusKind)
	return st
}

func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status == c.Status {
				c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// serveEviction deletes a pod if no PodDisruptionBudget forbids it, taking
// one disruption from each budget that covers the pod.
func (s *Server) serveEviction(rc *reqContext) {
	ev := &policyv1.Eviction{}
	ev.SetGroupVersionKind(policyv1.SchemeGroupVersion.WithKind("Eviction"))
	body, err := readBody(rc.r)
	if err != nil {
		rc.fail(err)
		return
	}
	// policy/v1beta1 Evictions have the same fields; read either.
	if err := decodeLoose(rc.r.Header.Get("Content-Type"), body, ev); err != nil {
		rc.fail(err)
		return
	}
	if ev.Name != "" && ev.Name != rc.info.Name {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the eviction's name (%s) does not match the pod (%s)", ev.Name, rc.info.Name)))
		return
	}
	ctx := rc.ctx()
	obj, err := s.objects.get(ctx, rc.res, rc.info.Namespace, rc.info.Name)
	if err != nil {
		rc.fail(err)
		return
	}
	pod := obj.(*corev1.Pod)
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	// Pods that are not running, or already going, need no budget.
	needsBudget := pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded &&
		pod.Status.Phase != corev1.PodFailed && pod.Status.Phase != corev1.PodPending
	if needsBudget {
		if err := s.takeDisruption(ctx, pod); err != nil {
			rc.fail(err)
			return
		}
	}
	if _, _, err := s.deleteObject(ctx, rc.res, pod.Namespace, pod.Name, opts); err != nil {
		rc.fail(err)
		return
	}
	writeObject(rc.w, rc.out, http.StatusCreated, successStatus())
}

// takeDisruption checks the pod's budgets and records the disruption in
// each, or answers 429 as kube does.
func (s *Server) takeDisruption(ctx context.Context, pod *corev1.Pod) error {
	pdbRes, _ := s.catalog.Lookup(policyv1.SchemeGroupVersion.WithResource("poddisruptionbudgets"))
	pdbs, err := s.listAll(ctx, pdbRes, pod.Namespace)
	if err != nil {
		return err
	}
	var matching []*policyv1.PodDisruptionBudget
	for _, o := range pdbs {
		pdb := o.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		// policy/v1: an empty selector matches every pod in the namespace.
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		matching = append(matching, pdb)
	}
	if len(matching) > 1 {
		return apierrors.NewInternalError(fmt.Errorf("this pod has more than one PodDisruptionBudget, which the eviction subresource does not support"))
	}
	for _, pdb := range matching {
		_, _, err := s.updateObject(ctx, pdbRes, pdb.Namespace, pdb.Name, updateOptions{subresource: "status"}, func(cur runtime.Object) (runtime.Object, error) {
			p := cur.(*policyv1.PodDisruptionBudget)
			if p.Status.ObservedGeneration < p.Generation {
				return nil, tooManyRequests(fmt.Sprintf("Cannot evict pod as it would violate the pod's disruption budget. The disruption budget %s is still being processed by the server.", p.Name))
			}
			if p.Status.DisruptionsAllowed < 1 {
				return nil, tooManyRequests(fmt.Sprintf("Cannot evict pod as it would violate the pod's disruption budget. The disruption budget %s needs %d healthy pods and has %d currently", p.Name, p.Status.DesiredHealthy, p.Status.CurrentHealthy))
			}
			p.Status.DisruptionsAllowed--
			if p.Status.DisruptedPods == nil {
				p.Status.DisruptedPods = map[string]metav1.Time{}
			}
			p.Status.DisruptedPods[pod.Name] = metav1.NewTime(s.now().Truncate(time.Second))
			return p, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func tooManyRequests(msg string) error {
	err := apierrors.NewTooManyRequests(msg, 10)
	err.ErrStatus.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "DisruptionBudget", Message: msg}}}
	return err
}

func fieldErrs(path string, value any, msg string) field.ErrorList {
	return field.ErrorList{field.Invalid(field.NewPath(path), value, msg)}
}
