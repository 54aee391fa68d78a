package apiserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/apiserver/registry"
	"github.com/skiff-sh/skiff/storage"
)

// Bootstrap tokens, as Kubernetes defines them: a bearer token
// "ID.SECRET" (6 and 16 characters of [a-z0-9]) backed by a Secret
// kube-system/bootstrap-token-ID of type bootstrap.kubernetes.io/token with
// the data keys below. A token authenticates as the user
// system:bootstrap:ID in the group system:bootstrappers (plus any
// system:bootstrappers:* groups in auth-extra-groups) while its secret
// matches, it is marked for authentication, and it has not expired.
const (
	bootstrapSecretPrefix     = "bootstrap-token-"
	bootstrapKeyTokenID       = "token-id"
	bootstrapKeyTokenSecret   = "token-secret"
	bootstrapKeyExpiration    = "expiration"
	bootstrapKeyAuthUsage     = "usage-bootstrap-authentication"
	bootstrapKeyExtraGroups   = "auth-extra-groups"
	bootstrapUserPrefix       = "system:bootstrap:"
	bootstrapExtraGroupPrefix = "system:bootstrappers:"
)

// Well-known groups.
const (
	// GroupBootstrappers holds every user authenticated by a bootstrap token.
	GroupBootstrappers = "system:bootstrappers"
	// GroupAuthenticated holds every authenticated user.
	GroupAuthenticated = "system:authenticated"
)

var (
	bootstrapTokenPattern = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)
	extraGroupPattern     = regexp.MustCompile(`^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$`)
)

// defaultTokenCacheTTL is how long a looked-up token Secret (or its
// absence) is trusted before it is read again.
const defaultTokenCacheTTL = 5 * time.Second

// maxCachedTokens bounds the cache, which unknown token IDs also fill.
const maxCachedTokens = 1024

// BootstrapTokenOptions tune a BootstrapTokenAuthenticator; zero values
// take defaults.
type BootstrapTokenOptions struct {
	// Catalog finds the secrets resource. Default registry.Default().
	Catalog *registry.Catalog
	// CacheTTL is how long a Secret read stays cached. Default 5s.
	CacheTTL time.Duration
	// Now is the clock for expiry and the cache. Default time.Now.
	Now func() time.Time
}

// BootstrapTokenAuthenticator authenticates "Authorization: Bearer
// ID.SECRET" requests against bootstrap token Secrets. It reads them
// through the API server's own object layer, so encrypted Secrets are
// decrypted exactly as the server decrypts them, and keeps each read for a
// few seconds so that a joining node's requests do not each cost a read.
//
// A bearer token that is not in the bootstrap format is not its business
// (ok false, no error); one in the format that does not check out is an
// error, which the server answers with 401.
type BootstrapTokenAuthenticator struct {
	objects *objects
	secrets *registry.Resource
	ttl     time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]cachedToken
}

type cachedToken struct {
	secret  *corev1.Secret // nil: no such Secret
	fetched time.Time
}

