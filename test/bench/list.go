package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// listCreators is how many concurrent clients fill the namespace before
// the LISTs.
const listCreators = 32

// tablePage is the page size kubectl get uses (its --chunk-size default).
const tablePage = 500

// tableAccept is what kubectl get asks for: a server-side Table, falling
// back to plain JSON.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

// ListResult is measurement 4 for one namespace size, on its own server.
type ListResult struct {
	Pods        int `json:"pods"`
	ObjectBytes int `json:"pod_json_bytes"`
	// Filling the namespace (listCreators concurrent clients).
	CreateSeconds   float64 `json:"create_seconds"`
	CreatePerSecond float64 `json:"create_per_second"`
	CreateP99Ms     float64 `json:"create_p99_ms"`
	// RSSAfterCreateMiB is the server's VmRSS once the pods exist.
	RSSAfterCreateMiB float64 `json:"rss_after_create_mib"`
	// One client-go List of every pod, JSON, no limit.
	ListSeconds    Stat  `json:"list_seconds"`
	ListPeakRSSMiB Stat  `json:"list_peak_rss_mib"`
	ListBytes      int64 `json:"list_response_bytes"`
	// kubectl get pods: Table, limit=500, following continue tokens.
	TableSeconds    Stat `json:"table_seconds"`
	TablePeakRSSMiB Stat `json:"table_peak_rss_mib"`
	TablePages      int  `json:"table_pages"`
}

func measureList(ctx context.Context, e *env) error {
	for _, n := range e.opts.listSizes {
		r, err := listOne(ctx, e, n)
		if err != nil {
			return fmt.Errorf("%d pods: %w", n, err)
		}
		e.rep.Lists = append(e.rep.Lists, r)
		label := fmt.Sprintf("LIST %s pods", countLabel(n))
		e.rep.add(label, "%s   peak RSS %.0f MiB (min %.0f, max %.0f)",
			fmtStat(r.ListSeconds, "s", 3), r.ListPeakRSSMiB.Median, r.ListPeakRSSMiB.Min, r.ListPeakRSSMiB.Max)
		e.rep.add(label+" (kubectl Table)", "%s   peak RSS %.0f MiB, %d pages of %d",
			fmtStat(r.TableSeconds, "s", 3), r.TablePeakRSSMiB.Median, r.TablePages, tablePage)
		e.rep.add(fmt.Sprintf("create %s pods (c=%d)", countLabel(n), listCreators),
			"%.1f s   (%.0f/s, p99 %.1f ms; RSS after %.0f MiB; LIST body %.1f MiB)",
			r.CreateSeconds, r.CreatePerSecond, r.CreateP99Ms, r.RSSAfterCreateMiB, mib(r.ListBytes))
	}
	return nil
}

