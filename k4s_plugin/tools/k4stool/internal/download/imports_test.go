package download

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// importsFixture is a main module with first-party commands (a glob of them and
// one by path) and a local module go.mod replaces with a directory, whose files
// import third-party, standard and first-party packages under build constraints.
var importsFixture = map[string]string{
	"p/go.mod":         "module example.com/p\n\ngo 1.22\n\nrequire (\n\texample.com/local v0.0.0\n\texample.com/third v1.0.0\n\texample.com/third/nested v1.2.0\n)\n\nreplace example.com/local => ../local\n",
	"p/cmds/a/main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/p/internal/util\"\n)\n\nfunc main() { fmt.Println(util.X) }\n",
	// An edit here (a comment) must not change the output: only imports count.
	"p/cmds/b/main.go":          "package main\n\n// b\nimport \"example.com/local/lib\"\n\nfunc main() { lib.F() }\n",
	"p/cmds/b/b_test.go":        "package main\n\nimport \"example.com/testonly\"\n",
	"p/cmds/notmain/lib.go":     "package notmain\n\nimport \"example.com/notacommand\"\n",
	"p/cmds/testdata/x/main.go": "package main\n\nimport \"example.com/fromtestdata\"\n",
	"p/internal/util/util.go":   "package util\n\nimport _ \"example.com/third/pkg\"\n\nconst X = 1\n",
	"p/internal/util/cgo.go":    "package util\n\nimport \"C\"\nimport _ \"example.com/needscgo\"\n",
	"p/internal/util/win.go":    "//go:build windows\n\npackage util\n\nimport _ \"example.com/windowsonly\"\n",
	"p/internal/util/tag.go":    "//go:build mytag\n\npackage util\n\nimport _ \"example.com/third/nested/tagged\"\n",
	"p/tool/main.go":            "package main\n\nimport _ \"example.com/viatool\"\n\nfunc main() {}\n",
	"local/go.mod":              "module example.com/local\n\ngo 1.22\n",
	"local/lib/lib.go":          "package lib\n\nimport (\n\t\"os\"\n\n\t\"example.com/third/pkg\"\n)\n\nfunc F() { pkg.G(os.Args) }\n",
}

// setGOROOT sets GOROOT as a step's sandbox has it (gotool.Env needs it).
func setGOROOT(t *testing.T) {
	t.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("needs the go command: %v", err)
	}
	t.Setenv("GOROOT", strings.TrimSpace(string(goroot)))
}

func runImports(t *testing.T, patterns ...string) Imports {
	t.Helper()
	setGOROOT(t)
	t.Setenv("GOOS", "linux")
	t.Setenv("GOARCH", "amd64")
	work := t.TempDir()
	for name, content := range importsFixture {
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(work)
	if err := CmdImports(append([]string{"-gomod", "p", "-out", "imports.json", "-tag", "mytag", "--"}, patterns...)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("imports.json")
	if err != nil {
		t.Fatal(err)
	}
	var got Imports
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// First-party commands are replaced by the third-party packages they reach
// (through first-party packages of the main and the local module), as the go
// command selects files (GOOS, tags, no cgo, no tests); other patterns pass as
// they are; the local modules used are listed with their required version.
func TestImportsOfFirstPartyCommands(t *testing.T) {
	got := runImports(t, "example.com/third/cmd/x", "example.com/p/cmds/*", "-example.com/p/cmds/c", "example.com/p/tool")
	want := Imports{
		Patterns: []string{
			"example.com/third/cmd/x", "-example.com/p/cmds/c",
			"example.com/third/nested/tagged", "example.com/third/pkg", "example.com/viatool",
		},
		LocalModules: []string{"example.com/local@v0.0.0"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("imports:\n got %+v\nwant %+v", got, want)
	}
	// Only third-party commands: passed unchanged, nothing local.
	got = runImports(t, "example.com/third/cmd/*", "-example.com/third/cmd/y")
	want = Imports{Patterns: []string{"example.com/third/cmd/*", "-example.com/third/cmd/y"}, LocalModules: []string{}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("third-party only:\n got %+v\nwant %+v", got, want)
	}
}

func TestImportsGlobMatchingNothing(t *testing.T) {
	setGOROOT(t)
	work := t.TempDir()
	os.MkdirAll(filepath.Join(work, "p", "cmds"), 0o755)
	os.WriteFile(filepath.Join(work, "p", "go.mod"), []byte("module example.com/p\n"), 0o644)
	t.Chdir(work)
	err := CmdImports([]string{"-gomod", "p", "-out", "imports.json", "--", "example.com/p/cmds/z*"})
	if err == nil || !strings.Contains(err.Error(), "E_UNKNOWN_PACKAGE") || !strings.Contains(err.Error(), "example.com/p/cmds/z*") {
		t.Errorf("want E_UNKNOWN_PACKAGE naming the glob, got %v", err)
	}
}
