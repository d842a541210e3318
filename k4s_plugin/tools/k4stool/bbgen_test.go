//go:build !k4s_download

package main

import (
	"bytes"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/gobusybox/src/pkg/bb"
	"github.com/u-root/gobusybox/src/pkg/golang"
)

// The templates bbgen.go reads from pkg/bb (go:linkname) are the module's files, byte for byte.
func TestBBMainTemplates(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/u-root/gobusybox/src").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	for file, got := range map[string][]byte{"bbmain/cmd/main.go": bbMainSource, "bbmain/register.go": bbRegisterSource} {
		want, err := os.ReadFile(filepath.Join(dir, "pkg/bb", file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("the embedded copy of gobusybox's pkg/bb/%s differs from the module's", file)
		}
	}
}

// testModules are two commands in one module and a dependency module (with
// a nested package, an embedded file, an assembly file and source that is
// not gofmt-formatted, which WritePkg re-prints).
var testModules = map[string]string{
	"cmds/go.mod": "module example.com/cmds\n\ngo 1.22\n\nrequire example.com/dep v0.0.0\n\nreplace example.com/dep => ../dep\n",
	"cmds/a/main.go": `package main

import (
	"fmt"
	"log"
	"os"

	"example.com/dep"
)

var logger = log.New(os.Stderr, "a: ", 0)
var x, y = dep.New(), 2
var when = dep.When() // time.Time, a package this file does not import

func init() { fmt.Println("init a") }

func main() { logger.Println(x, y, when, dep.Data) }
`,
	"cmds/b/main.go": `package main

import dd "example.com/dep"

var (
	v = dd.New()
	busyboxInit0 = 1
)

func init() {}
func init() {}

func main() { println(v.N, busyboxInit0) }
`,
	"cmds/b/b_other.go": "//go:build ignore\n\npackage main\n",
	"dep/go.mod":        "module example.com/dep\n\ngo 1.21\n",
	"dep/dep.go": `// Package dep is a dependency.
package dep // import "example.com/dep"

import (
  "time"
  _ "embed"
  "example.com/dep/sub"
)

//go:embed data/hello.txt
var Data string

type T struct{ N int }

func New() *T { return &T{N: sub.N}   }

func When() time.Time { return time.Time{} }
`,
	"dep/data/hello.txt":  "hello\n",
	"dep/sub/sub.go":      "package sub\n\nconst N = 3\n",
	"dep/sub/sub_amd64.s": "// nothing\n",
}

func writeTestModules(t *testing.T) string {
	root := t.TempDir()
	for name, content := range testModules {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// The tree generate writes is the one gobusybox's pkg/bb writes
// (BuildBusybox with GenerateOnly), file for file, byte for byte.
func TestGenerateMatchesPkgBB(t *testing.T) {
	root := writeTestModules(t)
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOWORK", "off")
	t.Setenv("GOARCH", "amd64")
	t.Setenv("GOOS", "linux")
	genv := golang.Default(golang.DisableCGO(), golang.WithWorkingDir(filepath.Join(root, "cmds")))
	cmds := []string{"example.com/cmds/a", "example.com/cmds/b"}

	ref := filepath.Join(root, "ref")
	l := log.New(os.Stderr, "gobusybox: ", 0)
	if err := bb.BuildBusybox(l, &bb.Opts{Env: genv, GenSrcDir: ref, CommandPaths: cmds, GenerateOnly: true, GoBuildOpts: &golang.BuildOpts{}}); err != nil {
		t.Fatal(err)
	}

	gen := filepath.Join(root, "gen")
	gopathEnv := append(os.Environ(), "GOPATH="+gen, "GO111MODULE=off", "GOFLAGS=", "CGO_ENABLED=0")
	g := &bbGen{genv: genv, gen: gen, gopathEnv: gopathEnv}
	names := map[string]string{cmds[0]: "a", cmds[1]: "b"}
	if err := g.generate(cmds, nil, names, ""); err != nil {
		t.Fatal(err)
	}

	want, got := readTree(t, ref), readTree(t, gen)
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s: missing", name)
		} else if g != w {
			t.Errorf("%s differs:\n--- pkg/bb\n%s\n--- generate\n%s", name, w, g)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: not written by pkg/bb", name)
		}
	}
	if len(want) < 8 {
		t.Errorf("pkg/bb wrote only %d files: %v", len(want), want)
	}
}

// readTree maps each file below dir to its content, with an "x " prefix for
// an executable file (the only mode bit k4s's tar keeps).
func readTree(t *testing.T, dir string) map[string]string {
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		if info.Mode()&0o111 != 0 {
			data = append([]byte("x "), data...)
		}
		files[rel] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
