package replicaset

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DefaultBurstReplicas bounds the creations or deletions one reconcile
// asks for, as Kubernetes' 500; the rest wait for the next reconcile.
const DefaultBurstReplicas = 500

// Decision is what a set does about its pods in one reconcile: create
// Create pods from its template, or delete the pods in Delete. At most one
// of the two is non-zero.
type Decision struct {
	Create int
	Delete []*corev1.Pod
}

// Input is what Decide reads about a set.
type Input struct {
	Replicas int32
	// Owned are the set's active pods.
	Owned []*corev1.Pod
	// Related are the active pods of the set and its siblings, used to
	// rank deletions (see RankForDeletion).
	Related         []*corev1.Pod
	MinReadySeconds int32
	Now             time.Time
	// Burst bounds the creations or deletions; <= 0 means
	// DefaultBurstReplicas.
	Burst int
}

// Decide compares a set's replicas with its active pods and returns what
// to create or delete.
func Decide(in Input) Decision {
	burst := in.Burst
	if burst <= 0 {
		burst = DefaultBurstReplicas
	}
	diff := len(in.Owned) - int(in.Replicas)
	switch {
	case diff < 0:
		return Decision{Create: min(-diff, burst)}
	case diff > 0:
		return Decision{Delete: PodsToDelete(in.Owned, in.Related, min(diff, burst), in.MinReadySeconds, in.Now)}
	}
	return Decision{}
}

// SlowStart is the first batch of SlowStartBatch, as Kubernetes'
// SlowStartInitialBatchSize.
const SlowStart = 1

// SlowStartBatch calls fn count times in batches that double in size,
// starting with initial (1, 2, 4, ... when initial is 1), the calls of one
// batch running in parallel. It stops after the first batch in which any
// call fails, so a systematic failure (a quota, an admission rule) costs
// one call instead of count, and returns how many calls succeeded and one
// of the errors.
func SlowStartBatch(count, initial int, fn func() error) (int, error) {
	remaining, done := count, 0
	for batch := min(remaining, max(initial, 1)); batch > 0; batch = min(2*batch, remaining) {
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fn(); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		done += batch - len(errs)
		if err, failed := <-errs; failed {
			return done, err
		}
		remaining -= batch
	}
	return done, nil
}
