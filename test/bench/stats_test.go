package main

import (
	"slices"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		in      []float64
		want    Stat
		wantNil bool
	}{
		{name: "empty", in: nil, wantNil: true},
		{name: "one", in: []float64{3}, want: Stat{Median: 3, Min: 3, Max: 3}},
		{name: "odd count takes the middle", in: []float64{5, 1, 9}, want: Stat{Median: 5, Min: 1, Max: 9}},
		{name: "even count averages the middle two", in: []float64{4, 1, 3, 10}, want: Stat{Median: 3.5, Min: 1, Max: 10}},
		{name: "outlier does not move the median", in: []float64{1, 1.1, 0.9, 1.05, 40}, want: Stat{Median: 1.05, Min: 0.9, Max: 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got := Summarize(in)
			if tt.wantNil {
				if got.Samples != nil || got.Median != 0 {
					t.Fatalf("Summarize(%v) = %+v, want zero", tt.in, got)
				}
				return
			}
			if got.Median != tt.want.Median || got.Min != tt.want.Min || got.Max != tt.want.Max {
				t.Errorf("Summarize(%v) = median %v min %v max %v, want %v %v %v",
					tt.in, got.Median, got.Min, got.Max, tt.want.Median, tt.want.Min, tt.want.Max)
			}
			if !slices.Equal(got.Samples, tt.in) {
				t.Errorf("samples = %v, want run order %v", got.Samples, tt.in)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("input modified: %v", in)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // 100ms..1ms, descending
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{name: "empty", in: nil, p: 50, want: 0},
		{name: "single", in: []time.Duration{7}, p: 99, want: 7},
		{name: "p50 of 100", in: hundred, p: 50, want: 50 * time.Millisecond},
		{name: "p99 of 100", in: hundred, p: 99, want: 99 * time.Millisecond},
		{name: "p100 is the max", in: hundred, p: 100, want: 100 * time.Millisecond},
		{name: "tiny p is the min", in: hundred, p: 0.001, want: time.Millisecond},
		{name: "p99 of 10 is the max (nearest rank)", in: []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, p: 99, want: 10},
		{name: "p50 of 4 is the 2nd", in: []time.Duration{40, 10, 30, 20}, p: 50, want: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sorted := slices.Clone(tt.in)
			slices.Sort(sorted)
			if got := percentileSorted(sorted, tt.p); got != tt.want {
				t.Errorf("percentileSorted(p=%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestDistribution(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i)*time.Microsecond)
	}
	ds[10] = time.Second // one slow request
	got := Distribution(ds)
	want := Latencies{P50: 501 * time.Microsecond, P99: 991 * time.Microsecond, Max: time.Second}
	if got != want {
		t.Errorf("Distribution = %+v, want %+v", got, want)
	}
	if (Distribution(nil) != Latencies{}) {
		t.Errorf("Distribution(nil) is not zero")
	}
}
