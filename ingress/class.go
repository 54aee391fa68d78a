package ingress

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// DefaultClassName is the IngressClass this controller serves unless
	// Config.ClassName says otherwise.
	DefaultClassName = "skiff"
	// ControllerName is the spec.controller of Skiff's IngressClasses. Any
	// IngressClass naming it is served, whatever its own name.
	ControllerName = "skiff.sh/ingress"

	// defaultClassAnnotation marks the IngressClass that Ingresses without
	// a class belong to.
	defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
	// legacyClassAnnotation is the class annotation from before
	// spec.ingressClassName existed.
	legacyClassAnnotation = "kubernetes.io/ingress.class"
)

// classes says which Ingresses are served: those naming one of names, and
// those naming no class at all when one of names is the default class.
type classes struct {
	names     map[string]bool
	isDefault bool
}

// classesFor works out the served class names from the IngressClasses:
// className itself, plus every class whose controller is ControllerName.
func classesFor(className string, all []*networkingv1.IngressClass) classes {
	c := classes{names: map[string]bool{className: true}}
	for _, ic := range all {
		if ic.Spec.Controller == ControllerName {
			c.names[ic.Name] = true
		}
	}
	for _, ic := range all {
		if c.names[ic.Name] && ic.Annotations[defaultClassAnnotation] == "true" {
			c.isDefault = true
		}
	}
	return c
}

// serves reports whether ing belongs to one of the served classes.
func (c classes) serves(ing *networkingv1.Ingress) bool {
	if n := ing.Spec.IngressClassName; n != nil && *n != "" {
		return c.names[*n]
	}
	if a, ok := ing.Annotations[legacyClassAnnotation]; ok {
		return c.names[a]
	}
	return c.isDefault
}

// EnsureIngressClass creates the IngressClass "skiff" (controller
// skiff.sh/ingress, marked as the cluster's default class) unless it
// exists. An existing class is left as it is, so an administrator who took
// the default mark away keeps it that way.
func EnsureIngressClass(ctx context.Context, client kubernetes.Interface) error {
	classes := client.NetworkingV1().IngressClasses()
	if _, err := classes.Get(ctx, DefaultClassName, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("ingress: get IngressClass %s: %w", DefaultClassName, err)
	}
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultClassName,
			Annotations: map[string]string{defaultClassAnnotation: "true"},
		},
		Spec: networkingv1.IngressClassSpec{Controller: ControllerName},
	}
	if _, err := classes.Create(ctx, ic, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("ingress: create IngressClass %s: %w", DefaultClassName, err)
	}
	return nil
}
