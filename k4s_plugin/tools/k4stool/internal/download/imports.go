package download

import (
	"encoding/json"
	"errors"
	"go/build"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"k4s.dev/tools/k4stool/internal/cli"
	"k4s.dev/tools/k4stool/internal/gotool"
)

// Imports is what `k4stool imports` writes: the patterns the download step
// lists instead of the commands, and the first-party modules (replaced by a
// directory in go.mod) whose packages the commands use, as path@version.
type Imports struct {
	Patterns     []string `json:"patterns"`
	LocalModules []string `json:"local_modules"`
}

// CmdImports reads the first-party packages the commands reach (the main
// module's and those of modules go.mod replaces with a directory) and writes
// what the download step needs of them: the third-party packages they import,
// listed in place of the first-party commands. So the download's inputs are
// go.mod and go.sum files, this list and the third-party patterns, never a
// first-party .go file: an edit that keeps a command's imports leaves the
// download's key as it was.
//
// It reads files only (go/build, with the target's GOOS, GOARCH and tags and
// CGO_ENABLED=0, as the go command selects them); nothing is downloaded. A
// first-party package it cannot read contributes nothing: the rewrite's plan
// lists every package with the go command and reports it there.
func CmdImports(args []string) error {
	fset := cli.NewFlags("imports")
	gomod := fset.String("gomod", ".", "directory holding go.mod")
	out := fset.String("out", "imports.json", "output: the download's patterns and the local modules used")
	var tags cli.MultiFlag
	fset.Var(&tags, "tag", "Go build tag (repeatable)")
	if err := fset.Parse(args, cli.AnyArgs); err != nil {
		return err
	}
	if err := cli.CheckPatterns(fset.Args()); err != nil {
		return err
	}
	work := cli.MustAbs(".")
	dir := cli.MustAbs(*gomod)
	if !cli.Within(work, dir) || !cli.Within(work, *out) {
		return cli.Errorf("E_BAD_PATH", "-gomod and -out must be inside the working directory")
	}
	mods, err := readModules(work, dir)
	if err != nil {
		return err
	}
	ctx := build.Default
	ctx.CgoEnabled = false
	ctx.BuildTags = tags
	ctx.GOPATH = ""
	imp, err := firstPartyImports(&ctx, mods, fset.Args())
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(imp, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(data, '\n'), 0o644)
}

// buildModule is a module of the build: its path and, for a first-party one
// (the main module or one go.mod replaces with a directory), its directory
// and the version the main module requires (empty for the main module).
type buildModule struct {
	path, dir, version string
	main               bool
}

// buildModules are the main module, its requirements and their directories
// where they are first-party.
type buildModules []buildModule

// readModules reads go.mod in dir: the main module and every requirement,
// with the directories that replace them. A directory outside the working
// directory is refused (E_REPLACE_OUTSIDE) as the download step refuses it.
func readModules(work, dir string) (buildModules, error) {
	env, err := gotool.Env(work)
	if err != nil {
		return nil, err
	}
	mf, err := readGoMod(dir, env)
	if err != nil {
		return nil, err
	}
	mods := buildModules{{path: mf.Module.Path, dir: dir, main: true}}
	replaced := map[string]string{}
	for _, r := range mf.Replace {
		if r.New.Version != "" {
			continue // module -> module@version: third-party
		}
		target := r.New.Path
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		if !cli.Within(work, target) {
			return nil, replaceOutside(r.Old.Path, r.New.Path)
		}
		replaced[r.Old.Path] = target
	}
	for _, r := range mf.Require {
		mods = append(mods, buildModule{path: r.Path, dir: replaced[r.Path], version: r.Version})
	}
	return mods, nil
}

// owner is the module that holds an import path (the longest module path
// that is it or a prefix of it), or nil.
func (mods buildModules) owner(importPath string) *buildModule {
	var best *buildModule
	for i := range mods {
		m := &mods[i]
		if (importPath == m.path || strings.HasPrefix(importPath, m.path+"/")) && (best == nil || len(m.path) > len(best.path)) {
			best = m
		}
	}
	return best
}

