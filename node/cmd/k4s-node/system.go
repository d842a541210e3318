package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// setupSystem prepares the machine for Kubernetes; data is the state directory
// (on the data disk, if the node has one: disk.go).
func setupSystem(lan *lanConfig, data string) error {
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
	if err := sharedRoot(); err != nil {
		return err
	}
	// Sticky world-writable directories, as on any Linux system.
	for d, mode := range map[string]fs.FileMode{"/tmp": fs.ModeSticky | 0o777, "/var/lock": fs.ModeSticky | 0o777, "/var/log": 0o755} {
		err := os.MkdirAll(d, 0o755)
		if err == nil {
			err = os.Chmod(d, mode)
		}
		if err != nil {
			log.Printf("%s: %v", d, err)
		}
	}
	if err := loadModules("/etc/modules-load.d/k4s.conf"); err != nil {
		return err
	}
	// The data disk's driver and filesystem are modules: mount it after them, and
	// the RAM filesystems only where it did not bind its own.
	if err := setupDataDisk(data); err != nil {
		return err
	}
	if err := stateTmpfs(); err != nil {
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
	return setupNetwork(lan)
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

// sharedRoot makes mounts below / propagate (rshared), as the kubelet
// expects for volumes. The root stays the kernel's initramfs (rootfs):
// runc cannot pivot_root out of it, so containerd runs runc with
// NoPivotRoot (MS_MOVE + chroot) instead of the node copying the whole image
// into a tmpfs (which cost RAM once more the size of the image).
func sharedRoot() error {
	if err := unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rshared: %w", err)
	}
	return nil
}

// stateTmpfs mounts a tmpfs, sized as a share of RAM, on each directory whose
// filesystem the kubelet measures: its root dir (nodefs) and containerd's
// (imagefs). cAdvisor finds no filesystem for the kernel's "rootfs", so the
// kubelet would not start with them on /; their own tmpfs also bounds them,
// so eviction (kubelet.yaml: evictionHard) acts before RAM runs out.
func stateTmpfs() error {
	for _, m := range []struct {
		dir, opts string
	}{
		{"/var/lib/kubelet", "mode=0700,size=20%"},
		{"/var/lib/containerd", "mode=0711,size=30%"},
	} {
		if mounted(m.dir) {
			continue
		}
		if err := os.MkdirAll(m.dir, 0o700); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", m.dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, m.opts); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", m.dir, err)
		}
	}
	return nil
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
		switch {
		case err == nil, errors.Is(err, unix.EEXIST):
		case errors.Is(err, unix.ENODEV):
			// Hardware-specific alternatives (crc32c-intel without SSE 4.2): another
			// module of the list provides the same (crc32c_generic).
			log.Printf("module %s: %v (this machine lacks what it drives; skipped)", p, err)
			continue
		default:
			return fmt.Errorf("load %s: %w (the kernel the image boots must match the modules it carries: kernel_modules_dir)", p, err)
		}
		n++
	}
	log.Printf("loaded %d kernel modules", n)
	return sc.Err()
}

// setupNetwork brings up lo and configures the other interfaces with u-root's
// dhclient (QEMU's user network answers DHCP).
func setupNetwork(lan *lanConfig) error {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	// The cluster DNS address, local: CoreDNS listens on it (addons.go).
	if out, err := exec.Command("ip", "addr", "add", clusterDNS+"/32", "dev", "lo").CombinedOutput(); err != nil {
		log.Printf("ip addr add %s/32 dev lo: %v: %s", clusterDNS, err, out)
	}
	if nodeIP(nil).IsLoopback() {
		// DHCP on every interface but the LAN (which has no DHCP server).
		args := []string{"-ipv6=false", "-timeout", "15"}
		ifaces, _ := net.Interfaces()
		for _, ifc := range ifaces {
			if ifc.Flags&net.FlagLoopback == 0 && (lan == nil || ifc.Name != lan.iface) {
				args = append(args, "^"+regexp.QuoteMeta(ifc.Name)+"$")
			}
		}
		cmd := exec.Command("dhclient", args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			log.Printf("dhclient: %v", err)
		}
	}
	if lan != nil {
		return lan.up()
	}
	return nil
}
