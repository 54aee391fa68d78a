package cronjob

import (
	"strings"
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseScheduleErrors(t *testing.T) {
	for _, spec := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
		"* * * 13 *", "* * * * 7", "5-1 * * * *", "*/0 * * * *", "*/x * * * *", "1-2-3 * * * *",
		"a * * * *", "* * * foo *", "@every 500ms", "@every soon", "@reboot", "TZ=Nowhere/City * * * * *", "TZ=UTC",
	} {
		if _, err := parseSchedule(spec); err == nil {
			t.Errorf("parseSchedule(%q) accepted", spec)
		}
	}
}

func TestNext(t *testing.T) {
	utc := time.UTC
	ny := mustZone(t, "America/New_York")
	berlin := mustZone(t, "Europe/Berlin")
	kolkata := mustZone(t, "Asia/Kolkata")
	at := func(loc *time.Location, s string) time.Time {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		spec  string
		loc   *time.Location
		from  time.Time
		wants []time.Time // successive runs
	}{
		{name: "every minute", spec: "* * * * *", loc: utc, from: at(utc, "2025-01-01 12:00").Add(30 * time.Second),
			wants: []time.Time{at(utc, "2025-01-01 12:01"), at(utc, "2025-01-01 12:02")}},
		{name: "strictly after a run", spec: "* * * * *", loc: utc, from: at(utc, "2025-01-01 12:00"),
			wants: []time.Time{at(utc, "2025-01-01 12:01")}},
		{name: "steps", spec: "*/15 * * * *", loc: utc, from: at(utc, "2025-01-01 12:44"),
			wants: []time.Time{at(utc, "2025-01-01 12:45"), at(utc, "2025-01-01 13:00"), at(utc, "2025-01-01 13:15")}},
		{name: "a/n runs from a to the end", spec: "5/20 * * * *", loc: utc, from: at(utc, "2025-01-01 12:00"),
			wants: []time.Time{at(utc, "2025-01-01 12:05"), at(utc, "2025-01-01 12:25"), at(utc, "2025-01-01 12:45"), at(utc, "2025-01-01 13:05")}},
		{name: "lists and ranges with steps", spec: "0 1,3-9/3,22 * * *", loc: utc, from: at(utc, "2025-01-01 00:00"),
			wants: []time.Time{at(utc, "2025-01-01 01:00"), at(utc, "2025-01-01 03:00"), at(utc, "2025-01-01 06:00"),
				at(utc, "2025-01-01 09:00"), at(utc, "2025-01-01 22:00"), at(utc, "2025-01-02 01:00")}},
		{name: "weekdays by name", spec: "0 9 * * MON-FRI", loc: utc, from: at(utc, "2025-01-03 10:00"), // a Friday
			wants: []time.Time{at(utc, "2025-01-06 09:00"), at(utc, "2025-01-07 09:00")}},
		{name: "months by name, any case", spec: "0 0 1 jan,Jul *", loc: utc, from: at(utc, "2025-02-01 00:00"),
			wants: []time.Time{at(utc, "2025-07-01 00:00"), at(utc, "2026-01-01 00:00")}},
		{name: "@hourly", spec: "@hourly", loc: utc, from: at(utc, "2025-01-01 12:30"), wants: []time.Time{at(utc, "2025-01-01 13:00")}},
		{name: "@daily", spec: "@daily", loc: utc, from: at(utc, "2025-01-01 12:30"), wants: []time.Time{at(utc, "2025-01-02 00:00")}},
		{name: "@midnight", spec: "@midnight", loc: utc, from: at(utc, "2025-01-01 12:30"), wants: []time.Time{at(utc, "2025-01-02 00:00")}},
		{name: "@weekly is Sunday midnight", spec: "@weekly", loc: utc, from: at(utc, "2025-01-01 12:30"), wants: []time.Time{at(utc, "2025-01-05 00:00")}},
		{name: "@monthly", spec: "@monthly", loc: utc, from: at(utc, "2025-01-31 12:30"), wants: []time.Time{at(utc, "2025-02-01 00:00")}},
		{name: "@yearly", spec: "@yearly", loc: utc, from: at(utc, "2025-01-01 00:00"), wants: []time.Time{at(utc, "2026-01-01 00:00")}},
		{name: "@annually", spec: "@ANNUALLY", loc: utc, from: at(utc, "2025-06-01 00:00"), wants: []time.Time{at(utc, "2026-01-01 00:00")}},
		{name: "the 31st skips short months", spec: "0 0 31 * *", loc: utc, from: at(utc, "2025-01-31 00:00"),
			wants: []time.Time{at(utc, "2025-03-31 00:00"), at(utc, "2025-05-31 00:00")}},
		{name: "February 29th waits for a leap year", spec: "0 0 29 2 *", loc: utc, from: at(utc, "2025-01-01 00:00"),
			wants: []time.Time{at(utc, "2028-02-29 00:00"), at(utc, "2032-02-29 00:00")}},
		{name: "both day fields restricted: either matches", spec: "0 0 13 * FRI", loc: utc, from: at(utc, "2025-06-01 00:00"),
			wants: []time.Time{at(utc, "2025-06-06 00:00"), at(utc, "2025-06-13 00:00"), at(utc, "2025-06-20 00:00")}},
		{name: "day of month with a step and day of week *: only the days of month", spec: "0 0 */10 * *", loc: utc, from: at(utc, "2025-01-01 00:00"),
			wants: []time.Time{at(utc, "2025-01-11 00:00"), at(utc, "2025-01-21 00:00"), at(utc, "2025-01-31 00:00"), at(utc, "2025-02-01 00:00")}},
		{name: "a stepped day of week restricts: either matches", spec: "0 0 1 * */3", loc: utc, from: at(utc, "2025-01-01 00:00"), // Wed
			wants: []time.Time{at(utc, "2025-01-04 00:00"), at(utc, "2025-01-05 00:00")}}, // Sat (6), Sun (0)
		{name: "in a zone", spec: "0 9 * * *", loc: kolkata, from: at(utc, "2025-01-01 00:00"),
			wants: []time.Time{at(utc, "2025-01-01 03:30"), at(utc, "2025-01-02 03:30")}},
		{name: "midnight in a half-hour zone", spec: "@daily", loc: kolkata, from: at(utc, "2025-01-01 00:00"),
			wants: []time.Time{at(utc, "2025-01-01 18:30")}},
		{name: "a TZ= prefix wins over the zone given", spec: "TZ=Asia/Tokyo 0 9 * * *", loc: ny, from: at(utc, "2025-01-01 00:00"),
			wants: []time.Time{at(utc, "2025-01-02 00:00")}},
		{name: "CRON_TZ= too", spec: "CRON_TZ=UTC 0 9 * * *", loc: ny, from: at(utc, "2025-01-01 00:00"),
			wants: []time.Time{at(utc, "2025-01-01 09:00")}},
		{name: "New York spring forward: 02:30 does not happen that night", spec: "30 2 * * *", loc: ny, from: at(ny, "2025-03-08 03:00"),
			wants: []time.Time{at(ny, "2025-03-10 02:30")}},
		{name: "New York spring forward: hourly goes from 01:00 EST to 03:00 EDT, one hour later", spec: "0 * * * *", loc: ny,
			from:  at(utc, "2025-03-09 06:30"),                                            // 01:30 EST
			wants: []time.Time{at(utc, "2025-03-09 07:00"), at(utc, "2025-03-09 08:00")}}, // 03:00 EDT, 04:00 EDT
		{name: "New York fall back: 01:30 happens twice and runs twice", spec: "30 1 * * *", loc: ny, from: at(utc, "2025-11-02 04:00"),
			wants: []time.Time{at(utc, "2025-11-02 05:30"), at(utc, "2025-11-02 06:30"), at(utc, "2025-11-03 06:30")}},
		{name: "New York fall back: a daily 03:00 runs once, 25 hours after the day before", spec: "0 3 * * *", loc: ny, from: at(ny, "2025-11-01 04:00"),
			wants: []time.Time{at(utc, "2025-11-02 08:00"), at(utc, "2025-11-03 08:00")}},
		{name: "Berlin spring forward skips 02:30", spec: "30 2 * * *", loc: berlin, from: at(berlin, "2025-03-29 12:00"),
			wants: []time.Time{at(berlin, "2025-03-31 02:30")}},
		{name: "Berlin every 30 minutes across the gap", spec: "*/30 * * * *", loc: berlin, from: at(utc, "2025-03-30 00:15"), // 01:15 CET
			wants: []time.Time{at(utc, "2025-03-30 00:30"), at(utc, "2025-03-30 01:00"), at(utc, "2025-03-30 01:30")}}, // 01:30 CET, 03:00 CEST, 03:30 CEST
		{name: "a date that never comes", spec: "0 0 30 2 *", loc: utc, from: at(utc, "2025-01-01 00:00"), wants: []time.Time{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSchedule(tt.spec)
			if err != nil {
				t.Fatalf("parseSchedule(%q): %v", tt.spec, err)
			}
			from := tt.from
			for i, want := range tt.wants {
				got := s.next(from, tt.loc)
				if !got.Equal(want) {
					t.Fatalf("run %d after %v: got %v, want %v", i+1, from.UTC(), got.UTC(), want.UTC())
				}
				from = got
			}
		})
	}
}

