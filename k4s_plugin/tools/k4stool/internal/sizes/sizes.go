//go:build !k4s_download

package sizes

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"

	"k4s.dev/tools/k4stool/internal/cli"
)

// CmdSizes prints where the bytes of a Go binary go, by package and by module,
// so a user can see what to cut to fit a flash part. It reads the pcln table,
// which the Go runtime needs and `-s -w` keeps, so it works on the stripped
// bb that k4s ships: every function's code is attributed to its package, and
// packages to the modules of the profile's go.mod (longest module path).
// The rules' size report (budget.py) shows its `| module |` table.
func CmdSizes(args []string) error {
	fset := cli.NewFlags("sizes")
	gomod := fset.String("gomod", "", "go.mod whose modules the packages are grouped into (optional)")
	top := fset.Int("top", 20, "rows per table")
	if err := fset.Parse(args, 1); err != nil {
		return err
	}
	var modules []string
	if *gomod != "" {
		var err error
		if modules, err = goModModules(*gomod); err != nil {
			return err
		}
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	return report(w, fset.Arg(0), modules, *top)
}

// goModModules is the module of a go.mod and the modules it requires,
// longest path first (the order moduleOf tries them in).
func goModModules(gomod string) ([]string, error) {
	raw, err := os.ReadFile(gomod)
	if err != nil {
		return nil, err
	}
	mf, err := modfile.Parse(gomod, raw, nil)
	if err != nil {
		return nil, cli.Errorf("E_USAGE", "-gomod: %v", err)
	}
	var modules []string
	if mf.Module != nil {
		modules = append(modules, mf.Module.Mod.Path)
	}
	for _, r := range mf.Require {
		modules = append(modules, r.Mod.Path)
	}
	sort.SliceStable(modules, func(i, j int) bool { return len(modules[i]) > len(modules[j]) })
	return modules, nil
}

// moduleOf is the row of package pkg in the module table: the longest of
// modules that holds it, or what it is when none does.
func moduleOf(modules []string, pkg string) string {
	first, _, _ := strings.Cut(pkg, "/")
	if !strings.Contains(first, ".") {
		if pkg == "main" || strings.HasPrefix(pkg, "bb.u-root.com") {
			return "(bb main)"
		}
		return "(Go standard library)"
	}
	for _, m := range modules {
		if pkg == m || strings.HasPrefix(pkg, m+"/") {
			return m
		}
	}
	if strings.HasPrefix(pkg, "bb.u-root.com") {
		return "(bb main)"
	}
	return "(other)"
}

// report writes the size report of Go binary bin: its ELF sections of 64 KiB
// or more, then its function code by module (with modules) and by package,
// top rows each, biggest first.
func report(w io.Writer, bin string, modules []string, top int) error {
	f, err := elf.Open(bin)
	if err != nil {
		return cli.Errorf("E_USAGE", "%s is not an ELF binary: %v", bin, err)
	}
	defer f.Close()
	st, err := os.Stat(bin)
	if err != nil {
		return err
	}
	text, pcln := f.Section(".text"), f.Section(".gopclntab")
	if text == nil || pcln == nil {
		return cli.Errorf("E_USAGE", "%s: no .text or .gopclntab section: not a Go ELF binary", bin)
	}
	data, err := pcln.Data()
	if err != nil {
		return err
	}
	table, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return err
	}

	byPkg := map[string]uint64{}
	byMod := map[string]uint64{}
	var total uint64
	for i := range table.Funcs {
		fn := &table.Funcs[i]
		if fn.End <= fn.Entry {
			continue
		}
		n := fn.End - fn.Entry
		pkg := fn.Sym.PackageName()
		if pkg == "" {
			pkg = "(runtime internals)"
		}
		byPkg[pkg] += n
		byMod[moduleOf(modules, pkg)] += n
		total += n
	}

	fmt.Fprintf(w, "%s: %s bytes on disk; function code %s bytes (%.0f%%) in %d packages\n\n",
		bin, commas(uint64(st.Size())), commas(total), 100*float64(total)/float64(st.Size()), len(byPkg))
	fmt.Fprintf(w, "| ELF section | bytes |\n|---|---:|\n")
	for _, sec := range f.Sections {
		if sec.Size >= 1<<16 && sec.Type != elf.SHT_NOBITS {
			fmt.Fprintf(w, "| %s | %s |\n", sec.Name, commas(sec.Size))
		}
	}
	fmt.Fprintln(w)
	printTable := func(title string, m map[string]uint64) {
		type row struct {
			k string
			v uint64
		}
		var rows []row
		for k, v := range m {
			rows = append(rows, row{k, v})
		}
		sort.Slice(rows, func(i, j int) bool {
			if rows[i].v != rows[j].v {
				return rows[i].v > rows[j].v
			}
			return rows[i].k < rows[j].k
		})
		fmt.Fprintf(w, "| %s | code bytes | %% of code |\n|---|---:|---:|\n", title)
		for i, r := range rows {
			if i == top {
				break
			}
			fmt.Fprintf(w, "| %s | %s | %.1f |\n", r.k, commas(r.v), 100*float64(r.v)/float64(total))
		}
		fmt.Fprintln(w)
	}
	if len(modules) > 0 {
		printTable("module", byMod)
	}
	printTable("package", byPkg)
	return nil
}

func commas(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
