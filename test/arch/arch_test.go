package arch

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "github.com/skiff-sh/skiff/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", p.ImportPath)
		}
	}
}

// storeUsers may import the store's implementation packages.
var storeUsers = []string{
	"github.com/skiff-sh/skiff/apiserver",
	"github.com/skiff-sh/skiff/cluster",
	"github.com/skiff-sh/skiff/storage",
	"github.com/skiff-sh/skiff/test",
}

func TestOnlyTheAPIServerTouchesTheStore(t *testing.T) {
	for _, p := range listPackages(t) {
		allowed := false
		for _, u := range storeUsers {
			if p.ImportPath == u || strings.HasPrefix(p.ImportPath, u+"/") {
				allowed = true
			}
		}
		if allowed {
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "github.com/skiff-sh/skiff/storage") || strings.HasPrefix(imp, "go.etcd.io/etcd") {
				t.Errorf("%s imports %s: components other than the API server must use the API", p.ImportPath, imp)
			}
		}
	}
}
