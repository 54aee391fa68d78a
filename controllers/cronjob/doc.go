// Package cronjob is Skiff's CronJob controller: it starts a CronJob's
// Jobs on its cron schedule (in spec.timeZone, or the controller's zone),
// keeps status.active, lastScheduleTime and lastSuccessfulTime, applies
// the concurrency policy, and deletes finished Jobs beyond the history
// limits.
//
// # One reconcile
//
// Time is an input. Reconcile reads the CronJob and the Jobs it controls
// from the caches (asking the API about active Jobs the cache lacks),
// calls decide with the clock's now, and acts: delete the Jobs a Replace
// supersedes, create the new Job, delete old finished Jobs, write status,
// and ask to be woken at the next run.
//
//	              ┌───────────── suspended, bad schedule or zone: nothing
//	              │
//	reconcile ────┼─ no run due ─────────────────────────► wait for the next run
//	              │
//	              └─ most recent run t since lastScheduleTime (or creation),
//	                 no older than startingDeadlineSeconds
//	                    │ Job "<name>-<t in minutes>" already started ► wait
//	                    │ Forbid and a Job running ─────────────────────► wait
//	                    │ Replace: delete the running Jobs
//	                    v
//	                 create Job "<name>-<t in minutes>", lastScheduleTime = t
//
// Only the most recent missed run is started, however many were missed
// (more than 100 also records TooManyMissedTimes); a run older than
// startingDeadlineSeconds is skipped with MissSchedule. Because the Job's
// name is a function of the run's time, a run is never started twice, even
// across restarts of the controller or a lost status write.
//
// Jobs carry the annotation batch.kubernetes.io/cronjob-scheduled-timestamp
// (the run's time, RFC 3339, in the CronJob's zone) and the CronJob as
// controller. A Job made with `kubectl create job --from=cronjob/NAME` is
// controlled by the CronJob too: it is reported as UnexpectedJob, never
// deleted while it runs, and counted in the history once finished, as in
// Kubernetes.
//
// # Events
//
// SuccessfulCreate, SuccessfulDelete, SawCompletedJob, MissingJob,
// UnexpectedJob, JobAlreadyActive, MissSchedule, TooManyMissedTimes,
// UnparseableSchedule, UnknownTimeZone, FailedCreate, FailedDelete.
package cronjob
