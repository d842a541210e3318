// Package uki assembles a Unified Kernel Image (UKI): systemd's UEFI stub (a
// small PE image from Debian's systemd-boot-efi, pinned like the kernel) with
// the kernel, the initramfs, the kernel command line, the kernel release and
// an os-release appended as PE sections, the layout systemd's ukify writes.
// UEFI firmware starts the stub, which hands the kernel the initramfs and the
// command line: one file per node image, bootable from an EFI system
// partition as EFI/BOOT/BOOTX64.EFI (BOOTAA64.EFI on arm64).
//
//	k4stool uefi-stub -deb systemd-boot-efi.deb -arch amd64 -out stub.efi   (k4s_kernel tag)
//	k4stool uki -stub stub.efi -arch amd64 -linux vmlinuz -initrd initramfs.cpio \
//	    -cmdline '...' -uname 6.1.0-57-amd64 -name distros/uroot:initramfs -out initramfs.efi
//
// The PE is read with debug/pe and written here: no objcopy, no C tools.
package uki
