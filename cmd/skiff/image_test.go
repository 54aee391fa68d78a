package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-sh/skiff/agent/images"
)

// captureStdout runs f and returns what it printed.
func captureStdout(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	runErr := f()
	os.Stdout = old
	w.Close()
	out, _ := io.ReadAll(r)
	return string(out), runErr
}

func TestImageBuildThenImportWithoutAgent(t *testing.T) {
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		t.Skip("needs Debian's busybox-static")
	}
	out := t.TempDir()
	build := imageCommand()
	build.SetArgs([]string{"build", "--out", out})
	if _, err := captureStdout(t, build.Execute); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pause.tar", "busybox.tar"} {
		if _, err := images.ArchiveNames(filepath.Join(out, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	data := t.TempDir()
	imp := imageCommand()
	imp.SetArgs([]string{"import", "--data-dir", data, filepath.Join(out, "busybox.tar")})
	printed, err := captureStdout(t, imp.Execute)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(printed) != images.BusyboxImage {
		t.Errorf("printed %q, want the busybox image name", printed)
	}
	if _, err := os.Stat(filepath.Join(data, "agent", "images", "busybox.tar")); err != nil {
		t.Errorf("archive not copied into the agent's images dir: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "not-an-image.tar")
	os.WriteFile(bad, make([]byte, 1024), 0o644)
	imp = imageCommand()
	imp.SetArgs([]string{"import", "--data-dir", data, bad})
	imp.SilenceErrors, imp.SilenceUsage = true, true
	if _, err := captureStdout(t, imp.Execute); err == nil {
		t.Error("importing a non-image archive succeeded")
	}
	if _, err := os.Stat(filepath.Join(data, "agent", "images", "not-an-image.tar")); err == nil {
		t.Error("a non-image archive was copied")
	}
}
