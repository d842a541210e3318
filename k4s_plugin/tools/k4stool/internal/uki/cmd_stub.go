//go:build k4s_kernel

package uki

import (
	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/kernel"
)

// StubDir is where systemd-boot-efi installs its stubs.
const StubDir = "usr/lib/systemd/boot/efi/"

// CmdStub takes the UEFI stub for -arch out of a pinned systemd-boot-efi
// package and checks it (the package's architecture, a PE image of that
// machine), so a wrong pin fails before an image is assembled around it.
func CmdStub(args []string) error {
	fs := cli.NewFlags("uefi-stub")
	deb := fs.String("deb", "", "the systemd-boot-efi package")
	arch := fs.String("arch", "", "the architecture the stub must be for (amd64, arm64)")
	out := fs.String("out", "", "where to write the stub")
	if err := fs.Parse(args, cli.NoArgs, "deb", "arch", "out"); err != nil {
		return err
	}
	m, ok := Machines[*arch]
	if !ok {
		return cli.Errorf("E_USAGE", "-arch %q: k4s builds UKIs for amd64 and arm64", *arch)
	}
	control, data, err := kernel.DebFile(*deb, StubDir+m.Stub)
	if err != nil {
		return err
	}
	pkg := control["Package"] + " " + control["Version"]
	if a := control["Architecture"]; a != *arch {
		return cli.Errorf("E_UKI_STUB_ARCH", "package %s is for architecture %q, not %s", pkg, a, *arch)
	}
	if data == nil {
		return cli.Errorf("E_UKI_NOT_STUB", "package %s has no %s%s: not systemd's UEFI stub package (systemd-boot-efi)", pkg, StubDir, m.Stub)
	}
	if _, err := CheckPE(data, *arch, "the stub "+StubDir+m.Stub+" of "+pkg, "E_UKI_STUB_ARCH"); err != nil {
		return err
	}
	return cli.WriteFileAtomic(*out, data, 0o644)
}
