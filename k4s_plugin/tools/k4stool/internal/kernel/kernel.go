//go:build k4s_kernel

package kernel

// The kernel steps: a Debian kernel package (.deb: an ar archive of
// debian-binary, control.tar.* and data.tar.*), unpacked without dpkg, ar,
// tar or depmod of the machine.
//
//	k4stool kernel-index   -deb PKG.deb -arch amd64|arm64 -out DIR
//	    DIR/vmlinuz, DIR/index.json (package, version, architecture, release)
//	    and DIR/modules.{dep,softdep,alias,builtin} of lib/modules/<release>,
//	    computed from each module's .modinfo section (depends=, softdep=,
//	    alias=), as depmod would write them; every module's ELF machine is
//	    checked against -arch.
//	k4stool kernel-modules -deb PKG.deb -out DIR -- MODULE...
//	    the named module files (paths relative to lib/modules/<release>)
//	    under DIR, uncompressed bytes as the package holds them.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// debArches maps Debian's architecture names to the GOARCH values k4s builds
// for, and the ELF machine of that architecture's kernel modules.
var debArches = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// debMember returns a reader for the first member of the ar archive r whose
// name starts with prefix ("control.tar", "data.tar"), decompressed by its
// suffix, and the member's name.
func debMember(r io.Reader, prefix string) (io.Reader, string, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "!<arch>\n" {
		return nil, "", cli.Errorf("E_KERNEL_NOT_DEB", "not a Debian package (.deb): no ar archive header")
	}
	for {
		hdr := make([]byte, 60)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return nil, "", cli.Errorf("E_KERNEL_NOT_DEB", "a Debian package without a %s* member", prefix)
		}
		if string(hdr[58:60]) != "`\n" {
			return nil, "", cli.Errorf("E_KERNEL_NOT_DEB", "not a Debian package (.deb): bad ar member header")
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		var size int64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(hdr[48:58])), "%d", &size); err != nil || size < 0 {
			return nil, "", cli.Errorf("E_KERNEL_NOT_DEB", "not a Debian package (.deb): bad ar member size")
		}
		body := io.LimitReader(br, size)
		if strings.HasPrefix(name, prefix) {
			dr, err := decompress(name, body)
			return dr, name, err
		}
		// Members are padded to an even size.
		if _, err := io.CopyN(io.Discard, br, size+size%2); err != nil {
			return nil, "", cli.Errorf("E_KERNEL_NOT_DEB", "truncated Debian package: %v", err)
		}
	}
}

// decompress picks the decompressor by the file name's suffix.
func decompress(name string, r io.Reader) (io.Reader, error) {
	switch {
	case strings.HasSuffix(name, ".xz"):
		return xz.NewReader(r)
	case strings.HasSuffix(name, ".zst"):
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case strings.HasSuffix(name, ".gz"):
		return gzip.NewReader(r)
	case strings.HasSuffix(name, ".tar"), strings.HasSuffix(name, ".ko"):
		return r, nil
	}
	return nil, cli.Errorf("E_KERNEL_NOT_DEB", "%s: unknown compression", name)
}

// debControl reads the package's control fields (Package, Version, Architecture).
func debControl(debPath string) (map[string]string, error) {
	f, err := os.Open(debPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, _, err := debMember(f, "control.tar")
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, cli.Errorf("E_KERNEL_NOT_DEB", "a Debian package without a control file")
		}
		if err != nil {
			return nil, cli.Errorf("E_KERNEL_NOT_DEB", "reading the package's control.tar: %v", err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "./")) != "control" {
			continue
		}
		fields := map[string]string{}
		sc := bufio.NewScanner(tr)
		for sc.Scan() {
			line := sc.Text()
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
				fields[k] = strings.TrimSpace(v)
			}
		}
		return fields, sc.Err()
	}
}

// walkData calls fn for each regular file of the package's data.tar, with
// its path relative to the package root ("boot/vmlinuz-6.1.0-57-amd64").
func walkData(debPath string, fn func(name string, h *tar.Header, r io.Reader) error) error {
	f, err := os.Open(debPath)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := debMember(f, "data.tar")
	if err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return cli.Errorf("E_KERNEL_NOT_DEB", "reading the package's data.tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == ".." || strings.HasPrefix(name, "../") || strings.HasPrefix(name, "/") {
			return cli.Errorf("E_KERNEL_NOT_DEB", "the package's data.tar has a path outside its root: %q", h.Name)
		}
		if err := fn(name, h, tr); err != nil {
			return err
		}
	}
}

