package main

import (
	"context"
	"time"
)

// IdleResult is measurement 2: the server's memory after sitting idle.
type IdleResult struct {
	SettleSeconds float64 `json:"settle_seconds"`
	// RSSMiB is VmRSS at the end of the idle period, over runs.
	RSSMiB Stat `json:"rss_mib"`
	// RSSMedianMiB is the median of each run's once-a-second samples.
	RSSMedianMiB Stat `json:"rss_in_run_median_mib"`
	// HWMMiB is VmHWM (peak RSS since exec, startup included).
	HWMMiB Stat `json:"hwm_mib"`
	// SamplesMiB are each run's once-a-second VmRSS samples.
	SamplesMiB [][]float64 `json:"samples_mib"`
}

func measureIdle(ctx context.Context, e *env) error {
	var last, medians, hwm []float64
	var all [][]float64
	for i := range e.opts.runs {
		dir := e.lab.NewDataDir("idle")
		s, err := e.lab.Start(ctx, dir)
		if err != nil {
			return err
		}
		samples, peak, err := idleSamples(ctx, s, e.opts.idleSettle)
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
		all = append(all, samples)
		last = append(last, samples[len(samples)-1])
		medians = append(medians, Summarize(samples).Median)
		hwm = append(hwm, peak)
		e.progress("idle run %d/%d: RSS %.1f MiB after %s, HWM %.1f MiB", i+1, e.opts.runs, last[i], e.opts.idleSettle, peak)
	}
	r := &IdleResult{
		SettleSeconds: e.opts.idleSettle.Seconds(),
		RSSMiB:        Summarize(last),
		RSSMedianMiB:  Summarize(medians),
		HWMMiB:        Summarize(hwm),
		SamplesMiB:    all,
	}
	e.rep.IdleRSS = r
	e.rep.add("idle RSS", "%s  (%s after ready)", fmtStat(r.RSSMiB, "MiB", 1), e.opts.idleSettle)
	e.rep.add("idle VmHWM (peak incl. start)", "%s", fmtStat(r.HWMMiB, "MiB", 1))
	return nil
}

// idleSamples reads VmRSS once a second for d after ready and returns the
// samples (MiB) and the final VmHWM (MiB).
func idleSamples(ctx context.Context, s *Server, d time.Duration) ([]float64, float64, error) {
	var samples []float64
	start := time.Now()
	for {
		if err := sleep(ctx, time.Second); err != nil {
			return nil, 0, err
		}
		m, err := s.Mem()
		if err != nil {
			return nil, 0, err
		}
		samples = append(samples, mib(m.RSS))
		if time.Since(start) >= d {
			return samples, mib(m.HWM), nil
		}
	}
}
