package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/join"
	"github.com/skiff-sh/skiff/test/framework"
)

func TestPrintTokens(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	in := func(d time.Duration) *time.Time { at := now.Add(d); return &at }
	var out bytes.Buffer
	err := printTokens(&out, []join.TokenInfo{
		{ID: "abc123", Description: "the server's"},
		{ID: "def456", Description: "edge", Expires: in(23*time.Hour + 30*time.Minute)},
		{ID: "old999", Expires: in(-time.Hour)},
		{ID: "bad000", Problem: `unreadable expiration "soon"`},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := "ID       TTL         EXPIRES                        DESCRIPTION\n" +
		"abc123   <forever>   <never>                        the server's\n" +
		"def456   23h         2030-01-01T23:30:00Z           edge\n" +
		"old999   <expired>   2029-12-31T23:00:00Z           \n" +
		"bad000   <invalid>   unreadable expiration \"soon\"   \n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// run runs `skiff token ARGS` and returns its output.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := tokenCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SetContext(context.Background())
	err := cmd.Execute()
	return out.String(), err
}

func TestTokenCommand(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	t.Setenv("KUBECONFIG", srv.Kubeconfig)

	out, err := run(t, "create", "--ttl", "2h", "--description", "for the edge")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	tok, err := join.ParseToken(out)
	if err != nil {
		t.Fatalf("create printed %q: %v", out, err)
	}
	if out, err = run(t, "create", "--ttl", "0", "--kubeconfig", srv.Kubeconfig); err != nil {
		t.Fatalf("create forever: %v\n%s", err, out)
	}
	forever, _ := join.ParseToken(out)

	out, err = run(t, "list")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// The two tokens made here, and the server's own join token.
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("list:\n%s", out)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		switch f[0] {
		case tok.ID:
			if (f[1] != "1h" && f[1] != "2h") || !strings.HasSuffix(l, "for the edge") {
				t.Errorf("line %q", l)
			}
		case forever.ID:
			if f[1] != "<forever>" {
				t.Errorf("line %q", l)
			}
		default:
			if !strings.Contains(l, "The server's join token") {
				t.Errorf("unexpected line %q", l)
			}
		}
		if strings.Contains(l, tok.Secret) || strings.Contains(l, forever.Secret) {
			t.Errorf("list shows a secret: %q", l)
		}
	}

	out, err = run(t, "delete", tok.String(), forever.ID)
	if err != nil || strings.Contains(out, tok.Secret) || !strings.Contains(out, "join token "+tok.ID+" deleted") {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if out, err = run(t, "delete", tok.ID); err == nil || !strings.Contains(err.Error(), "there is no token "+tok.ID) {
		t.Errorf("second delete: %v\n%s", err, out)
	}
	if out, err = run(t, "list"); err != nil || strings.Count(strings.TrimSpace(out), "\n") != 1 || strings.Contains(out, tok.ID) || strings.Contains(out, forever.ID) {
		t.Errorf("list after delete: %v\n%q", err, out)
	}
	if _, err = run(t, "create", "--kubeconfig", "/nonexistent/kubeconfig"); err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Errorf("a missing kubeconfig: %v", err)
	}
}