// firstPartyImports splits the command patterns: a pattern in a first-party
// module is resolved here (its commands' directories) and replaced by the
// third-party packages those commands import, directly or through other
// first-party packages; any other pattern passes to the download as it is.
func firstPartyImports(ctx *build.Context, mods buildModules, patterns []string) (*Imports, error) {
	imp := &Imports{Patterns: []string{}, LocalModules: []string{}}
	var exclude []string
	for _, p := range patterns {
		if strings.HasPrefix(p, "-") {
			exclude = append(exclude, p[1:])
		}
	}
	var roots []string // first-party command packages, as import paths
	for _, p := range patterns {
		m := mods.owner(literalPrefix(p))
		if strings.HasPrefix(p, "-") || m == nil || m.dir == "" {
			imp.Patterns = append(imp.Patterns, p)
			continue
		}
		if literalPrefix(p) == p {
			roots = append(roots, p)
			continue
		}
		matched, err := globCommands(ctx, mods, *m, p, exclude)
		if err != nil {
			return nil, err
		}
		if len(matched) == 0 {
			return nil, cli.Errorf("E_UNKNOWN_PACKAGE", "%s matches no package (no command under %s)", p, m.dir)
		}
		roots = append(roots, matched...)
	}
	third := map[string]bool{}
	local := map[string]bool{}
	seen := map[string]bool{}
	for len(roots) > 0 {
		pkg := roots[0]
		roots = roots[1:]
		if seen[pkg] {
			continue
		}
		seen[pkg] = true
		m := mods.owner(pkg)
		if !m.main {
			local[m.path+"@"+m.version] = true
		}
		bp, err := ctx.ImportDir(filepath.Join(m.dir, filepath.FromSlash(strings.TrimPrefix(pkg[len(m.path):], "/"))), 0)
		if err != nil {
			continue // no Go files, several packages, ...: the rewrite's plan reports it
		}
		for _, i := range bp.Imports {
			o := mods.owner(i)
			first, _, _ := strings.Cut(i, "/")
			switch {
			case i == "C":
			case o != nil && o.dir != "":
				roots = append(roots, i)
			case o == nil && !strings.Contains(first, "."):
				// the standard library (the go command's rule for a path with no dot in its first element)
			default:
				third[i] = true
			}
		}
	}
	passed := map[string]bool{}
	for _, p := range imp.Patterns {
		passed[p] = true
	}
	for _, i := range sortedKeys(third) {
		if !passed[i] {
			imp.Patterns = append(imp.Patterns, i)
		}
	}
	imp.LocalModules = append(imp.LocalModules, sortedKeys(local)...)
	return imp, nil
}

// literalPrefix is a pattern without its leading "-" and without the path
// elements from the first glob (or "...") on.
func literalPrefix(p string) string {
	p = strings.TrimPrefix(p, "-")
	elems := strings.Split(p, "/")
	for i, e := range elems {
		if strings.ContainsAny(e, "*?[\\") || strings.Contains(e, "...") {
			return strings.Join(elems[:i], "/")
		}
	}
	return p
}

// globCommands are the command (package main) directories of module m,
// below the glob's literal prefix, that the glob matches and no exclusion
// does, as import paths; as gobusybox matches them (globs on path elements,
// a trailing /...). Directories the go command skips (testdata, names
// starting with . or _, vendor, nested modules) are skipped.
func globCommands(ctx *build.Context, mods buildModules, m buildModule, pattern string, exclude []string) ([]string, error) {
	start := filepath.Join(m.dir, filepath.FromSlash(strings.TrimPrefix(literalPrefix(pattern)[len(m.path):], "/")))
	var out []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == start {
			return filepath.SkipDir
		}
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if p != start && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && p != m.dir {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(m.dir, p)
		pkg := m.path
		if rel != "." {
			pkg = path.Join(m.path, filepath.ToSlash(rel))
		}
		if o := mods.owner(pkg); o == nil || o.path != m.path || !matchPattern(pattern, pkg) {
			return nil
		}
		for _, x := range exclude {
			if matchPattern(x, pkg) {
				return nil
			}
		}
		if bp, err := ctx.ImportDir(p, 0); err == nil && bp.Name == "main" {
			out = append(out, pkg)
		}
		return nil
	})
	return out, err
}

// matchPattern is gobusybox's match of a command pattern (also selectedPackages'):
// path.Match on the import path, or a prefix for a trailing /... .
func matchPattern(pattern, pkg string) bool {
	if strings.HasSuffix(pattern, "/...") {
		return pkg == strings.TrimSuffix(pattern, "/...") || strings.HasPrefix(pkg, strings.TrimSuffix(pattern, "..."))
	}
	ok, _ := path.Match(pattern, pkg)
	return ok
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
