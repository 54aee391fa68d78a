package apiserver

import (
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// requestInfo is what the URL of a resource request says.
//
//	/api/v1/namespaces/NS/pods/NAME/status
//	 ^prefix  ^namespace   ^res ^name ^subresource
//	/apis/apps/v1/deployments?watch=true
type requestInfo struct {
	// Verb is the Kubernetes verb: get, list, watch, create, update, patch,
	// delete, deletecollection.
	Verb        string
	GV          schema.GroupVersion
	Namespace   string
	Resource    string
	Name        string
	Subresource string
	// Parts are the path segments after the group version, for discovery.
	Parts []string
}

// parseRequest reads a resource request's URL. ok is false for paths that
// are not /api/v1/... or /apis/GROUP/VERSION/... with at least a resource.
func parseRequest(r *http.Request) (info requestInfo, ok bool) {
	path := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(path, "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		info.GV = schema.GroupVersion{Version: parts[1]}
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		info.GV = schema.GroupVersion{Group: parts[1], Version: parts[2]}
		parts = parts[3:]
	default:
		return info, false
	}
	info.Parts = parts
	if len(parts) == 0 || parts[0] == "" {
		return info, false
	}
	watchPath := false
	if parts[0] == "watch" { // legacy /api/v1/watch/... paths
		watchPath = true
		parts = parts[1:]
	}
	// namespaces/NS/RESOURCE... is a namespaced request unless it is the
	// namespace object itself (namespaces/NS or namespaces/NS/status).
	isNamespaceSub := len(parts) == 3 && parts[0] == "namespaces" && (parts[2] == "status" || parts[2] == "finalize")
	if len(parts) >= 3 && parts[0] == "namespaces" && !isNamespaceSub {
		info.Namespace = parts[1]
		parts = parts[2:]
	} else if len(parts) == 0 {
		return info, false
	}
	info.Resource = parts[0]
	if len(parts) > 1 {
		info.Name = parts[1]
	}
	if len(parts) > 2 {
		info.Subresource = strings.Join(parts[2:], "/")
	}
	if len(parts) > 4 {
		return info, false
	}
	if info.Resource == "" {
		return info, false
	}

	q := r.URL.Query()
	isWatch := watchPath || q.Get("watch") == "true" || q.Get("watch") == "1"
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case isWatch:
			info.Verb = "watch"
		case info.Name == "":
			info.Verb = "list"
		default:
			info.Verb = "get"
		}
	case http.MethodPost:
		info.Verb = "create"
	case http.MethodPut:
		info.Verb = "update"
	case http.MethodPatch:
		info.Verb = "patch"
	case http.MethodDelete:
		if info.Name == "" {
			info.Verb = "deletecollection"
		} else {
			info.Verb = "delete"
		}
	default:
		info.Verb = strings.ToLower(r.Method)
	}
	return info, true
}
