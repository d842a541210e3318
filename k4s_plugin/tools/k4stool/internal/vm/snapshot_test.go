//go:build !k4s_download

package vm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k4s.dev/tools/k4stool/internal/identity"
)

// A snapshot as k4s-node writes it (its body need not be gzip for the header check).
func snapshotBytes(body string) []byte {
	sum := sha256.Sum256([]byte(body))
	return []byte(fmt.Sprintf("%s{\"datastore\":\"kine\",\"keys\":2,\"sha256\":%q}\n%s", snapshotMagic, hex.EncodeToString(sum[:]), body))
}

func TestIdentityRestoreSnapshotGoesIntoTheArchive(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "k.snap")
	os.WriteFile(snap, snapshotBytes("records"), 0o600)
	f, err := restoreFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(dir, "image.cpio")
	os.WriteFile(image, []byte("070701"), 0o644)
	res, err := identity.Prepare(identity.Request{Dir: filepath.Join(dir, "id"), Image: image, APIPort: 6443, HostPort: 6443, Extra: []identity.File{f}}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	arch, _ := os.ReadFile(filepath.Join(res.Dir, "identity.cpio"))
	if !bytes.Contains(arch, []byte("etc/k4s/identity/datastore.snapshot\x00")) || !bytes.Contains(arch, snapshotBytes("records")) {
		t.Fatal("identity.cpio lacks etc/k4s/identity/datastore.snapshot with the snapshot")
	}
}

func TestIdentityRestoreRefusesADamagedSnapshot(t *testing.T) {
	dir := t.TempDir()
	good := snapshotBytes("records")
	for name, data := range map[string][]byte{
		"truncated":      good[:len(good)-2],
		"not a snapshot": []byte("SQLite format 3\x00"),
	} {
		p := filepath.Join(dir, "x.snap")
		os.WriteFile(p, data, 0o600)
		_, err := restoreFile(p)
		if err == nil || !strings.Contains(err.Error(), "E_SNAPSHOT") || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := restoreFile(filepath.Join(dir, "missing.snap")); err == nil {
		t.Error("a missing file is no error")
	}
}
