package main

// The data disk: state that survives a reboot, a power cut or a new image.
//
// With k4s.disk=<device> (or LABEL=<label>) on the kernel command line, or
// -disk, k4s-node mounts an ext4 filesystem on that disk at the state
// directory (-data, /var/lib/k4s: the datastore, the PKI, kubeconfigs, the
// audit log) and bind-mounts three of its directories over the kubelet's,
// containerd's and the logs' (kubelet/ -> /var/lib/kubelet, containerd/ ->
// /var/lib/containerd, log/ -> /var/log), before anything is configured; the
// image's pod image archives (imagesDir) stay in sight, bound over images/.
// A disk that is empty (its first and last MiB all zero) is formatted on its
// first boot, in Go (github.com/diskfs/go-diskfs: a journaled ext4 the
// kernel mounts read-write, checked clean by e2fsck in disk_test.go) and
// labelled k4s-data; a disk with a filesystem or data on it is never
// formatted: an ext4 labelled k4s-data is mounted, anything else stops the
// node with what to do. After a power cut the kernel replays the journal at
// mount. Without a disk the state is RAM (tmpfs, as before), said once on
// the console.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"golang.org/x/sys/unix"
)

// diskLabel is the label of the filesystems k4s-node makes (and the only
// ones it mounts).
const diskLabel = "k4s-data"

var diskFlag = flag.String("disk", "", "the data disk for the node's state: a device (/dev/vda) or LABEL="+diskLabel+
	"; formatted (ext4) when empty, never when it holds data (default: none, the state is RAM)")

// onDisk is set once the data disk is mounted.
var onDisk bool

// persistent tells whether the node's state is on a data disk (else RAM).
func persistent() bool { return onDisk }

// diskBinds are the directories of the disk bind-mounted over the system's.
var diskBinds = []struct {
	sub, dst string
	mode     os.FileMode
}{
	{"kubelet", "/var/lib/kubelet", 0o700},
	{"containerd", "/var/lib/containerd", 0o711},
	{"log", "/var/log", 0o755},
}

