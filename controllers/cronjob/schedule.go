package cronjob

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// A schedule in the standard five-field cron syntax, as CronJobs use it:
//
//	┌───────────── minute (0-59)
//	│ ┌─────────── hour (0-23)
//	│ │ ┌───────── day of the month (1-31)
//	│ │ │ ┌─────── month (1-12 or JAN-DEC)
//	│ │ │ │ ┌───── day of the week (0-6 or SUN-SAT; 0 is Sunday)
//	│ │ │ │ │
//	* * * * *
//
// Each field is a comma-separated list of items: "*" (or "?"), a value, a
// range "a-b", each optionally with a step "/n" ("*/15", "1-30/2"; "a/n"
// means a to the end of the range). Names are case-insensitive. When both
// day fields are restricted, a day matching either runs (cron's classic
// rule); when one is "*", only the other counts. The descriptors @yearly
// (or @annually), @monthly, @weekly, @daily (or @midnight) and @hourly
// stand for the obvious schedules. A leading "TZ=<zone>" or
// "CRON_TZ=<zone>" gives the schedule its own time zone (spec.timeZone is
// the way to do that today; old objects may still carry the prefix).
// "@every <duration>" (a Go duration, at least one second) runs at that
// interval, as the cron library behind Kubernetes' validation and
// controller does: each run one interval after the previous.
//
// Times are matched on the wall clock of the schedule's time zone. Across
// daylight saving changes that means: a wall time skipped when clocks go
// forward does not run that day (02:30 on the spring-forward night in
// Europe/Berlin), and a wall time that happens twice when clocks go back
// runs twice (01:30 on the fall-back night in America/New_York), as the
// cron library Kubernetes uses does.

// schedule is a parsed cron schedule: one bit per allowed value per field.
type schedule struct {
	minute, hour, dom, month, dow uint64
	// domStar and dowStar record an unrestricted day field ("*", "?").
	domStar, dowStar bool
	// loc is the zone of a TZ= prefix, or nil.
	loc *time.Location
	// every, when set, is an "@every" interval; the fields are then unused.
	every time.Duration
}

// field describes one of the five fields.
type field struct {
	name     string
	min, max int
	names    map[string]int
}

var fields = [5]field{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}},
	{name: "day of week", min: 0, max: 6, names: map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}},
}

var descriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// parseSchedule reads a cron schedule.
func parseSchedule(spec string) (*schedule, error) {
	spec = strings.TrimSpace(spec)
	s := &schedule{}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		prefix, rest, _ := strings.Cut(spec, " ")
		_, zone, _ := strings.Cut(prefix, "=")
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %q: %w", zone, err)
		}
		s.loc = loc
		spec = strings.TrimSpace(rest)
	}
	if spec == "" {
		return nil, errors.New("empty schedule")
	}
	if rest, ok := strings.CutPrefix(strings.ToLower(spec), "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("@every: %w", err)
		}
		if d < time.Second {
			return nil, fmt.Errorf("@every %v: the interval must be at least one second", d)
		}
		s.every = d.Truncate(time.Second)
		return s, nil
	}
	if strings.HasPrefix(spec, "@") {
		expanded, ok := descriptors[strings.ToLower(spec)]
		if !ok {
			return nil, fmt.Errorf("unsupported descriptor %q (Kubernetes knows @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly and @every <duration>)", spec)
		}
		spec = expanded
	}
	parts := strings.Fields(spec)
	if len(parts) != len(fields) {
		return nil, fmt.Errorf("expected 5 fields (minute hour day-of-month month day-of-week), found %d in %q", len(parts), spec)
	}
	targets := [5]*uint64{&s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i, part := range parts {
		star := false
		for _, item := range strings.Split(part, ",") {
			b, isStar, err := fields[i].parse(item)
			if err != nil {
				return nil, fmt.Errorf("%s field %q: %w", fields[i].name, part, err)
			}
			*targets[i] |= b
			star = star || isStar
		}
		switch i {
		case 2:
			s.domStar = star
		case 4:
			s.dowStar = star
		}
	}
	return s, nil
}

