package main

import (
	"math"
	"slices"
	"time"
)

// Stat summarises one figure over repeated runs. The median is the number
// to quote: the machine is shared, so single runs are noisy.
type Stat struct {
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples []float64 `json:"samples"`
}

// Summarize computes the median, min and max of samples (in run order,
// kept as given). No samples give a zero Stat.
func Summarize(samples []float64) Stat {
	if len(samples) == 0 {
		return Stat{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	return Stat{
		Median:  median(sorted),
		Min:     sorted[0],
		Max:     sorted[len(sorted)-1],
		Samples: slices.Clone(samples),
	}
}

// median of sorted values: the middle one, or the mean of the two middle
// ones for an even count.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentileSorted is the nearest-rank p-th percentile (0 < p <= 100) of
// sorted durations: the smallest value with at least p% of the values at
// or below it.
func percentileSorted(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Latencies is the distribution of a set of request latencies.
type Latencies struct {
	P50 time.Duration
	P99 time.Duration
	Max time.Duration
}

// Distribution computes p50, p99 and max of ds.
func Distribution(ds []time.Duration) Latencies {
	if len(ds) == 0 {
		return Latencies{}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	return Latencies{
		P50: percentileSorted(sorted, 50),
		P99: percentileSorted(sorted, 99),
		Max: sorted[len(sorted)-1],
	}
}

// ms converts a duration to float milliseconds, the unit latencies are
// reported in.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mib converts bytes to MiB, the unit memory is reported in.
func mib(b int64) float64 { return float64(b) / (1 << 20) }
