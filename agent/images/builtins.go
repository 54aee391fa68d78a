package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// builderVersion changes whenever the image writers change what they
// produce, so cached archives from an older Skiff are rebuilt.
const builderVersion = "skiff-images-1"

// BuiltinOptions configures EnsureBuiltins.
type BuiltinOptions struct {
	// CacheDir keeps the built archives and what they were built from.
	CacheDir string
	// DemoBinary is the compiled skiff-demo; "" skips the demo image.
	DemoBinary string
	// Log receives progress and skip messages (default slog.Default()).
	Log *slog.Logger
}

// builtin is one image EnsureBuiltins manages.
type builtin struct {
	key      string   // cache file name
	names    []string // references it creates
	required []string // host files it cannot be built without
	optional bool     // skip (with a log line) when required files are missing
	extra    string   // built-in content (program, config files) to fingerprint
	write    func(io.Writer) (built, error)
}

// cacheMeta is stored next to a cached archive.
type cacheMeta struct {
	Stamp   string   `json:"stamp"`
	ImageID string   `json:"imageID"`
	Names   []string `json:"names"`
	Sources []string `json:"sources"`
	Extra   string   `json:"extra"`
}

// EnsureBuiltins makes sure containerd has the pause, busybox, nginx and
// (with opt.DemoBinary) demo images: each is built into opt.CacheDir
// unless a cached archive built from the same sources is there, and
// imported unless CRI already reports the same image ID under every one
// of its names. busybox, nginx and demo are skipped with a log line when
// their host sources are missing; pause is required. It returns the
// names of the local images that containerd now has.
func EnsureBuiltins(ctx context.Context, socket string, img runtimeapi.ImageServiceClient, opt BuiltinOptions) ([]string, error) {
	log := opt.Log
	if log == nil {
		log = slog.Default()
	}
	if opt.CacheDir == "" {
		return nil, errors.New("images: BuiltinOptions.CacheDir is required")
	}
	if err := os.MkdirAll(opt.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("images: create cache dir: %w", err)
	}
	began := time.Now()
	pause, err := pauseELF()
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	list := []builtin{
		{key: "pause", names: []string{PauseImage}, extra: hashOf(pause), write: func(w io.Writer) (built, error) {
			id, err := writePause(w)
			return built{id: id}, err
		}},
		{key: "busybox", names: []string{BusyboxImage}, required: []string{busyboxPath}, optional: true, write: writeBusybox},
		{key: "nginx", names: []string{NginxImage}, required: []string{nginxPath, mimeTypesPath, busyboxPath}, optional: true,
			extra: hashOf([]byte(nginxConf + nginxIndex)), write: writeNginx},
	}
	if opt.DemoBinary != "" {
		bin := opt.DemoBinary
		list = append(list, builtin{key: "demo", names: []string{DemoImage, DemoImageLatest}, required: []string{bin}, optional: true,
			write: func(w io.Writer) (built, error) { return writeDemo(w, bin) }})
	}
	// The images are independent; building and importing them side by
	// side roughly halves a cold start.
	results := make([][]string, len(list))
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, b := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = ensureOne(ctx, socket, img, opt.CacheDir, b, log)
		}()
	}
	wg.Wait()
	var have []string
	for _, names := range results {
		have = append(have, names...)
	}
	if err := errors.Join(errs...); err != nil {
		return have, err
	}
	log.Info("local images ready", "images", have, "elapsed", time.Since(began).Round(time.Millisecond))
	return have, nil
}

