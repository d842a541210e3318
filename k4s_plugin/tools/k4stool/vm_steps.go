//go:build k4s_vm

package main

import "k4s.dev/tools/k4stool/internal/vm"

// `pants run`'s QEMU driver, only in the k4stool built with the k4s_vm tag
// (`__k4s_tools/k4stool-vm`: the step tool and this subcommand). The vm package
// talks HTTP to the node (snapshots), and net/http with crypto/tls took about
// half of the step tool's compile time: kept out of the step tool, `pants
// package` never compiles it; `pants run` builds k4stool-vm after the step tool,
// whose compiled packages it reuses.
func init() {
	subcommands["vm"] = subcommand{vm.CmdVM, "-qemu QEMU -kernel KERNEL -initrd CPIO [-memory MiB] [-cpus N] [-append ARGS] [-forward HOST:GUEST]... " +
		"[-identity DIR [-new-identity] [-join DIR -join-server URL] [-machine-config controlplane|worker]] " +
		"[-lan LOCAL:REMOTE] [-disk IMG [-disk-size SIZE]] [-snapshot FILE | -restore FILE] ... (boots an initramfs in QEMU)"}
}
