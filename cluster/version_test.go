package cluster

import (
	"os"
	"regexp"
	"testing"
)

// The served version must follow the k8s.io/api types Skiff is built on.
func TestVersionFollowsTheAPITypes(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/api v0\.(\d+)\.(\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no k8s.io/api requirement")
	}
	want := "v1." + string(m[1]) + "." + string(m[2]) + "+skiff"
	if Version.GitVersion != want || Version.Minor != string(m[1]) {
		t.Errorf("cluster.Version is %s (minor %s); k8s.io/api in go.mod says %s", Version.GitVersion, Version.Minor, want)
	}
}