// ensureOne builds (or reuses) and imports one builtin image.
func ensureOne(ctx context.Context, socket string, img runtimeapi.ImageServiceClient, cacheDir string, b builtin, log *slog.Logger) ([]string, error) {
	for _, f := range b.required {
		if _, err := os.Stat(f); err != nil {
			if b.optional {
				log.Info("not building image: source missing", "image", b.names[0], "source", f)
				return nil, nil
			}
			return nil, fmt.Errorf("images: %s: %w", b.names[0], err)
		}
	}
	tarPath := filepath.Join(cacheDir, b.key+".tar")
	metaPath := filepath.Join(cacheDir, b.key+".json")
	meta, ok := readCache(metaPath, tarPath, b.extra)
	if !ok {
		m, err := buildCached(tarPath, metaPath, b)
		if err != nil {
			return nil, err
		}
		meta = m
		log.Info("built image", "image", b.names[0], "archive", tarPath)
	}
	present, err := haveImage(ctx, img, meta.Names, meta.ImageID)
	if err != nil {
		return nil, err
	}
	if present {
		return meta.Names, nil
	}
	if _, err := Import(ctx, socket, tarPath); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	// CRI learns about ctr's imports from containerd events; wait until
	// it answers for them so callers can use the images at once.
	for deadline := time.Now().Add(5 * time.Second); ; {
		present, err := haveImage(ctx, img, meta.Names, meta.ImageID)
		if err != nil {
			return nil, err
		}
		if present {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("images: imported %s but CRI does not report it", b.names[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	log.Info("imported image", "image", b.names[0], "id", meta.ImageID)
	return meta.Names, nil
}

// readCache returns the cache metadata when the archive exists and every
// source is unchanged.
func readCache(metaPath, tarPath, extra string) (cacheMeta, bool) {
	var m cacheMeta
	raw, err := os.ReadFile(metaPath)
	if err != nil || json.Unmarshal(raw, &m) != nil {
		return cacheMeta{}, false
	}
	if _, err := os.Stat(tarPath); err != nil || m.Extra != extra {
		return cacheMeta{}, false
	}
	stamp, err := stampOf(m.Names, m.Sources, extra)
	if err != nil || stamp != m.Stamp {
		return cacheMeta{}, false
	}
	return m, true
}

// buildCached writes a builtin's archive and metadata into the cache.
func buildCached(tarPath, metaPath string, b builtin) (cacheMeta, error) {
	tmp, err := os.CreateTemp(filepath.Dir(tarPath), b.key+".*.tmp")
	if err != nil {
		return cacheMeta{}, fmt.Errorf("images: %w", err)
	}
	defer os.Remove(tmp.Name())
	res, err := b.write(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cacheMeta{}, fmt.Errorf("images: build %s: %w", b.names[0], err)
	}
	stamp, err := stampOf(b.names, res.sources, b.extra)
	if err != nil {
		return cacheMeta{}, fmt.Errorf("images: build %s: %w", b.names[0], err)
	}
	if err := os.Rename(tmp.Name(), tarPath); err != nil {
		return cacheMeta{}, fmt.Errorf("images: %w", err)
	}
	m := cacheMeta{Stamp: stamp, ImageID: res.id, Names: b.names, Sources: res.sources, Extra: b.extra}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return cacheMeta{}, fmt.Errorf("images: %w", err)
	}
	if err := os.WriteFile(metaPath, raw, 0o644); err != nil {
		return cacheMeta{}, fmt.Errorf("images: %w", err)
	}
	return m, nil
}

// stampOf fingerprints the builder version, the image names, the built-in
// content and the size, mode and modification time of every source file.
func stampOf(names, sources []string, extra string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, builderVersion, extra)
	for _, n := range names {
		fmt.Fprintln(h, "name", n)
	}
	for _, s := range sources {
		fi, err := os.Stat(s)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, "source", s, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// haveImage reports whether CRI has every name pointing at image id.
func haveImage(ctx context.Context, img runtimeapi.ImageServiceClient, names []string, id string) (bool, error) {
	for _, n := range names {
		resp, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: n}})
		if err != nil {
			return false, fmt.Errorf("images: status of %s: %w", n, err)
		}
		if resp.Image == nil || resp.Image.Id != id {
			return false, nil
		}
	}
	return true, nil
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
