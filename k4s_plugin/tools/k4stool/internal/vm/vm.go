//go:build !k4s_download

package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/contract"
	"k4s.dev/tools/k4stool/internal/identity"

	"golang.org/x/sys/unix"
)

// CmdVM boots a kernel and an initramfs in QEMU with the serial console on this
// terminal (`pants run` of an initramfs). KVM is used only if it really runs
// a guest: on some machines /dev/kvm opens and answers ioctls but KVM_RUN
// never returns, so a one-instruction guest is run first with a deadline.
func CmdVM(args []string) error {
	fs := cli.NewFlags("vm")
	qemu := fs.String("qemu", "", "qemu-system-* binary")
	kernel := fs.String("kernel", "", "kernel image (required; pants run passes the one k4s_plugin/rules/kernel.py picks)")
	initrd := fs.String("initrd", "", "initramfs")
	memory := fs.Int("memory", 1024, "MiB of RAM")
	cpus := fs.Int("cpus", 2, "virtual CPUs")
	var appendArgs cli.MultiFlag
	fs.Var(&appendArgs, "append", "extra kernel command line (repeatable: the target's kernel_args, then yours, e.g. k4s.node-name=w1)")
	console := fs.String("console", "ttyS0", "the kernel's serial console: ttyS0 (x86 PC), ttyAMA0 (arm64 virt's PL011)")
	accel := fs.String("accel", "auto", "auto, kvm or tcg")
	var machine cli.MultiFlag
	fs.Var(&machine, "machine-arg", "QEMU machine arguments (repeatable; default -machine q35)")
	var fwds cli.MultiFlag
	fs.Var(&fwds, "forward", "host port:guest port (tcp), bound to 127.0.0.1 (repeatable)")
	pidfile := fs.String("pidfile", "", "QEMU writes its process id here (for scripts and tests that stop the VM)")
	dryRun := fs.Bool("print", false, "print the qemu command line instead of running it (after writing the -identity files)")
	identityDir := fs.String("identity", "", "cluster identity directory (CA, admin kubeconfig; see identity.go): "+
		"appends the CA to the initramfs for the guest")
	apiPort := fs.Int("api-port", 6443, "the guest's apiserver port, for the admin kubeconfig")
	newIdentity := fs.Bool("new-identity", false, "with -identity: delete the directory's contents and make a new CA")
	target := fs.String("target", "", "the target's address, for messages")
	joinDir := fs.String("join", "", "the identity directory of a server (.k4s/clusters/<server target>): boot this image as an agent "+
		"that joins that server's cluster (its CA certificate and join token; see join.go); needs -join-server")
	joinServer := fs.String("join-server", "", "with -join: the server's apiserver URL as the agent reaches it, e.g. https://192.168.76.1:6443")
	lan := fs.String("lan", "", "<local port>:<remote port>: a second network card on a private network with another VM "+
		"(UDP on 127.0.0.1; the other VM uses the ports the other way round), for a cluster of VMs")
	machineType := fs.String("machine-config", "", "controlplane or worker: hand the node a Talos-style machine config "+
		"(written as controlplane.yaml or worker.yaml in the identity directory) instead of the identity files")
	machineHostname := fs.String("machine-hostname", "", "with -machine-config: the machine's hostname (its node name)")
	machineLAN := fs.String("machine-lan", "", "with -machine-config: the machine's LAN address, <interface>,<address>/<prefix>")
	disk := fs.String("disk", "", "a raw image file (or block device) for the node's state, on a virtio disk (/dev/vda); "+
		"made sparse when missing; adds k4s.disk=/dev/vda to the kernel command line unless it names a disk")
	diskSize := fs.String("disk-size", "4G", "with -disk: the size of a new image (K, M, G, T)")
	snapshotOut := fs.String("snapshot", "", "save the running server's datastore snapshot to this file (through the host port forwarded to guest port 6444, "+
		"with the identity's admin certificate) instead of booting")
	restore := fs.String("restore", "", "a datastore snapshot (-snapshot) for the booting server to restore into its empty datastore")
	if err := fs.Parse(args, cli.NoArgs); err != nil {
		return err
	}
	var diskArgs []string
	if *disk != "" {
		qa, karg, err := vmDisk(*disk, *diskSize, appendArgs)
		if err != nil {
			return err
		}
		diskArgs = qa
		if karg != "" {
			appendArgs = append(appendArgs, karg)
		}
	}
	mcfg := identity.MachineSettings{Type: *machineType, Hostname: *machineHostname, LAN: *machineLAN}
	if mcfg.Type != "" {
		if err := mcfg.Check(); err != nil {
			return err
		}
		if *identityDir == "" {
			return cli.Errorf("E_USAGE", "-machine-config needs a cluster identity (set `cluster_identity=True` on the initramfs target)")
		}
	}

	if *snapshotOut != "" {
		// Not a boot: the running node's snapshot, through its forwarded port.
		forwards, err := parseForwards(fwds)
		if err != nil {
			return err
		}
		hostPort := contract.SnapshotPort
		for _, f := range forwards {
			if f.guest == contract.SnapshotPort {
				hostPort = f.host
			}
		}
		return saveSnapshot(*identityDir, hostPort, *snapshotOut, os.Stderr)
	}
	if *kernel == "" {
		return cli.Errorf("E_USAGE", "-kernel is required (pants run passes this machine's kernel, or the target's `kernel` field)")
	}
	if *accel == "auto" {
		*accel = probeAccel(*qemu, *kernel)
	}
	if len(machine) == 0 {
		machine = cli.MultiFlag{"-machine", "q35"}
	}
	argv := append([]string{*qemu}, machine...)
	argv = append(argv, "-accel", *accel, "-m", fmt.Sprint(*memory),
		"-smp", fmt.Sprint(*cpus), "-nographic", "-no-reboot",
		"-kernel", *kernel, "-initrd", *initrd,
		"-append", strings.TrimSpace("console="+*console+" panic=-1 "+strings.Join(appendArgs, " ")))
	forwards, err := parseForwards(fwds)
	if err != nil {
		return err
	}
	// restrict=on: the guest reaches neither the host (its loopback services,
	// e.g. a remote cache on 127.0.0.1) nor anything beyond it; slirp's DHCP
	// still answers, and hostfwd rules work as before (QEMU: "This option
	// does not affect any explicitly set forwarding rules").
	netdev := "user,id=n0,restrict=on"
	for _, f := range forwards {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.host, f.guest)
	}
	argv = append(argv, "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0")
	argv = append(argv, diskArgs...)
	var extra []identity.File
	if *restore != "" {
		if *identityDir == "" || *joinDir != "" {
			return cli.Errorf("E_USAGE", "-restore is for a server with a cluster identity (`cluster_identity=True`), not an agent")
		}
		f, err := restoreFile(*restore)
		if err != nil {
			return err
		}
		extra = append(extra, f)
	}
	if *lan != "" {
		lanArgs, err := lanNetdev(*lan)
		if err != nil {
			return err
		}
		argv = append(argv, lanArgs...)
	}
	if *pidfile != "" {
		argv = append(argv, "-pidfile", *pidfile)
	}
	if *joinDir != "" {
		if *identityDir == "" {
			return cli.Errorf("E_USAGE", "-join needs the agent's own identity directory (set `cluster_identity=True` on the initramfs target)")
		}
		initrd, err := identity.PrepareJoin(identity.JoinRequest{Dir: *identityDir, Cluster: *joinDir, Server: *joinServer, Image: *initrd, Machine: mcfg}, os.Stderr)
		if err != nil {
			return err
		}
		for i := range argv {
			if argv[i] == "-initrd" {
				argv[i+1] = initrd
			}
		}
	} else if *identityDir != "" {
		hostPort := 0
		for _, f := range forwards {
			if f.guest == *apiPort {
				hostPort = f.host
			}
		}
		res, err := identity.Prepare(identity.Request{
			Dir: *identityDir, Fresh: *newIdentity, Image: *initrd,
			APIPort: *apiPort, HostPort: hostPort, Target: *target, Machine: mcfg, Extra: extra,
		}, os.Stderr)
		if err != nil {
			return err
		}
		for i := range argv {
			if argv[i] == "-initrd" {
				argv[i+1] = res.Initrd
			}
		}
	} else if *newIdentity {
		return cli.Errorf("E_USAGE", "-new-identity needs -identity (set `cluster_identity=True` on the initramfs target)")
	}
	if *dryRun {
		// Quoted as a shell reads it (the kernel command line is one argument).
		quoted := make([]string, len(argv))
		for i, a := range argv {
			quoted[i] = shellQuote(a)
		}
		fmt.Println(strings.Join(quoted, " "))
		return nil
	}
	fmt.Fprintf(os.Stderr, "k4s: %s\n", strings.Join(argv, " "))
	return execTiedToParent(*qemu, argv)
}

