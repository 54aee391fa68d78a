package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// createConcurrency are the numbers of concurrent clients measurement 3
// runs at.
var createConcurrency = []int{1, 16, 64}

// CreateResult is measurement 3 for one kind at one concurrency: Total
// creates split over Clients clients, each on its own connection.
type CreateResult struct {
	Kind        string `json:"kind"`
	Clients     int    `json:"clients"`
	Total       int    `json:"total"`
	ObjectBytes int    `json:"object_json_bytes"`
	PerSecond   Stat   `json:"creates_per_second"`
	P50Ms       Stat   `json:"p50_ms"`
	P99Ms       Stat   `json:"p99_ms"`
	MaxMs       Stat   `json:"max_ms"`
}

// createKind is one kind of object measurement 3 creates.
type createKind struct {
	name   string
	bytes  int
	create func(ctx context.Context, c kubernetes.Interface, ns, name string) error
}

var createKinds = []createKind{
	{
		name:  "configmap",
		bytes: jsonSize(smallConfigMap("cm-000000")),
		create: func(ctx context.Context, c kubernetes.Interface, ns, name string) error {
			_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, smallConfigMap(name), metav1.CreateOptions{})
			return err
		},
	},
	{
		name:  "pod",
		bytes: jsonSize(benchPod("pod-000000")),
		create: func(ctx context.Context, c kubernetes.Interface, ns, name string) error {
			_, err := c.CoreV1().Pods(ns).Create(ctx, benchPod(name), metav1.CreateOptions{})
			return err
		},
	},
}

// createRun is what one pool of creators measured.
type createRun struct {
	start     time.Time // when the first create was sent
	wall      time.Duration
	latencies []time.Duration
}

func measureCreates(ctx context.Context, e *env) error {
	type key struct {
		kind    string
		clients int
	}
	perSec := map[key][]float64{}
	p50 := map[key][]float64{}
	p99 := map[key][]float64{}
	maxes := map[key][]float64{}
	for run := range e.opts.runs {
		// A fresh server per run keeps runs independent of each other's
		// accumulated objects.
		dir := e.lab.NewDataDir("creates")
		s, err := e.lab.Start(ctx, dir)
		if err != nil {
			return err
		}
		err = func() error {
			cfg, err := s.RESTConfig()
			if err != nil {
				return err
			}
			for _, kind := range createKinds {
				for _, c := range createConcurrency {
					ns := fmt.Sprintf("create-%s-c%d", kind.name, c)
					res, err := runCreators(ctx, cfg, ns, kind, c, e.opts.createTotal)
					if err != nil {
						return fmt.Errorf("%s c=%d: %w", kind.name, c, err)
					}
					k := key{kind.name, c}
					d := Distribution(res.latencies)
					rate := float64(len(res.latencies)) / res.wall.Seconds()
					perSec[k] = append(perSec[k], rate)
					p50[k] = append(p50[k], ms(d.P50))
					p99[k] = append(p99[k], ms(d.P99))
					maxes[k] = append(maxes[k], ms(d.Max))
					e.progress("creates run %d/%d: %-9s c=%-2d %7.0f/s  p50 %6.2f ms  p99 %7.2f ms",
						run+1, e.opts.runs, kind.name, c, rate, ms(d.P50), ms(d.P99))
				}
			}
			return nil
		}()
		stopErr := s.Stop()
		if err != nil {
			return err
		}
		if stopErr != nil {
			return stopErr
		}
		if err := e.lab.RemoveDataDir(dir); err != nil {
			return err
		}
	}
	for _, kind := range createKinds {
		for _, c := range createConcurrency {
			k := key{kind.name, c}
			r := CreateResult{
				Kind: kind.name, Clients: c, Total: e.opts.createTotal, ObjectBytes: kind.bytes,
				PerSecond: Summarize(perSec[k]), P50Ms: Summarize(p50[k]), P99Ms: Summarize(p99[k]), MaxMs: Summarize(maxes[k]),
			}
			e.rep.Creates = append(e.rep.Creates, r)
			e.rep.add(fmt.Sprintf("create %s c=%d", kind.name, c),
				"median %.0f/s   p50 %.2f ms  p99 %.2f ms   (rate min %.0f, max %.0f; %d x %d B)",
				r.PerSecond.Median, r.P50Ms.Median, r.P99Ms.Median, r.PerSecond.Min, r.PerSecond.Max, r.Total, r.ObjectBytes)
		}
	}
	return nil
}

// runCreators creates total objects of kind in a new namespace ns with
// clients concurrent clients, each on its own connection, and times every
// request. Connections are opened before the clock starts.
func runCreators(ctx context.Context, cfg *rest.Config, ns string, kind createKind, clients, total int) (createRun, error) {
	admin, err := newClient(cfg)
	if err != nil {
		return createRun{}, err
	}
	if err := createNamespace(ctx, admin, ns); err != nil {
		return createRun{}, err
	}
	cs := make([]kubernetes.Interface, clients)
	for i := range cs {
		if cs[i], err = newClient(cfg); err != nil {
			return createRun{}, err
		}
		// Warm up: TLS handshake and HTTP/2 setup are not what is measured.
		if _, err := cs[i].CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			return createRun{}, fmt.Errorf("warm up client: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		failed   atomic.Int64
	)
	lat := make([][]time.Duration, clients)
	start := time.Now()
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, total/clients+1)
			for {
				n := next.Add(1) - 1
				if n >= int64(total) || ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				err := kind.create(ctx, c, ns, fmt.Sprintf("%s-%06d", kind.name, n))
				d := time.Since(t0)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err; cancel() })
					break
				}
				mine = append(mine, d)
			}
			lat[i] = mine
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if firstErr != nil {
		return createRun{}, fmt.Errorf("%d creates failed, first: %w", failed.Load(), firstErr)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return createRun{start: start, wall: wall, latencies: all}, nil
}