// listOne fills a fresh server with n pods and times the LISTs.
func listOne(ctx context.Context, e *env, n int) (ListResult, error) {
	r := ListResult{Pods: n, ObjectBytes: jsonSize(benchPod("pod-000000"))}
	dir := e.lab.NewDataDir(fmt.Sprintf("list-%d", n))
	// The API server alone: with the scheduler running, every one of the
	// pending pods (there are no nodes) would be retried and annotated, and
	// the control plane's caches would be measured with the LIST.
	s, err := e.lab.Start(ctx, dir, "--disable-scheduler", "--disable-controllers")
	if err != nil {
		return r, err
	}
	err = func() error {
		cfg, err := s.RESTConfig()
		if err != nil {
			return err
		}
		const ns = "list"
		e.progress("list %d: creating pods with %d clients", n, listCreators)
		created, err := runCreators(ctx, cfg, ns, createKinds[1], listCreators, n)
		if err != nil {
			return fmt.Errorf("fill namespace: %w", err)
		}
		r.CreateSeconds = created.wall.Seconds()
		r.CreatePerSecond = float64(n) / created.wall.Seconds()
		r.CreateP99Ms = ms(Distribution(created.latencies).P99)
		e.progress("list %d: created in %.1f s (%.0f/s)", n, r.CreateSeconds, r.CreatePerSecond)
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
		m, err := s.Mem()
		if err != nil {
			return err
		}
		r.RSSAfterCreateMiB = mib(m.RSS)

		c, err := newClient(cfg)
		if err != nil {
			return err
		}
		var secs, peaks, tSecs, tPeaks []float64
		for i := range e.opts.heavyRuns {
			d, peak, err := timed(s, func() error {
				l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					return err
				}
				if len(l.Items) != n {
					return fmt.Errorf("LIST returned %d pods, want %d", len(l.Items), n)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			secs, peaks = append(secs, d.Seconds()), append(peaks, peak)
			e.progress("list %d run %d/%d: LIST %.3f s, peak RSS %.0f MiB", n, i+1, e.opts.heavyRuns, d.Seconds(), peak)
		}
		for i := range e.opts.heavyRuns {
			var pages int
			d, peak, err := timed(s, func() error {
				var err error
				pages, err = tableList(ctx, c, ns, n)
				return err
			})
			if err != nil {
				return fmt.Errorf("table list: %w", err)
			}
			tSecs, tPeaks = append(tSecs, d.Seconds()), append(tPeaks, peak)
			r.TablePages = pages
			e.progress("list %d run %d/%d: Table pages %.3f s, peak RSS %.0f MiB", n, i+1, e.opts.heavyRuns, d.Seconds(), peak)
		}
		r.ListSeconds, r.ListPeakRSSMiB = Summarize(secs), Summarize(peaks)
		r.TableSeconds, r.TablePeakRSSMiB = Summarize(tSecs), Summarize(tPeaks)
		// The body size, fetched once more outside the timed runs.
		raw, err := c.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("raw list: %w", err)
		}
		r.ListBytes = int64(len(raw))
		return nil
	}()
	stopErr := s.Stop()
	if err != nil {
		return r, err
	}
	if stopErr != nil {
		return r, stopErr
	}
	return r, e.lab.RemoveDataDir(dir)
}

// timed runs f between a reset of the server's peak RSS and a read of it,
// and returns f's duration and the peak (MiB). The benchmark's own heap is
// collected first so its GC does not run inside the timing.
func timed(s *Server, f func() error) (time.Duration, float64, error) {
	runtime.GC()
	if err := s.ResetPeak(); err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	if err := f(); err != nil {
		return 0, 0, err
	}
	d := time.Since(t0)
	m, err := s.Mem()
	if err != nil {
		return 0, 0, err
	}
	return d, mib(m.HWM), nil
}

// tableList lists pods the way kubectl get does: Table responses of
// tablePage rows, following continue tokens. It returns the page count
// and checks that want rows came back.
func tableList(ctx context.Context, c kubernetes.Interface, ns string, want int) (int, error) {
	var cont string
	rows, pages := 0, 0
	for {
		req := c.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").
			Param("limit", fmt.Sprint(tablePage)).SetHeader("Accept", tableAccept)
		if cont != "" {
			req = req.Param("continue", cont)
		}
		raw, err := req.DoRaw(ctx)
		if err != nil {
			return pages, err
		}
		var t metav1.Table
		if err := json.Unmarshal(raw, &t); err != nil {
			return pages, fmt.Errorf("decode page %d: %w", pages+1, err)
		}
		if t.Kind != "Table" {
			return pages, fmt.Errorf("page %d is a %q, not a Table", pages+1, t.Kind)
		}
		pages++
		rows += len(t.Rows)
		cont = t.Continue
		if cont == "" {
			break
		}
	}
	if rows != want {
		return pages, fmt.Errorf("Table LIST returned %d rows, want %d", rows, want)
	}
	return pages, nil
}

// countLabel writes 10000 as 10k.
func countLabel(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
