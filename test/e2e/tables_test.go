package e2e

import (
	"strings"
	"testing"
)

// table is one block of kubectl's column output: a header line and rows,
// cut at the header's column offsets (kubectl left-aligns cells under
// their header, so empty cells stay empty instead of shifting columns).
type table struct {
	header []string
	starts []int
	rows   [][]string
}

// parseTables splits kubectl output into its tables (separated by blank
// lines, as `get a,b` prints them).
func parseTables(out string) []table {
	var tables []table
	var cur *table
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			cur = nil
			continue
		}
		if cur == nil {
			tables = append(tables, table{})
			cur = &tables[len(tables)-1]
			cur.header, cur.starts = headerColumns(line)
			continue
		}
		cur.rows = append(cur.rows, cutRow(line, cur.starts))
	}
	return tables
}

// headerColumns returns a header's words and where each begins. Header
// words contain no spaces in the tables these tests read.
func headerColumns(line string) ([]string, []int) {
	var words []string
	var starts []int
	in := false
	for i, r := range line {
		switch {
		case r != ' ' && r != '\t' && !in:
			in = true
			starts = append(starts, i)
		case (r == ' ' || r == '\t') && in:
			in = false
			words = append(words, line[starts[len(starts)-1]:i])
		}
	}
	if in {
		words = append(words, line[starts[len(starts)-1]:])
	}
	return words, starts
}

func cutRow(line string, starts []int) []string {
	cells := make([]string, len(starts))
	for i, s := range starts {
		if s >= len(line) {
			break
		}
		end := len(line)
		if i+1 < len(starts) && starts[i+1] < end {
			end = starts[i+1]
		}
		cells[i] = strings.TrimSpace(line[s:end])
	}
	return cells
}

// col is the index of a header column, or -1.
func (tb table) col(name string) int {
	for i, h := range tb.header {
		if h == name {
			return i
		}
	}
	return -1
}

// row returns the row whose column key equals value, as a map from header
// to cell; it fails the test when there is none.
func (tb table) row(t *testing.T, key, value string) map[string]string {
	t.Helper()
	i := tb.col(key)
	if i < 0 {
		t.Fatalf("table has no %s column; header %v", key, tb.header)
	}
	for _, r := range tb.rows {
		if r[i] == value {
			m := make(map[string]string, len(r))
			for j, h := range tb.header {
				m[h] = r[j]
			}
			return m
		}
	}
	t.Fatalf("table has no row with %s=%s; rows %v", key, value, tb.rows)
	return nil
}

// oneTable parses output that must hold exactly one table.
func oneTable(t *testing.T, out string) table {
	t.Helper()
	tables := parseTables(out)
	if len(tables) != 1 {
		t.Fatalf("want one table, got %d:\n%s", len(tables), out)
	}
	return tables[0]
}

func TestParseTables(t *testing.T) {
	out := "NAME   SHORTNAMES   KIND\n" +
		"pods   po           Pod\n" +
		"secrets             Secret\n" +
		"\n" +
		"NAME          TYPE\n" +
		"service/web   ClusterIP\n"
	tables := parseTables(out)
	if len(tables) != 2 {
		t.Fatalf("got %d tables, want 2", len(tables))
	}
	tests := []struct {
		table      int
		key, value string
		col, want  string
	}{
		{0, "NAME", "pods", "SHORTNAMES", "po"},
		{0, "NAME", "pods", "KIND", "Pod"},
		{0, "KIND", "Secret", "SHORTNAMES", ""},
		{1, "NAME", "service/web", "TYPE", "ClusterIP"},
	}
	for _, tc := range tests {
		got := tables[tc.table].row(t, tc.key, tc.value)[tc.col]
		if got != tc.want {
			t.Errorf("table %d row %s=%s: %s = %q, want %q", tc.table, tc.key, tc.value, tc.col, got, tc.want)
		}
	}
}
