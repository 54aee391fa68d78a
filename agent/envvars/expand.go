package envvars

import (
	"slices"
	"strings"
)

// Expand applies Kubernetes' $(VAR) expansion to s using env: "$(NAME)"
// becomes env[NAME] when NAME is present (even if its value is empty) and
// stays as written when it is not; "$$" is an escaped "$", so "$$(NAME)"
// yields the literal "$(NAME)". A "$" followed by anything else, an
// unterminated "$(" and a trailing "$" are copied through unchanged. The
// same rules apply to env values, command and args.
func Expand(s string, env map[string]string) string {
	return ExpandFunc(s, func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
}

// ExpandFunc is Expand with the variables looked up through lookup; a
// reference lookup does not know (ok false) is left as written.
func ExpandFunc(s string, lookup func(name string) (value string, ok bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch next := s[i+1]; next {
		case '$':
			// "$$" is one literal dollar.
			b.WriteByte('$')
			i += 2
		case '(':
			closing := strings.IndexByte(s[i+2:], ')')
			if closing < 0 {
				// No closing parenthesis: "$(" is plain text and the
				// scan goes on right after it.
				b.WriteString("$(")
				i += 2
				continue
			}
			name := s[i+2 : i+2+closing]
			end := i + 2 + closing + 1
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i:end])
			}
			i = end
		default:
			b.WriteByte('$')
			b.WriteByte(next)
			i += 2
		}
	}
	return b.String()
}

// ExpandStrict expands s like Expand but reports, sorted and without
// repeats, the referenced names that are missing from env or have an empty
// value (they expand to nothing). This is how subPathExpr is resolved: a
// volume path must not silently keep a "$(VAR)" or lose a component.
func ExpandStrict(s string, env map[string]string) (string, []string) {
	seen := map[string]bool{}
	var missing []string
	out := ExpandFunc(s, func(name string) (string, bool) {
		v := env[name]
		if v == "" && !seen[name] {
			seen[name] = true
			missing = append(missing, name)
		}
		return v, true
	})
	slices.Sort(missing)
	return out, missing
}
