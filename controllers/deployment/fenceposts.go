package deployment

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// defaultFencepost is the API's default for maxSurge and maxUnavailable.
var defaultFencepost = intstr.FromString("25%")

// ResolveFenceposts turns a rolling update's maxSurge and maxUnavailable
// (absolute numbers or percentages of replicas) into numbers of pods.
// Percentages round up for the surge and down for unavailability, so a
// rollout of 1 replica with 25%/25% may add one pod and lose none. When
// both come to 0 (small percentages of few replicas) unavailability
// becomes 1, or nothing could ever move.
func ResolveFenceposts(maxSurge, maxUnavailable *intstr.IntOrString, replicas int32) (surge, unavailable int32, err error) {
	if maxSurge == nil {
		maxSurge = &defaultFencepost
	}
	if maxUnavailable == nil {
		maxUnavailable = &defaultFencepost
	}
	s, err := intstr.GetScaledValueFromIntOrPercent(maxSurge, int(replicas), true)
	if err != nil {
		return 0, 0, fmt.Errorf("maxSurge: %w", err)
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, int(replicas), false)
	if err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u), nil
}

// replicasOf is d's desired replicas (the API defaults it to 1).
func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func isRolling(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType
}

// fenceposts are d's resolved maxSurge and maxUnavailable. A Recreate
// deployment has neither. Unavailability never exceeds replicas, and is 0
// for a deployment scaled to 0.
func fenceposts(d *appsv1.Deployment) (surge, unavailable int32, err error) {
	if !isRolling(d) {
		return 0, 0, nil
	}
	var ms, mu *intstr.IntOrString
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		ms, mu = ru.MaxSurge, ru.MaxUnavailable
	}
	r := replicasOf(d)
	surge, unavailable, err = ResolveFenceposts(ms, mu, r)
	if err != nil {
		return 0, 0, err
	}
	if r == 0 {
		unavailable = 0
	}
	return surge, min(unavailable, r), nil
}