type forward struct{ host, guest int }

// lanNetdev is QEMU's second network card for -lan <local>:<remote>: a UDP
// socket netdev between two VMs on 127.0.0.1 (one VM's local port is the
// other's remote), with a MAC address of its own per local port (two VMs on
// one segment must not share QEMU's default MAC).
func lanNetdev(v string) ([]string, error) {
	l, r, ok := strings.Cut(v, ":")
	local, errL := strconv.Atoi(l)
	remote, errR := strconv.Atoi(r)
	if !ok || errL != nil || errR != nil || local < 1 || local > 65535 || remote < 1 || remote > 65535 || local == remote {
		return nil, cli.Errorf("E_USAGE", "-lan %q: want <local port>:<remote port>, e.g. 17001:17002 (and 17002:17001 for the other VM)", v)
	}
	return []string{
		"-netdev", fmt.Sprintf("socket,id=n1,udp=127.0.0.1:%d,localaddr=127.0.0.1:%d", remote, local),
		"-device", fmt.Sprintf("virtio-net-pci,netdev=n1,mac=52:54:00:4b:%02x:%02x", local>>8, local&0xff),
	}, nil
}

// parseForwards reads "<host port>:<guest port>" values; a later value for the
// same guest port replaces an earlier one, so `pants run <target> -- -forward
// 16443:6443` (Pants appends passthrough arguments after the rule's) moves the
// target's 6443:6443. Two guest ports on one host port are an error.
func parseForwards(vals []string) ([]forward, error) {
	var out []forward
	for _, v := range vals {
		h, g, ok := strings.Cut(v, ":")
		host, errH := strconv.Atoi(h)
		guest, errG := strconv.Atoi(g)
		if !ok || errH != nil || errG != nil || host < 1 || host > 65535 || guest < 1 || guest > 65535 {
			return nil, cli.Errorf("E_USAGE", "-forward %q: want <host port>:<guest port>, e.g. 16443:6443", v)
		}
		replaced := false
		for i := range out {
			if out[i].guest == guest {
				out[i].host, replaced = host, true
			}
		}
		if !replaced {
			out = append(out, forward{host, guest})
		}
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[i].host == out[j].host {
				return nil, cli.Errorf("E_USAGE", "host port %d forwards to both guest port %d and %d", out[i].host, out[i].guest, out[j].guest)
			}
		}
	}
	return out, nil
}

