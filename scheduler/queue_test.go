package scheduler

import (
	"testing"
	"time"
)

// popNow pops without blocking: it fails the test if nothing is active.
func popNow(t *testing.T, q *Queue) string {
	t.Helper()
	if a, _, _ := q.Len(); a == 0 {
		t.Fatal("nothing active to pop")
	}
	key, ok := q.Pop()
	if !ok {
		t.Fatal("queue closed")
	}
	return key
}

func TestQueueOrder(t *testing.T) {
	q := NewQueue()
	q.Add("ns/old-low", 0, epoch, epoch)
	q.Add("ns/new-high", 100, epoch.Add(time.Hour), epoch)
	q.Add("ns/old-high", 100, epoch, epoch)
	q.Add("ns/b", 0, epoch, epoch)
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, popNow(t, q))
	}
	want := []string{"ns/old-high", "ns/new-high", "ns/b", "ns/old-low"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestQueueBackoffDoublesToTheCap(t *testing.T) {
	q := NewQueue()
	now := epoch
	q.Add("ns/p", 0, epoch, now)
	var waits []time.Duration
	for i := 0; i < 6; i++ {
		popNow(t, q)
		q.Failed("ns/p", HintNode, now)
		q.Move(HintNode, now) // a change right away: still backing off
		if a, b, _ := q.Len(); a != 0 || b != 1 {
			t.Fatalf("attempt %d: active %d backoff %d, want it backing off", i, a, b)
		}
		next := q.Flush(now)
		waits = append(waits, next.Sub(now))
		if a, _, _ := q.Len(); a != 0 {
			t.Fatalf("active before backoff ended")
		}
		now = next
		q.Flush(now)
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if waits[i] != want[i]*time.Second {
			t.Fatalf("backoffs %v, want %v seconds", waits, want)
		}
	}
}

func TestQueueUnschedulableWaitsForAHelpfulChange(t *testing.T) {
	q := NewQueue()
	q.Add("ns/p", 0, epoch, epoch)
	popNow(t, q)
	q.Failed("ns/p", HintNode|HintVolume, epoch)
	later := epoch.Add(time.Minute) // backoff long over
	if next := q.Flush(later); !next.Equal(epoch.Add(5 * time.Minute)) {
		t.Fatalf("next wake %v, want the 5 minute flush", next)
	}
	if a, b, u := q.Len(); a != 0 || b != 0 || u != 1 {
		t.Fatalf("active %d backoff %d unschedulable %d, want waiting unschedulable", a, b, u)
	}
	q.Move(HintPodAdded, later) // cannot help
	if _, _, u := q.Len(); u != 1 {
		t.Fatal("an unhelpful change moved the pod")
	}
	q.Move(HintVolume, later)
	if a, _, _ := q.Len(); a != 1 {
		t.Fatal("a helpful change did not move the pod to active")
	}
}

func TestQueueChangeDuringAttemptIsNotLost(t *testing.T) {
	q := NewQueue()
	q.Add("ns/p", 0, epoch, epoch)
	popNow(t, q)
	q.Move(HintNode, epoch) // while in flight
	q.Failed("ns/p", HintNode, epoch)
	if _, b, u := q.Len(); b != 1 || u != 0 {
		t.Fatalf("backoff %d unschedulable %d: the pod must retry after backoff", b, u)
	}
	q.Flush(epoch.Add(time.Second))
	if a, _, _ := q.Len(); a != 1 {
		t.Fatal("not retried after backoff")
	}

	// The same for an update of the pod itself.
	popNow(t, q)
	q.Add("ns/p", 0, epoch, epoch)
	q.Failed("ns/p", HintNode, epoch.Add(time.Second))
	if _, b, _ := q.Len(); b != 1 {
		t.Fatal("pod updated during its attempt must go to backoff")
	}
}

func TestQueueErrorsRetryAfterBackoff(t *testing.T) {
	q := NewQueue()
	q.Add("ns/p", 0, epoch, epoch)
	popNow(t, q)
	q.Failed("ns/p", 0, epoch)
	if next := q.Flush(epoch); !next.Equal(epoch.Add(time.Second)) {
		t.Fatalf("next wake %v", next)
	}
	q.Flush(epoch.Add(time.Second))
	if a, _, _ := q.Len(); a != 1 {
		t.Fatal("error not retried")
	}
}

func TestQueueLongWaitIsCapped(t *testing.T) {
	q := NewQueue()
	q.Add("ns/p", 0, epoch, epoch)
	popNow(t, q)
	q.Failed("ns/p", HintNode, epoch)
	q.Flush(epoch.Add(5 * time.Minute))
	if a, _, u := q.Len(); a != 1 || u != 0 {
		t.Fatal("pod not retried after waiting 5 minutes")
	}
}

func TestQueueDeleteAndUpdate(t *testing.T) {
	q := NewQueue()
	q.Add("ns/a", 0, epoch, epoch)
	q.Add("ns/b", 0, epoch, epoch)
	q.Delete("ns/a")
	if key := popNow(t, q); key != "ns/b" {
		t.Fatalf("popped %q", key)
	}
	q.Failed("ns/b", HintNode, epoch)
	q.Add("ns/b", 0, epoch, epoch.Add(time.Minute)) // the pod changed
	if a, _, u := q.Len(); a != 1 || u != 0 {
		t.Fatal("a changed unschedulable pod is retried")
	}
	q.Delete("ns/b")
	if a, b, u := q.Len(); a+b+u != 0 || q.Has("ns/b") {
		t.Fatal("delete left the pod behind")
	}
}

func TestQueueCloseWakesPop(t *testing.T) {
	q := NewQueue()
	done := make(chan bool)
	go func() {
		_, ok := q.Pop()
		done <- ok
	}()
	q.Close()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("Pop returned a pod from an empty closed queue")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pop still blocked after Close")
	}
}

func TestQueueWokenOnBackoff(t *testing.T) {
	q := NewQueue()
	q.Add("ns/p", 0, epoch, epoch)
	popNow(t, q)
	q.Failed("ns/p", 0, epoch)
	select {
	case <-q.Woken():
	default:
		t.Fatal("timer not woken when a pod entered backoff")
	}
}

func TestQueueDoneKeepsARecreatedPod(t *testing.T) {
	q := NewQueue()
	q.Add("ns/web-0", 0, epoch, epoch)
	popNow(t, q)
	q.Delete("ns/web-0")               // deleted during its attempt...
	q.Add("ns/web-0", 0, epoch, epoch) // ...and created again
	q.Done("ns/web-0")                 // the old attempt ends
	if a, _, _ := q.Len(); a != 1 {
		t.Fatal("the new pod was dropped")
	}
}
