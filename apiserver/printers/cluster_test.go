package printers

import (
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestRBACRows(t *testing.T) {
	rbac := func(kind string) schema.GroupKind {
		return schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: kind}
	}
	created := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	checkRows(t, rbac("Role"), []rowCase{
		{"role", &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", CreationTimestamp: created}}, []interface{}{"reader", "2025-01-02T03:04:05Z"}},
	})
	checkRows(t, rbac("ClusterRole"), []rowCase{
		{"cluster role", &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "admin", CreationTimestamp: created}}, []interface{}{"admin", "2025-01-02T03:04:05Z"}},
	})

	subjects := []rbacv1.Subject{
		{Kind: "User", Name: "alice"}, {Kind: "User", Name: "bob"},
		{Kind: "Group", Name: "devs"},
		{Kind: "ServiceAccount", Namespace: "ci", Name: "builder"},
		{Kind: "Robot", Name: "ignored"},
	}
	checkRows(t, rbac("RoleBinding"), []rowCase{
		{"mixed subjects", &rbacv1.RoleBinding{ObjectMeta: objMeta("read", time.Hour), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}, Subjects: subjects},
			[]interface{}{"read", "ClusterRole/view", "60m", "alice, bob", "devs", "ci/builder"}},
	})
	checkRows(t, rbac("ClusterRoleBinding"), []rowCase{
		{"no subjects", &rbacv1.ClusterRoleBinding{ObjectMeta: objMeta("root", time.Hour), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"}},
			[]interface{}{"root", "ClusterRole/cluster-admin", "60m", "", "", ""}},
	})
}

func TestStorageClassRows(t *testing.T) {
	retain := corev1.PersistentVolumeReclaimRetain
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	yes := true
	def := &storagev1.StorageClass{ObjectMeta: objMeta("local-path", 45*24*time.Hour), Provisioner: "rancher.io/local-path",
		ReclaimPolicy: &retain, VolumeBindingMode: &wait, AllowVolumeExpansion: &yes}
	def.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
	beta := &storagev1.StorageClass{ObjectMeta: objMeta("old", time.Hour), Provisioner: "example.com/p"}
	beta.Annotations = map[string]string{"storageclass.beta.kubernetes.io/is-default-class": "true"}
	notDefault := &storagev1.StorageClass{ObjectMeta: objMeta("slow", time.Hour), Provisioner: "example.com/p"}
	notDefault.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "false"}
	checkRows(t, schema.GroupKind{Group: "storage.k8s.io", Kind: "StorageClass"}, []rowCase{
		{"default", def, []interface{}{"local-path (default)", "rancher.io/local-path", "Retain", "WaitForFirstConsumer", "true", "45d"}},
		{"beta default, defaults filled", beta, []interface{}{"old (default)", "example.com/p", "Delete", "Immediate", "false", "60m"}},
		{"not default", notDefault, []interface{}{"slow", "example.com/p", "Delete", "Immediate", "false", "60m"}},
	})
}

func TestOtherClusterRows(t *testing.T) {
	holder := "node-1"
	checkRows(t, schema.GroupKind{Group: "coordination.k8s.io", Kind: "Lease"}, []rowCase{
		{"held", &coordinationv1.Lease{ObjectMeta: objMeta("node-1", time.Hour), Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}, []interface{}{"node-1", "node-1", "60m"}},
		{"free", &coordinationv1.Lease{ObjectMeta: objMeta("lock", time.Hour)}, []interface{}{"lock", "", "60m"}},
	})

	two := intstr.FromInt32(2)
	half := intstr.FromString("50%")
	checkRows(t, schema.GroupKind{Group: "policy", Kind: "PodDisruptionBudget"}, []rowCase{
		{"min available", &policyv1.PodDisruptionBudget{ObjectMeta: objMeta("web", time.Hour), Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &two},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1}}, []interface{}{"web", "2", "N/A", int64(1), "60m"}},
		{"max unavailable", &policyv1.PodDisruptionBudget{ObjectMeta: objMeta("db", time.Hour), Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &half}},
			[]interface{}{"db", "N/A", "50%", int64(0), "60m"}},
	})

	never := corev1.PreemptNever
	checkRows(t, schema.GroupKind{Group: "scheduling.k8s.io", Kind: "PriorityClass"}, []rowCase{
		{"system", &schedulingv1.PriorityClass{ObjectMeta: objMeta("system-node-critical", 45*24*time.Hour), Value: 2000001000},
			[]interface{}{"system-node-critical", int64(2000001000), false, "45d", ""}},
		{"default, never preempts", &schedulingv1.PriorityClass{ObjectMeta: objMeta("low", time.Hour), Value: -10, GlobalDefault: true, PreemptionPolicy: &never},
			[]interface{}{"low", int64(-10), true, "60m", "Never"}},
	})

	day := int32(86400)
	csr := func(conds []certificatesv1.CertificateSigningRequestCondition, cert []byte) *certificatesv1.CertificateSigningRequest {
		c := &certificatesv1.CertificateSigningRequest{ObjectMeta: objMeta("csr-1", 5*time.Minute)}
		c.Spec.SignerName = "kubernetes.io/kube-apiserver-client"
		c.Spec.Username = "system:admin"
		c.Spec.ExpirationSeconds = &day
		c.Status.Conditions = conds
		c.Status.Certificate = cert
		return c
	}
	cond := func(t certificatesv1.RequestConditionType) certificatesv1.CertificateSigningRequestCondition {
		return certificatesv1.CertificateSigningRequestCondition{Type: t, Status: corev1.ConditionTrue}
	}
	rowOf := func(condition string) []interface{} {
		return []interface{}{"csr-1", "5m", "kubernetes.io/kube-apiserver-client", "system:admin", "24h", condition}
	}
	checkRows(t, schema.GroupKind{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}, []rowCase{
		{"pending", csr(nil, nil), rowOf("Pending")},
		{"approved and issued", csr([]certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved)}, []byte("PEM")), rowOf("Approved,Issued")},
		{"denied beats approved", csr([]certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved), cond(certificatesv1.CertificateDenied)}, nil), rowOf("Denied")},
		{"approved but failed", csr([]certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved), cond(certificatesv1.CertificateFailed)}, nil), rowOf("Approved,Failed")},
		{"empty", &certificatesv1.CertificateSigningRequest{}, []interface{}{"", "<unknown>", "<none>", "", "<none>", "Pending"}},
	})
}
