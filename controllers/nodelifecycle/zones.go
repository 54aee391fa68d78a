package nodelifecycle

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// zoneState is how much of a zone is unhealthy.
//
//	normal   fewer than 3 nodes, or less than the threshold share, not ready
//	partial  at least 3 nodes and at least the threshold share not ready
//	full     every node not ready
type zoneState int

const (
	zoneNormal zoneState = iota
	zonePartial
	zoneFull
)

func (s zoneState) String() string {
	return [...]string{"Normal", "PartialDisruption", "FullDisruption"}[s]
}

// zoneOf is a node's failure domain: its region and zone labels.
func zoneOf(node *corev1.Node) string {
	region := node.Labels[corev1.LabelTopologyRegion]
	if region == "" {
		region = node.Labels[corev1.LabelFailureDomainBetaRegion]
	}
	zone := node.Labels[corev1.LabelTopologyZone]
	if zone == "" {
		zone = node.Labels[corev1.LabelFailureDomainBetaZone]
	}
	return region + "/" + zone
}

// classify a zone from its counts of ready and not ready nodes.
func classify(ready, notReady int, unhealthyThreshold float64) zoneState {
	switch {
	case notReady > 0 && ready == 0:
		return zoneFull
	case notReady > 2 && float64(notReady)/float64(ready+notReady) >= unhealthyThreshold:
		return zonePartial
	}
	return zoneNormal
}

// zoneCounts counts ready and not ready nodes per zone.
type zoneCounts struct{ ready, notReady int }

func countZones(nodes []*corev1.Node) map[string]zoneCounts {
	out := map[string]zoneCounts{}
	for _, n := range nodes {
		c := out[zoneOf(n)]
		if readyStatus(n) == corev1.ConditionTrue {
			c.ready++
		} else {
			c.notReady++
		}
		out[zoneOf(n)] = c
	}
	return out
}

// rates is the eviction policy: how many nodes per second may get a
// NoExecute taint, per zone.
type rates struct {
	primary, secondary    float64
	unhealthyThreshold    float64
	largeClusterThreshold int
}

// zoneRates decides each zone's state and eviction rate. A partly
// disrupted zone slows to the secondary rate (to none when it is small:
// at most largeClusterThreshold nodes); a fully disrupted zone keeps the
// primary rate, unless every zone is fully disrupted, when evictions halt
// altogether (halted) because the likelier fault is the controller's view
// of the cluster, not every node at once.
func zoneRates(counts map[string]zoneCounts, r rates) (states map[string]zoneState, perZone map[string]float64, halted bool) {
	states = map[string]zoneState{}
	perZone = map[string]float64{}
	halted = len(counts) > 0
	for z, c := range counts {
		s := classify(c.ready, c.notReady, r.unhealthyThreshold)
		states[z] = s
		if s != zoneFull {
			halted = false
		}
	}
	for z, s := range states {
		switch {
		case halted:
			perZone[z] = 0
		case s == zonePartial && counts[z].ready+counts[z].notReady > r.largeClusterThreshold:
			perZone[z] = r.secondary
		case s == zonePartial:
			perZone[z] = 0
		default:
			perZone[z] = r.primary
		}
	}
	return states, perZone, halted
}

// bucket is a token bucket with time as an input: rate tokens a second,
// up to burst, starting full.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate, burst float64, now time.Time) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

func (b *bucket) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// take spends a token if there is one; a zero rate gives none at all.
func (b *bucket) take(now time.Time) bool {
	b.refill(now)
	if b.rate > 0 && b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// refund gives back a token whose taint could not be written.
func (b *bucket) refund() { b.tokens = min(b.burst, b.tokens+1) }

// wait is how long until a token is there; ok is false when the rate is
// zero and none will come.
func (b *bucket) wait(now time.Time) (time.Duration, bool) {
	b.refill(now)
	if b.rate <= 0 {
		return 0, false
	}
	if b.tokens >= 1 {
		return 0, true
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second)), true
}

// setRate changes the rate from now on.
func (b *bucket) setRate(rate float64, now time.Time) {
	b.refill(now)
	b.rate = rate
}
