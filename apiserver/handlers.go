package apiserver

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/yaml"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

// respond writes obj, transformed as the client asked (Table,
// PartialObjectMetadata), after any warnings.
func (s *Server) respond(rc *reqContext, code int, obj runtime.Object) {
	rc.flushWarnings()
	switch rc.out.as {
	case "Table":
		writeObject(rc.w, rc.out, code, s.table(rc, []runtime.Object{obj}, metav1.ListMeta{}))
		return
	case "PartialObjectMetadata":
		writeObject(rc.w, rc.out, code, partialMetadata(obj))
		return
	case "PartialObjectMetadataList":
		rc.fail(notAcceptable("PartialObjectMetadataList is for lists"))
		return
	}
	writeObject(rc.w, rc.out, code, obj)
}

func (s *Server) serveGet(rc *reqContext) {
	obj, err := s.objects.get(rc.ctx(), rc.res, rc.info.Namespace, rc.info.Name)
	if err != nil {
		rc.fail(err)
		return
	}
	s.respond(rc, http.StatusOK, obj)
}

// fieldValidation reads the fieldValidation directive; kube's default for
// requests that do not say is Warn.
func fieldValidation(r *http.Request) (string, error) {
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "":
		return metav1.FieldValidationWarn, nil
	case metav1.FieldValidationIgnore, metav1.FieldValidationWarn, metav1.FieldValidationStrict:
		return v, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of Ignore, Warn or Strict, not %q", v))
}

// dryRun reads the dryRun parameter: only "All" is known.
func dryRun(r *http.Request) (bool, error) {
	vals := r.URL.Query()["dryRun"]
	for _, v := range vals {
		if v != metav1.DryRunAll {
			return false, apierrors.NewBadRequest(fmt.Sprintf("unsupported dryRun value %q; only %q is supported", v, metav1.DryRunAll))
		}
	}
	return len(vals) > 0, nil
}

// decodeBody reads the request body into a new object of res's kind.
func (s *Server) decodeBody(rc *reqContext, into runtime.Object) error {
	directive, err := fieldValidation(rc.r)
	if err != nil {
		return err
	}
	body, err := readBody(rc.r)
	if err != nil {
		return err
	}
	warnings, err := decodeInto(rc.r.Header.Get("Content-Type"), body, into, directive)
	if err != nil {
		return err
	}
	if directive == metav1.FieldValidationWarn {
		rc.warnings = append(rc.warnings, warnings...)
	}
	return nil
}

func (s *Server) newBodyObject(res *registry.Resource) runtime.Object {
	obj := res.New()
	obj.GetObjectKind().SetGroupVersionKind(res.GroupVersionKind())
	return obj
}

func (s *Server) serveCreate(rc *reqContext) {
	dry, err := dryRun(rc.r)
	if err != nil {
		rc.fail(err)
		return
	}
	obj := s.newBodyObject(rc.res)
	if err := s.decodeBody(rc, obj); err != nil {
		rc.fail(err)
		return
	}
	if rc.info.Name != "" {
		rc.fail(apierrors.NewMethodNotSupported(rc.res.GroupResource(), "create with a name in the path"))
		return
	}
	created, err := s.createObject(rc.ctx(), rc.res, rc.info.Namespace, obj, dry)
	if err != nil {
		rc.fail(err)
		return
	}
	s.respond(rc, http.StatusCreated, created)
}

// allowCreateOnUpdate lists the resources a PUT may create, as in kube.
func allowCreateOnUpdate(res *registry.Resource) bool {
	switch res.GroupResource().String() {
	case "endpoints", "events", "events.events.k8s.io", "leases.coordination.k8s.io",
		"roles.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io",
		"clusterroles.rbac.authorization.k8s.io", "clusterrolebindings.rbac.authorization.k8s.io",
		"endpointslices.discovery.k8s.io":
		return true
	}
	return false
}

func (s *Server) serveUpdate(rc *reqContext) {
	s.serveUpdateOf(rc, "")
}

