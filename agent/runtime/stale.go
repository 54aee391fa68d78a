package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopStale stops any containerd still running with this Dir's config:
// the one named by the pid file, and any other found in /proc (a previous
// agent that died before it could write or remove its pid file).
func stopStale(p paths, binName string, log *slog.Logger) error {
	pids := map[int]bool{}
	if b, err := os.ReadFile(p.pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			if isOurContainerd(pid, binName, p.config) {
				pids[pid] = true
			}
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("runtime: list processes: %w", err)
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if isOurContainerd(pid, binName, p.config) {
			pids[pid] = true
		}
	}
	for pid := range pids {
		log.Warn("stopping containerd left by an earlier run", "pid", pid)
		if err := terminate(pid, stopTimeout); err != nil {
			return fmt.Errorf("runtime: stop stale containerd %d: %w", pid, err)
		}
	}
	if err := os.Remove(p.pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("runtime: remove stale pid file: %w", err)
	}
	return nil
}

// isOurContainerd reports whether pid is a live containerd started with
// --config configPath.
func isOurContainerd(pid int, binName, configPath string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(raw) == 0 {
		return false
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if filepath.Base(args[0]) != binName {
		return false
	}
	for i := 1; i < len(args); i++ {
		if args[i] == "--config="+configPath || (args[i] == "--config" || args[i] == "-c") && i+1 < len(args) && args[i+1] == configPath {
			return alive(pid)
		}
	}
	return false
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// terminate sends SIGTERM to a process that is not our child, waits up to
// grace for it to go, then kills it.
func terminate(pid int, grace time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	for i := 0; i < 200 && alive(pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		return errors.New("still running after SIGKILL")
	}
	return nil
}
