//go:build !k4s_download

package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeImage runs `oci` on a one-file layer in dir and returns the tar's path.
func writeImage(t *testing.T, dir string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "bb"), []byte("#!bb"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := ociManifest{Name: "k4s.local/t:1", Arch: "amd64", Cmd: []string{"sh"}, Env: []string{"PATH=/bbin"},
		Records: []record{{Path: "bbin/bb", Type: "file", Src: "bb", Mode: 0o4755}}}
	data, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "m.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CmdOCI([]string{"-manifest", "m.json", "-out", "image.tar"}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "image.tar")
}

func TestOCIConfigSetsUser(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	orig, err := os.ReadFile(writeImage(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := CmdOCIConfig([]string{"-in", "image.tar", "-user", "1234:5", "-out", "user.tar"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile("user.tar")
	blobs, err := readLayout(got)
	if err != nil {
		t.Fatal(err)
	}
	var index v1.Index
	if err := json.Unmarshal(blobs[v1.ImageIndexFile], &index); err != nil {
		t.Fatal(err)
	}
	ref := index.Manifests[0]
	if ref.Annotations[v1.AnnotationRefName] != "k4s.local/t:1" || ref.Platform == nil || ref.Platform.Architecture != "amd64" {
		t.Errorf("index entry lost its name or platform: %+v", ref)
	}
	manifestJSON, err := blob(blobs, ref)
	if err != nil {
		t.Fatal(err)
	}
	var manifest v1.Manifest
	_ = json.Unmarshal(manifestJSON, &manifest)
	configJSON, err := blob(blobs, manifest.Config)
	if err != nil {
		t.Fatal(err)
	}
	var config v1.Image
	_ = json.Unmarshal(configJSON, &config)
	if config.Config.User != "1234:5" || strings.Join(config.Config.Cmd, " ") != "sh" {
		t.Errorf("config = %+v, want User 1234:5 and the Cmd kept", config.Config)
	}
	// The layer is the same blob; the old config and manifest are gone.
	origBlobs, _ := readLayout(orig)
	if len(origBlobs) != len(blobs) {
		t.Errorf("%d files, want %d (old config/manifest left behind?)", len(blobs), len(origBlobs))
	}
	layer, err := blob(blobs, manifest.Layers[0])
	if err != nil || !bytes.Equal(layer, origBlobs[blobPath(manifest.Layers[0].Digest)]) {
		t.Errorf("layer changed or missing: %v", err)
	}
	// The setuid mode of the record reaches the layer's header.
	if mode := layerMode(t, layer, "bbin/bb"); mode != 0o4755 {
		t.Errorf("bbin/bb mode %o, want 4755", mode)
	}
	// Same inputs, same bytes.
	if err := CmdOCIConfig([]string{"-in", "image.tar", "-user", "1234:5", "-out", "again.tar"}); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile("again.tar")
	if !bytes.Equal(again, got) {
		t.Error("two runs gave different archives")
	}
}

func layerMode(t *testing.T, gz []byte, name string) int64 {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	r := tar.NewReader(zr)
	for {
		hdr, err := r.Next()
		if err != nil {
			t.Fatalf("%s not in the layer: %v", name, err)
		}
		if hdr.Name == name {
			return hdr.Mode
		}
	}
}

func TestOCIConfigRefusesNamesAndEscapes(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeImage(t, dir)
	for _, args := range [][]string{
		{"-in", "image.tar", "-user", "nobody", "-out", "o.tar"},
		{"-in", "image.tar", "-user", "1:2:3", "-out", "o.tar"},
		{"-in", "image.tar", "-user", "", "-out", "o.tar"},
		{"-in", "image.tar", "-user", "1", "-out", "../o.tar"},
	} {
		if err := CmdOCIConfig(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
