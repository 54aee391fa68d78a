package images

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPauseELFHeaders(t *testing.T) {
	if goruntime.GOARCH != "amd64" {
		if _, err := pauseELF(); err == nil {
			t.Fatalf("pauseELF on %s: want an error", goruntime.GOARCH)
		}
		return
	}
	bin, err := pauseELF()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("debug/elf cannot read the pause binary: %v", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC || f.Class != elf.ELFCLASS64 {
		t.Errorf("machine/type/class = %v/%v/%v", f.Machine, f.Type, f.Class)
	}
	if f.Entry != pauseBase+codeOff {
		t.Errorf("entry = %#x, want %#x", f.Entry, pauseBase+codeOff)
	}
	if len(f.Progs) != 2 || f.Progs[0].Type != elf.PT_LOAD || f.Progs[0].Filesz != uint64(len(bin)) || f.Progs[1].Type != elf.PT_GNU_STACK {
		t.Errorf("program headers = %+v", f.Progs)
	}
	if len(bin) > 400 {
		t.Errorf("pause binary is %d bytes; expected a tiny program", len(bin))
	}
}

// TestPauseRuns runs the program as PID 1 of a new PID namespace, gives it
// an orphan to adopt, and checks that it reaps the orphan and exits 0 on
// SIGTERM and SIGINT.
func TestPauseRuns(t *testing.T) {
	if goruntime.GOARCH != "amd64" {
		t.Skip("the pause program is x86-64 only")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	bin, err := pauseELF()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(path)
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer cmd.Process.Kill()
			pid := cmd.Process.Pid

			select {
			case err := <-exited:
				t.Fatalf("pause exited early: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			if sig == syscall.SIGTERM {
				checkReaps(t, pid)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("pause after %v: %v, want exit 0", sig, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("pause did not exit on %v", sig)
			}
		})
	}
}

// checkReaps makes a process in pause's PID namespace that forks a short
// sleep and exits at once, so the sleep is re-parented to pause; once the
// sleep ends, pause must have reaped it (no zombie child left).
func checkReaps(t *testing.T, pausePid int) {
	t.Helper()
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(pausePid), "-p", "--",
		"/usr/bin/busybox", "sh", "-c", "sleep 0.5 </dev/null >/dev/null 2>&1 & exit 0").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	kids := childrenOf(t, pausePid)
	if len(kids) != 1 {
		t.Fatalf("pause has children %v, want the adopted sleep", kids)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		kids = childrenOf(t, pausePid)
		if len(kids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pause did not reap its adopted child: children %v", kids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childrenOf lists pid's children as "pid:state", zombies included.
func childrenOf(t *testing.T, pid int) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, fmt.Sprintf("%s:%s", e.Name(), fields[0]))
		}
	}
	return kids
}
