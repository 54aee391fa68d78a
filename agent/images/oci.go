package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// epoch is the modification time of every file in the archives Skiff
// builds, so that the same inputs always give the same digests.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Media types and annotations of the OCI image spec and containerd.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
	annotationName    = "io.containerd.image.name"
	annotationRefName = "org.opencontainers.image.ref.name"
)

// entry is one file system object of a layer.
type entry struct {
	typ  byte  // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	mode int64 // permission bits
	uid  int
	gid  int
	data []byte // regular file content, when src is ""
	src  string // host file whose content a regular file gets
	link string // symlink target
}

// layer is a file tree written as one uncompressed tar layer. Paths are
// absolute inside the image ("/bin/sh"); missing parents become 0755
// directories owned by root.
type layer struct {
	entries map[string]*entry
}

func newLayer() *layer { return &layer{entries: map[string]*entry{}} }

func (l *layer) add(p string, e *entry) {
	l.entries[path.Clean("/"+p)] = e
}

func (l *layer) dir(p string, mode int64) { l.add(p, &entry{typ: tar.TypeDir, mode: mode}) }

func (l *layer) file(p string, mode int64, data []byte) {
	l.add(p, &entry{typ: tar.TypeReg, mode: mode, data: data})
}

func (l *layer) hostFile(p string, mode int64, src string) {
	l.add(p, &entry{typ: tar.TypeReg, mode: mode, src: src})
}

func (l *layer) symlink(p, target string) {
	l.add(p, &entry{typ: tar.TypeSymlink, mode: 0o777, link: target})
}

// chown sets the owner of an existing entry.
func (l *layer) chown(p string, uid, gid int) {
	if e := l.entries[path.Clean("/"+p)]; e != nil {
		e.uid, e.gid = uid, gid
	}
}

// write writes the layer as a tar stream with sorted names, parents first.
func (l *layer) write(w io.Writer) error {
	all := map[string]*entry{}
	for p, e := range l.entries {
		all[p] = e
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := l.entries[d]; !ok {
				all[d] = &entry{typ: tar.TypeDir, mode: 0o755}
			}
		}
	}
	names := make([]string, 0, len(all))
	for p := range all {
		if p != "/" {
			names = append(names, p)
		}
	}
	// Sorting on the path with "/" as the lowest byte keeps every
	// directory directly before its contents.
	sort.Slice(names, func(i, j int) bool {
		return strings.ReplaceAll(names[i], "/", "\x00") < strings.ReplaceAll(names[j], "/", "\x00")
	})
	tw := tar.NewWriter(w)
	for _, p := range names {
		e := all[p]
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     strings.TrimPrefix(p, "/"),
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		var content io.Reader
		switch e.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeSymlink:
			hdr.Linkname = e.link
		case tar.TypeReg:
			if e.src != "" {
				f, err := os.Open(e.src)
				if err != nil {
					return fmt.Errorf("add %s: %w", p, err)
				}
				fi, err := f.Stat()
				if err != nil {
					f.Close()
					return fmt.Errorf("add %s: %w", p, err)
				}
				hdr.Size = fi.Size()
				content = f
			} else {
				hdr.Size = int64(len(e.data))
				content = bytes.NewReader(e.data)
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			if c, ok := content.(io.Closer); ok {
				c.Close()
			}
			return fmt.Errorf("write layer entry %s: %w", p, err)
		}
		if content != nil {
			n, err := io.Copy(tw, content)
			if c, ok := content.(io.Closer); ok {
				c.Close()
			}
			if err != nil {
				return fmt.Errorf("write layer entry %s: %w", p, err)
			}
			if n != hdr.Size {
				return fmt.Errorf("write layer entry %s: file changed size while read", p)
			}
		}
	}
	return tw.Close()
}

// imageConfig is the runtime part of an OCI image configuration.
type imageConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// image is an image to write: its references, one layer and its config.
type image struct {
	names  []string // full references, e.g. docker.io/library/busybox:latest
	arch   string
	layer  *layer
	config imageConfig
	note   string // history comment
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// writeImage writes img as an OCI image layout tar archive and returns
// the image ID (the config digest, as CRI reports it).
func writeImage(w io.Writer, img image) (string, error) {
	var layerBuf bytes.Buffer
	if err := img.layer.write(&layerBuf); err != nil {
		return "", err
	}
	layerDigest := digestOf(layerBuf.Bytes())
	cfg := map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": img.arch,
		"os":           "linux",
		"config":       img.config,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
		"history":      []map[string]any{{"created": epoch.Format(time.RFC3339), "created_by": img.note}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode image config: %w", err)
	}
	cfgDesc := descriptor{MediaType: mediaTypeConfig, Digest: digestOf(cfgJSON), Size: int64(len(cfgJSON))}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        cfgDesc,
		"layers":        []descriptor{{MediaType: mediaTypeLayer, Digest: layerDigest, Size: int64(layerBuf.Len())}},
	})
	if err != nil {
		return "", fmt.Errorf("encode image manifest: %w", err)
	}
	manDigest := digestOf(manifest)
	var manifests []descriptor
	for _, n := range img.names {
		manifests = append(manifests, descriptor{
			MediaType:   mediaTypeManifest,
			Digest:      manDigest,
			Size:        int64(len(manifest)),
			Annotations: map[string]string{annotationName: n, annotationRefName: tagOf(n)},
		})
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaTypeIndex, "manifests": manifests})
	if err != nil {
		return "", fmt.Errorf("encode image index: %w", err)
	}

	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		typ, mode := byte(tar.TypeReg), int64(0o644)
		if data == nil {
			typ, mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		return nil
	}
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	files := []struct {
		name string
		data []byte
	}{
		{"blobs/", nil},
		{"blobs/sha256/", nil},
		{blob(cfgDesc.Digest), cfgJSON},
		{blob(layerDigest), layerBuf.Bytes()},
		{blob(manDigest), manifest},
		{"index.json", index},
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	}
	blobs := files[2:5]
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].name < blobs[j].name })
	for _, f := range files {
		if err := put(f.name, f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("finish image archive: %w", err)
	}
	return cfgDesc.Digest, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tagOf returns the tag of a reference ("latest" when it has none).
func tagOf(ref string) string {
	last := ref[strings.LastIndex(ref, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return "latest"
}
