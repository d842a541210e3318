//go:build !k4s_download

package main

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
	"strings"
	"sync"
	_ "unsafe" // go:linkname

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
// So: list the graph without types (module mode), write each dependency
// package with bbinternal.WritePkg from its own parse, one package at a time;
// then type-check only the commands, against the export data of the
// dependencies as the compile step will build them (GOPATH mode over the
// tree just written, -trimpath, the same tags and GOFLAGS): `go list -export`
// compiles them into GOCACHE, where the compile step finds them. gobusybox's
// bbinternal still rewrites every command (NewPackage, Rewrite, WritePkg,
// CreateBBMainSource); writeBBMain and copyAllDeps, unexported in pkg/bb,
// are redone below in their few lines.

// The two files pkg/bb embeds as bb's main package (bbmain/cmd/main.go and
// bbmain/register.go): the bytes pkg/bb itself embeds, read through
// go:linkname because pkg/bb does not export them (its writeBBMain, which
// writes them, is unexported too). No copy of them lives in this repository;
// TestBBMainTemplates compares them with the module's files, and
// TestGenerateMatchesBuildBusybox the whole tree with pkg/bb's, so a
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

// bbGen is one generation of the busybox tree in gen (a GOPATH: gen/src/...).
type bbGen struct {
	genv      *golang.Environ // module mode, as for findpkg
	gen       string
	gopathEnv []string // the compile step's go environment, with GOPATH=gen
	tags      []string
}

// generate writes the tree pkg/bb would write for plain (commands named by
// their base name), then what rewriteRenamed wrote for renamed (named by
// cmdNames), fixing the registered name of fixLiteral as the caller did.
func (g *bbGen) generate(plain, renamed []string, cmdNames map[string]string, fixLiteral string) error {
	all := append(append([]string{}, plain...), renamed...)
	// 1. The graph, module mode, files only: cheap (`go list -deps -compiled`).
	listed, err := g.genv.Lookup(bbListMode, all...)
	if err != nil {
		return classifyGoError("E_REWRITE", fmt.Errorf("finding packages failed: %v", err))
	}
	roots := map[string]*packages.Package{}
	for _, p := range listed {
		if len(p.Errors) > 0 {
			var merr error
			for _, e := range p.Errors {
				merr = errors.Join(merr, e)
			}
			return classifyGoError("E_REWRITE", fmt.Errorf("finding packages failed: failed to add package %v for errors: %w", p, merr))
		}
		if len(p.GoFiles) > 0 {
			roots[p.PkgPath] = p
		}
	}
	for _, p := range all {
		if roots[p] == nil {
			return errorf("E_REWRITE", "no Go files for command %s", p)
		}
	}

	// 2. Every dependency outside the standard library, as pkg/bb's
	// copyAllDeps writes it (its "contains a dot" test), one package at a
	// time per CPU.
	src := filepath.Join(g.gen, "src")
	var deps []*packages.Package
	seen := map[string]bool{}
	packages.Visit(listed, nil, func(p *packages.Package) {
		first, _, _ := strings.Cut(p.PkgPath, "/")
		if roots[p.PkgPath] == nil && strings.Contains(first, ".") && !seen[p.ID] {
			seen[p.ID] = true
			deps = append(deps, p)
		}
	})
	if err := writeDeps(deps, src); err != nil {
		return err
	}

	// 3. The commands' own files, unchanged, where GOPATH mode finds them;
	// bbinternal's Rewrite then writes over each of them.
	for _, p := range all {
		if err := copyPackageFiles(roots[p], filepath.Join(src, p)); err != nil {
			return err
		}
	}

	// 4. Type-check the commands against export data.
	cmds, err := g.load(all)
	if err != nil {
		return err
	}
	for _, p := range cmds {
		// Read the commands' other and embedded files from where they came
		// from, not from the copies Rewrite writes over.
		orig := roots[p.PkgPath]
		p.GoFiles, p.OtherFiles, p.EmbedFiles = orig.GoFiles, orig.OtherFiles, orig.EmbedFiles
	}
	byPath := map[string]*packages.Package{}
	var plainOrder []string
	isPlain := map[string]bool{}
	for _, p := range plain {
		isPlain[p] = true
	}
	for _, p := range cmds {
		byPath[p.PkgPath] = p
		if isPlain[p.PkgPath] {
			plainOrder = append(plainOrder, p.PkgPath)
		}
	}

	// 5. Rewrite: pkg/bb's commands, then the renamed ones.
	for _, pp := range plainOrder {
		cmd := bbinternal.NewPackage(path.Base(pp), byPath[pp])
		if err := cmd.Rewrite(filepath.Join(src, pp), bbMainPkg+"/pkg/bbmain"); err != nil {
			return errorf("E_REWRITE", "rewriting command %q failed: %v", pp, err)
		}
	}
	bbDir := filepath.Join(src, bbMainPkg)
	if err := writeBBMain(bbDir, plainOrder); err != nil {
		return errorf("E_REWRITE", "failed to write main.go: %v", err)
	}
	if fixLiteral != "" {
		if err := renameRegistration(g.gen, fixLiteral, cmdNames[fixLiteral]); err != nil {
			return err
		}
	}
	for _, pp := range renamed {
		cmd := bbinternal.NewPackage(path.Base(pp), byPath[pp])
		cmd.Name = cmdNames[pp]
		if err := cmd.Rewrite(filepath.Join(src, pp), bbMainPkg+"/pkg/bbmain"); err != nil {
			return errorf("E_REWRITE", "rewriting %s: %v", pp, err)
		}
	}
	if len(renamed) > 0 {
		return addMainImports(filepath.Join(bbDir, "main.go"), renamed)
	}
	return nil
}

// load type-checks the command packages (GOPATH mode over gen, as the
// compile step builds them) against their dependencies' export data.
func (g *bbGen) load(paths []string) ([]*packages.Package, error) {
	flags := []string{"-trimpath"}
	if len(g.tags) > 0 {
		flags = append(flags, "-tags="+strings.Join(g.tags, ","))
	}
	cfg := &packages.Config{Mode: bbLoadMode, Env: g.gopathEnv, Dir: g.gen, BuildFlags: flags}
	pkgs, err := packages.Load(cfg, paths...)
	if err != nil {
		return nil, classifyGoError("E_REWRITE", fmt.Errorf("finding packages failed: %v", err))
	}
	var errs []string
	packages.Visit(pkgs, nil, func(p *packages.Package) {
		for _, e := range p.Errors {
			errs = append(errs, fmt.Sprintf("package %s: %v", p.PkgPath, e))
		}
	})
	if len(errs) > 0 {
		return nil, errorf("E_REWRITE", "%s", strings.Join(errs, "\n"))
	}
	got := map[string]bool{}
	for _, p := range pkgs {
		got[p.PkgPath] = true
	}
	for _, p := range paths {
		if !got[p] {
			return nil, errorf("E_REWRITE", "type-checking the commands: %s is missing", p)
		}
	}
	return pkgs, nil
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
						firstErr = errorf("E_REWRITE", "collecting and putting dependencies in place failed: writing package %s failed: %v", p, err)
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
