package ingress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// epoch is the creation time of the test Ingresses; age adds seconds.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type ingOpt func(*networkingv1.Ingress)

// mkIngress makes an Ingress of class skiff created age seconds after
// epoch.
func mkIngress(ns, name string, age int, opts ...ingOpt) *networkingv1.Ingress {
	cls := "skiff"
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         ns,
			Name:              name,
			UID:               types.UID(ns + "-" + name),
			CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(age) * time.Second)),
		},
		Spec: networkingv1.IngressSpec{IngressClassName: &cls},
	}
	for _, o := range opts {
		o(ing)
	}
	return ing
}

func withRule(host string, paths ...networkingv1.HTTPIngressPath) ingOpt {
	return func(ing *networkingv1.Ingress) {
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{
			Host:             host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}},
		})
	}
}

func withClass(name string) ingOpt {
	return func(ing *networkingv1.Ingress) {
		if name == "" {
			ing.Spec.IngressClassName = nil
			return
		}
		ing.Spec.IngressClassName = &name
	}
}

func withAnnotation(k, v string) ingOpt {
	return func(ing *networkingv1.Ingress) {
		if ing.Annotations == nil {
			ing.Annotations = map[string]string{}
		}
		ing.Annotations[k] = v
	}
}

func withCanary(weight string) ingOpt {
	return func(ing *networkingv1.Ingress) {
		withAnnotation("nginx.ingress.kubernetes.io/canary", "true")(ing)
		if weight != "" {
			withAnnotation("nginx.ingress.kubernetes.io/canary-weight", weight)(ing)
		}
	}
}

func withDefault(svc string, port int32) ingOpt {
	return func(ing *networkingv1.Ingress) {
		b := svcBackend(svc, port)
		ing.Spec.DefaultBackend = &b
	}
}

func withTLS(secret string, hosts ...string) ingOpt {
	return func(ing *networkingv1.Ingress) {
		ing.Spec.TLS = append(ing.Spec.TLS, networkingv1.IngressTLS{Hosts: hosts, SecretName: secret})
	}
}

func svcBackend(svc string, port int32) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
		Name: svc, Port: networkingv1.ServiceBackendPort{Number: port},
	}}
}

func mkPath(pt networkingv1.PathType, p, svc string, port int32) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: &pt, Backend: svcBackend(svc, port)}
}

func prefix(p, svc string) networkingv1.HTTPIngressPath {
	return mkPath(networkingv1.PathTypePrefix, p, svc, 80)
}

func exact(p, svc string) networkingv1.HTTPIngressPath {
	return mkPath(networkingv1.PathTypeExact, p, svc, 80)
}

func implSpecific(p, svc string) networkingv1.HTTPIngressPath {
	return mkPath(networkingv1.PathTypeImplementationSpecific, p, svc, 80)
}

// mkService makes a ClusterIP Service with one TCP port 80 named portName.
func mkService(ns, name, portName string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: portName, Port: 80, Protocol: corev1.ProtocolTCP,
		}}},
	}
}

// mkSlice makes an IPv4 EndpointSlice of svc with one port and one
// endpoint per address, ready as given (nil leaves the condition unset).
func mkSlice(ns, svc, name, portName string, port int32, ready *bool, addrs ...string) *discoveryv1.EndpointSlice {
	tcp := corev1.ProtocolTCP
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &tcp}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: ready},
		})
	}
	return s
}

func boolPtr(b bool) *bool { return &b }

// world is an in-memory Snapshot source.
type world struct {
	services map[string]*corev1.Service
	slices   map[string][]*discoveryv1.EndpointSlice
	secrets  map[string]*corev1.Secret
	classes  []*networkingv1.IngressClass
}

func newWorld() *world {
	return &world{
		services: map[string]*corev1.Service{},
		slices:   map[string][]*discoveryv1.EndpointSlice{},
		secrets:  map[string]*corev1.Secret{},
	}
}

// addService adds Service ns/name (port 80, unnamed) with one ready
// endpoint 10.0.0.1:8080.
func (w *world) addService(ns, name string) {
	w.services[ns+"/"+name] = mkService(ns, name, "")
	w.slices[ns+"/"+name] = []*discoveryv1.EndpointSlice{mkSlice(ns, name, name+"-1", "", 8080, nil, "10.0.0.1")}
}

func (w *world) snapshot(ings ...*networkingv1.Ingress) Snapshot {
	return Snapshot{
		ClassName: "skiff",
		Ingresses: ings,
		Classes:   w.classes,
		Service:   func(ns, name string) *corev1.Service { return w.services[ns+"/"+name] },
		EndpointSlices: func(ns, svc string) []*discoveryv1.EndpointSlice {
			return w.slices[ns+"/"+svc]
		},
		Certificate: func(ns, name string) (*tls.Certificate, error) {
			s := w.secrets[ns+"/"+name]
			if s == nil {
				return nil, fmt.Errorf("%s/%s: %w", ns, name, ErrSecretNotFound)
			}
			return certFromSecret(s)
		},
	}
}

// testCert is a self-signed serving certificate for hosts.
type testCert struct {
	certPEM, keyPEM []byte
	leaf            *x509.Certificate
}

func makeCert(t *testing.T, cn string, hosts ...string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              hosts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}),
		leaf:    leaf,
	}
}

func (c testCert) secret(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: c.certPEM, corev1.TLSPrivateKeyKey: c.keyPEM},
	}
}
