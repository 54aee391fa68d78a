package join

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/pki"
)

// issue signs a request for want with the CA, valid for validity from now.
func issue(t *testing.T, ca *pki.CA, want wantCert, req wantCert, validity time.Duration, now time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	keyPEM, csrPEM, err := newRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	usage := x509.ExtKeyUsageClientAuth
	if want.kind == servingKind {
		usage = x509.ExtKeyUsageServerAuth
	}
	certPEM, err = ca.SignCSR(block.Bytes, []x509.ExtKeyUsage{usage}, validity, now)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

func TestAssessCert(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ca, err := pki.EnsureCA(t.TempDir(), "ca", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := pki.EnsureCA(t.TempDir(), "ca", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	client := wantCert{kind: clientKind, node: "n1"}
	serving := wantCert{kind: servingKind, node: "n1", dnsNames: []string{"n1.example"}, ips: []net.IP{net.ParseIP("10.0.0.7")}}
	year := 365 * 24 * time.Hour

	goodClient, goodClientKey := issue(t, ca, client, client, year, now)
	goodServing, goodServingKey := issue(t, ca, serving, serving, year, now)
	_, strayKey := issue(t, ca, client, client, year, now)
	foreign, foreignKey := issue(t, otherCA, client, client, year, now)
	otherNode := wantCert{kind: clientKind, node: "n2"}
	n2, n2Key := issue(t, ca, client, otherNode, year, now)
	oldIPs := serving
	oldIPs.ips = []net.IP{net.ParseIP("10.0.0.6")}
	moved, movedKey := issue(t, ca, serving, oldIPs, year, now)
	// A serving certificate signed for client use must not serve.
	wrongUsage, wrongUsageKey := issue(t, ca, client, serving, year, now)

	cases := []struct {
		name          string
		cert, key     []byte
		ca            *x509.Certificate
		want          wantCert
		at            time.Time
		usable        bool
		renewContains string
	}{
		{"good client", goodClient, goodClientKey, ca.Cert, client, now, true, ""},
		{"good serving", goodServing, goodServingKey, ca.Cert, serving, now, true, ""},
		{"missing", nil, nil, ca.Cert, client, now, false, "there is none"},
		{"no CA on disk", goodClient, goodClientKey, nil, client, now, false, "no CA"},
		{"key does not match", goodClient, strayKey, ca.Cert, client, now, false, "does not load"},
		{"another cluster's", foreign, foreignKey, ca.Cert, client, now, false, "not valid"},
		{"another node's", n2, n2Key, ca.Cert, client, now, false, `"system:node:n2"`},
		{"client cert used for serving", wrongUsage, wrongUsageKey, ca.Cert, serving, now, false, "not valid"},
		{"expired", goodClient, goodClientKey, ca.Cert, client, now.Add(year + time.Hour), false, "not valid"},
		{"near its end", goodClient, goodClientKey, ca.Cert, client, now.Add(year * 9 / 10), true, "expires at"},
		{"still early", goodClient, goodClientKey, ca.Cert, client, now.Add(year / 2), true, ""},
		{"address changed", moved, movedKey, ca.Cert, serving, now, true, "does not name 10.0.0.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := assessCert(tc.cert, tc.key, tc.ca, tc.want, tc.at)
			if st.usable != tc.usable {
				t.Errorf("usable = %v (%s), want %v", st.usable, st.renew, tc.usable)
			}
			if (tc.renewContains == "") != (st.renew == "") || !strings.Contains(st.renew, tc.renewContains) {
				t.Errorf("renew = %q, want one containing %q", st.renew, tc.renewContains)
			}
		})
	}
}

func TestPlanJoin(t *testing.T) {
	good := certState{usable: true}
	aging := certState{usable: true, renew: "it expires soon"}
	none := certState{renew: "there is none"}
	cases := []struct {
		name            string
		client, serving certState
		haveToken       bool
		want            joinPlan
		wantErr         bool
	}{
		{"all good, no token needed", good, good, false, joinPlan{}, false},
		{"all good, token ignored", good, good, true, joinPlan{}, false},
		{"first join", none, none, true, joinPlan{client: true, serving: true, withToken: true}, false},
		{"first join without token", none, none, false, joinPlan{client: true, serving: true, withToken: true}, true},
		{"serving missing: renew with the client cert", good, none, false, joinPlan{serving: true}, false},
		{"client aging: renew itself", aging, good, false, joinPlan{client: true}, false},
		{"client gone, serving fine: token for the client only", none, good, true, joinPlan{client: true, withToken: true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := planJoin(tc.client, tc.serving, tc.haveToken)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("plan = %+v, want %+v", got, tc.want)
			}
			if got.nothing() != (!tc.want.client && !tc.want.serving) {
				t.Errorf("nothing() = %v", got.nothing())
			}
		})
	}
}

func TestRequestsAreForTheNode(t *testing.T) {
	serving := wantCert{kind: servingKind, node: "n1", dnsNames: []string{"n1.example"}, ips: []net.IP{net.ParseIP("10.0.0.7")}}
	_, csrPEM, err := newRequest(serving)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if req.Subject.CommonName != "system:node:n1" || len(req.Subject.Organization) != 1 || req.Subject.Organization[0] != "system:nodes" ||
		len(req.DNSNames) != 1 || len(req.IPAddresses) != 1 {
		t.Errorf("request subject %v, SANs %v %v", req.Subject, req.DNSNames, req.IPAddresses)
	}
	obj := csrObject(serving, csrPEM)
	if obj.Spec.SignerName != "kubernetes.io/kubelet-serving" || len(obj.Spec.Usages) != 2 || obj.Spec.Usages[1] != "server auth" {
		t.Errorf("CSR spec %+v", obj.Spec)
	}
	client := csrObject(wantCert{kind: clientKind, node: "n1"}, csrPEM)
	if client.Spec.SignerName != "kubernetes.io/kube-apiserver-client-kubelet" || client.Spec.Usages[1] != "client auth" {
		t.Errorf("CSR spec %+v", client.Spec)
	}
}
