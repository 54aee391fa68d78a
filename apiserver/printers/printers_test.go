package printers

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// now is the fixed clock of every test.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// ago is a metav1.Time d before now.
func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

// agoPtr is a pointer to ago(d).
func agoPtr(d time.Duration) *metav1.Time { t := ago(d); return &t }

// checkCellTypes fails unless every cell has the Go type its column's type
// calls for: string, int64, bool, or an RFC 3339 string for dates.
func checkCellTypes(cols []metav1.TableColumnDefinition, cells []interface{}) error {
	if len(cols) != len(cells) {
		return fmt.Errorf("%d columns but %d cells: %v", len(cols), len(cells), cells)
	}
	for i, c := range cols {
		cell := cells[i]
		ok := false
		switch c.Type {
		case typeString:
			_, ok = cell.(string)
		case typeInteger:
			_, ok = cell.(int64)
		case typeBoolean:
			_, ok = cell.(bool)
		case typeDate:
			var s string
			if s, ok = cell.(string); ok {
				_, err := time.Parse(time.RFC3339, s)
				ok = err == nil
			}
		}
		if !ok {
			return fmt.Errorf("column %q (%s): cell %#v of type %T", c.Name, c.Type, cell, cell)
		}
	}
	return nil
}

// row prints obj and checks its cells against its kind's columns.
func row(t *testing.T, gk schema.GroupKind, obj runtime.Object) []interface{} {
	t.Helper()
	cells, err := Cells(obj, now)
	if err != nil {
		t.Fatalf("Cells: %v", err)
	}
	if err := checkCellTypes(Columns(gk), cells); err != nil {
		t.Fatal(err)
	}
	return cells
}

// byName picks the cells of the named columns out of a row.
func byName(t *testing.T, gk schema.GroupKind, cells []interface{}, names ...string) []interface{} {
	t.Helper()
	cols := Columns(gk)
	var out []interface{}
	for _, n := range names {
		found := false
		for i, c := range cols {
			if c.Name == n {
				out = append(out, cells[i])
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("%s has no column %q", gk, n)
		}
	}
	return out
}

// columnNames lists the columns' names, and marks wide ones with a "+".
func columnNames(cols []metav1.TableColumnDefinition) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
		if c.Priority == 1 {
			out[i] = "+" + c.Name
		}
	}
	return out
}