func TestMostRecent(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 30, 0, time.UTC)
	every, _ := parseSchedule("* * * * *")
	hourly, _ := parseSchedule("@hourly")
	tests := []struct {
		name   string
		s      *schedule
		after  time.Time
		latest time.Time
		missed int
		ok     bool
	}{
		{name: "none due", s: hourly, after: now.Add(-10 * time.Second)},
		{name: "one due", s: every, after: now.Add(-time.Minute), latest: now.Truncate(time.Minute), missed: 1, ok: true},
		{name: "three missed, the last wins", s: every, after: now.Add(-3 * time.Minute), latest: now.Truncate(time.Minute), missed: 3, ok: true},
		{name: "a hundred missed is tolerated", s: every, after: now.Add(-100 * time.Minute), latest: now.Truncate(time.Minute), missed: 100, ok: true},
		{name: "more than a hundred: still the most recent", s: every, after: now.Add(-30 * 24 * time.Hour), latest: now.Truncate(time.Minute), missed: 101, ok: true},
		{name: "rare runs, long ago", s: hourly, after: now.Add(-400 * 24 * time.Hour), latest: now.Truncate(time.Hour), missed: 101, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			latest, missed, ok := tt.s.mostRecent(tt.after, now, time.UTC)
			if !latest.Equal(tt.latest) || missed != tt.missed || ok != tt.ok {
				t.Errorf("mostRecent = %v %d %v, want %v %d %v", latest, missed, ok, tt.latest, tt.missed, tt.ok)
			}
		})
	}
}

