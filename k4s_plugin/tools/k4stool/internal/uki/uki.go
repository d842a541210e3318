package uki

import (
	"bytes"
	"compress/gzip"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
)

// Machines maps the architectures k4s builds for to the PE machine of their
// UEFI images, and the systemd stub's file name in systemd-boot-efi.
var Machines = map[string]struct {
	Machine uint16
	Stub    string
}{
	"amd64": {pe.IMAGE_FILE_MACHINE_AMD64, "linuxx64.efi.stub"},
	"arm64": {pe.IMAGE_FILE_MACHINE_ARM64, "linuxaa64.efi.stub"},
}

// machineNames names PE machines in messages.
var machineNames = map[uint16]string{
	pe.IMAGE_FILE_MACHINE_AMD64: "x86-64 (amd64)",
	pe.IMAGE_FILE_MACHINE_ARM64: "AArch64 (arm64)",
	pe.IMAGE_FILE_MACHINE_I386:  "x86 (i386)",
	pe.IMAGE_FILE_MACHINE_ARM:   "ARM (32-bit)",
}

func machineName(m uint16) string {
	if n, ok := machineNames[m]; ok {
		return n
	}
	return fmt.Sprintf("machine 0x%04x", m)
}

// Section is one section to append: its name (at most 8 bytes) and contents.
type Section struct {
	Name string
	Data []byte
}

// The section characteristics of a UKI's added sections: initialized,
// read-only data (what ukify gives them).
const dataSection = pe.IMAGE_SCN_CNT_INITIALIZED_DATA | pe.IMAGE_SCN_MEM_READ

// Offsets in the COFF file header and the optional header; the fields used
// here are at the same offsets in PE32 and PE32+.
const (
	coffNumberOfSections     = 2
	coffPointerToSymbolTable = 8
	coffNumberOfSymbols      = 12
	coffSizeOfOptionalHeader = 16
	coffHeaderSize           = 20
	optSizeOfInitializedData = 8
	optSectionAlignment      = 32
	optFileAlignment         = 36
	optSizeOfImage           = 56
	optSizeOfHeaders         = 60
	optCheckSum              = 64
	sectionHeaderSize        = 40
	securityDirectory        = 4
)

// CheckPE checks that data is a PE image for arch's machine; what names it in
// errors ("the UEFI stub", "the kernel image").
func CheckPE(data []byte, arch, what, code string) (*pe.File, error) {
	want, ok := Machines[arch]
	if !ok {
		return nil, cli.Errorf("E_USAGE", "-arch %q: k4s builds UKIs for amd64 and arm64", arch)
	}
	f, err := pe.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, cli.Errorf(code, "%s is not a PE (UEFI) image: %v", what, err)
	}
	if f.Machine != want.Machine {
		return nil, cli.Errorf(code, "%s is for %s, not %s", what, machineName(f.Machine), machineName(want.Machine))
	}
	return f, nil
}

// KernelImage returns the kernel as UEFI loads it: Debian's arm64 package
// ships a gzip-compressed Image (an EFI-stub kernel inside), x86's bzImage is
// a PE already.
func KernelImage(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, cli.Errorf("E_UKI_KERNEL", "the kernel image is gzip data that does not decompress: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, cli.Errorf("E_UKI_KERNEL", "the kernel image is gzip data that does not decompress: %v", err)
	}
	return out, nil
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) / a * a }

