//go:build !k4s_download

package vm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestVMDisk(t *testing.T) {
	img := filepath.Join(t.TempDir(), "node.img")
	args, karg, err := vmDisk(img, "2G", []string{"cgroup_no_v1=all", ""})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(img)
	if err != nil || st.Size() != 2<<30 {
		t.Fatalf("new image: %v %v", st, err)
	}
	if blocks(st) > 64 {
		t.Errorf("the new image is not sparse: %d blocks", blocks(st))
	}
	if karg != "k4s.disk=/dev/vda" || !slices.Contains(args, "virtio-blk-pci,drive=k4sdata") ||
		!slices.Contains(args, "file="+img+",format=raw,if=none,id=k4sdata") {
		t.Errorf("args %v, kernel arg %q", args, karg)
	}
	// An existing image keeps its size; a disk named on the command line is left alone.
	if _, karg, err = vmDisk(img, "8G", []string{"k4s.disk=LABEL=k4s-data"}); err != nil || karg != "" {
		t.Errorf("existing image with k4s.disk= given: %q %v", karg, err)
	}
	if st, _ := os.Stat(img); st.Size() != 2<<30 {
		t.Errorf("the existing image was resized to %d", st.Size())
	}
	for _, bad := range []string{"4X", "0", "512M", "-1G", ""} {
		if _, _, err := vmDisk(filepath.Join(t.TempDir(), "x.img"), bad, nil); err == nil || !strings.Contains(err.Error(), "-disk-size") {
			t.Errorf("size %q: %v", bad, err)
		}
	}
	if _, _, err := vmDisk("/tmp/a,b.img", "4G", nil); err == nil {
		t.Errorf("a path with a comma was accepted")
	}
}

func blocks(st os.FileInfo) int64 {
	return st.Sys().(*syscall.Stat_t).Blocks
}