func TestParseAcceptsWhatKubernetesAccepts(t *testing.T) {
	for _, spec := range []string{
		"0 0 * * ?", "? ? ? ? ?", "0-59/5 0-23 1-31 1-12 0-6", "0 0 1 JAN-DEC SUN-SAT", " 0 0 * * * ",
		"TZ=UTC 0 0 * * *", "@Daily", "0 0 1,15 * MON,wed", "*/1 * * * *",
	} {
		if _, err := parseSchedule(spec); err != nil {
			t.Errorf("parseSchedule(%q): %v", spec, err)
		}
	}
	if _, err := parseSchedule("@reboot"); err == nil || !strings.Contains(err.Error(), "@hourly") {
		t.Errorf("@reboot: %v", err)
	}
}

// @every runs one interval after the previous run, on whole seconds, and
// has no wall-clock alignment.
func TestEvery(t *testing.T) {
	s, err := parseSchedule("@every 90s")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 29, 0, 59, 10, 500, time.UTC)
	got := s.next(start, time.UTC)
	if want := time.Date(2026, 3, 29, 1, 0, 40, 0, time.UTC); !got.Equal(want) {
		t.Errorf("next = %v, want %v", got, want)
	}
	latest, missed, ok := s.mostRecent(start, start.Add(5*time.Minute), time.UTC)
	if !ok || missed != 3 || !latest.Equal(start.Add(270*time.Second).Truncate(time.Second)) {
		t.Errorf("mostRecent = %v, %d, %v", latest, missed, ok)
	}
}
