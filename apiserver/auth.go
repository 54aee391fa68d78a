package apiserver

import (
	"context"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// User is an authenticated caller.
type User struct {
	Name   string
	Groups []string
}

// Authenticator identifies the caller of a request. ok is false when the
// request carries no credentials it understands.
type Authenticator interface {
	Authenticate(r *http.Request) (user *User, ok bool, err error)
}

// ClientCertAuthenticator trusts the client certificate the TLS handshake
// verified against the cluster CA: the user is its common name, the groups
// its organizations, as in Kubernetes.
type ClientCertAuthenticator struct{}

// Authenticate reads the verified client certificate.
func (ClientCertAuthenticator) Authenticate(r *http.Request) (*User, bool, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false, nil
	}
	leaf := r.TLS.VerifiedChains[0][0]
	return &User{Name: leaf.Subject.CommonName, Groups: append([]string(nil), leaf.Subject.Organization...)}, true, nil
}

type userKey struct{}

// UserFrom returns the authenticated user of a request's context.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok
}

// publicPath lists what anyone may read without credentials, as kube's
// system:public-info-viewer role allows.
func publicPath(p string) bool {
	switch p {
	case "/healthz", "/livez", "/readyz", "/version", "/version/", "/cacerts":
		return true
	}
	return strings.HasPrefix(p, "/healthz/") || strings.HasPrefix(p, "/livez/") || strings.HasPrefix(p, "/readyz/")
}

// withAuthentication refuses requests without valid credentials (401),
// except for the public health and version paths.
func (s *Server) withAuthentication(next http.Handler) http.Handler {
	if s.cfg.Authenticator == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, ok, err := s.cfg.Authenticator.Authenticate(r)
		if err != nil || !ok {
			if publicPath(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			writeError(w, output{media: mediaJSON}, apierrors.NewUnauthorized("Unauthorized"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}
