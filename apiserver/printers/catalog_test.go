package printers_test

import (
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/apiserver/printers"
	"github.com/skiff-sh/skiff/apiserver/registry"
)

// TestEveryCatalogKind prints an empty object of every served kind (and of
// CertificateSigningRequest, which is coming): each kind has its own
// columns with a Name column of format name, leading for all but events,
// and an empty object yields one well-typed cell per column.
func TestEveryCatalogKind(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	type kind struct {
		group, kind string
		obj         runtime.Object
	}
	var kinds []kind
	for _, r := range registry.Default().All() {
		kinds = append(kinds, kind{r.Group, r.Kind, r.New()})
	}
	kinds = append(kinds, kind{"certificates.k8s.io", "CertificateSigningRequest", &certificatesv1.CertificateSigningRequest{}})
	if len(kinds) < 30 {
		t.Fatalf("only %d kinds in the catalog", len(kinds))
	}

	for _, k := range kinds {
		gk := k.group + "/" + k.kind
		cols := printers.Columns(schema.GroupKind{Group: k.group, Kind: k.kind})
		if len(cols) <= 2 && k.kind != "Role" && k.kind != "ClusterRole" && k.kind != "LimitRange" {
			t.Errorf("%s has only the default columns", gk)
		}
		nameAt := -1
		for i, c := range cols {
			if c.Name == "Name" && c.Format == "name" && c.Type == "string" {
				nameAt = i
				break
			}
		}
		switch {
		case k.kind == "Event":
			if cols[0].Name != "Last Seen" || nameAt < 0 || cols[nameAt].Priority != 1 {
				t.Errorf("%s: events lead with Last Seen and keep Name as a wide column: %+v", gk, cols)
			}
		case nameAt != 0:
			t.Errorf("%s: first column is %+v, want Name of format name", gk, cols[0])
		}

		cells, err := printers.Cells(k.obj, now)
		if err != nil {
			t.Errorf("%s: Cells of an empty object: %v", gk, err)
			continue
		}
		if err := printers.CheckCellTypes(cols, cells); err != nil {
			t.Errorf("%s: %v", gk, err)
		}
	}
}