// accelCacheKey names the remembered probe of this host kernel release, QEMU
// and guest kernel. The guest kernel counts by its content: `pants run` hands
// over a kernel at a new sandbox path on every run, so a key with the path
// was never found again (and one file per run piled up).
func accelCacheKey(release, qemu, kernel string) string {
	id := kernel
	if f, err := os.Open(kernel); err == nil {
		h := sha256.New()
		if _, err := io.Copy(h, f); err == nil {
			id = "sha256_" + hex.EncodeToString(h.Sum(nil))[:16]
		}
		f.Close()
	}
	return strings.NewReplacer("/", "_", " ", "_").Replace(fmt.Sprintf("accel-%s-%s-%s", release, qemu, id))
}

// probeAccel picks kvm or tcg. The answer is remembered per machine, QEMU
// and kernel in $XDG_CACHE_HOME/k4s (~/.cache/k4s): a hanging /dev/kvm costs
// the probe's deadline once, not on every run.
func probeAccel(qemu, kernel string) string {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	key := accelCacheKey(unix.ByteSliceToString(uts.Release[:]), qemu, kernel)
	dir, err := os.UserCacheDir()
	cache := ""
	if err == nil {
		cache = filepath.Join(dir, "k4s", key)
		if b, err := os.ReadFile(cache); err == nil {
			if a := strings.TrimSpace(string(b)); a == "kvm" || a == "tcg" {
				fmt.Fprintf(os.Stderr, "k4s: accelerator %s (probed before: %s)\n", a, cache)
				return a
			}
		}
	}
	accel := "tcg"
	err = probeKVM(2 * time.Second)
	if err == nil {
		err = probeKernelBoot(qemu, kernel, 15*time.Second)
	}
	if err == nil {
		accel = "kvm"
	} else {
		fmt.Fprintf(os.Stderr, "k4s: not using KVM (%v); using TCG\n", err)
	}
	if cache != "" && os.MkdirAll(filepath.Dir(cache), 0o755) == nil {
		_ = os.WriteFile(cache, []byte(accel+"\n"), 0o644)
	}
	return accel
}

