package pki

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func serialOf(t *testing.T, certPEM []byte) string {
	t.Helper()
	return mustParseCert(t, certPEM).SerialNumber.String()
}

func TestEnsureServingReuseAndReissue(t *testing.T) {
	ca := newTestCA(t)
	dir := filepath.Join(t.TempDir(), "serving")
	names := []string{"localhost", "kubernetes"}
	ips := []net.IP{net.ParseIP("127.0.0.1")}

	first, err := EnsureServing(dir, ca, "apiserver", names, ips, testNow)
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	if first.Leaf == nil {
		t.Fatal("Leaf not set")
	}
	if got := fileMode(t, filepath.Join(dir, "apiserver.key")); got != 0o600 {
		t.Errorf("key mode = %o, want 600", got)
	}
	if want := testNow.Add(LeafValidity); !first.Leaf.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", first.Leaf.NotAfter, want)
	}
	serial := first.Leaf.SerialNumber.String()

	steps := []struct {
		name    string
		names   []string
		ips     []net.IP
		at      time.Time
		reissue bool
	}{
		{"same inputs", names, ips, testNow.Add(time.Hour), false},
		{"subset of names", names[:1], nil, testNow.Add(time.Hour), false},
		{"names reordered", []string{"kubernetes", "localhost"}, ips, testNow.Add(time.Hour), false},
		{"new DNS name", append([]string{"api.example.test"}, names...), ips, testNow.Add(time.Hour), true},
		{"new IP", append([]string{"api.example.test"}, names...), []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.5")}, testNow.Add(time.Hour), true},
		{"inside renewal window", names, ips, testNow.Add(LeafValidity - RenewBefore + 2*time.Hour), true},
	}
	for _, st := range steps {
		got, err := EnsureServing(dir, ca, "apiserver", st.names, st.ips, st.at)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		newSerial := got.Leaf.SerialNumber.String()
		if reissued := newSerial != serial; reissued != st.reissue {
			t.Errorf("%s: reissued = %v, want %v", st.name, reissued, st.reissue)
		}
		for _, n := range st.names {
			if err := got.Leaf.VerifyHostname(n); err != nil {
				t.Errorf("%s: does not cover %s: %v", st.name, n, err)
			}
		}
		for _, ip := range st.ips {
			if err := got.Leaf.VerifyHostname(ip.String()); err != nil {
				t.Errorf("%s: does not cover %s: %v", st.name, ip, err)
			}
		}
		// What is on disk is what was returned.
		onDisk, err := os.ReadFile(filepath.Join(dir, "apiserver.crt"))
		if err != nil {
			t.Fatal(err)
		}
		if serialOf(t, onDisk) != newSerial {
			t.Errorf("%s: file on disk is not the returned certificate", st.name)
		}
		serial = newSerial
	}
}

func TestEnsureServingReplacesForeignOrBrokenFiles(t *testing.T) {
	ca := newTestCA(t)
	names := []string{"localhost"}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"signed by another CA", func(t *testing.T, dir string) {
			if _, err := EnsureServing(dir, newTestCA(t), "srv", names, nil, testNow); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage certificate", func(t *testing.T, dir string) {
			if _, err := EnsureServing(dir, ca, "srv", names, nil, testNow); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "srv.crt"), []byte("junk"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"key missing", func(t *testing.T, dir string) {
			if _, err := EnsureServing(dir, ca, "srv", names, nil, testNow); err != nil {
				t.Fatal(err)
			}
			mustRemove(t, filepath.Join(dir, "srv.key"))
		}},
		{"client certificate in its place", func(t *testing.T, dir string) {
			if _, _, err := EnsureClientCert(dir, "srv", "localhost", nil, ca, testNow); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.damage(t, dir)
			got, err := EnsureServing(dir, ca, "srv", names, nil, testNow)
			if err != nil {
				t.Fatalf("EnsureServing: %v", err)
			}
			if reason := unfitReason(got.Leaf, ca.Cert, testNow, leafWant{usage: x509.ExtKeyUsageServerAuth, dnsNames: names}); reason != "" {
				t.Errorf("returned certificate is unfit: %s", reason)
			}
		})
	}
}

