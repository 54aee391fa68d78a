package netnstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// statNS identifies the network namespace of a path like /proc/self/ns/net.
func statNS(path string) ([2]uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return [2]uint64{}, err
	}
	return [2]uint64{st.Dev, st.Ino}, nil
}

func nsID(t *testing.T, path string) [2]uint64 {
	t.Helper()
	id, err := statNS(path)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// hostID identifies the namespace the test started in. /proc/self names
// the process's main thread, which may be one that entered a namespace (Go
// parks rather than ends it when its locked goroutine returns), so the
// reference is taken on the calling goroutine's own thread.
func hostID(t *testing.T) [2]uint64 {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return nsID(t, threadNetns)
}

// threadID identifies the namespace th runs in.
func threadID(t *testing.T, th *Thread) [2]uint64 {
	t.Helper()
	var id [2]uint64
	var err error
	th.Do(func() { id, err = statNS(threadNetns) })
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestNamedNamespace(t *testing.T) {
	Require(t, "ip")
	name := fmt.Sprintf("sknt%d", os.Getpid()%100000)
	host := hostID(t)

	t.Run("thread and In run inside it", func(t *testing.T) {
		Create(t, name)
		want := nsID(t, "/run/netns/"+name)
		if want == host {
			t.Fatal("the new namespace is the host's")
		}
		th := Enter(t, name)
		if got := threadID(t, th); got != want {
			t.Errorf("thread in namespace %v, want %v", got, want)
		}
		var inside [2]uint64
		if err := In(name, func() (err error) { inside, err = statNS(threadNetns); return err }); err != nil {
			t.Fatal(err)
		}
		if inside != want {
			t.Errorf("In ran in namespace %v, want %v", inside, want)
		}

		// A socket opened on the thread belongs to the namespace: its
		// loopback listener is reachable from In there, not from the host.
		var l net.Listener
		var err error
		th.Do(func() { l, err = net.Listen("tcp4", "127.0.0.1:0") })
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Close()
			}
		}()
		err = In(name, func() error {
			c, err := net.DialTimeout("tcp4", l.Addr().String(), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err != nil {
			t.Errorf("dialing the listener inside the namespace: %v", err)
		}
		if c, err := net.DialTimeout("tcp4", l.Addr().String(), 200*time.Millisecond); err == nil {
			c.Close()
			t.Error("the namespace's listener answered on the host's loopback")
		}
	})
	if _, err := os.Stat("/run/netns/" + name); !os.IsNotExist(err) {
		t.Errorf("namespace %s left after its test: %v", name, err)
	}
	if _, err := Open(name); err == nil {
		t.Error("Open of a deleted namespace succeeded")
	}
}

func TestUnshare(t *testing.T) {
	Require(t, "ip", "nft")
	ctx := context.Background()
	th, err := Unshare()
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	if threadID(t, th) == hostID(t) {
		t.Fatal("unshared thread is in the host's namespace")
	}
	out, err := th.Output(ctx, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	if links := strings.Split(strings.TrimSpace(string(out)), "\n"); len(links) != 1 || !strings.Contains(links[0], ": lo:") {
		t.Errorf("a new namespace should have only lo, has:\n%s", out)
	}
	if _, err := th.Output(ctx, "ip", "link", "show", "nosuchlink"); err == nil || !strings.Contains(err.Error(), "nosuchlink") {
		t.Errorf("failing command: error %v, want one naming the command and its stderr", err)
	}

	const table = "skiff-netnstest"
	if HostHasTable(t, table) {
		t.Fatalf("the host already has table ip %s", table)
	}
	nft, err := OpenNFT(th, table)
	if err != nil {
		t.Fatal(err)
	}
	var commits int
	nft.Committed = func(_ *knftables.Transaction, at time.Time, took time.Duration) {
		if at.IsZero() || took < 0 {
			t.Errorf("Committed got time %v, duration %v", at, took)
		}
		commits++
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Chain{Name: "c"})
	if err := nft.Run(ctx, tx); err != nil {
		t.Fatal(err)
	}
	bad := nft.NewTransaction()
	bad.Add(&knftables.Rule{Chain: "nosuchchain", Rule: "accept"})
	if err := nft.Run(ctx, bad); err == nil {
		t.Error("a rule in a missing chain was accepted")
	}
	if commits != 1 {
		t.Errorf("Committed called %d times, want 1 (successful runs only)", commits)
	}
	chains, err := nft.List(ctx, "chain")
	if err != nil || len(chains) != 1 || chains[0] != "c" {
		t.Errorf("chains in the namespace: %v, %v", chains, err)
	}
	if HostHasTable(t, table) {
		t.Error("the table went to the host's ruleset")
	}
	if out, err := th.Output(ctx, "nft", "list", "tables"); err != nil || !strings.Contains(string(out), "table ip "+table) {
		t.Errorf("nft list tables in the namespace: %s, %v", out, err)
	}
}
