package printers

import (
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func rbacPrinters() map[schema.GroupKind]kindPrinter {
	rbac := func(kind string) schema.GroupKind {
		return schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: kind}
	}
	// Roles have no printer of their own in Kubernetes: they get the
	// generic name and creation time.
	roleColumns := []metav1.TableColumnDefinition{nameColumn(), createdAtColumn()}
	return map[schema.GroupKind]kindPrinter{
		rbac("Role"): printer(roleColumns, func(r *rbacv1.Role, _ time.Time) []interface{} {
			return []interface{}{r.Name, createdAt(r.CreationTimestamp)}
		}),
		rbac("ClusterRole"): printer(roleColumns, func(r *rbacv1.ClusterRole, _ time.Time) []interface{} {
			return []interface{}{r.Name, createdAt(r.CreationTimestamp)}
		}),
		rbac("RoleBinding"): printer(bindingColumns("role binding"), func(b *rbacv1.RoleBinding, now time.Time) []interface{} {
			return bindingCells(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp, now)
		}),
		rbac("ClusterRoleBinding"): printer(bindingColumns("cluster role binding"), func(b *rbacv1.ClusterRoleBinding, now time.Time) []interface{} {
			return bindingCells(b.Name, b.RoleRef, b.Subjects, b.CreationTimestamp, now)
		}),
	}
}

func bindingColumns(what string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Role", typeString, "The Kind/name of the role the "+what+" grants."),
		ageColumn(),
		wide(column("Users", typeString, "The users the "+what+" names.")),
		wide(column("Groups", typeString, "The groups the "+what+" names.")),
		wide(column("ServiceAccounts", typeString, "The namespace/name of each service account the "+what+" names.")),
	}
}

func bindingCells(name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject, created metav1.Time, now time.Time) []interface{} {
	var users, groups, accounts []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			accounts = append(accounts, s.Namespace+"/"+s.Name)
		}
	}
	return []interface{}{
		name,
		ref.Kind + "/" + ref.Name,
		since(created, now),
		strings.Join(users, ", "),
		strings.Join(groups, ", "),
		strings.Join(accounts, ", "),
	}
}
