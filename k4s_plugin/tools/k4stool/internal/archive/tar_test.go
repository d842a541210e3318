//go:build !k4s_download

package archive

// k4stool's own checks on the values it is given (defence in depth behind the
// Pants rules' field checks): no value becomes a flag or a path outside the
// working directory. Run by tests/integration/test_bad_input.py (`go test ./k4stool/...`).

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tar that plants a symlink and then writes through it is refused.
func TestUnpackTreeDoesNotWriteThroughSymlinks(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	os.Mkdir(outside, 0o755)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside, Mode: 0o777})
	tw.WriteHeader(&tar.Header{Name: "link/pwned.txt", Typeflag: tar.TypeReg, Size: 2, Mode: 0o644})
	tw.Write([]byte("x\n"))
	tw.Close()
	tarPath := filepath.Join(dir, "evil.tar")
	os.WriteFile(tarPath, buf.Bytes(), 0o644)
	err := UnpackTree(tarPath, filepath.Join(dir, "dest"))
	if err == nil || !strings.Contains(err.Error(), "under the symlink") {
		t.Fatalf("unpackTree = %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "pwned.txt")); err == nil {
		t.Error("unpackTree wrote through a symlink")
	}

	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../escape.txt", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	os.WriteFile(tarPath, buf.Bytes(), 0o644)
	if err := UnpackTree(tarPath, filepath.Join(dir, "dest2")); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Fatalf("unpackTree(../escape.txt) = %v, want a refusal", err)
	}
}
