package uki

import (
	"bytes"
	"compress/gzip"
	"debug/pe"
	"encoding/binary"
	"sort"
	"strings"
	"testing"

	"k4s.dev/tools/k4stool/internal/cli"
)

// testPE builds a small PE32+ image as linkers lay one out: DOS header, PE
// header, optional header with 16 data directories, the section table, the
// sections at FileAlignment, and optionally a COFF symbol table after them.
type testPE struct {
	machine      uint16
	fileAlign    uint32
	sectAlign    uint32
	headers      uint32 // SizeOfHeaders
	sections     []Section
	symbols      bool
	certificates bool
}

func (p testPE) build() []byte {
	const peOff = 0x40
	out := make([]byte, p.headers)
	copy(out, "MZ")
	binary.LittleEndian.PutUint32(out[0x3c:], peOff)
	copy(out[peOff:], "PE\x00\x00")
	coff := peOff + 4
	binary.LittleEndian.PutUint16(out[coff:], p.machine)
	binary.LittleEndian.PutUint16(out[coff+2:], uint16(len(p.sections)))
	binary.LittleEndian.PutUint16(out[coff+16:], 240)
	binary.LittleEndian.PutUint16(out[coff+18:], 0x2022)
	opt := coff + 20
	binary.LittleEndian.PutUint16(out[opt:], 0x20b)
	binary.LittleEndian.PutUint32(out[opt+32:], p.sectAlign)
	binary.LittleEndian.PutUint32(out[opt+36:], p.fileAlign)
	binary.LittleEndian.PutUint32(out[opt+60:], p.headers)
	binary.LittleEndian.PutUint16(out[opt+68:], 10) // Subsystem: EFI application
	binary.LittleEndian.PutUint32(out[opt+108:], 16)
	if p.certificates {
		binary.LittleEndian.PutUint32(out[opt+112+8*securityDirectory:], 0x10000)
		binary.LittleEndian.PutUint32(out[opt+112+8*securityDirectory+4:], 0x100)
	}
	table := opt + 240
	virt := uint64(p.sectAlign)
	for i, s := range p.sections {
		h := out[table+40*i:]
		copy(h[:8], s.Name)
		raw := alignUp(uint64(len(s.Data)), uint64(p.fileAlign))
		binary.LittleEndian.PutUint32(h[8:], uint32(len(s.Data)))
		binary.LittleEndian.PutUint32(h[12:], uint32(virt))
		binary.LittleEndian.PutUint32(h[16:], uint32(raw))
		binary.LittleEndian.PutUint32(h[20:], uint32(len(out)))
		binary.LittleEndian.PutUint32(h[36:], pe.IMAGE_SCN_CNT_CODE|pe.IMAGE_SCN_MEM_EXECUTE|pe.IMAGE_SCN_MEM_READ)
		out = append(out, s.Data...)
		out = append(out, make([]byte, raw-uint64(len(s.Data)))...)
		virt = alignUp(virt+uint64(len(s.Data)), uint64(p.sectAlign))
	}
	binary.LittleEndian.PutUint32(out[opt+56:], uint32(virt))
	if p.symbols {
		binary.LittleEndian.PutUint32(out[coff+8:], uint32(len(out)))
		binary.LittleEndian.PutUint32(out[coff+12:], 1)
		sym := make([]byte, 18)
		copy(sym, "dummy")
		out = append(out, sym...)
		out = append(out, 4, 0, 0, 0) // an empty string table
	}
	return out
}

func stubPE() testPE {
	return testPE{
		machine: pe.IMAGE_FILE_MACHINE_AMD64, fileAlign: 0x200, sectAlign: 0x1000, headers: 0x400,
		sections: []Section{
			{".text", bytes.Repeat([]byte{0xcc}, 0x1234)},
			{".data", []byte("stub data")},
		},
		symbols: true,
	}
}

func ukiSections() []Section {
	return []Section{
		{".osrel", OSRelease("distros/uroot:initramfs")},
		{".cmdline", []byte("console=tty0 console=ttyS0 cgroup_no_v1=all")},
		{".uname", []byte("6.1.0-57-amd64")},
		{".initrd", bytes.Repeat([]byte("070701cpio"), 100003)},
		{".linux", bytes.Repeat([]byte{'M', 'Z', 1, 2, 3}, 77777)},
	}
}

