package job

import (
	"reflect"
	"testing"
)

func TestIndexSet(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		add   []int
		want  string
		total int
	}{
		{in: "", limit: 10, want: "", total: 0},
		{in: "0-2,5", limit: 10, want: "0-2,5", total: 4},
		{in: "5,0-2", limit: 10, want: "0-2,5", total: 4},
		{in: "0-2,5", limit: 10, add: []int{3, 4}, want: "0-5", total: 6},
		{in: "1", limit: 10, add: []int{0, 2, 9, 7}, want: "0-2,7,9", total: 5},
		{in: "0-9", limit: 4, want: "0-3", total: 4},
		{in: "8,9", limit: 4, want: "", total: 0},
		{in: "x,2,3-1,4-y, 6", limit: 10, want: "2,6", total: 2},
		{in: "1,1,1-2", limit: 10, want: "1-2", total: 2},
	}
	for _, tt := range tests {
		got := parseIndexSet(tt.in, tt.limit).with(tt.add)
		if got.String() != tt.want || got.total() != tt.total {
			t.Errorf("parse(%q,%d)+%v = %q (%d), want %q (%d)", tt.in, tt.limit, tt.add, got, got.total(), tt.want, tt.total)
		}
	}
}

func TestIndexSetHas(t *testing.T) {
	s := parseIndexSet("0-2,5,7-9", 100)
	for i := 0; i < 12; i++ {
		want := i <= 2 || i == 5 || (i >= 7 && i <= 9)
		if s.has(i) != want {
			t.Errorf("has(%d) = %v, want %v", i, s.has(i), want)
		}
	}
}

func TestLowestFree(t *testing.T) {
	done := parseIndexSet("0,3", 10)
	failed := parseIndexSet("5", 10)
	got := lowestFree(3, 8, map[int]bool{1: true}, done, failed)
	if want := []int{2, 4, 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("lowestFree = %v, want %v", got, want)
	}
	if got := lowestFree(5, 3, nil, parseIndexSet("0-2", 3)); got != nil {
		t.Errorf("all done: %v", got)
	}
}
