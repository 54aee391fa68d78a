package stats

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseProcStatCPU(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want uint64
		fail bool
	}{
		{"busy fields only", "cpu  100 2 30 900 50 4 5 6 7 8\ncpu0 1 1 1 1 1 1 1 1 1 1\n", (100 + 2 + 30 + 4 + 5 + 6) * 10_000_000, false},
		{"old kernel, four fields after idle", "cpu  10 0 10 500 1\n", 20 * 10_000_000, false},
		{"later line", "intr 5\ncpu  1 0 0 0 0 0 0 0\n", 10_000_000, false},
		{"no cpu line", "cpu0 1 2 3 4 5\n", 0, true},
		{"short", "cpu 1 2 3\n", 0, true},
		{"garbage", "cpu a b c d e f\n", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseProcStatCPU([]byte(c.in))
			if (err != nil) != c.fail {
				t.Fatalf("err = %v, want failure %v", err, c.fail)
			}
			if got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
		})
	}
}

func TestCgroupWorkingSet(t *testing.T) {
	cases := []struct {
		name, usage, stat string
		want              uint64
		fail              bool
	}{
		{"usage less inactive file", "1000\n", "cache 5\ninactive_file 7\ntotal_inactive_file 300\n", 700, false},
		{"never below zero", "100", "total_inactive_file 300", 0, false},
		{"no total_inactive_file", "100", "inactive_file 3", 0, true},
		{"bad usage", "x", "total_inactive_file 3", 0, true},
		{"bad stat", "10", "total_inactive_file y", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := cgroupWorkingSet([]byte(c.usage), []byte(c.stat))
			if (err != nil) != c.fail {
				t.Fatalf("err = %v, want failure %v", err, c.fail)
			}
			if got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
		})
	}
}

func TestParseMeminfoWorkingSet(t *testing.T) {
	cases := []struct {
		name, in string
		want     uint64
		fail     bool
	}{
		{"kB", "MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    600 kB\n", 400 * 1024, false},
		{"bytes without unit", "MemTotal: 1000\nMemAvailable: 400\n", 600, false},
		{"available above total", "MemTotal: 10 kB\nMemAvailable: 20 kB\n", 0, false},
		{"missing available", "MemTotal: 1000 kB\n", 0, true},
		{"bad number", "MemTotal: x kB\nMemAvailable: 1 kB\n", 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseMeminfoWorkingSet([]byte(c.in))
			if (err != nil) != c.fail {
				t.Fatalf("err = %v, want failure %v", err, c.fail)
			}
			if got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The cgroup root's counters win; /proc is the fallback.
func TestHostSources(t *testing.T) {
	dir := t.TempDir()
	h := Host{Proc: filepath.Join(dir, "proc"), Cgroup: filepath.Join(dir, "cgroup")}
	writeFile(t, filepath.Join(h.Proc, "stat"), "cpu  1 0 1 0 0 0 0 0 0 0\n")
	writeFile(t, filepath.Join(h.Proc, "meminfo"), "MemTotal: 10 kB\nMemAvailable: 4 kB\n")

	cpu, err := h.nodeCPU()
	if err != nil || cpu != 2*10_000_000 {
		t.Errorf("from /proc: cpu = %d, %v", cpu, err)
	}
	mem, err := h.nodeMemory()
	if err != nil || mem != 6*1024 {
		t.Errorf("from /proc: memory = %d, %v", mem, err)
	}

	writeFile(t, filepath.Join(h.Cgroup, "cpu,cpuacct", "cpuacct.usage"), "123456789\n")
	writeFile(t, filepath.Join(h.Cgroup, "memory", "memory.usage_in_bytes"), "5000\n")
	writeFile(t, filepath.Join(h.Cgroup, "memory", "memory.stat"), "total_inactive_file 1000\n")
	cpu, err = h.nodeCPU()
	if err != nil || cpu != 123456789 {
		t.Errorf("from cgroup: cpu = %d, %v", cpu, err)
	}
	mem, err = h.nodeMemory()
	if err != nil || mem != 4000 {
		t.Errorf("from cgroup: memory = %d, %v", mem, err)
	}

	empty := Host{Proc: filepath.Join(dir, "none"), Cgroup: filepath.Join(dir, "none")}
	if _, err := empty.nodeCPU(); err == nil {
		t.Error("nodeCPU with nothing to read: no error")
	}
	if _, err := empty.nodeMemory(); err == nil {
		t.Error("nodeMemory with nothing to read: no error")
	}
}
