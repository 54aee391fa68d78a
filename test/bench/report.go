package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Report is everything one benchmark run measured; it is written as JSON
// to -out and its Summary is printed at the end.
type Report struct {
	Meta         Meta              `json:"meta"`
	StartToReady *StartupResult    `json:"start_to_ready,omitempty"`
	IdleRSS      *IdleResult       `json:"idle_rss,omitempty"`
	Creates      []CreateResult    `json:"creates,omitempty"`
	Lists        []ListResult      `json:"lists,omitempty"`
	Watch        *WatchResult      `json:"watch,omitempty"`
	Schedule     []ScheduleResult  `json:"schedule,omitempty"`
	Deployment   *DeploymentResult `json:"deployment,omitempty"`
	NodeScale    *NodeScaleResult  `json:"nodescale,omitempty"`
	Node         *NodeResult       `json:"node,omitempty"`
	Summary      []SummaryLine     `json:"summary"`
	Errors       []string          `json:"errors,omitempty"`
	Durations    map[string]Secs   `json:"durations_seconds"`
}

// Meta says what was measured, where and how.
type Meta struct {
	Started          time.Time `json:"started"`
	Finished         time.Time `json:"finished"`
	Binary           string    `json:"binary"`
	Version          string    `json:"version"`
	GoVersion        string    `json:"go_version"`
	Platform         string    `json:"platform"`
	CPUs             int       `json:"cpus"`
	Kernel           string    `json:"kernel"`
	LoadAvgStart     string    `json:"loadavg_start"`
	LoadAvgEnd       string    `json:"loadavg_end"`
	Quick            bool      `json:"quick"`
	Runs             int       `json:"runs"`
	HeavyRuns        int       `json:"heavy_runs"`
	ControlPlaneRuns int       `json:"control_plane_runs"`
	Only             string    `json:"only,omitempty"`
}

// Secs is a duration reported in seconds.
type Secs float64

// SummaryLine is one row of the final table.
type SummaryLine struct {
	Label string `json:"label"`
	Text  string `json:"text"`
}

func (r *Report) add(label, format string, args ...any) {
	r.Summary = append(r.Summary, SummaryLine{Label: label, Text: fmt.Sprintf(format, args...)})
}

// PrintSummary writes the summary table.
func (r *Report) PrintSummary(w io.Writer) {
	fmt.Fprintf(w, "\nSkiff benchmark summary (%s, %d CPUs, load %s; medians of %d runs, %d for heavy ones, %d for control-plane ones%s)\n",
		r.Meta.Version, r.Meta.CPUs, r.Meta.LoadAvgStart, r.Meta.Runs, r.Meta.HeavyRuns, r.Meta.ControlPlaneRuns, quickNote(r.Meta.Quick))
	width := 0
	for _, l := range r.Summary {
		width = max(width, len(l.Label))
	}
	for _, l := range r.Summary {
		fmt.Fprintf(w, "  %-*s  %s\n", width, l.Label, l.Text)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  ERROR %s\n", e)
	}
}

func quickNote(quick bool) string {
	if quick {
		return "; -quick sizes, not for quoting"
	}
	return ""
}

// WriteJSON writes the report to path, making its directory.
func (r *Report) WriteJSON(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("report dir: %w", err)
		}
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// fmtStat renders a stat as "median X unit   (min A, max B)".
func fmtStat(s Stat, unit string, prec int) string {
	return fmt.Sprintf("median %.*f %s   (min %.*f, max %.*f)", prec, s.Median, unit, prec, s.Min, prec, s.Max)
}

// loadAvg is the first three fields of /proc/loadavg, or "?".
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// kernel is the running kernel's release, or "?".
func kernel() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(data))
}
