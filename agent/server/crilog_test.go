package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// crilog renders records as containerd writes them.
func crilog(recs ...logRecord) string {
	var b strings.Builder
	for _, r := range recs {
		tag := "F"
		if r.partial {
			tag = "P"
		}
		fmt.Fprintf(&b, "%s %s %s %s\n", r.time.Format(time.RFC3339Nano), r.stream, tag, r.content)
	}
	return b.String()
}

func rec(sec int, stream string, partial bool, content string) logRecord {
	return logRecord{time: t0.Add(time.Duration(sec) * time.Second), stream: stream, partial: partial, content: []byte(content)}
}

func TestParseCRILogLine(t *testing.T) {
	cases := []struct {
		line    string
		want    logRecord
		wantErr bool
	}{
		{line: "2025-03-01T10:00:00.123456789Z stdout F hello world", want: logRecord{time: t0.Add(123456789), stream: "stdout", content: []byte("hello world")}},
		{line: "2025-03-01T11:00:00+01:00 stderr P part", want: logRecord{time: t0, stream: "stderr", partial: true, content: []byte("part")}},
		{line: "2025-03-01T10:00:00Z stdout F:x:y tagged", want: logRecord{time: t0, stream: "stdout", content: []byte("tagged")}},
		{line: "2025-03-01T10:00:00Z stdout F ", want: logRecord{time: t0, stream: "stdout", content: []byte{}}},
		{line: "2025-03-01T10:00:00Z stdout F", want: logRecord{time: t0, stream: "stdout"}},
		{line: "2025-03-01T10:00:00Z stdout F  two  spaces ", want: logRecord{time: t0, stream: "stdout", content: []byte(" two  spaces ")}},
		{line: "not-a-time stdout F x", wantErr: true},
		{line: "2025-03-01T10:00:00Z stdin F x", wantErr: true},
		{line: "2025-03-01T10:00:00Z stdout X x", wantErr: true},
		{line: "2025-03-01T10:00:00Z", wantErr: true},
		{line: "2025-03-01T10:00:00Z stdout", wantErr: true},
		{line: "", wantErr: true},
	}
	for _, c := range cases {
		got, err := parseCRILogLine([]byte(c.line))
		if (err != nil) != c.wantErr {
			t.Errorf("%q: err = %v, wantErr %v", c.line, err, c.wantErr)
			continue
		}
		if c.wantErr {
			continue
		}
		if !got.time.Equal(c.want.time) || got.stream != c.want.stream || got.partial != c.want.partial || !bytes.Equal(got.content, c.want.content) {
			t.Errorf("%q: got %+v (%q), want %+v (%q)", c.line, got, got.content, c.want, c.want.content)
		}
	}
}

