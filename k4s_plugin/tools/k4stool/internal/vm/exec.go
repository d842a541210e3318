//go:build !k4s_download

package vm

import (
	"fmt"
	"os"
	"syscall"

	"k4s.dev/tools/k4stool/internal/cli"

	"golang.org/x/sys/unix"
)

// execTiedToParent replaces this process with QEMU (path, argv), which gets
// SIGTERM when the process that started k4stool dies: `pants run` (or a test,
// or a script) killed by a signal it cannot pass on must not leave a VM running
// with nobody to stop it. QEMU stops on SIGTERM. The death signal survives
// execve (the kernel clears it only for set-user-ID and set-group-ID
// programs); it is set before the parent is checked, so a parent that died in
// between is seen too.
func execTiedToParent(path string, argv []string) error {
	parent := os.Getppid()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	if os.Getppid() != parent {
		return cli.Errorf("E_VM_PARENT_GONE", "the process that started k4stool vm (pid %d) has exited, "+
			"so nothing would stop the VM; not starting QEMU (run `pants run` again)", parent)
	}
	return syscall.Exec(path, argv, os.Environ())
}
