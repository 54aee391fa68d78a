package envvars

import (
	"slices"
	"testing"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "alpha", "B": "beta", "EMPTY": "", "PROTOCOL": "https", "SERVICE_IP": "172.17.0.1", "SERVICE_PORT": "80"}
	cases := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"$(A)", "alpha"},
		{"x$(A)y$(B)z", "xalphaybetaz"},
		{"$(EMPTY)|", "|"},
		{"$(MISSING)", "$(MISSING)"},
		{"$(A)$(MISSING)$(B)", "alpha$(MISSING)beta"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$alpha"},
		{"$$$$(A)", "$$(A)"},
		{"$$", "$"},
		{"$", "$"},
		{"a$", "a$"},
		{"$A", "$A"},
		{"${A}", "${A}"},
		{"$(A", "$(A"},
		{"$(A$(B)", "$(A$(B)"},
		{"$()", "$()"},
		{"$(A)$", "alpha$"},
		{"100$%", "100$%"},
		{"héllo $(A) wörld", "héllo alpha wörld"},
		{"$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)", "https://172.17.0.1:80"},
		{"$$(PROTOCOL)://$(SERVICE_IP):$(SERVICE_PORT)", "$(PROTOCOL)://172.17.0.1:80"},
	}
	for _, c := range cases {
		if got := Expand(c.in, env); got != c.want {
			t.Errorf("Expand(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestExpandStrict(t *testing.T) {
	env := map[string]string{"POD": "p1", "EMPTY": ""}
	cases := []struct {
		in, want string
		missing  []string
	}{
		{"logs/$(POD)", "logs/p1", nil},
		{"$(POD)/$(NOPE)/$(EMPTY)/$(NOPE)", "p1///", []string{"EMPTY", "NOPE"}},
		{"$$(POD)", "$(POD)", nil},
		{"plain", "plain", nil},
	}
	for _, c := range cases {
		got, missing := ExpandStrict(c.in, env)
		if got != c.want || !slices.Equal(missing, c.missing) {
			t.Errorf("ExpandStrict(%q) = %q, %v; want %q, %v", c.in, got, missing, c.want, c.missing)
		}
	}
}