// NewBootstrapTokenAuthenticator reads token Secrets from store, the
// store the API server serves, decrypting them with enc (the server's
// Encrypter; nil when Secrets are not encrypted).
func NewBootstrapTokenAuthenticator(store storage.Interface, enc Transformer, opts BootstrapTokenOptions) (*BootstrapTokenAuthenticator, error) {
	if store == nil {
		return nil, errors.New("bootstrap tokens: no store")
	}
	if opts.Catalog == nil {
		opts.Catalog = registry.Default()
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = defaultTokenCacheTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	secrets, ok := opts.Catalog.Lookup(corev1.SchemeGroupVersion.WithResource("secrets"))
	if !ok {
		return nil, errors.New("bootstrap tokens: the catalog has no secrets resource")
	}
	return &BootstrapTokenAuthenticator{
		objects: &objects{kv: store, encrypter: enc},
		secrets: secrets,
		ttl:     opts.CacheTTL,
		now:     opts.Now,
		cache:   map[string]cachedToken{},
	}, nil
}

// Authenticate checks a bootstrap bearer token.
func (a *BootstrapTokenAuthenticator) Authenticate(r *http.Request) (*User, bool, error) {
	token, ok := bearerToken(r)
	if !ok {
		return nil, false, nil
	}
	m := bootstrapTokenPattern.FindStringSubmatch(token)
	if m == nil {
		return nil, false, nil
	}
	id, secret := m[1], m[2]
	sec, err := a.lookup(r.Context(), id)
	if err != nil {
		return nil, false, fmt.Errorf("bootstrap token %s: %w", id, err)
	}
	user, err := checkBootstrapSecret(sec, id, secret, a.now())
	if err != nil {
		return nil, false, fmt.Errorf("bootstrap token %s: %w", id, err)
	}
	return user, true, nil
}

// lookup returns the token's Secret (nil when there is none), from the
// cache when it is fresh.
func (a *BootstrapTokenAuthenticator) lookup(ctx context.Context, id string) (*corev1.Secret, error) {
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[id]
	a.mu.Unlock()
	if ok && now.Sub(c.fetched) < a.ttl {
		return c.secret, nil
	}
	obj, err := a.objects.get(ctx, a.secrets, metav1.NamespaceSystem, bootstrapSecretPrefix+id)
	var sec *corev1.Secret
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, err
	default:
		sec = obj.(*corev1.Secret)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxCachedTokens {
		for k, v := range a.cache {
			if now.Sub(v.fetched) >= a.ttl {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= maxCachedTokens {
			clear(a.cache)
		}
	}
	a.cache[id] = cachedToken{secret: sec, fetched: now}
	return sec, nil
}

// checkBootstrapSecret decides whether the Secret sec vouches for the token
// ID.SECRET at time now, and returns the user it authenticates.
func checkBootstrapSecret(sec *corev1.Secret, id, secret string, now time.Time) (*User, error) {
	switch {
	case sec == nil:
		return nil, errors.New("no such token")
	case sec.Type != corev1.SecretTypeBootstrapToken:
		return nil, fmt.Errorf("the Secret is of type %q, not %q", sec.Type, corev1.SecretTypeBootstrapToken)
	case sec.DeletionTimestamp != nil:
		return nil, errors.New("the token is being deleted")
	case string(sec.Data[bootstrapKeyTokenID]) != id:
		return nil, errors.New("the Secret's token-id does not match its name")
	case subtle.ConstantTimeCompare(sec.Data[bootstrapKeyTokenSecret], []byte(secret)) != 1:
		return nil, errors.New("wrong token secret")
	case string(sec.Data[bootstrapKeyAuthUsage]) != "true":
		return nil, errors.New("the token is not for authentication (usage-bootstrap-authentication is not \"true\")")
	}
	if exp, ok := sec.Data[bootstrapKeyExpiration]; ok {
		at, err := time.Parse(time.RFC3339, string(exp))
		if err != nil {
			return nil, fmt.Errorf("unreadable expiration %q: %w", exp, err)
		}
		if !now.Before(at) {
			return nil, fmt.Errorf("the token expired at %s", at.UTC().Format(time.RFC3339))
		}
	}
	groups := []string{GroupBootstrappers}
	if extra := strings.TrimSpace(string(sec.Data[bootstrapKeyExtraGroups])); extra != "" {
		for _, g := range strings.Split(extra, ",") {
			g = strings.TrimSpace(g)
			if !extraGroupPattern.MatchString(g) {
				return nil, fmt.Errorf("auth-extra-groups holds %q, which is not a %s* group", g, bootstrapExtraGroupPrefix)
			}
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
	}
	groups = append(groups, GroupAuthenticated)
	return &User{Name: bootstrapUserPrefix + id, Groups: groups}, nil
}

// bearerToken reads "Authorization: Bearer TOKEN".
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// ChainAuthenticator tries its authenticators in order; the first that
// recognizes the request decides who the caller is. Errors of the others
// are reported only when none recognizes it. Every user it returns is in
// system:authenticated, as in Kubernetes.
type ChainAuthenticator []Authenticator

// Authenticate runs the chain.
func (c ChainAuthenticator) Authenticate(r *http.Request) (*User, bool, error) {
	var errs []error
	for _, a := range c {
		u, ok, err := a.Authenticate(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			if !slices.Contains(u.Groups, GroupAuthenticated) {
				u = &User{Name: u.Name, Groups: append(slices.Clone(u.Groups), GroupAuthenticated)}
			}
			return u, true, nil
		}
	}
	return nil, false, errors.Join(errs...)
}

// csrResource is what bootstrap users may use.
var csrResource = schema.GroupResource{Group: "certificates.k8s.io", Resource: "certificatesigningrequests"}

// bootstrapAllowed says whether a bootstrap token user may make a request:
// only create, get, list and watch of CertificateSigningRequests (what
// Kubernetes' system:node-bootstrapper role grants), and reads of the
// public and discovery paths every authenticated user may read. The error
// is the 403 to answer otherwise.
func bootstrapAllowed(u *User, r *http.Request) error {
	info, isResource := parseRequest(r)
	if !isResource {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && discoveryOrPublicPath(r.URL.Path) {
			return nil
		}
		verb := strings.ToLower(r.Method)
		return apierrors.NewForbidden(schema.GroupResource{}, "", fmt.Errorf(
			"User %q cannot %s path %q: bootstrap tokens may only request node certificates", u.Name, verb, r.URL.Path))
	}
	gr := schema.GroupResource{Group: info.GV.Group, Resource: info.Resource}
	if gr == csrResource && info.Subresource == "" {
		switch info.Verb {
		case "create", "get", "list", "watch":
			return nil
		}
	}
	what := info.Resource
	if info.Subresource != "" {
		what += "/" + info.Subresource
	}
	where := "at the cluster scope"
	if info.Namespace != "" {
		where = fmt.Sprintf("in the namespace %q", info.Namespace)
	}
	return apierrors.NewForbidden(gr, info.Name, fmt.Errorf(
		"User %q cannot %s resource %q in API group %q %s: bootstrap tokens may only create and read certificatesigningrequests",
		u.Name, info.Verb, what, info.GV.Group, where))
}

// discoveryOrPublicPath lists the non-resource paths a bootstrap user may
// read: discovery, OpenAPI, version, health and the cluster CA.
func discoveryOrPublicPath(p string) bool {
	if publicPath(p) || p == "/cacerts" {
		return true
	}
	switch {
	case p == "/api" || p == "/api/" || p == "/apis" || p == "/apis/":
		return true
	case strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/apis/") || strings.HasPrefix(p, "/openapi/"):
		// Resource paths never get here: parseRequest took them.
		return true
	}
	return false
}

// isBootstrapUser says whether u authenticated with a bootstrap token.
func isBootstrapUser(u *User) bool {
	return u != nil && slices.Contains(u.Groups, GroupBootstrappers)
}
