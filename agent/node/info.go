package node

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// hostFacts are what the node reports about its machine.
type hostFacts struct {
	memTotal, memAvailable int64 // bytes
	diskTotal, diskFree    int64 // bytes, of the data dir's filesystem
	pidMax, pids           int64
}

func readHost(dataDir string) hostFacts {
	var h hostFacts
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			v, _ := strconv.ParseInt(fields[1], 10, 64)
			switch fields[0] {
			case "MemTotal:":
				h.memTotal = v * 1024
			case "MemAvailable:":
				h.memAvailable = v * 1024
			}
		}
		f.Close()
	}
	var fs syscall.Statfs_t
	if syscall.Statfs(dataDir, &fs) == nil {
		h.diskTotal = int64(fs.Blocks) * fs.Bsize
		h.diskFree = int64(fs.Bavail) * fs.Bsize
	}
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		h.pidMax, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		// "0.00 0.01 0.05 1/123 4567": the fourth field is running/total.
		if f := strings.Fields(string(b)); len(f) >= 4 {
			if _, total, ok := strings.Cut(f[3], "/"); ok {
				h.pids, _ = strconv.ParseInt(total, 10, 64)
			}
		}
	}
	return h
}

// capacity is the node's capacity; allocatable is the same (Skiff
// reserves nothing for system daemons yet).
func capacity(h hostFacts, maxPods int64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(h.memTotal, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(h.diskTotal, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(maxPods, resource.DecimalSI),
		"hugepages-2Mi":                 *resource.NewQuantity(0, resource.BinarySI),
		"hugepages-1Gi":                 *resource.NewQuantity(0, resource.BinarySI),
	}
}

// Thresholds of the pressure conditions (the kubelet's default hard
// eviction thresholds).
const (
	memoryPressureBelow = 100 << 20 // memory.available < 100Mi
	diskPressurePercent = 10        // nodefs.available < 10%
	pidPressurePercent  = 90        // more than 90% of pid_max in use
)

func memoryPressure(h hostFacts) bool {
	return h.memTotal > 0 && h.memAvailable < memoryPressureBelow
}

func diskPressure(h hostFacts) bool {
	return h.diskTotal > 0 && h.diskFree*100 < h.diskTotal*diskPressurePercent
}

func pidPressure(h hostFacts) bool {
	return h.pidMax > 0 && h.pids*100 > h.pidMax*pidPressurePercent
}

// systemInfo describes the machine and its software.
func systemInfo(runtimeVersion, version string) corev1.NodeSystemInfo {
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.TrimSpace(string(b))
	}
	var uts syscall.Utsname
	kernel := ""
	if syscall.Uname(&uts) == nil {
		kernel = charsToString(uts.Release[:])
	}
	osImage := "Linux"
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				osImage = strings.Trim(v, `"`)
			}
		}
	}
	return corev1.NodeSystemInfo{
		MachineID:               read("/etc/machine-id"),
		SystemUUID:              strings.ToLower(read("/sys/class/dmi/id/product_uuid")),
		BootID:                  read("/proc/sys/kernel/random/boot_id"),
		KernelVersion:           kernel,
		OSImage:                 osImage,
		ContainerRuntimeVersion: runtimeVersion,
		KubeletVersion:          version,
		KubeProxyVersion:        version,
		OperatingSystem:         runtime.GOOS,
		Architecture:            runtime.GOARCH,
	}
}

func charsToString(cs []int8) string {
	b := make([]byte, 0, len(cs))
	for _, c := range cs {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
