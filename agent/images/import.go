package images

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// CRINamespace is the containerd namespace the CRI plugin uses.
const CRINamespace = "k8s.io"

// ctrPath is the containerd client used for imports.
var ctrPath = "ctr"

// Import imports an OCI image-layout or docker-save archive into
// containerd's CRI namespace with `ctr images import`, unpacking it into
// the overlayfs snapshotter, and returns the image names it created.
func Import(ctx context.Context, socket, tarPath string) ([]string, error) {
	names, nameErr := ArchiveNames(tarPath)
	cmd := exec.CommandContext(ctx, ctrPath, "-a", socket, "-n", CRINamespace,
		"images", "import", "--snapshotter", "overlayfs", tarPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("import %s: ctr: %w: %s", tarPath, err, strings.TrimSpace(string(out)))
	}
	// ctr prints "unpacking NAME (sha256:...)...done" for each image.
	seen := map[string]bool{}
	for _, n := range names {
		seen[n] = true
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "unpacking "); ok {
			if i := strings.Index(rest, " ("); i > 0 {
				seen[rest[:i]] = true
			}
		}
	}
	all := make([]string, 0, len(seen))
	for n := range seen {
		all = append(all, n)
	}
	sort.Strings(all)
	if len(all) == 0 {
		if nameErr != nil {
			return nil, fmt.Errorf("import %s: no image names: %w", tarPath, nameErr)
		}
		return nil, fmt.Errorf("import %s: the archive names no image (OCI archives need the %s annotation)", tarPath, annotationName)
	}
	return all, nil
}

// importedFile is the record of archives ImportDir has imported, kept in
// the directory itself, so that unchanged archives whose images
// containerd still has are not imported again at every start.
const importedFile = ".skiff-imported.json"

// importRecord identifies one imported archive version.
type importRecord struct {
	Size    int64    `json:"size"`
	ModTime int64    `json:"modTime"`
	Names   []string `json:"names"`
}

// ImportDir imports every *.tar file in dir (in name order) and returns
// all the image names. An archive is skipped when it is unchanged since
// ImportDir last imported it and containerd still has all its images. A
// missing dir imports nothing. It goes on past a bad archive and reports
// every failure.
func ImportDir(ctx context.Context, socket, dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, nil
	}
	sort.Strings(files)
	records := map[string]importRecord{}
	if raw, err := os.ReadFile(filepath.Join(dir, importedFile)); err == nil {
		_ = json.Unmarshal(raw, &records) // a damaged record only costs re-imports
	}
	have, err := listImages(ctx, socket)
	if err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	changed := false
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		base := filepath.Base(f)
		if rec, ok := records[base]; ok && rec.Size == fi.Size() && rec.ModTime == fi.ModTime().UnixNano() && len(rec.Names) > 0 && allIn(rec.Names, have) {
			names = append(names, rec.Names...)
			continue
		}
		n, err := Import(ctx, socket, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		names = append(names, n...)
		records[base] = importRecord{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Names: n}
		changed = true
	}
	if changed {
		for base := range records {
			if _, err := os.Stat(filepath.Join(dir, base)); err != nil {
				delete(records, base)
			}
		}
		raw, _ := json.MarshalIndent(records, "", "  ")
		tmp := filepath.Join(dir, importedFile+".tmp")
		if err := os.WriteFile(tmp, raw, 0o644); err != nil {
			errs = append(errs, fmt.Errorf("record imports: %w", err))
		} else if err := os.Rename(tmp, filepath.Join(dir, importedFile)); err != nil {
			errs = append(errs, fmt.Errorf("record imports: %w", err))
		}
	}
	return names, errors.Join(errs...)
}

// listImages returns the image names containerd has in the CRI namespace.
func listImages(ctx context.Context, socket string) (map[string]bool, error) {
	out, err := exec.CommandContext(ctx, ctrPath, "-a", socket, "-n", CRINamespace, "images", "ls", "-q").Output()
	if err != nil {
		return nil, fmt.Errorf("list images: ctr: %w", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Fields(string(out)) {
		have[line] = true
	}
	return have, nil
}

func allIn(names []string, set map[string]bool) bool {
	for _, n := range names {
		if !set[n] {
			return false
		}
	}
	return true
}

// ArchiveNames reads the image names an archive declares, without
// importing it: the io.containerd.image.name annotations of an OCI
// layout's index.json, or the RepoTags of a docker-save manifest.json,
// normalized the way containerd names them (docker.io/library/x:latest).
func ArchiveNames(tarPath string) ([]string, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, fmt.Errorf("open image archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	found := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read image archive %s: %w", tarPath, err)
		}
		switch strings.TrimPrefix(hdr.Name, "./") {
		case "index.json":
			var idx struct {
				Manifests []struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"manifests"`
			}
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				return nil, fmt.Errorf("read index.json of %s: %w", tarPath, err)
			}
			found = true
			for _, m := range idx.Manifests {
				if n := m.Annotations[annotationName]; n != "" {
					names = append(names, n)
				}
			}
		case "manifest.json":
			var man []struct{ RepoTags []string }
			if err := json.NewDecoder(tr).Decode(&man); err != nil {
				return nil, fmt.Errorf("read manifest.json of %s: %w", tarPath, err)
			}
			found = true
			for _, m := range man {
				for _, t := range m.RepoTags {
					names = append(names, NormalizeRef(t))
				}
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("%s is neither an OCI image layout nor a docker-save archive", tarPath)
	}
	sort.Strings(names)
	return slices.Compact(names), nil
}

// NormalizeRef expands a short image reference the way containerd's CRI
// does: "busybox" is docker.io/library/busybox:latest, "me/app:1" is
// docker.io/me/app:1; references with a registry host keep it, and a
// reference without tag or digest gets ":latest".
func NormalizeRef(ref string) string {
	name, suffix := ref, ""
	if i := strings.Index(name, "@"); i >= 0 {
		name, suffix = name[:i], name[i:]
	}
	slash := strings.Index(name, "/")
	if slash < 0 || !strings.ContainsAny(name[:slash], ".:") && name[:slash] != "localhost" {
		if slash < 0 {
			name = "library/" + name
		}
		name = "docker.io/" + name
	} else if rest, ok := strings.CutPrefix(name, "docker.io/"); ok && !strings.Contains(rest, "/") {
		name = "docker.io/library/" + rest
	}
	if suffix == "" && !strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
		name += ":latest"
	}
	return name + suffix
}
