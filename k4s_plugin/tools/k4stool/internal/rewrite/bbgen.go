//go:build !k4s_download

package rewrite

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	_ "unsafe" // go:linkname

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"

	_ "github.com/u-root/gobusybox/src/pkg/bb" // bbMainSource, bbRegisterSource
	"github.com/u-root/gobusybox/src/pkg/bb/bbinternal"
	"github.com/u-root/gobusybox/src/pkg/golang"
	"golang.org/x/tools/go/ast/astutil"
	"golang.org/x/tools/go/packages"
)

// What gobusybox's pkg/bb (BuildBusybox with GenerateOnly) writes, produced
// here without type-checking every dependency from source: pkg/bb loads all
// commands with NeedDeps|NeedTypes|NeedSyntax|NeedTypesInfo, i.e. it parses
// and type-checks the whole dependency graph (all of Kubernetes for a
// Kubernetes profile: 8 GiB), while what it writes needs only
//
//   - the types of the command (main) packages, for bbinternal's Rewrite;
//   - every dependency's files, re-printed from their syntax by
//     bbinternal.WritePkg (go/format + imports.Process, no types).
//
// So the rewrite is three kinds of step, each a cached Pants Process keyed by
// what it reads (rewriteplan.go, rewritedeps.go, rewritecmd.go):
//
//   - rewrite-plan lists the graph without types (module mode) and writes the
//     command list, the dependency list, each command's own files and bb's
//     main package (which needs only the list);
//   - rewrite-deps writes each dependency package with bbinternal.WritePkg
//     from its own parse, one package at a time, and compiles them all once
//     into GOCACHE (precompile); its inputs hold none of the first-party
//     commands' files, so editing a command does not rerun it;
//   - rewrite-commands, once per group of commands (those of one Go module),
//     type-checks the group's commands against the export data of their dependencies as the compile step will
//     build them (GOPATH mode over the dependencies it imports, -trimpath,
//     the same tags and GOFLAGS: `go list -export` finds them in GOCACHE or
//     compiles them there, where the compile step finds them), and rewrites it.
//
// Joined (the compile step unpacks every piece into one GOPATH) they are the
// tree pkg/bb writes. gobusybox's bbinternal still does the rewriting
// (NewPackage, Rewrite, WritePkg, CreateBBMainSource); writeBBMain and
// copyAllDeps, unexported in pkg/bb, are redone below in their few lines.

// The two files pkg/bb embeds as bb's main package (bbmain/cmd/main.go and
// bbmain/register.go): the bytes pkg/bb itself embeds, read through
// go:linkname because pkg/bb does not export them (its writeBBMain, which
// writes them, is unexported too). No copy of them lives in this repository;
// TestBBMainTemplates compares them with the module's files, and
// TestSplitRewriteMatchesPkgBB the joined tree with pkg/bb's, so a
// gobusybox update that renames them fails the tests, not a build.
//
//go:linkname bbMainSource github.com/u-root/gobusybox/src/pkg/bb.bbMainSource
var bbMainSource []byte

//go:linkname bbRegisterSource github.com/u-root/gobusybox/src/pkg/bb.bbRegisterSource
var bbRegisterSource []byte

// bbLoadMode is what findpkg.loadPkgs asks for, minus NeedDeps: the command
// packages are parsed and type-checked from source, their dependencies come
// from export data (go/packages then runs `go list -export`).
const bbLoadMode = packages.NeedName | packages.NeedImports | packages.NeedFiles | packages.NeedTypes |
	packages.NeedSyntax | packages.NeedTypesInfo | packages.NeedCompiledGoFiles | packages.NeedModule |
	packages.NeedEmbedFiles

// bbListMode lists the same graph (module mode) with files but no types.
const bbListMode = packages.NeedName | packages.NeedImports | packages.NeedFiles | packages.NeedCompiledGoFiles |
	packages.NeedModule | packages.NeedEmbedFiles

