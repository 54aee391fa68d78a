package stats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of the times in /proc/stat: Linux reports them in
// USER_HZ, which is 100 on every architecture the agent runs on.
const userHZ = 100

// Host says where the node's counters are read from. The agent may run in
// its own network namespace, but it sees the host's /proc and cgroup
// hierarchy, so the defaults read the whole machine.
type Host struct {
	// Proc is the procfs mount; default /proc.
	Proc string
	// Cgroup is the cgroup v1 hierarchy's root; default /sys/fs/cgroup.
	Cgroup string
}

func (h Host) withDefaults() Host {
	if h.Proc == "" {
		h.Proc = "/proc"
	}
	if h.Cgroup == "" {
		h.Cgroup = "/sys/fs/cgroup"
	}
	return h
}

// cpuacctDirs are where cgroup v1 mounts the cpuacct controller, alone or
// together with cpu.
var cpuacctDirs = []string{"cpuacct", "cpu,cpuacct", "cpuacct,cpu"}

// nodeCPU is the node's cumulative CPU time in nanoseconds: the root
// cpuacct cgroup's usage, which the kernel keeps in nanoseconds, or else
// the busy times of /proc/stat.
func (h Host) nodeCPU() (uint64, error) {
	for _, d := range cpuacctDirs {
		data, err := os.ReadFile(filepath.Join(h.Cgroup, d, "cpuacct.usage"))
		if err != nil {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpuacct.usage: %w", err)
		}
		return n, nil
	}
	data, err := os.ReadFile(filepath.Join(h.Proc, "stat"))
	if err != nil {
		return 0, fmt.Errorf("node CPU: %w", err)
	}
	return parseProcStatCPU(data)
}

// parseProcStatCPU reads the aggregate "cpu" line of /proc/stat and
// returns the time spent busy (everything but idle and iowait; guest time
// is already counted in user and nice) in nanoseconds.
func parseProcStatCPU(data []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal guest guest_nice
		if len(fields) < 5 {
			return 0, fmt.Errorf("/proc/stat: short cpu line %q", sc.Text())
		}
		var busy uint64
		for i, f := range fields[1:] {
			if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest, guest_nice
				continue
			}
			n, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
			}
			busy += n
		}
		return busy * (1e9 / userHZ), nil
	}
	return 0, errors.New("/proc/stat: no cpu line")
}

// nodeMemory is the node's memory working set: the root memory cgroup's
// usage minus its inactive page cache, as the kubelet reports it, or else
// MemTotal minus MemAvailable from /proc/meminfo.
func (h Host) nodeMemory() (uint64, error) {
	usage, uerr := os.ReadFile(filepath.Join(h.Cgroup, "memory", "memory.usage_in_bytes"))
	stat, serr := os.ReadFile(filepath.Join(h.Cgroup, "memory", "memory.stat"))
	if uerr == nil && serr == nil {
		return cgroupWorkingSet(usage, stat)
	}
	data, err := os.ReadFile(filepath.Join(h.Proc, "meminfo"))
	if err != nil {
		return 0, fmt.Errorf("node memory: %w", err)
	}
	return parseMeminfoWorkingSet(data)
}

// cgroupWorkingSet is memory.usage_in_bytes less memory.stat's
// total_inactive_file, never below zero.
func cgroupWorkingSet(usage, stat []byte) (uint64, error) {
	u, err := strconv.ParseUint(strings.TrimSpace(string(usage)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory.usage_in_bytes: %w", err)
	}
	inactive, ok, err := statField(stat, "total_inactive_file")
	if err != nil {
		return 0, fmt.Errorf("memory.stat: %w", err)
	}
	if !ok {
		return 0, errors.New("memory.stat: no total_inactive_file")
	}
	if inactive > u {
		return 0, nil
	}
	return u - inactive, nil
}

// statField finds "key value" in a cgroup stat file.
func statField(data []byte, key string) (uint64, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", key, err)
		}
		return n, true, nil
	}
	return 0, false, nil
}

// parseMeminfoWorkingSet is MemTotal minus MemAvailable, in bytes.
func parseMeminfoWorkingSet(data []byte) (uint64, error) {
	vals := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "MemTotal" && k != "MemAvailable") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("/proc/meminfo: %s has no value", k)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/meminfo: %s: %w", k, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		vals[k] = n
	}
	total, ok1 := vals["MemTotal"]
	avail, ok2 := vals["MemAvailable"]
	if !ok1 || !ok2 {
		return 0, errors.New("/proc/meminfo: MemTotal or MemAvailable missing")
	}
	if avail > total {
		return 0, nil
	}
	return total - avail, nil
}
