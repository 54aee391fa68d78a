// Command bench measures the figures docs/benchmarks.md quotes. It runs
// the real skiff binary (`skiff server`, embedded etcd) as a subprocess on
// fresh temp data dirs and free loopback ports, drives it with client-go,
// and reports for each measurement the median, min and max over several
// runs, since the machines it runs on are shared and noisy:
//
//	startup  exec to /readyz 200, on an empty data dir and on a restart
//	idle     VmRSS and VmHWM of an idle server shortly after ready
//	creates  ConfigMap and Pod creates/s and p50/p99 latency at 1, 16, 64 clients
//	list     LIST of 10k and 50k pods (client-go JSON, and kubectl's Table
//	         pages), time and the server's peak RSS during it
//	watch    watch delivery lag p50/p99/max under 100 writes/s, events lost
//
// and, with simulated nodes (package sim) run inside this process:
//
//	schedule    scheduler throughput: 10k bare pods onto 1k and onto 5k
//	            nodes, pods/s from first create to last bind, the steady
//	            10%-90% bind rate, and how long creating took
//	deployment  a 10k-replica Deployment on 1k nodes, create to every pod
//	            Running and readyReplicas 10k
//	nodescale   Lease renewal latency p50/p99 and server RSS at 500 to 10k
//	            nodes; the most nodes with p99 under 1 s
//
// These three are heavy and run once by default (-cp-runs to repeat).
//
// Service networking (issue 5):
//
//	proxy    rule programming latency of the service proxy (package proxy,
//	         run in this process, its nftables table in a network namespace
//	         of the benchmark's own): EndpointSlice update written to the
//	         API to the nft transaction carrying the new rule committed,
//	         p50/p99 at 1k and 10k Services; full and incremental sync
//	         durations (runs like the control-plane ones, -cp-runs)
//	dns      cluster DNS (package clusterdns, in this process) over UDP,
//	         16 clients: queries/s and p50/p99 for Service names, a
//	         forwarded name from the cache, and NXDOMAIN
//	ingress  HTTP requests/s and p50/p99 through the built-in ingress
//	         controller and straight to the pods, 16 and 64 keep-alive
//	         clients (a server with its own agent and containerd)
//
// Usage (make bench runs the first):
//
//	go run ./test/bench -bin bin/skiff
//	go run ./test/bench -bin bin/skiff -quick -only list -out /tmp/b.json
//
// The summary is printed at the end and the whole report is written as
// JSON to -out. Every server the program starts is stopped, and every temp
// dir removed, on success, error and Ctrl-C alike.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the sizes and repetitions of one benchmark run.
type options struct {
	runs          int // repetitions of the light measurements
	heavyRuns     int // repetitions of the heavy ones (list, watch)
	idleSettle    time.Duration
	createTotal   int
	listSizes     []int
	watchRate     int
	watchDuration time.Duration

	// The control-plane measurements, run cpRuns times each.
	cpRuns         int
	schedule       []scheduleSize
	deployReplicas int
	deployNodes    int
	scaleSteps     []int
	scaleWindow    time.Duration
}

// defaultOptions are the full-size settings, or the -quick smoke-run ones.
func defaultOptions(quick bool) options {
	if quick {
		return options{runs: 3, heavyRuns: 2, idleSettle: 3 * time.Second, createTotal: 200,
			listSizes: []int{1000}, watchRate: 100, watchDuration: 5 * time.Second,
			cpRuns: 1, schedule: scheduleSizes(true), deployReplicas: 500, deployNodes: 50,
			scaleSteps: scaleSteps(true), scaleWindow: 15 * time.Second}
	}
	return options{runs: 5, heavyRuns: 3, idleSettle: 10 * time.Second, createTotal: 2000,
		listSizes: []int{10000, 50000}, watchRate: 100, watchDuration: 30 * time.Second,
		cpRuns: 1, schedule: scheduleSizes(false), deployReplicas: 10000, deployNodes: 1000,
		scaleSteps: scaleSteps(false), scaleWindow: 30 * time.Second}
}

// env is what every measurement gets.
type env struct {
	lab   *Lab
	opts  options
	rep   *Report
	start time.Time
	out   io.Writer
}

// progress prints a progress line, stamped with the time since start.
func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.out, "[%7.1fs] %s\n", time.Since(e.start).Seconds(), fmt.Sprintf(format, args...))
}

// measurement is one named figure (or group of figures) the program takes.
type measurement struct {
	name string
	run  func(context.Context, *env) error
}

