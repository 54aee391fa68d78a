package leader_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/controllers/leader"
	"github.com/skiff-sh/skiff/test/framework"
)

// Short timings for tests: a rival may take over 3s after the last renewal;
// a cut-off leader gives up at most 0.5s + 2s after it.
var fast = leader.Options{
	Name:          "test-lease",
	LeaseDuration: 3 * time.Second,
	RenewDeadline: 2 * time.Second,
	RetryPeriod:   500 * time.Millisecond,
	Log:           slog.New(slog.DiscardHandler),
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    leader.Options
		wantErr bool
	}{
		{"defaults", leader.Options{Name: "n", Identity: "a"}, false},
		{"fast", leader.Options{Name: "n", Identity: "a", LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}, false},
		{"no name", leader.Options{Identity: "a"}, true},
		{"no identity", leader.Options{Name: "n"}, true},
		{"renew deadline not under lease", leader.Options{Name: "n", Identity: "a", LeaseDuration: 10 * time.Second, RenewDeadline: 10 * time.Second}, true},
		{"retry plus renew reaches lease", leader.Options{Name: "n", Identity: "a", LeaseDuration: 12 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}, true},
		{"renew deadline within jitter of retry", leader.Options{Name: "n", Identity: "a", LeaseDuration: 10 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 2 * time.Second}, true},
		{"negative", leader.Options{Name: "n", Identity: "a", RetryPeriod: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// history records when each candidate's lead ran.
type history struct {
	mu    sync.Mutex
	terms []termRecord
}

type termRecord struct {
	who        string
	start, end time.Time // end is zero while leading
}

// lead returns a lead function for who that holds until its context ends.
func (h *history) lead(who string) func(context.Context) {
	return func(ctx context.Context) {
		h.mu.Lock()
		i := len(h.terms)
		h.terms = append(h.terms, termRecord{who: who, start: time.Now()})
		h.mu.Unlock()
		<-ctx.Done()
		h.mu.Lock()
		h.terms[i].end = time.Now()
		h.mu.Unlock()
	}
}

// leaders is who leads now.
func (h *history) leaders() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, t := range h.terms {
		if t.end.IsZero() {
			out = append(out, t.who)
		}
	}
	return out
}

func (h *history) last(who string) termRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.terms) - 1; i >= 0; i-- {
		if h.terms[i].who == who {
			return h.terms[i]
		}
	}
	return termRecord{}
}

// waitLeader waits until exactly one candidate leads and returns it.
func (h *history) waitLeader(t *testing.T, within time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if l := h.leaders(); len(l) == 1 && (len(want) == 0 || l[0] == want[0]) {
			return l[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no single leader %v within %v; leading now: %v", want, within, h.leaders())
	return ""
}

// checkNoOverlap fails if two terms of different candidates overlap.
func (h *history) checkNoOverlap(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, a := range h.terms {
		for _, b := range h.terms[i+1:] {
			aEnd, bEnd := a.end, b.end
			if aEnd.IsZero() {
				aEnd = time.Now()
			}
			if bEnd.IsZero() {
				bEnd = time.Now()
			}
			if a.start.Before(bEnd) && b.start.Before(aEnd) {
				t.Errorf("terms overlap: %s %v..%v and %s %v..%v", a.who, a.start, a.end, b.who, b.start, b.end)
			}
		}
	}
}

// candidate runs Run in the background.
type candidate struct {
	cancel context.CancelFunc
	done   chan error
}

func start(client kubernetes.Interface, opts leader.Options, lead func(context.Context)) *candidate {
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- leader.Run(ctx, client, opts, lead) }()
	return c
}

func (c *candidate) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("Run did not return within 15s of cancel")
	}
}

// partition is a transport switch: while cut, every request fails.
type partition struct {
	cut atomic.Bool
	rt  http.RoundTripper
}

func (p *partition) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.cut.Load() {
		return nil, errors.New("partitioned")
	}
	return p.rt.RoundTrip(r)
}

func partitionedClient(t *testing.T, srv *framework.Server) (kubernetes.Interface, *partition) {
	t.Helper()
	p := &partition{}
	cfg := srv.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { p.rt = rt; return p }
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client, p
}

func withIdentity(o leader.Options, name, id string) leader.Options {
	o.Name, o.Identity = name, id
	return o
}

