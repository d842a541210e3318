package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// The appliance has no registry: its images are made at boot from the bb
// itself and imported into containerd's k8s.io namespace. The same one-layer
// image (bbin/bb plus links for the commands pods use) serves as the sandbox
// ("pause") image and as the image pods run.
const (
	pauseImage = "k4s.local/pause:v1"
	bbImage    = "k4s.local/bb:v1"
)

// Commands linked in the image, beside bbin/bb.
var imageCommands = []string{"sh", "gosh", "echo", "sleep", "cat", "ls", "true", "false", "date", "uname"}

// importImages writes the image as an OCI layout tar and imports it.
func importImages() error {
	start := time.Now()
	dir, err := os.MkdirTemp("", "k4s-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	layerPath := filepath.Join(dir, "layer.tar")
	layerDigest, layerSize, err := writeLayer(layerPath)
	if err != nil {
		return err
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": goarch(),
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": []string{"/bbin/bb"},
			"Cmd":        []string{"sleep", "2147483647"},
			"Env":        []string{"PATH=/bbin"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	configDigest := digestOf(config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layerSize}},
	})
	manifestDigest := digestOf(manifest)
	var refs []any
	for _, name := range []string{pauseImage, bbImage} {
		refs = append(refs, map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": len(manifest),
			"annotations": map[string]string{"io.containerd.image.name": name},
		})
	}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": refs})

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := func() error {
			add := func(name string, data []byte) error {
				if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
					return err
				}
				_, err := tw.Write(data)
				return err
			}
			if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
				return err
			}
			lf, err := os.Open(layerPath)
			if err != nil {
				return err
			}
			defer lf.Close()
			if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + layerDigest[7:], Mode: 0o644, Size: layerSize}); err != nil {
				return err
			}
			if _, err := io.Copy(tw, lf); err != nil {
				return err
			}
			if err := add("blobs/sha256/"+configDigest[7:], config); err != nil {
				return err
			}
			if err := add("blobs/sha256/"+manifestDigest[7:], manifest); err != nil {
				return err
			}
			if err := add("index.json", index); err != nil {
				return err
			}
			return tw.Close()
		}()
		pw.CloseWithError(err)
	}()

	client, err := containerd.New("/run/containerd/containerd.sock")
	if err != nil {
		return err
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	imgs, err := client.Import(ctx, pr)
	if err != nil {
		return fmt.Errorf("import images: %w", err)
	}
	for _, img := range imgs {
		if err := containerd.NewImage(client, img).Unpack(ctx, "overlayfs"); err != nil {
			return fmt.Errorf("unpack %s: %w", img.Name, err)
		}
		log.Printf("image %s imported", img.Name)
	}
	log.Printf("images ready after %s", time.Since(start).Round(time.Second))
	return nil
}

// writeLayer writes an uncompressed layer tar and returns its digest and size.
func writeLayer(path string) (string, int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	tw := tar.NewWriter(cw)
	epoch := time.Unix(0, 0)
	bb, err := os.Open("/bbin/bb")
	if err != nil {
		return "", 0, err
	}
	defer bb.Close()
	st, err := bb.Stat()
	if err != nil {
		return "", 0, err
	}
	hdrs := []*tar.Header{
		{Name: "bbin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch},
		{Name: "bbin/bb", Typeflag: tar.TypeReg, Mode: 0o755, Size: st.Size(), ModTime: epoch},
	}
	for _, c := range imageCommands {
		hdrs = append(hdrs, &tar.Header{Name: "bbin/" + c, Typeflag: tar.TypeSymlink, Linkname: "bb", Mode: 0o777, ModTime: epoch})
	}
	hdrs = append(hdrs,
		&tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "bbin", Mode: 0o777, ModTime: epoch},
		&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: epoch},
	)
	for _, hdr := range hdrs {
		if err := tw.WriteHeader(hdr); err != nil {
			return "", 0, err
		}
		if hdr.Name == "bbin/bb" {
			if _, err := io.Copy(tw, bb); err != nil {
				return "", 0, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}
