//go:build k4s_kernel

package kernel

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k4s.dev/tools/k4stool/internal/cli"

	"github.com/ulikunitz/xz"
)

// fakeModule is a minimal ELF64 relocatable file for machine with a .modinfo
// section holding kv ("depends=a,b" ...), as modpost writes it.
func fakeModule(machine elf.Machine, kv ...string) []byte {
	modinfo := []byte(strings.Join(kv, "\x00") + "\x00")
	shstrtab := []byte("\x00.modinfo\x00.shstrtab\x00")
	var b bytes.Buffer
	le := binary.LittleEndian
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(machine), Version: 1,
		Ehsize: 64, Shentsize: 64, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	modOff := uint64(64)
	strOff := modOff + uint64(len(modinfo))
	hdr.Shoff = strOff + uint64(len(shstrtab))
	binary.Write(&b, le, hdr)
	b.Write(modinfo)
	b.Write(shstrtab)
	binary.Write(&b, le, elf.Section64{})
	binary.Write(&b, le, elf.Section64{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: modOff, Size: uint64(len(modinfo)), Addralign: 1})
	binary.Write(&b, le, elf.Section64{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstrtab)), Addralign: 1})
	return b.Bytes()
}

func tarXz(t *testing.T, files map[string][]byte, order []string) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, name := range order {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[name])
	}
	tw.Close()
	var out bytes.Buffer
	w, err := xz.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw.Bytes())
	w.Close()
	return out.Bytes()
}