// moduleRel splits "lib/modules/<release>/<rel>" (or under usr/lib) into
// release and rel; ok is false for other paths.
func moduleRel(name string) (release, rel string, ok bool) {
	for _, root := range []string{"lib/modules/", "usr/lib/modules/"} {
		if rest, found := strings.CutPrefix(name, root); found {
			release, rel, ok = strings.Cut(rest, "/")
			return release, rel, ok && release != "" && rel != ""
		}
	}
	return "", "", false
}

func isModule(rel string) bool {
	for _, s := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(rel, s) {
			return true
		}
	}
	return false
}

// modinfo is what depmod reads of a module: its name and .modinfo strings.
type modinfo struct {
	rel      string // path relative to lib/modules/<release>
	name     string // the module name, '-' as '_'
	depends  []string
	softdeps []string // "pre: a b post: c" values
	aliases  []string
}

func normName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// readModinfo parses a module's ELF .modinfo section and checks its machine.
func readModinfo(rel string, data []byte, machine elf.Machine) (*modinfo, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, cli.Errorf("E_KERNEL_NOT_KERNEL", "%s is not an ELF kernel module: %v", rel, err)
	}
	if f.Machine != machine {
		return nil, cli.Errorf("E_KERNEL_ARCH", "module %s is built for %s, not %s", rel, f.Machine, machine)
	}
	base := path.Base(rel)
	m := &modinfo{rel: rel, name: normName(base[:strings.Index(base, ".ko")])}
	sec := f.Section(".modinfo")
	if sec == nil {
		return m, nil
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, cli.Errorf("E_KERNEL_NOT_KERNEL", "%s: reading .modinfo: %v", rel, err)
	}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			m.name = normName(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					m.depends = append(m.depends, normName(d))
				}
			}
		case "softdep":
			m.softdeps = append(m.softdeps, v)
		case "alias":
			m.aliases = append(m.aliases, v)
		}
	}
	return m, nil
}

// depmod writes modules.dep, modules.softdep and modules.alias for mods
// (sorted by path), as depmod does: each module's dependencies transitively,
// in reverse load order (what modprobe loads last comes first).
func depmod(mods []*modinfo) (dep, softdep, alias []byte, err error) {
	byName := map[string]*modinfo{}
	for _, m := range mods {
		byName[m.name] = m
	}
	var depBuf, softBuf, aliasBuf bytes.Buffer
	for _, m := range mods {
		var order []string // load order of m's dependencies
		seen := map[string]bool{m.name: true}
		var visit func(n string, stack []string) error
		visit = func(n string, stack []string) error {
			d, ok := byName[n]
			if !ok {
				return cli.Errorf("E_KERNEL_NOT_KERNEL", "module %s depends on %s, which the package does not have", stack[0], n)
			}
			if seen[n] {
				return nil
			}
			seen[n] = true
			for _, dd := range d.depends {
				if err := visit(dd, append(stack, dd)); err != nil {
					return err
				}
			}
			order = append(order, d.rel)
			return nil
		}
		for _, d := range m.depends {
			if err := visit(d, []string{m.rel, d}); err != nil {
				return nil, nil, nil, err
			}
		}
		for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
			order[i], order[j] = order[j], order[i]
		}
		fmt.Fprintf(&depBuf, "%s:", m.rel)
		for _, d := range order {
			fmt.Fprintf(&depBuf, " %s", d)
		}
		depBuf.WriteByte('\n')
		for _, s := range m.softdeps {
			fmt.Fprintf(&softBuf, "softdep %s %s\n", m.name, s)
		}
		for _, a := range m.aliases {
			fmt.Fprintf(&aliasBuf, "alias %s %s\n", a, m.name)
		}
	}
	return depBuf.Bytes(), softBuf.Bytes(), aliasBuf.Bytes(), nil
}

