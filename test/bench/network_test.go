package main

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
)

func TestContainsDNAT(t *testing.T) {
	text := "add rule ip t ep-abc meta l4proto tcp dnat to 10.199.0.5:8080\n" +
		"add rule ip t ep-def meta l4proto tcp dnat to 10.199.0.55:80\n"
	tests := []struct {
		target string
		want   bool
	}{
		{"10.199.0.5:8080", true},
		{"10.199.0.55:80", true},
		{"10.199.0.5:80", false},   // a prefix of :8080 only
		{"10.199.0.55:8", false},   // a prefix of :80 only
		{"10.199.0.5:808", false},  // ditto
		{"0.199.0.5:8080", false},  // not after "dnat to "
		{"10.199.0.6:8080", false}, // absent
	}
	for _, tt := range tests {
		if got := containsDNAT(text, tt.target); got != tt.want {
			t.Errorf("containsDNAT(%q) = %v, want %v", tt.target, got, tt.want)
		}
	}
	// The match may come after a near miss.
	if !containsDNAT("dnat to 10.0.0.1:80801 dnat to 10.0.0.1:8080;", "10.0.0.1:8080") {
		t.Error("second occurrence not found after a longer port")
	}
}

func TestNthAddr(t *testing.T) {
	p := netip.MustParsePrefix("10.199.0.0/16")
	tests := []struct {
		prefix  netip.Prefix
		i       int
		want    string
		wantErr bool
	}{
		{p, 0, "10.199.0.0", false},
		{p, 1, "10.199.0.1", false},
		{p, 256, "10.199.1.0", false},
		{p, 30000, "10.199.117.48", false},
		{p, 65535, "10.199.255.255", false},
		{p, 65536, "", true},
		{p, -1, "", true},
		{netip.MustParsePrefix("10.199.7.9/16"), 1, "10.199.0.1", false}, // masked first
		{netip.MustParsePrefix("fd00::/64"), 1, "", true},
	}
	for _, tt := range tests {
		got, err := nthAddr(tt.prefix, tt.i)
		if (err != nil) != tt.wantErr {
			t.Errorf("nthAddr(%s, %d) error = %v, want error %v", tt.prefix, tt.i, err, tt.wantErr)
			continue
		}
		if err == nil && got.String() != tt.want {
			t.Errorf("nthAddr(%s, %d) = %s, want %s", tt.prefix, tt.i, got, tt.want)
		}
	}
}

func TestWorkersFor(t *testing.T) {
	var sum, calls atomic.Int64
	err := workersFor(context.Background(), 100, 8, func(_ context.Context, i int) error {
		sum.Add(int64(i))
		return nil
	}, 25, func(int) { calls.Add(1) })
	if err != nil || sum.Load() != 99*100/2 {
		t.Fatalf("sum %d, err %v; want every index once", sum.Load(), err)
	}
	if calls.Load() != 4 {
		t.Errorf("%d progress calls, want 4 (every 25 of 100)", calls.Load())
	}

	boom := errors.New("boom")
	err = workersFor(context.Background(), 1000, 4, func(_ context.Context, i int) error {
		if i == 10 {
			return boom
		}
		return nil
	}, 0, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the worker's error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := workersFor(ctx, 10, 2, func(context.Context, int) error { return nil }, 0, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v on a cancelled context, want context.Canceled", err)
	}
}

func TestKLabel(t *testing.T) {
	for n, want := range map[int]string{1000: "1k", 10000: "10k", 500: "500", 1500: "1500"} {
		if got := kLabel(n); got != want {
			t.Errorf("kLabel(%d) = %q, want %q", n, got, want)
		}
	}
}