func TestHumanDurations(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{5 * time.Second, "5s"},
		{119 * time.Second, "119s"},
		{3*time.Minute + 2*time.Second, "3m2s"},
		{5 * time.Minute, "5m"},
		{90 * time.Minute, "90m"},
		{5*time.Hour + 7*time.Minute, "5h7m"},
		{20 * time.Hour, "20h"},
		{51 * time.Hour, "2d3h"},
		{45 * 24 * time.Hour, "45d"},
		{-5 * time.Second, "<invalid>"},
	} {
		if got := since(ago(tc.d), now); got != tc.want {
			t.Errorf("since(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := since(metav1.Time{}, now); got != "<unknown>" {
		t.Errorf("since(zero) = %q, want <unknown>", got)
	}
}

func TestUnknownKind(t *testing.T) {
	gk := schema.GroupKind{Group: "example.com", Kind: "Widget"}
	cols := Columns(gk)
	if got := columnNames(cols); !reflect.DeepEqual(got, []string{"Name", "Age"}) {
		t.Fatalf("columns = %v", got)
	}
	if cols[0].Format != "name" || cols[0].Type != "string" || cols[1].Type != "string" {
		t.Fatalf("columns = %+v", cols)
	}

	u := &unstructured.Unstructured{}
	u.SetName("w1")
	u.SetCreationTimestamp(ago(3 * time.Hour))
	cells, err := Cells(u, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []interface{}{"w1", "3h"}; !reflect.DeepEqual(cells, want) {
		t.Fatalf("cells = %v, want %v", cells, want)
	}

	if _, err := Cells(&metav1.Status{}, now); err == nil {
		t.Fatal("an object without metadata printed without error")
	}
	if _, err := Cells(nil, now); err == nil {
		t.Fatal("nil printed without error")
	}
	if _, err := Cells((*corev1.Pod)(nil), now); err == nil {
		t.Fatal("a nil pod printed without error")
	}
}

func TestColumnsReturnsACopy(t *testing.T) {
	gk := schema.GroupKind{Kind: "Pod"}
	Columns(gk)[0].Name = "changed"
	if Columns(gk)[0].Name != "Name" {
		t.Fatal("changing the returned columns changed the package's")
	}
}

// TestColumnLayouts pins every printed kind's column names, order and
// priority ("+" marks -o wide columns).
func TestColumnLayouts(t *testing.T) {
	for gk, want := range map[schema.GroupKind][]string{
		{Kind: "Pod"}:                                                     {"Name", "Ready", "Status", "Restarts", "Age", "+IP", "+Node", "+Nominated Node", "+Readiness Gates"},
		{Kind: "Namespace"}:                                               {"Name", "Status", "Age"},
		{Kind: "Node"}:                                                    {"Name", "Status", "Roles", "Age", "Version", "+Internal-IP", "+External-IP", "+OS-Image", "+Kernel-Version", "+Container-Runtime"},
		{Kind: "Service"}:                                                 {"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "+Selector"},
		{Kind: "Endpoints"}:                                               {"Name", "Endpoints", "Age"},
		{Kind: "ConfigMap"}:                                               {"Name", "Data", "Age"},
		{Kind: "Secret"}:                                                  {"Name", "Type", "Data", "Age"},
		{Kind: "ServiceAccount"}:                                          {"Name", "Secrets", "Age"},
		{Kind: "Event"}:                                                   {"Last Seen", "Type", "Reason", "Object", "+Subobject", "+Source", "Message", "+First Seen", "+Count", "+Name"},
		{Kind: "PersistentVolume"}:                                        {"Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass", "VolumeAttributesClass", "Reason", "Age", "+VolumeMode"},
		{Kind: "PersistentVolumeClaim"}:                                   {"Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass", "Age", "+VolumeMode"},
		{Kind: "ReplicationController"}:                                   {"Name", "Desired", "Current", "Ready", "Age", "+Containers", "+Images", "+Selector"},
		{Kind: "ResourceQuota"}:                                           {"Name", "Request", "Limit", "Age"},
		{Kind: "LimitRange"}:                                              {"Name", "Created At"},
		{Kind: "PodTemplate"}:                                             {"Name", "Containers", "Images", "Pod Labels"},
		{Group: "apps", Kind: "Deployment"}:                               {"Name", "Ready", "Up-to-date", "Available", "Age", "+Containers", "+Images", "+Selector"},
		{Group: "apps", Kind: "ReplicaSet"}:                               {"Name", "Desired", "Current", "Ready", "Age", "+Containers", "+Images", "+Selector"},
		{Group: "apps", Kind: "DaemonSet"}:                                {"Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age", "+Containers", "+Images", "+Selector"},
		{Group: "apps", Kind: "StatefulSet"}:                              {"Name", "Ready", "Age", "+Containers", "+Images"},
		{Group: "apps", Kind: "ControllerRevision"}:                       {"Name", "Controller", "Revision", "Age"},
		{Group: "batch", Kind: "Job"}:                                     {"Name", "Status", "Completions", "Duration", "Age", "+Containers", "+Images", "+Selector"},
		{Group: "batch", Kind: "CronJob"}:                                 {"Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "+Containers", "+Images", "+Selector"},
		{Group: "networking.k8s.io", Kind: "Ingress"}:                     {"Name", "Class", "Hosts", "Address", "Ports", "Age"},
		{Group: "networking.k8s.io", Kind: "IngressClass"}:                {"Name", "Controller", "Parameters", "Age"},
		{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:               {"Name", "Pod-Selector", "Age"},
		{Group: "discovery.k8s.io", Kind: "EndpointSlice"}:                {"Name", "AddressType", "Ports", "Endpoints", "Age"},
		{Group: "coordination.k8s.io", Kind: "Lease"}:                     {"Name", "Holder", "Age"},
		{Group: "events.k8s.io", Kind: "Event"}:                           {"Last Seen", "Type", "Reason", "Object", "+Subobject", "+Source", "Message", "+First Seen", "+Count", "+Name"},
		{Group: "rbac.authorization.k8s.io", Kind: "Role"}:                {"Name", "Created At"},
		{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:         {"Name", "Created At"},
		{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:         {"Name", "Role", "Age", "+Users", "+Groups", "+ServiceAccounts"},
		{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:  {"Name", "Role", "Age", "+Users", "+Groups", "+ServiceAccounts"},
		{Group: "storage.k8s.io", Kind: "StorageClass"}:                   {"Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"},
		{Group: "policy", Kind: "PodDisruptionBudget"}:                    {"Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"},
		{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:               {"Name", "Value", "Global-Default", "Age", "PreemptionPolicy"},
		{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}: {"Name", "Age", "SignerName", "Requestor", "RequestedDuration", "Condition"},
	} {
		cols := Columns(gk)
		if got := columnNames(cols); !reflect.DeepEqual(got, want) {
			t.Errorf("%s columns\n got %v\nwant %v", gk, got, want)
		}
		for _, c := range cols {
			if c.Description == "" {
				t.Errorf("%s column %q has no description", gk, c.Name)
			}
			if (c.Name == "Name") != (c.Format == "name") {
				t.Errorf("%s column %q has format %q", gk, c.Name, c.Format)
			}
		}
	}
}

func TestEachKindHasItsOwnGoType(t *testing.T) {
	if len(kindByType) != len(printersByKind) {
		t.Fatalf("%d kinds but %d Go types: two kinds share a type", len(printersByKind), len(kindByType))
	}
	for gk, p := range printersByKind {
		if got := kindByType[reflect.TypeOf(p.sample)]; got != gk {
			t.Errorf("%T prints as %s, want %s", p.sample, got, gk)
		}
	}
}