// kernelIndexJSON is DIR/index.json.
type kernelIndexJSON struct {
	Package      string `json:"package"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	Release      string `json:"release"`
	Modules      int    `json:"modules"`
}

func CmdIndex(args []string) error {
	fs := cli.NewFlags("kernel-index")
	deb := fs.String("deb", "", "the kernel package")
	arch := fs.String("arch", "", "the architecture it must be for (amd64, arm64)")
	out := fs.String("out", "", "output directory")
	if err := fs.Parse(args, cli.NoArgs, "deb", "out"); err != nil {
		return err
	}
	machine, ok := debArches[*arch]
	if !ok {
		return cli.Errorf("E_USAGE", "-arch %q: k4s knows kernels for amd64 and arm64", *arch)
	}
	control, err := debControl(*deb)
	if err != nil {
		return err
	}
	if control["Architecture"] == "all" {
		return cli.Errorf("E_KERNEL_NOT_KERNEL", "package %s %s is for every architecture (\"all\"): not a kernel package",
			control["Package"], control["Version"])
	}
	if a := control["Architecture"]; a != *arch {
		return cli.Errorf("E_KERNEL_ARCH", "package %s %s is for architecture %q, not %s",
			control["Package"], control["Version"], a, *arch)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var images, releases []string
	var mods []*modinfo
	builtin := map[string][]byte{}
	err = walkData(*deb, func(name string, h *tar.Header, r io.Reader) error {
		if strings.HasPrefix(name, "boot/vmlinuz-") || strings.HasPrefix(name, "boot/vmlinux-") {
			images = append(images, name)
			if len(images) > 1 {
				return cli.Errorf("E_KERNEL_NOT_KERNEL", "the package has more than one kernel image: %s", strings.Join(images, ", "))
			}
			return writeFrom(filepath.Join(*out, "vmlinuz"), r)
		}
		release, rel, ok := moduleRel(name)
		if !ok {
			return nil
		}
		if len(releases) == 0 || releases[len(releases)-1] != release {
			releases = append(releases, release)
		}
		switch {
		case isModule(rel):
			dr, err := decompress(rel, r)
			if err != nil {
				return err
			}
			data, err := io.ReadAll(dr)
			if err != nil {
				return cli.Errorf("E_KERNEL_NOT_KERNEL", "%s: %v", rel, err)
			}
			m, err := readModinfo(rel, data, machine)
			if err != nil {
				return err
			}
			mods = append(mods, m)
		case rel == "modules.builtin":
			data, err := io.ReadAll(r)
			builtin[release] = data
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(releases)
	releases = compactStrings(releases)
	pkg := fmt.Sprintf("%s %s", control["Package"], control["Version"])
	switch {
	case len(images) == 0 && len(releases) == 0:
		return cli.Errorf("E_KERNEL_NOT_KERNEL", "package %s has neither a boot/vmlinuz-* nor a lib/modules/<release>/ tree: it is not a kernel package", pkg)
	case len(images) == 0:
		return cli.Errorf("E_KERNEL_NOT_KERNEL", "package %s has modules but no boot/vmlinuz-* kernel image (a modules-only package?)", pkg)
	case len(releases) != 1:
		return cli.Errorf("E_KERNEL_NOT_KERNEL", "package %s has %d module trees (%s), k4s needs one", pkg, len(releases), strings.Join(releases, ", "))
	}
	if want := "boot/vmlinuz-" + releases[0]; images[0] != want && images[0] != "boot/vmlinux-"+releases[0] {
		return cli.Errorf("E_KERNEL_NOT_KERNEL", "package %s has the image %s but the module tree %s", pkg, images[0], releases[0])
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].rel < mods[j].rel })
	for i := 1; i < len(mods); i++ {
		if mods[i].name == mods[i-1].name {
			return cli.Errorf("E_KERNEL_NOT_KERNEL", "package %s has two modules named %s", pkg, mods[i].name)
		}
	}
	dep, softdep, alias, err := depmod(mods)
	if err != nil {
		return err
	}
	index, err := json.MarshalIndent(kernelIndexJSON{
		Package: control["Package"], Version: control["Version"], Architecture: control["Architecture"],
		Release: releases[0], Modules: len(mods),
	}, "", "  ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"index.json": append(index, '\n'), "modules.dep": dep, "modules.softdep": softdep,
		"modules.alias": alias, "modules.builtin": builtin[releases[0]],
	} {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func compactStrings(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func writeFrom(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func CmdModules(args []string) error {
	fs := cli.NewFlags("kernel-modules")
	deb := fs.String("deb", "", "the kernel package")
	out := fs.String("out", "", "output directory")
	if err := fs.Parse(args, cli.AnyArgs, "deb", "out"); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, m := range fs.Args() {
		if c := path.Clean(m); c != m || !isModule(m) || strings.HasPrefix(m, "/") || strings.HasPrefix(m, "../") {
			return cli.Errorf("E_USAGE", "%q is not a module path inside a module tree", m)
		}
		want[m] = true
	}
	err := walkData(*deb, func(name string, h *tar.Header, r io.Reader) error {
		_, rel, ok := moduleRel(name)
		if !ok || !want[rel] {
			return nil
		}
		delete(want, rel)
		dst := filepath.Join(*out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return writeFrom(dst, r)
	})
	if err != nil {
		return err
	}
	if len(want) > 0 {
		var missing []string
		for m := range want {
			missing = append(missing, m)
		}
		sort.Strings(missing)
		return cli.Errorf("E_KERNEL_MODULE_MISSING", "the package has no %s", strings.Join(missing, ", "))
	}
	return nil
}
