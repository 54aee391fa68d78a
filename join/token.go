package join

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tokenPrefix opens every join token; its number is the format's version.
const tokenPrefix = "SKIFF1::"

// Bootstrap token Secrets, as Kubernetes defines them.
const (
	secretPrefix    = "bootstrap-token-"
	keyTokenID      = "token-id"
	keyTokenSecret  = "token-secret"
	keyExpiration   = "expiration"
	keyDescription  = "description"
	keyAuthUsage    = "usage-bootstrap-authentication"
	keyExtraGroups  = "auth-extra-groups"
	usagePrefix     = "usage-bootstrap-"
	tokenAlphabet   = "abcdefghijklmnopqrstuvwxyz0123456789"
	tokenIDLength   = 6
	tokenSecretSize = 16
)

var (
	credentialPattern = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)
	idPattern         = regexp.MustCompile(`^[a-z0-9]{6}$`)
	hashPattern       = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// Token is a parsed join token.
type Token struct {
	// CAHash pins the cluster CA: "sha256:" and 64 lowercase hex digits.
	CAHash string
	// ID is the token's public part, 6 characters of [a-z0-9].
	ID string
	// Secret is the private part, 16 characters of [a-z0-9].
	Secret string
}

// String is the token as users pass it around.
func (t Token) String() string {
	return tokenPrefix + t.CAHash + "::" + t.ID + "." + t.Secret
}

// Bearer is the bootstrap token the API server authenticates: "ID.SECRET".
func (t Token) Bearer() string { return t.ID + "." + t.Secret }

// ParseToken reads a join token. Its errors say what is wrong without
// repeating the secret.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		if credentialPattern.MatchString(s) {
			return Token{}, errors.New("not a Skiff join token: it is a bare bootstrap token without the CA hash; use the whole token `skiff token create` prints")
		}
		return Token{}, fmt.Errorf("not a Skiff join token: it does not start with %q", tokenPrefix)
	}
	hash, cred, ok := strings.Cut(rest, "::")
	if !ok || strings.Contains(cred, "::") {
		return Token{}, fmt.Errorf("not a Skiff join token: want %s<CA hash>::<id>.<secret>", tokenPrefix)
	}
	if !hashPattern.MatchString(hash) {
		return Token{}, fmt.Errorf("not a Skiff join token: the CA hash %q is not sha256: and 64 lowercase hex digits", hash)
	}
	m := credentialPattern.FindStringSubmatch(cred)
	if m == nil {
		return Token{}, errors.New("not a Skiff join token: the part after the CA hash must be <id>.<secret>, 6 and 16 characters of [a-z0-9]")
	}
	return Token{CAHash: hash, ID: m[1], Secret: m[2]}, nil
}

// newToken draws a fresh ID and secret from rnd.
func newToken(rnd io.Reader, caHash string) (Token, error) {
	id, err := randomString(rnd, tokenIDLength)
	if err != nil {
		return Token{}, err
	}
	secret, err := randomString(rnd, tokenSecretSize)
	if err != nil {
		return Token{}, err
	}
	return Token{CAHash: caHash, ID: id, Secret: secret}, nil
}

// randomString draws n characters of tokenAlphabet uniformly.
func randomString(rnd io.Reader, n int) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	max := big.NewInt(int64(len(tokenAlphabet)))
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rnd, max)
		if err != nil {
			return "", fmt.Errorf("random token: %w", err)
		}
		b[i] = tokenAlphabet[k.Int64()]
	}
	return string(b), nil
}

// tokenSecret is the bootstrap token Secret of t. expires nil: the token
// never expires.
func tokenSecret(t Token, expires *time.Time, description string) *corev1.Secret {
	data := map[string][]byte{
		keyTokenID:     []byte(t.ID),
		keyTokenSecret: []byte(t.Secret),
		keyAuthUsage:   []byte("true"),
	}
	if description != "" {
		data[keyDescription] = []byte(description)
	}
	if expires != nil {
		data[keyExpiration] = []byte(expires.UTC().Format(time.RFC3339))
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretPrefix + t.ID, Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretTypeBootstrapToken,
		Data:       data,
	}
}

// TokenInfo describes a bootstrap token without its secret.
type TokenInfo struct {
	ID          string
	Description string
	// Expires is when the token stops working; nil: never.
	Expires *time.Time
	// Usages are the usage-bootstrap-* keys set to "true", without the
	// prefix ("authentication", "signing").
	Usages []string
	// ExtraGroups are the auth-extra-groups.
	ExtraGroups []string
	// Problem is set when the Secret is malformed (a bad expiration).
	Problem string
}

// Expired says whether the token no longer works at now.
func (i TokenInfo) Expired(now time.Time) bool {
	return i.Expires != nil && !now.Before(*i.Expires)
}

// tokenInfo reads a bootstrap token Secret; ok is false for Secrets that
// are not bootstrap tokens.
func tokenInfo(s *corev1.Secret) (TokenInfo, bool) {
	id, ok := strings.CutPrefix(s.Name, secretPrefix)
	if !ok || s.Type != corev1.SecretTypeBootstrapToken || !idPattern.MatchString(id) {
		return TokenInfo{}, false
	}
	info := TokenInfo{ID: id, Description: string(s.Data[keyDescription])}
	if exp, ok := s.Data[keyExpiration]; ok {
		at, err := time.Parse(time.RFC3339, string(exp))
		if err != nil {
			info.Problem = fmt.Sprintf("unreadable expiration %q", exp)
		} else {
			info.Expires = &at
		}
	}
	for k, v := range s.Data {
		if u, ok := strings.CutPrefix(k, usagePrefix); ok && string(v) == "true" {
			info.Usages = append(info.Usages, u)
		}
	}
	sort.Strings(info.Usages)
	if g := strings.TrimSpace(string(s.Data[keyExtraGroups])); g != "" {
		for _, x := range strings.Split(g, ",") {
			info.ExtraGroups = append(info.ExtraGroups, strings.TrimSpace(x))
		}
	}
	return info, true
}

// vouchesFor says whether the Secret s authenticates t at now, as the API
// server checks it.
func vouchesFor(s *corev1.Secret, t Token, now time.Time) bool {
	info, ok := tokenInfo(s)
	return ok && info.ID == t.ID && s.DeletionTimestamp == nil &&
		string(s.Data[keyTokenID]) == t.ID && string(s.Data[keyTokenSecret]) == t.Secret &&
		string(s.Data[keyAuthUsage]) == "true" && info.Problem == "" && !info.Expired(now)
}

// tokenID accepts what a user may name a token by: its ID, "ID.SECRET",
// or a whole join token.
func tokenID(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case idPattern.MatchString(s):
		return s, nil
	case credentialPattern.MatchString(s):
		return s[:tokenIDLength], nil
	case strings.HasPrefix(s, tokenPrefix):
		t, err := ParseToken(s)
		if err != nil {
			return "", err
		}
		return t.ID, nil
	}
	return "", errors.New("not a token ID: want 6 characters of [a-z0-9], or the whole token")
}
