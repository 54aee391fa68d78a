package images

import (
	"archive/tar"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/agent/runtime"
)

// startContainerd runs a containerd for the test in a temp dir.
func startContainerd(t *testing.T) *runtime.Runtime {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	for _, bin := range []string{"containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	requireBusybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := runtime.Start(ctx, runtime.Config{Dir: filepath.Join(t.TempDir(), "containerd"), NodeName: "images-test", SandboxImage: PauseImage,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop() })
	return r
}

// countCtr replaces ctr with a wrapper that logs each subcommand, and
// returns a function that counts the logged imports.
func countCtr(t *testing.T) func() int {
	t.Helper()
	real, err := exec.LookPath("ctr")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	logf := filepath.Join(dir, "calls")
	wrapper := filepath.Join(dir, "ctr")
	script := "#!/bin/sh\necho \"$*\" >> " + logf + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := ctrPath
	ctrPath = wrapper
	t.Cleanup(func() { ctrPath = old })
	return func() int {
		b, _ := os.ReadFile(logf)
		return strings.Count(string(b), "images import")
	}
}

func TestImportDirSkipsUnchangedArchives(t *testing.T) {
	r := startContainerd(t)
	imports := countCtr(t)
	ctx := context.Background()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "busybox.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteBusybox(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	junk, _ := os.Create(filepath.Join(dir, "junk.tar"))
	tw := tar.NewWriter(junk)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644})
	tw.Close()
	junk.Close()

	names, err := ImportDir(ctx, r.Socket(), dir)
	if strings.Join(names, ",") != BusyboxImage {
		t.Errorf("names = %v", names)
	}
	if err == nil || !strings.Contains(err.Error(), "junk.tar") {
		t.Errorf("err = %v, want one about junk.tar", err)
	}
	if n := imports(); n != 2 {
		t.Errorf("%d imports, want 2", n)
	}
	// Unchanged: only the bad archive is tried again.
	names, _ = ImportDir(ctx, r.Socket(), dir)
	if strings.Join(names, ",") != BusyboxImage || imports() != 3 {
		t.Errorf("second ImportDir: names %v, %d imports in all, want busybox and 3", names, imports())
	}
	// A changed archive is imported again.
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(dir, "busybox.tar"), later, later)
	ImportDir(ctx, r.Socket(), dir)
	if n := imports(); n != 5 {
		t.Errorf("after touching busybox.tar: %d imports in all, want 5", n)
	}
	if names, err := ImportDir(ctx, r.Socket(), filepath.Join(dir, "missing")); err != nil || len(names) != 0 {
		t.Errorf("ImportDir of a missing dir = %v, %v", names, err)
	}
}

func TestEnsureBuiltins(t *testing.T) {
	r := startContainerd(t)
	imports := countCtr(t)
	ctx := context.Background()
	cache := t.TempDir()
	// The static busybox stands in for a compiled skiff-demo.
	demo := filepath.Join(t.TempDir(), "skiff-demo")
	raw, err := os.ReadFile(busyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(demo, raw, 0o755)
	opt := BuiltinOptions{CacheDir: cache, DemoBinary: demo, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}

	began := time.Now()
	names, err := EnsureBuiltins(ctx, r.Socket(), r.Images(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cold: %v", time.Since(began))
	want := []string{PauseImage, BusyboxImage, DemoImage, DemoImageLatest}
	for _, w := range want {
		if !strings.Contains(strings.Join(names, " "), w) {
			t.Errorf("names %v lack %s", names, w)
		}
	}
	cold := imports()
	if cold < 3 {
		t.Fatalf("%d imports on a cold start", cold)
	}
	began = time.Now()
	if _, err := EnsureBuiltins(ctx, r.Socket(), r.Images(), opt); err != nil {
		t.Fatal(err)
	}
	t.Logf("warm: %v", time.Since(began))
	if imports() != cold {
		t.Errorf("warm EnsureBuiltins imported again")
	}
	// A new demo binary is rebuilt and imported; nothing else is.
	demoTar, _ := os.Stat(filepath.Join(cache, "demo.tar"))
	os.WriteFile(demo, append(raw, 0), 0o755)
	if _, err := EnsureBuiltins(ctx, r.Socket(), r.Images(), opt); err != nil {
		t.Fatal(err)
	}
	if imports() != cold+1 {
		t.Errorf("after changing the demo binary: %d imports, want %d", imports(), cold+1)
	}
	if again, _ := os.Stat(filepath.Join(cache, "demo.tar")); again.ModTime().Equal(demoTar.ModTime()) && again.Size() == demoTar.Size() {
		t.Error("demo.tar was not rebuilt")
	}
	// Without busybox on the host, busybox and nginx are skipped, pause
	// is still there.
	old := busyboxPath
	busyboxPath = "/nonexistent/busybox"
	defer func() { busyboxPath = old }()
	names, err = EnsureBuiltins(ctx, r.Socket(), r.Images(), BuiltinOptions{CacheDir: t.TempDir(), Log: opt.Log})
	if err != nil || strings.Join(names, ",") != PauseImage {
		t.Errorf("without busybox: %v, %v; want only the pause image", names, err)
	}
}
