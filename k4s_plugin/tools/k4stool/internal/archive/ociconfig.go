//go:build !k4s_download

package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"k4s.dev/tools/k4stool/internal/cli"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// A numeric user, or user:group, as the oci_image rule checks it (k4s_plugin/
// grammar.py): the layer has no /etc/passwd, so a name would not resolve.
var ociUser = regexp.MustCompile(`^[0-9]{1,10}(:[0-9]{1,10})?$`)

// CmdOCIConfig sets the image config's User in an OCI layout tar that `k4stool
// oci` wrote, and writes the result: a new config blob, a new manifest naming
// it, the index naming the new manifest (its platform and annotations kept),
// the layer untouched. Same layout and headers as `oci` (sorted entries, mtime
// 0, uid/gid 0), so the same inputs give the same bytes.
//
// It is a step of its own, so an image without `user` never runs it and keeps
// the bytes it had before the field existed.
func CmdOCIConfig(args []string) error {
	fs := cli.NewFlags("oci-config")
	in := fs.String("in", "image.tar", "OCI layout tar written by `k4stool oci`")
	user := fs.String("user", "", "the image config's User: UID or UID:GID (numeric)")
	out := fs.String("out", "image.tar", "output OCI layout tar")
	if err := fs.Parse(args, cli.NoArgs); err != nil {
		return err
	}
	work := cli.MustAbs(".")
	if !cli.Within(work, *in) || !cli.Within(work, *out) {
		return cli.Errorf("E_BAD_PATH", "-in and -out must be inside the working directory")
	}
	if !ociUser.MatchString(*user) {
		return cli.Errorf("E_BAD_USER", "-user %q is not UID or UID:GID (numbers)", *user)
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	blobs, err := readLayout(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if err := setUser(blobs, *user); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	var buf bytes.Buffer
	if err := writeLayout(&buf, blobs); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return cli.WriteFileAtomic(*out, buf.Bytes(), 0o644)
}

// readLayout reads an OCI layout tar's regular files by name.
func readLayout(data []byte) (map[string][]byte, error) {
	blobs := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return blobs, nil
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		blobs[hdr.Name] = b
	}
}

// blob returns the blob a descriptor names, checked against its digest.
func blob(blobs map[string][]byte, d v1.Descriptor) ([]byte, error) {
	b, ok := blobs[blobPath(d.Digest)]
	if !ok {
		return nil, fmt.Errorf("no blob %s", d.Digest)
	}
	if digest.FromBytes(b) != d.Digest {
		return nil, fmt.Errorf("blob %s does not match its digest", d.Digest)
	}
	return b, nil
}

// setUser replaces the single image's config and manifest in blobs by ones
// whose config has User set.
func setUser(blobs map[string][]byte, user string) error {
	var index v1.Index
	if err := json.Unmarshal(blobs[v1.ImageIndexFile], &index); err != nil {
		return fmt.Errorf("%s: %w", v1.ImageIndexFile, err)
	}
	if len(index.Manifests) != 1 {
		return fmt.Errorf("%s names %d images, want 1", v1.ImageIndexFile, len(index.Manifests))
	}
	manifestJSON, err := blob(blobs, index.Manifests[0])
	if err != nil {
		return err
	}
	var manifest v1.Manifest
	if err := json.Unmarshal(manifestJSON, &manifest); err != nil {
		return err
	}
	configJSON, err := blob(blobs, manifest.Config)
	if err != nil {
		return err
	}
	var config v1.Image
	if err := json.Unmarshal(configJSON, &config); err != nil {
		return err
	}
	config.Config.User = user
	if configJSON, err = json.Marshal(config); err != nil {
		return err
	}
	delete(blobs, blobPath(manifest.Config.Digest))
	delete(blobs, blobPath(index.Manifests[0].Digest))
	manifest.Config = descriptor(manifest.Config.MediaType, configJSON)
	if manifestJSON, err = json.Marshal(manifest); err != nil {
		return err
	}
	ref := index.Manifests[0]
	fresh := descriptor(ref.MediaType, manifestJSON)
	ref.Digest, ref.Size = fresh.Digest, fresh.Size
	index.Manifests[0] = ref
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	blobs[blobPath(manifest.Config.Digest)] = configJSON
	blobs[blobPath(ref.Digest)] = manifestJSON
	blobs[v1.ImageIndexFile] = indexJSON
	return nil
}