// setupDataDisk mounts the data disk at dir (the state directory) when the
// node has one; else it says that the state is RAM only.
func setupDataDisk(dir string) error {
	spec := strings.TrimSpace(*diskFlag)
	if spec == "" {
		log.Printf("no data disk (k4s.disk=): this node's state (%s, the datastore, the PKI, /var/lib/kubelet, "+
			"/var/lib/containerd, /var/log) is RAM only; a reboot or a power cut loses the cluster. "+
			"Attach a disk (`pants run <target> -- -disk <image>`, or node_appliance(..., data_disk=...)) to keep it", dir)
		return nil
	}
	start := time.Now()
	dev, err := waitDevice(spec, 30*time.Second)
	if err != nil {
		return err
	}
	state, label, err := diskState(dev)
	if err != nil {
		return fmt.Errorf("data disk %s: %w", dev, err)
	}
	switch state {
	case diskEmpty:
		log.Printf("data disk %s is empty: formatting it (ext4, label %s)", dev, diskLabel)
		started := time.Now()
		if err := formatDisk(dev); err != nil {
			return fmt.Errorf("data disk %s: format: %w", dev, err)
		}
		log.Printf("data disk %s formatted in %s", dev, time.Since(started).Round(time.Millisecond))
	case diskForeign:
		return fmt.Errorf("data disk %s holds an ext2/3/4 filesystem labelled %q, not %q: k4s-node mounts only disks it "+
			"formatted and never formats one with data. Give it an empty disk, or label this one %s (e2label %s %s) "+
			"if its files are meant for the node", dev, label, diskLabel, diskLabel, dev, diskLabel)
	case diskData:
		return fmt.Errorf("data disk %s has data on it and no %s filesystem: not formatted (k4s-node formats only a disk "+
			"whose first and last MiB are zero). Give it an empty disk, or wipe this one if nothing on it is needed", dev, diskLabel)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The image's pod image archives live under the state directory (imagesDir):
	// keep them in sight of importImages once the disk is mounted over it, from
	// this image (an upgrade brings its own).
	images := filepath.Join(dir, "images")
	keptImages := "/run/k4s/image-archives"
	if st, err := os.Stat(images); err == nil && st.IsDir() {
		if err := os.MkdirAll(keptImages, 0o700); err != nil {
			return err
		}
		if err := unix.Mount(images, keptImages, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("data disk: bind %s on %s: %w", images, keptImages, err)
		}
	} else {
		keptImages = ""
	}
	if err := unix.Mount(dev, dir, "ext4", unix.MS_NOATIME|unix.MS_NODEV|unix.MS_NOSUID, "errors=remount-ro"); err != nil {
		return fmt.Errorf("data disk %s: mount ext4 on %s: %w (the image needs the virtio_blk and ext4 kernel modules: "+
			"NODE_KERNEL_MODULES)", dev, dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	for _, b := range diskBinds {
		src := filepath.Join(dir, b.sub)
		if err := os.MkdirAll(src, b.mode); err != nil {
			return err
		}
		if err := os.MkdirAll(b.dst, b.mode); err != nil {
			return err
		}
		if err := unix.Mount(src, b.dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("data disk: bind %s on %s: %w", src, b.dst, err)
		}
		if err := os.Chmod(b.dst, b.mode); err != nil {
			return err
		}
	}
	if keptImages != "" {
		if err := os.MkdirAll(images, 0o700); err != nil {
			return err
		}
		if err := unix.Mount(keptImages, images, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("data disk: bind %s on %s: %w", keptImages, images, err)
		}
	}
	onDisk = true
	log.Printf("data disk %s mounted on %s in %s (kubelet, containerd and log bound on %s, %s, %s): the node's state persists",
		dev, dir, time.Since(start).Round(time.Millisecond), diskBinds[0].dst, diskBinds[1].dst, diskBinds[2].dst)
	return nil
}

// waitDevice resolves the -disk value to a device node, waiting for the kernel
// to find it (its driver is a module loaded just before).
func waitDevice(spec string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		var dev string
		if label, ok := strings.CutPrefix(spec, "LABEL="); ok {
			dev = findLabel("/sys/class/block", "/dev", label)
		} else if _, err := os.Stat(spec); err == nil {
			dev = spec
		}
		if dev != "" {
			return dev, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("data disk %s (k4s.disk=): not found after %s; attach it (`pants run <target> -- -disk <image>` "+
				"makes /dev/vda) or fix the kernel argument", spec, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// findLabel is the device (under devDir) of the block device (listed in
// sysBlock) whose ext2/3/4 filesystem has the label.
func findLabel(sysBlock, devDir, label string) string {
	entries, _ := os.ReadDir(sysBlock)
	for _, e := range entries {
		dev := filepath.Join(devDir, e.Name())
		if l, ok := ext4Label(dev); ok && l == label {
			return dev
		}
	}
	return ""
}

type diskKind int

const (
	diskEmpty   diskKind = iota // the first and last MiB are zero
	diskK4s                     // an ext2/3/4 filesystem labelled k4s-data
	diskForeign                 // an ext2/3/4 filesystem labelled otherwise
	diskData                    // anything else that is not zero
)

const (
	sbOffset    = 1024 // the ext2/3/4 superblock's place on the disk
	sbMagicOff  = 0x38 // s_magic, little-endian 0xEF53
	sbLabelOff  = 0x78 // s_volume_name[16]
	ext4Magic   = 0xEF53
	scannedSize = 1 << 20
)

// ext4Label reads the label of an ext2/3/4 filesystem on path, if it has one.
func ext4Label(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, sbOffset); err != nil {
		return "", false
	}
	if binary.LittleEndian.Uint16(sb[sbMagicOff:]) != ext4Magic {
		return "", false
	}
	return string(bytes.TrimRight(sb[sbLabelOff:sbLabelOff+16], "\x00")), true
}

// diskState tells what is on a disk: a k4s filesystem, another one, other
// data, or nothing. Partition tables (MBR, GPT and its backup at the end),
// filesystems' superblocks and LVM/RAID labels all live in the first or the
// last MiB: a disk whose first and last MiB are zero is taken as empty.
func diskState(path string) (diskKind, string, error) {
	if label, ok := ext4Label(path); ok {
		if label == diskLabel {
			return diskK4s, label, nil
		}
		return diskForeign, label, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, "", err
	}
	if size < 64<<20 {
		return 0, "", fmt.Errorf("%d bytes: too small for the node's state (give it at least 1 GiB)", size)
	}
	buf := make([]byte, scannedSize)
	for _, off := range []int64{0, size - scannedSize} {
		if _, err := f.ReadAt(buf, off); err != nil {
			return 0, "", err
		}
		for _, b := range buf {
			if b != 0 {
				return diskData, "", nil
			}
		}
	}
	return diskEmpty, "", nil
}

// formatDisk makes a journaled ext4 filesystem labelled k4s-data on the whole
// of path (a device or an image file) and syncs it.
func formatDisk(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	// One inode per 16 KiB (mke2fs' default for ext4): container image layers
	// are many small files.
	if _, err := ext4.Create(file.New(f, false), size, 0, 512,
		&ext4.Params{VolumeName: diskLabel, InodeRatio: 16384}); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if l, ok := ext4Label(path); !ok || l != diskLabel {
		return errors.New("the new filesystem's superblock does not read back")
	}
	return nil
}
