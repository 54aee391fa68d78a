package printers

import (
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// clusterPrinters covers the small groups with one printed kind each:
// coordination.k8s.io, policy, scheduling.k8s.io and certificates.k8s.io.
func clusterPrinters() map[schema.GroupKind]kindPrinter {
	return map[schema.GroupKind]kindPrinter{
		{Group: "coordination.k8s.io", Kind: "Lease"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Holder", typeString, "Who holds the lease now."),
			ageColumn(),
		}, func(l *coordinationv1.Lease, now time.Time) []interface{} {
			return []interface{}{l.Name, strOr(l.Spec.HolderIdentity, ""), since(l.CreationTimestamp, now)}
		}),
		{Group: "policy", Kind: "PodDisruptionBudget"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Min Available", typeString, "How many (or what share) of the pods must stay available."),
			column("Max Unavailable", typeString, "How many (or what share) of the pods may be unavailable."),
			column("Allowed Disruptions", typeInteger, "How many pods may be evicted right now."),
			ageColumn(),
		}, func(p *policyv1.PodDisruptionBudget, now time.Time) []interface{} {
			minAvailable, maxUnavailable := "N/A", "N/A"
			if p.Spec.MinAvailable != nil {
				minAvailable = p.Spec.MinAvailable.String()
			}
			if p.Spec.MaxUnavailable != nil {
				maxUnavailable = p.Spec.MaxUnavailable.String()
			}
			return []interface{}{p.Name, minAvailable, maxUnavailable, int64(p.Status.DisruptionsAllowed), since(p.CreationTimestamp, now)}
		}),
		{Group: "scheduling.k8s.io", Kind: "PriorityClass"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Value", typeInteger, "The priority pods of the class get."),
			column("Global-Default", typeBoolean, "Whether pods without a class get this one."),
			ageColumn(),
			column("PreemptionPolicy", typeString, "Whether pods of the class may preempt lower-priority pods."),
		}, func(p *schedulingv1.PriorityClass, now time.Time) []interface{} {
			policy := ""
			if p.PreemptionPolicy != nil {
				policy = string(*p.PreemptionPolicy)
			}
			return []interface{}{p.Name, int64(p.Value), p.GlobalDefault, since(p.CreationTimestamp, now), policy}
		}),
		{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}: printer([]metav1.TableColumnDefinition{
			nameColumn(),
			ageColumn(),
			column("SignerName", typeString, "The signer asked to sign the request."),
			column("Requestor", typeString, "The user who made the request."),
			column("RequestedDuration", typeString, "How long the requested certificate should be valid."),
			column("Condition", typeString, "Pending, Approved or Denied, then Failed and Issued when they apply."),
		}, csrCells),
	}
}

func csrCells(c *certificatesv1.CertificateSigningRequest, now time.Time) []interface{} {
	requested := none
	if c.Spec.ExpirationSeconds != nil {
		requested = duration.HumanDuration(time.Duration(*c.Spec.ExpirationSeconds) * time.Second)
	}
	return []interface{}{c.Name, since(c.CreationTimestamp, now), orNone(c.Spec.SignerName),
		c.Spec.Username, requested, csrCondition(c)}
}

// csrCondition sums up a request's conditions: denied beats approved beats
// pending; failure and an issued certificate are added after.
func csrCondition(c *certificatesv1.CertificateSigningRequest) string {
	var approved, denied, failed bool
	for _, cond := range c.Status.Conditions {
		switch cond.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		case certificatesv1.CertificateFailed:
			failed = true
		}
	}
	words := []string{"Pending"}
	switch {
	case denied:
		words[0] = "Denied"
	case approved:
		words[0] = "Approved"
	}
	if failed {
		words = append(words, "Failed")
	}
	if len(c.Status.Certificate) > 0 {
		words = append(words, "Issued")
	}
	return strings.Join(words, ",")
}