// sumNaive is the PE checksum written another way (all words summed, folded
// at the end), to check Checksum's running fold.
func sumNaive(data []byte, checksumOff int) uint32 {
	var sum uint64
	padded := append(append([]byte(nil), data...), 0)
	for i := 0; i+1 < len(padded); i += 2 {
		if i != checksumOff && i != checksumOff+2 {
			sum += uint64(binary.LittleEndian.Uint16(padded[i:]))
		}
	}
	for sum > 0xffff {
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return uint32(sum) + uint32(len(data))
}

func TestAssembleLayout(t *testing.T) {
	stub := stubPE().build()
	in := ukiSections()
	out, err := Assemble(stub, in)
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("debug/pe cannot read the UKI: %v", err)
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	if len(f.Sections) != 2+len(in) || int(f.NumberOfSections) != len(f.Sections) {
		t.Fatalf("%d sections, want %d", len(f.Sections), 2+len(in))
	}
	if f.PointerToSymbolTable != 0 || f.NumberOfSymbols != 0 {
		t.Errorf("the symbol table is still referenced: %d at %d", f.NumberOfSymbols, f.PointerToSymbolTable)
	}
	for i, want := range in {
		s := f.Sections[2+i]
		if s.Name != want.Name {
			t.Errorf("section %d is %q, want %q", 2+i, s.Name, want.Name)
		}
		if s.VirtualAddress%oh.SectionAlignment != 0 || s.Offset%oh.FileAlignment != 0 || s.Size%oh.FileAlignment != 0 {
			t.Errorf("%s: address 0x%x, offset 0x%x, size 0x%x not aligned (section 0x%x, file 0x%x)",
				s.Name, s.VirtualAddress, s.Offset, s.Size, oh.SectionAlignment, oh.FileAlignment)
		}
		if int(s.VirtualSize) != len(want.Data) {
			t.Errorf("%s: VirtualSize %d, want %d", s.Name, s.VirtualSize, len(want.Data))
		}
		data, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data[:len(want.Data)], want.Data) || bytes.ContainsFunc(data[len(want.Data):], func(r rune) bool { return r != 0 }) {
			t.Errorf("%s: contents differ from the input (or the padding is not zeros)", s.Name)
		}
		if s.Characteristics != pe.IMAGE_SCN_CNT_INITIALIZED_DATA|pe.IMAGE_SCN_MEM_READ {
			t.Errorf("%s: characteristics 0x%x", s.Name, s.Characteristics)
		}
	}
	// No two sections overlap, in the file or in memory; all lie inside the image.
	type span struct {
		name       string
		start, end uint32
	}
	var raw, virt []span
	for _, s := range f.Sections {
		raw = append(raw, span{s.Name, s.Offset, s.Offset + s.Size})
		virt = append(virt, span{s.Name, s.VirtualAddress, s.VirtualAddress + max(s.VirtualSize, s.Size)})
	}
	for _, spans := range [][]span{raw, virt} {
		sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
		for i := 1; i < len(spans); i++ {
			if spans[i].start < spans[i-1].end {
				t.Errorf("%s [0x%x,0x%x) overlaps %s [0x%x,0x%x)", spans[i].name, spans[i].start, spans[i].end,
					spans[i-1].name, spans[i-1].start, spans[i-1].end)
			}
		}
	}
	last := f.Sections[len(f.Sections)-1]
	if int(last.Offset+last.Size) != len(out) {
		t.Errorf("the file is %d bytes, its last section ends at %d", len(out), last.Offset+last.Size)
	}
	if want := uint32(alignUp(uint64(last.VirtualAddress+last.VirtualSize), uint64(oh.SectionAlignment))); oh.SizeOfImage != want {
		t.Errorf("SizeOfImage 0x%x, want 0x%x", oh.SizeOfImage, want)
	}
	tableEnd := 0x40 + 4 + 20 + 240 + 40*len(f.Sections)
	if uint32(tableEnd) > oh.SizeOfHeaders || oh.SizeOfHeaders > f.Sections[0].Offset {
		t.Errorf("section table ends at %d, SizeOfHeaders %d, first section at %d", tableEnd, oh.SizeOfHeaders, f.Sections[0].Offset)
	}
	csOff := 0x40 + 4 + 20 + optCheckSum
	if got, want := oh.CheckSum, sumNaive(out, csOff); got != want || want == 0 {
		t.Errorf("CheckSum 0x%x, want 0x%x", got, want)
	}
	// The stub's own sections are its bytes, unchanged.
	for i := range 2 {
		got, _ := f.Sections[i].Data()
		want := stubPE().sections[i].Data
		if !bytes.Equal(got[:len(want)], want) {
			t.Errorf("the stub's section %s changed", f.Sections[i].Name)
		}
	}
}

