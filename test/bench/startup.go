package main

import (
	"context"
	"fmt"
	"time"
)

// StartupResult is measurement 1: exec of `skiff server` to /readyz 200,
// on an empty data dir and again on the same dir (a restart).
type StartupResult struct {
	FreshSeconds   Stat `json:"fresh_seconds"`
	RestartSeconds Stat `json:"restart_seconds"`
}

// settle is a pause between one server's exit and the next start, so the
// previous process's last disk writes do not land in the next figure.
const settle = 500 * time.Millisecond

func measureStartup(ctx context.Context, e *env) error {
	var fresh, restart []float64
	for i := range e.opts.runs {
		dir := e.lab.NewDataDir("startup")
		s, err := e.lab.Start(ctx, dir)
		if err != nil {
			return fmt.Errorf("fresh start: %w", err)
		}
		if err := s.Stop(); err != nil {
			return err
		}
		if err := sleep(ctx, settle); err != nil {
			return err
		}
		s2, err := e.lab.Start(ctx, dir)
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		if err := s2.Stop(); err != nil {
			return err
		}
		if err := e.lab.RemoveDataDir(dir); err != nil {
			return err
		}
		fresh = append(fresh, s.StartToReady.Seconds())
		restart = append(restart, s2.StartToReady.Seconds())
		e.progress("startup run %d/%d: fresh %.3f s, restart %.3f s", i+1, e.opts.runs, fresh[i], restart[i])
		if err := sleep(ctx, settle); err != nil {
			return err
		}
	}
	r := &StartupResult{FreshSeconds: Summarize(fresh), RestartSeconds: Summarize(restart)}
	e.rep.StartToReady = r
	e.rep.add("start to ready (fresh)", "%s", fmtStat(r.FreshSeconds, "s", 3))
	e.rep.add("start to ready (restart)", "%s", fmtStat(r.RestartSeconds, "s", 3))
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