// probeKernelBoot starts the kernel under KVM without an initramfs and waits
// for its first console line. Where /dev/kvm runs simple guests but hangs
// once the kernel starts (nested virtualisation on some hosts), this is what
// tells: a one-instruction guest is not enough.
func probeKernelBoot(qemu, kernel string, deadline time.Duration) error {
	cmd := exec.Command(qemu, "-machine", "q35", "-accel", "kvm", "-m", "256",
		"-display", "none", "-no-reboot", "-nodefaults", "-serial", "stdio", "-kernel", kernel,
		"-append", "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	seen := make(chan bool, 1)
	go func() {
		var buf []byte
		chunk := make([]byte, 4096)
		for {
			n, err := out.Read(chunk)
			buf = append(buf, chunk[:n]...)
			if strings.Contains(string(buf), "Linux version") {
				seen <- true
				return
			}
			if err != nil {
				seen <- false
				return
			}
		}
	}()
	select {
	case ok := <-seen:
		if ok {
			return nil
		}
		return fmt.Errorf("the kernel printed nothing under KVM")
	case <-time.After(deadline):
		return fmt.Errorf("the kernel printed nothing under KVM within %s", deadline)
	}
}

// probeKVM runs a guest of one `hlt` instruction in real mode and waits for
// KVM_EXIT_HLT. It returns an error if KVM is missing, refuses, or does not
// come back before the deadline (the vCPU thread is then left behind; the
// caller execs QEMU, which replaces this process).
func probeKVM(deadline time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- runHLT() }()
	select {
	case err := <-done:
		return err
	case <-time.After(deadline):
		return fmt.Errorf("/dev/kvm did not run a test guest within %s", deadline)
	}
}

const (
	kvmGetAPIVersion       = 0xAE00
	kvmCreateVM            = 0xAE01
	kvmGetVcpuMmapSize     = 0xAE04
	kvmCreateVcpu          = 0xAE41
	kvmRun                 = 0xAE80
	kvmSetUserMemoryRegion = 0x4020AE46
	kvmExitHlt             = 5
)

func ioctl(fd, req, arg uintptr) (uintptr, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req, arg)
	if e != 0 {
		return 0, e
	}
	return r, nil
}

func runHLT() error {
	kvm, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if v, err := ioctl(uintptr(kvm), kvmGetAPIVersion, 0); err != nil || v != 12 {
		return fmt.Errorf("KVM API version %d: %v", v, err)
	}
	vmfd, err := ioctl(uintptr(kvm), kvmCreateVM, 0)
	if err != nil {
		return fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	mem, err := unix.Mmap(-1, 0, 0x1000, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	mem[0] = 0xf4 // hlt
	region := struct {
		slot, flags             uint32
		guestPhys, size, userVA uint64
	}{0, 0, 0, 0x1000, uint64(uintptr(unsafe.Pointer(&mem[0])))}
	if _, err := ioctl(vmfd, kvmSetUserMemoryRegion, uintptr(unsafe.Pointer(&region))); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION: %w", err)
	}
	vcpu, err := ioctl(vmfd, kvmCreateVcpu, 0)
	if err != nil {
		return fmt.Errorf("KVM_CREATE_VCPU: %w", err)
	}
	size, err := ioctl(uintptr(kvm), kvmGetVcpuMmapSize, 0)
	if err != nil {
		return err
	}
	run, err := unix.Mmap(int(vcpu), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	// Real mode starts at CS:IP f000:fff0; point it at address 0 instead.
	var sregs [312]byte // struct kvm_sregs (x86): cs is the first segment
	const kvmGetSregs, kvmSetSregs = 0x8138AE83, 0x4138AE84
	if _, err := ioctl(vcpu, kvmGetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	*(*uint64)(unsafe.Pointer(&sregs[0])) = 0  // cs.base
	*(*uint16)(unsafe.Pointer(&sregs[12])) = 0 // cs.selector
	if _, err := ioctl(vcpu, kvmSetSregs, uintptr(unsafe.Pointer(&sregs[0]))); err != nil {
		return fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	var regs [18]uint64 // struct kvm_regs: rip is [16], rflags [17]
	const kvmGetRegs, kvmSetRegs = 0x8090AE81, 0x4090AE82
	if _, err := ioctl(vcpu, kvmGetRegs, uintptr(unsafe.Pointer(&regs[0]))); err != nil {
		return fmt.Errorf("KVM_GET_REGS: %w", err)
	}
	regs[16], regs[17] = 0, 2
	if _, err := ioctl(vcpu, kvmSetRegs, uintptr(unsafe.Pointer(&regs[0]))); err != nil {
		return fmt.Errorf("KVM_SET_REGS: %w", err)
	}
	if _, err := ioctl(vcpu, kvmRun, 0); err != nil {
		return fmt.Errorf("KVM_RUN: %w", err)
	}
	if reason := *(*uint32)(unsafe.Pointer(&run[8])); reason != kvmExitHlt {
		return fmt.Errorf("test guest exited with reason %d, not HLT", reason)
	}
	return nil
}

// shellQuote quotes an argument for a POSIX shell (and Python's shlex) when it
// holds anything but safe characters.
func shellQuote(a string) string {
	safe := a != ""
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'"'"'`) + "'"
}
