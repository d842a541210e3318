//go:build !k4s_download

package vm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
)

// vmDisk is QEMU's arguments for `vm -disk <image>`: a raw image file on a
// virtio disk (the guest's /dev/vda), made sparse of `size` when missing; and
// the kernel argument that gives it to k4s-node (k4s.disk=/dev/vda, unless the
// command line names a disk already). QEMU's default cache mode passes the
// guest's flushes (fsync) on to the image file.
func vmDisk(path, size string, appendArgs []string) (qemuArgs []string, kernelArg string, err error) {
	if strings.Contains(path, ",") {
		return nil, "", cli.Errorf("E_USAGE", "-disk %q: QEMU's -drive cannot take a path with a comma; rename or link the image", path)
	}
	// Relative to where `pants run` was started; absolute in QEMU's command line (-print).
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	bytes, err := parseSize(size)
	if err != nil {
		return nil, "", cli.Errorf("E_USAGE", "-disk-size %q: %v; want bytes or a number with K, M, G or T, e.g. 4G", size, err)
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, "", cli.Errorf("E_USAGE", "-disk %q: %v", path, err)
		}
		err = f.Truncate(bytes)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, "", cli.Errorf("E_USAGE", "-disk %q: making a sparse image of %d bytes: %v", path, bytes, err)
		}
		fmt.Fprintf(os.Stderr, "k4s: data disk %s: a new sparse image of %s (the node formats it at its first boot)\n", path, size)
	case err != nil:
		return nil, "", cli.Errorf("E_USAGE", "-disk %q: %v", path, err)
	case !st.Mode().IsRegular() && st.Mode()&fs.ModeDevice == 0:
		return nil, "", cli.Errorf("E_USAGE", "-disk %q is neither an image file nor a block device", path)
	default:
		fmt.Fprintf(os.Stderr, "k4s: data disk %s (%d bytes; -disk-size applies only to a new image)\n", path, st.Size())
	}
	for _, a := range appendArgs {
		for _, w := range strings.Fields(a) {
			if strings.HasPrefix(w, "k4s.disk=") {
				return driveArgs(path), "", nil
			}
		}
	}
	return driveArgs(path), "k4s.disk=/dev/vda", nil
}

func driveArgs(path string) []string {
	return []string{"-drive", "file=" + path + ",format=raw,if=none,id=k4sdata", "-device", "virtio-blk-pci,drive=k4sdata"}
}

// parseSize reads 4G, 512M, 1T, 4096 (bytes; binary multiples).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	if n := len(s); n > 0 {
		switch strings.ToUpper(s[n-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("not a size")
	}
	if v*mult < 1<<30 {
		return 0, fmt.Errorf("smaller than 1 GiB, too small for a node's state")
	}
	return v * mult, nil
}
