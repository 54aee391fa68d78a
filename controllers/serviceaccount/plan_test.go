package serviceaccount

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecide(t *testing.T) {
	const pem = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n"
	live := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	now := metav1.Now()
	deleting := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", DeletionTimestamp: &now}}
	terminating := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: DefaultName}}
	good := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: RootCAName, Annotations: map[string]string{descriptionAnnotation: description}},
		Data:       map[string]string{RootCAKey: pem},
	}
	edited := good.DeepCopy()
	edited.Data[RootCAKey] = "tampered"
	extraKey := good.DeepCopy()
	extraKey.Data["other"] = "x"
	noAnnotation := good.DeepCopy()
	noAnnotation.Annotations = nil
	binary := good.DeepCopy()
	binary.BinaryData = map[string][]byte{"b": {1}}

	tests := []struct {
		name                     string
		o                        observed
		ca                       string
		createSA, createCM, upCM bool
		skip                     bool
	}{
		{name: "namespace gone", o: observed{}, ca: pem, skip: true},
		{name: "namespace being deleted", o: observed{Namespace: deleting}, ca: pem, skip: true},
		{name: "namespace terminating", o: observed{Namespace: terminating}, ca: pem, skip: true},
		{name: "empty namespace", o: observed{Namespace: live}, ca: pem, createSA: true, createCM: true},
		{name: "no CA configured", o: observed{Namespace: live}, createSA: true},
		{name: "everything in place", o: observed{Namespace: live, Account: sa, RootCA: good}, ca: pem},
		{name: "account deleted", o: observed{Namespace: live, RootCA: good}, ca: pem, createSA: true},
		{name: "configmap edited", o: observed{Namespace: live, Account: sa, RootCA: edited}, ca: pem, upCM: true},
		{name: "configmap grew a key", o: observed{Namespace: live, Account: sa, RootCA: extraKey}, ca: pem, upCM: true},
		{name: "configmap lost its annotation", o: observed{Namespace: live, Account: sa, RootCA: noAnnotation}, ca: pem, upCM: true},
		{name: "configmap has binary data", o: observed{Namespace: live, Account: sa, RootCA: binary}, ca: pem, upCM: true},
		{name: "CA rotated", o: observed{Namespace: live, Account: sa, RootCA: good}, ca: pem + pem, upCM: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decide(tt.o, []byte(tt.ca))
			if p.skipTerminated != tt.skip {
				t.Errorf("skip = %v, want %v", p.skipTerminated, tt.skip)
			}
			if (p.CreateAccount != nil) != tt.createSA {
				t.Errorf("create account = %v, want %v", p.CreateAccount != nil, tt.createSA)
			}
			if p.CreateAccount != nil && (p.CreateAccount.Name != DefaultName || p.CreateAccount.Namespace != "team") {
				t.Errorf("account %s/%s", p.CreateAccount.Namespace, p.CreateAccount.Name)
			}
			if (p.CreateRootCA != nil) != tt.createCM {
				t.Errorf("create configmap = %v, want %v", p.CreateRootCA != nil, tt.createCM)
			}
			if (p.UpdateRootCA != nil) != tt.upCM {
				t.Errorf("update configmap = %v, want %v", p.UpdateRootCA != nil, tt.upCM)
			}
			for _, cm := range []*corev1.ConfigMap{p.CreateRootCA, p.UpdateRootCA} {
				if cm == nil {
					continue
				}
				if cm.Name != RootCAName || cm.Namespace != "team" || len(cm.Data) != 1 || cm.Data[RootCAKey] != tt.ca || len(cm.BinaryData) != 0 {
					t.Errorf("configmap %s/%s data %v binary %v", cm.Namespace, cm.Name, cm.Data, cm.BinaryData)
				}
				if cm.Annotations[descriptionAnnotation] == "" {
					t.Errorf("configmap without description")
				}
			}
		})
	}
	if edited.Data[RootCAKey] != "tampered" || edited.Annotations[descriptionAnnotation] != description {
		t.Errorf("decide changed the observed ConfigMap: %+v", edited)
	}
	if noAnnotation.Annotations != nil {
		t.Errorf("decide changed the observed ConfigMap's annotations: %v", noAnnotation.Annotations)
	}
}
