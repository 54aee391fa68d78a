package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/agent/images"
	"github.com/skiff-sh/skiff/agent/runtime"
)

// imageCommand groups the local image tools: importing archives into a
// node that cannot pull, and building Skiff's own images.
func imageCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "image",
		Short: "Import image archives into this node, or build Skiff's local images",
	}
	c.AddCommand(imageImportCommand(), imageBuildCommand())
	return c
}

func imageImportCommand() *cobra.Command {
	var dataDir, agentDir string
	c := &cobra.Command{
		Use:   "import FILE.tar...",
		Short: "Make image archives (OCI layout or docker save) available to this node's pods",
		Long: `Copy image archives (OCI image layout or 'docker save' format) into the
agent's images directory, where the agent imports them at every start, and
import them right away if the agent's containerd is running. Pods can then
use the images with imagePullPolicy IfNotPresent or Never.`,
		Example: "  skiff image import myapp.tar\n  docker save myapp:1 -o myapp.tar && skiff image import myapp.tar",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if agentDir == "" {
				agentDir = filepath.Join(dataDir, "agent")
			}
			dest := filepath.Join(agentDir, "images")
			if err := os.MkdirAll(dest, 0o700); err != nil {
				return err
			}
			socket := runtime.SocketFor(filepath.Join(agentDir, "containerd"))
			running := socketAnswers(socket)
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
			defer cancel()
			var errs []error
			for _, src := range args {
				names, err := images.ArchiveNames(src)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				target := filepath.Join(dest, filepath.Base(src))
				if err := copyFile(src, target); err != nil {
					errs = append(errs, fmt.Errorf("copy %s: %w", src, err))
					continue
				}
				if running {
					if names, err = images.Import(ctx, socket, target); err != nil {
						errs = append(errs, err)
						continue
					}
				}
				for _, n := range names {
					fmt.Println(n)
				}
			}
			if !running {
				fmt.Fprintf(os.Stderr, "The agent's containerd (%s) is not running; the images will be imported when the agent starts.\n", socket)
			}
			return errors.Join(errs...)
		},
	}
	f := c.Flags()
	f.StringVar(&dataDir, "data-dir", defaultDataDir, "Skiff's data directory; the agent's is DATA_DIR/agent")
	f.StringVar(&agentDir, "agent-dir", "", "the agent's data directory, if not DATA_DIR/agent (what 'skiff agent --data-dir' got)")
	return c
}

func imageBuildCommand() *cobra.Command {
	var out, demo string
	c := &cobra.Command{
		Use:   "build --out DIR",
		Short: "Write Skiff's local images (pause, busybox, nginx, demo) as OCI archives",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if demo == "" {
				demo = demoBinary()
			}
			builds := []struct {
				file  string
				write func(io.Writer) error
			}{
				{"pause.tar", images.WritePause},
				{"busybox.tar", images.WriteBusybox},
				{"nginx.tar", images.WriteNginx},
			}
			if demo != "" {
				builds = append(builds, struct {
					file  string
					write func(io.Writer) error
				}{"demo.tar", func(w io.Writer) error { return images.WriteDemo(w, demo) }})
			} else {
				fmt.Fprintln(os.Stderr, "skipping demo.tar: no skiff-demo binary (use --demo-binary)")
			}
			var errs []error
			for _, b := range builds {
				path := filepath.Join(out, b.file)
				if err := writeArchive(path, b.write); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", b.file, err))
					continue
				}
				fmt.Println(path)
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to write the archives to")
	c.Flags().StringVar(&demo, "demo-binary", "", "compiled skiff-demo (default: skiff-demo beside this binary)")
	_ = c.MarkFlagRequired("out")
	return c
}

// socketAnswers reports whether something accepts connections on socket.
func socketAnswers(socket string) bool {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// writeArchive writes an archive through a temporary file.
func writeArchive(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".build-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = write(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// copyFile copies src to dst through a temporary file in dst's directory.
func copyFile(src, dst string) error {
	if a, err := filepath.Abs(src); err == nil {
		if b, err := filepath.Abs(dst); err == nil && a == b {
			return nil // already in place
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeArchive(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
