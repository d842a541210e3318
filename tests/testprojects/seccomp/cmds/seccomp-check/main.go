// Command seccomp-check tests runc's pure-Go seccomp filter compiler
// (distros/patches/runc-seccomp-purego.patch) in child processes: a custom
// profile exercising every operator at 64-bit boundaries and rule order, and
// containerd's default profile. Needs Linux and root (CAP_SYS_ADMIN, as runc
// has when it installs a filter without no_new_privs). Exits 1 on a failure.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/opencontainers/runc/libcontainer/configs"
	rseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var failed bool

func check(ok bool, format string, args ...any) {
	status := "ok  "
	if !ok {
		status, failed = "FAIL", true
	}
	fmt.Printf("%s "+format+"\n", append([]any{status}, args...)...)
}

func errnoOf(nr uintptr, arg uint64) syscall.Errno {
	_, _, e := unix.RawSyscall(nr, uintptr(arg), 0, 0)
	return e
}

// self runs this program again, with its argv[0]: a busybox dispatches on it.
func self(args ...string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = os.Args[0]
	return cmd
}

func u(v uint) *uint { return &v }

// custom: each rule returns its own errno (31-37), so a result names the rule.
func custom() *configs.Seccomp {
	rule := func(name string, errno uint, op configs.Operator, v, v2 uint64) *configs.Syscall {
		return &configs.Syscall{Name: name, Action: configs.Errno, ErrnoRet: u(errno),
			Args: []*configs.Arg{{Index: 0, Op: op, Value: v, ValueTwo: v2}}}
	}
	return &configs.Seccomp{
		DefaultAction: configs.Allow,
		Architectures: []string{"amd64", "x86", "x32"},
		Syscalls: []*configs.Syscall{
			rule("getpgid", 31, configs.GreaterThan, 1<<33, 0),
			rule("getpgid", 32, configs.EqualTo, 5, 0),
			rule("getpgid", 33, configs.LessThan, 3, 0),
			rule("getsid", 34, configs.NotEqualTo, 7, 0),
			rule("getpriority", 35, configs.MaskEqualTo, 0xf0, 0x30),
			rule("getpriority", 36, configs.GreaterThanOrEqualTo, 100, 0),
			rule("setpgid", 37, configs.LessThanOrEqualTo, 1<<32, 0),
			{Name: "mkdirat", Action: configs.Errno}, // EPERM
			{Name: "no_such_syscall", Action: configs.Errno},
		},
	}
}

func childCustom() {
	if _, err := rseccomp.InitSeccomp(custom()); err != nil {
		check(false, "InitSeccomp(custom): %v", err)
		return
	}
	const any = -1 // not one of the rules' errnos
	for _, c := range []struct {
		nr   uintptr
		arg  uint64
		want int
	}{
		{unix.SYS_GETPGID, 1 << 34, 31}, {unix.SYS_GETPGID, 1<<33 + 1, 31}, {unix.SYS_GETPGID, 1 << 33, any},
		{unix.SYS_GETPGID, 5, 32}, {unix.SYS_GETPGID, 2, 33}, {unix.SYS_GETPGID, 0, 33},
		{unix.SYS_GETPGID, 0x3fff0004, int(unix.ESRCH)},
		{unix.SYS_GETSID, 0x3fff0008, 34}, {unix.SYS_GETSID, 1<<32 + 7, 34}, {unix.SYS_GETSID, 7, any},
		{unix.SYS_GETPRIORITY, 0x135, 35}, {unix.SYS_GETPRIORITY, 0x1_0000_0035, 35},
		{unix.SYS_GETPRIORITY, 0x45, int(unix.EINVAL)}, {unix.SYS_GETPRIORITY, 99, int(unix.EINVAL)},
		{unix.SYS_GETPRIORITY, 100, 36}, {unix.SYS_GETPRIORITY, 1 << 40, 36},
		{unix.SYS_SETPGID, 1 << 32, 37}, {unix.SYS_SETPGID, 1<<32 + 1, int(unix.ESRCH)}, {unix.SYS_SETPGID, 5, 37},
	} {
		got := int(errnoOf(c.nr, c.arg))
		ok := got == c.want || (c.want == any && (got < 31 || got > 37))
		check(ok, "syscall %d(%#x): errno %d, want %d", c.nr, c.arg, got, c.want)
	}
	err := os.Mkdir(filepath.Join(os.TempDir(), "seccomp-check-denied"), 0o755)
	check(errors.Is(err, unix.EPERM), "mkdir denied with EPERM: %v", err)
	out, err := self("-echo", "exec works").CombinedOutput()
	check(err == nil && string(out) == "exec works\n", "fork+exec after the filter: %q %v", out, err)
}

func childDefault() {
	spec := &specs.Spec{
		Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_KILL"}}},
		Linux:   &specs.Linux{},
	}
	if err := seccomp.WithDefaultProfile()(context.Background(), nil, nil, spec); err != nil {
		check(false, "containerd default profile: %v", err)
		return
	}
	cfg, err := specconv.SetupSeccomp(spec.Linux.Seccomp)
	if err != nil {
		check(false, "SetupSeccomp: %v", err)
		return
	}
	fmt.Printf("containerd default profile: %d rules, architectures %v\n", len(cfg.Syscalls), cfg.Architectures)
	if _, err := rseccomp.InitSeccomp(cfg); err != nil {
		check(false, "InitSeccomp(default): %v", err)
		return
	}
	check(errors.Is(unix.Unshare(unix.CLONE_NEWNS), unix.EPERM), "unshare(CLONE_NEWNS) EPERM (no CAP_SYS_ADMIN in the profile)")
	check(errnoOf(unix.SYS_KEYCTL, 0) == unix.EPERM, "keyctl EPERM")
	check(errnoOf(unix.SYS_CLONE3, 0) == unix.ENOSYS, "clone3 ENOSYS")
	check(unix.Getpid() > 0, "getpid allowed")
	out, err := self("-echo", "exec works").CombinedOutput()
	check(err == nil && string(out) == "exec works\n", "fork+exec after the filter: %q %v", out, err)
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-echo" {
		fmt.Println(os.Args[2])
		return
	}
	if len(os.Args) == 2 {
		switch os.Args[1] {
		case "-child-custom":
			childCustom()
		case "-child-default":
			childDefault()
		}
		if failed {
			os.Exit(1)
		}
		return
	}
	for _, mode := range []string{"-child-custom", "-child-default"} {
		// Each filter goes into its own child: a filter cannot be removed.
		cmd := self(mode)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Printf("FAIL %s: %v\n", mode, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
	fmt.Println("seccomp-check: all passed")
}
