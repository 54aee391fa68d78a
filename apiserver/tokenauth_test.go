package apiserver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func bootstrapSecret(mut func(s *corev1.Secret)) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-abc123", Namespace: "kube-system"},
		Type:       corev1.SecretTypeBootstrapToken,
		Data: map[string][]byte{
			"token-id":                       []byte("abc123"),
			"token-secret":                   []byte("0123456789abcdef"),
			"usage-bootstrap-authentication": []byte("true"),
			"expiration":                     []byte("2030-01-02T03:04:05Z"),
		},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

func TestCheckBootstrapSecret(t *testing.T) {
	now := time.Date(2029, 6, 1, 0, 0, 0, 0, time.UTC)
	deleting := metav1.NewTime(now)
	cases := []struct {
		name    string
		secret  *corev1.Secret
		token   string // secret part
		at      time.Time
		wantErr string
		groups  []string
	}{
		{name: "valid", secret: bootstrapSecret(nil), groups: []string{"system:bootstrappers", "system:authenticated"}},
		{name: "no expiration", secret: bootstrapSecret(func(s *corev1.Secret) { delete(s.Data, "expiration") }),
			groups: []string{"system:bootstrappers", "system:authenticated"}},
		{name: "extra groups", secret: bootstrapSecret(func(s *corev1.Secret) {
			s.Data["auth-extra-groups"] = []byte("system:bootstrappers:skiff:agents, system:bootstrappers:edge")
		}), groups: []string{"system:bootstrappers", "system:bootstrappers:skiff:agents", "system:bootstrappers:edge", "system:authenticated"}},
		{name: "foreign extra group", secret: bootstrapSecret(func(s *corev1.Secret) { s.Data["auth-extra-groups"] = []byte("system:masters") }),
			wantErr: "auth-extra-groups"},
		{name: "missing", secret: nil, wantErr: "no such token"},
		{name: "wrong type", secret: bootstrapSecret(func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }), wantErr: "of type"},
		{name: "being deleted", secret: bootstrapSecret(func(s *corev1.Secret) { s.DeletionTimestamp = &deleting }), wantErr: "being deleted"},
		{name: "id mismatch", secret: bootstrapSecret(func(s *corev1.Secret) { s.Data["token-id"] = []byte("zzz999") }), wantErr: "token-id"},
		{name: "wrong secret", secret: bootstrapSecret(nil), token: "fedcba9876543210", wantErr: "wrong token secret"},
		{name: "not for authentication", secret: bootstrapSecret(func(s *corev1.Secret) { delete(s.Data, "usage-bootstrap-authentication") }),
			wantErr: "not for authentication"},
		{name: "expired", secret: bootstrapSecret(nil), at: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), wantErr: "expired at 2030-01-02T03:04:05Z"},
		{name: "bad expiration", secret: bootstrapSecret(func(s *corev1.Secret) { s.Data["expiration"] = []byte("tomorrow") }), wantErr: "unreadable expiration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token, at := tc.token, tc.at
			if token == "" {
				token = "0123456789abcdef"
			}
			if at.IsZero() {
				at = now
			}
			u, err := checkBootstrapSecret(tc.secret, "abc123", token, at)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.Name != "system:bootstrap:abc123" || !reflect.DeepEqual(u.Groups, tc.groups) {
				t.Errorf("user = %+v, want system:bootstrap:abc123 in %v", u, tc.groups)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	for header, want := range map[string]string{
		"Bearer abc123.0123456789abcdef": "abc123.0123456789abcdef",
		"bearer  tok ":                   "tok",
		"Basic dXNlcjpwYXNz":             "",
		"Bearer":                         "",
		"":                               "",
	} {
		r := httptest.NewRequest("GET", "/api/v1/nodes", nil)
		r.Header.Set("Authorization", header)
		got, ok := bearerToken(r)
		if got != want || ok != (want != "") {
			t.Errorf("bearerToken(%q) = %q, %v; want %q", header, got, ok, want)
		}
	}
}

type fixedAuth struct {
	user *User
	err  error
}

func (f fixedAuth) Authenticate(*http.Request) (*User, bool, error) {
	return f.user, f.user != nil, f.err
}

func TestChainAuthenticator(t *testing.T) {
	r := httptest.NewRequest("GET", "/api/v1/nodes", nil)
	alice := &User{Name: "alice", Groups: []string{"devs"}}
	bob := &User{Name: "bob", Groups: []string{"system:authenticated"}}
	cases := []struct {
		name    string
		chain   ChainAuthenticator
		want    *User
		wantErr bool
	}{
		{"first wins", ChainAuthenticator{fixedAuth{user: alice}, fixedAuth{user: bob}}, &User{Name: "alice", Groups: []string{"devs", "system:authenticated"}}, false},
		{"error then success", ChainAuthenticator{fixedAuth{err: errors.New("bad token")}, fixedAuth{user: bob}}, bob, false},
		{"nobody", ChainAuthenticator{fixedAuth{}, fixedAuth{}}, nil, false},
		{"only errors", ChainAuthenticator{fixedAuth{}, fixedAuth{err: errors.New("bad token")}}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, ok, err := tc.chain.Authenticate(r)
			if (err != nil) != tc.wantErr || ok != (tc.want != nil) || !reflect.DeepEqual(u, tc.want) {
				t.Errorf("got %+v, %v, %v; want %+v (error %v)", u, ok, err, tc.want, tc.wantErr)
			}
		})
	}
	if len(alice.Groups) != 1 {
		t.Errorf("the chain changed the authenticator's user: %v", alice.Groups)
	}
}

