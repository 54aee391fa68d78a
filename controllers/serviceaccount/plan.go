package serviceaccount

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// DefaultName is the ServiceAccount every namespace gets.
	DefaultName = "default"
	// RootCAName is the ConfigMap holding the cluster CA in every namespace.
	RootCAName = "kube-root-ca.crt"
	// RootCAKey is the RootCAName data key the PEM bundle sits under.
	RootCAKey = "ca.crt"
	// descriptionAnnotation explains the ConfigMap to whoever finds it.
	descriptionAnnotation = "kubernetes.io/description"
	description           = "The cluster's certificate authority bundle, for clients inside the cluster " +
		"that verify the API server through its in-cluster addresses (kubernetes.default.svc, the service IP). " +
		"Nothing else about it is promised."
)

// observed is what one namespace looks like to the controller.
type observed struct {
	Namespace *corev1.Namespace      // nil: gone
	Account   *corev1.ServiceAccount // the default ServiceAccount; nil: missing
	RootCA    *corev1.ConfigMap      // the kube-root-ca.crt ConfigMap; nil: missing
}

// plan is what the controller must write for one namespace.
type plan struct {
	CreateAccount  *corev1.ServiceAccount
	CreateRootCA   *corev1.ConfigMap
	UpdateRootCA   *corev1.ConfigMap
	skipTerminated bool // the namespace is gone or terminating; nothing to do
}

// decide compares a namespace with what every namespace must hold: the
// default ServiceAccount and, when caPEM is set, the CA ConfigMap. Nothing
// is written into a namespace that is gone or being deleted.
func decide(o observed, caPEM []byte) plan {
	ns := o.Namespace
	if ns == nil || ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return plan{skipTerminated: true}
	}
	var p plan
	if o.Account == nil {
		p.CreateAccount = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: DefaultName}}
	}
	if len(caPEM) == 0 {
		return p
	}
	want := map[string]string{RootCAKey: string(caPEM)}
	switch cm := o.RootCA; {
	case cm == nil:
		p.CreateRootCA = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: RootCAName,
				Annotations: map[string]string{descriptionAnnotation: description}},
			Data: want,
		}
	case !maps.Equal(cm.Data, want) || len(cm.BinaryData) > 0 || cm.Annotations[descriptionAnnotation] == "":
		next := cm.DeepCopy()
		next.Data, next.BinaryData = want, nil
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		next.Annotations[descriptionAnnotation] = description
		p.UpdateRootCA = next
	}
	return p
}