func TestAssembleDeterministic(t *testing.T) {
	a, err := Assemble(stubPE().build(), ukiSections())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Assemble(stubPE().build(), ukiSections())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the same inputs gave different bytes")
	}
	other := ukiSections()
	other[1].Data = []byte("console=ttyS0")
	c, err := Assemble(stubPE().build(), other)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, c) {
		t.Fatal("another command line gave the same bytes")
	}
}

// An arm64-like stub: SectionAlignment 4096 with SizeOfImage not a multiple of
// it, no symbol table, trailing bytes kept.
func TestAssembleUnalignedImageEnd(t *testing.T) {
	p := stubPE()
	p.machine, p.symbols = pe.IMAGE_FILE_MACHINE_ARM64, false
	stub := append(p.build(), []byte("trailer")...)
	out, err := Assemble(stub, ukiSections())
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	first := f.Sections[2]
	if first.Offset < uint32(len(stub)) {
		t.Errorf("the first added section (at %d) overwrites the stub's trailing bytes (to %d)", first.Offset, len(stub))
	}
	if !bytes.Contains(out[:first.Offset], []byte("trailer")) {
		t.Error("the stub's trailing bytes were dropped")
	}
	if _, err := CheckPE(out, "arm64", "the UKI", "E_X"); err != nil {
		t.Error(err)
	}
}

func TestAssembleErrors(t *testing.T) {
	tight := stubPE()
	tight.headers = 0x40 + 4 + 20 + 240 + 40*3 // room for one more header only
	tight.headers = uint32(alignUp(uint64(tight.headers), 8))
	signed := stubPE()
	signed.certificates = true
	for _, tc := range []struct {
		name     string
		stub     []byte
		sections []Section
		code     string
		msg      string
	}{
		{"no room", tight.build(), ukiSections(), "E_UKI_STUB", "no room for 5 more section headers"},
		{"signed", signed.build(), ukiSections(), "E_UKI_STUB", "is signed"},
		{"not PE", []byte("not a PE file at all, just text"), ukiSections(), "E_UKI_STUB", "not a PE image"},
		{"duplicate", stubPE().build(), []Section{{".data", nil}}, "E_UKI_SECTION", `".data"`},
		{"long name", stubPE().build(), []Section{{".toolongname", nil}}, "E_UKI_SECTION", "1 to 8 bytes"},
	} {
		_, err := Assemble(tc.stub, tc.sections)
		if cli.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %s ... %s", tc.name, err, tc.code, tc.msg)
		}
	}
}

func TestCheckPE(t *testing.T) {
	stub := stubPE().build()
	if _, err := CheckPE(stub, "amd64", "the stub", "E_UKI_STUB_ARCH"); err != nil {
		t.Fatal(err)
	}
	_, err := CheckPE(stub, "arm64", "the stub", "E_UKI_STUB_ARCH")
	if cli.Code(err) != "E_UKI_STUB_ARCH" || !strings.Contains(err.Error(), "is for x86-64 (amd64), not AArch64 (arm64)") {
		t.Errorf("an amd64 stub for arm64: %v", err)
	}
	if _, err := CheckPE(stub, "riscv64", "the stub", "E_X"); cli.Code(err) != "E_USAGE" {
		t.Errorf("riscv64: %v", err)
	}
}

func TestKernelImage(t *testing.T) {
	image := stubPE().build()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(image)
	zw.Close()
	got, err := KernelImage(gz.Bytes())
	if err != nil || !bytes.Equal(got, image) {
		t.Fatalf("a gzip-compressed Image: %v", err)
	}
	if got, err := KernelImage(image); err != nil || !bytes.Equal(got, image) {
		t.Fatalf("a PE kernel: %v", err)
	}
	if _, err := KernelImage([]byte{0x1f, 0x8b, 0, 0}); cli.Code(err) != "E_UKI_KERNEL" {
		t.Fatalf("bad gzip: %v", err)
	}
}

func TestOSRelease(t *testing.T) {
	got := string(OSRelease(`a "b" $c`))
	want := "NAME=\"k4s\"\nID=k4s\nPRETTY_NAME=\"k4s a \\\"b\\\" \\$c\"\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