// serveUpdateOf handles PUT of the object or of its status or finalize
// subresource.
func (s *Server) serveUpdateOf(rc *reqContext, sub string) {
	dry, err := dryRun(rc.r)
	if err != nil {
		rc.fail(err)
		return
	}
	obj := s.newBodyObject(rc.res)
	if err := s.decodeBody(rc, obj); err != nil {
		rc.fail(err)
		return
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		rc.fail(apierrors.NewBadRequest(err.Error()))
		return
	}
	if m.GetName() != rc.info.Name {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), rc.info.Name)))
		return
	}
	if rc.res.Namespaced && m.GetNamespace() != "" && m.GetNamespace() != rc.info.Namespace {
		rc.fail(apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	opts := updateOptions{subresource: sub, allowCreate: allowCreateOnUpdate(rc.res), dryRun: dry}
	out, created, err := s.updateObject(rc.ctx(), rc.res, rc.info.Namespace, rc.info.Name, opts, func(cur runtime.Object) (runtime.Object, error) {
		next := obj.DeepCopyObject()
		nm, _ := meta.Accessor(next)
		nm.SetNamespace(rc.info.Namespace)
		if cur != nil {
			keepServiceAllocations(next, cur)
		}
		return next, nil
	})
	if err != nil {
		rc.fail(err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	s.respond(rc, code, out)
}

// Patch content types.
const (
	patchJSON      = string(types.JSONPatchType)
	patchMerge     = string(types.MergePatchType)
	patchStrategic = string(types.StrategicMergePatchType)
	patchApply     = string(types.ApplyPatchType)
	patchApplyCBOR = "application/apply-patch+cbor"
)

func (s *Server) servePatch(rc *reqContext) {
	s.servePatchOf(rc, "")
}

// servePatchOf applies a JSON, merge or strategic merge patch to the
// object (or its status) inside the guaranteed-update loop, so a patch
// never loses a concurrent write.
func (s *Server) servePatchOf(rc *reqContext, sub string) {
	dry, err := dryRun(rc.r)
	if err != nil {
		rc.fail(err)
		return
	}
	directive, err := fieldValidation(rc.r)
	if err != nil {
		rc.fail(err)
		return
	}
	ct := mediaOnly(rc.r.Header.Get("Content-Type"))
	switch ct {
	case patchJSON, patchMerge, patchStrategic:
	case patchApply:
		if s.managers == nil {
			rc.fail(apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", rc.res.GroupResource(), rc.info.Name,
				"server-side apply is off on this server (no type converter configured)", 0, false))
			return
		}
		body, err := readBody(rc.r)
		if err != nil {
			rc.fail(err)
			return
		}
		s.serveApply(rc, sub, body, dry)
		return
	case patchApplyCBOR:
		rc.fail(apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", rc.res.GroupResource(), rc.info.Name,
			"apply patches in CBOR are not supported; send application/apply-patch+yaml", 0, false))
		return
	default:
		rc.fail(apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", rc.res.GroupResource(), rc.info.Name,
			fmt.Sprintf("the patch content type %q is not supported; use %s, %s or %s", ct, patchJSON, patchMerge, patchStrategic), 0, false))
		return
	}
	patch, err := readBody(rc.r)
	if err != nil {
		rc.fail(err)
		return
	}
	if len(patch) == 0 {
		rc.fail(apierrors.NewBadRequest("the patch body is empty"))
		return
	}
	patch, err = toJSON(patch)
	if err != nil {
		rc.fail(apierrors.NewBadRequest(fmt.Sprintf("the patch is not valid JSON or YAML: %v", err)))
		return
	}
	opts := updateOptions{subresource: sub, dryRun: dry}
	out, _, err := s.updateObject(rc.ctx(), rc.res, rc.info.Namespace, rc.info.Name, opts, func(cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return nil, err404(rc.res, rc.info.Name)
		}
		curRV := mustAccessor(cur).GetResourceVersion()
		orig, err := encodeJSON(cur)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		var patched []byte
		switch ct {
		case patchJSON:
			p, err := jsonpatch.DecodePatch(patch)
			if err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			if len(p) > 10000 {
				return nil, apierrors.NewRequestEntityTooLargeError("the JSON patch has more than 10000 operations")
			}
			patched, err = p.Apply(orig)
			if err != nil {
				return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", rc.res.GroupResource(), rc.info.Name,
					fmt.Sprintf("the JSON patch could not be applied: %v", err), 0, false)
			}
		case patchMerge:
			patched, err = jsonpatch.MergePatch(orig, patch)
			if err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
		case patchStrategic:
			schema := rc.res.New()
			patched, err = strategicpatch.StrategicMergePatch(orig, patch, schema)
			if err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
		}
		next := s.newBodyObject(rc.res)
		warnings, err := decodeInto(mediaJSON, patched, next, directive)
		if err != nil {
			return nil, err
		}
		if directive == metav1.FieldValidationWarn {
			rc.warnings = append(rc.warnings, warnings...)
		}
		nm, _ := meta.Accessor(next)
		if nm.GetName() != rc.info.Name || (rc.res.Namespaced && nm.GetNamespace() != rc.info.Namespace) {
			return nil, apierrors.NewBadRequest("a patch may not change the object's name or namespace")
		}
		// A patch that leaves the resourceVersion as it was does not pin it:
		// only a patch that sets one is a precondition.
		if nm.GetResourceVersion() == curRV {
			nm.SetResourceVersion("")
		}
		return next, nil
	})
	if err != nil {
		rc.fail(err)
		return
	}
	s.respond(rc, http.StatusOK, out)
}

