//go:build !k4s_download

package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"k4s.dev/tools/k4stool/internal/cli"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ociManifest is what the oci_image rule decides (k4s_plugin/rules/oci.py):
// the image's name, platform, process defaults and one layer's entries.
type ociManifest struct {
	Name       string   `json:"name"`
	Arch       string   `json:"arch"`
	Entrypoint []string `json:"entrypoint"`
	Cmd        []string `json:"cmd"`
	Env        []string `json:"env"`
	Records    []record `json:"records"` // file, dir, symlink (as for cpio)
}

// CmdOCI writes an OCI image layout as one tar (what `ctr images import`,
// containerd's client Import and `skopeo copy oci-archive:` read), the way
// `ko` makes an image from a Go binary: one gzip layer, the config and the
// manifest, an index naming the image. Reproducible: sorted entries, mtime 0,
// uid/gid 0, fixed gzip header, no build time in the config.
func CmdOCI(args []string) error {
	fs := cli.NewFlags("oci")
	manPath := fs.String("manifest", "image.json", "image manifest (see ociManifest)")
	out := fs.String("out", "image.tar", "output OCI layout tar")
	if err := fs.Parse(args, cli.NoArgs); err != nil {
		return err
	}
	work := cli.MustAbs(".")
	if !cli.Within(work, *manPath) || !cli.Within(work, *out) {
		return cli.Errorf("E_BAD_PATH", "-manifest and -out must be inside the working directory")
	}
	data, err := os.ReadFile(*manPath)
	if err != nil {
		return err
	}
	var m ociManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: %w", *manPath, err)
	}

	layer, diffID, err := ociLayer(work, m.Records)
	if err != nil {
		return err
	}
	epoch := time.Unix(0, 0).UTC()
	config := v1.Image{
		Created:  &epoch,
		Platform: v1.Platform{Architecture: m.Arch, OS: "linux"},
		Config:   v1.ImageConfig{Entrypoint: m.Entrypoint, Cmd: m.Cmd, Env: m.Env},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History:  []v1.History{{Created: &epoch, CreatedBy: "k4s oci_image", Comment: m.Name}},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return err
	}
	manifest := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    descriptor(v1.MediaTypeImageConfig, configJSON),
		Layers:    []v1.Descriptor{descriptor(v1.MediaTypeImageLayerGzip, layer)},
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	ref := descriptor(v1.MediaTypeImageManifest, manifestJSON)
	ref.Platform = &config.Platform
	ref.Annotations = map[string]string{
		v1.AnnotationRefName:       m.Name,
		"io.containerd.image.name": m.Name, // what containerd's import names the image by
	}
	index := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{ref}}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	layoutJSON, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})

	blobs := map[string][]byte{
		blobPath(descriptor("", layer).Digest): layer,
		blobPath(manifest.Config.Digest):       configJSON,
		blobPath(ref.Digest):                   manifestJSON,
		v1.ImageLayoutFile:                     layoutJSON,
		v1.ImageIndexFile:                      indexJSON,
	}
	var buf bytes.Buffer
	if err := writeLayout(&buf, blobs); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644)
}

// writeLayout writes blobs (name -> content) as an OCI layout tar (`oci`, `oci-config`):
// the blobs directories, then every file by name, mtime 0, PAX.
func writeLayout(w io.Writer, blobs map[string][]byte) error {
	names := make([]string, 0, len(blobs))
	for n := range blobs {
		names = append(names, n)
	}
	sort.Strings(names)
	epoch := time.Unix(0, 0)
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, n := range names {
		b := blobs[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}

func descriptor(mediaType string, b []byte) v1.Descriptor {
	return v1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// ociLayer writes the records as a gzip'd tar layer and returns it with the
// digest of the uncompressed tar (the config's diff ID).
func ociLayer(work string, records []record) ([]byte, digest.Digest, error) {
	byPath := map[string]record{}
	for _, r := range records {
		name := path.Clean(r.Path)
		if name == "." || strings.HasPrefix(name, "/") || name == ".." || strings.HasPrefix(name, "../") {
			return nil, "", cli.Errorf("E_BAD_PATH", "bad layer path %q", r.Path)
		}
		r.Path = name
		byPath[name] = r
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = record{Path: d, Type: "dir", Mode: 0o755}
			}
		}
	}
	names := make([]string, 0, len(byPath))
	for n := range byPath {
		names = append(names, n)
	}
	sort.Strings(names)

	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, h))
	for _, n := range names {
		r := byPath[n]
		hdr := &tar.Header{Name: n, ModTime: time.Unix(0, 0), Mode: int64(r.Mode), Format: tar.FormatPAX}
		var content []byte
		switch r.Type {
		case "dir":
			hdr.Typeflag, hdr.Name = tar.TypeDir, n+"/"
		case "symlink":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, r.Target, 0o777
		case "file":
			if !cli.Within(work, r.Src) {
				return nil, "", cli.Errorf("E_BAD_PATH", "layer file %q is outside the working directory", r.Src)
			}
			if content, err = os.ReadFile(r.Src); err != nil {
				return nil, "", err
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(content))
		default:
			return nil, "", fmt.Errorf("layer record %q: unknown type %q", r.Path, r.Type)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), nil
}
