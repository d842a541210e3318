//go:build !k4s_download

package sizes

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"k4s.dev/tools/k4stool/internal/cli"
)

func TestCommas(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0", 7: "7", 999: "999", 1000: "1,000", 65536: "65,536", 1234567: "1,234,567", 100000000: "100,000,000",
	} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestModuleOf(t *testing.T) {
	// Longest first, as goModModules orders them: a nested module wins.
	modules := []string{"example.com/a/b", "golang.org/x/mod", "example.com/a"}
	for pkg, want := range map[string]string{
		"example.com/a":                           "example.com/a",
		"example.com/a/c":                         "example.com/a",
		"example.com/a/b/c":                       "example.com/a/b",
		"example.com/ab":                          "(other)", // a prefix of the path, not of its elements
		"golang.org/x/mod/modfile":                "golang.org/x/mod",
		"fmt":                                     "(Go standard library)",
		"internal/runtime/atomic":                 "(Go standard library)",
		"main":                                    "(bb main)",
		"bb.u-root.com/bb/pkg/bbmain":             "(bb main)",
		"github.com/u-root/u-root/cmds/core/ls":   "(other)",
		"github.com/u-root/u-root/pkg/uroot/util": "(other)",
	} {
		if got := moduleOf(modules, pkg); got != want {
			t.Errorf("moduleOf(%q) = %q, want %q", pkg, got, want)
		}
	}
}

func TestGoModModules(t *testing.T) {
	gomod := filepath.Join(t.TempDir(), "go.mod")
	if err := os.WriteFile(gomod, []byte("module k4s.dev/p\n\ngo 1.25\n\nrequire (\n\tgithub.com/u-root/u-root v0.16.0\n\tgolang.org/x/sys v0.30.0\n)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := goModModules(gomod)
	if err != nil {
		t.Fatal(err)
	}
	if want := "github.com/u-root/u-root golang.org/x/sys k4s.dev/p"; strings.Join(got, " ") != want {
		t.Errorf("goModModules = %q, want %q (longest first)", got, want)
	}
	if err := os.WriteFile(gomod, []byte("module\nrequire ((\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := goModModules(gomod); cli.Code(err) != "E_USAGE" || !strings.Contains(err.Error(), "-gomod") {
		t.Errorf("a go.mod that does not parse: %v, want E_USAGE naming -gomod", err)
	}
}

var (
	headline = regexp.MustCompile(`^(\S+): ([\d,]+) bytes on disk; function code ([\d,]+) bytes \((\d+)%\) in (\d+) packages$`)
	tableRow = regexp.MustCompile(`^\| (.+?) \| ([\d,]+) \| ([\d.]+) \|$`)
)

func number(t *testing.T, s string) uint64 {
	n, err := strconv.ParseUint(strings.ReplaceAll(s, ",", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// table is the rows of the `| title | code bytes | % of code |` table.
func table(t *testing.T, out, title string) map[string]uint64 {
	head := "| " + title + " | code bytes | % of code |\n|---|---:|---:|\n"
	_, rest, ok := strings.Cut(out, head)
	if !ok {
		t.Fatalf("no %q table in\n%s", title, out)
	}
	rows := map[string]uint64{}
	for _, line := range strings.Split(rest, "\n") {
		if line == "" {
			break
		}
		m := tableRow.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("row %q of the %s table is not `| name | bytes | percent |`", line, title)
		}
		rows[m[1]] = number(t, m[2])
	}
	return rows
}

// The report of a real Go binary, this test's own (it links this package,
// golang.org/x/mod/modfile and the standard library), grouped by the tools'
// go.mod.
func TestReportOfThisTestBinary(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	modules, err := goModModules(filepath.Join("..", "..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := report(&b, bin, modules, 1000); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	first, _, _ := strings.Cut(out, "\n")
	m := headline.FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("first line %q", first)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, code := number(t, m[2]), number(t, m[3])
	if onDisk != uint64(st.Size()) || code == 0 || code >= onDisk {
		t.Errorf("%d bytes on disk (the file has %d), function code %d", onDisk, st.Size(), code)
	}
	if !strings.Contains(out, "| ELF section | bytes |\n|---|---:|\n| .text | ") {
		t.Errorf("no .text row in the ELF section table:\n%s", out)
	}
	// Every byte of code in one module row and in one package row: with top
	// past the number of rows, the tables add up to the headline.
	byMod, byPkg := table(t, out, "module"), table(t, out, "package")
	for title, rows := range map[string]map[string]uint64{"module": byMod, "package": byPkg} {
		var sum uint64
		for _, n := range rows {
			sum += n
		}
		if sum != code {
			t.Errorf("the %s table adds up to %d, the headline says %d", title, sum, code)
		}
	}
	if strconv.Itoa(len(byPkg)) != m[5] {
		t.Errorf("%d package rows, the headline says %s packages", len(byPkg), m[5])
	}
	for _, row := range []string{"golang.org/x/mod", "k4s.dev/tools", "(Go standard library)"} {
		if byMod[row] == 0 {
			t.Errorf("no code in module row %q: %v", row, byMod)
		}
	}
	for _, row := range []string{"golang.org/x/mod/modfile", "k4s.dev/tools/k4stool/internal/sizes", "runtime"} {
		if byPkg[row] == 0 {
			t.Errorf("no code in package row %q", row)
		}
	}
	if byMod["golang.org/x/mod"] < byPkg["golang.org/x/mod/modfile"] {
		t.Errorf("module golang.org/x/mod (%d) holds less than its package modfile (%d)", byMod["golang.org/x/mod"], byPkg["golang.org/x/mod/modfile"])
	}

	// -top cuts each table to its biggest rows; without modules there is no module table.
	b.Reset()
	if err := report(&b, bin, nil, 2); err != nil {
		t.Fatal(err)
	}
	top := table(t, b.String(), "package")
	if len(top) != 2 || strings.Contains(b.String(), "| module |") {
		t.Fatalf("-top 2 without modules:\n%s", b.String())
	}
	for name, n := range top {
		for other, m := range byPkg {
			if _, in := top[other]; !in && m > n {
				t.Errorf("-top 2 kept %s (%d) but left out %s (%d)", name, n, other, m)
			}
		}
	}
}

func TestReportRefusesWhatIsNotAGoBinary(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a binary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{text, filepath.Join(dir, "missing")} {
		err := report(&bytes.Buffer{}, bin, nil, 20)
		if cli.Code(err) != "E_USAGE" || !strings.Contains(err.Error(), bin) {
			t.Errorf("report(%s) = %v, want E_USAGE naming the file", bin, err)
		}
	}
}

func TestCmdSizesFlags(t *testing.T) {
	for _, args := range [][]string{nil, {"a", "b"}, {"-top", "x", "bb"}, {"-bogus", "bb"}} {
		if err := CmdSizes(args); cli.Code(err) != "E_USAGE" || !strings.Contains(err.Error(), "k4stool sizes: ") {
			t.Errorf("CmdSizes(%q) = %v, want an E_USAGE error of k4stool sizes", args, err)
		}
	}
}
