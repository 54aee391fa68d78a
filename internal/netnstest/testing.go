package netnstest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Require skips the test unless it runs as root, which network namespaces
// need, and every one of the named binaries ("ip", "nft", ...) is on PATH.
func Require(t testing.TB, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
}

// Run runs a command on the machine (use "ip -n NS" or "ip netns exec NS"
// to reach a namespace) and returns its combined output; it fails the test
// when the command fails.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Create makes the named network namespace with its loopback up. A
// namespace of that name left by a killed run is deleted first. The
// namespace is deleted when the test ends; failing to is a test error.
func Create(t testing.TB, name string) {
	t.Helper()
	_ = exec.Command("ip", "netns", "del", name).Run() // left by a killed run
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", name, err, out)
		}
	})
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// Enter starts a Thread inside the named namespace, ended when the test
// ends (before the namespace, when Create came first); it fails the test
// when the thread cannot enter.
func Enter(t testing.TB, name string) *Thread {
	t.Helper()
	th, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(th.Close)
	return th
}