var measurements = []measurement{
	{"startup", measureStartup},
	{"idle", measureIdle},
	{"creates", measureCreates},
	{"list", measureList},
	{"watch", measureWatch},
	{"schedule", measureSchedule},
	{"deployment", measureDeployment},
	{"nodescale", measureNodeScale},
	{"node", measureNode},
	{"proxy", measureProxy},
	{"dns", measureDNS},
	{"ingress", measureIngress},
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	bin := fs.String("bin", "bin/skiff", "path of the skiff binary to measure")
	out := fs.String("out", "_out/bench.json", "where to write the JSON report")
	runs := fs.Int("runs", 0, "repetitions of every measurement (default 5, 3 for list and watch, 1 for the control-plane ones; -quick 3, 2 and 1)")
	cpRuns := fs.Int("cp-runs", 0, "repetitions of schedule, deployment and nodescale (default 1, or -runs if given)")
	quick := fs.Bool("quick", false, "small sizes for a smoke run (200 creates, 1k pods, 5 s of watch, 1k pods on 100 nodes, 500 replicas on 50 nodes, 100 and 500 nodes)")
	only := fs.String("only", "", "run only these measurements, comma-separated: "+names())
	listSizes := fs.String("list-sizes", "", "comma-separated pod counts for the list measurement (default 10000,50000; -quick 1000)")
	steps := fs.String("scale-steps", "", "comma-separated node counts for nodescale (default 500,1000,2000,5000,10000; -quick 100,500)")
	verbose := fs.Bool("v", false, "copy the servers' and simulators' logs to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	opts := defaultOptions(*quick)
	if *runs > 0 {
		opts.runs, opts.heavyRuns, opts.cpRuns = *runs, *runs, *runs
	}
	if *cpRuns > 0 {
		opts.cpRuns = *cpRuns
	}
	if *steps != "" {
		sizes, err := parseSizes(*steps)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -scale-steps:", err)
			return 2
		}
		slices.Sort(sizes)
		opts.scaleSteps = sizes
	}
	if *listSizes != "" {
		sizes, err := parseSizes(*listSizes)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -list-sizes:", err)
			return 2
		}
		opts.listSizes = sizes
	}
	selected, err := selectMeasurements(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}

	var logs io.Writer
	if *verbose {
		logs = os.Stderr
	}
	lab, err := NewLab(*bin, logs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer lab.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		fmt.Fprintln(os.Stderr, "\nbench: interrupted; stopping servers (again to force)")
		cancel()
		if _, ok := <-sigs; ok {
			lab.Close()
			os.Exit(130)
		}
	}()

	rep := &Report{
		Meta: Meta{
			Started: time.Now().UTC(), Binary: lab.bin, Version: binaryVersion(lab.bin),
			GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
			CPUs: runtime.NumCPU(), Kernel: kernel(), LoadAvgStart: loadAvg(),
			Quick: *quick, Runs: opts.runs, HeavyRuns: opts.heavyRuns, ControlPlaneRuns: opts.cpRuns, Only: *only,
		},
		Summary:   []SummaryLine{},
		Durations: map[string]Secs{},
	}
	e := &env{lab: lab, opts: opts, rep: rep, start: time.Now(), out: os.Stderr}
	e.progress("measuring %s (load %s)", rep.Meta.Version, rep.Meta.LoadAvgStart)
	failed := false
	for _, m := range selected {
		if ctx.Err() != nil {
			break
		}
		e.progress("== %s", m.name)
		t0 := time.Now()
		err := m.run(ctx, e)
		rep.Durations[m.name] = Secs(time.Since(t0).Seconds())
		if err != nil {
			failed = true
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				err = errors.New("interrupted")
			}
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", m.name, err))
			e.progress("%s failed: %v", m.name, err)
		}
	}
	rep.Meta.Finished = time.Now().UTC()
	rep.Meta.LoadAvgEnd = loadAvg()
	rep.PrintSummary(os.Stdout)
	if err := rep.WriteJSON(*out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Printf("\nreport written to %s\n", *out)
	if failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// selectMeasurements picks the measurements -only names, in their usual
// order; empty means all.
func selectMeasurements(only string) ([]measurement, error) {
	if strings.TrimSpace(only) == "" {
		return measurements, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		if !slices.ContainsFunc(measurements, func(m measurement) bool { return m.name == n }) {
			return nil, fmt.Errorf("-only: unknown measurement %q (have %s)", n, names())
		}
		want[n] = true
	}
	var out []measurement
	for _, m := range measurements {
		if want[m.name] {
			out = append(out, m)
		}
	}
	return out, nil
}

func names() string {
	var ns []string
	for _, m := range measurements {
		ns = append(ns, m.name)
	}
	return strings.Join(ns, ", ")
}

// parseSizes reads a comma-separated list of positive counts.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("bad count %q: %w", f, err)
		}
		if n <= 0 {
			return nil, fmt.Errorf("count %d is not positive", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// binaryVersion is what `skiff version` prints, or "skiff (unknown version)".
func binaryVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "skiff (unknown version)"
	}
	return strings.TrimSpace(string(out))
}
