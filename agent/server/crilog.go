package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A CRI log file holds one record a line:
//
//	<RFC3339Nano time> <stdout|stderr> <tags> <content>
//
// where tags is P (a fragment of a longer line, to be joined with the
// records after it) or F (the end of a line), optionally followed by
// ":"-separated extra tags.

// Stream names of CRI log records and the values of the stream parameter.
const (
	streamStdout = "stdout"
	streamStderr = "stderr"

	paramStreamAll    = "All"
	paramStreamStdout = "Stdout"
	paramStreamStderr = "Stderr"
)

// timestampLayout is how --timestamps prints a line's time: UTC with a
// fixed nine-digit fraction, so columns line up.
const timestampLayout = "2006-01-02T15:04:05.000000000Z07:00"

// logRecord is one parsed line of a CRI log file.
type logRecord struct {
	time    time.Time
	stream  string
	partial bool
	content []byte
}

// parseCRILogLine parses one record (without its trailing newline). The
// content aliases line.
func parseCRILogLine(line []byte) (logRecord, error) {
	var rec logRecord
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return rec, fmt.Errorf("log record %q has no stream field", truncate(line))
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return rec, fmt.Errorf("log record time %q: %w", truncate(ts), err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return rec, fmt.Errorf("log record %q has no tag field", truncate(line))
	}
	switch string(stream) {
	case streamStdout, streamStderr:
	default:
		return rec, fmt.Errorf("log record stream %q is neither stdout nor stderr", truncate(stream))
	}
	tags, content, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		// An empty full line may be written without the separator.
		tags, content = rest, nil
	}
	first, _, _ := bytes.Cut(tags, []byte{':'})
	switch string(first) {
	case "P":
		rec.partial = true
	case "F":
	default:
		return rec, fmt.Errorf("log record tag %q is neither P nor F", truncate(tags))
	}
	rec.time, rec.stream, rec.content = t, string(stream), content
	return rec, nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// logOptions are the containerLogs query parameters, as PodLogOptions
// names them.
type logOptions struct {
	follow     bool
	previous   bool
	timestamps bool
	// tailLines < 0 means every line.
	tailLines int64
	// limitBytes <= 0 means no limit.
	limitBytes int64
	// since, when not zero, drops records older than it.
	since time.Time
	// stream is paramStreamAll, paramStreamStdout or paramStreamStderr.
	stream string
}

// parseLogOptions reads and validates the query of a containerLogs
// request. now resolves sinceSeconds.
func parseLogOptions(q url.Values, now time.Time) (logOptions, error) {
	opts := logOptions{tailLines: -1, stream: paramStreamAll}
	var err error
	if opts.follow, err = boolParam(q, "follow"); err != nil {
		return opts, err
	}
	if opts.previous, err = boolParam(q, "previous"); err != nil {
		return opts, err
	}
	if opts.timestamps, err = boolParam(q, "timestamps"); err != nil {
		return opts, err
	}
	tail, hasTail, err := intParam(q, "tailLines")
	if err != nil {
		return opts, err
	}
	if hasTail {
		if tail < 0 {
			return opts, fmt.Errorf("tailLines: Invalid value: %d: must be greater than or equal to 0", tail)
		}
		opts.tailLines = tail
	}
	limit, hasLimit, err := intParam(q, "limitBytes")
	if err != nil {
		return opts, err
	}
	if hasLimit {
		if limit < 1 {
			return opts, fmt.Errorf("limitBytes: Invalid value: %d: must be greater than 0", limit)
		}
		opts.limitBytes = limit
	}
	sinceSeconds, hasSinceSeconds, err := intParam(q, "sinceSeconds")
	if err != nil {
		return opts, err
	}
	sinceTime := q.Get("sinceTime")
	switch {
	case hasSinceSeconds && sinceTime != "":
		return opts, errors.New("at most one of `sinceTime` or `sinceSeconds` may be specified")
	case hasSinceSeconds:
		if sinceSeconds < 1 {
			return opts, fmt.Errorf("sinceSeconds: Invalid value: %d: must be greater than 0", sinceSeconds)
		}
		opts.since = now.Add(-time.Duration(sinceSeconds) * time.Second)
	case sinceTime != "":
		t, err := time.Parse(time.RFC3339, sinceTime)
		if err != nil {
			return opts, fmt.Errorf("sinceTime %q is not an RFC 3339 time: %w", sinceTime, err)
		}
		opts.since = t
	}
	if s := q.Get("stream"); s != "" {
		switch s {
		case paramStreamAll, paramStreamStdout, paramStreamStderr:
		default:
			return opts, fmt.Errorf("stream: Unsupported value: %q: supported values: %q, %q, %q", s, paramStreamAll, paramStreamStdout, paramStreamStderr)
		}
		if s != paramStreamAll && hasTail {
			return opts, errors.New("`tailLines` and specific `stream` are mutually exclusive for now")
		}
		opts.stream = s
	}
	return opts, nil
}

