package job

import (
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// noIndex marks a pod without a valid completion index.
const noIndex = -1

// indexSet is a set of completion indexes kept as sorted, disjoint,
// non-adjacent closed ranges: the shape of status.completedIndexes and
// status.failedIndexes ("0-2,5,7-9").
type indexSet []indexRange

type indexRange struct{ first, last int }

// parseIndexSet reads a compressed range string, keeping only indexes
// below limit (an Indexed Job scaled down forgets indexes it no longer
// has). Malformed parts are skipped: the string is the controller's own
// record, and a damaged part is better recounted than fatal.
func parseIndexSet(s string, limit int) indexSet {
	var idx []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				continue
			}
		}
		last = min(last, limit-1)
		for i := first; i <= last; i++ {
			idx = append(idx, i)
		}
	}
	return indexSet(nil).with(idx)
}

// with returns the set with the indexes added; s is not changed.
func (s indexSet) with(idx []int) indexSet {
	if len(idx) == 0 {
		return s
	}
	all := make([]int, 0, s.total()+len(idx))
	for _, r := range s {
		for i := r.first; i <= r.last; i++ {
			all = append(all, i)
		}
	}
	all = append(all, idx...)
	slices.Sort(all)
	all = slices.Compact(all)
	var out indexSet
	for _, i := range all {
		if n := len(out); n > 0 && out[n-1].last+1 == i {
			out[n-1].last = i
			continue
		}
		out = append(out, indexRange{i, i})
	}
	return out
}

// has says whether i is in the set.
func (s indexSet) has(i int) bool {
	_, found := slices.BinarySearchFunc(s, i, func(r indexRange, i int) int {
		switch {
		case r.last < i:
			return -1
		case r.first > i:
			return 1
		}
		return 0
	})
	return found
}

// total is how many indexes the set holds.
func (s indexSet) total() int {
	n := 0
	for _, r := range s {
		n += r.last - r.first + 1
	}
	return n
}

// String is the compressed form: "1,3-5,7".
func (s indexSet) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r.first))
		if r.last != r.first {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r.last))
		}
	}
	return b.String()
}

// completionIndex is the pod's completion index from its annotation (the
// label carries the same value), or noIndex when absent or malformed.
func completionIndex(pod *corev1.Pod) int {
	v, ok := pod.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return noIndex
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return noIndex
	}
	return i
}

// validIndex is the pod's completion index when it is usable for a Job
// with that many completions, else noIndex.
func validIndex(pod *corev1.Pod, completions int) int {
	if i := completionIndex(pod); i != noIndex && i < completions {
		return i
	}
	return noIndex
}

// lowestFree returns up to n indexes below completions that are in none of
// the sets and not taken, lowest first.
func lowestFree(n, completions int, taken map[int]bool, sets ...indexSet) []int {
	var out []int
	for i := 0; i < completions && len(out) < n; i++ {
		if taken[i] {
			continue
		}
		skip := false
		for _, s := range sets {
			if s.has(i) {
				skip = true
				break
			}
		}
		if !skip {
			out = append(out, i)
		}
	}
	return out
}
