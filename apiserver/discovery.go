package apiserver

import (
	"encoding/json"
	"mime"
	"net/http"
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	apidiscoveryv2beta1 "k8s.io/api/apidiscovery/v2beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/apiserver/registry"
)

// allVerbs are the verbs every resource supports.
var allVerbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// subresourceDef is one subresource as discovery lists it.
type subresourceDef struct {
	name  string
	gvk   schema.GroupVersionKind // empty: the parent's kind
	verbs metav1.Verbs
}

// subresources lists what discovery shows under a resource.
func subresources(r *registry.Resource) []subresourceDef {
	var out []subresourceDef
	if r.HasStatus {
		out = append(out, subresourceDef{name: "status", verbs: metav1.Verbs{"get", "patch", "update"}})
	}
	if r.Scale != nil {
		out = append(out, subresourceDef{name: "scale", gvk: schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, verbs: metav1.Verbs{"get", "patch", "update"}})
	}
	switch r.GroupResource().String() {
	case "pods":
		out = append(out,
			subresourceDef{name: "binding", gvk: schema.GroupVersionKind{Version: "v1", Kind: "Binding"}, verbs: metav1.Verbs{"create"}},
			subresourceDef{name: "eviction", gvk: schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, verbs: metav1.Verbs{"create"}},
		)
	case "namespaces":
		out = append(out, subresourceDef{name: "finalize", verbs: metav1.Verbs{"update"}})
	case "certificatesigningrequests.certificates.k8s.io":
		out = append(out, subresourceDef{name: "approval", verbs: metav1.Verbs{"get", "update"}})
	}
	return out
}

func verbsOf(r *registry.Resource) metav1.Verbs {
	if len(r.Verbs) > 0 {
		return r.Verbs
	}
	return allVerbs
}

// resourceList is the legacy discovery document of one group version.
func (s *Server) resourceList(gv schema.GroupVersion) *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: gv.String()}
	l.Kind, l.APIVersion = "APIResourceList", "v1"
	for _, r := range s.catalog.InGroupVersion(gv) {
		l.APIResources = append(l.APIResources, metav1.APIResource{
			Name: r.Resource, SingularName: r.Singular, Namespaced: r.Namespaced, Kind: r.Kind,
			Verbs: verbsOf(r), ShortNames: r.ShortNames, Categories: r.Categories,
		})
		for _, sr := range subresources(r) {
			ar := metav1.APIResource{Name: r.Resource + "/" + sr.name, Namespaced: r.Namespaced, Kind: r.Kind, Verbs: sr.verbs}
			if !sr.gvk.Empty() {
				ar.Group, ar.Version, ar.Kind = sr.gvk.Group, sr.gvk.Version, sr.gvk.Kind
			}
			l.APIResources = append(l.APIResources, ar)
		}
	}
	return l
}

// groups returns the served API groups (not the core group), sorted.
func (s *Server) groups() []metav1.APIGroup {
	byName := map[string]*metav1.APIGroup{}
	var names []string
	for _, gv := range s.catalog.GroupVersions() {
		if gv.Group == "" {
			continue
		}
		g, ok := byName[gv.Group]
		if !ok {
			g = &metav1.APIGroup{Name: gv.Group}
			byName[gv.Group] = g
			names = append(names, gv.Group)
		}
		v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
		g.Versions = append(g.Versions, v)
		if g.PreferredVersion.Version == "" {
			g.PreferredVersion = v
		}
	}
	mg := metricsAPIGroup() // served by metricsapi.go, not the catalog
	byName[mg.Name], names = &mg, append(names, mg.Name)
	sort.Strings(names)
	out := make([]metav1.APIGroup, 0, len(names))
	for _, n := range names {
		out = append(out, *byName[n])
	}
	return out
}

// aggregatedMedia is the discovery form the client asked for, if any.
func aggregatedMedia(r *http.Request) string {
	for _, clause := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil || mt != mediaJSON {
			continue
		}
		if params["g"] == "apidiscovery.k8s.io" && params["as"] == "APIGroupDiscoveryList" {
			if params["v"] == "v2" || params["v"] == "v2beta1" {
				return params["v"]
			}
		}
	}
	return ""
}

