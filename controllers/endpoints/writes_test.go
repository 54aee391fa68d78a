package endpoints

import (
	"testing"
	"time"
)

func TestWrites(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	w := newWrites(time.Minute)
	const svc = "ns/web"

	if w.pending(svc, "slice/", t0) {
		t.Fatal("pending with nothing written")
	}
	w.wrote(svc, "slice/web-a", "10", t0)
	w.wrote(svc, "endpoints", "11", t0)
	if !w.pending(svc, "slice/", t0) || !w.pending(svc, "endpoints", t0) {
		t.Fatal("writes not pending")
	}
	// An older version of the slice (an event from before the write) does
	// not settle it; the written one does.
	if w.observe(svc, "slice/web-a", "9", false) {
		t.Error("older version settled the write")
	}
	if !w.observe(svc, "slice/web-a", "10", false) {
		t.Error("written version did not settle")
	}
	if w.pending(svc, "slice/", t0) {
		t.Error("slice still pending")
	}
	if !w.pending(svc, "endpoints", t0) {
		t.Error("endpoints settled by a slice event")
	}
	// A later version settles too (the informer relisted past ours).
	if !w.observe(svc, "endpoints", "15", false) {
		t.Error("later version did not settle")
	}
	// Other services and unknown objects settle nothing.
	if w.observe("ns/other", "endpoints", "99", false) {
		t.Error("unknown service settled")
	}

	// A deletion is settled by the object's disappearance only.
	w.deleted(svc, "slice/web-b", t0)
	if w.observe(svc, "slice/web-b", "20", false) {
		t.Error("an update settled a deletion")
	}
	if !w.observe(svc, "slice/web-b", "", true) {
		t.Error("the delete event did not settle")
	}
	// A write whose object was deleted by someone else is settled too.
	w.wrote(svc, "slice/web-c", "30", t0)
	if !w.observe(svc, "slice/web-c", "29", true) {
		t.Error("deletion did not settle a write")
	}

	// Non-numeric versions must match exactly.
	w.wrote(svc, "endpoints", "abc", t0)
	if w.observe(svc, "endpoints", "abd", false) {
		t.Error("different opaque version settled")
	}
	// Unseen writes expire.
	if !w.pending(svc, "endpoints", t0.Add(time.Minute)) {
		t.Error("expired at exactly the TTL")
	}
	if w.pending(svc, "endpoints", t0.Add(time.Minute+time.Second)) {
		t.Error("not expired after the TTL")
	}
}
