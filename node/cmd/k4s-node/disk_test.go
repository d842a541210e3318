package main

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sparseImage makes a sparse file of size bytes (an empty disk).
func sparseImage(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func kind(t *testing.T, path string) diskKind {
	t.Helper()
	k, _, err := diskState(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The filesystem formatDisk makes is an ext4 with a journal that e2fsprogs
// finds clean, labelled k4s-data, and detected as the node's own afterwards.
func TestFormatDiskMakesCleanJournaledExt4(t *testing.T) {
	img := sparseImage(t, 1<<30)
	if got := kind(t, img); got != diskEmpty {
		t.Fatalf("a sparse image: kind %d, want empty", got)
	}
	if err := formatDisk(img); err != nil {
		t.Fatal(err)
	}
	if got := kind(t, img); got != diskK4s {
		t.Fatalf("after formatDisk: kind %d, want k4s", got)
	}
	if l, ok := ext4Label(img); !ok || l != diskLabel {
		t.Fatalf("label %q %v", l, ok)
	}
	e2fsck, err := exec.LookPath("e2fsck")
	if err != nil {
		e2fsck = "/usr/sbin/e2fsck"
		if _, err := os.Stat(e2fsck); err != nil {
			t.Skip("no e2fsck (e2fsprogs) to check the filesystem with")
		}
	}
	if out, err := exec.Command(e2fsck, "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
	dumpe2fs := filepath.Join(filepath.Dir(e2fsck), "dumpe2fs")
	out, err := exec.Command(dumpe2fs, "-h", img).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs: %v\n%s", err, out)
	}
	for _, want := range []string{"has_journal", "extent", "Filesystem volume name:   k4s-data"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dumpe2fs -h: no %q in\n%s", want, out)
		}
	}
}

// A disk is never formatted when anything is on it: a partition table or a
// filesystem at the start, a GPT backup at the end, another ext4.
func TestDiskStateRefusesData(t *testing.T) {
	junk := make([]byte, 512)
	rand.Read(junk)
	start := sparseImage(t, 256<<20)
	writeAt(t, start, 0, junk) // an MBR, a boot sector
	if got := kind(t, start); got != diskData {
		t.Errorf("data at the start: kind %d, want data", got)
	}
	end := sparseImage(t, 256<<20)
	writeAt(t, end, 256<<20-512, junk) // a GPT backup header
	if got := kind(t, end); got != diskData {
		t.Errorf("data at the end: kind %d, want data", got)
	}
	other := sparseImage(t, 256<<20)
	if err := formatDisk(other); err != nil {
		t.Fatal(err)
	}
	writeAt(t, other, sbOffset+sbLabelOff, []byte("photos\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	k, label, err := diskState(other)
	if err != nil || k != diskForeign || label != "photos" {
		t.Errorf("another ext4: kind %d label %q err %v, want foreign photos", k, label, err)
	}
	if _, _, err := diskState(sparseImage(t, 1<<20)); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("a 1 MiB disk: %v, want too small", err)
	}
}

func TestFindLabel(t *testing.T) {
	sys, dev := t.TempDir(), t.TempDir()
	img := sparseImage(t, 256<<20)
	if err := formatDisk(img); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vda", "vdb"} {
		os.Mkdir(filepath.Join(sys, name), 0o755)
	}
	os.WriteFile(filepath.Join(dev, "vda"), make([]byte, 4096), 0o600)
	if err := os.Symlink(img, filepath.Join(dev, "vdb")); err != nil {
		t.Fatal(err)
	}
	if got := findLabel(sys, dev, diskLabel); got != filepath.Join(dev, "vdb") {
		t.Errorf("findLabel: %q, want %s/vdb", got, dev)
	}
	if got := findLabel(sys, dev, "other"); got != "" {
		t.Errorf("findLabel(other): %q, want none", got)
	}
}