// parse reads one item of a field into its bits; star reports an
// unrestricted item ("*" or "?", without a step above 1).
func (f field) parse(item string) (b uint64, star bool, err error) {
	rng, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		if step, err = strconv.Atoi(stepText); err != nil || step <= 0 {
			return 0, false, fmt.Errorf("step %q must be a positive number", stepText)
		}
	}
	first, last := f.min, f.max
	if rng == "*" || rng == "?" {
		star = step == 1
	} else {
		lo, hi, isRange := strings.Cut(rng, "-")
		if first, err = f.value(lo); err != nil {
			return 0, false, err
		}
		last = first
		switch {
		case isRange:
			if last, err = f.value(hi); err != nil {
				return 0, false, err
			}
		case hasStep:
			last = f.max
		}
	}
	switch {
	case first < f.min || last > f.max:
		return 0, false, fmt.Errorf("%q is outside %d-%d", item, f.min, f.max)
	case first > last:
		return 0, false, fmt.Errorf("range %q runs backwards", item)
	}
	for v := first; v <= last; v += step {
		b |= 1 << uint(v)
	}
	return b, star, nil
}

// value reads a number or, where the field has them, a name.
func (f field) value(s string) (int, error) {
	if v, ok := f.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

// searchYears bounds how far next looks: a schedule that names a day that
// does not come (February 30) never runs.
const searchYears = 9

// next returns the first time strictly after t at which the schedule
// runs, in its own zone or else loc; zero if it never does.
func (s *schedule) next(t time.Time, loc *time.Location) time.Time {
	if s.every > 0 {
		// One interval later, on a whole second.
		return t.Add(s.every - time.Duration(t.Nanosecond())).Truncate(time.Second)
	}
	if s.loc != nil {
		loc = s.loc
	}
	t = t.In(loc)
	// The next whole minute of the wall clock.
	t = t.Add(time.Minute - time.Duration(t.Second())*time.Second - time.Duration(t.Nanosecond()))
	limit := t.AddDate(searchYears, 0, 0)
	for t.Before(limit) {
		switch {
		case s.month&(1<<uint(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		case !s.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		case s.hour&(1<<uint(t.Hour())) == 0:
			// To the next wall-clock hour, in absolute time, so an hour
			// that happens twice is visited twice and a skipped one never.
			t = t.Add(time.Hour - time.Duration(t.Minute())*time.Minute)
		case s.minute&(1<<uint(t.Minute())) == 0:
			t = t.Add(time.Duration(s.minutesToNext(t.Minute())) * time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}

// minutesToNext is how many minutes from minute m to the next allowed
// minute in this hour, or to the end of the hour if there is none.
func (s *schedule) minutesToNext(m int) int {
	rest := s.minute >> uint(m)
	if rest == 0 {
		return 60 - m
	}
	return bits.TrailingZeros64(rest)
}

// dayMatches applies cron's day rule to t's date.
func (s *schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// maxMissed is how many missed runs Kubernetes tolerates before it warns
// (TooManyMissedTimes); only the most recent is started either way.
const maxMissed = 100

// mostRecent returns the latest run time in (after, now], and how many
// there are up to maxMissed+1 (more says "more than maxMissed"). ok is
// false when there is none.
func (s *schedule) mostRecent(after, now time.Time, loc *time.Location) (latest time.Time, missed int, ok bool) {
	for t := s.next(after, loc); !t.IsZero() && !t.After(now); t = s.next(t, loc) {
		latest, missed, ok = t, missed+1, true
		if missed > maxMissed {
			break
		}
	}
	if missed <= maxMissed {
		return latest, missed, ok
	}
	// Many runs were missed: find the latest by looking back over growing
	// windows instead of walking every run since after.
	for _, w := range []time.Duration{time.Hour, 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 10 * 367 * 24 * time.Hour} {
		from := now.Add(-w)
		if from.Before(latest) {
			from = latest
		}
		found := false
		for t := s.next(from, loc); !t.IsZero() && !t.After(now); t = s.next(t, loc) {
			latest, found = t, true
		}
		if found || from.Equal(latest) {
			break
		}
	}
	return latest, missed, true
}
