//go:build k4s_kernel

package main

import "k4s.dev/tools/k4stool/internal/kernel"

// The kernel steps, only in the k4stool built with the k4s_kernel tag.
func init() {
	subcommands["kernel-index"] = subcommand{kernel.CmdIndex, "-deb PKG.deb -arch amd64|arm64 -out DIR"}
	subcommands["kernel-modules"] = subcommand{kernel.CmdModules, "-deb PKG.deb -out DIR -- MODULE..."}
}
