package server

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/agent/labels"
)

// Follow timing: how often a followed log file is read again, and how
// often the container is asked whether it still runs.
const (
	followPoll        = 200 * time.Millisecond
	followStatusEvery = time.Second
)

// pickLogContainer chooses which instance of a pod's container to read:
// the newest one, or with previous the newest exited one created before
// it. instances are the CRI containers carrying the pod's and container's
// labels, in any order.
func pickLogContainer(instances []*runtimeapi.Container, previous bool, pod, container string) (*runtimeapi.Container, error) {
	sorted := newestFirst(instances)
	if previous {
		for _, c := range sorted[min(1, len(sorted)):] {
			if c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
				return c, nil
			}
		}
		return nil, httpErrorf(http.StatusBadRequest, "previous terminated container %q in pod %q not found", container, pod)
	}
	if len(sorted) == 0 || sorted[0].State == runtimeapi.ContainerState_CONTAINER_CREATED {
		return nil, httpErrorf(http.StatusBadRequest, "container %q in pod %q is waiting to start: ContainerCreating", container, pod)
	}
	return sorted[0], nil
}

// newestFirst sorts container instances by creation time, newest first,
// the attempt number breaking ties.
func newestFirst(instances []*runtimeapi.Container) []*runtimeapi.Container {
	sorted := slices.Clone(instances)
	slices.SortStableFunc(sorted, func(a, b *runtimeapi.Container) int {
		if c := cmp.Compare(b.CreatedAt, a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.GetMetadata().GetAttempt(), a.GetMetadata().GetAttempt())
	})
	return sorted
}

// containerInstances lists the CRI containers of one pod container.
func (s *server) containerInstances(ctx context.Context, namespace, pod, uid, container string) ([]*runtimeapi.Container, error) {
	sel := map[string]string{
		labels.PodNamespace:  namespace,
		labels.PodName:       pod,
		labels.ContainerName: container,
	}
	if uid != "" {
		sel[labels.PodUID] = uid
	}
	if s.cfg.NodeName != "" {
		sel[labels.ManagedBy] = s.cfg.NodeName
	}
	resp, err := s.cfg.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{LabelSelector: sel},
	})
	if err != nil {
		return nil, criError("list containers", err)
	}
	return resp.Containers, nil
}

// serveContainerLogs answers GET /containerLogs/{ns}/{pod}/{container}.
func (s *server) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	opts, err := parseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, httpErrorf(http.StatusBadRequest, "%s", err.Error()))
		return
	}
	ctx := r.Context()
	instances, err := s.containerInstances(ctx, ns, pod, "", container)
	if err != nil {
		writeError(w, err)
		return
	}
	c, err := pickLogContainer(instances, opts.previous, pod, container)
	if err != nil {
		writeError(w, err)
		return
	}
	st, err := s.cfg.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
	if err != nil {
		writeError(w, criError("container status", err))
		return
	}
	path := st.GetStatus().GetLogPath()
	if path == "" {
		writeError(w, httpErrorf(http.StatusNotFound, "container %q in pod %q has no log file", container, pod))
		return
	}
	f, err := os.Open(path)
	if err != nil {
		writeError(w, httpErrorf(http.StatusInternalServerError, "open log of container %q in pod %q: %v", container, pod, err))
		return
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		writeError(w, httpErrorf(http.StatusInternalServerError, "stat log of container %q in pod %q: %v", container, pod, err))
		return
	}
	start := int64(0)
	if opts.tailLines >= 0 {
		if start, err = tailStart(f, fi.Size(), opts.tailLines); err != nil {
			writeError(w, httpErrorf(http.StatusInternalServerError, "container %q in pod %q: %v", container, pod, err))
			return
		}
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		writeError(w, httpErrorf(http.StatusInternalServerError, "seek log of container %q in pod %q: %v", container, pod, err))
		return
	}
	follow := opts.follow && !opts.previous && st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_EXITED
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w: w, rc: http.NewResponseController(w)}
	lw := &logWriter{w: fw, opts: opts}
	var running func(context.Context) bool
	if follow {
		running = func(ctx context.Context) bool { return s.stillRunning(ctx, c.Id) }
	}
	if err := copyLog(ctx, f, lw, fw.flush, running); err != nil && !errors.Is(err, errLimitReached) && ctx.Err() == nil {
		s.log.Debug("container log copy ended", "pod", ns+"/"+pod, "container", container, "err", err)
	}
}

// stillRunning asks CRI whether a container has not exited yet. An error
// counts as exited, so a follow does not hang on a vanished container.
func (s *server) stillRunning(ctx context.Context, id string) bool {
	st, err := s.cfg.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return false
	}
	return st.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_EXITED
}

// copyLog sends f's records from its current offset through lw. With a
// running func it follows the file: at the end it waits for more until
// running says the container is gone and the file has been read to its
// end once more, or ctx ends.
func copyLog(ctx context.Context, f io.Reader, lw *logWriter, flush func(), running func(context.Context) bool) error {
	buf := make([]byte, 32<<10)
	var pending []byte
	lastCheck := time.Now()
	draining := false
	for {
		n, err := f.Read(buf)
		if n > 0 {
			pending = append(pending, buf[:n]...)
			consumed := 0
			for {
				i := bytes.IndexByte(pending[consumed:], '\n')
				if i < 0 {
					break
				}
				line := pending[consumed : consumed+i]
				consumed += i + 1
				rec, perr := parseCRILogLine(line)
				if perr != nil {
					continue
				}
				if werr := lw.write(rec); werr != nil {
					flush()
					return werr
				}
			}
			pending = append(pending[:0], pending[consumed:]...)
			flush()
		}
		switch {
		case err == nil:
			continue
		case !errors.Is(err, io.EOF):
			return fmt.Errorf("read log file: %w", err)
		case running == nil || draining:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
		if time.Since(lastCheck) >= followStatusEvery {
			lastCheck = time.Now()
			if !running(ctx) {
				// Read what the container wrote before it exited, then stop.
				draining = true
			}
		}
	}
}

// flushWriter writes to a response and flushes it on demand.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) { return f.w.Write(p) }

func (f flushWriter) flush() { _ = f.rc.Flush() }