func TestBootstrapAllowed(t *testing.T) {
	u := &User{Name: "system:bootstrap:abc123", Groups: []string{GroupBootstrappers, GroupAuthenticated}}
	cases := []struct {
		method, path string
		allowed      bool
		msg          string
	}{
		{"POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", true, ""},
		{"GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests/node-csr-x", true, ""},
		{"GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests", true, ""},
		{"GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests?watch=true", true, ""},
		{"GET", "/apis/certificates.k8s.io/v1", true, ""},
		{"GET", "/api", true, ""},
		{"GET", "/version", true, ""},
		{"GET", "/cacerts", true, ""},
		{"GET", "/openapi/v3", true, ""},
		{"DELETE", "/apis/certificates.k8s.io/v1/certificatesigningrequests/node-csr-x", false, `cannot delete resource "certificatesigningrequests"`},
		{"PUT", "/apis/certificates.k8s.io/v1/certificatesigningrequests/node-csr-x/approval", false, `cannot update resource "certificatesigningrequests/approval" in API group "certificates.k8s.io" at the cluster scope`},
		{"PUT", "/apis/certificates.k8s.io/v1/certificatesigningrequests/node-csr-x/status", false, "certificatesigningrequests/status"},
		{"GET", "/api/v1/namespaces/kube-system/secrets", false, `User "system:bootstrap:abc123" cannot list resource "secrets" in API group "" in the namespace "kube-system"`},
		{"GET", "/api/v1/nodes", false, "cannot list resource \"nodes\""},
		{"GET", "/metrics", false, `cannot get path "/metrics"`},
		{"POST", "/api", false, "cannot post path"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		err := bootstrapAllowed(u, r)
		if tc.allowed {
			if err != nil {
				t.Errorf("%s %s: refused: %v", tc.method, tc.path, err)
			}
			continue
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s %s: got %v, want a 403 mentioning %q", tc.method, tc.path, err, tc.msg)
		}
	}
}

func TestApprovalConditions(t *testing.T) {
	earlier := metav1.NewTime(time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(time.Date(2029, 2, 1, 0, 0, 0, 0, time.UTC))
	stored := []certificatesv1.CertificateSigningRequestCondition{
		{Type: "Approved", Status: corev1.ConditionTrue, LastTransitionTime: earlier, LastUpdateTime: earlier},
	}
	sent := []certificatesv1.CertificateSigningRequestCondition{
		{Type: "Approved", Status: corev1.ConditionTrue, Reason: "Again"},
		{Type: "Reviewed", Reason: "ByHand"},
	}
	got := approvalConditions(sent, stored, now)
	want := []certificatesv1.CertificateSigningRequestCondition{
		{Type: "Approved", Status: corev1.ConditionTrue, Reason: "Again", LastTransitionTime: earlier, LastUpdateTime: now},
		{Type: "Reviewed", Status: corev1.ConditionTrue, Reason: "ByHand", LastTransitionTime: now, LastUpdateTime: now},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