// Assemble appends sections to the PE image stub, as systemd's ukify does:
// each new section header goes after the stub's section table (which must
// have room before SizeOfHeaders), its data at the next FileAlignment
// boundary after the stub's bytes, its address at the next SectionAlignment
// boundary after the stub's last section; NumberOfSections, SizeOfImage,
// SizeOfInitializedData and the checksum are updated. A COFF symbol table
// after the sections (debug data, which firmware ignores) is dropped. The
// stub's own bytes are otherwise unchanged, and the same inputs give the same
// output.
func Assemble(stub []byte, sections []Section) ([]byte, error) {
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		return nil, cli.Errorf("E_UKI_STUB", "the UEFI stub is not a PE image: %v", err)
	}
	var dirs []pe.DataDirectory
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		dirs = oh.DataDirectory[:oh.NumberOfRvaAndSizes]
	case *pe.OptionalHeader32:
		dirs = oh.DataDirectory[:oh.NumberOfRvaAndSizes]
	default:
		return nil, cli.Errorf("E_UKI_STUB", "the UEFI stub has no optional header: not an image")
	}
	if len(dirs) > securityDirectory && dirs[securityDirectory].Size != 0 {
		return nil, cli.Errorf("E_UKI_STUB", "the UEFI stub is signed (it has a certificate table): appending sections would "+
			"break the signature; use the unsigned stub (Debian's systemd-boot-efi) and sign the UKI afterwards")
	}
	peOff := uint64(binary.LittleEndian.Uint32(stub[0x3c:]))
	coff := peOff + 4
	opt := coff + coffHeaderSize
	optSize := uint64(binary.LittleEndian.Uint16(stub[coff+coffSizeOfOptionalHeader:]))
	table := opt + optSize
	u32 := func(off uint64) uint64 { return uint64(binary.LittleEndian.Uint32(stub[off:])) }
	sectionAlign, fileAlign := u32(opt+optSectionAlignment), u32(opt+optFileAlignment)
	sizeOfHeaders := u32(opt + optSizeOfHeaders)
	if fileAlign == 0 || sectionAlign == 0 || fileAlign&(fileAlign-1) != 0 || sectionAlign&(sectionAlign-1) != 0 {
		return nil, cli.Errorf("E_UKI_STUB", "the UEFI stub has alignments that are not powers of two (file %d, section %d)", fileAlign, sectionAlign)
	}

	// Where the stub's sections end, in the file and in memory.
	var rawEnd, virtEnd uint64
	firstRaw := sizeOfHeaders
	for _, s := range f.Sections {
		if s.Size > 0 {
			rawEnd = max(rawEnd, uint64(s.Offset)+uint64(s.Size))
			firstRaw = min(firstRaw, uint64(s.Offset))
		}
		virtEnd = max(virtEnd, uint64(s.VirtualAddress)+max(uint64(s.VirtualSize), uint64(s.Size)))
	}
	tableEnd := table + uint64(len(f.Sections)+len(sections))*sectionHeaderSize
	if tableEnd > firstRaw {
		return nil, cli.Errorf("E_UKI_STUB", "the UEFI stub's headers have no room for %d more section headers "+
			"(%d bytes needed, %d available before its first section)", len(sections), tableEnd, firstRaw)
	}
	out := append([]byte(nil), stub...)
	if sym := u32(coff + coffPointerToSymbolTable); sym != 0 && sym >= rawEnd {
		out = out[:sym]
		binary.LittleEndian.PutUint32(out[coff+coffPointerToSymbolTable:], 0)
		binary.LittleEndian.PutUint32(out[coff+coffNumberOfSymbols:], 0)
	}
	raw := alignUp(max(uint64(len(out)), rawEnd), fileAlign)
	virt := alignUp(virtEnd, sectionAlign)
	out = append(out, make([]byte, raw-uint64(len(out)))...)
	initialized := u32(opt + optSizeOfInitializedData)
	hdr := table + uint64(len(f.Sections))*sectionHeaderSize
	seen := map[string]bool{}
	for _, s := range f.Sections {
		seen[s.Name] = true
	}
	for _, s := range sections {
		if len(s.Name) == 0 || len(s.Name) > 8 || seen[s.Name] {
			return nil, cli.Errorf("E_UKI_SECTION", "section name %q: want 1 to 8 bytes, not already in the stub", s.Name)
		}
		seen[s.Name] = true
		size := uint64(len(s.Data))
		rawSize := alignUp(size, fileAlign)
		if raw+rawSize > 0xffffffff || virt+alignUp(size, sectionAlign) > 0xffffffff {
			return nil, cli.Errorf("E_UKI_TOO_BIG", "the UKI would be larger than 4 GiB, which PE cannot address (section %s)", s.Name)
		}
		h := out[hdr : hdr+sectionHeaderSize]
		clear(h)
		copy(h[0:8], s.Name)
		binary.LittleEndian.PutUint32(h[8:], uint32(size))     // VirtualSize
		binary.LittleEndian.PutUint32(h[12:], uint32(virt))    // VirtualAddress
		binary.LittleEndian.PutUint32(h[16:], uint32(rawSize)) // SizeOfRawData
		binary.LittleEndian.PutUint32(h[20:], uint32(raw))     // PointerToRawData
		binary.LittleEndian.PutUint32(h[36:], dataSection)     // Characteristics
		out = append(out, s.Data...)
		out = append(out, make([]byte, rawSize-size)...)
		hdr += sectionHeaderSize
		raw += rawSize
		virt = alignUp(virt+size, sectionAlign)
		initialized += rawSize
	}
	binary.LittleEndian.PutUint16(out[coff+coffNumberOfSections:], uint16(len(f.Sections)+len(sections)))
	binary.LittleEndian.PutUint32(out[opt+optSizeOfImage:], uint32(virt))
	binary.LittleEndian.PutUint32(out[opt+optSizeOfInitializedData:], uint32(min(initialized, 0xffffffff)))
	binary.LittleEndian.PutUint32(out[opt+optCheckSum:], 0)
	binary.LittleEndian.PutUint32(out[opt+optCheckSum:], Checksum(out, int(opt+optCheckSum)))
	return out, nil
}

// Checksum is the PE image checksum (as Windows' CheckSumMappedFile computes
// it): the 16-bit one's-complement-style sum of the file's words, the
// checksum field itself (at checksumOff) counted as zero, plus the file size.
func Checksum(data []byte, checksumOff int) uint32 {
	var sum uint64
	for i := 0; i < len(data); i += 2 {
		if i == checksumOff || i == checksumOff+2 {
			continue
		}
		w := uint64(data[i])
		if i+1 < len(data) {
			w |= uint64(data[i+1]) << 8
		}
		sum += w
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(data))
}

// OSRelease is the .osrel section: an os-release(5) file naming the image
// (systemd-boot shows PRETTY_NAME in its menu).
func OSRelease(name string) []byte {
	quote := func(s string) string {
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", "$", `\$`, "\n", " ")
		return `"` + r.Replace(s) + `"`
	}
	return []byte("NAME=\"k4s\"\nID=k4s\nPRETTY_NAME=" + quote("k4s "+name) + "\n")
}