// How rewrite-commands names a command (rewrite-plan decides, planCommands).
const (
	// kindPlain: registered under its package path's base name, as pkg/bb names every command.
	kindPlain = "plain"
	// kindRenamed: under another name (command_names, or Go's rule that a /vN suffix
	// is not a name): bbinternal's Package.Name.
	kindRenamed = "renamed"
	// kindFixLiteral: a renamed command when no command is plain: pkg/bb needed at least
	// one, so k4s rewrote it under its base name and then fixed the registered name
	// (renameRegistration); bb's main imports it with the plain ones.
	kindFixLiteral = "fixliteral"
)

// plannedCommand is one command of a busybox, as rewrite-plan hands it to
// rewrite-commands.
type plannedCommand struct {
	Path string `json:"path"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	Src  string `json:"src"` // its own files, a tar of src/<path>/...
}

// planCommands gives each resolved command (in resolved order) its kind.
func planCommands(paths []string, cmdNames map[string]string) []plannedCommand {
	var cmds []plannedCommand
	plain := 0
	for _, p := range paths {
		kind := kindRenamed
		if cmdNames[p] == path.Base(p) {
			kind = kindPlain
			plain++
		}
		cmds = append(cmds, plannedCommand{Path: p, Name: cmdNames[p], Kind: kind})
	}
	if plain == 0 && len(cmds) > 0 {
		cmds[0].Kind = kindFixLiteral
	}
	return cmds
}

// listCommands lists the commands' graph in module mode, files only (cheap:
// `go list -deps -compiled`), and returns the commands' own packages by path.
func listCommands(genv *golang.Environ, paths []string) (map[string]*packages.Package, []*packages.Package, error) {
	listed, err := lookupPackages(genv, paths)
	if err != nil {
		return nil, nil, err
	}
	roots := map[string]*packages.Package{}
	for _, p := range listed {
		if len(p.GoFiles) > 0 {
			roots[p.PkgPath] = p
		}
	}
	for _, p := range paths {
		if roots[p] == nil {
			return nil, nil, cli.Errorf("E_REWRITE", "no Go files for command %s", p)
		}
	}
	return roots, listed, nil
}

// lookupPackages lists packages in module mode, files only, failing on any
// package error as pkg/bb does.
func lookupPackages(genv *golang.Environ, paths []string) ([]*packages.Package, error) {
	listed, err := genv.Lookup(bbListMode, paths...)
	if err != nil {
		return nil, gotool.ClassifyError("E_REWRITE", fmt.Errorf("finding packages failed: %v", err))
	}
	for _, p := range listed {
		if len(p.Errors) > 0 {
			var merr error
			for _, e := range p.Errors {
				merr = errors.Join(merr, e)
			}
			return nil, gotool.ClassifyError("E_REWRITE", fmt.Errorf("finding packages failed: failed to add package %v for errors: %w", p, merr))
		}
	}
	return listed, nil
}

// depPackages are the packages bb's tree holds besides the commands: every
// dependency outside the standard library, by pkg/bb's copyAllDeps test (the
// first path element contains a dot), sorted.
func depPackages(listed []*packages.Package, roots map[string]*packages.Package) []string {
	seen := map[string]bool{}
	var deps []string
	packages.Visit(listed, nil, func(p *packages.Package) {
		first, _, _ := strings.Cut(p.PkgPath, "/")
		if roots[p.PkgPath] == nil && strings.Contains(first, ".") && !seen[p.PkgPath] {
			seen[p.PkgPath] = true
			deps = append(deps, p.PkgPath)
		}
	})
	sort.Strings(deps)
	return deps
}

// writeDepsTree lists the dependency packages (module mode, files only) and
// writes each under src as pkg/bb's copyAllDeps does, re-printed by
// bbinternal.WritePkg.
func writeDepsTree(genv *golang.Environ, deps []string, src string) error {
	if len(deps) == 0 {
		return os.MkdirAll(src, 0o755)
	}
	listed, err := lookupPackages(genv, deps)
	if err != nil {
		return err
	}
	byPath := map[string]*packages.Package{}
	for _, p := range listed {
		byPath[p.PkgPath] = p
	}
	var pkgs []*packages.Package
	for _, d := range deps {
		if byPath[d] == nil {
			return cli.Errorf("E_REWRITE", "dependency %s was not found", d)
		}
		pkgs = append(pkgs, byPath[d])
	}
	return writeDeps(pkgs, src)
}

// rewriteCommand rewrites one command in gen (a GOPATH holding its
// dependencies as writeDepsTree wrote them and the commands' own files) in
// place with bbinternal, from p, the command as loadCommands type-checked it
// against its dependencies' export data. orig is a GOPATH with another copy of
// the command's files: the rewrite reads its other and embedded files from
// there, not from the copies it writes over.
func rewriteCommand(p *packages.Package, gen, orig string, c plannedCommand) error {
	genSrc, origSrc := filepath.Join(gen, "src"), filepath.Join(orig, "src")
	relocate := func(files []string) []string {
		out := make([]string, len(files))
		for i, f := range files {
			out[i] = f
			if rel, err := filepath.Rel(genSrc, f); err == nil && filepath.IsLocal(rel) {
				out[i] = filepath.Join(origSrc, rel)
			}
		}
		return out
	}
	p.GoFiles, p.OtherFiles, p.EmbedFiles = relocate(p.GoFiles), relocate(p.OtherFiles), relocate(p.EmbedFiles)

	cmd := bbinternal.NewPackage(path.Base(c.Path), p)
	dest := filepath.Join(genSrc, c.Path)
	switch c.Kind {
	case kindPlain, kindFixLiteral:
		if err := cmd.Rewrite(dest, BBMainPkg+"/pkg/bbmain"); err != nil {
			return cli.Errorf("E_REWRITE", "rewriting command %q failed: %v", c.Path, err)
		}
		if c.Kind == kindFixLiteral {
			return renameRegistration(gen, c.Path, c.Name)
		}
	case kindRenamed:
		cmd.Name = c.Name
		if err := cmd.Rewrite(dest, BBMainPkg+"/pkg/bbmain"); err != nil {
			return cli.Errorf("E_REWRITE", "rewriting %s: %v", c.Path, err)
		}
	default:
		return cli.Errorf("E_USAGE", "unknown command kind %q", c.Kind)
	}
	return nil
}

// writeBBMainTree writes bb's main package (bbDir) importing the commands:
// what pkg/bb writes for the plain ones (and the fixLiteral one), then the
// renamed ones added as k4s's second gobusybox pass added them.
func writeBBMainTree(bbDir string, cmds []plannedCommand) error {
	var plain, renamed []string
	for _, c := range cmds {
		if c.Kind == kindRenamed {
			renamed = append(renamed, c.Path)
		} else {
			plain = append(plain, c.Path)
		}
	}
	if err := writeBBMain(bbDir, plain); err != nil {
		return cli.Errorf("E_REWRITE", "failed to write main.go: %v", err)
	}
	if len(renamed) > 0 {
		return addMainImports(filepath.Join(bbDir, "main.go"), renamed)
	}
	return nil
}

// loadCommands type-checks command packages (GOPATH mode over gen, as the
// compile step builds them: -trimpath, the same tags and GOFLAGS, so the
// export data `go list -export` compiles into GOCACHE is what the compile
// step finds there) against their dependencies' export data.
func loadCommands(gopathEnv, tags []string, gen string, paths []string) ([]*packages.Package, error) {
	flags := []string{"-trimpath"}
	if len(tags) > 0 {
		flags = append(flags, "-tags="+strings.Join(tags, ","))
	}
	cfg := &packages.Config{Mode: bbLoadMode, Env: gopathEnv, Dir: gen, BuildFlags: flags}
	pkgs, err := packages.Load(cfg, paths...)
	if err != nil {
		return nil, gotool.ClassifyError("E_REWRITE", fmt.Errorf("finding packages failed: %v", err))
	}
	var errs []string
	packages.Visit(pkgs, nil, func(p *packages.Package) {
		for _, e := range p.Errors {
			errs = append(errs, fmt.Sprintf("package %s: %v", p.PkgPath, e))
		}
	})
	if len(errs) > 0 {
		return nil, cli.Errorf("E_REWRITE", "%s", strings.Join(errs, "\n"))
	}
	got := map[string]*packages.Package{}
	for _, p := range pkgs {
		got[p.PkgPath] = p
	}
	var out []*packages.Package
	for _, p := range paths {
		if got[p] == nil {
			return nil, cli.Errorf("E_REWRITE", "type-checking the commands: %s is missing", p)
		}
		out = append(out, got[p])
	}
	return out, nil
}

// writeDeps writes each package with bbinternal.WritePkg, parsed as
// go/packages parses it (its default ParseFile), on GOMAXPROCS workers; a
// package's syntax is dropped once it is written.
func writeDeps(deps []*packages.Package, src string) error {
	work := make(chan *packages.Package)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				err := writeDep(p, filepath.Join(src, p.PkgPath))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = cli.Errorf("E_REWRITE", "collecting and putting dependencies in place failed: writing package %s failed: %v", p, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range deps {
		work <- p
	}
	close(work)
	wg.Wait()
	return firstErr
}

func writeDep(p *packages.Package, dest string) error {
	if len(p.Errors) > 0 {
		return p.Errors[0]
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range p.CompiledGoFiles {
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, name, data, parser.AllErrors|parser.ParseComments)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	p.Fset, p.Syntax = fset, files
	defer func() { p.Fset, p.Syntax = nil, nil }()
	return bbinternal.WritePkg(p, dest)
}

// copyPackageFiles copies a package's files (Go, other and embedded) into
// dest unchanged, as 0644 files.
func copyPackageFiles(p *packages.Package, dest string) error {
	pkgDir := filepath.Dir(p.GoFiles[0])
	for _, list := range [][]string{p.GoFiles, p.CompiledGoFiles, p.OtherFiles, p.EmbedFiles} {
		for _, f := range list {
			rel, err := filepath.Rel(pkgDir, f)
			if err != nil || !filepath.IsLocal(rel) {
				rel = filepath.Base(f) // where WritePkg copies OtherFiles
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			to := filepath.Join(dest, rel)
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(to, data, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeBBMain is pkg/bb's writeBBMain (gobusybox/src v0.3.0, unexported
// there): bb's register.go and main.go, the latter importing bbImports.
func writeBBMain(bbDir string, bbImports []string) error {
	if err := os.MkdirAll(filepath.Join(bbDir, "pkg/bbmain"), 0755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bbDir, "pkg/bbmain/register.go"), bbRegisterSource, 0755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bbDir, "main.go"), bbMainSource, 0755); err != nil {
		return err
	}
	bbFset, bbFiles, _, err := bbinternal.ParseAST("main", []string{filepath.Join(bbDir, "main.go")})
	if err != nil {
		return err
	}
	if len(bbFiles) == 0 {
		return fmt.Errorf("bb package not found")
	}
	if !astutil.RewriteImport(bbFset, bbFiles[0], "github.com/u-root/gobusybox/src/pkg/bb/bbmain", "bb.u-root.com/bb/pkg/bbmain") {
		return fmt.Errorf("could not rewrite import")
	}
	if err := bbinternal.CreateBBMainSource(bbFset, bbFiles, bbImports, bbDir); err != nil {
		return fmt.Errorf("creating bb main.go file failed: %v", err)
	}
	return nil
}
