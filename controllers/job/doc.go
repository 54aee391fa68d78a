// Package job is Skiff's Job controller: it runs a Job's pods until enough
// of them succeed (spec.completions, at most spec.parallelism at a time) or
// the Job fails, counting every finished pod exactly once, and deletes
// finished Jobs whose ttlSecondsAfterFinished has passed.
//
// # What one reconcile does
//
// The Reconcile method reads the Job and the pods it controls from the
// informer caches (adopting matching orphans and releasing pods that no
// longer match, as Kubernetes does), hands them with the time to decide,
// a pure function, and carries out its plan: delete pods, create pods,
// write status, remove tracking finalizers, write status again (see
// track.go for why counting takes three steps).
//
// # A Job's life
//
//	          created (startTime set unless suspended)
//	              │
//	              v
//	   ┌──── running ◄─────────── resumed (Suspended=False, startTime reset)
//	   │      │   │  ▲                ▲
//	   │      │   │  └─ pods fail:    │
//	   │      │   │     re-created after 10s, 20s, 40s ... (max 6m)
//	   │      │   └────────────► suspended (pods deleted, Suspended=True)
//	   │      │
//	   │      │ enough succeeded, none running
//	   │      v
//	   │   SuccessCriteriaMet ──(all pods counted, none terminating)──► Complete
//	   │
//	   │ a FailJob rule matched (PodFailurePolicy), failures > backoffLimit
//	   │ (BackoffLimitExceeded), activeDeadlineSeconds passed
//	   │ (DeadlineExceeded), too many failed indexes
//	   v
//	FailureTarget (running pods deleted) ──(all counted, none terminating)──► Failed
//	                                                                           │
//	Complete or Failed, with ttlSecondsAfterFinished: deleted (background) ◄───┘
//	that many seconds after finishing
//
// The interim conditions (SuccessCriteriaMet, FailureTarget) come first
// and the terminal ones (Complete, Failed) only once no pod of the Job is
// left running or uncounted, as Kubernetes 1.31+ does; `kubectl wait
// --for=condition=complete` waits for the latter.
//
// # Indexed Jobs
//
// With completionMode Indexed each pod has an index in 0..completions-1,
// in its annotation and label batch.kubernetes.io/job-completion-index,
// its hostname "<job>-<index>" and its containers' JOB_COMPLETION_INDEX
// (through the downward API); pods are named "<job>-<index>-<random>".
// Succeeded indexes are recorded in status.completedIndexes ("0-2,5"), and
// with backoffLimitPerIndex failed ones in status.failedIndexes (see
// perindex.go).
//
// # Events
//
// SuccessfulCreate, SuccessfulDelete, FailedCreate, FailedDelete,
// Suspended, Resumed, Completed, and on failure the condition's reason:
// BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy,
// MaxFailedIndexesExceeded, FailedIndexes.
package job