func TestEnsureClientCert(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certPEM, keyPEM, err := EnsureClientCert(dir, "admin", "skiff-admin", []string{"system:masters"}, ca, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(keyPEM) == 0 {
		t.Fatal("no key returned")
	}
	serial := serialOf(t, certPEM)

	steps := []struct {
		name    string
		user    string
		groups  []string
		at      time.Time
		reissue bool
	}{
		{"same", "skiff-admin", []string{"system:masters"}, testNow.Add(time.Hour), false},
		{"extra group", "skiff-admin", []string{"system:masters", "ops"}, testNow.Add(time.Hour), true},
		{"groups reordered", "skiff-admin", []string{"ops", "system:masters"}, testNow.Add(time.Hour), false},
		{"other user", "someone", []string{"ops", "system:masters"}, testNow.Add(time.Hour), true},
		{"group removed", "someone", []string{"ops"}, testNow.Add(time.Hour), true},
		{"near expiry", "someone", []string{"ops"}, testNow.Add(LeafValidity - time.Hour), true},
	}
	for _, st := range steps {
		certPEM, _, err := EnsureClientCert(dir, "admin", st.user, st.groups, ca, st.at)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		cert := mustParseCert(t, certPEM)
		if reissued := cert.SerialNumber.String() != serial; reissued != st.reissue {
			t.Errorf("%s: reissued = %v, want %v", st.name, reissued, st.reissue)
		}
		if cert.Subject.CommonName != st.user || !sameSet(cert.Subject.Organization, st.groups) {
			t.Errorf("%s: subject = %v", st.name, cert.Subject)
		}
		serial = cert.SerialNumber.String()
	}
}

func TestUnfitReason(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	serverPEM, _, err := ca.IssueServer("srv", []string{"a.test", "*.apps.test"}, []net.IP{net.ParseIP("10.0.0.1")}, LeafValidity, testNow)
	if err != nil {
		t.Fatal(err)
	}
	server := mustParseCert(t, serverPEM)
	clientPEM, _, err := ca.IssueClient("alice", []string{"g1", "g2"}, LeafValidity, testNow)
	if err != nil {
		t.Fatal(err)
	}
	client := mustParseCert(t, clientPEM)

	srvWant := func(names []string, ips ...string) leafWant {
		w := leafWant{usage: x509.ExtKeyUsageServerAuth, dnsNames: names}
		for _, ip := range ips {
			w.ips = append(w.ips, net.ParseIP(ip))
		}
		return w
	}
	cliWant := func(user string, groups ...string) leafWant {
		return leafWant{usage: x509.ExtKeyUsageClientAuth, checkSubject: true, user: user, groups: groups}
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		ca   *x509.Certificate
		at   time.Time
		want leafWant
		// wantReason is a substring of the reason; "" means fit.
		wantReason string
	}{
		{"server fit", server, ca.Cert, testNow, srvWant([]string{"a.test"}, "10.0.0.1"), ""},
		{"wildcard covers name", server, ca.Cert, testNow, srvWant([]string{"x.apps.test"}), ""},
		{"missing name", server, ca.Cert, testNow, srvWant([]string{"b.test"}), "DNS name b.test"},
		{"missing ip", server, ca.Cert, testNow, srvWant(nil, "10.0.0.2"), "IP address 10.0.0.2"},
		{"other CA", server, other.Cert, testNow, srvWant(nil), "does not verify"},
		{"wrong usage", server, ca.Cert, testNow, cliWant(""), "does not verify"},
		{"expired", server, ca.Cert, testNow.Add(LeafValidity + time.Hour), srvWant(nil), "does not verify"},
		{"not yet valid", server, ca.Cert, testNow.Add(-time.Hour), srvWant(nil), "does not verify"},
		{"31 days left", server, ca.Cert, testNow.Add(LeafValidity - 31*24*time.Hour), srvWant(nil), ""},
		{"29 days left", server, ca.Cert, testNow.Add(LeafValidity - 29*24*time.Hour), srvWant(nil), "renewal window"},
		{"client fit", client, ca.Cert, testNow, cliWant("alice", "g2", "g1"), ""},
		{"client other user", client, ca.Cert, testNow, cliWant("bob", "g1", "g2"), "common name"},
		{"client fewer groups", client, ca.Cert, testNow, cliWant("alice", "g1"), "organizations"},
		{"client more groups", client, ca.Cert, testNow, cliWant("alice", "g1", "g2", "g3"), "organizations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := unfitReason(tc.cert, tc.ca, tc.at, tc.want)
			if tc.wantReason == "" {
				if got != "" {
					t.Errorf("unfit: %s", got)
				}
				return
			}
			if !strings.Contains(got, tc.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", got, tc.wantReason)
			}
		})
	}
}
