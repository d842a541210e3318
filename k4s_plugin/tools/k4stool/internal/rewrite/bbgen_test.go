//go:build !k4s_download

package rewrite

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k4s.dev/tools/k4stool/internal/archive"
	"k4s.dev/tools/k4stool/internal/gotool"

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

// The rewrite's steps (rewrite-plan, rewrite-deps without the commands' own
// files, one rewrite-commands per group), each in a fresh directory as a
// Pants sandbox, joined as the compile step joins them, write the tree
// gobusybox's pkg/bb writes (BuildBusybox with GenerateOnly), file for file,
// byte for byte; with command names other than the base name, pkg/bb's tree
// with the registered name changed (what k4s wrote when it rewrote those
// commands in a second pass).
func TestSplitRewriteMatchesPkgBB(t *testing.T) {
	goroot, gocache := goEnvValue(t, "GOROOT"), goEnvValue(t, "GOCACHE")
	saved := os.Environ()
	t.Cleanup(func() { gotool.SetProcessEnv(saved) })
	cmds := []string{"example.com/cmds/a", "example.com/cmds/b"}
	for _, tc := range []struct {
		name  string
		names map[string]string // path -> name, when not the base name
		kinds []string
	}{
		{"plain", nil, []string{kindPlain, kindPlain}},
		{"renamed", map[string]string{cmds[0]: "atool"}, []string{kindRenamed, kindPlain}},
		{"fixliteral", map[string]string{cmds[0]: "atool", cmds[1]: "btool"}, []string{kindFixLiteral, kindRenamed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotool.SetProcessEnv(saved)
			t.Setenv("GOFLAGS", "-mod=mod")
			t.Setenv("GOPROXY", "off")
			t.Setenv("GOWORK", "off")
			t.Setenv("GOARCH", "amd64")
			t.Setenv("GOOS", "linux")
			root := writeTestModules(t)
			genv := golang.Default(golang.DisableCGO(), golang.WithWorkingDir(filepath.Join(root, "cmds")))
			ref := filepath.Join(root, "ref")
			l := log.New(os.Stderr, "gobusybox: ", 0)
			if err := bb.BuildBusybox(l, &bb.Opts{Env: genv, GenSrcDir: ref, CommandPaths: cmds, GenerateOnly: true, GoBuildOpts: &golang.BuildOpts{}}); err != nil {
				t.Fatal(err)
			}
			for i, p := range cmds {
				if n, ok := tc.names[p]; ok {
					renameInTree(t, ref, p, n, tc.kinds[i] == kindRenamed)
				}
			}
			t.Setenv("GOROOT", goroot)
			t.Setenv("GOCACHE", gocache)
			t.Setenv("GOFLAGS", "")
			var nameArgs []string
			for p, n := range tc.names {
				nameArgs = append(nameArgs, "-name", p+"="+n)
			}
			got, plan := splitRewrite(t, nameArgs, cmds)
			for i, c := range plan.Commands {
				if c.Kind != tc.kinds[i] {
					t.Errorf("%s: kind %s, want %s", c.Path, c.Kind, tc.kinds[i])
				}
			}
			want := readTree(t, filepath.Join(ref, "src"))
			for name, w := range want {
				if g, ok := got[name]; !ok {
					t.Errorf("%s: missing", name)
				} else if g != w {
					t.Errorf("%s differs:\n--- pkg/bb\n%s\n--- split rewrite\n%s", name, w, g)
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
		})
	}
}

// splitRewrite runs the rewrite's steps as the rules do, each in a fresh
// directory, and returns the tree they write joined (below src/) and the plan.
func splitRewrite(t *testing.T, nameArgs, cmds []string) (map[string]string, rewritePlanFile) {
	env := os.Environ()
	step := func(dir string, run func([]string) error, args ...string) {
		t.Helper()
		gotool.SetProcessEnv(env)
		t.Chdir(dir)
		if err := run(args); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	copyIn := func(from, to string, files ...string) {
		t.Helper()
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(from, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(to, f)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(to, f), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// No module cache: the dependency module is a local replacement.
	empty := t.TempDir()
	planDir := writeTestModules(t)
	if _, err := archive.PackTree(empty, filepath.Join(planDir, "modules.tar"), nil); err != nil {
		t.Fatal(err)
	}
	step(planDir, CmdPlan, append(append([]string{"-gomod", "cmds", "-modules", "modules.tar"}, nameArgs...), append([]string{"--"}, cmds...)...)...)
	var plan rewritePlanFile
	data, err := os.ReadFile(filepath.Join(planDir, "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Exclude) == 0 {
		t.Fatalf("plan.json excludes no first-party files: %s", data)
	}

	// The dependencies, without the commands' own files.
	depsDir := writeTestModules(t)
	for _, g := range plan.Exclude {
		matches, _ := filepath.Glob(filepath.Join(depsDir, g))
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	copyIn(planDir, depsDir, "modules.tar", "deps.txt")
	step(depsDir, CmdDeps, "-gomod", "cmds", "-modules", "modules.tar", "-list", "deps.txt", "-out", "deps.tar")

	tars := []string{filepath.Join(depsDir, "deps.tar"), filepath.Join(planDir, "bbmain.tar")}
	if len(plan.Groups) != 1 || len(plan.Groups[0].Commands) != len(cmds) || plan.Groups[0].Module != "example.com/cmds" {
		t.Fatalf("want one group (one module) of %d commands: %+v", len(cmds), plan.Groups)
	}
	grouped := map[string][]byte{}
	for _, g := range plan.Groups {
		dir := t.TempDir()
		copyIn(depsDir, dir, "deps.tar")
		copyIn(planDir, dir, g.File, g.Needs, "deps.txt")
		for _, c := range plan.Commands {
			copyIn(planDir, dir, c.Src)
		}
		step(dir, CmdCommands, "-deps", "deps.tar", "-group", g.File, "-deplist", "deps.txt", "-needs", g.Needs, "-outdir", "out")
		for _, c := range plan.Commands {
			out := filepath.Join(dir, "out", c.Name+".tar")
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			grouped[c.Name] = data
			tars = append(tars, out)
		}
	}
	// Each command in a group of its own writes the same bytes: the grouping
	// changes which Process rewrites a command, not what it writes.
	for _, c := range plan.Commands {
		dir := t.TempDir()
		copyIn(depsDir, dir, "deps.tar")
		copyIn(planDir, dir, c.Src, plan.Groups[0].Needs, "deps.txt")
		data, _ := json.Marshal([]plannedCommand{c})
		if err := os.WriteFile(filepath.Join(dir, "one.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		step(dir, CmdCommands, "-deps", "deps.tar", "-group", "one.json", "-deplist", "deps.txt", "-needs", plan.Groups[0].Needs, "-outdir", "out")
		if alone, err := os.ReadFile(filepath.Join(dir, "out", c.Name+".tar")); err != nil || !bytes.Equal(alone, grouped[c.Name]) {
			t.Errorf("%s rewritten alone differs from %s rewritten in its group (%v)", c.Name, c.Name, err)
		}
	}
	joined := t.TempDir()
	for _, tar := range tars {
		if err := archive.UnpackTree(tar, joined); err != nil {
			t.Fatal(err)
		}
	}
	return readTree(t, filepath.Join(joined, "src")), plan
}

// renameInTree changes the name a command of pkg/bb's tree registers under,
// and with package too its package name (bbinternal names the rewritten
// package bb<name>), as k4s's second gobusybox pass wrote a renamed command.
func renameInTree(t *testing.T, gen, pkgPath, name string, pkg bool) {
	if err := renameRegistration(gen, pkgPath, name); err != nil {
		t.Fatal(err)
	}
	if !pkg {
		return
	}
	files, _ := filepath.Glob(filepath.Join(gen, "src", pkgPath, "*.go"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		old := "package bb" + filepath.Base(pkgPath) + "\n"
		if !bytes.HasPrefix(data, []byte(old)) && !bytes.Contains(data, []byte("\n"+old)) {
			t.Fatalf("%s: no %q", f, old)
		}
		data = bytes.Replace(data, []byte(old), []byte("package bb"+name+"\n"), 1)
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func goEnvValue(t *testing.T, key string) string {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
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
