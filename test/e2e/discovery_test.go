package e2e

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/skiff-sh/skiff/cluster"
)

// TestDiscoveryAndConfig covers the commands that read the server's
// description of itself and the client's own configuration.
func TestDiscoveryAndConfig(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		host := k.srv.RESTConfig().Host

		names := map[string]bool{}
		for _, n := range strings.Fields(k.ok("api-resources", "-o", "name")) {
			names[n] = true
		}
		for _, want := range []string{"pods", "services", "namespaces", "configmaps", "secrets", "deployments.apps", "replicasets.apps"} {
			if !names[want] {
				t.Errorf("api-resources -o name lacks %s", want)
			}
		}
		res := oneTable(t, k.ok("api-resources"))
		for _, want := range []map[string]string{
			{"NAME": "pods", "SHORTNAMES": "po", "APIVERSION": "v1", "NAMESPACED": "true", "KIND": "Pod"},
			{"NAME": "deployments", "SHORTNAMES": "deploy", "APIVERSION": "apps/v1", "NAMESPACED": "true", "KIND": "Deployment"},
			{"NAME": "namespaces", "SHORTNAMES": "ns", "APIVERSION": "v1", "NAMESPACED": "false", "KIND": "Namespace"},
		} {
			got := res.row(t, "NAME", want["NAME"])
			for col, v := range want {
				if got[col] != v {
					t.Errorf("api-resources row %s: %s = %q, want %q", want["NAME"], col, got[col], v)
				}
			}
		}
		scoped := strings.Fields(k.ok("api-resources", "--namespaced=false", "-o", "name"))
		if !slices.Contains(scoped, "namespaces") || slices.Contains(scoped, "pods") {
			t.Errorf("api-resources --namespaced=false = %v", scoped)
		}
		versions := strings.Fields(k.ok("api-versions"))
		if !slices.Contains(versions, "v1") || !slices.Contains(versions, "apps/v1") {
			t.Errorf("api-versions = %v", versions)
		}

		// explain reads the OpenAPI documents.
		out := k.ok("explain", "pods.spec.containers")
		wantContains(t, out, "KIND:", "Pod", "DESCRIPTION:", "FIELDS:")
		for _, re := range []string{`(?m)^\s+image\s+<string>`, `(?m)^\s+name\s+<string>`, `(?m)^\s+ports\s+<\[\]`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("explain pods.spec.containers does not match %s:\n%s", re, out)
			}
		}
		if out := k.ok("explain", "deployments.spec.replicas"); !regexp.MustCompile(`replicas\s+<integer>`).MatchString(out) {
			t.Errorf("explain deployments.spec.replicas:\n%s", out)
		}

		// config view redacts secrets; --raw and --minify show the server.
		view := k.ok("config", "view")
		wantContains(t, view, "server: "+host, "DATA+OMITTED")
		var raw struct {
			CurrentContext string `json:"current-context"`
			Clusters       []struct {
				Cluster struct {
					Server string `json:"server"`
					CAData string `json:"certificate-authority-data"`
				} `json:"cluster"`
			} `json:"clusters"`
		}
		if err := json.Unmarshal([]byte(k.ok("config", "view", "--raw", "-o", "json")), &raw); err != nil {
			t.Fatalf("config view --raw -o json: %v", err)
		}
		if raw.CurrentContext == "" || len(raw.Clusters) != 1 || raw.Clusters[0].Cluster.Server != host || raw.Clusters[0].Cluster.CAData == "" {
			t.Errorf("config view --raw: %+v, want one cluster at %s with CA data", raw, host)
		}
		if got := k.ok("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"); got != host {
			t.Errorf("config view --minify server = %q, want %q", got, host)
		}

		info := plain(k.ok("cluster-info"))
		wantContains(t, info, "Kubernetes control plane is running at "+host)
	})
}

// TestVersion checks kubectl version reports the server's version and
// exits 0 (it fails when it cannot parse either side's version).
func TestVersion(t *testing.T) {
	eachClient(t, func(t *testing.T, k *kubectl) {
		var v struct {
			Server struct {
				GitVersion string `json:"gitVersion"`
			} `json:"serverVersion"`
		}
		if err := json.Unmarshal([]byte(k.ok("version", "-o", "json")), &v); err != nil {
			t.Fatalf("version -o json: %v", err)
		}
		if v.Server.GitVersion != cluster.Version.GitVersion {
			t.Errorf("server version = %q, want %q", v.Server.GitVersion, cluster.Version.GitVersion)
		}
	})
}