func TestParseLogOptions(t *testing.T) {
	now := t0
	cases := []struct {
		query   string
		want    logOptions
		wantErr string
	}{
		{query: "", want: logOptions{tailLines: -1, stream: "All"}},
		{query: "follow=true&previous=1&timestamps=true", want: logOptions{follow: true, previous: true, timestamps: true, tailLines: -1, stream: "All"}},
		{query: "follow=false&previous=0", want: logOptions{tailLines: -1, stream: "All"}},
		{query: "tailLines=0", want: logOptions{tailLines: 0, stream: "All"}},
		{query: "tailLines=5&limitBytes=10", want: logOptions{tailLines: 5, limitBytes: 10, stream: "All"}},
		{query: "sinceSeconds=60", want: logOptions{tailLines: -1, since: now.Add(-time.Minute), stream: "All"}},
		{query: "sinceTime=2025-03-01T09:00:00Z", want: logOptions{tailLines: -1, since: t0.Add(-time.Hour), stream: "All"}},
		{query: "stream=Stderr", want: logOptions{tailLines: -1, stream: "Stderr"}},
		{query: "tailLines=-1", wantErr: "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{query: "tailLines=x", wantErr: `tailLines "x" is not an integer`},
		{query: "limitBytes=0", wantErr: "limitBytes: Invalid value: 0: must be greater than 0"},
		{query: "sinceSeconds=0", wantErr: "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{query: "sinceSeconds=5&sinceTime=2025-03-01T09:00:00Z", wantErr: "at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{query: "sinceTime=yesterday", wantErr: `sinceTime "yesterday" is not an RFC 3339 time`},
		{query: "stream=Both", wantErr: `stream: Unsupported value: "Both"`},
		{query: "stream=Stdout&tailLines=3", wantErr: "`tailLines` and specific `stream` are mutually exclusive for now"},
	}
	for _, c := range cases {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLogOptions(q, now)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: err = %v, want %q", c.query, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
			continue
		}
		if got != c.want {
			t.Errorf("%q: got %+v, want %+v", c.query, got, c.want)
		}
	}
}

func TestLogWriter(t *testing.T) {
	recs := []logRecord{
		rec(0, "stdout", false, "one"),
		rec(1, "stderr", true, "tw"),
		rec(2, "stderr", false, "o"),
		rec(3, "stdout", false, "three"),
		rec(4, "stdout", true, "fo"),
		rec(5, "stdout", true, "u"),
		rec(6, "stdout", false, "r"),
	}
	ts := func(sec int) string { return t0.Add(time.Duration(sec)*time.Second).Format(timestampLayout) + " " }
	cases := []struct {
		name      string
		opts      logOptions
		want      string
		wantLimit bool
	}{
		{name: "plain joins partial records", opts: logOptions{stream: "All"}, want: "one\ntwo\nthree\nfour\n"},
		{name: "timestamps only at line starts", opts: logOptions{stream: "All", timestamps: true},
			want: ts(0) + "one\n" + ts(1) + "two\n" + ts(3) + "three\n" + ts(4) + "four\n"},
		{name: "since drops older records", opts: logOptions{stream: "All", since: t0.Add(3 * time.Second)}, want: "three\nfour\n"},
		{name: "stdout only", opts: logOptions{stream: "Stdout"}, want: "one\nthree\nfour\n"},
		{name: "stderr only", opts: logOptions{stream: "Stderr"}, want: "two\n"},
		{name: "limit cuts mid line", opts: logOptions{stream: "All", limitBytes: 6}, want: "one\ntw", wantLimit: true},
		{name: "limit on a line end", opts: logOptions{stream: "All", limitBytes: 4}, want: "one\n", wantLimit: true},
		{name: "limit counts timestamps", opts: logOptions{stream: "All", timestamps: true, limitBytes: 10}, want: ts(0)[:10], wantLimit: true},
		{name: "limit larger than log", opts: logOptions{stream: "All", limitBytes: 1000}, want: "one\ntwo\nthree\nfour\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			lw := &logWriter{w: &out, opts: c.opts}
			limited := false
			for _, r := range recs {
				if err := lw.write(r); err != nil {
					if !errors.Is(err, errLimitReached) {
						t.Fatal(err)
					}
					limited = true
					break
				}
			}
			if out.String() != c.want || limited != c.wantLimit {
				t.Errorf("got %q (limit %v), want %q (limit %v)", out.String(), limited, c.want, c.wantLimit)
			}
		})
	}
}

func TestTailStart(t *testing.T) {
	full := []logRecord{
		rec(0, "stdout", false, "one"),
		rec(1, "stdout", true, "t"),
		rec(2, "stdout", true, "w"),
		rec(3, "stdout", false, "o"),
		rec(4, "stdout", false, strings.Repeat("x", 100)),
		rec(5, "stdout", false, "four"),
	}
	unfinished := append(full[:len(full):len(full)], rec(6, "stdout", true, "fi"))
	cases := []struct {
		name string
		data string
		n    int64
		want string
	}{
		{name: "zero lines", data: crilog(full...), n: 0, want: ""},
		{name: "last line", data: crilog(full...), n: 1, want: "four\n"},
		{name: "joined line counts once", data: crilog(full...), n: 3, want: "two\n" + strings.Repeat("x", 100) + "\nfour\n"},
		{name: "all lines exactly", data: crilog(full...), n: 4, want: "one\ntwo\n" + strings.Repeat("x", 100) + "\nfour\n"},
		{name: "more than there are", data: crilog(full...), n: 40, want: "one\ntwo\n" + strings.Repeat("x", 100) + "\nfour\n"},
		{name: "unfinished line counts", data: crilog(unfinished...), n: 2, want: "four\nfi"},
		{name: "record being written is ignored", data: crilog(full...) + "2025-03-01T10:00:09Z stdout F half", n: 1, want: "four\n"},
		{name: "empty file", data: "", n: 3, want: ""},
	}
	for _, c := range cases {
		for _, chunk := range []int64{1, 7, 64, tailChunk} {
			t.Run(fmt.Sprintf("%s/chunk%d", c.name, chunk), func(t *testing.T) {
				r := strings.NewReader(c.data)
				start, err := tailStartChunked(r, int64(len(c.data)), c.n, chunk)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				lw := &logWriter{w: &out, opts: logOptions{stream: "All"}}
				for _, line := range strings.SplitAfter(c.data[start:], "\n") {
					if !strings.HasSuffix(line, "\n") {
						continue
					}
					rec, err := parseCRILogLine([]byte(strings.TrimSuffix(line, "\n")))
					if err != nil {
						t.Fatal(err)
					}
					if err := lw.write(rec); err != nil {
						t.Fatal(err)
					}
				}
				if out.String() != c.want {
					t.Errorf("start %d: got %q, want %q", start, out.String(), c.want)
				}
			})
		}
	}
}
