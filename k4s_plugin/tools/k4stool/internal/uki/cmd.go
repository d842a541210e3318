package uki

import (
	"os"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
)

// CmdUKI assembles a Unified Kernel Image: the UEFI stub with the sections
// .osrel, .cmdline, .uname, .initrd and .linux (in that order, the kernel
// last, as ukify writes them), one bootable file that UEFI firmware starts.
func CmdUKI(args []string) error {
	fs := cli.NewFlags("uki")
	stub := fs.String("stub", "", "the UEFI stub (k4stool uefi-stub)")
	arch := fs.String("arch", "", "the architecture (amd64, arm64): the stub's and the kernel's PE machine")
	linux := fs.String("linux", "", "the kernel image (vmlinuz; a gzip-compressed arm64 Image is decompressed)")
	initrd := fs.String("initrd", "", "the initramfs")
	cmdline := fs.String("cmdline", "", "the kernel command line (.cmdline)")
	uname := fs.String("uname", "", "the kernel release (.uname), e.g. 6.1.0-57-amd64")
	name := fs.String("name", "", "the image's name for .osrel's PRETTY_NAME (the target address)")
	out := fs.String("out", "", "the UKI to write")
	if err := fs.Parse(args, cli.NoArgs, "stub", "arch", "linux", "initrd", "uname", "name", "out"); err != nil {
		return err
	}
	if strings.ContainsAny(*cmdline, "\n\x00") {
		return cli.Errorf("E_UKI_CMDLINE", "the kernel command line has a newline or NUL: %q", *cmdline)
	}
	read := os.ReadFile
	stubData, err := read(*stub)
	if err != nil {
		return err
	}
	if _, err := CheckPE(stubData, *arch, "the UEFI stub", "E_UKI_STUB_ARCH"); err != nil {
		return err
	}
	kernelData, err := read(*linux)
	if err != nil {
		return err
	}
	if kernelData, err = KernelImage(kernelData); err != nil {
		return err
	}
	if _, err := CheckPE(kernelData, *arch, "the kernel image (built without the EFI stub, or for another architecture?)", "E_UKI_KERNEL"); err != nil {
		return err
	}
	initrdData, err := read(*initrd)
	if err != nil {
		return err
	}
	image, err := Assemble(stubData, []Section{
		{".osrel", OSRelease(*name)},
		{".cmdline", []byte(*cmdline)},
		{".uname", []byte(*uname)},
		{".initrd", initrdData},
		{".linux", kernelData},
	})
	if err != nil {
		return err
	}
	return cli.WriteFileAtomic(*out, image, 0o644)
}
