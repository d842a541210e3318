package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setupSystem prepares a diskless machine for Kubernetes.
func setupSystem() error {
	mounts := []struct {
		src, dst, fstype, opts string
		flags                  uintptr
	}{
		{"proc", "/proc", "proc", "", 0},
		{"sysfs", "/sys", "sysfs", "", 0},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755", 0},
		{"devpts", "/dev/pts", "devpts", "newinstance,ptmxmode=0666", 0},
		{"tmpfs", "/dev/shm", "tmpfs", "mode=1777", 0},
		{"tmpfs", "/run", "tmpfs", "mode=0755", 0},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", "", 0},
	}
	if err := cgroupV2Only(); err != nil {
		return err
	}
	for _, m := range mounts {
		if mounted(m.dst) {
			continue
		}
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, m.flags, m.opts); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	if err := tmpfsRoot(); err != nil {
		return fmt.Errorf("tmpfs root: %w", err)
	}
	if err := loadModules("/etc/modules-load.d/k4s.conf"); err != nil {
		return err
	}
	for k, v := range map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
		"fs/inotify/max_user_instances":       "1024",
	} {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0); err != nil {
			log.Printf("sysctl %s=%s: %v", k, v, err)
		}
	}
	enableCgroupControllers()
	return setupNetwork()
}

// kubeletControllers are the cgroup v2 controllers the kubelet sets limits with.
var kubeletControllers = []string{"cpu", "cpuset", "io", "memory", "pids"}

// enableCgroupControllers lets the kubelet's cgroups use every controller of the
// root cgroup. A controller that was bound to a cgroup v1 hierarchy (u-root's
// init mounts them) joins cgroup v2 only once the kernel has destroyed that
// hierarchy, some time after cgroupV2Only unmounted it: wait for the ones the
// kubelet needs (else it fails pods with "openat2 .../cpu.weight: no such file").
func enableCgroupControllers() {
	var have []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ctrl, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		if err != nil {
			log.Printf("cgroup controllers: %v", err)
			return
		}
		have = strings.Fields(string(ctrl))
		if missing := without(kubeletControllers, have); len(missing) == 0 || time.Now().After(deadline) {
			if len(missing) > 0 {
				log.Printf("cgroup controllers missing after 15 s: %v: still bound to cgroup v1 (boot the kernel with cgroup_no_v1=all); pods will fail to start", missing)
			}
			break
		}
	}
	var enable []string
	for _, c := range have {
		enable = append(enable, "+"+c)
	}
	if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte(strings.Join(enable, " ")), 0); err != nil {
		log.Printf("cgroup controllers %v: %v", have, err)
		return
	}
	log.Printf("cgroup v2 controllers enabled: %s", strings.Join(have, " "))
}

// without returns the elements of want that are not in have.
func without(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// cgroupV2Only unmounts cgroup v1 hierarchies (u-root's init mounts them
// under a tmpfs at /sys/fs/cgroup): the kubelet refuses to run on cgroup v1.
func cgroupV2Only() error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var under []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		dst := f[4]
		fstype := ""
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				fstype = f[i+1]
			}
		}
		if dst == "/sys/fs/cgroup" && fstype == "cgroup2" {
			return nil
		}
		if dst == "/sys/fs/cgroup" || strings.HasPrefix(dst, "/sys/fs/cgroup/") {
			under = append(under, dst)
		}
	}
	for i := len(under) - 1; i >= 0; i-- { // deepest first
		if err := unix.Unmount(under[i], unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", under[i], err)
		}
	}
	if len(under) > 0 {
		log.Printf("unmounted %d cgroup v1 mounts", len(under))
	}
	return nil
}

func mounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// tmpfsRoot copies the initramfs into a tmpfs and makes that this process's
// root (mount --move + chroot, as switch_root does): runc's pivot_root fails
// while the root is the kernel's rootfs. Everything the supervisor starts
// inherits the new root. The copy costs memory once more the size of the
// image (the kernel keeps the initramfs pages for PID 1, u-root init).
func tmpfsRoot() error {
	if !isInitramfs() {
		return nil
	}
	const newRoot = "/.k4s-root"
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", 0, "mode=0755,size=90%"); err != nil {
		return err
	}
	skip := map[string]bool{newRoot: true, "/proc": true, "/sys": true, "/dev": true, "/run": true}
	err := filepath.WalkDir("/", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip[p] {
			if err := os.MkdirAll(newRoot+p, 0o755); err != nil {
				return err
			}
			return filepath.SkipDir
		}
		if p == "/" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		dst := newRoot + p
		switch {
		case d.IsDir():
			return os.Mkdir(dst, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(t, dst)
		case info.Mode().IsRegular():
			return copyFile(p, dst, info.Mode().Perm())
		default:
			st := info.Sys().(*syscall.Stat_t)
			return unix.Mknod(dst, st.Mode, int(st.Rdev))
		}
	})
	if err != nil {
		return err
	}
	for _, m := range []string{"/proc", "/sys", "/dev", "/run"} {
		if err := unix.Mount(m, newRoot+m, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s: %w", m, err)
		}
	}
	if err := os.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(newRoot, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	// Shared, as the kubelet expects for mount propagation into pods.
	if err := unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rshared: %w", err)
	}
	log.Printf("root is now a tmpfs (runc can pivot_root)")
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// loadModules loads the kernel modules listed (one path per line, in
// dependency order) by the initramfs `kernel_modules` field.
func loadModules(list string) error {
	f, err := os.Open(list)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		m, err := os.Open("/" + strings.TrimPrefix(p, "/"))
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(m.Fd()), "", 0)
		m.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load %s: %w", p, err)
		}
		n++
	}
	log.Printf("loaded %d kernel modules", n)
	return sc.Err()
}

// setupNetwork brings up lo and configures the other interfaces with u-root's
// dhclient (QEMU's user network answers DHCP).
func setupNetwork() error {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	if !nodeIP().IsLoopback() {
		return nil
	}
	cmd := exec.Command("dhclient", "-ipv6=false", "-timeout", "15")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		log.Printf("dhclient: %v", err)
	}
	return nil
}