func TestHandoverWhenTheLeaderStops(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	h := &history{}
	cands := map[string]*candidate{
		"a": start(client, withIdentity(fast, "handover", "a"), h.lead("a")),
		"b": start(client, withIdentity(fast, "handover", "b"), h.lead("b")),
	}
	first := h.waitLeader(t, 10*time.Second)
	// Both campaign for a while; still one leader.
	time.Sleep(2 * fast.LeaseDuration)
	if l := h.leaders(); len(l) != 1 || l[0] != first {
		t.Fatalf("leaders %v after %v, want just %s", l, 2*fast.LeaseDuration, first)
	}
	other := map[string]string{"a": "b", "b": "a"}[first]

	stopped := time.Now()
	cands[first].stop(t)
	// The stopped leader released the lease, so the other takes over well
	// within a lease duration.
	h.waitLeader(t, fast.LeaseDuration, other)
	if took := time.Since(stopped); took > fast.LeaseDuration {
		t.Errorf("takeover took %v", took)
	}
	cands[other].stop(t)
	h.checkNoOverlap(t)
	if l := h.leaders(); len(l) != 0 {
		t.Errorf("still leading after both stopped: %v", l)
	}

	lease, err := client.CoordinationV1().Leases("kube-system").Get(context.Background(), "handover", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hid := lease.Spec.HolderIdentity; hid != nil && *hid != "" {
		t.Errorf("lease still held by %q after both stopped", *hid)
	}
}

func TestCutOffLeaderStopsBeforeASuccessorStarts(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	h := &history{}
	clientA, netA := partitionedClient(t, srv)
	a := start(clientA, withIdentity(fast, "partition", "a"), h.lead("a"))
	h.waitLeader(t, 10*time.Second, "a")
	b := start(srv.Client(), withIdentity(fast, "partition", "b"), h.lead("b"))
	time.Sleep(fast.LeaseDuration) // b is a follower now

	cut := time.Now()
	netA.cut.Store(true)
	h.waitLeader(t, 3*fast.LeaseDuration, "b")
	aTerm, bTerm := h.last("a"), h.last("b")
	if stoppedAfter := aTerm.end.Sub(cut); stoppedAfter > fast.RetryPeriod+fast.RenewDeadline+500*time.Millisecond {
		t.Errorf("cut-off leader stopped %v after the cut, want within retry period + renew deadline", stoppedAfter)
	}
	if !aTerm.end.Before(bTerm.start) {
		t.Errorf("a stopped at %v, not before b started at %v", aTerm.end, bTerm.start)
	}
	t.Logf("a stopped %v after the cut; b started %v after it", aTerm.end.Sub(cut), bTerm.start.Sub(cut))

	// a comes back, campaigns again, and follows while b leads.
	netA.cut.Store(false)
	time.Sleep(2 * fast.LeaseDuration)
	if l := h.leaders(); len(l) != 1 || l[0] != "b" {
		t.Fatalf("leaders %v after a rejoined, want [b]", l)
	}
	// When b stops, a leads again: its Run kept campaigning.
	b.stop(t)
	h.waitLeader(t, 2*fast.LeaseDuration, "a")
	a.stop(t)
	h.checkNoOverlap(t)
}

func TestLeadThatReturnsHandsOver(t *testing.T) {
	srv := framework.StartServer(t, framework.Options{})
	client := srv.Client()
	h := &history{}
	var aCalls atomic.Int32
	failing := func(ctx context.Context) {
		if aCalls.Add(1) == 1 {
			return // its work failed at once
		}
		h.lead("a")(ctx)
	}
	a := start(client, withIdentity(fast, "giveup", "a"), failing)
	deadline := time.Now().Add(10 * time.Second)
	for aCalls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if aCalls.Load() == 0 {
		t.Fatal("a never led")
	}
	// a released the lease and stands aside: b takes over without
	// waiting out a lease duration.
	b := start(client, withIdentity(fast, "giveup", "b"), h.lead("b"))
	h.waitLeader(t, fast.LeaseDuration, "b")
	// When b stops, a, still campaigning, leads again.
	b.stop(t)
	h.waitLeader(t, 3*fast.LeaseDuration, "a")
	a.stop(t)
	h.checkNoOverlap(t)
	if n := aCalls.Load(); n != 2 {
		t.Errorf("a's lead called %d times, want 2", n)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	err := leader.Run(context.Background(), nil, leader.Options{Name: "x"}, func(context.Context) {})
	if err == nil {
		t.Fatal("Run without identity: no error")
	}
	if want := "identity"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
}