// deleteOptions reads DeleteOptions from the body (if any) and the query.
func (s *Server) deleteOptions(rc *reqContext) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	body, err := readBody(rc.r)
	if err != nil {
		return nil, err
	}
	if len(trimSpace(body)) > 0 {
		// DeleteOptions come under any group's apiVersion; read the fields.
		if err := decodeLoose(rc.r.Header.Get("Content-Type"), body, opts); err != nil {
			return nil, err
		}
		opts.TypeMeta = metav1.TypeMeta{}
	}
	q := rc.r.URL.Query()
	if g := q.Get("gracePeriodSeconds"); g != "" {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid gracePeriodSeconds %q", g))
		}
		opts.GracePeriodSeconds = &n
	}
	if p := q.Get("propagationPolicy"); p != "" {
		pp := metav1.DeletionPropagation(p)
		opts.PropagationPolicy = &pp
	}
	if o := q.Get("orphanDependents"); o != "" {
		b := o == "true"
		opts.OrphanDependents = &b
	}
	opts.DryRun = append(opts.DryRun, q["dryRun"]...)
	for _, v := range opts.DryRun {
		if v != metav1.DryRunAll {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("unsupported dryRun value %q", v))
		}
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan:
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy must be Background, Foreground or Orphan, not %q", *p))
		}
		if opts.OrphanDependents != nil {
			return nil, apierrors.NewBadRequest("orphanDependents and propagationPolicy cannot both be set")
		}
	}
	if g := opts.GracePeriodSeconds; g != nil && *g < 0 {
		one := int64(1)
		opts.GracePeriodSeconds = &one
	}
	return opts, nil
}

func (s *Server) serveDelete(rc *reqContext) {
	opts, err := s.deleteOptions(rc)
	if err != nil {
		rc.fail(err)
		return
	}
	obj, gone, err := s.deleteObject(rc.ctx(), rc.res, rc.info.Namespace, rc.info.Name, opts)
	if err != nil {
		rc.fail(err)
		return
	}
	code := http.StatusOK
	if !gone && !slices.Contains(opts.DryRun, metav1.DryRunAll) {
		code = http.StatusAccepted
	}
	s.respond(rc, code, obj)
}

func (s *Server) serveDeleteCollection(rc *reqContext) {
	opts, err := s.deleteOptions(rc)
	if err != nil {
		rc.fail(err)
		return
	}
	lr, err := parseListRequest(rc.res, rc.info.Namespace, rc.r)
	if err != nil {
		rc.fail(err)
		return
	}
	var victims []runtime.Object
	res, err := s.walkList(rc.ctx(), rc.res, lr, func(o runtime.Object) error {
		victims = append(victims, o)
		return nil
	})
	if err != nil {
		rc.fail(err)
		return
	}
	var deleted []runtime.Object
	for _, v := range victims {
		m := mustAccessor(v)
		obj, _, err := s.deleteObject(rc.ctx(), rc.res, m.GetNamespace(), m.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			rc.fail(err)
			return
		}
		deleted = append(deleted, obj)
	}
	list := rc.res.NewList()
	_ = meta.SetList(list, deleted)
	lma, _ := meta.ListAccessor(list)
	lma.SetResourceVersion(strconv.FormatInt(res.revision, 10))
	list.GetObjectKind().SetGroupVersionKind(rc.res.GroupVersion().WithKind(rc.res.ListKind))
	rc.flushWarnings()
	writeObject(rc.w, rc.out, http.StatusOK, list)
}

// toJSON accepts a JSON or YAML document and returns JSON.
func toJSON(data []byte) ([]byte, error) {
	t := trimSpace(data)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return t, nil
	}
	return yaml.YAMLToJSON(data)
}

// encodeJSON is obj in JSON, with its apiVersion and kind.
func encodeJSON(obj runtime.Object) ([]byte, error) {
	if err := setKind(obj); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := jsonCodec.Encode(obj, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func trimSpace(b []byte) []byte { return bytes.TrimSpace(b) }