// serveDiscovery answers /api, /apis and the per-group documents; it
// returns false for any other path.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) bool {
	p := strings.TrimSuffix(r.URL.Path, "/")
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch {
	case p == "/api":
		if v := aggregatedMedia(r); v != "" {
			s.writeAggregated(w, v, true)
			return true
		}
		writeJSON(w, http.StatusOK, &metav1.APIVersions{
			TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
			Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{
				ClientCIDR: "0.0.0.0/0", ServerAddress: s.cfg.AdvertiseAddress.String(),
			}},
		})
		return true
	case p == "/apis":
		if v := aggregatedMedia(r); v != "" {
			s.writeAggregated(w, v, false)
			return true
		}
		writeJSON(w, http.StatusOK, &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: s.groups()})
		return true
	case len(parts) == 2 && parts[0] == "api":
		gv := schema.GroupVersion{Version: parts[1]}
		if len(s.catalog.InGroupVersion(gv)) == 0 {
			writeError(w, output{media: mediaJSON}, apierrors.NewNotFound(schema.GroupResource{}, ""))
			return true
		}
		writeJSON(w, http.StatusOK, s.resourceList(gv))
		return true
	case len(parts) == 2 && parts[0] == "apis":
		for _, g := range s.groups() {
			if g.Name == parts[1] {
				g.Kind, g.APIVersion = "APIGroup", "v1"
				writeJSON(w, http.StatusOK, &g)
				return true
			}
		}
		writeError(w, output{media: mediaJSON}, apierrors.NewNotFound(schema.GroupResource{}, ""))
		return true
	case len(parts) == 3 && parts[0] == "apis":
		gv := schema.GroupVersion{Group: parts[1], Version: parts[2]}
		if len(s.catalog.InGroupVersion(gv)) == 0 {
			writeError(w, output{media: mediaJSON}, apierrors.NewNotFound(schema.GroupResource{}, ""))
			return true
		}
		writeJSON(w, http.StatusOK, s.resourceList(gv))
		return true
	}
	return false
}

// writeAggregated answers with the aggregated discovery document (v2 or
// v2beta1, which have the same shape) of the core group or of all groups.
func (s *Server) writeAggregated(w http.ResponseWriter, version string, core bool) {
	doc := s.aggregated(core)
	doc.APIVersion = "apidiscovery.k8s.io/" + version
	var body any = doc
	if version == "v2beta1" {
		// Same fields, other package: convert through JSON.
		b, _ := json.Marshal(doc)
		var beta apidiscoveryv2beta1.APIGroupDiscoveryList
		_ = json.Unmarshal(b, &beta)
		body = &beta
	}
	w.Header().Set("Content-Type", "application/json;g=apidiscovery.k8s.io;v="+version+";as=APIGroupDiscoveryList")
	w.Header().Set("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) aggregated(core bool) *apidiscoveryv2.APIGroupDiscoveryList {
	list := &apidiscoveryv2.APIGroupDiscoveryList{}
	list.Kind = "APIGroupDiscoveryList"
	var groups []string
	if core {
		groups = []string{""}
	} else {
		for _, g := range s.groups() {
			groups = append(groups, g.Name)
		}
	}
	for _, g := range groups {
		if g == metricsGV.Group {
			list.Items = append(list.Items, metricsDiscovery())
			continue
		}
		gd := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g}}
		for _, gv := range s.catalog.GroupVersions() {
			if gv.Group != g {
				continue
			}
			vd := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
			for _, r := range s.catalog.InGroupVersion(gv) {
				scope := apidiscoveryv2.ScopeCluster
				if r.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				rd := apidiscoveryv2.APIResourceDiscovery{
					Resource: r.Resource, SingularResource: r.Singular, Scope: scope,
					ResponseKind: &metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind},
					Verbs:        verbsOf(r), ShortNames: r.ShortNames, Categories: r.Categories,
				}
				for _, sr := range subresources(r) {
					kind := sr.gvk
					if kind.Empty() {
						kind = r.GroupVersionKind()
					}
					rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
						Subresource:  sr.name,
						ResponseKind: &metav1.GroupVersionKind{Group: kind.Group, Version: kind.Version, Kind: kind.Kind},
						Verbs:        sr.verbs,
					})
				}
				vd.Resources = append(vd.Resources, rd)
			}
			gd.Versions = append(gd.Versions, vd)
		}
		list.Items = append(list.Items, gd)
	}
	return list
}

// serveRootPaths lists the server's paths, as kube-apiserver does at /.
func (s *Server) serveRootPaths(w http.ResponseWriter) {
	paths := []string{"/api", "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/openapi/v2", "/openapi/v3", "/readyz", "/version"}
	for _, gv := range s.catalog.GroupVersions() {
		if gv.Group != "" {
			paths = append(paths, "/apis/"+gv.Group, "/apis/"+gv.String())
		}
	}
	sort.Strings(paths)
	writeJSON(w, http.StatusOK, map[string][]string{"paths": paths})
}

// writeJSON answers with a plain JSON document.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
