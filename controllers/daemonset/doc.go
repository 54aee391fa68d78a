// Package daemonset is the DaemonSet controller: it keeps one pod of each
// DaemonSet on every node the DaemonSet fits, and none elsewhere, and rolls
// the pods over to a new template under the DaemonSet's update strategy.
//
// # Placement
//
// A node fits when the template's nodeName (if any) names it, its
// nodeSelector and required node affinity match the node, and its
// tolerations, plus the defaults every daemon pod gets (not-ready and
// unreachable NoExecute forever; disk-, memory-, pid-pressure and
// unschedulable NoSchedule; network-unavailable for host-network pods),
// tolerate the node's NoSchedule and NoExecute taints. A pod already on a
// node that fails only on NoSchedule taints stays. The controller does not
// bind pods: it pins each pod to its node with a required node affinity
// term on metadata.name, and the scheduler binds it there.
//
// # One pass
//
//	placement  create a pod on each fitting node without one; delete finished
//	           pods, extra pods, pods on nodes that no longer fit, and unbound
//	           pods pinned to nodes that are gone
//	   │ (only when placement has nothing to do)
//	   v
//	rollout    RollingUpdate without surge: delete old pods while at most
//	           maxUnavailable nodes lack an available pod (placement then
//	           recreates them from the new template)
//	           RollingUpdate with maxSurge: start a new pod beside an old one
//	           (at most maxSurge nodes at a time); delete the old pod once the
//	           new one is available
//	           OnDelete: nothing; pods change only when someone deletes them
//	   │
//	   v
//	status     desired/current/misscheduled/ready/available/updated counts
//
// The decision is the pure function decide (plan.go); the Controller reads
// the listers, claims pods and ControllerRevisions, carries the plan out
// and writes status. The template's revision is kept as a ControllerRevision
// named <daemonset>-<hash> (package history), and each pod carries the hash
// in its controller-revision-hash label.
package daemonset