// fakeDeb writes a .deb (ar: debian-binary, control.tar.xz, data.tar.xz).
func fakeDeb(t *testing.T, arch string, data map[string][]byte) string {
	t.Helper()
	var order []string
	for name := range data {
		order = append(order, name)
	}
	sort.Strings(order)
	control := fmt.Sprintf("Package: linux-image-9.9.9-1-%s\nVersion: 9.9.9-1\nArchitecture: %s\nDescription: test\n multi-line\n", arch, arch)
	members := []struct {
		name string
		body []byte
	}{
		{"debian-binary", []byte("2.0\n")},
		{"control.tar.xz", tarXz(t, map[string][]byte{"./control": []byte(control)}, []string{"./control"})},
		{"data.tar.xz", tarXz(t, data, order)},
	}
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range members {
		fmt.Fprintf(&b, "%-16s%-12s%-6s%-6s%-8s%-10d`\n", m.name, "0", "0", "0", "100644", len(m.body))
		b.Write(m.body)
		if len(m.body)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	p := filepath.Join(t.TempDir(), "k.deb")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const rel = "9.9.9-1-amd64"

func kernelTree(machine elf.Machine) map[string][]byte {
	m := "./lib/modules/" + rel + "/kernel/"
	return map[string][]byte{
		"./boot/vmlinuz-" + rel:                     []byte("not really a bzImage"),
		m + "net/llc.ko":                            fakeModule(machine, "name=llc"),
		m + "net/stp.ko":                            fakeModule(machine, "depends=llc", "name=stp"),
		m + "net/bridge.ko":                         fakeModule(machine, "alias=rtnl-link-bridge", "depends=stp,llc", "name=bridge"),
		m + "net/br_netfilter.ko":                   fakeModule(machine, "depends=bridge", "name=br_netfilter"),
		m + "crypto/crc32c-intel.ko":                fakeModule(machine, "alias=crc32c", "name=crc32c_intel"),
		m + "lib/libcrc32c.ko":                      fakeModule(machine, "softdep=pre: crc32c", "name=libcrc32c"),
		"./lib/modules/" + rel + "/modules.builtin": []byte("kernel/fs/ext4/ext4.ko\n"),
		"./usr/share/doc/x/copyright":               []byte("x"),
	}
}

func codeOf(err error) string {
	if ce, ok := err.(*cli.CodedError); ok {
		return ce.Code
	}
	return fmt.Sprint(err)
}

func TestKernelIndexComputesDepmodFilesFromModinfo(t *testing.T) {
	deb := fakeDeb(t, "amd64", kernelTree(elf.EM_X86_64))
	out := filepath.Join(t.TempDir(), "idx")
	if err := CmdIndex([]string{"-deb", deb, "-arch", "amd64", "-out", out}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Transitive, in reverse load order (modprobe loads from the end), as depmod.
	wantDep := "kernel/crypto/crc32c-intel.ko:\n" +
		"kernel/lib/libcrc32c.ko:\n" +
		"kernel/net/br_netfilter.ko: kernel/net/bridge.ko kernel/net/stp.ko kernel/net/llc.ko\n" +
		"kernel/net/bridge.ko: kernel/net/stp.ko kernel/net/llc.ko\n" +
		"kernel/net/llc.ko:\n" +
		"kernel/net/stp.ko: kernel/net/llc.ko\n"
	if got := read("modules.dep"); got != wantDep {
		t.Errorf("modules.dep:\n%s\nwant:\n%s", got, wantDep)
	}
	if got := read("modules.softdep"); got != "softdep libcrc32c pre: crc32c\n" {
		t.Errorf("modules.softdep: %q", got)
	}
	if got := read("modules.alias"); got != "alias crc32c crc32c_intel\nalias rtnl-link-bridge bridge\n" {
		t.Errorf("modules.alias: %q", got)
	}
	if got := read("modules.builtin"); got != "kernel/fs/ext4/ext4.ko\n" {
		t.Errorf("modules.builtin: %q", got)
	}
	if got := read("vmlinuz"); got != "not really a bzImage" {
		t.Errorf("vmlinuz: %q", got)
	}
	var index kernelIndexJSON
	if err := json.Unmarshal([]byte(read("index.json")), &index); err != nil {
		t.Fatal(err)
	}
	want := kernelIndexJSON{Package: "linux-image-9.9.9-1-amd64", Version: "9.9.9-1", Architecture: "amd64", Release: rel, Modules: 6}
	if index != want {
		t.Errorf("index.json: %+v, want %+v", index, want)
	}
}

func TestKernelModulesExtractsOnlyTheNamedFiles(t *testing.T) {
	tree := kernelTree(elf.EM_X86_64)
	deb := fakeDeb(t, "amd64", tree)
	out := filepath.Join(t.TempDir(), "mods")
	if err := CmdModules([]string{"-deb", deb, "-out", out, "--", "kernel/net/stp.ko", "kernel/net/llc.ko"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "kernel/net/stp.ko"))
	if err != nil || !bytes.Equal(got, tree["./lib/modules/"+rel+"/kernel/net/stp.ko"]) {
		t.Fatalf("stp.ko: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "kernel/net/bridge.ko")); !os.IsNotExist(err) {
		t.Errorf("bridge.ko was not asked for: %v", err)
	}
	err = CmdModules([]string{"-deb", deb, "-out", t.TempDir(), "--", "kernel/net/nope.ko"})
	if codeOf(err) != "E_KERNEL_MODULE_MISSING" {
		t.Errorf("missing module: %v", err)
	}
	for _, bad := range []string{"../etc/x.ko", "/etc/x.ko", "kernel/../../x.ko", "kernel/x.txt"} {
		if err := CmdModules([]string{"-deb", deb, "-out", t.TempDir(), "--", bad}); codeOf(err) != "E_USAGE" {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestKernelIndexBadPackages(t *testing.T) {
	noImage := kernelTree(elf.EM_X86_64)
	delete(noImage, "./boot/vmlinuz-"+rel)
	notKernel := map[string][]byte{"./usr/bin/kmod": []byte("x")}
	orphan := kernelTree(elf.EM_X86_64)
	orphan["./lib/modules/"+rel+"/kernel/x.ko"] = fakeModule(elf.EM_X86_64, "depends=gone", "name=x")
	escape := kernelTree(elf.EM_X86_64)
	escape["../../etc/passwd"] = []byte("x")
	notDeb := filepath.Join(t.TempDir(), "x.deb")
	os.WriteFile(notDeb, []byte("PK\x03\x04 a zip"), 0o644)
	for _, c := range []struct {
		name, deb, arch, code, text string
	}{
		{"arm64 modules in an amd64 package", fakeDeb(t, "amd64", kernelTree(elf.EM_AARCH64)), "amd64", "E_KERNEL_ARCH", "built for EM_AARCH64"},
		{"an arm64 package where amd64 is wanted", fakeDeb(t, "arm64", kernelTree(elf.EM_AARCH64)), "amd64", "E_KERNEL_ARCH", `architecture "arm64", not amd64`},
		{"no kernel image", fakeDeb(t, "amd64", noImage), "amd64", "E_KERNEL_NOT_KERNEL", "no boot/vmlinuz"},
		{"not a kernel package", fakeDeb(t, "amd64", notKernel), "amd64", "E_KERNEL_NOT_KERNEL", "not a kernel package"},
		{"a dependency the package lacks", fakeDeb(t, "amd64", orphan), "amd64", "E_KERNEL_NOT_KERNEL", "depends on gone"},
		{"a path outside the root", fakeDeb(t, "amd64", escape), "amd64", "E_KERNEL_NOT_DEB", "outside its root"},
		{"an architecture-independent package", fakeDeb(t, "all", notKernel), "amd64", "E_KERNEL_NOT_KERNEL", `every architecture ("all")`},
		{"not a .deb", notDeb, "amd64", "E_KERNEL_NOT_DEB", "no ar archive header"},
	} {
		err := CmdIndex([]string{"-deb", c.deb, "-arch", c.arch, "-out", filepath.Join(t.TempDir(), "o")})
		if codeOf(err) != c.code || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: got %v, want %s containing %q", c.name, err, c.code, c.text)
		}
	}
}
