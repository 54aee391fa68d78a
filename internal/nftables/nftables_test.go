package nftables

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

func TestObjectName(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, tc := range []struct {
		name, prefix, identity, want string
	}{
		{"short identity kept whole", "svc-", "default/web/tcp/http", "svc-sustuhlj5n-default/web/tcp/http"},
		{"empty identity", "sel-", "", "sel-4oymiquy7q-"},
		{"long identity shortened", "svc-", long + "/" + long + "/tcp/x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ObjectName(tc.prefix, tc.identity)
			if tc.want != "" && got != tc.want {
				t.Errorf("ObjectName(%q, %q) = %q, want %q", tc.prefix, tc.identity, got, tc.want)
			}
			if limit := len(tc.prefix) + 11 + maxReadable; len(got) > limit {
				t.Errorf("name is %d long, more than %d", len(got), limit)
			}
			if got != ObjectName(tc.prefix, tc.identity) {
				t.Error("name differs between calls")
			}
		})
	}

	// Identities that differ only past the readable part still get
	// different names.
	a := ObjectName("svc-", long+"/"+long+"/"+long+"/tcp/x")
	b := ObjectName("svc-", long+"/"+long+"/"+long+"/tcp/y")
	if a == b {
		t.Fatalf("names collide after shortening: %q", a)
	}
	if a[15:] != b[15:] {
		t.Errorf("readable parts differ though the difference is past the cut: %q, %q", a, b)
	}
}

// filled is a fake table ip t holding objs.
func filled(t *testing.T, objs ...knftables.Object) *knftables.Fake {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, "t")
	tx := fake.NewTransaction()
	tx.Add(&knftables.Table{})
	for _, o := range objs {
		tx.Add(o)
	}
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	return fake
}

func TestDeleteTable(t *testing.T) {
	ctx := context.Background()
	fake := filled(t,
		&knftables.Chain{Name: "c"},
		&knftables.Rule{Chain: "c", Rule: "accept"},
		&knftables.Set{Name: "s", Type: "ipv4_addr"},
		&knftables.Element{Set: "s", Key: []string{"10.0.0.1"}})

	if err := DeleteTable(ctx, fake, "t"); err != nil {
		t.Fatalf("deleting a full table: %v", err)
	}
	if fake.Table != nil {
		t.Fatalf("table still there:\n%s", fake.Dump())
	}
	if err := DeleteTable(ctx, fake, "t"); err != nil {
		t.Fatalf("deleting a missing table: %v", err)
	}
}

func TestDestroyTableThenWrite(t *testing.T) {
	ctx := context.Background()
	fake := filled(t, &knftables.Chain{Name: "old"})

	// A rewrite in one transaction: what was there is gone, what the
	// transaction adds after DestroyTable stays.
	tx := fake.NewTransaction()
	DestroyTable(tx)
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Chain{Name: "new"})
	if err := fake.Run(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if fake.Table == nil || fake.Table.Chains["new"] == nil || fake.Table.Chains["old"] != nil {
		t.Errorf("after destroy and rewrite:\n%s", fake.Dump())
	}
	if got, want := tx.String(), "add table ip t\ndelete table ip t\nadd table ip t\nadd chain ip t new\n"; got != want {
		t.Errorf("transaction:\n%s\nwant:\n%s", got, want)
	}
}
