package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Mem
		wantErr string
	}{
		{
			name: "real layout",
			in:   "Name:\tskiff\nVmPeak:\t 2000000 kB\nVmHWM:\t  130464 kB\nVmRSS:\t   91712 kB\nThreads:\t7\n",
			want: Mem{RSS: 91712 * 1024, HWM: 130464 * 1024},
		},
		{name: "missing RSS", in: "VmHWM:\t 1 kB\n", wantErr: "no VmRSS"},
		{name: "zombie has neither", in: "Name:\tskiff\nState:\tZ (zombie)\n", wantErr: "no VmRSS"},
		{name: "unexpected unit", in: "VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n", wantErr: "unexpected VmHWM"},
		{name: "not a number", in: "VmHWM:\t x kB\nVmRSS:\t 1 kB\n", wantErr: "parse VmHWM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSelectMeasurements(t *testing.T) {
	tests := []struct {
		only    string
		want    []string
		wantErr bool
	}{
		{only: "", want: []string{"startup", "idle", "creates", "list", "watch", "schedule", "deployment", "nodescale", "node", "proxy", "dns", "ingress"}},
		{only: "nodescale,schedule", want: []string{"schedule", "nodescale"}},
		{only: "list", want: []string{"list"}},
		{only: "watch, startup", want: []string{"startup", "watch"}}, // usual order, spaces ok
		{only: "lists", wantErr: true},
		{only: "list,", wantErr: true},
	}
	for _, tt := range tests {
		got, err := selectMeasurements(tt.only)
		if (err != nil) != tt.wantErr {
			t.Errorf("selectMeasurements(%q) err = %v, wantErr %v", tt.only, err, tt.wantErr)
			continue
		}
		var names []string
		for _, m := range got {
			names = append(names, m.name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("selectMeasurements(%q) = %v, want %v", tt.only, names, tt.want)
		}
	}
}

func TestParseSizes(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "10000,50000", want: []int{10000, 50000}},
		{in: " 1000 ", want: []int{1000}},
		{in: "0", wantErr: true},
		{in: "10k", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSizes(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseSizes(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCountLabel(t *testing.T) {
	for in, want := range map[int]string{10000: "10k", 50000: "50k", 1000: "1k", 1500: "1500", 200: "200"} {
		if got := countLabel(in); got != want {
			t.Errorf("countLabel(%d) = %q, want %q", in, got, want)
		}
	}
}

// The pod the benchmarks create is meant to be about 1.5 KB on the wire;
// a change to it changes every pod figure, so keep it in range.
func TestBenchPodSize(t *testing.T) {
	n := jsonSize(benchPod("pod-000000"))
	t.Logf("bench pod: %d bytes of JSON", n)
	if n < 1300 || n > 1800 {
		t.Errorf("bench pod is %d bytes of JSON, want about 1.5 KB", n)
	}
}