// boolParam reads a boolean query parameter the way Kubernetes converts
// them: absent, "false" and "0" are false, anything else true.
func boolParam(q url.Values, name string) (bool, error) {
	vals, ok := q[name]
	if !ok || len(vals) == 0 {
		return false, nil
	}
	if vals[0] == "0" || strings.EqualFold(vals[0], "false") {
		return false, nil
	}
	return true, nil
}

func intParam(q url.Values, name string) (int64, bool, error) {
	s := q.Get(name)
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s %q is not an integer", name, s)
	}
	return v, true, nil
}

// errLimitReached ends a copy once limitBytes have been written.
var errLimitReached = errors.New("log byte limit reached")

// logWriter turns CRI records into what the client reads: fragments joined
// into lines, filtered by time and stream, optionally prefixed with their
// time, and cut at the byte limit.
type logWriter struct {
	w    io.Writer
	opts logOptions
	// written counts bytes sent, for limitBytes.
	written int64
	// midLine is true after a partial record: the next one continues the
	// same line and gets no timestamp.
	midLine bool
}

// write sends one record. It returns errLimitReached when the byte limit
// is used up, and the underlying writer's errors.
func (lw *logWriter) write(rec logRecord) error {
	if !lw.opts.since.IsZero() && rec.time.Before(lw.opts.since) {
		return nil
	}
	switch lw.opts.stream {
	case paramStreamStdout:
		if rec.stream != streamStdout {
			return nil
		}
	case paramStreamStderr:
		if rec.stream != streamStderr {
			return nil
		}
	}
	var out []byte
	if lw.opts.timestamps && !lw.midLine {
		out = append(out, rec.time.UTC().Format(timestampLayout)...)
		out = append(out, ' ')
	}
	out = append(out, rec.content...)
	if !rec.partial {
		out = append(out, '\n')
	}
	lw.midLine = rec.partial
	limited := false
	if lw.opts.limitBytes > 0 {
		left := lw.opts.limitBytes - lw.written
		if int64(len(out)) >= left {
			out = out[:left]
			limited = true
		}
	}
	n, err := lw.w.Write(out)
	lw.written += int64(n)
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	if limited {
		return errLimitReached
	}
	return nil
}

// tailChunk is how much tailStart reads at a time, walking backwards.
const tailChunk = 32 << 10

// tailStart returns the offset in a CRI log file of size bytes where its
// last n lines begin. A line is a run of records ending with a full (F)
// record; an unfinished line at the end counts as one. Bytes after the
// last newline (a record still being written) are not looked at.
func tailStart(r io.ReaderAt, size, n int64) (int64, error) {
	return tailStartChunked(r, size, n, tailChunk)
}

// tailStartChunked is tailStart reading chunk bytes at a time.
func tailStartChunked(r io.ReaderAt, size, n, chunk int64) (int64, error) {
	if n == 0 {
		return size, nil
	}
	s := backScanner{r: r, pos: size, chunk: chunk}
	if err := s.init(); err != nil {
		return 0, err
	}
	lineEnds := int64(0)
	first := true
	for {
		line, start, ok, err := s.prev()
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, nil
		}
		rec, perr := parseCRILogLine(line)
		// The last record ends a line even when partial; a malformed
		// record is counted as a line of its own.
		if first || perr != nil || !rec.partial {
			lineEnds++
			if lineEnds == n+1 {
				return start + int64(len(line)) + 1, nil
			}
		}
		first = false
	}
}

// backScanner yields the newline-terminated lines of a file from the last
// to the first.
type backScanner struct {
	r     io.ReaderAt
	chunk int64
	pos   int64  // file offset of buf[0]
	buf   []byte // [pos, end of the lines not yet yielded); ends with '\n'
}

// init drops the bytes after the file's last newline.
func (s *backScanner) init() error {
	for s.pos > 0 {
		if err := s.readBack(); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(s.buf, '\n'); i >= 0 {
			s.buf = s.buf[:i+1]
			return nil
		}
	}
	s.buf = nil
	return nil
}

// readBack prepends up to chunk bytes from before pos.
func (s *backScanner) readBack() error {
	from := max(s.pos-s.chunk, 0)
	chunk := make([]byte, s.pos-from, int(s.pos-from)+len(s.buf))
	if _, err := s.r.ReadAt(chunk, from); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read log file: %w", err)
	}
	s.buf = append(chunk, s.buf...)
	s.pos = from
	return nil
}

// prev returns the previous line, without its newline, and its offset.
func (s *backScanner) prev() (line []byte, start int64, ok bool, err error) {
	for {
		if len(s.buf) == 0 {
			return nil, 0, false, nil
		}
		body := s.buf[:len(s.buf)-1]
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			line = body[i+1:]
			s.buf = s.buf[:i+1]
			return line, s.pos + int64(i) + 1, true, nil
		}
		if s.pos == 0 {
			s.buf = nil
			return body, 0, true, nil
		}
		if err := s.readBack(); err != nil {
			return nil, 0, false, err
		}
	}
}
