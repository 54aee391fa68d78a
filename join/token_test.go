package join

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const testHash = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseToken(t *testing.T) {
	good := "SKIFF1::" + testHash + "::abc123.0123456789abcdef"
	cases := []struct {
		name, in string
		want     Token
		wantErr  string
	}{
		{name: "valid", in: good, want: Token{CAHash: testHash, ID: "abc123", Secret: "0123456789abcdef"}},
		{name: "surrounding space", in: "  " + good + "\n", want: Token{CAHash: testHash, ID: "abc123", Secret: "0123456789abcdef"}},
		{name: "empty", in: "", wantErr: `not a Skiff join token: it does not start with "SKIFF1::"`},
		{name: "k3s style", in: "K10" + testHash[7:] + "::server:secret", wantErr: "does not start with"},
		{name: "bare bootstrap token", in: "abc123.0123456789abcdef", wantErr: "bare bootstrap token without the CA hash"},
		{name: "no credential", in: "SKIFF1::" + testHash, wantErr: "want SKIFF1::<CA hash>::<id>.<secret>"},
		{name: "extra part", in: good + "::x", wantErr: "want SKIFF1::"},
		{name: "short hash", in: "SKIFF1::sha256:abcd::abc123.0123456789abcdef", wantErr: "the CA hash \"sha256:abcd\" is not"},
		{name: "upper-case hash", in: "SKIFF1::" + strings.ToUpper(testHash) + "::abc123.0123456789abcdef", wantErr: "is not sha256:"},
		{name: "other digest", in: "SKIFF1::md5:0123::abc123.0123456789abcdef", wantErr: "is not sha256:"},
		{name: "short secret", in: "SKIFF1::" + testHash + "::abc123.0123", wantErr: "must be <id>.<secret>"},
		{name: "upper-case id", in: "SKIFF1::" + testHash + "::ABC123.0123456789abcdef", wantErr: "must be <id>.<secret>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseToken(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "not a Skiff join token: ") {
					t.Fatalf("err = %v, want a \"not a Skiff join token\" error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "0123456789abcdef") && !strings.Contains(tc.in, "sha256:abcd") {
					t.Errorf("the error repeats the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.String() != strings.TrimSpace(tc.in) || got.Bearer() != "abc123.0123456789abcdef" {
				t.Errorf("round trip: %q, bearer %q", got.String(), got.Bearer())
			}
		})
	}
}

func TestNewTokenDrawsFromTheAlphabet(t *testing.T) {
	// A reader of all 0xff bytes makes rand.Int reject and retry until EOF;
	// a varied reader must give tokens that parse.
	src := bytes.NewReader(bytes.Repeat([]byte{7, 200, 13, 99, 250, 1, 42, 180}, 64))
	tok, err := newToken(src, testHash)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseToken(tok.String()); err != nil {
		t.Fatalf("generated token does not parse: %v", err)
	}
	if _, err := newToken(bytes.NewReader(nil), testHash); err == nil {
		t.Error("an empty entropy source gave a token")
	}
}

func TestTokenSecretRoundTrip(t *testing.T) {
	tok := Token{CAHash: testHash, ID: "abc123", Secret: "0123456789abcdef"}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := tokenSecret(tok, &exp, "for edge nodes")
	if s.Name != "bootstrap-token-abc123" || s.Namespace != "kube-system" || s.Type != corev1.SecretTypeBootstrapToken {
		t.Fatalf("secret %s/%s of type %s", s.Namespace, s.Name, s.Type)
	}
	if got := string(s.Data["expiration"]); got != "2030-01-02T03:04:05Z" {
		t.Errorf("expiration %q", got)
	}
	info, ok := tokenInfo(s)
	if !ok || info.ID != "abc123" || info.Description != "for edge nodes" || !info.Expires.Equal(exp) ||
		len(info.Usages) != 1 || info.Usages[0] != "authentication" {
		t.Errorf("info %+v", info)
	}
	before, after := exp.Add(-time.Second), exp
	if !vouchesFor(s, tok, before) || vouchesFor(s, tok, after) {
		t.Error("expiry is not honoured")
	}
	other := tok
	other.Secret = "fedcba9876543210"
	if vouchesFor(s, other, before) {
		t.Error("a wrong secret is vouched for")
	}
	forever := tokenSecret(tok, nil, "")
	if _, has := forever.Data["expiration"]; has || !vouchesFor(forever, tok, exp.AddDate(100, 0, 0)) {
		t.Error("a token without expiration expires")
	}
	if _, ok := tokenInfo(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-abc123"}, Type: corev1.SecretTypeOpaque}); ok {
		t.Error("an Opaque Secret read as a token")
	}
}

func TestTokenID(t *testing.T) {
	for in, want := range map[string]string{
		"abc123":                  "abc123",
		"abc123.0123456789abcdef": "abc123",
		"SKIFF1::" + testHash + "::abc123.0123456789abcdef": "abc123",
		"ABC123":  "",
		"abc1234": "",
		"":        "",
	} {
		got, err := tokenID(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("tokenID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
