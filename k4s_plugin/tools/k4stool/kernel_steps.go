//go:build k4s_kernel

package main

import (
	"k4s.dev/tools/k4stool/internal/kernel"
	"k4s.dev/tools/k4stool/internal/uki"
)

// The kernel steps and the UKI's, only in the k4stool built with the k4s_kernel tag.
func init() {
	subcommands["kernel-index"] = subcommand{kernel.CmdIndex, "-deb PKG.deb -arch amd64|arm64 -out DIR"}
	subcommands["uefi-stub"] = subcommand{uki.CmdStub, "-deb systemd-boot-efi.deb -arch amd64|arm64 -out stub.efi"}
	subcommands["uki"] = subcommand{uki.CmdUKI, "-stub stub.efi -arch amd64|arm64 -linux vmlinuz -initrd initramfs.cpio -cmdline TEXT -uname RELEASE -name NAME -out image.efi"}
	subcommands["kernel-modules"] = subcommand{kernel.CmdModules, "-deb PKG.deb -out DIR -- MODULE..."}
}
